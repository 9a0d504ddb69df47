/**
 * The fused CPU kernels' calling side, browser-safe: the interface every implementation offers (toolkit/native's
 * addon in Node, `js-kernels.ts` in a page), each function working in place on views of the wasm heap, and the
 * tfjs wrappers that allocate the outputs and hand the views over. tfjs builds each of these ops from 5-25
 * elementwise ops (a pass over memory and an allocation each); here each is one pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FlashShape, FusedAdamWArgs } from './kernels';

/** The heap kernels (arrays are views of the wasm heap, written in place): the addon's exports, or `jsHeapKernels`. */
export interface HeapKernels {
  layerNormForward(
    x: Float32Array,
    w: Float32Array,
    b: Float32Array,
    y: Float32Array,
    stats: Float32Array,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  layerNormBackward(
    dy: Float32Array,
    x: Float32Array,
    w: Float32Array,
    stats: Float32Array,
    dx: Float32Array,
    dw: Float32Array,
    db: Float32Array,
    rows: number,
    cols: number,
  ): void;
  /** GELU: the addon's vectorised loop; the JS kernels leave it to tfjs (Math.exp in a loop is slower). */
  geluForward?(x: Float32Array, y: Float32Array, n: number): void;
  geluBackward?(dy: Float32Array, x: Float32Array, dx: Float32Array, n: number): void;
  attentionForward(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    ranges: Int32Array,
    o: Float32Array,
    p: Float32Array,
    ...shape: number[]
  ): void;
  attentionBackward(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    p: Float32Array,
    dO: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    ...shape: number[]
  ): void;
  sumSquares(g: Float32Array, n: number): number;
  adamwUpdate(
    p: Float32Array,
    g: Float32Array | null,
    m: Float32Array | null,
    v: Float32Array | null,
    ema: Float32Array | null,
    n: number,
    gradScale: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    bc1: number,
    bc2Sqrt: number,
    emaDecay: number,
  ): void;
  sumRows(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
}

/** The part of tfjs-backend-wasm's `BackendWasm` used here. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  refCount(dataId: object): number;
}

const wasm = () => tf.backend() as unknown as WasmBackend;
const asTensor = <T extends tf.Tensor>(info: tf.TensorInfo): T => tf.engine().makeTensorFromTensorInfo(info) as T;

/**
 * Allocates `outputs` then views every tensor: views are taken after the last allocation because growing the
 * wasm memory detaches the views taken before.
 */
function run<T extends tf.Tensor[]>(
  inputs: tf.Tensor[],
  outputs: number[][],
  body: (ins: Float32Array[], outs: Float32Array[]) => void,
): T {
  const be = wasm();
  const infos = outputs.map((shape) => be.makeOutput(shape, 'float32'));
  body(
    inputs.map((t) => be.typedArrayFromHeap(t)),
    infos.map((t) => be.typedArrayFromHeap(t)),
  );
  return infos.map((i) => asTensor(i)) as T;
}

/** LayerNorm rows of x [rows, C]: y, and (mean, 1/std) per row for the backward. */
export function layerNormForward(
  k: HeapKernels,
  x: tf.Tensor2D,
  w: tf.Tensor,
  b: tf.Tensor,
  eps: number,
): [tf.Tensor2D, tf.Tensor1D] {
  const [rows, C] = x.shape;
  return run([x, w, b], [[rows, C], [2 * rows]], ([xv, wv, bv], [y, st]) =>
    k.layerNormForward(xv, wv, bv, y, st, rows, C, eps),
  );
}

/** Gradients of LayerNorm: [dx, dw, db]. */
export function layerNormBackward(
  k: HeapKernels,
  dy: tf.Tensor2D,
  x: tf.Tensor2D,
  w: tf.Tensor,
  stats: tf.Tensor1D,
): tf.Tensor[] {
  const [rows, C] = x.shape;
  return run([dy, x, w, stats], [[rows, C], w.shape, w.shape], ([dyv, xv, wv, st], [dx, dw, db]) =>
    k.layerNormBackward(dyv, xv, wv, st, dx, dw, db, rows, C),
  );
}

/** GELU (tanh approximation). */
export function geluForward(k: HeapKernels, x: tf.Tensor): tf.Tensor {
  return run([x], [x.shape], ([xv], [y]) => k.geluForward!(xv, y, x.size))[0];
}

/** dy · GELU'(x). */
export function geluBackward(k: HeapKernels, dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return run([dy, x], [x.shape], ([dyv, xv], [dx]) => k.geluBackward!(dyv, xv, dx, x.size))[0];
}

/** Column sums of x [rows, C]: a linear layer's bias gradient. */
export function sumRows(k: HeapKernels, x: tf.Tensor2D): tf.Tensor1D {
  const [rows, C] = x.shape;
  return run([x], [[C]], ([xv], [out]) => k.sumRows(xv, out, rows, C))[0] as tf.Tensor1D;
}

const shapeArgs = (s: FlashShape) => [
  s.N,
  s.H,
  s.Lq,
  s.Lk,
  s.hd,
  s.scale,
  ...[s.q, s.k, s.v].flatMap((l) => [l.sN, l.sH, l.sL]),
];

/**
 * softmax(q·kᵀ·scale | ranges)·v: o [N, Lq, H·hd] (token-major) and the probabilities [N, H, Lq, Lk], 0 where
 * masked; row i sees keys [0, r[3i]) and [r[3i+1], r[3i+2]) (`getAttnRanges`).
 */
export function attentionForward(
  k: HeapKernels,
  s: FlashShape,
  q: tf.Tensor,
  kk: tf.Tensor,
  v: tf.Tensor,
  ranges: Int32Array,
): [tf.Tensor3D, tf.Tensor4D] {
  if (ranges.length !== 3 * s.Lq) throw new Error(`attention ranges hold ${ranges.length} values for ${s.Lq} rows`);
  return run(
    [q, kk, v],
    [
      [s.N, s.Lq, s.H * s.hd],
      [s.N, s.H, s.Lq, s.Lk],
    ],
    ([qv, kv, vv], [o, p]) => k.attentionForward(qv, kv, vv, ranges, o, p, ...shapeArgs(s)),
  );
}

/** Gradients [dq, dk, dv] (shaped and laid out as q, k, v) from the saved probabilities and dO [N, Lq, H·hd]. */
export function attentionBackward(
  k: HeapKernels,
  s: FlashShape,
  q: tf.Tensor,
  kk: tf.Tensor,
  v: tf.Tensor,
  p: tf.Tensor,
  dO: tf.Tensor,
): tf.Tensor[] {
  return run([q, kk, v, p, dO], [q.shape, kk.shape, v.shape], ([qv, kv, vv, pv, dov], [dq, dk, dv]) =>
    k.attentionBackward(qv, kv, vv, pv, dov, dq, dk, dv, ...shapeArgs(s)),
  );
}

/** Gives a variable a buffer of its own (clone() and tf.variable share buffers) before it is written in place. */
function ownBuffer(v: tf.Variable): void {
  if (wasm().refCount(v.dataId) <= 1) return;
  const copy = tf.tidy(() => tf.add(v, 0));
  v.assign(copy);
  copy.dispose();
}

/**
 * `clip_grad_norm_` + AdamW + EMA in place, one pass per parameter. Returns the gradient norm before clipping;
 * when it is not finite nothing is changed.
 */
export function adamwUpdate(
  k: HeapKernels,
  params: Record<string, tf.Variable>,
  grads: Record<string, tf.Tensor>,
  moments: (name: string) => { m: tf.Variable; v: tf.Variable },
  ema: Record<string, tf.Variable> | null,
  a: FusedAdamWArgs,
): number {
  const be = wasm();
  const scale = a.gradScale ?? 1;
  let sq = 0;
  for (const g of Object.values(grads)) sq += k.sumSquares(be.typedArrayFromHeap(g), g.size);
  const norm = Math.sqrt(sq) / scale;
  if (!Number.isFinite(norm)) return norm;
  const coef = a.maxNorm > 0 ? Math.min(1, a.maxNorm / (norm + 1e-6)) : 1;
  for (const name of Object.keys(params)) {
    const p = params[name];
    const g = grads[name];
    const e = ema?.[name] ?? null;
    const mv = g ? moments(name) : null;
    for (const t of [p, e, mv?.m, mv?.v]) if (t) ownBuffer(t);
    const view = (t: tf.Tensor | null | undefined) => (t ? be.typedArrayFromHeap(t) : null);
    k.adamwUpdate(
      be.typedArrayFromHeap(p),
      view(g),
      view(mv?.m),
      view(mv?.v),
      view(e),
      p.size,
      coef / scale,
      a.lr,
      a.beta1,
      a.beta2,
      a.eps,
      a.weightDecay,
      a.bc1,
      a.bc2Sqrt,
      a.emaDecay ?? 1,
    );
  }
  return norm;
}
