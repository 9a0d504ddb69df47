/** Helpers for differentiable ops written by hand (the model's linear layers, the fused kernels' gradients). */
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
export function memo<K, F>(make: (key: K) => F): (key: K) => F {
  const made = new Map<K, F>();
  return (key) => {
    let f = made.get(key);
    if (!f) made.set(key, (f = make(key)));
    return f;
  };
}
