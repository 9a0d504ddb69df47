/**
 * safetensors files (the Hugging Face format): an 8-byte little-endian header length, a JSON header of
 * `{name: {dtype, shape, data_offsets}}` plus string `__metadata__`, then the raw little-endian values.
 * Reading accepts F32, F64, F16 and BF16 (converted to float32); writing is F32 or F16. This file works on bytes
 * (browser-safe); io/files.ts reads and writes them on disk.
 */
import { HostTensor } from '../model/params';
import { f32ToF16 } from './half';
import { DTYPE_BYTES, Dtype, decodeToFloat32 } from './dtypes';
import { fromUtf8, utf8 } from '../util/bytes';

export interface SafetensorsFile {
  tensors: Record<string, HostTensor>;
  metadata: Record<string, string>;
}

/** safetensors' names of the element types read here (floats; what checkpoints hold). */
const SAFETENSORS_DTYPES: Record<string, Dtype> = { F32: 'float32', F64: 'float64', F16: 'float16', BF16: 'bfloat16' };

/** Parses safetensors bytes; errors name `label` and what is wrong. */
export function parseSafetensors(buf: Uint8Array, label = 'safetensors data'): SafetensorsFile {
  if (buf.length < 8) throw new Error(`${label}: ${buf.length} bytes is too short for a safetensors file`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > buf.length - 8)
    throw new Error(
      `${label}: header length ${headerLen} exceeds the file (${buf.length} bytes): truncated or not safetensors`,
    );
  let header: Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>
  >;
  try {
    header = JSON.parse(fromUtf8(buf.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new Error(`${label}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new Error(`${label}: header is not a JSON object of tensors`);
  const dataStart = 8 + headerLen;
  const tensors: Record<string, HostTensor> = {};
  let metadata: Record<string, string> = {};
  const isIndex = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Object.values(entry).some((x) => typeof x !== 'string'))
        throw new Error(`${label}: __metadata__ must map names to strings`);
      metadata = entry as Record<string, string>;
      continue;
    }
    const {
      dtype,
      shape,
      data_offsets: offsets,
    } = (entry ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (
      !Array.isArray(shape) ||
      !shape.every(isIndex) ||
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every(isIndex)
    ) {
      throw new Error(`${label}: tensor ${name} needs a shape of non-negative integers and data_offsets [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    const type = SAFETENSORS_DTYPES[dtype as string];
    if (!type)
      throw new Error(
        `${label}: tensor ${name} has dtype ${String(dtype)}; supported: ${Object.keys(SAFETENSORS_DTYPES).join(', ')}`,
      );
    const width = DTYPE_BYTES[type];
    const count = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * width || dataStart + end > buf.length) {
      throw new Error(
        `${label}: tensor ${name} [${shape}] ${dtype} has byte range [${begin}, ${end}) that does not fit its shape or the file (truncated?)`,
      );
    }
    tensors[name] = { shape: shape.slice() as number[], data: decodeToFloat32(view, dataStart + begin, count, type) };
  }
  return { tensors, metadata };
}

/** Storage types `serializeSafetensors` writes: float32, or IEEE half (half the size, ~3 significant digits). */
export type StoredDtype = 'F32' | 'F16';

/** Serialises tensors (in the given order, as `dtype`) and string metadata. */
export function serializeSafetensors(
  tensors: Record<string, HostTensor>,
  metadata: Record<string, string> = {},
  dtype: StoredDtype = 'F32',
): Uint8Array {
  const width = DTYPE_BYTES[SAFETENSORS_DTYPES[dtype]];
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`tensor ${name}: ${t.data.length} values for shape [${t.shape}]`);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + width * n] };
    offset += width * n;
  }
  const text = utf8(JSON.stringify(header));
  const headLen = text.length + ((8 - ((8 + text.length) % 8)) % 8); // space-padded: the data starts 8-aligned
  const out = new Uint8Array(8 + headLen + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headLen), true);
  out.fill(0x20, 8, 8 + headLen);
  out.set(text, 8);
  let at = 8 + headLen;
  for (const t of Object.values(tensors)) {
    if (dtype === 'F16') for (let i = 0; i < t.data.length; i++, at += 2) view.setUint16(at, f32ToF16(t.data[i]), true);
    else {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
      at += t.data.byteLength;
    }
  }
  return out;
}
