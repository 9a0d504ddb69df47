/**
 * Matmul on tensor cores through WebGPU subgroup matrices (`chromium-experimental-subgroup-matrix`): fp32
 * tensors are rounded to fp16 while staged in workgroup memory, multiplied in 16x16x16 tiles and accumulated
 * in fp32, like PyTorch's fp16 autocast. It replaces tfjs's `BatchMatMul` on webgpu when the adapter offers
 * fp16 subgroup matrices with 32-wide subgroups (NVIDIA) and the kernel passes its self-test;
 * `setMatmulPrecision('f32')` / $CAUSALFUSION_MATMUL=f32 keep tfjs's fp32 kernel, the path everywhere else.
 *
 * A workgroup of subgroups computes a block of C (`MATMUL_TILES`: 128x256 down to 64x64, each subgroup a few 16x16
 * result tiles) over K in stages of 32 or 64; each product takes the largest block whose blocks, with the K splits
 * it gets, still fill the GPU (`tileFor`); where the blocks alone fill at most half of it (weight gradients, where K
 * is the token count), K is split across workgroups and a second kernel sums the partials (`splitsFor`). One kernel per block shape and
 * transpose, compiled and self-tested at install. Ragged edges are zero-padded when staged and written through a
 * per-subgroup staging tile, so any M, N, K work; transposed operands are read in their stored order (coalesced)
 * and, in the shipped shapes, staged so too and loaded column-major. Small products stay on tfjs.
 *
 * Precision: each product of fp16-rounded inputs is within 2^-10 |a||b| of the exact one (two roundings of
 * 2^-11 each), and fp32 accumulation adds far less, so |C16 - C| <= 2^-10 (|A||B|) elementwise (tested).
 * fp16 flushes magnitudes below 6e-8 and saturates above 65504, so training scales the loss
 * (`lossScaleFor`) to keep the backward's operands near 1.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackendLike } from '../webgpu-types';
import { emptyTensor, FILL_WORKGROUPS, gridStrideGroups, uniformBlock, WgslKernel } from './runner';

/** Matmul precision on webgpu: 'f16' = fp16 inputs, fp32 accumulation on tensor cores (when offered). */
export type MatmulPrecision = 'f16' | 'f32';

let precision: MatmulPrecision = 'f16'; // Node's backend/index.ts applies $CAUSALFUSION_MATMUL
const ready = new WeakSet<object>(); // devices whose tensor-core kernel passed the self-test

/** Chooses the webgpu matmul; 'f16' (the default) takes effect only where the adapter supports it. */
export function setMatmulPrecision(p: MatmulPrecision): void {
  precision = p;
}

/** True when the active webgpu device has a tensor-core matmul that passed its self-test. */
export function tensorCoresAvailable(): boolean {
  return tf.getBackend() === 'webgpu' && ready.has((tf.backend() as WebGPUBackendLike).device);
}

/** True when webgpu matmuls run on tensor cores now. */
export function tensorCoreMatmul(): boolean {
  return precision === 'f16' && tensorCoresAvailable();
}

/** The precision chosen (fp16 applies only where tensor cores are available). */
export function matmulPrecision(): MatmulPrecision {
  return precision;
}

/** `f()` with a module setting at `value`, then as before (after the promise settles, when `f` returns one). */
function withSetting<S, T>(get: () => S, set: (s: S) => void, value: S, f: () => T): T {
  const before = get();
  set(value);
  let result: T;
  try {
    result = f();
  } catch (e) {
    set(before);
    throw e;
  }
  if (result instanceof Promise) return result.finally(() => set(before)) as T;
  set(before);
  return result;
}

/** `f()` with the matmul precision `p`, then the one chosen before again. */
export function withMatmulPrecision<T>(p: MatmulPrecision, f: () => T): T {
  return withSetting(
    () => precision,
    (v) => (precision = v),
    p,
    f,
  );
}

/**
 * The static loss scale of a training step whose loss is a mean over `elements` values: a power of two near
 * `elements`, which brings the backward's per-element gradients (2·w·err / elements) back to order 1 for fp16;
 * 1 when the matmuls are fp32. Exact: scaling and unscaling by powers of two change no bit.
 */
export function lossScaleFor(elements: number): number {
  return tensorCoreMatmul() ? Math.pow(2, Math.floor(Math.log2(Math.max(1, elements)))) : 1;
}

/** WGSL of a subgroup-matrix load/store in the syntax this Dawn accepts (the majorness moved into the template). */
export interface MatrixSyntax {
  load(type: string, ptr: string, offset: string, stride: string, colMajor: boolean): string;
  store(ptr: string, offset: string, value: string, stride: string): string;
}
const SYNTAXES: MatrixSyntax[] = [
  {
    load: (t, p, o, s, col) => `subgroupMatrixLoad<${t}, ${col ? 'col_major' : 'row_major'}>(${p}, ${o}, ${s})`,
    store: (p, o, v, s) => `subgroupMatrixStore<row_major>(${p}, ${o}, ${v}, ${s})`,
  },
  {
    load: (t, p, o, s, col) => `subgroupMatrixLoad<${t}>(${p}, ${o}, ${col}, ${s})`,
    store: (p, o, v, s) => `subgroupMatrixStore(${p}, ${o}, ${v}, false, ${s})`,
  },
];

/**
 * A block shape: a workgroup of `sgM` x `sgN` subgroups computes a (16·tm·sgM) x (16·tn·sgN) block of C, each
 * subgroup tm x tn result tiles of 16 x 16, over K in stages of `bk`. Larger blocks reuse each staged operand
 * more; smaller ones give products with few rows or columns enough workgroups to fill the GPU.
 */
export interface MatmulTile {
  name: string;
  sgM: number;
  sgN: number;
  tm: number;
  tn: number;
  bk: 32 | 64;
  /** Transposed operands are staged in their stored order and loaded column-major (no scattered stores). */
  natural: boolean;
  /** Two staging buffers: the next stage is stored while this one multiplies (one barrier a stage, not two). */
  double: boolean;
  /** Operands rounded to fp16 by a cast kernel first, so that each stage reads half the bytes. */
  half: boolean;
}

/** A block shape with its name derived from its fields (`128x128/4x4 k32 nat dbl`). */
export function matmulTile(t: Omit<MatmulTile, 'name'>): MatmulTile {
  const name = `${16 * t.tm * t.sgM}x${16 * t.tn * t.sgN}/${t.tm}x${t.tn} k${t.bk}${t.natural ? ' nat' : ''}${t.double ? ' dbl' : ''}${t.half ? ' f16in' : ''}`;
  return { ...t, name };
}

/**
 * The block shapes compiled on a tensor-core device, largest first (`tileFor` picks one per product), chosen
 * by the H100 sweep (`BENCH_MATMUL_SWEEP`, 2026-12-07): transposed operands staged in their stored order,
 * 128x256 with 4x4 tiles per subgroup for products that fill the GPU (70-93 TFLOP/s on every large product of a
 * step, where 128x128 with 4x4 tiles fell to 6-26 on the fc2 forward and the weight gradients), then the
 * shapes of 2x2 and 2x4 tiles with K stages of 64. Double buffering (registers) and fp16 operands cast first
 * measured slower.
 */
export const MATMUL_TILES: readonly MatmulTile[] = [
  matmulTile({ sgM: 2, sgN: 4, tm: 4, tn: 4, bk: 32, natural: true, double: false, half: false }),
  matmulTile({ sgM: 4, sgN: 2, tm: 2, tn: 4, bk: 64, natural: true, double: false, half: false }),
  matmulTile({ sgM: 2, sgN: 2, tm: 2, tn: 4, bk: 64, natural: true, double: false, half: false }),
  matmulTile({ sgM: 2, sgN: 2, tm: 2, tn: 2, bk: 64, natural: true, double: false, half: false }),
];

const blockRows = (t: MatmulTile) => 16 * t.tm * t.sgM;
const blockCols = (t: MatmulTile) => 16 * t.tn * t.sgN;
const threads = (t: MatmulTile) => 32 * t.sgM * t.sgN;

const blockCount = (t: MatmulTile, M: number, N: number, batch: number) =>
  Math.ceil(M / blockRows(t)) * Math.ceil(N / blockCols(t)) * batch;

let forcedTile: MatmulTile | null = null;

/** How many ways K may be split across workgroups (weight gradients: batch 1, K = tokens; 256 deep at least). */
const maxSplits = (K: number, batch: number) => (batch > 1 ? 1 : Math.max(1, Math.floor(K / 256)));

/**
 * The block shape for an M x N x K product over `batch`, among `tiles` (largest first): the largest whose blocks,
 * times the K splits `splitsFor` gives it, still give FILL_WORKGROUPS; else the smallest. (`withMatmulTile`
 * forces one, for the bench that measures them.)
 */
export function tileFor(
  M: number,
  N: number,
  K: number,
  batch: number,
  tiles: readonly MatmulTile[] = MATMUL_TILES,
): MatmulTile {
  if (forcedTile) return forcedTile;
  const fits = tiles.find((t) => blockCount(t, M, N, batch) * splitsFor(t, M, N, K, batch) >= FILL_WORKGROUPS);
  return fits ?? tiles[tiles.length - 1];
}

/** `f()` with every tensor-core product on block shape `tile` (the matmul bench's per-shape sweep). */
export function withMatmulTile<T>(tile: MatmulTile, f: () => T): T {
  return withSetting(
    () => forcedTile,
    (t) => (forcedTile = t),
    tile,
    f,
  );
}

/**
 * K splits for an M x N x K product on block shape `t`: K is split across workgroups only when the output's blocks
 * fill at most half the GPU (weight gradients: K = tokens). A product that nearly fills it gains little from a
 * split and pays a buffer of partial sums, sized by the step's AR split, and a pass to sum them: the ablation
 * model's products with a 1024-wide output (232 blocks of 128x256 at batch 16), split in two, came with its
 * tensor-core step going from 450 to 700 ms, host-bound, and its pool from 33 to 50 GB on the H100. `tileFor`
 * counts these splits, so such a product takes the next smaller block shape instead (464 blocks, whole).
 */
export function splitsFor(t: MatmulTile, M: number, N: number, K: number, batch: number): number {
  const blocks = blockCount(t, M, N, batch);
  return 2 * blocks > FILL_WORKGROUPS ? 1 : Math.min(Math.ceil(FILL_WORKGROUPS / blocks), maxSplits(K, batch));
}

/**
 * How the kernel stages A and B in workgroup memory for given transposes: A as [m][k] (row-major left
 * matrices) or, a natural tile's transposed A, as [k][m] (column-major); B as [k][n] or, transposed and
 * natural, [n][k]. Row strides are padded by 8 halves (fewer bank conflicts).
 */
function staging(t: MatmulTile, tA: boolean, tB: boolean) {
  const [BM, BN, BK] = [blockRows(t), blockCols(t), t.bk];
  const aKM = t.natural && tA;
  const bNK = t.natural && tB;
  const SA = aKM ? BM + 8 : BK + 8;
  const SB = bNK ? BK + 8 : BN + 8;
  const aSize = (aKM ? BK : BM) * SA;
  const bSize = (bNK ? BN : BK) * SB;
  const buffers = t.double ? 2 : 1;
  const bytes = 2 * buffers * (aSize + bSize) + 4 * (threads(t) / 32) * 256;
  return { aKM, bNK, SA, SB, aSize, bSize, buffers, bytes };
}

/** The WGSL of block shape `t` for these transposes, in syntax `x`. */
function matmulWgsl(t: MatmulTile, tA: boolean, tB: boolean, x: MatrixSyntax): string {
  const left = 'subgroup_matrix_left<f16, 16, 16>';
  const right = 'subgroup_matrix_right<f16, 16, 16>';
  const [BM, BN, BK, THREADS] = [blockRows(t), blockCols(t), t.bk, threads(t)];
  const s = staging(t, tA, tB);
  const loadsA = (BM * BK) / 4 / THREADS; // float4 loads per thread and stage
  const loadsB = (BN * BK) / 4 / THREADS;
  const rows = Array.from({ length: t.tm }, (_, i) => i);
  const cols = Array.from({ length: t.tn }, (_, j) => j);
  const tiles = rows.flatMap((i) => cols.map((j) => [i, j] as const));
  // the q-th float4 of a stage: A is [M, K] (float4 along k) or, transposed, [K, M] (along m); B is [K, N]
  // (along n) or, transposed, [N, K] (along k)
  const aSlot = tA
    ? `vec2<u32>((q % ${BM / 4}u) * 4u, q / ${BM / 4}u)`
    : `vec2<u32>(q / ${BK / 4}u, (q % ${BK / 4}u) * 4u)`;
  const bSlot = tB
    ? `vec2<u32>((q % ${BK / 4}u) * 4u, q / ${BK / 4}u)`
    : `vec2<u32>(q / ${BN / 4}u, (q % ${BN / 4}u) * 4u)`;
  // staged index of A's (m, k) and B's (k, n), with the float4's i-th element added along its axis
  const aAt = (m: string, k: string) => (s.aKM ? `(${k}) * ${s.SA}u + ${m}` : `(${m}) * ${s.SA}u + ${k}`);
  const bAt = (k: string, n: string) => (s.bNK ? `(${n}) * ${s.SB}u + ${k}` : `(${k}) * ${s.SB}u + ${n}`);
  const aElem = tA ? aAt('sa.x + i', 'sa.y') : aAt('sa.x', 'sa.y + i');
  const bElem = tB ? bAt('sb.x + i', 'sb.y') : bAt('sb.x', 'sb.y + i');
  const V = `vec4<${t.half ? 'f16' : 'f32'}>`; // an operand's float4 in memory and in registers
  const buf = t.double ? (size: number) => ` + buf * ${size}u` : () => '';
  return /* wgsl */ `
enable f16;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
@group(0) @binding(0) var<storage, read> a: array<${V}>;
@group(0) @binding(1) var<storage, read> b: array<${V}>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
struct U { M: u32, N: u32, K: u32, strideA: u32, strideB: u32, splits: u32, kChunk: u32 }
@group(0) @binding(3) var<uniform> u: U;
var<workgroup> at: array<f16, ${s.aSize * s.buffers}>;
var<workgroup> bt: array<f16, ${s.bSize * s.buffers}>;
var<workgroup> stage: array<f32, ${(THREADS / 32) * 256}>;
fn loadStage(li: u32, k0: u32, kEnd: u32, row0: u32, col0: u32, aOff: u32, bOff: u32, ra: ptr<function, array<${V}, ${loadsA}>>, rb: ptr<function, array<${V}, ${loadsB}>>) {
  for (var r = 0u; r < ${loadsA}u; r = r + 1u) {
    let q = li + r * ${THREADS}u;
    let sa = ${aSlot};
    let gm = row0 + sa.x;
    let gk = k0 + sa.y;
    var va = ${V}();
    if (gm < u.M && gk < kEnd) { va = a[(aOff + ${tA ? 'gk * u.M + gm' : 'gm * u.K + gk'}) / 4u]; }
    (*ra)[r] = va;
  }
  for (var r = 0u; r < ${loadsB}u; r = r + 1u) {
    let q = li + r * ${THREADS}u;
    let sb = ${bSlot};
    let gk = k0 + sb.x;
    let gn = col0 + sb.y;
    var vb = ${V}();
    if (gk < kEnd && gn < u.N) { vb = b[(bOff + ${tB ? 'gn * u.K + gk' : 'gk * u.N + gn'}) / 4u]; }
    (*rb)[r] = vb;
  }
}
fn storeStage(li: u32, buf: u32, ra: ptr<function, array<${V}, ${loadsA}>>, rb: ptr<function, array<${V}, ${loadsB}>>) {
  for (var r = 0u; r < ${loadsA}u; r = r + 1u) {
    let q = li + r * ${THREADS}u;
    let sa = ${aSlot};
    let va = vec4<f16>((*ra)[r]);
    for (var i = 0u; i < 4u; i = i + 1u) { at[${aElem}${buf(s.aSize)}] = va[i]; }
  }
  for (var r = 0u; r < ${loadsB}u; r = r + 1u) {
    let q = li + r * ${THREADS}u;
    let sb = ${bSlot};
    let vb = vec4<f16>((*rb)[r]);
    for (var i = 0u; i < 4u; i = i + 1u) { bt[${bElem}${buf(s.bSize)}] = vb[i]; }
  }
}
@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let z = wg.z / u.splits; // batch entry; with split K (batch 1) wg.z is the split and c holds partial sums
  let kBegin = (wg.z % u.splits) * u.kChunk;
  let kEnd = min(u.K, kBegin + u.kChunk);
  let row0 = wg.y * ${BM}u;
  let col0 = wg.x * ${BN}u;
  let aOff = z * u.strideA;
  let bOff = z * u.strideB;
  let cOff = wg.z * u.M * u.N;
  let sg = li / 32u;
  let sr = (sg / ${t.sgN}u) * ${16 * t.tm}u; // this subgroup's rows and columns of the block
  let sc = (sg % ${t.sgN}u) * ${16 * t.tn}u;
  ${tiles.map(([i, j]) => `var c${i}${j} = subgroup_matrix_result<f32, 16, 16>();`).join('\n  ')}
  // the next stage's operands are read from global memory into registers while this one multiplies
  var ra: array<${V}, ${loadsA}>;
  var rb: array<${V}, ${loadsB}>;
  loadStage(li, kBegin, kEnd, row0, col0, aOff, bOff, &ra, &rb);
  ${
    t.double
      ? `storeStage(li, 0u, &ra, &rb);
  workgroupBarrier();
  var buf = 0u;`
      : ''
  }
  for (var k0 = kBegin; k0 < kEnd; k0 = k0 + ${BK}u) {
    let more = k0 + ${BK}u < kEnd;
    ${
      t.double
        ? ''
        : `workgroupBarrier();
    storeStage(li, 0u, &ra, &rb);
    workgroupBarrier();`
    }
    if (more) { loadStage(li, k0 + ${BK}u, kEnd, row0, col0, aOff, bOff, &ra, &rb); }
    for (var kk = 0u; kk < ${BK}u; kk = kk + 16u) {
      ${rows
        .map((i) => {
          const m = `sr + ${16 * i}u`;
          return `let l${i} = ${x.load(left, '&at', `${s.aKM ? `kk * ${s.SA}u + ${m}` : `(${m}) * ${s.SA}u + kk`}${buf(s.aSize)}`, `${s.SA}u`, s.aKM)};`;
        })
        .join('\n      ')}
      ${cols
        .map((j) => {
          const n = `sc + ${16 * j}u`;
          return `let r${j} = ${x.load(right, '&bt', `${s.bNK ? `(${n}) * ${s.SB}u + kk` : `kk * ${s.SB}u + ${n}`}${buf(s.bSize)}`, `${s.SB}u`, s.bNK)};`;
        })
        .join('\n      ')}
      ${tiles.map(([i, j]) => `c${i}${j} = subgroupMatrixMultiplyAccumulate(l${i}, r${j}, c${i}${j});`).join('\n      ')}
    }
    ${
      t.double
        ? `if (more) { storeStage(li, 1u - buf, &ra, &rb); }
    workgroupBarrier();
    buf = 1u - buf;`
        : ''
    }
  }
  if (row0 + ${BM}u <= u.M && col0 + ${BN}u <= u.N) {
    ${tiles.map(([i, j]) => x.store('&c', `cOff + (row0 + sr + ${16 * i}u) * u.N + col0 + sc + ${16 * j}u`, `c${i}${j}`, 'u.N') + ';').join('\n    ')}
    return;
  }
  // a ragged block: each tile goes through this subgroup's staging area, then element by element
  let lane = li % 32u;
  ${tiles
    .map(
      ([i, j]) => `workgroupBarrier();
  ${x.store('&stage', 'sg * 256u', `c${i}${j}`, '16u')};
  workgroupBarrier();
  for (var e = lane; e < 256u; e = e + 32u) {
    let gm = row0 + sr + ${16 * i}u + e / 16u;
    let gn = col0 + sc + ${16 * j}u + e % 16u;
    if (gm < u.M && gn < u.N) { c[cOff + gm * u.N + gn] = stage[sg * 256u + e]; }
  }`,
    )
    .join('\n  ')}
}`;
}

// The sum of split-K partials [splits, n] into [n].
const sumSplits = new WgslKernel(
  'tensorCoreMatmulSplits',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
struct U { n: u32, splits: u32 }
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < u.n; i = i + nwg.x * 256u) {
    var s = 0.0;
    for (var k = 0u; k < u.splits; k = k + 1u) { s = s + partials[k * u.n + i]; }
    c[i] = s;
  }
}`,
);

/** A device's error scopes (a kernel's errors caught there do not reach the backend's sticky error). */
export type ErrorScopes = { pushErrorScope(f: string): void; popErrorScope(): Promise<{ message: string } | null> };

interface BatchMatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

/**
 * Per device: the syntax its Dawn accepts, the kernels compiled so far by block shape and transposes, and (tests
 * only, `emulateTensorCoreMatmul`) a rewrite of their WGSL.
 */
const devices = new WeakMap<
  object,
  {
    syntax: MatrixSyntax;
    /** `MATMUL_TILES` that fit the device's workgroup memory. */
    tiles: MatmulTile[];
    kernels: Map<string, WgslKernel>;
    rewrite?: (wgsl: string) => string;
  }
>();
const grid = (t: MatmulTile, M: number, N: number, z: number): [number, number, number] => [
  Math.ceil(N / blockCols(t)),
  Math.ceil(M / blockRows(t)),
  z,
];
let dispatched = 0; // products run on tensor cores, so that a self-test cannot pass on tfjs's kernel

/**
 * Another kernel on subgroup matrices (`tc-attention.ts`): `wgsl` written in this device's syntax (and rewritten
 * like the matmul's where a test emulates the matrices), made once per `key`; null where no tensor-core path is
 * installed.
 */
export function matrixKernel(
  backend: WebGPUBackendLike,
  key: string,
  wgsl: (x: MatrixSyntax) => string,
): WgslKernel | null {
  const d = devices.get(backend.device);
  if (!d) return null;
  let kern = d.kernels.get(key);
  if (!kern) {
    const code = wgsl(d.syntax);
    d.kernels.set(key, (kern = new WgslKernel(key, d.rewrite ? d.rewrite(code) : code)));
  }
  return kern;
}

/** The kernel of `tile` for these transposes, compiled on first use (each is specialised: no branch on them). */
function kernelFor(backend: WebGPUBackendLike, tile: MatmulTile, tA: boolean, tB: boolean): WgslKernel | null {
  const d = devices.get(backend.device);
  if (!d) return null;
  const key = `${tile.name} ${+tA}${+tB}`;
  let kern = d.kernels.get(key);
  if (!kern) {
    const wgsl = matmulWgsl(tile, tA, tB, d.syntax);
    d.kernels.set(key, (kern = new WgslKernel(`tensorCoreMatmul ${key}`, d.rewrite ? d.rewrite(wgsl) : wgsl)));
  }
  return kern;
}

// fp32 -> fp16, four at a time: the operands of a `half` block shape, packed two to a float32 slot.
const castF16 = new WgslKernel(
  'castF16',
  /* wgsl */ `
enable f16;
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f16>>;
struct U { n: u32 }
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < u.n; i = i + nwg.x * 256u) { y[i] = vec4<f16>(x[i]); }
}`,
);

/** `t` rounded to fp16 into a new tensor of half its floats (its size is a multiple of 4). */
function toHalf(backend: WebGPUBackendLike, t: tf.TensorInfo): tf.TensorInfo {
  const n = tf.util.sizeFromShape(t.shape);
  const h = emptyTensor(backend, [n / 2]);
  castF16.dispatch(backend, [t, h], uniformBlock([['u32', n / 4]]), [gridStrideGroups(n / 4, 256)], [h]);
  return h;
}

/** One product C = op(A)·op(B) (per batch entry, `splits` partial sums over K when > 1) into `out`. */
function dispatchProduct(
  backend: WebGPUBackendLike,
  kern: WgslKernel,
  tile: MatmulTile,
  [a, b, out]: tf.TensorInfo[],
  [M, N, K]: number[],
  [strideA, strideB]: number[],
  batch: number,
  splits: number,
): void {
  const u = uniformBlock([
    ['u32', M],
    ['u32', N],
    ['u32', K],
    ['u32', strideA],
    ['u32', strideB],
    ['u32', splits],
    ['u32', Math.ceil(K / splits / tile.bk) * tile.bk],
  ]);
  dispatched++;
  const operands = tile.half ? [toHalf(backend, a), toHalf(backend, b)] : [a, b];
  kern.dispatch(backend, [...operands, out], u, grid(tile, M, N, batch * splits), [out]);
  if (tile.half) for (const h of operands) backend.disposeData(h.dataId);
}

/** C = op(A)·op(B) on tensor cores for rank >= 2 inputs whose batches agree or one is 1; null if it does not apply. */
function tensorCoreBatchMatMul(
  backend: WebGPUBackendLike,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  { transposeA: tA, transposeB: tB }: BatchMatMulAttrs,
): tf.TensorInfo | null {
  if (!devices.has(backend.device) || precision !== 'f16' || a.dtype !== 'float32' || b.dtype !== 'float32')
    return null;
  const batchOf = (s: number[]) => s.slice(0, -2).reduce((p, q) => p * q, 1);
  const [ba, bb] = [batchOf(a.shape), batchOf(b.shape)];
  if (ba !== bb && ba !== 1 && bb !== 1) return null;
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [M, K] = tA ? [ac, ar] : [ar, ac];
  const N = tB ? br : bc;
  if ((tB ? bc : br) !== K) throw new Error(`matMul: inner dimensions ${K} and ${tB ? bc : br} differ`);
  const batch = Math.max(ba, bb);
  // small products stay on tfjs (and the direct tile store needs an output of >= 16 x 16 floats); operands
  // are read as float4 along their contiguous axis, so that axis must hold whole float4s
  if (M < 16 || N < 16 || K < 16 || M * N * K < 1 << 20) return null;
  if ((tA ? M : K) % 4 !== 0 || (tB ? K : N) % 4 !== 0) return null;
  const batchShape = (ba >= bb ? a.shape : b.shape).slice(0, -2);
  const c = emptyTensor(backend, [...batchShape, M, N]);
  const tile = tileFor(M, N, K, batch, devices.get(backend.device)!.tiles);
  const splits = splitsFor(tile, M, N, K, batch);
  const out = splits > 1 ? emptyTensor(backend, [splits * M * N]) : c;
  const strides = [ba > 1 ? M * K : 0, bb > 1 ? K * N : 0];
  dispatchProduct(backend, kernelFor(backend, tile, tA, tB)!, tile, [a, b, out], [M, N, K], strides, batch, splits);
  if (splits > 1) {
    sumSplits.dispatch(
      backend,
      [out, c],
      uniformBlock([
        ['u32', M * N],
        ['u32', splits],
      ]),
      [gridStrideGroups(M * N, 256)],
      [c],
    );
    backend.disposeData(out.dataId);
  }
  return c;
}

/**
 * c[M, N] = x[M, K]·w[N, K]ᵀ on tensor cores into an existing tensor (a linear layer's product, PyTorch's weight
 * layout), when tensor-core matmuls are on and the shape is one the kernel takes; false otherwise (nothing run).
 */
export function tensorCoreLinearInto(
  backend: WebGPUBackendLike,
  x: tf.TensorInfo,
  w: tf.TensorInfo,
  c: tf.TensorInfo,
  M: number,
): boolean {
  const [N, K] = w.shape;
  if (!tensorCoreMatmul() || M < 16 || N < 16 || K < 16 || M * N * K < 1 << 20 || K % 4 !== 0) return false;
  const tile = tileFor(M, N, K, 1, devices.get(backend.device)!.tiles);
  dispatchProduct(backend, kernelFor(backend, tile, false, true)!, tile, [x, w, c], [M, N, K], [0, 0], 1, 1);
  return true;
}

let registered = false;

/** Routes tfjs's BatchMatMul on webgpu through the tensor-core kernel when it applies. */
function overrideBatchMatMul(): void {
  const original = tf.getKernel('BatchMatMul', 'webgpu');
  if (!original || registered) return;
  registered = true;
  tf.unregisterKernel('BatchMatMul', 'webgpu');
  tf.registerKernel({
    ...original,
    kernelFunc: (args) => {
      const { a, b } = args.inputs as unknown as { a: tf.TensorInfo; b: tf.TensorInfo };
      return (
        tensorCoreBatchMatMul(
          args.backend as unknown as WebGPUBackendLike,
          a,
          b,
          args.attrs as unknown as BatchMatMulAttrs,
        ) ?? original.kernelFunc(args)
      );
    },
  });
}

/** Features to request on a device for the tensor-core path, if the adapter has them all. */
export function tensorCoreFeatures(features: Set<string>, subgroupSizes: [number?, number?]): string[] {
  const wanted = ['shader-f16', 'chromium-experimental-subgroup-matrix'];
  const size32 = subgroupSizes.every((s) => s === undefined || s === 32); // the self-test catches what info leaves out
  return wanted.every((f) => features.has(f)) && size32 ? wanted : [];
}

/**
 * Compiles the kernel in the syntax this Dawn accepts, checks it against a float64 product on shapes with
 * ragged edges, both transposes and a batch, and installs it. Returns what happened, for the backend report.
 */
export async function installTensorCoreMatmul(backend: WebGPUBackendLike): Promise<string> {
  // the first block shape in each syntax until one compiles, then every shape in that syntax
  let why = '';
  for (const syntax of SYNTAXES) {
    const probe = new WgslKernel('tensorCoreMatmul probe', matmulWgsl(MATMUL_TILES[0], false, false, syntax));
    why = (await compileErrors(backend, [probe])) ?? '';
    if (!why) {
      devices.set(backend.device, { syntax, tiles: fitting(backend), kernels: new Map() });
      break;
    }
  }
  if (!devices.has(backend.device)) return `fp32 matmul (tensor-core kernel did not compile: ${why})`;
  const tiles = devices.get(backend.device)!.tiles;
  if (!tiles.length) {
    devices.delete(backend.device);
    return `fp32 matmul (no tensor-core block shape fits ${workgroupLimit(backend)} bytes of workgroup memory)`;
  }
  for (const tile of tiles) {
    const err = await compileMatmulTile(backend, tile);
    if (err) {
      devices.delete(backend.device);
      return `fp32 matmul (tensor-core kernel ${tile.name}: ${err})`;
    }
  }
  overrideBatchMatMul();
  let worst = 0;
  // in an error scope, so that a kernel the device rejects when it runs leaves no error behind for later reads
  const scopes = backend.device as unknown as ErrorScopes;
  scopes.pushErrorScope('validation');
  for (const tile of tiles) {
    const err = await selfTest(tile).catch(() => NaN);
    worst = Math.max(worst, err);
  }
  const invalid = await scopes.popErrorScope();
  if (invalid) {
    devices.delete(backend.device);
    return `fp32 matmul (tensor-core kernel failed its self-test: ${invalid.message.split('\n')[0]})`;
  }
  if (!(worst <= 1)) {
    devices.delete(backend.device);
    return `fp32 matmul (tensor-core kernel failed its self-test: error ${worst.toFixed(2)} x the fp16 bound)`;
  }
  ready.add(backend.device);
  return precision === 'f16'
    ? 'matmul on tensor cores (fp16 inputs, fp32 accumulation; CAUSALFUSION_MATMUL=f32 for fp32)'
    : 'fp32 matmul (CAUSALFUSION_MATMUL=f32; tensor cores available)';
}

/**
 * Tests only: installs the tensor-core path on a device without subgroup matrices, each kernel's WGSL rewritten
 * by `rewrite` (scalar stand-ins for the matrix builtins), so that the kernels' staging, edges, transposes and
 * split K run where CI runs. Returns the function that removes it again.
 */
export function emulateTensorCoreMatmul(backend: WebGPUBackendLike, rewrite: (wgsl: string) => string): () => void {
  devices.set(backend.device, { syntax: SYNTAXES[0], tiles: fitting(backend), kernels: new Map(), rewrite });
  overrideBatchMatMul();
  ready.add(backend.device);
  return () => {
    devices.delete(backend.device);
    ready.delete(backend.device);
  };
}

const TRANSPOSES = [false, true].flatMap((tA) => [false, true].map((tB) => [tA, tB] as const));

/** The workgroup memory a block shape needs for its most demanding transposes, bytes. */
const tileBytes = (t: MatmulTile) => Math.max(...TRANSPOSES.map(([tA, tB]) => staging(t, tA, tB).bytes));
const workgroupLimit = (backend: WebGPUBackendLike) =>
  (backend.device as unknown as { limits: Record<string, number> }).limits.maxComputeWorkgroupStorageSize;
/** `MATMUL_TILES` that fit this device's workgroup memory (all on NVIDIA's 48 KiB). */
const fitting = (backend: WebGPUBackendLike) => MATMUL_TILES.filter((t) => tileBytes(t) <= workgroupLimit(backend));

/** The first validation error compiling `kerns` on this device, or null. */
export async function compileErrors(backend: WebGPUBackendLike, kerns: WgslKernel[]): Promise<string | null> {
  const device = backend.device as unknown as ErrorScopes;
  device.pushErrorScope('validation');
  for (const k of kerns) k.compile(backend);
  const err = await device.popErrorScope();
  return err ? err.message.split('\n')[0] : null;
}

/**
 * Compiles a block shape's kernels (all four transposes) on a device whose tensor-core kernel is installed:
 * null when they compiled, else why not (too much workgroup memory for the adapter, or the compiler's error).
 * The matmul bench uses it for shapes outside `MATMUL_TILES`.
 */
export async function compileMatmulTile(backend: WebGPUBackendLike, tile: MatmulTile): Promise<string | null> {
  if (!devices.has(backend.device)) return 'no tensor-core matmul on this device';
  const [bytes, limit] = [tileBytes(tile), workgroupLimit(backend)];
  if (bytes > limit) return `needs ${bytes} bytes of workgroup memory, the adapter allows ${limit}`;
  return compileErrors(
    backend,
    TRANSPOSES.map(([tA, tB]) => kernelFor(backend, tile, tA, tB)!),
  );
}

/**
 * Largest |C16 - C| / (2^-10 (|A||B|) + 1e-30) of block shape `tile` on tensor cores (whatever precision the
 * user chose) over a few awkward shapes (<= 1 passes); throws if a product did not run on the kernel.
 */
export function selfTest(
  tile: MatmulTile,
  cases: [number, number, number, boolean, boolean, number][] = SELF_TEST,
): Promise<number> {
  return withMatmulPrecision('f16', () => withMatmulTile(tile, () => worstErrorRatio(cases)));
}

async function worstErrorRatio(cases: [number, number, number, boolean, boolean, number][]): Promise<number> {
  let worst = 0;
  for (const [M, N, K, tA, tB, batch] of cases) {
    const rand = (n: number, seed: number) =>
      Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 2);
    const ha = rand(batch * M * K, 1);
    const hb = rand(batch * K * N, 2);
    const [at, bt] = [
      tf.tensor(ha, tA ? [batch, K, M] : [batch, M, K]),
      tf.tensor(hb, tB ? [batch, N, K] : [batch, K, N]),
    ];
    const before = dispatched;
    const ct = tf.matMul(at, bt, tA, tB);
    if (dispatched === before) throw new Error(`matmul ${M}x${K}x${N} did not reach the tensor-core kernel`);
    const hc = (await ct.data()) as Float32Array;
    tf.dispose([at, bt, ct]);
    worst = Math.max(worst, matmulErrorRatio(ha, hb, hc, M, N, K, tA, tB, batch));
  }
  return worst;
}

// ragged edges; full blocks, batched; split K (4 chunks, the last one short); both transposes
const SELF_TEST: [number, number, number, boolean, boolean, number][] = [
  [150, 200, 96, false, false, 1],
  [128, 256, 64, false, true, 2],
  [160, 136, 1100, true, false, 1],
  [48, 300, 200, true, true, 1],
];

/** max over elements of |c - exact| / (2^-10 Σ|a||b|): the fp16-input bound the kernel must meet. */
export function matmulErrorRatio(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  M: number,
  N: number,
  K: number,
  tA: boolean,
  tB: boolean,
  batch: number,
): number {
  let worst = 0;
  for (let z = 0; z < batch; z++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let exact = 0;
        let bound = 0;
        for (let k = 0; k < K; k++) {
          const x = a[z * M * K + (tA ? k * M + i : i * K + k)];
          const y = b[z * K * N + (tB ? j * K + k : k * N + j)];
          exact += x * y;
          bound += Math.abs(x * y);
        }
        worst = Math.max(worst, Math.abs(c[z * M * N + i * N + j] - exact) / (Math.pow(2, -10) * bound + 1e-30));
      }
    }
  }
  return worst;
}
