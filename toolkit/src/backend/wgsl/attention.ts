/**
 * Flash-style attention under the generalized causal mask: softmax(q·kᵀ·scale + mask)·v without ever forming
 * the [Lq, Lk] score matrix, forward in 1 dispatch and backward in 2 (tfjs ops: ~12 and ~15 per layer).
 *
 * The mask comes as key ranges per query row (`getAttnRanges`): row i sees keys [0, a_i) and [b_i, c_i).
 * One thread owns one row (a query forward and for dq, a key for dk and dv) and walks the other side in tiles of
 * TILE rows staged in workgroup memory, with the online softmax of FlashAttention (running max and sum).
 * A tile that no row of the workgroup may see is skipped without being loaded: with the block bounds
 * appended to the ranges (max a, min b, max c per TILE query rows), that decision is uniform.
 *
 * Tensors are read through an offset and strides (n, head, row), so head-major [N, H, L, hd] (the KV cache),
 * token-major [N, L, H·hd] and a part of the fused projection qkv [N, L, 3·H·hd] (training reads v there in place)
 * all work, with no transposes or slices; the output o is token-major.
 * The backward recomputes probabilities from the per-row log-sum-exp kept by the forward.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackendLike } from '../webgpu-types';
import { FlashShape, tokenMajor } from '../kernels';
import { asTensor, emptyTensor, uniformBlock, WgslKernel } from './runner';

/** Rows (threads) per workgroup: fewer rows per workgroup let it skip more of the masked tiles. */
export const ROWS_PER_GROUP = 32;
const WG = ROWS_PER_GROUP;
const NONE = 0x7fffffff;

/**
 * Head size the fused kernels handle, here and in cached-attention (a thread keeps a few rows of head size in
 * registers).
 */
export const MAX_HEAD_DIM = 128;

/** Rows per tile staged in workgroup memory: 2 tiles of TILE x hd floats stay within WebGPU's 16 KiB. */
export const tileFor = (hd: number) => (hd <= 64 ? 16 : 8);

/**
 * Row ranges followed by the bounds of each block of `tile` rows: (max a, min b, max c), b and c over rows
 * with an own range. A key tile [j0, j1) can matter to a block only if j0 < max a or (j0 < max c and j1 > min b).
 */
export function withBlockBounds(ranges: Int32Array, tile: number): Int32Array {
  const rows = ranges.length / 3;
  const blocks = Math.ceil(rows / tile);
  const out = new Int32Array(3 * (rows + blocks));
  out.set(ranges);
  for (let blk = 0; blk < blocks; blk++) {
    let maxA = 0;
    let minB = NONE;
    let maxC = 0;
    for (let r = blk * tile; r < Math.min(rows, (blk + 1) * tile); r++) {
      maxA = Math.max(maxA, ranges[3 * r]);
      if (ranges[3 * r + 2] > ranges[3 * r + 1]) {
        minB = Math.min(minB, ranges[3 * r + 1]);
        maxC = Math.max(maxC, ranges[3 * r + 2]);
      }
    }
    out.set([maxA, minB, maxC], 3 * (rows + blk));
  }
  return out;
}

/**
 * Key tiles [j0, j0 + tile) out of `keys` that query blocks [firstBlock, firstBlock + blocks) need: the
 * kernels' `tileNeeded` rule on the host, to measure how much they skip (the rest).
 */
export function neededKeyTiles(
  bounds: Int32Array,
  rows: number,
  keys: number,
  tile: number,
  firstBlock: number,
  blocks: number,
): number[] {
  const out: number[] = [];
  for (let j0 = 0; j0 < keys; j0 += tile) {
    let needed = false;
    for (let blk = firstBlock; blk < Math.min(firstBlock + blocks, Math.ceil(rows / tile)); blk++) {
      const [a, b, c] = bounds.subarray(3 * (rows + blk), 3 * (rows + blk) + 3);
      needed ||= j0 < a || (j0 < c && j0 + tile > b);
    }
    if (needed) out.push(j0);
  }
  return out;
}

/** The uniform block of the flash kernels (here and on tensor cores, `tc-attention.ts`). */
export const UNIFORMS = /* wgsl */ `
struct U {
  H: u32, Lq: u32, Lk: u32, scale: f32,
  qN: u32, qH: u32, qL: u32, kN: u32,
  kH: u32, kL: u32, vN: u32, vH: u32,
  vL: u32, oN: u32, oH: u32, oL: u32,
  qO: u32, kO: u32, vO: u32, pad: u32,
}`;

/** WGSL shared by the flash kernels: the row-visibility test and the block-bound tile test. */
export const common = (hd: number, tile: number) => /* wgsl */ `
const HD = ${hd}u;
const T = ${tile}u;
fn sees(i: u32, j: u32) -> bool {
  let a = u32(ranges[3u * i]);
  return j < a || (j >= u32(ranges[3u * i + 1u]) && j < u32(ranges[3u * i + 2u]));
}
// Does any of the query blocks [blk0, blk1) see a key in [j0, j1)?
fn tileNeeded(blk0: u32, blk1: u32, j0: u32, j1: u32) -> bool {
  var needed = false;
  let base = 3u * u.Lq;
  for (var blk = blk0; blk < blk1; blk = blk + 1u) {
    let a = u32(ranges[base + 3u * blk]);
    let b = u32(ranges[base + 3u * blk + 1u]);
    let c = u32(ranges[base + 3u * blk + 2u]);
    needed = needed || j0 < a || (j0 < c && j1 > b);
  }
  return needed;
}
fn queryBlocks() -> u32 { return (u.Lq + T - 1u) / T; }`;

/** Bindings 0-3 of the flash kernels. */
export const INPUTS = /* wgsl */ `@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> ranges: array<i32>;`;

/** The K and V tiles of the query-side kernels, and their staging (every thread calls it; it synchronises). */
const keyTiles = (hd: number, tile: number) => /* wgsl */ `
var<workgroup> kt: array<f32, ${tile * hd}>;
var<workgroup> vt: array<f32, ${tile * hd}>;
fn stageKeyTile(li: u32, n: u32, h: u32, j0: u32) {
  workgroupBarrier();
  for (var e = li; e < T * HD; e = e + ${WG}u) {
    let j = min(j0 + e / HD, u.Lk - 1u);
    kt[e] = k[u.kO + n * u.kN + h * u.kH + j * u.kL + e % HD];
    vt[e] = v[u.vO + n * u.vN + h * u.vH + j * u.vL + e % HD];
  }
  workgroupBarrier();
}`;

// Forward: one thread per query row; K and V tiles staged; online softmax; writes o and the row's log-sum-exp.
const forwardCode = (hd: number, tile: number) => /* wgsl */ `
${INPUTS}
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
${UNIFORMS}
@group(0) @binding(6) var<uniform> u: U;
${common(hd, tile)}
${keyTiles(hd, tile)}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let n = wg.y / u.H;
  let h = wg.y % u.H;
  let i = min(wg.x * ${WG}u + li, u.Lq - 1u); // threads past the end work on the last row and write nothing
  let qo = u.qO + n * u.qN + h * u.qH + i * u.qL;
  var qv: array<f32, ${hd}>;
  var acc: array<f32, ${hd}>;
  for (var d = 0u; d < HD; d = d + 1u) { qv[d] = q[qo + d] * u.scale; acc[d] = 0.0; }
  var m = -1e30;
  var l = 0.0;
  let blk0 = wg.x * ${WG / tile}u; // this workgroup's query blocks [blk0, blk1)
  let blk1 = min(blk0 + ${WG / tile}u, queryBlocks());
  for (var j0 = 0u; j0 < u.Lk; j0 = j0 + T) {
    if (!tileNeeded(blk0, blk1, j0, j0 + T)) { continue; }
    stageKeyTile(li, n, h, j0);
    var sc: array<f32, ${tile}>;
    var tmax = -1e30;
    for (var r = 0u; r < T; r = r + 1u) {
      sc[r] = -1e30;
      if (j0 + r < u.Lk && sees(i, j0 + r)) {
        var s = 0.0;
        for (var d = 0u; d < HD; d = d + 1u) { s = s + qv[d] * kt[r * HD + d]; }
        sc[r] = s;
        tmax = max(tmax, s);
      }
    }
    if (tmax > -1e29) {
      let mNew = max(m, tmax);
      let corr = exp(m - mNew);
      l = l * corr;
      for (var d = 0u; d < HD; d = d + 1u) { acc[d] = acc[d] * corr; }
      for (var r = 0u; r < T; r = r + 1u) {
        if (sc[r] > -1e29) {
          let p = exp(sc[r] - mNew);
          l = l + p;
          for (var d = 0u; d < HD; d = d + 1u) { acc[d] = acc[d] + p * vt[r * HD + d]; }
        }
      }
      m = mNew;
    }
  }
  if (wg.x * ${WG}u + li < u.Lq) {
    let oo = n * u.oN + h * u.oH + i * u.oL;
    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var d = 0u; d < HD; d = d + 1u) { o[oo + d] = acc[d] * inv; }
    lse[wg.y * u.Lq + i] = m + log(max(l, 1e-30));
  }
}`;

// Backward, query side: δ_i = dO_i·o_i, then dq_i = scale·Σ_j p_ij (dO_i·v_j − δ_i) k_j. Writes δ for the key side.
const gradQCode = (hd: number, tile: number) => /* wgsl */ `
${INPUTS}
@group(0) @binding(4) var<storage, read> o: array<f32>;
@group(0) @binding(5) var<storage, read> dO: array<f32>;
@group(0) @binding(6) var<storage, read> lse: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
@group(0) @binding(8) var<storage, read_write> delta: array<f32>;
${UNIFORMS}
@group(0) @binding(9) var<uniform> u: U;
${common(hd, tile)}
${keyTiles(hd, tile)}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let n = wg.y / u.H;
  let h = wg.y % u.H;
  let i = min(wg.x * ${WG}u + li, u.Lq - 1u);
  let qo = u.qO + n * u.qN + h * u.qH + i * u.qL;
  let oo = n * u.oN + h * u.oH + i * u.oL;
  var qv: array<f32, ${hd}>;
  var g: array<f32, ${hd}>;
  var acc: array<f32, ${hd}>;
  var dl = 0.0;
  for (var d = 0u; d < HD; d = d + 1u) {
    qv[d] = q[qo + d] * u.scale;
    g[d] = dO[oo + d];
    dl = dl + g[d] * o[oo + d];
    acc[d] = 0.0;
  }
  let rowLse = lse[wg.y * u.Lq + i];
  let blk0 = wg.x * ${WG / tile}u;
  let blk1 = min(blk0 + ${WG / tile}u, queryBlocks());
  for (var j0 = 0u; j0 < u.Lk; j0 = j0 + T) {
    if (!tileNeeded(blk0, blk1, j0, j0 + T)) { continue; }
    stageKeyTile(li, n, h, j0);
    for (var r = 0u; r < T; r = r + 1u) {
      if (j0 + r < u.Lk && sees(i, j0 + r)) {
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < HD; d = d + 1u) {
          s = s + qv[d] * kt[r * HD + d];
          dp = dp + g[d] * vt[r * HD + d];
        }
        let ds = exp(s - rowLse) * (dp - dl);
        for (var d = 0u; d < HD; d = d + 1u) { acc[d] = acc[d] + ds * kt[r * HD + d]; }
      }
    }
  }
  if (wg.x * ${WG}u + li < u.Lq) {
    for (var d = 0u; d < HD; d = d + 1u) { dq[qo + d] = acc[d] * u.scale; }
    delta[wg.y * u.Lq + i] = dl;
  }
}`;

// Backward, key side: one thread per key j; Q and dO tiles staged with their rows' lse, δ and ranges.
// dv_j = Σ_i p_ij dO_i, dk_j = Σ_i p_ij (dO_i·v_j − δ_i) · scale·q_i.
const gradKVCode = (hd: number, tile: number) => /* wgsl */ `
${INPUTS}
@group(0) @binding(4) var<storage, read> dO: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;
${UNIFORMS}
@group(0) @binding(9) var<uniform> u: U;
${common(hd, tile)}
var<workgroup> qt: array<f32, ${tile * hd}>;
var<workgroup> gt: array<f32, ${tile * hd}>;
var<workgroup> rowLse: array<f32, ${tile}>;
var<workgroup> rowDelta: array<f32, ${tile}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let n = wg.y / u.H;
  let h = wg.y % u.H;
  let jFirst = wg.x * ${WG}u;
  let jEnd = min(jFirst + ${WG}u, u.Lk);
  let j = min(jFirst + li, u.Lk - 1u);
  let ko = u.kO + n * u.kN + h * u.kH + j * u.kL;
  let vo = u.vO + n * u.vN + h * u.vH + j * u.vL;
  var kv: array<f32, ${hd}>;
  var vv: array<f32, ${hd}>;
  var dkAcc: array<f32, ${hd}>;
  var dvAcc: array<f32, ${hd}>;
  for (var d = 0u; d < HD; d = d + 1u) { kv[d] = k[ko + d]; vv[d] = v[vo + d]; dkAcc[d] = 0.0; dvAcc[d] = 0.0; }
  for (var blk = 0u; blk < queryBlocks(); blk = blk + 1u) {
    if (!tileNeeded(blk, blk + 1u, jFirst, jEnd)) { continue; }
    let i0 = blk * T;
    workgroupBarrier();
    for (var e = li; e < T * HD; e = e + ${WG}u) {
      let i = min(i0 + e / HD, u.Lq - 1u);
      qt[e] = q[u.qO + n * u.qN + h * u.qH + i * u.qL + e % HD] * u.scale;
      gt[e] = dO[n * u.oN + h * u.oH + i * u.oL + e % HD];
    }
    if (li < T) {
      let i = min(i0 + li, u.Lq - 1u);
      rowLse[li] = lse[wg.y * u.Lq + i];
      rowDelta[li] = delta[wg.y * u.Lq + i];
    }
    workgroupBarrier();
    for (var r = 0u; r < T; r = r + 1u) {
      if (i0 + r < u.Lq && sees(i0 + r, j)) {
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < HD; d = d + 1u) {
          s = s + qt[r * HD + d] * kv[d];
          dp = dp + gt[r * HD + d] * vv[d];
        }
        let p = exp(s - rowLse[r]);
        let ds = p * (dp - rowDelta[r]);
        for (var d = 0u; d < HD; d = d + 1u) {
          dvAcc[d] = dvAcc[d] + p * gt[r * HD + d];
          dkAcc[d] = dkAcc[d] + ds * qt[r * HD + d];
        }
      }
    }
  }
  if (jFirst + li < u.Lk) {
    for (var d = 0u; d < HD; d = d + 1u) { dk[ko + d] = dkAcc[d]; dv[vo + d] = dvAcc[d]; }
  }
}`;

const kernels = new Map<string, WgslKernel>();
function kernel(name: string, code: (hd: number, tile: number) => string, hd: number): WgslKernel {
  const key = `${name}/${hd}`;
  let kern = kernels.get(key);
  if (!kern) kernels.set(key, (kern = new WgslKernel(name, code(hd, tileFor(hd)))));
  return kern;
}

/** The uniforms of shape `s` (layouts of q, k, v; o token-major). */
export function flashUniforms(s: FlashShape): ArrayBuffer {
  const o = tokenMajor(s.H, s.Lq, s.hd);
  const u32 = (v: number) => ['u32', v] as const;
  return uniformBlock([
    u32(s.H),
    u32(s.Lq),
    u32(s.Lk),
    ['f32', s.scale],
    ...[s.q, s.k, s.v, o].flatMap((l) => [u32(l.sN), u32(l.sH), u32(l.sL)]),
    ...[s.q, s.k, s.v].map((l) => u32(l.offset)),
    u32(0),
  ]);
}

/** The ranges (`getAttnRanges` / `fullRanges`) with their block bounds, as the int32 tensor the kernels read. */
export function rangesTensor(ranges: Int32Array, hd: number): tf.Tensor1D {
  return tf.tensor1d(withBlockBounds(ranges, tileFor(hd)), 'int32');
}

/** o [N, Lq, H·hd] and the per-row log-sum-exp [N·H·Lq] of softmax(q·kᵀ·scale | ranges)·v. */
export function flashAttentionForward(
  backend: WebGPUBackendLike,
  s: FlashShape,
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  ranges: tf.Tensor1D,
): [tf.Tensor3D, tf.Tensor1D] {
  const o = emptyTensor(backend, [s.N, s.Lq, s.H * s.hd]);
  const lse = emptyTensor(backend, [s.N * s.H * s.Lq]);
  kernel('flashAttention', forwardCode, s.hd).dispatch(
    backend,
    [q, k, v, ranges, o, lse],
    flashUniforms(s),
    [Math.ceil(s.Lq / WG), s.N * s.H],
    [o, lse],
  );
  return [asTensor(o), asTensor(lse)];
}

/** dq, dk, dv (each in its input's layout) for the upstream gradient dO [N, Lq, H·hd]. */
export function flashAttentionBackward(
  backend: WebGPUBackendLike,
  s: FlashShape,
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  ranges: tf.Tensor1D,
  o: tf.Tensor,
  lse: tf.Tensor,
  dO: tf.Tensor,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const dq = emptyTensor(backend, q.shape);
  const delta = emptyTensor(backend, [s.N * s.H * s.Lq]);
  const u = flashUniforms(s);
  kernel('flashAttentionGradQ', gradQCode, s.hd).dispatch(backend, [q, k, v, ranges, o, dO, lse, dq, delta], u, [
    Math.ceil(s.Lq / WG),
    s.N * s.H,
  ]);
  const dk = emptyTensor(backend, k.shape);
  const dv = emptyTensor(backend, v.shape);
  kernel('flashAttentionGradKV', gradKVCode, s.hd).dispatch(backend, [q, k, v, ranges, dO, lse, delta, dk, dv], u, [
    Math.ceil(s.Lk / WG),
    s.N * s.H,
  ]);
  backend.disposeData(delta.dataId);
  return [asTensor(dq), asTensor(dk), asTensor(dv)];
}
