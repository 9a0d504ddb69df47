/**
 * safetensors files (the Hugging Face format): an 8-byte little-endian header length, a JSON header of
 * `{name: {dtype, shape, data_offsets}}` plus string `__metadata__`, then the raw little-endian values.
 * Reading accepts F32, F64, F16 and BF16 (converted to float32); writing is F32 or F16. Files are written
 * atomically: a temporary file in the same folder, flushed, then renamed over the target, so a crash or a
 * kill never leaves a half-written checkpoint under the real name.
 */
import * as fs from 'fs';
import * as path from 'path';
import { HostTensor } from '../model/params';
import { bf16ToF32, f16ToF32, f32ToF16 } from './half';

export interface SafetensorsFile {
  tensors: Record<string, HostTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2 };

/** Parses safetensors bytes; errors name `label` and what is wrong. */
export function parseSafetensors(buf: Uint8Array, label = 'safetensors data'): SafetensorsFile {
  if (buf.length < 8) throw new Error(`${label}: ${buf.length} bytes is too short for a safetensors file`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > buf.length - 8) throw new Error(`${label}: header length ${headerLen} exceeds the file (${buf.length} bytes): truncated or not safetensors`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(Buffer.from(buf.subarray(8, 8 + headerLen)).toString('utf8'));
  } catch (e) {
    throw new Error(`${label}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error(`${label}: header is not a JSON object of tensors`);
  const dataStart = 8 + headerLen;
  const tensors: Record<string, HostTensor> = {};
  let metadata: Record<string, string> = {};
  const isIndex = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Object.values(entry).some((x) => typeof x !== 'string')) throw new Error(`${label}: __metadata__ must map names to strings`);
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!Array.isArray(shape) || !shape.every(isIndex) || !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
      throw new Error(`${label}: tensor ${name} needs a shape of non-negative integers and data_offsets [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    const width = BYTES[dtype as string];
    if (!width) throw new Error(`${label}: tensor ${name} has dtype ${String(dtype)}; supported: ${Object.keys(BYTES).join(', ')}`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * width || dataStart + end > buf.length) {
      throw new Error(`${label}: tensor ${name} [${shape}] ${dtype} has byte range [${begin}, ${end}) that does not fit its shape or the file (truncated?)`);
    }
    const data = new Float32Array(count);
    const at = dataStart + begin;
    for (let i = 0; i < count; i++) {
      const o = at + i * width;
      data[i] =
        dtype === 'F32' ? view.getFloat32(o, true)
        : dtype === 'F64' ? view.getFloat64(o, true)
        : dtype === 'F16' ? f16ToF32(view.getUint16(o, true))
        : bf16ToF32(view.getUint16(o, true));
    }
    tensors[name] = { shape: shape.slice() as number[], data };
  }
  return { tensors, metadata };
}

/** Storage types `serializeSafetensors` writes: float32, or IEEE half (half the size, ~3 significant digits). */
export type StoredDtype = 'F32' | 'F16';

/** Serialises tensors (in the given order, as `dtype`) and string metadata. */
export function serializeSafetensors(tensors: Record<string, HostTensor>, metadata: Record<string, string> = {}, dtype: StoredDtype = 'F32'): Buffer {
  const width = BYTES[dtype];
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`tensor ${name}: ${t.data.length} values for shape [${t.shape}]`);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + width * n] };
    offset += width * n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // align the data to 8 bytes
  const head = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + head.length + offset);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  let at = 8 + head.length;
  for (const t of Object.values(tensors)) {
    if (dtype === 'F16') for (let i = 0; i < t.data.length; i++, at += 2) out.writeUInt16LE(f32ToF16(t.data[i]), at);
    else at += Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, at);
  }
  return out;
}

/** Removes temp files of `base` left by writers that were killed (their process no longer exists). */
function removeStaleTemps(dir: string, base: string): void {
  const pattern = /^\.(.+)\.(\d+)\.\d+\.tmp$/;
  for (const name of fs.readdirSync(dir)) {
    const m = pattern.exec(name);
    if (!m || m[1] !== base || Number(m[2]) === process.pid) continue;
    try {
      process.kill(Number(m[2]), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join(dir, name), { force: true });
    }
  }
}

/**
 * Writes `data` to `file` atomically (temp file in the same folder, fsync, rename, fsync the folder), first
 * clearing temp files that killed writers left behind.
 */
export function writeFileAtomic(file: string, data: Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  removeStaleTemps(dir, path.basename(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w');
    // writeSync may write less than asked (a nearly full disk): loop, never rename a short file
    for (let off = 0; off < data.length; ) off += fs.writeSync(fd, data, off, data.length - off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOSPC' ? 'no space left on device' : err.code === 'EDQUOT' ? 'disk quota exceeded' : err.message;
    const kept = fs.existsSync(file) ? 'the previous file is unchanged' : 'nothing was written';
    throw Object.assign(new Error(`could not write ${file}: ${why} (${(data.length / 1e6).toFixed(1)} MB); ${kept}`), { code: err.code });
  }
  try {
    const dfd = fs.openSync(dir, 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  } catch {
    // some filesystems cannot fsync a directory; the rename itself is still atomic
  }
}

export function saveSafetensors(file: string, tensors: Record<string, HostTensor>, metadata: Record<string, string> = {}, dtype: StoredDtype = 'F32'): void {
  writeFileAtomic(file, serializeSafetensors(tensors, metadata, dtype));
}

export function loadSafetensors(file: string): SafetensorsFile {
  if (!fs.existsSync(file)) throw new Error(`checkpoint not found: ${file}`);
  return parseSafetensors(fs.readFileSync(file), file);
}
