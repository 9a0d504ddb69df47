/**
 * Flash attention on tensor cores (subgroup matrices, fp16 inputs, fp32 accumulation), for training on the
 * same adapters and under the same precision setting as the tensor-core matmul (`matmul.ts`); the fp32 kernels of
 * `attention.ts` everywhere else. Same inputs, mask, layouts and outputs as those kernels, so the two are
 * interchangeable op by op.
 *
 * A workgroup is 4 subgroups of 32 threads. Each subgroup owns 16 rows (queries forward and for dq, keys for dk
 * and dv) and keeps their operands in registers as left matrices; the other side streams through workgroup memory
 * in tiles of 32, rounded to fp16 while staged. Products (scores q·kᵀ, dO·vᵀ, then p·v, ds·k, pᵀ·dO, dsᵀ·q) run as
 * 16x16x16 matrix instructions. The elementwise softmax work cannot touch a matrix's elements, so the score tiles go
 * through workgroup memory: each thread takes one row and every other column of its subgroup's 16 x 32 tile.
 *
 * The forward makes two passes over the keys: the first finds each row's log-sum-exp, the second forms the exact
 * probabilities p = exp(s - lse) and accumulates p·v in the matrices, so that no rescaling of the output (which
 * would need it elementwise, in workgroup memory) is ever needed. The backward needs no rescaling either: dq is
 * formed by query blocks, dk and dv by key blocks, as in FlashAttention-2.
 *
 * Head sizes that are multiples of 16 up to 64 (every preset); the skip of masked tiles uses the block bounds of
 * `rangesTensor`, blocks of 16 rows at these head sizes. The backend installs it at start-up only if its kernels
 * compile and match the fp32 ones (`installTensorCoreAttention`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackendLike } from '../webgpu-types';
import { FlashShape, HeadLayout, selfAttentionShape } from '../kernels';
import {
  common,
  flashAttentionBackward,
  flashAttentionForward,
  flashUniforms,
  rangesTensor,
  tileFor,
  UNIFORMS,
} from './attention';
import {
  compileErrors,
  ErrorScopes,
  MatrixSyntax,
  matrixKernel,
  tensorCoreMatmul,
  tensorCoresAvailable,
} from './matmul';
import { asTensor, emptyTensor } from './runner';

const ROWS = 64; // rows a workgroup owns: 4 subgroups x 16
const TILE = 32; // rows of the other side per staged tile
const SP = TILE + 8; // row stride of a subgroup's 16 x TILE fp16 tile of p or ds (padded against bank conflicts)
const SS = 36; // row stride of a subgroup's 16 x 32 fp32 score tile
const LEFT = 'subgroup_matrix_left<f16, 16, 16>';
const RIGHT = 'subgroup_matrix_right<f16, 16, 16>';
const RESULT = 'subgroup_matrix_result<f32, 16, 16>';

/**
 * Whether shape `s` runs on tensor cores now: tensor-core matmuls on, the attention installed on this device, head
 * size a multiple of 16 up to 64, layouts whose rows start on float4s.
 */
export function tensorCoreAttention(s: FlashShape): boolean {
  return (
    tensorCoreMatmul() &&
    ready.has((tf.backend() as unknown as WebGPUBackendLike).device) &&
    s.hd % 16 === 0 &&
    s.hd <= 64 &&
    [s.q, s.k, s.v].every((l) => [l.offset, l.sN, l.sH, l.sL].every((x) => x % 4 === 0)) // read as float4s
  );
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** WGSL pieces of the three kernels for head size `hd` in matrix syntax `x`. */
function pieces(hd: number, x: MatrixSyntax) {
  const SH = hd + 8; // row stride of staged rows of head size, halves
  const ts = range(hd / 16);
  const base = {
    q: (row: string) => `u.qO + n * u.qN + h * u.qH + (${row}) * u.qL`,
    k: (row: string) => `u.kO + n * u.kN + h * u.kH + (${row}) * u.kL`,
    v: (row: string) => `u.vO + n * u.vN + h * u.vH + (${row}) * u.vL`,
    o: (row: string) => `n * u.oN + h * u.oH + (${row}) * u.oL`,
  };
  type Side = keyof typeof base;
  const w = {
    SH,
    ts,
    base,
    header: /* wgsl */ `enable f16;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);`,
    /** This thread's subgroup, row of the subgroup's 16 and half of the columns, and the subgroup's tile areas. */
    threadIds: /* wgsl */ `let n = wg.y / u.H;
  let h = wg.y % u.H;
  let sg = li / 32u;
  let r = (li % 32u) / 2u;
  let half = li % 2u;
  let sOff = sg * ${16 * SS}u;
  let pOff = sg * ${16 * SP}u;`,
    /**
     * `rows` rows of `src` (side `side`) from `row0` into `dst` at `at` as fp16, zeros past `limit`: a float4 a
     * thread and step (layouts keep head-size rows whole and 4-aligned).
     */
    stage: (
      dst: string,
      at: number,
      src: string,
      side: Side,
      row0: string,
      rows: number,
      limit: string,
      scale = '',
    ) => /* wgsl */ `for (var e = li; e < ${(rows * hd) / 4}u; e = e + 128u) {
    let row = ${row0} + e / ${hd / 4}u;
    let d = (e % ${hd / 4}u) * 4u;
    var val = vec4<f32>();
    if (row < ${limit}) { val = ${src}[(${base[side](`row`)} + d) / 4u]${scale}; }
    let hv = vec4<f16>(val);
    let to = ${at}u + (e / ${hd / 4}u) * ${SH}u + d;
    ${dst}[to] = hv.x;
    ${dst}[to + 1u] = hv.y;
    ${dst}[to + 2u] = hv.z;
    ${dst}[to + 3u] = hv.w;
  }`,
    /** Left matrices `name`0.. of the subgroup's 16 staged rows of `arr` (each 16 columns of head size). */
    lefts: (name: string, arr: string) =>
      ts
        .map((t) => `let ${name}${t} = ${x.load(LEFT, `&${arr}`, `sg * ${16 * SH}u + ${16 * t}u`, `${SH}u`, false)};`)
        .join('\n  '),
    /**
     * The subgroup's 16 x 32 scores `left`·(32 staged rows of `arr` from `at`)ᵀ into its area of ss (the staged
     * rows, rows of head size, are the right matrices' columns: loaded column-major).
     */
    scores: (left: string, arr: string, at: number) =>
      [0, 1]
        .map((c) => {
          const acc = `${left}s${c}`;
          return `var ${acc} = ${RESULT}();
    ${ts
      .map(
        (t) => `let ${acc}r${t} = ${x.load(RIGHT, `&${arr}`, `${at + 16 * c * SH + 16 * t}u`, `${SH}u`, true)};
    ${acc} = subgroupMatrixMultiplyAccumulate(${left}${t}, ${acc}r${t}, ${acc});`,
      )
      .join('\n    ')}
    ${x.store('&ss', `sOff + ${16 * c}u`, acc, `${SS}u`)};`;
        })
        .join('\n    '),
    /** acc_t += (the subgroup's 16 x 32 fp16 tile of `tile`)·(32 staged rows of `arr` from `at`), per 16 columns t. */
    accumulate: (acc: string, tile: string, arr: string, at: number) =>
      `let ${acc}l0 = ${x.load(LEFT, `&${tile}`, 'pOff', `${SP}u`, false)};
    let ${acc}l1 = ${x.load(LEFT, `&${tile}`, 'pOff + 16u', `${SP}u`, false)};
    ${ts
      .flatMap((t) =>
        [0, 1].map(
          (c) => `let ${acc}${t}r${c} = ${x.load(RIGHT, `&${arr}`, `${at + 16 * c * SH + 16 * t}u`, `${SH}u`, false)};
    ${acc}${t} = subgroupMatrixMultiplyAccumulate(${acc}l${c}, ${acc}${t}r${c}, ${acc}${t});`,
        ),
      )
      .join('\n    ')}`,
    zeros: (acc: string) => ts.map((t) => `var ${acc}${t} = ${RESULT}();`).join('\n  '),
    /**
     * The matrices `acc`0.. (the subgroup's 16 rows x head size) into `dst` from index `at` (this thread's row)
     * where `ok`, times `scale`: two at a time through the subgroup's area of ss.
     */
    writeRows: (acc: string, dst: string, at: string, ok: string, scale = '') =>
      range(Math.ceil(ts.length / 2))
        .map((p) => {
          const pair = ts.slice(2 * p, 2 * p + 2);
          return `workgroupBarrier();
  ${pair.map((t, c) => `${x.store('&ss', `sOff + ${16 * c}u`, `${acc}${t}`, `${SS}u`)};`).join('\n  ')}
  workgroupBarrier();
  if (${ok}) {
    for (var c = half; c < ${16 * pair.length}u; c = c + 2u) { ${dst}[${at} + ${32 * p}u + c] = ss[sOff + r * ${SS}u + c]${scale}; }
  }`;
        })
        .join('\n  '),
  };
  return {
    ...w,
    /**
     * The query-side kernels' entry up to their query block in registers: thread set-up (`queryRow`), the block
     * staged (scaled) and loaded as the left matrices ql0...
     */
    queryMain: (T: number) => /* wgsl */ `@compute @workgroup_size(128)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  ${w.threadIds}
  ${queryRow(T)}
  ${w.stage('qp', 0, 'q', 'q', 'q0', ROWS, 'u.Lq', ' * u.scale')}
  workgroupBarrier();
  ${w.lefts('ql', 'qp')}`,
  };
}

/** Bindings 0-3 (as `attention.ts`'s, with q, k and v read a float4 at a time). */
const INPUTS4 = /* wgsl */ `@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> ranges: array<i32>;`;
const WORKGROUP = /* wgsl */ `var<workgroup> ss: array<f32, ${4 * 16 * SS}>;`;
/** The query-side kernels' tiles: the query block (`qp`, reused as `use` says), and a key and a value tile. */
const queryTiles = (hd: number, use: string) => /* wgsl */ `
var<workgroup> qp: array<f16, ${ROWS * (hd + 8)}>; // the query block, then ${use}
var<workgroup> kt: array<f16, ${TILE * (hd + 8)}>;
var<workgroup> vt: array<f16, ${TILE * (hd + 8)}>;
${WORKGROUP}`;
/** The query-side kernels' thread set-up: its query row i (clamped: ic), the row's key ranges, the block range. */
const queryRow = (T: number) => /* wgsl */ `let q0 = wg.x * ${ROWS}u;
  let i = q0 + sg * 16u + r;
  let ic = min(i, u.Lq - 1u);
  let ra = u32(ranges[3u * ic]);
  let rb = u32(ranges[3u * ic + 1u]);
  let rc = u32(ranges[3u * ic + 2u]);
  let blk0 = wg.x * ${ROWS / T}u; // this workgroup's query blocks [blk0, blk1)
  let blk1 = min(blk0 + ${ROWS / T}u, queryBlocks());`;
const visible = /* wgsl */ `
fn visible(j: u32, ra: u32, rb: u32, rc: u32) -> bool { return j < u.Lk && (j < ra || (j >= rb && j < rc)); }`;

// Forward: pass 1 finds each row's log-sum-exp (every thread over its half of a tile's columns; the two halves
// merged at the end), pass 2 accumulates exp(s - lse)·v.
function forwardWgsl(hd: number, x: MatrixSyntax): string {
  const w = pieces(hd, x);
  const T = tileFor(hd);
  const keyRow = (c: string) => `ss[sOff + r * ${SS}u + ${c}]`;
  const keyLoop = (body: string) => /* wgsl */ `for (var j0 = 0u; j0 < u.Lk; j0 = j0 + ${TILE}u) {
    if (!tileNeeded(blk0, blk1, j0, j0 + ${TILE}u)) { continue; }
    workgroupBarrier();
    ${body}
  }`;
  return /* wgsl */ `${w.header}
${INPUTS4}
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
${UNIFORMS}
@group(0) @binding(6) var<uniform> u: U;
${common(hd, T)}
${visible}
${queryTiles(hd, `each subgroup's 16 x ${TILE} probabilities`)}
${w.queryMain(T)}
  var m = -1e30;
  var l = 0.0;
  ${keyLoop(`${w.stage('kt', 0, 'k', 'k', 'j0', TILE, 'u.Lk')}
    workgroupBarrier();
    ${w.scores('ql', 'kt', 0)}
    workgroupBarrier();
    var tmax = -1e30;
    for (var c = half; c < ${TILE}u; c = c + 2u) {
      if (visible(j0 + c, ra, rb, rc)) { tmax = max(tmax, ${keyRow('c')}); }
    }
    if (tmax > -1e29) {
      let mNew = max(m, tmax);
      l = l * exp(m - mNew);
      for (var c = half; c < ${TILE}u; c = c + 2u) {
        if (visible(j0 + c, ra, rb, rc)) { l = l + exp(${keyRow('c')} - mNew); }
      }
      m = mNew;
    }`)}
  workgroupBarrier();
  ss[2u * li] = m;
  ss[2u * li + 1u] = l;
  workgroupBarrier();
  let pm = ss[2u * (li ^ 1u)];
  let mAll = max(m, pm);
  let rowLse = mAll + log(max(l * exp(m - mAll) + ss[2u * (li ^ 1u) + 1u] * exp(pm - mAll), 1e-30));
  if (half == 0u && i < u.Lq) { lse[wg.y * u.Lq + i] = rowLse; }
  ${w.zeros('o')}
  ${keyLoop(`${w.stage('kt', 0, 'k', 'k', 'j0', TILE, 'u.Lk')}
    ${w.stage('vt', 0, 'v', 'v', 'j0', TILE, 'u.Lk')}
    workgroupBarrier();
    ${w.scores('ql', 'kt', 0)}
    workgroupBarrier();
    for (var c = half; c < ${TILE}u; c = c + 2u) {
      qp[pOff + r * ${SP}u + c] = f16(select(0.0, exp(${keyRow('c')} - rowLse), visible(j0 + c, ra, rb, rc)));
    }
    workgroupBarrier();
    ${w.accumulate('o', 'qp', 'vt', 0)}`)}
  ${w.writeRows('o', 'o', w.base.o('i'), 'i < u.Lq')}
}`;
}

// Backward, query side: δ_i = dO_i·o_i, then dq_i = scale·Σ_j p_ij (dO_i·v_j − δ_i) k_j. Writes δ for the key side.
function gradQWgsl(hd: number, x: MatrixSyntax): string {
  const w = pieces(hd, x);
  const T = tileFor(hd);
  const keyRow = (c: string) => `ss[sOff + r * ${SS}u + ${c}]`;
  return /* wgsl */ `${w.header}
${INPUTS4}
@group(0) @binding(4) var<storage, read> o: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> dO: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> lse: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
@group(0) @binding(8) var<storage, read_write> delta: array<f32>;
${UNIFORMS}
@group(0) @binding(9) var<uniform> u: U;
${common(hd, T)}
${visible}
${queryTiles(hd, `dO's, then each subgroup's 16 x ${TILE} ds`)}
${w.queryMain(T)}
  workgroupBarrier();
  ${w.stage('qp', 0, 'dO', 'o', 'q0', ROWS, 'u.Lq')}
  workgroupBarrier();
  ${w.lefts('gl', 'qp')}
  let oo = ${w.base.o('ic')};
  var dl = 0.0;
  for (var d = half; d < ${hd / 4}u; d = d + 2u) { dl = dl + dot(dO[oo / 4u + d], o[oo / 4u + d]); }
  workgroupBarrier();
  ss[li] = dl;
  workgroupBarrier();
  dl = dl + ss[li ^ 1u];
  let rowLse = lse[wg.y * u.Lq + ic];
  if (half == 0u && i < u.Lq) { delta[wg.y * u.Lq + i] = dl; }
  ${w.zeros('a')}
  for (var j0 = 0u; j0 < u.Lk; j0 = j0 + ${TILE}u) {
    if (!tileNeeded(blk0, blk1, j0, j0 + ${TILE}u)) { continue; }
    workgroupBarrier();
    ${w.stage('kt', 0, 'k', 'k', 'j0', TILE, 'u.Lk')}
    ${w.stage('vt', 0, 'v', 'v', 'j0', TILE, 'u.Lk')}
    workgroupBarrier();
    ${w.scores('ql', 'kt', 0)}
    workgroupBarrier();
    var p: array<f32, ${TILE / 2}>;
    for (var e = 0u; e < ${TILE / 2}u; e = e + 1u) {
      let c = 2u * e + half;
      p[e] = select(0.0, exp(${keyRow('c')} - rowLse), visible(j0 + c, ra, rb, rc));
    }
    workgroupBarrier();
    ${w.scores('gl', 'vt', 0)}
    workgroupBarrier();
    for (var e = 0u; e < ${TILE / 2}u; e = e + 1u) {
      let c = 2u * e + half;
      qp[pOff + r * ${SP}u + c] = f16(p[e] * (${keyRow('c')} - dl));
    }
    workgroupBarrier();
    ${w.accumulate('a', 'qp', 'kt', 0)}
  }
  ${w.writeRows('a', 'dq', w.base.q('i'), 'i < u.Lq', ' * u.scale')}
}`;
}

// Backward, key side: one subgroup per 16 keys; query tiles of 32 staged (q scaled, dO, their lse, δ and ranges).
// dv_j = Σ_i p_ij dO_i, dk_j = Σ_i p_ij (dO_i·v_j − δ_i) · scale·q_i.
function gradKVWgsl(hd: number, x: MatrixSyntax): string {
  const w = pieces(hd, x);
  const T = tileFor(hd);
  const G = TILE * w.SH; // where the dO tile starts in qg
  const keyRow = (c: string) => `ss[sOff + r * ${SS}u + ${c}]`;
  return /* wgsl */ `${w.header}
${INPUTS4}
@group(0) @binding(4) var<storage, read> dO: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;
${UNIFORMS}
@group(0) @binding(9) var<uniform> u: U;
${common(hd, T)}
var<workgroup> qg: array<f16, ${ROWS * w.SH}>; // the key block's k, then its v; then a q tile and a dO tile
var<workgroup> pt: array<f16, ${4 * 16 * SP}>;
var<workgroup> dst: array<f16, ${4 * 16 * SP}>;
var<workgroup> rowLse: array<f32, ${TILE}>;
var<workgroup> rowDelta: array<f32, ${TILE}>;
var<workgroup> rowRange: array<u32, ${3 * TILE}>;
${WORKGROUP}
@compute @workgroup_size(128)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  ${w.threadIds}
  let jFirst = wg.x * ${ROWS}u;
  let jEnd = min(jFirst + ${ROWS}u, u.Lk);
  let j = jFirst + sg * 16u + r; // this thread's key
  ${w.stage('qg', 0, 'k', 'k', 'jFirst', ROWS, 'u.Lk')}
  workgroupBarrier();
  ${w.lefts('kl', 'qg')}
  workgroupBarrier();
  ${w.stage('qg', 0, 'v', 'v', 'jFirst', ROWS, 'u.Lk')}
  workgroupBarrier();
  ${w.lefts('vl', 'qg')}
  ${w.zeros('dk')}
  ${w.zeros('dv')}
  for (var blk = 0u; blk < queryBlocks(); blk = blk + ${TILE / T}u) {
    if (!tileNeeded(blk, min(blk + ${TILE / T}u, queryBlocks()), jFirst, jEnd)) { continue; }
    let i0 = blk * T;
    workgroupBarrier();
    ${w.stage('qg', 0, 'q', 'q', 'i0', TILE, 'u.Lq', ' * u.scale')}
    ${w.stage('qg', G, 'dO', 'o', 'i0', TILE, 'u.Lq')}
    if (li < ${TILE}u) {
      let iq = min(i0 + li, u.Lq - 1u);
      rowLse[li] = lse[wg.y * u.Lq + iq];
      rowDelta[li] = delta[wg.y * u.Lq + iq];
      for (var t = 0u; t < 3u; t = t + 1u) { rowRange[3u * li + t] = u32(ranges[3u * iq + t]); }
    }
    workgroupBarrier();
    ${w.scores('kl', 'qg', 0)}
    workgroupBarrier();
    var p: array<f32, ${TILE / 2}>;
    for (var e = 0u; e < ${TILE / 2}u; e = e + 1u) {
      let c = 2u * e + half;
      let seen = i0 + c < u.Lq && (j < rowRange[3u * c] || (j >= rowRange[3u * c + 1u] && j < rowRange[3u * c + 2u]));
      p[e] = select(0.0, exp(${keyRow('c')} - rowLse[c]), seen);
      pt[pOff + r * ${SP}u + c] = f16(p[e]);
    }
    workgroupBarrier();
    ${w.scores('vl', 'qg', G)}
    workgroupBarrier();
    for (var e = 0u; e < ${TILE / 2}u; e = e + 1u) {
      let c = 2u * e + half;
      dst[pOff + r * ${SP}u + c] = f16(p[e] * (${keyRow('c')} - rowDelta[c]));
    }
    workgroupBarrier();
    ${w.accumulate('dv', 'pt', 'qg', G)}
    ${w.accumulate('dk', 'dst', 'qg', 0)}
  }
  ${w.writeRows('dk', 'dk', w.base.k('j'), 'j < u.Lk')}
  ${w.writeRows('dv', 'dv', w.base.v('j'), 'j < u.Lk')}
}`;
}

const kernel = (backend: WebGPUBackendLike, name: string, hd: number, wgsl: (hd: number, x: MatrixSyntax) => string) =>
  matrixKernel(backend, `${name}/${hd}`, (x) => wgsl(hd, x))!;
/** The forward kernel, and the dq and dk/dv kernels, of head size `hd` (where the tensor-core matmul is installed). */
const forwardKernel = (backend: WebGPUBackendLike, hd: number) =>
  kernel(backend, 'tensorCoreAttention', hd, forwardWgsl);
const backwardKernels = (backend: WebGPUBackendLike, hd: number) => [
  kernel(backend, 'tensorCoreAttentionGradQ', hd, gradQWgsl),
  kernel(backend, 'tensorCoreAttentionGradKV', hd, gradKVWgsl),
];

type T = tf.Tensor;
type Forward = (b: WebGPUBackendLike, s: FlashShape, q: T, k: T, v: T, r: tf.Tensor1D) => [tf.Tensor3D, tf.Tensor1D];
type Backward = (b: WebGPUBackendLike, s: FlashShape, ...a: [T, T, T, tf.Tensor1D, T, T, T]) => [T, T, T];

const forward: Forward = (backend, s, q, k, v, ranges) => {
  const o = emptyTensor(backend, [s.N, s.Lq, s.H * s.hd]);
  const lse = emptyTensor(backend, [s.N * s.H * s.Lq]);
  const grid = [Math.ceil(s.Lq / ROWS), s.N * s.H] as const;
  forwardKernel(backend, s.hd).dispatch(backend, [q, k, v, ranges, o, lse], flashUniforms(s), grid, [o, lse]);
  return [asTensor(o), asTensor(lse)];
};

const backward: Backward = (backend, s, q, k, v, ranges, o, lse, dO) => {
  const [gradQ, gradKV] = backwardKernels(backend, s.hd);
  const u = flashUniforms(s);
  const dq = emptyTensor(backend, q.shape);
  const delta = emptyTensor(backend, [s.N * s.H * s.Lq]);
  gradQ.dispatch(
    backend,
    [q, k, v, ranges, o, dO, lse, dq, delta],
    u,
    [Math.ceil(s.Lq / ROWS), s.N * s.H],
    [dq, delta],
  );
  const dk = emptyTensor(backend, k.shape);
  const dv = emptyTensor(backend, v.shape);
  gradKV.dispatch(backend, [q, k, v, ranges, dO, lse, delta, dk, dv], u, [Math.ceil(s.Lk / ROWS), s.N * s.H], [dk, dv]);
  backend.disposeData(delta.dataId);
  return [asTensor(dq), asTensor(dk), asTensor(dv)];
};

/**
 * o [N, Lq, H·hd] and the per-row log-sum-exp [N·H·Lq] (as `flashAttentionForward`) on tensor cores; null when
 * shape `s` does not run there (`tensorCoreAttention`).
 */
export function tensorCoreAttentionForward(...a: Parameters<Forward>): ReturnType<Forward> | null {
  return tensorCoreAttention(a[1]) ? forward(...a) : null;
}

/** dq, dk, dv (as `flashAttentionBackward`) on tensor cores; null when shape `s` does not run there. */
export function tensorCoreAttentionBackward(...a: Parameters<Backward>): ReturnType<Backward> | null {
  return tensorCoreAttention(a[1]) ? backward(...a) : null;
}

/** The outputs on which the tensor-core and fp32 kernels are compared. */
export type AttentionErrors = Record<'o' | 'lse' | 'dq' | 'dk' | 'dv', number>;

/** The flat indices that layout `l` addresses for `rows` rows of shape `s`. */
function layoutIndices(l: HeadLayout, s: FlashShape, rows: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < s.N; n++)
    for (let h = 0; h < s.H; h++)
      for (let i = 0; i < rows; i++)
        for (let d = 0; d < s.hd; d++) out.push(l.offset + n * l.sN + h * l.sH + i * l.sL + d);
  return out;
}

/**
 * max |tensor cores - fp32| / max |fp32| of each output, the tensor-core kernels against `attention.ts`'s on inputs
 * q, k, v (in `s`'s layouts) and dO [N, Lq, H·hd] under key `ranges`, whatever the precision setting. The gradients
 * are compared where their input's layout puts them (v may be a part of qkv, whose other columns are QK-norm's).
 */
export async function tensorCoreAttentionErrors(
  backend: WebGPUBackendLike,
  s: FlashShape,
  [q, k, v, dO]: T[],
  ranges: Int32Array,
): Promise<AttentionErrors> {
  const r = rangesTensor(ranges, s.hd);
  const run = async (fwd: Forward, bwd: Backward) => {
    const [o, lse] = fwd(backend, s, q, k, v, r);
    const grads = bwd(backend, s, q, k, v, r, o, lse, dO);
    const out = await Promise.all([o, lse, ...grads].map((t) => t.data() as Promise<Float32Array>));
    tf.dispose([o, lse, ...grads]);
    return out;
  };
  const fp32 = await run(flashAttentionForward, flashAttentionBackward);
  const tc = await run(forward, backward);
  r.dispose();
  const all = (x: Float32Array) => x.map((_, i) => i);
  const at = [
    all(fp32[0]),
    all(fp32[1]),
    layoutIndices(s.q, s, s.Lq),
    layoutIndices(s.k, s, s.Lk),
    layoutIndices(s.v, s, s.Lk),
  ];
  const error = (i: number) => {
    let [diff, scale] = [0, 0];
    for (const j of at[i]) {
      diff = Math.max(diff, Math.abs(tc[i][j] - fp32[i][j]));
      scale = Math.max(scale, Math.abs(fp32[i][j]));
    }
    return diff / scale;
  };
  return { o: error(0), lse: error(1), dq: error(2), dk: error(3), dv: error(4) };
}

/** The largest error `installTensorCoreAttention` accepts (fp16 operands; 0.04-0.2 % seen, 2-4x that on wrong tiles). */
export const ATTENTION_TOLERANCE = 0.005;

const ready = new WeakSet<object>(); // devices whose tensor-core attention compiled and passed its self-test

/**
 * Compiles the tensor-core attention for `headSizes` on a device with the tensor-core matmul installed, checks it
 * against the fp32 kernels (ragged blocks, a mask of prefix and window ranges) and, if it passes, lets training use
 * it. Returns what happened, for the backend report.
 */
export async function installTensorCoreAttention(
  backend: WebGPUBackendLike,
  headSizes: readonly number[] = [16, 32, 48, 64],
): Promise<string> {
  // whatever goes wrong here leaves training on the fp32 kernels, never the backend unusable
  return install(backend, headSizes).catch(
    (e) => `fp32 attention (tensor-core attention: ${e instanceof Error ? e.message : String(e)})`,
  );
}

async function install(backend: WebGPUBackendLike, headSizes: readonly number[]): Promise<string> {
  if (!tensorCoresAvailable()) return 'fp32 attention';
  const why = await compileErrors(
    backend,
    headSizes.flatMap((hd) => [forwardKernel(backend, hd), ...backwardKernels(backend, hd)]),
  );
  if (why) return `fp32 attention (tensor-core attention did not compile: ${why})`;
  const hd = Math.max(...headSizes);
  const [N, H, L] = [2, 2, 70]; // a ragged block of 64 rows and tile of 32
  const s = selfAttentionShape(N, H, L, hd);
  // rows see 4 condition keys and a window of their own 16-row step, the window empty for the first steps' clean rows
  const ranges = new Int32Array(3 * L);
  for (let i = 0; i < L; i++)
    ranges.set([4, Math.max(4, i - (i % 16)), i < 20 ? 4 : Math.min(L, i - (i % 16) + 16)], 3 * i);
  const inputs = [0, 1, 2, 3].map((seed) =>
    tf.tidy(() =>
      tf
        .sin(tf.range(seed, seed + N * L * H * hd).mul(12.9898))
        .mul(2)
        .reshape([N, L, H * hd]),
    ),
  );
  // in an error scope, so that a kernel the device rejects when it runs leaves no error behind for later reads
  const scopes = backend.device as unknown as ErrorScopes;
  scopes.pushErrorScope('validation');
  let errors: AttentionErrors | null = null;
  let thrown = '';
  try {
    errors = await tensorCoreAttentionErrors(backend, s, inputs, ranges);
  } catch (e) {
    thrown = e instanceof Error ? e.message : String(e);
  } finally {
    tf.dispose(inputs);
  }
  const invalid = (await scopes.popErrorScope())?.message ?? thrown;
  if (invalid || !errors) return `fp32 attention (tensor-core attention's self-test failed: ${invalid.split('\n')[0]})`;
  const worst = Math.max(...Object.values(errors));
  if (!(worst <= ATTENTION_TOLERANCE))
    return `fp32 attention (tensor-core attention failed its self-test: error ${worst.toExponential(1)} of the largest value)`;
  ready.add(backend.device);
  return 'attention on tensor cores';
}
