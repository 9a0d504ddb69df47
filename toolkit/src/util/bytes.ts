/** Bytes without Node's Buffer, so the core runs in a browser: base64, UTF-8 and CRC-32. */

const CHUNK = 0x8000;

/** Base64 of bytes (in chunks: String.fromCharCode takes a bounded number of arguments). */
export function toBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += CHUNK) bin += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  return btoa(bin);
}

/** The bytes of a base64 string. */
export function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** UTF-8 bytes of a string. */
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The string of UTF-8 bytes. */
export const fromUtf8 = (b: Uint8Array): string => new TextDecoder().decode(b);

let crcTable: Uint32Array | null = null;

/** CRC-32 (ISO-HDLC, as PNG and zip use it). */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Node's Buffer readers over a byte array, for parsers that must also run in a browser (reads past the end throw). */
export class ByteView {
  readonly length: number;
  private readonly view: DataView;

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.length = bytes.length;
  }

  readUInt16LE = (i: number): number => this.view.getUint16(i, true);
  readUInt32LE = (i: number): number => this.view.getUint32(i, true);
  readInt32LE = (i: number): number => this.view.getInt32(i, true);
  readBigUInt64LE = (i: number): bigint => this.view.getBigUint64(i, true);
  readDoubleBE = (i: number): number => this.view.getFloat64(i, false);
  /** The UTF-8 text of bytes [start, end). */
  text = (start: number, end: number): string => {
    if (end > this.length) throw new RangeError(`text [${start}, ${end}) runs past ${this.length} bytes`);
    return fromUtf8(this.bytes.subarray(start, end));
  };
  subarray = (start: number, end?: number): Uint8Array => this.bytes.subarray(start, end);
}
