/**
 * JS kernels for the tfjs wasm backend that fix what tfjs 4.22 gets wrong or slow there (measured here):
 *  - `UnsortedSegmentSum` is missing, so the gradient of `tf.gather` fails;
 *  - `GatherV2` with batchDims returns wrong values (tfjs#8658) and is slow per element;
 *  - `Slice`, `SplitV`, `Unpack` copy the whole input on every call (they read it through `readSync`);
 *  - `Identity` and same-dtype `Cast` copy instead of aliasing.
 * They work on views of the wasm heap through the backend's public `makeOutput` / `typedArrayFromHeap`.
 */
import * as tf from '@tensorflow/tfjs-core';

type TypedArray = Float32Array | Int32Array | Uint8Array;
type Info = tf.TensorInfo;

/** The part of tfjs-backend-wasm's `BackendWasm` these kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(t: Info): TypedArray;
  incRef(dataId: object): void;
}

interface KernelArgs {
  inputs: Record<string, Info>;
  attrs?: Record<string, unknown>;
  backend: unknown;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function alias(x: Info, backend: WasmBackend): Info {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
}

function identity({ inputs, backend }: KernelArgs): Info {
  return alias(inputs.x, backend as WasmBackend);
}

function unsortedSegmentSum({ inputs, attrs, backend }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { x, segmentIds } = inputs;
  const numSegments = attrs!.numSegments as number;
  const inner = size(x.shape.slice(segmentIds.shape.length));
  const out = b.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
  const xv = b.typedArrayFromHeap(x);
  const ids = b.typedArrayFromHeap(segmentIds);
  const ov = b.typedArrayFromHeap(out);
  ov.fill(0);
  for (let r = 0; r < ids.length; r++) {
    const s = ids[r];
    if (s < 0 || s >= numSegments) continue; // TF drops out-of-range ids
    const o = s * inner;
    const xi = r * inner;
    for (let k = 0; k < inner; k++) ov[o + k] += xv[xi + k];
  }
  return out;
}

function gatherV2({ inputs, attrs, backend }: KernelArgs): Info {
  const b = backend as WasmBackend;
  const { x, indices } = inputs;
  const axis = tf.util.parseAxisParam(attrs!.axis as number, x.shape)[0];
  let batchDims = (attrs!.batchDims as number) ?? 0;
  if (batchDims < 0) batchDims += indices.shape.length;
  const batch = size(x.shape.slice(0, batchDims));
  const outer = size(x.shape.slice(batchDims, axis));
  const dimSize = x.shape[axis];
  const inner = size(x.shape.slice(axis + 1));
  const perBatch = size(indices.shape.slice(batchDims));
  const outShape = [...x.shape.slice(0, axis), ...indices.shape.slice(batchDims), ...x.shape.slice(axis + 1)];
  const out = b.makeOutput(outShape, x.dtype);
  const xv = b.typedArrayFromHeap(x);
  const iv = b.typedArrayFromHeap(indices);
  const ov = b.typedArrayFromHeap(out);
  let o = 0;
  for (let bi = 0; bi < batch; bi++) {
    for (let oi = 0; oi < outer; oi++) {
      const base = (bi * outer + oi) * dimSize;
      for (let j = 0; j < perBatch; j++) {
        const idx = iv[bi * perBatch + j];
        if (idx < 0 || idx >= dimSize) throw new Error(`gather index ${idx} is outside [0, ${dimSize})`);
        const from = (base + idx) * inner;
        ov.set(xv.subarray(from, from + inner), o);
        o += inner;
      }
    }
  }
  return out;
}

function sliceInfo(x: Info, begin: number[], sizeOut: number[], b: WasmBackend): Info {
  const out = b.makeOutput(sizeOut, x.dtype);
  const xv = b.typedArrayFromHeap(x);
  const ov = b.typedArrayFromHeap(out);
  const rank = x.shape.length;
  const strides = tf.util.computeStrides(x.shape);
  // Copy runs of the innermost contiguous extent; merge trailing full dimensions into one run.
  let runDims = rank - 1;
  while (runDims > 0 && begin[runDims] === 0 && sizeOut[runDims] === x.shape[runDims]) runDims--;
  const run = size(sizeOut.slice(runDims));
  const outerShape = sizeOut.slice(0, runDims);
  const count = size(outerShape);
  const idx = new Array<number>(runDims).fill(0);
  for (let r = 0, o = 0; r < count; r++, o += run) {
    let from = 0;
    for (let d = 0; d < runDims; d++) from += (begin[d] + idx[d]) * strides[d];
    if (runDims < rank) from += begin[runDims] * (runDims < rank - 1 ? strides[runDims] : 1);
    ov.set(xv.subarray(from, from + run), o);
    for (let d = runDims - 1; d >= 0; d--) {
      if (++idx[d] < outerShape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

function slice({ inputs, attrs, backend }: KernelArgs): Info {
  const { x } = inputs;
  const [begin, sz] = tf.slice_util.parseSliceParams(
    x as tf.TensorInfo as tf.Tensor,
    attrs!.begin as number[],
    attrs!.size as number[],
  );
  return sliceInfo(x, begin, sz, backend as WasmBackend);
}

function splitV({ inputs, attrs, backend }: KernelArgs): Info[] {
  const { x } = inputs;
  const axis = tf.util.parseAxisParam(attrs!.axis as number, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(
    x as tf.TensorInfo as tf.Tensor,
    attrs!.numOrSizeSplits as number[] | number,
    axis,
  );
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const sz = x.shape.slice();
    sz[axis] = s;
    const out = sliceInfo(x, begin.slice(), sz, backend as WasmBackend);
    begin[axis] += s;
    return out;
  });
}

function unpack({ inputs, attrs, backend }: KernelArgs): Info[] {
  const value = inputs.value;
  const axis = tf.util.parseAxisParam(attrs!.axis as number, value.shape)[0];
  const outShape = value.shape.filter((_, i) => i !== axis);
  const sz = value.shape.slice();
  sz[axis] = 1;
  return Array.from({ length: value.shape[axis] }, (_, i) => {
    const begin = new Array<number>(value.shape.length).fill(0);
    begin[axis] = i;
    const out = sliceInfo(value, begin, sz, backend as WasmBackend);
    return { dataId: out.dataId, dtype: out.dtype, shape: outShape };
  });
}

function cast(args: KernelArgs): Info {
  const { x } = args.inputs;
  const dtype = args.attrs!.dtype as tf.DataType;
  const b = args.backend as WasmBackend;
  if (dtype === x.dtype) return alias(x, b);
  const out = b.makeOutput(x.shape, dtype);
  const src = b.typedArrayFromHeap(x);
  const dst = b.typedArrayFromHeap(out);
  if (dtype === 'int32') for (let i = 0; i < src.length; i++) dst[i] = Math.trunc(src[i]);
  else if (dtype === 'bool') for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0;
  else dst.set(src);
  return out;
}

const PATCHES: Record<string, (args: KernelArgs) => Info | Info[]> = {
  UnsortedSegmentSum: unsortedSegmentSum,
  GatherV2: gatherV2,
  Slice: slice,
  SplitV: splitV,
  Unpack: unpack,
  Identity: identity,
  Cast: cast,
};

let patched = false;

/** Registers the kernels above for the 'wasm' backend (idempotent). Returns the kernel names it replaced. */
export function patchWasmKernels(): string[] {
  if (patched) return Object.keys(PATCHES);
  for (const [kernelName, kernelFunc] of Object.entries(PATCHES)) {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
  patched = true;
  return Object.keys(PATCHES);
}
