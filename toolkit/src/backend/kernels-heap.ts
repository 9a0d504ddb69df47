/**
 * The device table of the wasm backend: fused CPU kernels working in place on views of the wasm heap
 * (heap-kernels.ts), from toolkit/native's addon in Node ('native') or from `jsHeapKernels` in a page ('js').
 * Browser-safe.
 */
import * as tf from '@tensorflow/tfjs-core';
import { customOp, elementwiseOp, layerNormOp } from './custom-op';
import { FusedKernels } from './kernels';
import * as native from './heap-kernels';

/**
 * The heap kernels `k` as a table named `name`. `maxAttentionQueries` hands larger attention calls back to tfjs
 * (the JS kernels beat XNNPACK's per-head products only for the few queries of a KV-cache step).
 */
export function heapKernelTable(
  k: native.HeapKernels,
  name: 'native' | 'js',
  opts: { maxAttentionQueries?: number } = {},
): FusedKernels {
  return {
    name,
    layerNorm: layerNormOp({
      forward: (x, w, b, eps) => native.layerNormForward(k, x, w, b, eps),
      backward: (dy, x, w, st) => native.layerNormBackward(k, dy, x, w, st),
    }),
    gelu: k.geluForward
      ? elementwiseOp(
          (x) => native.geluForward(k, x),
          (dy, x) => native.geluBackward(k, dy, x),
        )
      : undefined,
    ranges: (host) => ({ host }),
    attention(s, q, kk, v, ranges, onProbs) {
      if (s.Lq > (opts.maxAttentionQueries ?? Infinity)) return null;
      // the probabilities are a by-product here: recorders are served too
      return customOp<tf.Tensor3D>(([qi, ki, vi], save) => {
        const [o, probs] = native.attentionForward(k, s, qi, ki, vi, ranges.host);
        onProbs?.(probs);
        save([qi, ki, vi, probs]);
        return {
          value: o,
          gradFunc: (dO: tf.Tensor3D, [qs, ks, vs, ps]: tf.Tensor[]) =>
            native.attentionBackward(k, s, qs, ks, vs, ps, dO),
        };
      })(q, kk, v);
    },
    sumRows: (x) => native.sumRows(k, x),
    adamwUpdate(params, grads, moments, ema, loss, args) {
      // the loss is on the host already: a non-finite one leaves everything as it is
      if (!Number.isFinite(loss.dataSync()[0])) return tf.tensor1d([NaN]);
      return tf.tensor1d([native.adamwUpdate(k, params, grads, moments, ema, args)]);
    },
  };
}
