/**
 * `nn.LayerNorm` over the last axis in 1 dispatch forward and 3 backward (tfjs ops: 9 and ~25).
 *
 * Forward, one workgroup per row: mean, biased variance (two passes, as the tfjs path), y = x̂·w + b, and the
 * row's mean and 1/std kept for the backward. Backward: dx row by row,
 *   dx = rstd · (dy·w − mean(dy·w) − x̂ · mean(dy·w·x̂)),
 * and dw = Σ dy·x̂, db = Σ dy over rows in two steps (per-chunk partial sums, then their total), so that
 * tens of thousands of rows are summed in parallel.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackendLike } from '../webgpu-types';
import { asTensor, emptyTensor, uniformBlock, WgslKernel, workgroupSum } from './runner';

const WG = 64;
export const CHUNK = 64; // rows per partial sum of dw, db

/** Row index of a workgroup in a 2-D grid (a dimension holds at most 65535 workgroups). */
const ROW = 'let row = wg.y * u.gridX + wg.x;\n  if (row >= u.rows) { return; }';
export const gridFor = (rows: number): [number, number] => {
  const x = Math.min(rows, 32768);
  return [x, Math.ceil(rows / x)];
};

const REDUCE = workgroupSum(WG);

const forward = new WgslKernel(
  'layerNorm',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
struct U { rows: u32, C: u32, gridX: u32, eps: f32 }
@group(0) @binding(5) var<uniform> u: U;
${REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  ${ROW}
  let o = row * u.C;
  let n = f32(u.C);
  var s = 0.0;
  for (var c = li; c < u.C; c = c + ${WG}u) { s = s + x[o + c]; }
  let mean = wgSum(li, s) / n;
  var q = 0.0;
  for (var c = li; c < u.C; c = c + ${WG}u) { let d = x[o + c] - mean; q = q + d * d; }
  let rstd = inverseSqrt(wgSum(li, q) / n + u.eps);
  for (var c = li; c < u.C; c = c + ${WG}u) { y[o + c] = (x[o + c] - mean) * rstd * w[c] + b[c]; }
  if (li == 0u) { stats[2u * row] = mean; stats[2u * row + 1u] = rstd; }
}`,
);

const backwardRows = new WgslKernel(
  'layerNormGradX',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
struct U { rows: u32, C: u32, gridX: u32 }
@group(0) @binding(5) var<uniform> u: U;
${REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  ${ROW}
  let o = row * u.C;
  let mean = stats[2u * row];
  let rstd = stats[2u * row + 1u];
  var s1 = 0.0;
  var s2 = 0.0;
  for (var c = li; c < u.C; c = c + ${WG}u) {
    let g = dy[o + c] * w[c];
    s1 = s1 + g;
    s2 = s2 + g * (x[o + c] - mean) * rstd;
  }
  let n = f32(u.C);
  let m1 = wgSum(li, s1) / n;
  let m2 = wgSum(li, s2) / n;
  for (var c = li; c < u.C; c = c + ${WG}u) {
    let xh = (x[o + c] - mean) * rstd;
    dx[o + c] = rstd * (dy[o + c] * w[c] - m1 - xh * m2);
  }
}`,
);

const backwardPartials = new WgslKernel(
  'layerNormGradWPartials',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
struct U { rows: u32, C: u32 }
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  var sw = 0.0;
  var sb = 0.0;
  let end = min(u.rows, (wg.y + 1u) * ${CHUNK}u);
  for (var r = wg.y * ${CHUNK}u; r < end; r = r + 1u) {
    let g = dy[r * u.C + c];
    sw = sw + g * (x[r * u.C + c] - stats[2u * r]) * stats[2u * r + 1u];
    sb = sb + g;
  }
  partials[(wg.y * 2u) * u.C + c] = sw;
  partials[(wg.y * 2u + 1u) * u.C + c] = sb;
}`,
);

const totals = new Map<number, WgslKernel>();

/**
 * The sums over chunks of partial sums [chunks, 2, C] (weight, bias) into `pairs` pairs of (dw, db), each of
 * C / pairs columns: one pair for a LayerNorm, two for the q and k norms of QK-norm (columns [0, hd) and
 * [hd, 2hd)). One workgroup per column: its threads split the chunks, then a tree sum (the q / k norms have
 * 64-128 columns and ~700 chunks, too few columns for a thread each to be fast).
 */
export function gradWTotals(pairs: 1 | 2): WgslKernel {
  let kern = totals.get(pairs);
  if (kern) return kern;
  const out = Array.from({ length: pairs }, (_, j) => j);
  const code = /* wgsl */ `
@group(0) @binding(0) var<storage, read> partials: array<f32>;
${out
  .map(
    (j) => `@group(0) @binding(${1 + 2 * j}) var<storage, read_write> dw${j}: array<f32>;
@group(0) @binding(${2 + 2 * j}) var<storage, read_write> db${j}: array<f32>;`,
  )
  .join('\n')}
struct U { chunks: u32, C: u32 }
@group(0) @binding(${1 + 2 * pairs}) var<uniform> u: U;
${REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = wg.y * 32768u + wg.x;
  let live = c < u.C;
  var sw = 0.0;
  var sb = 0.0;
  if (live) {
    for (var k = li; k < u.chunks; k = k + ${WG}u) {
      sw = sw + partials[(k * 2u) * u.C + c];
      sb = sb + partials[(k * 2u + 1u) * u.C + c];
    }
  }
  let tw = wgSum(li, sw);
  let tb = wgSum(li, sb);
  if (live && li == 0u) {
    let per = u.C / ${pairs}u;
${out.map((j) => `    if (c / per == ${j}u) { dw${j}[c % per] = tw; db${j}[c % per] = tb; }`).join('\n')}
  }
}`;
  totals.set(pairs, (kern = new WgslKernel(`layerNormGradWTotals${pairs}`, code)));
  return kern;
}
/** y = LayerNorm(x) on [rows, C]; also returns the per-row [mean, rstd] pairs for the backward. */
export function layerNormForward(
  backend: WebGPUBackendLike,
  x: tf.Tensor2D,
  w: tf.Tensor,
  b: tf.Tensor,
  eps: number,
): [tf.Tensor2D, tf.Tensor1D] {
  const [rows, C] = x.shape;
  const y = emptyTensor(backend, [rows, C]);
  const stats = emptyTensor(backend, [2 * rows]);
  layerNormInto(backend, { x, w, b, y, stats }, rows, C, eps);
  return [asTensor(y), asTensor(stats)];
}

/** The forward into existing tensors: y [rows, C] and stats [2·rows] (the first `rows` rows of larger ones). */
export function layerNormInto(
  backend: WebGPUBackendLike,
  t: { x: tf.TensorInfo; w: tf.TensorInfo; b: tf.TensorInfo; y: tf.TensorInfo; stats: tf.TensorInfo },
  rows: number,
  C: number,
  eps: number,
): void {
  const grid = gridFor(rows);
  forward.dispatch(
    backend,
    [t.x, t.w, t.b, t.y, t.stats],
    uniformBlock([
      ['u32', rows],
      ['u32', C],
      ['u32', grid[0]],
      ['f32', eps],
    ]),
    grid,
    [t.y, t.stats],
  );
}

/** dx, dw, db of `layerNormForward` for the upstream gradient dy [rows, C]. */
export function layerNormBackward(
  backend: WebGPUBackendLike,
  dy: tf.Tensor2D,
  x: tf.Tensor2D,
  w: tf.Tensor,
  stats: tf.Tensor1D,
): [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D] {
  const [rows, C] = x.shape;
  const dx = emptyTensor(backend, [rows, C]);
  const grid = gridFor(rows);
  backwardRows.dispatch(
    backend,
    [dy, x, w, stats, dx],
    uniformBlock([
      ['u32', rows],
      ['u32', C],
      ['u32', grid[0]],
    ]),
    grid,
  );
  const chunks = Math.ceil(rows / CHUNK);
  const partials = emptyTensor(backend, [chunks * 2 * C]);
  backwardPartials.dispatch(
    backend,
    [dy, x, stats, partials],
    uniformBlock([
      ['u32', rows],
      ['u32', C],
    ]),
    [Math.ceil(C / WG), chunks],
  );
  const dw = emptyTensor(backend, [C]);
  const db = emptyTensor(backend, [C]);
  gradWTotals(1).dispatch(
    backend,
    [partials, dw, db],
    uniformBlock([
      ['u32', chunks],
      ['u32', C],
    ]),
    gridFor(C),
  );
  backend.disposeData(partials.dataId);
  return [asTensor(dx), asTensor(dw), asTensor(db)];
}
