/**
 * GELU (tanh approximation) as x·sigmoid(2z), z = √(2/π)(x + 0.044715x³), and its derivative
 * s + x·s·(1 − s)·2√(2/π)(1 + 3·0.044715x²), one elementwise dispatch each (tfjs ops: 7 and ~12).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackendLike } from '../webgpu-types';
import { asTensor, emptyTensor, gridStrideGroups, uniformBlock, WgslKernel } from './runner';

const WG = 256;
/** WGSL: `gelu(v)`, `sigOf(v)` (the sigmoid it scales v by) and `dgelu(v, s)`, its derivative from that sigmoid. */
export const GELU_WGSL = /* wgsl */ `
const K = ${2 * Math.sqrt(2 / Math.PI)};
fn sig(z: f32) -> f32 { return 1.0 / (1.0 + exp(-z)); }
fn sigOf(v: f32) -> f32 { return sig((v + v * v * v * 0.044715) * K); }
fn gelu(v: f32) -> f32 { return v * sigOf(v); }
fn dgelu(v: f32, s: f32) -> f32 { return s + v * s * (1.0 - s) * K * (1.0 + 3.0 * 0.044715 * v * v); }`;
const COMMON = /* wgsl */ `
struct U { n: u32 }
${GELU_WGSL}`;

/** An elementwise kernel over u.n values: f32 storage arrays `bindings` (name, access), in order; `body` for element i. */
const elementwise = (name: string, bindings: [string, 'read' | 'read_write'][], body: string) =>
  new WgslKernel(
    name,
    /* wgsl */ `
${bindings.map(([array, access], i) => `@group(0) @binding(${i}) var<storage, ${access}> ${array}: array<f32>;`).join('\n')}
@group(0) @binding(${bindings.length}) var<uniform> u: U;
${COMMON}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < u.n; i = i + nwg.x * ${WG}u) {
    ${body}
  }
}`,
  );

const forward = elementwise(
  'gelu',
  [
    ['x', 'read'],
    ['y', 'read_write'],
  ],
  'y[i] = gelu(x[i]);',
);

const backward = elementwise(
  'geluGrad',
  [
    ['dy', 'read'],
    ['x', 'read'],
    ['dx', 'read_write'],
  ],
  'let v = x[i];\n    dx[i] = dy[i] * dgelu(v, sigOf(v));',
);

// The backward of a GELU whose output was not kept: GELU(x) again and dx, from one sigmoid; dx over dy in place.
const backwardRecomputing = elementwise(
  'geluGradRecomputing',
  [
    ['dy', 'read_write'],
    ['x', 'read'],
    ['y', 'read_write'],
  ],
  'let v = x[i];\n    let s = sigOf(v);\n    y[i] = v * s;\n    dy[i] = dy[i] * dgelu(v, s);',
);

export function geluForward(backend: WebGPUBackendLike, x: tf.Tensor): tf.Tensor {
  const y = emptyTensor(backend, x.shape);
  forward.dispatch(backend, [x, y], uniformBlock([['u32', x.size]]), [gridStrideGroups(x.size, WG)]);
  return asTensor(y);
}

export function geluBackward(backend: WebGPUBackendLike, dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  const dx = emptyTensor(backend, x.shape);
  backward.dispatch(backend, [dy, x, dx], uniformBlock([['u32', x.size]]), [gridStrideGroups(x.size, WG)]);
  return asTensor(dx);
}

/**
 * GELU(x), recomputed, and dx written over `dy` (a temporary the caller owns and no one else reads), in one pass:
 * the backward of a GELU whose output the forward did not keep.
 */
export function geluBackwardRecomputing(backend: WebGPUBackendLike, dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  const y = emptyTensor(backend, x.shape);
  backwardRecomputing.dispatch(
    backend,
    [dy, x, y],
    uniformBlock([['u32', x.size]]),
    [gridStrideGroups(x.size, WG)],
    [dy],
  );
  return asTensor(y);
}
