/**
 * Helpers for differentiable ops written by hand (the model's linear layers, the fused kernels' gradients), and
 * the differentiable LayerNorm and GELU every kernel table builds from its forward and backward kernels.
 */
import * as tf from '@tensorflow/tfjs-core';

/** `tf.customGrad` with the inputs as an array (its own typing wants a variadic tensor-or-save list). */
export function customOp<T extends tf.Tensor>(
  f: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: T; gradFunc: (dy: T, saved: tf.Tensor[]) => tf.Tensor[] },
): (...inputs: tf.Tensor[]) => T {
  type Variadic = Parameters<typeof tf.customGrad>[0];
  const g = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) =>
    f(args.slice(0, -1) as tf.Tensor[], args[args.length - 1] as tf.GradSaveFunc)) as unknown as Variadic);
  return (...inputs: tf.Tensor[]) => g(...inputs) as T;
}

/** `make(key)` built once per key (a customGrad wrapper, not rebuilt at every call). */
function memo<K, F>(make: (key: K) => F): (key: K) => F {
  const made = new Map<K, F>();
  return (key) => {
    let f = made.get(key);
    if (!f) made.set(key, (f = make(key)));
    return f;
  };
}

/** A fused LayerNorm's kernels: rows of the last axis, per-row statistics kept for the backward. */
export interface LayerNormKernels {
  forward(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, eps: number): [tf.Tensor2D, tf.Tensor1D];
  backward(dy: tf.Tensor2D, x: tf.Tensor2D, w: tf.Tensor, stats: tf.Tensor1D): tf.Tensor[];
}

/** LayerNorm of [rows, cols] as a differentiable op of (x, weight, bias), one op per eps. */
export function layerNormOp(
  k: LayerNormKernels,
): (x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, eps: number) => tf.Tensor2D {
  const op = memo((eps: number) =>
    customOp<tf.Tensor2D>(([x, w, b], save) => {
      const [y, stats] = k.forward(x as tf.Tensor2D, w, b, eps);
      save([x, w, stats]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor2D, [xs, ws, st]: tf.Tensor[]) =>
          k.backward(dy, xs as tf.Tensor2D, ws, st as tf.Tensor1D),
      };
    }),
  );
  return (x, w, b, eps) => op(eps)(x, w, b);
}

/** An elementwise op as a differentiable op from its forward and backward kernels (GELU). */
export function elementwiseOp(
  forward: (x: tf.Tensor) => tf.Tensor,
  backward: (dy: tf.Tensor, x: tf.Tensor) => tf.Tensor,
): (x: tf.Tensor) => tf.Tensor {
  const op = customOp(([x], save) => {
    save([x]);
    return { value: forward(x), gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => [backward(dy, xs)] };
  });
  return (x) => op(x);
}
