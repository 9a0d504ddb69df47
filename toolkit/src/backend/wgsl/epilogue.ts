/**
 * What follows a linear layer's product c = x·Wᵀ in training, in one elementwise pass each (tfjs ops: 2):
 * GELU(c + b) for the MLP's fc1, keeping c + b for GELU's backward, and r + (c + b) for proj and fc2, whose
 * outputs join the residual stream r. The product itself stays tfjs's `matMul` (tensor cores where they apply).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackendLike } from '../webgpu-types';
import { asTensor, emptyTensor, gridStrideGroups, uniformBlock, WgslKernel } from './runner';
import { GELU_WGSL } from './gelu';

const WG = 256;

const LOOP = `@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < u.n; i = i + nwg.x * ${WG}u) {`;

const biasGelu = new WgslKernel(
  'biasGelu',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> c: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> h: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
struct U { n: u32, cols: u32 }
@group(0) @binding(4) var<uniform> u: U;
${GELU_WGSL}
${LOOP}
    let v = c[i] + b[i % u.cols];
    h[i] = v;
    y[i] = gelu(v);
  }
}`,
);

const biasResidual = new WgslKernel(
  'biasResidual',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> c: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> r: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
struct U { n: u32, cols: u32 }
@group(0) @binding(4) var<uniform> u: U;
${LOOP}
    y[i] = r[i] + (c[i] + b[i % u.cols]);
  }
}`,
);

const sizes = (c: tf.Tensor) =>
  uniformBlock([
    ['u32', c.size],
    ['u32', c.shape[c.rank - 1]],
  ]);

/** [h, GELU(h)] for h = c + b: c [..., cols], b [cols]. */
export function biasGeluForward(gpu: WebGPUBackendLike, c: tf.Tensor, b: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const h = emptyTensor(gpu, c.shape);
  const y = emptyTensor(gpu, c.shape);
  biasGelu.dispatch(gpu, [c, b, h, y], sizes(c), [gridStrideGroups(c.size, WG)]);
  return [asTensor(h), asTensor(y)];
}

/** r + (c + b): c and r [..., cols], b [cols]. */
export function biasResidualForward(gpu: WebGPUBackendLike, c: tf.Tensor, b: tf.Tensor, r: tf.Tensor): tf.Tensor {
  const y = emptyTensor(gpu, c.shape);
  biasResidual.dispatch(gpu, [c, b, r, y], sizes(c), [gridStrideGroups(c.size, WG)]);
  return asTensor(y);
}
