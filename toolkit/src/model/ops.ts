/**
 * The few differentiable building blocks of the model, written so that every backend runs its fast path.
 *
 * On wasm, `BatchMatMul` reaches XNNPACK only for plain 2-D products without transpose flags; anything else
 * falls into a naive loop 10-50x slower (measured: see the README section "Backends"). So on wasm: transposes are
 * explicit, batched products are split into 2-D ones, and linear layers carry hand-written gradients that
 * keep every product on XNNPACK. On other backends the same functions pass transpose flags through. LayerNorm,
 * GELU and the bias gradient take the backend's fused kernel where its table has one (backend/kernels.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { customOp } from '../backend/custom-op';
import { kernels, prefersPlain2dMatmul } from '../backend/kernels';

/** Transposed weights of the current frozen scope (`freezeWeights`), by weight. */
let frozen: { depth: number; t: Map<tf.Tensor, tf.Tensor2D> } | null = null;

/**
 * Treats the model's weights as constants until the returned function is called (a sampling run): backends that
 * want plain 2-D products (wasm without native GEMM, e.g. a web page) then transpose each [out, in] weight once
 * per run instead of at every call. Nests; the outermost release frees the copies.
 */
export function freezeWeights(): () => void {
  frozen ??= { depth: 0, t: new Map() };
  frozen.depth++;
  let released = false;
  return () => {
    if (released || !frozen) return;
    released = true;
    if (--frozen.depth > 0) return;
    tf.dispose([...frozen.t.values()]);
    frozen = null;
  };
}

/** bᵀ, from the frozen scope's copies where b is a weight there. */
function transposed(b: tf.Tensor2D): tf.Tensor2D {
  if (!frozen || !(b instanceof tf.Variable)) return tf.transpose(b);
  let t = frozen.t.get(b);
  if (!t) frozen.t.set(b, (t = tf.keep(tf.transpose(b))));
  return t;
}

/** 2-D product a·b with optional transposes, the fastest way for the active backend. */
export function mm(a: tf.Tensor2D, b: tf.Tensor2D, transposeA = false, transposeB = false): tf.Tensor2D {
  if (!prefersPlain2dMatmul()) return tf.matMul(a, b, transposeA, transposeB);
  return tf.tidy(() => tf.matMul(transposeA ? tf.transpose(a) : a, transposeB ? transposed(b) : b));
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
  const fused = kernels()?.sumRows;
  if (fused) return fused(x);
  if (!prefersPlain2dMatmul()) return tf.sum(x, 0);
  return tf.tidy(() => tf.reshape(tf.matMul(tf.ones([1, x.shape[0]]), x), [x.shape[1]]));
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

/** x as rows [-1, in] for `weight` [out, in], and the shape of the layer's output. */
function asRows(x: tf.Tensor, weight: tf.Tensor): [tf.Tensor2D, number[]] {
  const inF = x.shape[x.rank - 1];
  const outF = weight.shape[0];
  if (weight.shape[1] !== inF) throw new Error(`linear: input has ${inF} features, weight is [${weight.shape}]`);
  return [tf.reshape(x, [-1, inF]), [...x.shape.slice(0, -1), outF]];
}

/** `nn.Linear` on the last axis of x, any rank: weight [out, in], optional bias [out]. */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [x2, shape] = asRows(x, weight);
    return tf.reshape(bias ? linearBias(x2, weight, bias) : linearNoBias(x2, weight), shape);
  });
}

/**
 * r + fc2(GELU(fc1(x))): a block's MLP joining the residual stream r, as one op where the backend has it (bias,
 * GELU and the residual add after the products; GELU's output recomputed in the backward, not kept).
 */
export function mlpResidual(
  r: tf.Tensor,
  x: tf.Tensor,
  fc1: { weight: tf.Tensor; bias: tf.Tensor },
  fc2: { weight: tf.Tensor; bias: tf.Tensor },
): tf.Tensor {
  const fused = kernels()?.mlpResidual;
  if (!fused) return tf.tidy(() => linearResidual(r, geluTanh(linear(x, fc1.weight, fc1.bias)), fc2.weight, fc2.bias));
  const D = r.shape[r.rank - 1];
  if (fc2.weight.shape[0] !== D) throw new Error(`mlp: fc2 gives ${fc2.weight.shape[0]} features, the stream has ${D}`);
  return tf.tidy(() => {
    const [x2] = asRows(x, fc1.weight);
    const y = fused(tf.reshape(r, [-1, D]), x2, fc1.weight, fc1.bias, fc2.weight, fc2.bias);
    return tf.reshape(y, r.shape);
  });
}

/** r + (x·Wᵀ + b): proj and fc2 joining the residual stream r, in one pass after the product where the backend has it. */
export function linearResidual(r: tf.Tensor, x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const fused = kernels()?.biasResidual;
  if (!fused) return tf.tidy(() => tf.add(r, linear(x, weight, bias)));
  return tf.tidy(() => {
    const [x2, shape] = asRows(x, weight);
    return tf.reshape(
      fused(linearNoBias(x2, weight) as tf.Tensor2D, bias, tf.reshape(r, [-1, shape[shape.length - 1]])),
      shape,
    );
  });
}

/** `nn.LayerNorm` over the last axis (PyTorch's eps 1e-5, biased variance). */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps = 1e-5): tf.Tensor {
  const k = kernels();
  if (k)
    return tf.tidy(() => tf.reshape(k.layerNorm(tf.reshape(x, [-1, x.shape[x.rank - 1]]), weight, bias, eps), x.shape));
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true);
    const xc = tf.sub(x, mean);
    const variance = tf.mean(tf.square(xc), -1, true);
    return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), weight), bias);
  });
}

/** GELU, tanh approximation (`nn.GELU(approximate="tanh")`), written as x·sigmoid(2z): the same function. */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  const gelu = kernels()?.gelu;
  if (gelu) return gelu(x);
  return tf.tidy(() => {
    const z = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), 2 * Math.sqrt(2 / Math.PI));
    return tf.mul(x, tf.sigmoid(z));
  });
}

/** SiLU, x·sigmoid(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}
