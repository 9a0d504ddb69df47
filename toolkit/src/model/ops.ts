/**
 * The few differentiable building blocks of the model, written so that every backend runs its fast path.
 *
 * On wasm, `BatchMatMul` reaches XNNPACK only for plain 2-D products without transpose flags; anything else
 * falls into a naive loop 10-50x slower (measured: see the README section "Backends"). So on wasm: transposes are
 * explicit, batched products are split into 2-D ones, and linear layers carry hand-written gradients that
 * keep every product on XNNPACK. On other backends the same functions pass transpose flags through. LayerNorm
 * and GELU run as fused kernels unless they are switched off: WGSL on webgpu (backend/wgsl), toolkit/native on
 * wasm (backend/native-kernels).
 */
import * as tf from '@tensorflow/tfjs';
import { fusedKernels, nativeKernels, NativeKernels, prefersPlain2dMatmul } from '../backend';
import * as native from '../backend/native-kernels';
import type { WebGPUBackendLike } from '../backend/webgpu';
import * as wgslGelu from '../backend/wgsl/gelu';
import * as wgslLayerNorm from '../backend/wgsl/layernorm';

/** 2-D product a·b with optional transposes, the fastest way for the active backend. */
export function mm(a: tf.Tensor2D, b: tf.Tensor2D, transposeA = false, transposeB = false): tf.Tensor2D {
  if (!prefersPlain2dMatmul()) return tf.matMul(a, b, transposeA, transposeB);
  return tf.tidy(() => tf.matMul(transposeA ? tf.transpose(a) : a, transposeB ? tf.transpose(b) : b));
}

/** Batched product over the first axis: [n, M, K] x [n, K, N] (with optional transposes of the last two axes). */
export function bmm(a: tf.Tensor3D, b: tf.Tensor3D, transposeA = false, transposeB = false): tf.Tensor3D {
  if (!prefersPlain2dMatmul()) return tf.matMul(a, b, transposeA, transposeB);
  return tf.tidy(() => {
    const A = transposeA ? tf.transpose(a, [0, 2, 1]) : a;
    const B = transposeB ? tf.transpose(b, [0, 2, 1]) : b;
    const as = tf.unstack(A) as tf.Tensor2D[];
    const bs = tf.unstack(B) as tf.Tensor2D[];
    return tf.stack(as.map((ai, i) => tf.matMul(ai, bs[i]))) as tf.Tensor3D;
  });
}

/**
 * Column sums of a 2-D tensor: in one pass with the native kernels, else on wasm as ones·X, which stays on
 * XNNPACK instead of transposing to reduce.
 */
function sumRows(x: tf.Tensor2D): tf.Tensor1D {
  const cpu = nativeKernels();
  if (cpu) return native.sumRows(cpu, x);
  if (!prefersPlain2dMatmul()) return tf.sum(x, 0);
  return tf.tidy(() => tf.reshape(tf.matMul(tf.ones([1, x.shape[0]]), x), [x.shape[1]]));
}

/** `tf.customGrad` with the inputs as an array (its own typing wants a variadic tensor-or-save list). */
export function customOp<T extends tf.Tensor>(
  f: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: T; gradFunc: (dy: T, saved: tf.Tensor[]) => tf.Tensor[] },
): (...inputs: tf.Tensor[]) => T {
  type Variadic = Parameters<typeof tf.customGrad>[0];
  const g = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) =>
    f(args.slice(0, -1) as tf.Tensor[], args[args.length - 1] as tf.GradSaveFunc)) as unknown as Variadic);
  return (...inputs: tf.Tensor[]) => g(...inputs) as T;
}

// y = x·Wᵀ + b with W in PyTorch's [out, in] layout, so official weights are used as they are.
const linearBias = customOp(([x, w, b], save) => {
  save([x, w]);
  const value = tf.add(mm(x as tf.Tensor2D, w as tf.Tensor2D, false, true), b);
  return {
    value,
    gradFunc: (dy: tf.Tensor, [xs, ws]: tf.Tensor[]) =>
      tf.tidy(() => [
        mm(dy as tf.Tensor2D, ws as tf.Tensor2D),
        mm(dy as tf.Tensor2D, xs as tf.Tensor2D, true, false),
        sumRows(dy as tf.Tensor2D),
      ]),
  };
});

const linearNoBias = customOp(([x, w], save) => {
  save([x, w]);
  return {
    value: mm(x as tf.Tensor2D, w as tf.Tensor2D, false, true) as tf.Tensor,
    gradFunc: (dy: tf.Tensor, [xs, ws]: tf.Tensor[]) =>
      tf.tidy(() => [mm(dy as tf.Tensor2D, ws as tf.Tensor2D), mm(dy as tf.Tensor2D, xs as tf.Tensor2D, true, false)]),
  };
});

/** `nn.Linear` on the last axis of x, any rank: weight [out, in], optional bias [out]. */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const inF = x.shape[x.rank - 1];
  const outF = weight.shape[0];
  if (weight.shape[1] !== inF) throw new Error(`linear: input has ${inF} features, weight is [${weight.shape}]`);
  return tf.tidy(() => {
    const x2 = tf.reshape(x, [-1, inF]);
    const y = bias ? linearBias(x2, weight, bias) : linearNoBias(x2, weight);
    return tf.reshape(y, [...x.shape.slice(0, -1), outF]);
  });
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

/** A fused LayerNorm: rows of the last axis, per-row statistics kept for the backward. */
interface LayerNormKernels {
  forward(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): [tf.Tensor2D, tf.Tensor1D];
  backward(dy: tf.Tensor2D, x: tf.Tensor2D, w: tf.Tensor, stats: tf.Tensor1D): tf.Tensor[];
}

const layerNormOp = (k: LayerNormKernels) =>
  customOp(([x, w, b], save) => {
    const [y, stats] = k.forward(x as tf.Tensor2D, w, b);
    save([x, w, stats]);
    return {
      value: y as tf.Tensor,
      gradFunc: (dy: tf.Tensor, [xs, ws, st]: tf.Tensor[]) =>
        k.backward(dy as tf.Tensor2D, xs as tf.Tensor2D, ws, st as tf.Tensor1D),
    };
  });

const gpuLayerNorm = memo((gpu: WebGPUBackendLike) =>
  memo((eps: number) =>
    layerNormOp({
      forward: (x, w, b) => wgslLayerNorm.layerNormForward(gpu, x, w, b, eps),
      backward: (dy, x, w, st) => wgslLayerNorm.layerNormBackward(gpu, dy, x, w, st),
    }),
  ),
);

const cpuLayerNorm = memo((cpu: NativeKernels) =>
  memo((eps: number) =>
    layerNormOp({
      forward: (x, w, b) => native.layerNormForward(cpu, x, w, b, eps),
      backward: (dy, x, w, st) => native.layerNormBackward(cpu, dy, x, w, st),
    }),
  ),
);

/** The fused LayerNorm of the active backend, or null to compose it from tfjs ops. */
function fusedLayerNorm(eps: number): ((x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor) | null {
  const gpu = fusedKernels();
  if (gpu) return gpuLayerNorm(gpu)(eps);
  const cpu = nativeKernels();
  return cpu ? cpuLayerNorm(cpu)(eps) : null;
}

/** `nn.LayerNorm` over the last axis (PyTorch's eps 1e-5, biased variance). */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps = 1e-5): tf.Tensor {
  const fused = fusedLayerNorm(eps);
  if (fused) return tf.tidy(() => tf.reshape(fused(tf.reshape(x, [-1, x.shape[x.rank - 1]]), weight, bias), x.shape));
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true);
    const xc = tf.sub(x, mean);
    const variance = tf.mean(tf.square(xc), -1, true);
    return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), weight), bias);
  });
}

/** GELU, tanh approximation (`nn.GELU(approximate="tanh")`), written as x·sigmoid(2z): the same function. */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  const gpu = fusedKernels();
  if (gpu) return gpuGelu(gpu)(x);
  const cpu = nativeKernels();
  if (cpu) return cpuGelu(cpu)(x);
  return tf.tidy(() => {
    const z = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), 2 * Math.sqrt(2 / Math.PI));
    return tf.mul(x, tf.sigmoid(z));
  });
}

const geluOp = (forward: (x: tf.Tensor) => tf.Tensor, backward: (dy: tf.Tensor, x: tf.Tensor) => tf.Tensor) =>
  customOp(([x], save) => {
    save([x]);
    return { value: forward(x), gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => [backward(dy, xs)] };
  });

const gpuGelu = memo((gpu: WebGPUBackendLike) =>
  geluOp(
    (x) => wgslGelu.geluForward(gpu, x),
    (dy, x) => wgslGelu.geluBackward(gpu, dy, x),
  ),
);

const cpuGelu = memo((cpu: NativeKernels) =>
  geluOp(
    (x) => native.geluForward(cpu, x),
    (dy, x) => native.geluBackward(cpu, dy, x),
  ),
);

/** SiLU, x·sigmoid(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}
