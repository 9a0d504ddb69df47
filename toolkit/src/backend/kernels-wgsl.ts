/**
 * The device table of the webgpu backend: the project's WGSL kernels (backend/wgsl), recorded into
 * tfjs-backend-webgpu's own command stream. Browser-safe.
 */
import * as tf from '@tensorflow/tfjs-core';
import { customOp, elementwiseOp, layerNormOp } from './custom-op';
import { AttentionRanges, FlashShape, FusedKernels, fusedQkvPart, QkNormParams, selfAttentionShape } from './kernels';
import type { WebGPUBackendLike } from './webgpu-types';
import { fusedAdamWUpdate } from './wgsl/adamw';
import { flashAttentionBackward, flashAttentionForward, MAX_HEAD_DIM, rangesTensor } from './wgsl/attention';
import { geluBackward, geluBackwardRecomputing, geluForward } from './wgsl/gelu';
import { biasGeluForward, biasResidualForward, sumRows } from './wgsl/epilogue';
import { qkNormBackward, qkNormForward } from './wgsl/qk-norm';
import { tensorCoreAttentionBackward, tensorCoreAttentionForward } from './wgsl/tc-attention';
import { layerNormBackward, layerNormForward } from './wgsl/layernorm';

type T = tf.Tensor;

/** The WGSL kernels of `gpu` as a table. */
export function wgslKernels(gpu: WebGPUBackendLike): FusedKernels {
  // flash attention on tensor cores where the matmuls run there and the head size allows, else in fp32
  const attend = (s: FlashShape, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, ranges: tf.Tensor1D) =>
    tensorCoreAttentionForward(gpu, s, q, k, v, ranges) ?? flashAttentionForward(gpu, s, q, k, v, ranges);
  const attendBackward = (s: FlashShape, q: T, k: T, v: T, ranges: tf.Tensor1D, o: T, lse: T, dO: T) =>
    tensorCoreAttentionBackward(gpu, s, q, k, v, ranges, o, lse, dO) ??
    flashAttentionBackward(gpu, s, q, k, v, ranges, o, lse, dO);
  // flash attention as a differentiable op of (q, k, v) for fixed shapes, layouts and key ranges
  const flash = (s: FlashShape, ranges: tf.Tensor) =>
    customOp<tf.Tensor3D>(([q, k, v], save) => {
      const [o, lse] = attend(s, q, k, v, ranges as tf.Tensor1D);
      save([q, k, v, o, lse]);
      return {
        value: o,
        gradFunc: (dO: tf.Tensor3D, [qs, ks, vs, os, ls]: tf.Tensor[]) =>
          attendBackward(s, qs, ks, vs, ranges as tf.Tensor1D, os, ls, dO),
      };
    });
  // QK-norm + flash attention as one differentiable op of (qkv, q_norm, k_norm): v is read from qkv in place,
  // and the backward writes all three parts of the qkv gradient into one tensor (no slices, no concat)
  const normed = (s: FlashShape, ranges: tf.Tensor, eps: number) =>
    customOp<tf.Tensor3D>(([qkv, qw, qb, kw, kb], save) => {
      const qs = { rows: s.N * s.Lq, H: s.H, hd: s.hd };
      const [q, k, stats] = qkNormForward(gpu, qkv, { qw, qb, kw, kb }, qs, eps);
      const [o, lse] = attend(s, q, k, qkv, ranges as tf.Tensor1D);
      save([qkv, q, k, o, lse, stats, qw, kw]);
      return {
        value: o,
        gradFunc: (dO: tf.Tensor3D, [qkvS, qS, kS, oS, lseS, st, qwS, kwS]: tf.Tensor[]) => {
          // dv lands in the v columns of a [N, L, 3D] gradient (v's layout); QK-norm's backward fills the rest
          const [dq, dk, dqkv] = attendBackward(s, qS, kS, qkvS, ranges as tf.Tensor1D, oS, lseS, dO);
          const g = qkNormBackward(gpu, { dq, dk, qkv: qkvS, qw: qwS, kw: kwS, stats: st, dqkv }, qs);
          tf.dispose([dq, dk]);
          return [dqkv, g.dqw, g.dqb, g.dkw, g.dkb];
        },
      };
    });
  // the MLP with its epilogues: GELU's output g [rows, 4D], the largest activation, is recomputed from the
  // pre-activation h in the backward (one elementwise pass) instead of being kept from forward to backward
  const mlpResidual = customOp<tf.Tensor2D>(([r, x, w1, b1, w2, b2], save) => {
    const c1 = tf.matMul(x, w1, false, true);
    const [h, g] = biasGeluForward(gpu, c1, b1);
    const c2 = tf.matMul(g, w2, false, true);
    const y = biasResidualForward(gpu, c2, b2, r);
    tf.dispose([c1, g, c2]);
    save([x, w1, w2, h]);
    return {
      value: y as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor2D, [xs, w1s, w2s, hs]: tf.Tensor[]) =>
        tf.tidy(() => {
          // GELU's output and gradient from one pass over h: dh overwrites dg (the gradient of GELU's output),
          // and the recomputed g, the only other [rows, 4D] temporary, is freed once dW2 is formed
          const dh = tf.matMul(dy, w2s);
          const gs = geluBackwardRecomputing(gpu, dh, hs);
          const dw2 = tf.matMul(dy, gs, true, false);
          gs.dispose();
          return [
            tf.clone(dy),
            tf.matMul(dh, w1s),
            tf.matMul(dh, xs, true, false),
            sumRows(gpu, dh as tf.Tensor2D),
            dw2,
            sumRows(gpu, dy),
          ];
        }),
    };
  });
  const biasResidual = customOp<tf.Tensor2D>(([c, b, r]) => ({
    value: biasResidualForward(gpu, c, b, r) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor2D) => [tf.clone(dy), sumRows(gpu, dy), tf.clone(dy)],
  }));
  return {
    name: 'wgsl',
    layerNorm: layerNormOp({
      forward: (x, w, b, eps) => layerNormForward(gpu, x, w, b, eps),
      backward: (dy, x, w, st) => layerNormBackward(gpu, dy, x, w, st),
    }),
    gelu: elementwiseOp(
      (x) => geluForward(gpu, x),
      (dy, x) => geluBackward(gpu, dy, x),
    ),
    ranges: (host, hd) => ({ host, device: rangesTensor(host, hd) }),
    attention(s, q, k, v, ranges: AttentionRanges, onProbs) {
      // the probabilities are never formed here, and the tiles hold head sizes up to MAX_HEAD_DIM
      if (onProbs || s.hd > MAX_HEAD_DIM) return null;
      if (ranges.device) return flash(s, ranges.device)(q, k, v);
      return tf.tidy(() => flash(s, rangesTensor(ranges.host, s.hd))(q, k, v));
    },
    normedAttention(qkv, norms: QkNormParams, H, ranges: AttentionRanges, eps, onProbs) {
      const [N, L, D3] = qkv.shape;
      const hd = D3 / 3 / H;
      if (onProbs || hd > MAX_HEAD_DIM) return null;
      const s = selfAttentionShape(N, H, L, hd, fusedQkvPart(H, L, hd, 2));
      const run = (r: tf.Tensor) => normed(s, r, eps)(qkv, norms.qw, norms.qb, norms.kw, norms.kb);
      return ranges.device ? run(ranges.device) : tf.tidy(() => run(rangesTensor(ranges.host, hd)));
    },
    mlpResidual: (r, x, w1, b1, w2, b2) => mlpResidual(r, x, w1, b1, w2, b2),
    biasResidual: (c, b, r) => biasResidual(c, b, r),
    sumRows: (x) => sumRows(gpu, x),
    adamwUpdate: (params, grads, moments, ema, loss, args) =>
      fusedAdamWUpdate(gpu, params, grads, moments, ema, loss, args),
  };
}
