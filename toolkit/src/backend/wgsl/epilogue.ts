/**
 * What follows a linear layer's product c = x·Wᵀ in training, in one elementwise pass each (tfjs ops: 2):
 * GELU(c + b) for the MLP's fc1, keeping c + b for GELU's backward, and r + (c + b) for proj and fc2, whose
 * outputs join the residual stream r. The product itself stays tfjs's `matMul` (tensor cores where they apply).
 * In the backward, the bias's gradient, a column sum of the output's gradient, in one dispatch (tfjs: a
 * transpose, then a row sum).
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

// Column sums of x [rows, 4·cols4]: a workgroup owns 8 float4 columns (a 128-byte line of each row) and 32 lanes of
// rows, which it sums in workgroup memory. Few workgroups where the output is narrow (24 at width 768), but each
// streams whole lines, where tfjs writes and reads the transposed gradient once more.
const COLUMN_LANES = 8;
const columnSums = new WgslKernel(
  'sumRows',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;
struct U { rows: u32, cols4: u32 }
@group(0) @binding(2) var<uniform> u: U;
var<workgroup> part: array<vec4<f32>, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = wg.x * ${COLUMN_LANES}u + li % ${COLUMN_LANES}u;
  let lane = li / ${COLUMN_LANES}u;
  var s = vec4<f32>();
  if (c < u.cols4) {
    for (var r = lane; r < u.rows; r = r + ${WG / COLUMN_LANES}u) { s = s + x[r * u.cols4 + c]; }
  }
  part[li] = s;
  for (var k = ${WG / COLUMN_LANES / 2}u; k > 0u; k = k / 2u) {
    workgroupBarrier();
    if (lane < k) { part[li] = part[li] + part[li + k * ${COLUMN_LANES}u]; }
  }
  if (lane == 0u && c < u.cols4) { y[c] = part[li]; }
}`,
);

/**
 * Column sums of dy [rows, cols] (the device table's `sumRows`): the gradient of a bias added to every row of a
 * linear layer's output.
 */
export function sumRows(gpu: WebGPUBackendLike, dy: tf.Tensor2D): tf.Tensor1D {
  const [rows, cols] = dy.shape;
  if (cols % 4 !== 0) return tf.sum(dy, 0);
  const y = emptyTensor(gpu, [cols]);
  const u = uniformBlock([
    ['u32', rows],
    ['u32', cols / 4],
  ]);
  columnSums.dispatch(gpu, [dy, y], u, [Math.ceil(cols / 4 / COLUMN_LANES)], [y]);
  return asTensor(y);
}
