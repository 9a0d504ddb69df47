/**
 * `GeneralizedCausalAttention` of the official `models.py`: fused qkv without bias, per-head LayerNorm on q
 * and k (QK-norm, before q is scaled), softmax(q·kᵀ·scale + additive mask)·v, then `proj`.
 * Two entry points, as in the official code: a masked full-sequence forward for training, and a KV-cache
 * forward for inference where the current chunk attends, unmasked, to the cache plus itself.
 * On webgpu both run as flash-style WGSL kernels (backend/wgsl/attention) unless probabilities are recorded, the
 * training one together with QK-norm as one op reading q, k and v in place from qkv; on wasm as one native kernel
 * per direction (backend/native-kernels), which also hands probabilities to a hook.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  AttentionRanges,
  FlashShape,
  headMajor,
  kernels,
  ProbsHook,
  QkNormParams,
  selfAttentionShape,
} from '../backend/kernels';
import { fullRanges } from '../factorization/mask';
import { customOp } from '../backend/custom-op';
import { bmm, layerNorm, linear, linearResidual } from './ops';

export type Params = Record<string, tf.Tensor>;

/** Per-layer keys and values of everything already in the context: [N, heads, Lk, headDim] each. */
export interface LayerCache {
  k: tf.Tensor4D | null;
  v: tf.Tensor4D | null;
}

export type { ProbsHook };

/** softmax(q·kᵀ + mask)·v on [n, Lq, hd] x [n, Lk, hd], with a hand-written gradient that keeps products 2-D. */
function attentionCore(mask: tf.Tensor2D | null, onProbs: ((p: tf.Tensor3D) => void) | undefined) {
  return customOp(([q, k, v], save) => {
    const p = tf.tidy(() => {
      const s = bmm(q as tf.Tensor3D, k as tf.Tensor3D, false, true);
      return tf.softmax(mask ? tf.add(s, mask) : s) as tf.Tensor3D;
    });
    onProbs?.(p);
    save([q, k, v, p]);
    return {
      value: bmm(p, v as tf.Tensor3D) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [qs, ks, vs, ps] = saved as tf.Tensor3D[];
          const dO = dy as tf.Tensor3D;
          const dP = bmm(dO, vs, false, true);
          const dS = tf.mul(ps, tf.sub(dP, tf.sum(tf.mul(dP, ps), -1, true))) as tf.Tensor3D;
          return [bmm(dS, ks), bmm(dS, qs, true, false), bmm(ps, dO, true, false)];
        }),
    };
  });
}

/** The fused projection qkv [N, L, 3D] (no bias). */
function qkvOf(p: Params, pre: string, x: tf.Tensor3D): tf.Tensor3D {
  return linear(x, p[`${pre}.qkv.weight`]) as tf.Tensor3D;
}

/** `q_norm` and `k_norm`'s parameters. */
const qkNorms = (p: Params, pre: string): QkNormParams => ({
  qw: p[`${pre}.q_norm.weight`],
  qb: p[`${pre}.q_norm.bias`],
  kw: p[`${pre}.k_norm.weight`],
  kb: p[`${pre}.k_norm.bias`],
});

/**
 * qkv [N, L, 3D] -> q, k (each normed by its per-head LayerNorm, q not yet scaled) and v, each
 * [N, L, H, hd] (token-major), or [N, H, L, hd] with `headMajor`.
 */
function splitNormed(
  qkv: tf.Tensor3D,
  norms: QkNormParams,
  numHeads: number,
  headMajor: boolean,
): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
  const [N, L, D3] = qkv.shape;
  const hd = D3 / 3 / numHeads;
  const [q, k, v] = tf.split(qkv, 3, -1).map((t) => tf.reshape(t, [N, L, numHeads, hd]));
  const heads = [layerNorm(q, norms.qw, norms.qb), layerNorm(k, norms.kw, norms.kb), v];
  return heads.map((t) => (headMajor ? tf.transpose(t, [0, 2, 1, 3]) : t)) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
}

/** The tfjs path: q, k, v [N, H, L, hd], softmax over the additive mask, merged back to [N, Lq, D]. */
function attend(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  mask: tf.Tensor2D | null,
  onProbs?: ProbsHook,
): tf.Tensor3D {
  const [N, H, Lq, hd] = q.shape;
  const Lk = k.shape[2];
  const flat = (t: tf.Tensor4D, len: number) => tf.reshape(t, [N * H, len, hd]) as tf.Tensor3D;
  const hook = onProbs ? (pr: tf.Tensor3D) => onProbs(tf.reshape(pr, [N, H, Lq, Lk]) as tf.Tensor4D) : undefined;
  const o = attentionCore(mask, hook)(flat(tf.mul(q, Math.pow(hd, -0.5)) as tf.Tensor4D, Lq), flat(k, Lk), flat(v, Lk));
  return tf.reshape(tf.transpose(tf.reshape(o, [N, H, Lq, hd]), [0, 2, 1, 3]), [N, Lq, H * hd]);
}

/** `proj` of the merged heads [N, L, D], added to `residual` when given (one pass after the product). */
function project(p: Params, pre: string, o: tf.Tensor3D, residual?: tf.Tensor3D): tf.Tensor3D {
  const [w, b] = [p[`${pre}.proj.weight`], p[`${pre}.proj.bias`]];
  return (residual ? linearResidual(residual, o, w, b) : linear(o, w, b)) as tf.Tensor3D;
}

/** The generalized causal mask in its forms: additive [S, S] for the tfjs path, key ranges for the fused kernels. */
export interface MaskedContext {
  mask: tf.Tensor2D;
  /** `getAttnRanges(...)`, in the form the backend's attention kernel reads. */
  ranges: AttentionRanges;
}

/**
 * Training path (`_forward`): the whole sequence under the additive generalized causal mask [S, S]. With
 * `residual`, returns residual + attention (the block's residual add, fused into proj's epilogue where the
 * backend has one).
 */
export function maskedAttention(
  p: Params,
  pre: string,
  x: tf.Tensor3D,
  numHeads: number,
  ctx: MaskedContext,
  onProbs?: ProbsHook,
  residual?: tf.Tensor3D,
): tf.Tensor3D {
  return tf.tidy(() => {
    const [N, L, D] = x.shape;
    const hd = D / numHeads;
    const qkv = qkvOf(p, pre, x);
    const norms = qkNorms(p, pre);
    const k = kernels();
    const o =
      k?.normedAttention?.(qkv, norms, numHeads, ctx.ranges, 1e-5, onProbs) ??
      k?.attention(
        selfAttentionShape(N, numHeads, L, hd),
        ...splitNormed(qkv, norms, numHeads, false),
        ctx.ranges,
        onProbs,
      ) ??
      attend(...splitNormed(qkv, norms, numHeads, true), ctx.mask, onProbs);
    return project(p, pre, o, residual);
  });
}

/**
 * Inference path (`_forward_kv_cache`): the chunk attends to cache + itself with no mask. With `update`, the
 * cache keeps the concatenation (old tensors are disposed); otherwise it is left untouched.
 */
export function cachedAttention(
  p: Params,
  pre: string,
  x: tf.Tensor3D,
  numHeads: number,
  cache: LayerCache,
  update: boolean,
  onProbs?: ProbsHook,
  residual?: tf.Tensor3D,
): tf.Tensor3D {
  return tf.tidy(() => {
    const [N, Lq, D] = x.shape;
    const hd = D / numHeads;
    const [q, curK, curV] = splitNormed(qkvOf(p, pre, x), qkNorms(p, pre), numHeads, true);
    const k = cache.k ? (tf.concat([cache.k, curK], 2) as tf.Tensor4D) : curK;
    const v = cache.v ? (tf.concat([cache.v, curV], 2) as tf.Tensor4D) : curV;
    if (update) {
      // the cache outlives this call: keep the new tensors, free the ones they replace
      tf.dispose([cache.k ?? [], cache.v ?? []].flat());
      cache.k = tf.keep(k);
      cache.v = tf.keep(v);
    }
    const fused = kernels();
    if (!fused) return project(p, pre, attend(q, k, v, null, onProbs), residual);
    const Lk = k.shape[2];
    const s: FlashShape = {
      N,
      H: numHeads,
      Lq,
      Lk,
      hd,
      scale: Math.pow(hd, -0.5),
      q: headMajor(numHeads, Lq, hd),
      k: headMajor(numHeads, Lk, hd),
      v: headMajor(numHeads, Lk, hd),
    };
    const o = fused.attention(s, q, k, v, fused.ranges(fullRanges(Lq, Lk), hd), onProbs);
    return project(p, pre, o ?? attend(q, k, v, null, onProbs), residual);
  });
}
