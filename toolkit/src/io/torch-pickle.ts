/**
 * Reads PyTorch `torch.save` files (the zip format of torch >= 1.6) without running any code: a small pickle
 * virtual machine that only builds plain containers (dict, list, tuple, numbers, strings) and tensors.
 * The only callables it interprets are torch's tensor rebuilders and `OrderedDict`; any other global (for
 * example the `argparse.Namespace` of an official training checkpoint) becomes an inert placeholder, so a
 * malicious file cannot execute anything. Legacy (pre-1.6, non-zip) files are refused with a conversion hint.
 */
import { inflateSync } from 'fflate';
import { ByteView } from '../util/bytes';
import { HostTensor, StateDict } from '../model/params';
import { DTYPE_BYTES, decodeToFloat32, isDtype } from './dtypes';

/** A global the reader does not execute, kept as a named placeholder. */
class Opaque {
  args: unknown[] = [];
  state: unknown = undefined;
  constructor(readonly name: string) {}
}

/**
 * Modules whose callables run code or touch the system. A checkpoint never needs them; a pickle that calls one
 * is an attempt to run code, and is refused with that reason (nothing would be run anyway: see above).
 */
const CODE_MODULES = new Set([
  'os',
  'posix',
  'nt',
  'subprocess',
  'sys',
  'builtins',
  '__builtin__',
  'shutil',
  'socket',
  'importlib',
  'runpy',
  'pty',
  'pickle',
  'code',
  'ctypes',
  'marshal',
  'types',
  'webbrowser',
  'functools',
  'operator',
  'io',
  'pathlib',
  'tempfile',
  'signal',
  'multiprocessing',
  'threading',
  'asyncio',
]);

/** A short, printable view of a call's arguments for error messages. */
function previewArgs(args: unknown[]): string {
  const s = args.map((a) => (typeof a === 'string' || typeof a === 'number' ? JSON.stringify(a) : '…')).join(', ');
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** A storage reference from a persistent id: dtype and the zip entry holding its bytes. */
interface StorageRef {
  dtype: string;
  key: string;
}

const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/**
 * Entries of a zip archive (stored or deflated), by name. torch.save stores its entries uncompressed, so a stored
 * entry is returned as a view of `buf`, not a copy. Measured against fflate 0.8 `unzipSync` on a 400 MB archive of
 * 100 stored entries: 1.6 ms here vs 1.69 s there (it copies every entry, doubling memory for a large checkpoint),
 * so the reader stays ours; it is fuzzed in tests/fuzz.test.ts.
 */
function readZip(data: Uint8Array, label: string): Map<string, Uint8Array> {
  const buf = new ByteView(data);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65557); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0)
    throw new Error(
      `${label}: not a zip archive (legacy torch.save format?); re-save it with torch >= 1.6 or convert it: python3 -c "import torch, safetensors.torch as s; s.save_file(torch.load('in.pt'), 'out.safetensors')"`,
    );
  let count = buf.readUInt16LE(eocd + 10);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || count === 0xffff) {
    // zip64: the end-of-central-directory locator sits just before the classic record
    const loc = eocd - 20;
    if (loc < 0 || buf.readUInt32LE(loc) !== 0x07064b50) throw new Error(`${label}: corrupt zip64 archive`);
    const rec = Number(buf.readBigUInt64LE(loc + 8));
    count = Number(buf.readBigUInt64LE(rec + 32));
    cdOffset = Number(buf.readBigUInt64LE(rec + 48));
  }
  const out = new Map<string, Uint8Array>();
  let p = cdOffset;
  for (let e = 0; e < count; e++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`${label}: corrupt zip central directory`);
    const method = buf.readUInt16LE(p + 10);
    let csize = buf.readUInt32LE(p + 20);
    let usize = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    let local = buf.readUInt32LE(p + 42);
    const name = buf.text(p + 46, p + 46 + nameLen);
    // zip64 extra field: 64-bit sizes / offset replace the 0xffffffff ones, in this order
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = buf.readUInt16LE(x);
      const size = buf.readUInt16LE(x + 2);
      if (id === 0x0001) {
        let q = x + 4;
        if (usize === 0xffffffff) ((usize = Number(buf.readBigUInt64LE(q))), (q += 8));
        if (csize === 0xffffffff) ((csize = Number(buf.readBigUInt64LE(q))), (q += 8));
        if (local === 0xffffffff) local = Number(buf.readBigUInt64LE(q));
      }
      x += 4 + size;
    }
    const dataStart = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(dataStart, dataStart + csize);
    if (method === 0) out.set(name, raw);
    else if (method === 8) {
      // never more than the entry claims: one byte of room tells a larger one
      const inflated = inflateSync(raw, { out: new Uint8Array(usize + 1) });
      if (inflated.length > usize) throw new Error(`${label}: zip entry ${name} is larger than it claims`);
      out.set(name, inflated);
    } else throw new Error(`${label}: zip entry ${name} uses unsupported compression ${method}`);
    if (out.get(name)!.length !== usize) throw new Error(`${label}: zip entry ${name} is truncated`);
    p = xEnd + commentLen;
  }
  return out;
}

function toFloat32(bytes: Uint8Array, dtype: string, offset: number, count: number, label: string): Float32Array {
  if (!isDtype(dtype)) throw new Error(`${label}: unsupported tensor dtype ${dtype}`);
  const s = DTYPE_BYTES[dtype];
  if (
    !Number.isSafeInteger(offset) ||
    offset < 0 ||
    !Number.isSafeInteger(count) ||
    count < 0 ||
    (offset + count) * s > bytes.length
  )
    throw new Error(`${label}: tensor data runs past its storage`);
  return decodeToFloat32(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset * s, count, dtype);
}

/** `_rebuild_tensor_v2(storage, offset, size, stride, ...)` as a host float32 tensor (strides honoured). */
function rebuildTensor(
  ref: StorageRef,
  offset: number,
  size: number[],
  stride: number[],
  files: Map<string, Uint8Array>,
  prefix: string,
  label: string,
): HostTensor {
  const bytes = files.get(`${prefix}data/${ref.key}`);
  if (!bytes) throw new Error(`${label}: storage ${ref.key} is missing from the archive`);
  const dims = (x: unknown): x is number[] => Array.isArray(x) && x.every((n) => Number.isSafeInteger(n) && n >= 0);
  if (!dims(size) || !dims(stride) || size.length !== stride.length)
    throw new Error(`${label}: tensor with malformed size ${JSON.stringify(size)} / stride ${JSON.stringify(stride)}`);
  const count = size.reduce((a, b) => a * b, 1);
  let span = 1;
  size.forEach((n, i) => (span += (n - 1) * stride[i]));
  const flat = toFloat32(bytes, ref.dtype, offset, count === 0 ? 0 : span, label);
  const contiguous = size.every((_, i) => stride[i] === size.slice(i + 1).reduce((a, b) => a * b, 1) || size[i] === 1);
  if (contiguous) return { shape: size, data: flat.subarray(0, count) };
  const data = new Float32Array(count);
  const idx = new Array<number>(size.length).fill(0);
  for (let i = 0; i < count; i++) {
    data[i] = flat[idx.reduce((a, v, k) => a + v * stride[k], 0)];
    for (let k = size.length - 1; k >= 0; k--) {
      if (++idx[k] < size[k]) break;
      idx[k] = 0;
    }
  }
  return { shape: size, data };
}

/** Unpickles `data.pkl`; only containers, scalars and tensors come out. */
function unpickle(bytes: Uint8Array, files: Map<string, Uint8Array>, prefix: string, label: string): unknown {
  const pkl = new ByteView(bytes);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  const u8 = () => bytes[p++];
  const u16 = () => ((p += 2), pkl.readUInt16LE(p - 2));
  const u32 = () => ((p += 4), pkl.readUInt32LE(p - 4));
  const str = (n: number) => ((p += n), pkl.text(p - n, p));
  const line = () => {
    const end = bytes.indexOf(0x0a, p);
    // without this a truncated GLOBAL sent p back to 0: an endless loop growing the stack
    if (end < 0) throw new Error(`${label}: pickle ends inside a GLOBAL name (truncated or corrupt)`);
    const s = pkl.text(p, end);
    p = end + 1;
    return s;
  };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) throw new Error(`${label}: pickle MARK missing`);
    return stack.splice(m);
  };
  const setItems = (d: unknown, items: unknown[]) => {
    if (!(d instanceof Map)) throw new Error(`${label}: SETITEMS on a non-dict`);
    for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
  };
  const global = (module: string, name: string) => ({ global: `${module}.${name}` });
  const call = (fn: unknown, args: unknown[]): unknown => {
    const g = (fn as { global?: string }).global;
    if (g === 'collections.OrderedDict') return new Map();
    if (g === 'torch._utils._rebuild_tensor_v2' || g === 'torch._utils._rebuild_tensor') {
      const [ref, offset, size, stride] = args as [StorageRef, number, number[], number[]];
      return rebuildTensor(ref, offset, size, stride, files, prefix, label);
    }
    if (g === 'torch._utils._rebuild_parameter' || g === 'torch._utils._rebuild_parameter_with_state') return args[0];
    if (g && CODE_MODULES.has(g.split('.')[0]))
      throw new Error(
        `${label}: refused: the pickle asks to call ${g}(${previewArgs(Array.isArray(args) ? args : [])}), which would run code; a checkpoint only needs torch's tensor rebuilders, and this reader never runs code from a file`,
      );
    return Object.assign(new Opaque(g ?? '?'), { args });
  };
  for (;;) {
    if (p >= pkl.length) throw new Error(`${label}: pickle ends without STOP`);
    const op = u8();
    switch (op) {
      case 0x80:
        p++;
        break; // PROTO
      case 0x95:
        p += 8;
        break; // FRAME
      case 0x2e:
        return stack.pop(); // STOP
      case 0x7d:
        stack.push(new Map());
        break; // EMPTY_DICT
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x29:
        stack.push([]);
        break; // EMPTY_TUPLE
      case 0x28:
        marks.push(stack.length);
        break; // MARK
      case 0x74:
        stack.push(popMark());
        break; // TUPLE
      case 0x85:
        stack.push([stack.pop()]);
        break; // TUPLE1
      case 0x86: {
        const b = stack.pop();
        const a = stack.pop();
        stack.push([a, b]);
        break;
      } // TUPLE2
      case 0x87: {
        const c = stack.pop();
        const b = stack.pop();
        const a = stack.pop();
        stack.push([a, b, c]);
        break;
      } // TUPLE3
      case 0x6c:
        stack.push(popMark());
        break; // LIST
      case 0x64: {
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      } // DICT
      case 0x61: {
        const v = stack.pop();
        (stack[stack.length - 1] as unknown[]).push(v);
        break;
      } // APPEND
      case 0x65: {
        const items = popMark();
        (stack[stack.length - 1] as unknown[]).push(...items);
        break;
      } // APPENDS
      case 0x73: {
        const v = stack.pop();
        const k = stack.pop();
        setItems(stack[stack.length - 1], [k, v]);
        break;
      } // SETITEM
      case 0x75: {
        const items = popMark();
        setItems(stack[stack.length - 1], items);
        break;
      } // SETITEMS
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x4b:
        stack.push(u8());
        break; // BININT1
      case 0x4d:
        stack.push(u16());
        break; // BININT2
      case 0x4a:
        stack.push(((p += 4), pkl.readInt32LE(p - 4)));
        break; // BININT
      case 0x8a: {
        const n = u8();
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[p + i]);
        if (n > 0 && bytes[p + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        p += n;
        stack.push(Number(v));
        break;
      } // LONG1
      case 0x47:
        stack.push(((p += 8), pkl.readDoubleBE(p - 8)));
        break; // BINFLOAT
      case 0x58:
        stack.push(str(u32()));
        break; // BINUNICODE
      case 0x8c:
        stack.push(str(u8()));
        break; // SHORT_BINUNICODE
      case 0x54:
        stack.push(str(u32()));
        break; // BINSTRING
      case 0x55:
        stack.push(str(u8()));
        break; // SHORT_BINSTRING
      case 0x42: {
        const n = u32();
        stack.push(pkl.subarray(p, (p += n)));
        break;
      } // BINBYTES
      case 0x43: {
        const n = u8();
        stack.push(pkl.subarray(p, (p += n)));
        break;
      } // SHORT_BINBYTES
      case 0x71:
        memo.set(u8(), stack[stack.length - 1]);
        break; // BINPUT
      case 0x72:
        memo.set(u32(), stack[stack.length - 1]);
        break; // LONG_BINPUT
      case 0x94:
        memo.set(memo.size, stack[stack.length - 1]);
        break; // MEMOIZE
      case 0x68:
        stack.push(memo.get(u8()));
        break; // BINGET
      case 0x6a:
        stack.push(memo.get(u32()));
        break; // LONG_BINGET
      case 0x63: {
        const m = line();
        stack.push(global(m, line()));
        break;
      } // GLOBAL
      case 0x93: {
        const n = stack.pop() as string;
        const m = stack.pop() as string;
        stack.push(global(m, n));
        break;
      } // STACK_GLOBAL
      case 0x52: {
        const args = stack.pop() as unknown[];
        const fn = stack.pop();
        stack.push(call(fn, args));
        break;
      } // REDUCE
      case 0x81: {
        const args = stack.pop() as unknown[];
        const cls = stack.pop();
        stack.push(call(cls, args));
        break;
      } // NEWOBJ
      case 0x62: {
        const state = stack.pop();
        const obj = stack[stack.length - 1];
        if (obj instanceof Opaque) obj.state = state;
        break;
      } // BUILD
      case 0x51: {
        // BINPERSID: ('storage', storage_type, key, location, numel)
        const pid = stack.pop() as unknown[];
        const type = (pid[1] as { global?: string }).global?.split('.').pop() ?? '';
        const dtype = STORAGE_DTYPES[type];
        if (pid[0] !== 'storage' || !dtype)
          throw new Error(`${label}: unsupported storage ${JSON.stringify(pid[0])} of type ${type}`);
        stack.push({ dtype, key: String(pid[2]) } satisfies StorageRef);
        break;
      }
      default:
        throw new Error(`${label}: unsupported pickle opcode 0x${op.toString(16)} at byte ${p - 1}`);
    }
  }
}

const isTensor = (v: unknown): v is HostTensor =>
  typeof v === 'object' && v !== null && (v as HostTensor).data instanceof Float32Array;

/** The tensors of a dict, keys without DDP's `module.` prefix; null if it holds none. */
function tensorsOf(v: unknown): StateDict | undefined {
  if (!(v instanceof Map)) return undefined;
  const out: StateDict = {};
  for (const [k, t] of v) if (typeof k === 'string' && isTensor(t)) out[k.replace(/^module\./, '')] = t;
  return Object.keys(out).length ? out : undefined;
}

/** Everything in the bytes of a `torch.save` file, as plain JS (Maps for dicts, HostTensors for tensors). */
export function parseTorchFile(bytes: Uint8Array, label = 'torch.save data'): unknown {
  try {
    const files = readZip(bytes, label);
    const pklName = [...files.keys()].find((n) => n.endsWith('/data.pkl') || n === 'data.pkl');
    if (!pklName) throw new Error(`${label}: no data.pkl in the archive: not a torch.save file`);
    const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);
    return unpickle(files.get(pklName)!, files, prefix, label);
  } catch (e) {
    // our own errors name the file; anything else is a read past the end or a malformed structure
    const m = (e as Error).message;
    throw m.startsWith(label) ? e : new Error(`${label}: corrupt torch.save file (${m})`);
  }
}

/**
 * The model (and EMA) state_dicts in the bytes of a `.pt`: a bare state_dict (what `sample.py` loads) or an
 * official training checkpoint `{"model", "ema", "opt", ...}`.
 */
export function parseTorchStateDict(
  bytes: Uint8Array,
  label = 'torch.save data',
): { model: StateDict; ema?: StateDict } {
  const top = parseTorchFile(bytes, label);
  if (top instanceof Map && (top.has('model') || top.has('ema'))) {
    const model = tensorsOf(top.get('model')) ?? tensorsOf(top.get('ema'));
    if (!model) throw new Error(`${label}: "model" holds no tensors`);
    return { model, ema: tensorsOf(top.get('ema')) };
  }
  const model = tensorsOf(top);
  if (!model) throw new Error(`${label}: holds no state_dict of tensors`);
  return { model };
}
