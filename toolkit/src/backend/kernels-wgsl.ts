/**
 * The device table of the webgpu backend: the project's WGSL kernels (backend/wgsl), recorded into
 * tfjs-backend-webgpu's own command stream. Browser-safe.
 */
import * as tf from '@tensorflow/tfjs-core';
import { customOp, elementwiseOp, layerNormOp } from './custom-op';
import { AttentionRanges, FlashShape, FusedKernels } from './kernels';
import type { WebGPUBackendLike } from './webgpu-types';
import { fusedAdamWUpdate } from './wgsl/adamw';
import { flashAttentionBackward, flashAttentionForward, MAX_HEAD_DIM, rangesTensor } from './wgsl/attention';
import { geluBackward, geluForward } from './wgsl/gelu';
import { layerNormBackward, layerNormForward } from './wgsl/layernorm';

/** The WGSL kernels of `gpu` as a table. */
export function wgslKernels(gpu: WebGPUBackendLike): FusedKernels {
  // flash attention as a differentiable op of (q, k, v) for fixed shapes, layouts and key ranges
  const flash = (s: FlashShape, ranges: tf.Tensor) =>
    customOp<tf.Tensor3D>(([q, k, v], save) => {
      const [o, lse] = flashAttentionForward(gpu, s, q, k, v, ranges as tf.Tensor1D);
      save([q, k, v, o, lse]);
      return {
        value: o,
        gradFunc: (dO: tf.Tensor3D, [qs, ks, vs, os, ls]: tf.Tensor[]) =>
          flashAttentionBackward(gpu, s, qs, ks, vs, ranges as tf.Tensor1D, os, ls, dO),
      };
    });
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
    adamwUpdate: (params, grads, moments, ema, loss, args) =>
      fusedAdamWUpdate(gpu, params, grads, moments, ema, loss, args),
  };
}
