/**
 * `GeneralizedCausalAttention` of the official `models.py`: fused qkv without bias, per-head LayerNorm on q
 * and k (QK-norm, before q is scaled), softmax(q·kᵀ·scale + additive mask)·v, then `proj`.
 * Two entry points, as in the official code: a masked full-sequence forward for training, and a KV-cache
 * forward for inference where the current chunk attends, unmasked, to the cache plus itself.
 */
import * as tf from '@tensorflow/tfjs';
import { bmm, customOp, layerNorm, linear } from './ops';

export type Params = Record<string, tf.Tensor>;

/** Per-layer keys and values of everything already in the context: [N, heads, Lk, headDim] each. */
export interface LayerCache {
  k: tf.Tensor4D | null;
  v: tf.Tensor4D | null;
}

/** Called with the attention probabilities [N, heads, Lq, Lk] of one layer; copy what you need, do not keep. */
export type ProbsHook = (probs: tf.Tensor4D) => void;

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

/** Splits fused qkv [N, L, 3D] into per-head q (normed, scaled), k (normed) and v, each [N, H, L, hd]. */
function qkvHeads(p: Params, pre: string, x: tf.Tensor3D, numHeads: number): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
  const [N, L, D] = x.shape;
  const hd = D / numHeads;
  const qkv = linear(x, p[`${pre}.qkv.weight`]);
  const heads = tf.split(qkv, 3, -1).map((t) => tf.transpose(tf.reshape(t, [N, L, numHeads, hd]), [0, 2, 1, 3]));
  const q = tf.mul(layerNorm(heads[0], p[`${pre}.q_norm.weight`], p[`${pre}.q_norm.bias`]), Math.pow(hd, -0.5));
  const k = layerNorm(heads[1], p[`${pre}.k_norm.weight`], p[`${pre}.k_norm.bias`]);
  return [q as tf.Tensor4D, k as tf.Tensor4D, heads[2] as tf.Tensor4D];
}

/** Attention of q [N,H,Lq,hd] over k, v [N,H,Lk,hd], merged back to [N, Lq, D] and projected. */
function attend(
  p: Params,
  pre: string,
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
  const o = attentionCore(mask, hook)(flat(q, Lq), flat(k, Lk), flat(v, Lk));
  const merged = tf.reshape(tf.transpose(tf.reshape(o, [N, H, Lq, hd]), [0, 2, 1, 3]), [N, Lq, H * hd]);
  return linear(merged, p[`${pre}.proj.weight`], p[`${pre}.proj.bias`]) as tf.Tensor3D;
}

/** Training path (`_forward`): the whole sequence under the additive generalized causal mask [S, S]. */
export function maskedAttention(
  p: Params,
  pre: string,
  x: tf.Tensor3D,
  numHeads: number,
  mask: tf.Tensor2D,
  onProbs?: ProbsHook,
): tf.Tensor3D {
  return tf.tidy(() => {
    const [q, k, v] = qkvHeads(p, pre, x, numHeads);
    return attend(p, pre, q, k, v, mask, onProbs);
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
): tf.Tensor3D {
  return tf.tidy(() => {
    const [q, curK, curV] = qkvHeads(p, pre, x, numHeads);
    const k = cache.k ? (tf.concat([cache.k, curK], 2) as tf.Tensor4D) : curK;
    const v = cache.v ? (tf.concat([cache.v, curV], 2) as tf.Tensor4D) : curV;
    if (update) {
      // the cache outlives this call: keep the new tensors, free the ones they replace
      tf.dispose([cache.k ?? [], cache.v ?? []].flat());
      cache.k = tf.keep(k);
      cache.v = tf.keep(v);
    }
    return attend(p, pre, q, k, v, null, onProbs);
  });
}
