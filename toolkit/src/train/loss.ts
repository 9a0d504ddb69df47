/**
 * The training loss of the official `train.py`: `(mse * ar_weights.reshape(1, -1, 1)).mean()`, a plain mean
 * over batch, tokens and channels, not renormalised by the weights.
 */
import * as tf from '@tensorflow/tfjs-core';

/** mean(mse[N, L, d] * w[L]) with per-token AR weights in shuffled order. */
export function weightedLoss(mse: tf.Tensor3D, arWeights: Float32Array): tf.Scalar {
  const L = mse.shape[1];
  if (arWeights.length !== L) throw new Error(`got ${arWeights.length} AR weights for ${L} tokens`);
  return tf.tidy(() => tf.mean(tf.mul(mse, tf.tensor3d(arWeights, [1, L, 1]))) as tf.Scalar);
}
