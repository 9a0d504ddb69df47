/**
 * The device table: the fused kernels the active backend offers, chosen once when the backend starts
 * (`initBackend`). The model and the training step call its entries and compose tfjs ops where there is no table
 * (cpu, or `setFusedKernels(false)`: the reference the kernels are tested against), so neither names a device.
 * One file per backend fills it: `kernels-wgsl.ts` (webgpu), `kernels-heap.ts` (wasm: toolkit/native, or JS in a page). A new
 * kernel is an entry here, its implementation in each of those files and a test in fused-kernels.test.ts; an
 * optional entry (the GPU's coarser fusions: QK-norm with attention, the MLP with its epilogues) is one only some
 * tables fill, and the model composes the finer entries or tfjs ops where it is absent.
 * Browser-safe: this file imports tfjs only.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * How a [N, heads, rows, hd] tensor lies in memory: element (n, h, i, d) is at offset + n·sN + h·sH + i·sL + d.
 */
export interface HeadLayout {
  sN: number;
  sH: number;
  sL: number;
  offset: number;
}

/** [N, H, L, hd] contiguous. */
export const headMajor = (H: number, L: number, hd: number): HeadLayout => ({
  sN: H * L * hd,
  sH: L * hd,
  sL: hd,
  offset: 0,
});
/** [N, L, H, hd] contiguous, i.e. [N, L, D] with head h in columns h·hd ... (h+1)·hd. */
export const tokenMajor = (H: number, L: number, hd: number): HeadLayout => ({
  sN: L * H * hd,
  sH: hd,
  sL: H * hd,
  offset: 0,
});
/** q (part 0), k (1) or v (2) read in place from the fused projection qkv [N, L, 3·H·hd]. */
export const fusedQkvPart = (H: number, L: number, hd: number, part: 0 | 1 | 2): HeadLayout => ({
  sN: 3 * L * H * hd,
  sH: hd,
  sL: 3 * H * hd,
  offset: part * H * hd,
});

/** Shapes and layouts of one attention call: q [N, H, Lq, hd], k and v [N, H, Lk, hd], o token-major. */
export interface FlashShape {
  N: number;
  H: number;
  Lq: number;
  Lk: number;
  hd: number;
  scale: number;
  q: HeadLayout;
  k: HeadLayout;
  v: HeadLayout;
}

/**
 * Training's self-attention over a sequence of L tokens: q and k token-major [N, L, H·hd], v in layout `v`
 * (token-major too, or read in place from the fused qkv), scale hd^-0.5.
 */
export function selfAttentionShape(N: number, H: number, L: number, hd: number, v = tokenMajor(H, L, hd)): FlashShape {
  const qk = tokenMajor(H, L, hd);
  return { N, H, Lq: L, Lk: L, hd, scale: Math.pow(hd, -0.5), q: qk, k: qk, v };
}

/** The per-head LayerNorms of QK-norm: `q_norm` and `k_norm`, weight and bias [hd] each. */
export interface QkNormParams {
  qw: tf.Tensor;
  qb: tf.Tensor;
  kw: tf.Tensor;
  kb: tf.Tensor;
}

/** Receives the attention probabilities [N, H, Lq, Lk] of a layer (recorders). */
export type ProbsHook = (probs: tf.Tensor4D) => void;

/**
 * The key ranges of each query row (`getAttnRanges`: row i sees keys [0, r[3i]) and [r[3i+1], r[3i+2])), as the
 * host array and, where the table wants one, in the device form its attention reads (made once per batch, freed
 * by `disposeRanges`).
 */
export interface AttentionRanges {
  host: Int32Array;
  device?: tf.Tensor;
}

/** Optimizer settings of one fused update: the AdamW hyper-parameters and this step's bias corrections. */
export interface FusedAdamWArgs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1 - beta1^step, with step counted from 1 (`biasCorrections` in train/optim). */
  bc1: number;
  /** sqrt(1 - beta2^step). */
  bc2Sqrt: number;
  /** `clip_grad_norm_`'s max_norm; 0 or less: no clipping. */
  maxNorm: number;
  /** EMA decay, when an EMA is kept. */
  emaDecay?: number;
  /** The loss scale the gradients carry (a power of two), divided out here. */
  gradScale?: number;
}

/** A fused kernel table (see the module comment). Every op is differentiable where the model needs a gradient. */
export interface FusedKernels {
  /** 'wgsl' or 'native', for reports and tests. */
  readonly name: string;
  /** LayerNorm over the columns of [rows, cols], weight and bias [cols]. */
  layerNorm(x: tf.Tensor2D, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor2D;
  /** GELU, tanh approximation, elementwise; absent where tfjs's own ops are faster (the JS table). */
  gelu?(x: tf.Tensor): tf.Tensor;
  /** The key ranges in the form `attention` reads, for head size `hd`. */
  ranges(host: Int32Array, hd: number): AttentionRanges;
  /**
   * softmax(q·kᵀ·scale | ranges)·v, o [N, Lq, H·hd] token-major, q, k, v read in the layouts of `s`; null where
   * this kernel does not apply (it never forms the probabilities `onProbs` asks for, or hd is too large).
   */
  attention(
    s: FlashShape,
    q: tf.Tensor,
    k: tf.Tensor,
    v: tf.Tensor,
    ranges: AttentionRanges,
    onProbs?: ProbsHook,
  ): tf.Tensor3D | null;
  /**
   * QK-norm, then `attention` of the whole sequence: q and k read from the fused projection qkv [N, L, 3·H·hd]
   * and normed by their per-head LayerNorms (`norms`), v read in place; o [N, L, H·hd]. Differentiable in qkv
   * and the norms' parameters. Null where `attention` would be null (or head sizes it does not take).
   */
  normedAttention?(
    qkv: tf.Tensor3D,
    norms: QkNormParams,
    heads: number,
    ranges: AttentionRanges,
    eps: number,
    onProbs?: ProbsHook,
  ): tf.Tensor3D | null;
  /**
   * r + fc2(GELU(fc1(x))), the MLP joining the residual stream r [rows, D] (x [rows, D], fc1 [4D, D] + [4D],
   * fc2 [D, 4D] + [D]): differentiable in all six. GELU's output is not kept for the backward but recomputed.
   */
  mlpResidual?(r: tf.Tensor2D, x: tf.Tensor2D, w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor): tf.Tensor2D;
  /** r + (c + b) for a product c [rows, cols], bias b and residual stream r (proj, fc2): differentiable in all. */
  biasResidual?(c: tf.Tensor2D, b: tf.Tensor, r: tf.Tensor2D): tf.Tensor2D;
  /** Column sums of [rows, cols] (a linear layer's bias gradient), where the table has a faster one than tfjs's. */
  sumRows?(x: tf.Tensor2D): tf.Tensor1D;
  /**
   * clip + AdamW + EMA of `params`, in place, unless the loss or the gradient norm is not finite. Returns a tensor
   * whose first value is the gradient norm before clipping (read it together with the loss).
   */
  adamwUpdate(
    params: Record<string, tf.Variable>,
    grads: Record<string, tf.Tensor>,
    moments: (name: string) => { m: tf.Variable; v: tf.Variable },
    ema: Record<string, tf.Variable> | null,
    loss: tf.Scalar,
    args: FusedAdamWArgs,
  ): tf.Tensor1D;
}

let table: { backend: string; kernels: FusedKernels } | null = null;
let enabled = true;
let plain2d: () => boolean = () => false;

/** Installs the table of `backend`, which just started (`initBackend`), or none. */
export function setKernelTable(backend: string, t: FusedKernels | null): void {
  table = t ? { backend, kernels: t } : null;
}

/** Turns the table on or off (off: tfjs ops only, the reference the fused kernels are tested against). */
export function setKernelsEnabled(on: boolean): void {
  enabled = on;
}

/** The active backend's fused kernels, or null to compose tfjs ops (also when tfjs was switched to another backend). */
export function kernels(): FusedKernels | null {
  return enabled && table && table.backend === tf.getBackend() ? table.kernels : null;
}

/** Whether the table is switched on (`setKernelsEnabled`). */
export function kernelsEnabled(): boolean {
  return enabled;
}

/** Installs the backend's answer to whether products must be plain 2-D ones without transpose flags. */
export function setPlain2dMatmul(f: () => boolean): void {
  plain2d = f;
}

/** True when matmuls must avoid transpose flags and batching to reach XNNPACK (wasm without native GEMM). */
export function prefersPlain2dMatmul(): boolean {
  return plain2d();
}

/** Key ranges in the form the active table's attention reads (the host array alone without a table). */
export function attentionRanges(host: Int32Array, hd: number): AttentionRanges {
  return kernels()?.ranges(host, hd) ?? { host };
}

/** Frees the device form of attention ranges. */
export function disposeRanges(r: AttentionRanges): void {
  r.device?.dispose();
}
