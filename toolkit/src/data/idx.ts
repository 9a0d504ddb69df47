/**
 * Reader for the IDX format of MNIST and Fashion-MNIST (plain or gzipped): a big-endian header
 * `0x00 0x00 <type> <rank>`, `rank` 32-bit dimensions, then the values. Only unsigned bytes (type 0x08),
 * the type of every file of both datasets, are accepted.
 */
import * as fs from 'fs';
import * as zlib from 'zlib';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

/** Parses IDX bytes; every inconsistency is an error that names `label`. */
export function parseIdx(bytes: Uint8Array, label = 'IDX data'): IdxArray {
  if (bytes.length < 4) throw new Error(`${label}: file is ${bytes.length} bytes, too short for an IDX header`);
  if (bytes[0] !== 0 || bytes[1] !== 0)
    throw new Error(`${label}: not an IDX file (bad magic ${bytes[0]} ${bytes[1]})`);
  if (bytes[2] !== 0x08)
    throw new Error(`${label}: IDX value type 0x${bytes[2].toString(16)} is not unsigned bytes (0x08)`);
  const rank = bytes[3];
  const headerLen = 4 + 4 * rank;
  if (rank < 1 || bytes.length < headerLen) throw new Error(`${label}: truncated IDX header (rank ${rank})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length - headerLen !== count) {
    throw new Error(
      `${label}: header says [${shape}] = ${count} values but the file holds ${bytes.length - headerLen} (truncated or corrupt)`,
    );
  }
  return { shape, data: bytes.subarray(headerLen) };
}

/** Reads an IDX file, gunzipping `.gz` files. */
export function readIdxFile(path: string): IdxArray {
  let bytes: Uint8Array = fs.readFileSync(path);
  if (path.endsWith('.gz')) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (e) {
      throw new Error(`${path}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  return parseIdx(bytes, path);
}
