/**
 * QK-norm on the fused projection qkv [rows, 3D]: the per-head LayerNorms of q and k (`q_norm`, `k_norm`, over
 * each head's hd values), read in place from qkv, so q, k and v are never sliced out of it.
 *
 * - `qkNormToCache` (sampling): q token-major, k and v written into the layer's KV cache at the chunk's offset.
 * - `qkNormForward` / `qkNormBackward` (training): q and k token-major plus each (token, head)'s mean and 1/std;
 *   the backward writes the q and k columns of the qkv gradient (the attention's backward fills the v columns)
 *   and the four weight gradients, in 3 dispatches where slices, two LayerNorms and a concat took 12.
 *
 * A workgroup of 64 threads per (token, head) reads the head's values side by side (coalesced) and reduces q's
 * and k's sums together (vec2).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackendLike } from '../webgpu-types';
import { asTensor, emptyTensor, gridStrideGroups, uniformBlock, WgslKernel, workgroupSum } from './runner';
import { CHUNK, gradWTotals, gridFor } from './layernorm';

const WG = 64;

/** WGSL: `sum2(li, v)`, the sum of a vec2 over the workgroup (every thread gets it). */
const SUM2 = workgroupSum(WG, 'vec2<f32>', 'sum2');

/**
 * WGSL: the loop over (token, head) pairs of a grid-stride kernel, with the offsets qo and ko of the pair's q and
 * k in qkv, and `body`. Needs u.rows (tokens), u.H, u.hd.
 */
const perHead = (body: string) => /* wgsl */ `
  let D = u.H * u.hd;
  let inv = 1.0 / f32(u.hd);
  for (var id = wg.x; id < u.rows * u.H; id = id + nwg.x) {
    let token = id / u.H;
    let h = id % u.H;
    let qo = token * 3u * D + h * u.hd;
    let ko = qo + D;
${body}
  }`;

/** WGSL: mean, then 1/std from the centred values (two passes, biased variance: nn.LayerNorm), q and k together. */
const HEAD_STATS = /* wgsl */ `
    var s = vec2<f32>(0.0);
    for (var d = li; d < u.hd; d = d + ${WG}u) { s = s + vec2<f32>(qkv[qo + d], qkv[ko + d]); }
    let mean = sum2(li, s) * inv;
    var v = vec2<f32>(0.0);
    for (var d = li; d < u.hd; d = d + ${WG}u) {
      let c = vec2<f32>(qkv[qo + d], qkv[ko + d]) - mean;
      v = v + c * c;
    }
    let rstd = inverseSqrt(sum2(li, v) * inv + u.eps);`;

const MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {`;

const NORM_WEIGHTS = /* wgsl */ `
@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> qw: array<f32>;
@group(0) @binding(2) var<storage, read> qb: array<f32>;
@group(0) @binding(3) var<storage, read> kw: array<f32>;
@group(0) @binding(4) var<storage, read> kb: array<f32>;`;

const toCache = new WgslKernel(
  'qkNormToCache',
  /* wgsl */ `
${NORM_WEIGHTS}
@group(0) @binding(5) var<storage, read_write> q: array<f32>;
@group(0) @binding(6) var<storage, read_write> kc: array<f32>;
@group(0) @binding(7) var<storage, read_write> vc: array<f32>;
struct U { rows: u32, H: u32, hd: u32, eps: f32, Lq: u32, at: u32, Lmax: u32 }
@group(0) @binding(8) var<uniform> u: U;
${SUM2}
${MAIN}
${perHead(/* wgsl */ `
    let n = token / u.Lq; // row n of the batch, token i of the chunk
    let i = token % u.Lq;
    let vo = qo + 2u * D;
${HEAD_STATS}
    let co = ((n * u.H + h) * u.Lmax + u.at + i) * u.hd; // head-major cache [rows, H, Lmax, hd]
    for (var d = li; d < u.hd; d = d + ${WG}u) {
      q[token * D + h * u.hd + d] = (qkv[qo + d] - mean.x) * rstd.x * qw[d] + qb[d];
      kc[co + d] = (qkv[ko + d] - mean.y) * rstd.y * kw[d] + kb[d];
      vc[co + d] = qkv[vo + d];
    }`)}
}`,
);

/**
 * q (QK-normed, token-major [rows, Lq, D]) from the fused qkv [rows, Lq, 3D], and k (normed), v into the
 * head-major cache [rows, H, Lmax, hd] at positions at ... at + Lq.
 */
export function qkNormToCache(
  gpu: WebGPUBackendLike,
  t: {
    qkv: tf.TensorInfo;
    qw: tf.TensorInfo;
    qb: tf.TensorInfo;
    kw: tf.TensorInfo;
    kb: tf.TensorInfo;
    q: tf.TensorInfo;
    kc: tf.TensorInfo;
    vc: tf.TensorInfo;
  },
  s: { rows: number; Lq: number; H: number; hd: number; at: number; Lmax: number },
): void {
  const tokens = s.rows * s.Lq;
  toCache.dispatch(
    gpu,
    [t.qkv, t.qw, t.qb, t.kw, t.kb, t.q, t.kc, t.vc],
    uniformBlock([
      ['u32', tokens],
      ['u32', s.H],
      ['u32', s.hd],
      ['f32', 1e-5],
      ['u32', s.Lq],
      ['u32', s.at],
      ['u32', s.Lmax],
    ]),
    [gridStrideGroups(tokens * s.H * WG, WG)], // a workgroup per (token, head)
    [t.q, t.kc, t.vc],
  );
}

const forward = new WgslKernel(
  'qkNorm',
  /* wgsl */ `
${NORM_WEIGHTS}
@group(0) @binding(5) var<storage, read_write> q: array<f32>;
@group(0) @binding(6) var<storage, read_write> k: array<f32>;
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;
struct U { rows: u32, H: u32, hd: u32, eps: f32 }
@group(0) @binding(8) var<uniform> u: U;
${SUM2}
${MAIN}
${perHead(/* wgsl */ `
${HEAD_STATS}
    let o = token * D + h * u.hd;
    for (var d = li; d < u.hd; d = d + ${WG}u) {
      q[o + d] = (qkv[qo + d] - mean.x) * rstd.x * qw[d] + qb[d];
      k[o + d] = (qkv[ko + d] - mean.y) * rstd.y * kw[d] + kb[d];
    }
    if (li == 0u) { stats[4u * id] = mean.x; stats[4u * id + 1u] = rstd.x; stats[4u * id + 2u] = mean.y; stats[4u * id + 3u] = rstd.y; }`)}
}`,
);

// dx = rstd · (dy·w − mean(dy·w) − x̂ · mean(dy·w·x̂)) for q's and k's heads, into their columns of dqkv.
const backwardRows = new WgslKernel(
  'qkNormGradX',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> dq: array<f32>;
@group(0) @binding(1) var<storage, read> dk: array<f32>;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> qw: array<f32>;
@group(0) @binding(4) var<storage, read> kw: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read_write> dqkv: array<f32>;
struct U { rows: u32, H: u32, hd: u32 }
@group(0) @binding(7) var<uniform> u: U;
${SUM2}
${MAIN}
${perHead(/* wgsl */ `
    let o = token * D + h * u.hd;
    let mean = vec2<f32>(stats[4u * id], stats[4u * id + 2u]);
    let rstd = vec2<f32>(stats[4u * id + 1u], stats[4u * id + 3u]);
    var s1 = vec2<f32>(0.0);
    var s2 = vec2<f32>(0.0);
    for (var d = li; d < u.hd; d = d + ${WG}u) {
      let g = vec2<f32>(dq[o + d] * qw[d], dk[o + d] * kw[d]);
      let xh = (vec2<f32>(qkv[qo + d], qkv[ko + d]) - mean) * rstd;
      s1 = s1 + g;
      s2 = s2 + g * xh;
    }
    let m1 = sum2(li, s1) * inv;
    let m2 = sum2(li, s2) * inv;
    for (var d = li; d < u.hd; d = d + ${WG}u) {
      let g = vec2<f32>(dq[o + d] * qw[d], dk[o + d] * kw[d]);
      let xh = (vec2<f32>(qkv[qo + d], qkv[ko + d]) - mean) * rstd;
      let dx = rstd * (g - m1 - xh * m2);
      dqkv[qo + d] = dx.x;
      dqkv[ko + d] = dx.y;
    }`)}
}`,
);

// Partial sums of dy·x̂ and dy over chunks of CHUNK (token, head) pairs: columns [0, hd) q's, [hd, 2hd) k's.
const backwardPartials = new WgslKernel(
  'qkNormGradWPartials',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> dq: array<f32>;
@group(0) @binding(1) var<storage, read> dk: array<f32>;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
struct U { rows: u32, H: u32, hd: u32 }
@group(0) @binding(5) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let C = 2u * u.hd;
  let c = gid.x;
  if (c >= C) { return; }
  let isK = c >= u.hd;
  let d = c % u.hd;
  let D = u.H * u.hd;
  var sw = 0.0;
  var sb = 0.0;
  let end = min(u.rows * u.H, (wg.y + 1u) * ${CHUNK}u);
  for (var id = wg.y * ${CHUNK}u; id < end; id = id + 1u) {
    let token = id / u.H;
    let o = token * D + (id % u.H) * u.hd + d;
    let g = select(dq[o], dk[o], isK);
    let x = qkv[o + token * 2u * D + select(0u, D, isK)];
    let s = 4u * id + select(0u, 2u, isK);
    sw = sw + g * (x - stats[s]) * stats[s + 1u];
    sb = sb + g;
  }
  partials[(wg.y * 2u) * C + c] = sw;
  partials[(wg.y * 2u + 1u) * C + c] = sb;
}`,
);

/** QK-norm's shape: `rows` tokens of H heads of size hd. */
export interface QkShape {
  rows: number;
  H: number;
  hd: number;
}

/** q and k [rows, D] (normed, token-major) from qkv [rows, 3D], and each (token, head)'s q and k mean and 1/std. */
export function qkNormForward(
  gpu: WebGPUBackendLike,
  qkv: tf.Tensor,
  w: { qw: tf.Tensor; qb: tf.Tensor; kw: tf.Tensor; kb: tf.Tensor },
  s: QkShape,
  eps: number,
): [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D] {
  const D = s.H * s.hd;
  const q = emptyTensor(gpu, [s.rows, D]);
  const k = emptyTensor(gpu, [s.rows, D]);
  const stats = emptyTensor(gpu, [4 * s.rows * s.H]);
  forward.dispatch(
    gpu,
    [qkv, w.qw, w.qb, w.kw, w.kb, q, k, stats],
    uniformBlock([
      ['u32', s.rows],
      ['u32', s.H],
      ['u32', s.hd],
      ['f32', eps],
    ]),
    [gridStrideGroups(s.rows * s.H * WG, WG)],
  );
  return [asTensor(q), asTensor(k), asTensor(stats)];
}

/**
 * The backward of `qkNormForward` for the gradients dq and dk of its outputs: writes the q and k columns of
 * `dqkv` [rows, 3D] (its v columns are left as they are) and returns the gradients of q_norm's and k_norm's
 * weight and bias.
 */
export function qkNormBackward(
  gpu: WebGPUBackendLike,
  t: { dq: tf.Tensor; dk: tf.Tensor; qkv: tf.Tensor; qw: tf.Tensor; kw: tf.Tensor; stats: tf.Tensor; dqkv: tf.Tensor },
  s: QkShape,
): { dqw: tf.Tensor1D; dqb: tf.Tensor1D; dkw: tf.Tensor1D; dkb: tf.Tensor1D } {
  const u = uniformBlock([
    ['u32', s.rows],
    ['u32', s.H],
    ['u32', s.hd],
  ]);
  backwardRows.dispatch(
    gpu,
    [t.dq, t.dk, t.qkv, t.qw, t.kw, t.stats, t.dqkv],
    u,
    [gridStrideGroups(s.rows * s.H * WG, WG)],
    [t.dqkv],
  );
  const C = 2 * s.hd;
  const chunks = Math.ceil((s.rows * s.H) / CHUNK);
  const partials = emptyTensor(gpu, [chunks * 2 * C]);
  backwardPartials.dispatch(gpu, [t.dq, t.dk, t.qkv, t.stats, partials], u, [Math.ceil(C / WG), chunks]);
  const [dqw, dqb, dkw, dkb] = [0, 1, 2, 3].map(() => emptyTensor(gpu, [s.hd]));
  gradWTotals(2).dispatch(
    gpu,
    [partials, dqw, dqb, dkw, dkb],
    uniformBlock([
      ['u32', chunks],
      ['u32', C],
    ]),
    gridFor(C),
  );
  gpu.disposeData(partials.dataId);
  return { dqw: asTensor(dqw), dqb: asTensor(dqb), dkw: asTensor(dkw), dkb: asTensor(dkb) };
}
