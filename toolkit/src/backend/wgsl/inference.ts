/**
 * The kernels of the fused sampling path (model/gpu-inference): a denoising forward of the whole model in
 * ~9 dispatches per block, all of them the project's own WGSL (cached bind groups and uniforms: a few µs of
 * host time each, against ~30 µs for a tfjs op), and no tfjs op inside a diffusion chain.
 *
 * - `linearInto`: y (=|+=) x·Wᵀ (+ b) (then GELU), W in PyTorch's [out, in] layout, fp32, 64 x 64 output tiles;
 *   bias, GELU and the residual add are the epilogue, so a block's MLP is two dispatches.
 * - `qkNormToCache` (qk-norm.ts): splits the fused qkv, applies the per-head q / k LayerNorms (QK-norm) and writes
 *   k and v straight into the layer's KV cache at the chunk's offset: the cache never grows by concatenation.
 * - `embedTokens`: x_proj(x) + pos_embed[position] (+ t-embedding) for a chunk, rows of the CFG copy included.
 * - `condTokens`: the label table row as numCondTokens tokens + cond_pos_embed.
 * - `guidedStep`: CFG mix, eps from the output (eps or v), x0, and the DDPM / DDIM update in one pass.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ReverseStepCoefficients } from '../../diffusion/gaussian';
import type { WebGPUBackendLike } from '../webgpu-types';
import { ERFINV_CENTRAL, ERFINV_TAIL } from '../../rng';
import { FILL_WORKGROUPS, gridStrideGroups, uniformBlock, WgslKernel } from './runner';
import { tensorCoreLinearInto } from './matmul';

const TK = 16; // K per stage
const GELU_K = 2 * Math.sqrt(2 / Math.PI);

/** What the linear kernel does after the product. */
export interface LinearEpilogue {
  bias: boolean;
  gelu: boolean;
  /** y += result (the residual stream), instead of y = result. */
  accumulate: boolean;
}

/**
 * The fp32 linear kernel: 256 threads as 16 x 16, each computing g x g blocks of 4 x 4 outputs (g = 1: a 64 x 64
 * tile, for few rows; g = 2: 128 x 128, more reuse of each staged value), the blocks of a thread 64 rows / columns
 * apart so that a k-step reads contiguous float4s of the staged tiles.
 */
const linearCode = (e: LinearEpilogue, g: number) => {
  const tile = 64 * g;
  const blocks = [...Array(g).keys()].flatMap((gi) => [...Array(g).keys()].map((gj) => [gi, gj] as const));
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
struct U { M: u32, N: u32, K: u32, kChunk: u32 }
@group(0) @binding(4) var<uniform> u: U;
var<workgroup> xs: array<vec4<f32>, ${(TK * tile) / 4}>; // [k][m / 4]
var<workgroup> ws: array<vec4<f32>, ${(TK * tile) / 4}>; // [k][n / 4]
fn stage(li: u32, row0: u32, col0: u32, k0: u32, kEnd: u32) {
  // ${tile} rows x ${TK} k of x and of w, a float4 along k per load, stored k-major
  for (var l = 0u; l < ${g}u; l = l + 1u) {
    let q = li + l * 256u;
    let r = q / 4u;
    let kq = (q % 4u) * 4u;
    var vx = vec4<f32>();
    var vw = vec4<f32>();
    if (row0 + r < u.M && k0 + kq < kEnd) { vx = x[((row0 + r) * u.K + k0 + kq) / 4u]; }
    if (col0 + r < u.N && k0 + kq < kEnd) { vw = w[((col0 + r) * u.K + k0 + kq) / 4u]; }
    for (var i = 0u; i < 4u; i = i + 1u) {
      let base = (kq + i) * ${tile / 4}u + r / 4u;
      xs[base][r % 4u] = vx[i];
      ws[base][r % 4u] = vw[i];
    }
  }
}
fn finish(base: u32, m: u32, n: u32, acc: f32) {
  if (m >= u.M || n >= u.N) { return; }
  var v = acc;
  ${e.bias ? 'v = v + b[n];' : ''}
  ${e.gelu ? `v = v / (1.0 + exp(-(v + v * v * v * 0.044715) * ${GELU_K}));` : ''}
  let i = base + m * u.N + n;
  ${e.accumulate ? 'y[i] = y[i] + v;' : 'y[i] = v;'}
}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  ${e.bias ? '' : '_ = b[0]; // bound in every variant: the auto layout keeps only bindings in use'}
  let row0 = wg.y * ${tile}u;
  let col0 = wg.x * ${tile}u;
  let tr = li / 16u; // rows 64·gi + 4·tr + i and columns 64·gj + 4·tc + j
  let tc = li % 16u;
  // with K split over wg.z (few output tiles), each split writes its partial product at its own offset
  let kBegin = wg.z * u.kChunk;
  let kEnd = min(u.K, kBegin + u.kChunk);
  let base = wg.z * u.M * u.N;
  var acc: array<vec4<f32>, ${4 * g * g}>; // [gi][gj][i] -> 4 columns
  for (var k0 = kBegin; k0 < kEnd; k0 = k0 + ${TK}u) {
    workgroupBarrier();
    stage(li, row0, col0, k0, kEnd);
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk = kk + 1u) {
      ${[...Array(g).keys()].map((gi) => `let a${gi} = xs[kk * ${tile / 4}u + ${16 * gi}u + tr];`).join('\n      ')}
      ${[...Array(g).keys()].map((gj) => `let b${gj} = ws[kk * ${tile / 4}u + ${16 * gj}u + tc];`).join('\n      ')}
      ${blocks
        .flatMap(([gi, gj]) =>
          ['x', 'y', 'z', 'w'].map((c, i) => {
            const slot = (gi * g + gj) * 4 + i;
            return `acc[${slot}] = acc[${slot}] + a${gi}.${c} * b${gj};`;
          }),
        )
        .join('\n      ')}
    }
  }
  ${blocks
    .map(
      ([gi, gj]) => `for (var i = 0u; i < 4u; i = i + 1u) {
    let v = acc[${(gi * g + gj) * 4}u + i];
    let m = row0 + ${64 * gi}u + tr * 4u + i;
    let n = col0 + ${64 * gj}u + tc * 4u;
    finish(base, m, n, v.x);
    finish(base, m, n + 1u, v.y);
    finish(base, m, n + 2u, v.z);
    finish(base, m, n + 3u, v.w);
  }`,
    )
    .join('\n  ')}
}`;
};

/** How the fp32 linear kernel covers a product: tiles of 64·g, and K split over `splits` workgroups. */
export interface LinearPlan {
  g: 1 | 2;
  splits: number;
}

let forcedPlan: LinearPlan | null = null;

/**
 * The plan for an M x N x K product with room for `scratch` floats of partial products: 128 x 128 tiles where
 * they still make FILL_WORKGROUPS, else 64 x 64; where even those are too few (a sampling step's handful of
 * tokens, an output of one model width), K is split so that FILL_WORKGROUPS run, each partial sum going to
 * the scratch and the epilogue adding them up.
 */
export function linearPlan(M: number, N: number, K: number, scratch: number): LinearPlan {
  if (forcedPlan) return forcedPlan;
  const blocks = (g: number) => Math.ceil(M / (64 * g)) * Math.ceil(N / (64 * g));
  if (blocks(2) >= FILL_WORKGROUPS) return { g: 2, splits: 1 };
  const splits = Math.min(Math.ceil(FILL_WORKGROUPS / blocks(1)), Math.floor(K / 64), Math.floor(scratch / (M * N)));
  return { g: 1, splits: Math.max(1, splits) };
}

/** Forces the plan of every fp32 linear product (null: `linearPlan` decides); for the kernel tests. */
export function forceLinearPlan(plan: LinearPlan | null): void {
  forcedPlan = plan;
}

const linearKernels = new Map<string, WgslKernel>();

/** The epilogue alone, on a product c [M, N] already formed (the tensor-core path). */
const epilogueCode = (e: LinearEpilogue) => /* wgsl */ `
@group(0) @binding(0) var<storage, read> c: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
struct U { n: u32, N: u32, splits: u32 }
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  ${e.bias ? '' : '_ = b[0];'}
  for (var i = gid.x; i < u.n; i = i + nwg.x * 256u) {
    var v = c[i];
    for (var s = 1u; s < u.splits; s = s + 1u) { v = v + c[s * u.n + i]; }
    ${e.bias ? 'v = v + b[i % u.N];' : ''}
    ${e.gelu ? `v = v / (1.0 + exp(-(v + v * v * v * 0.044715) * ${GELU_K}));` : ''}
    ${e.accumulate ? 'y[i] = y[i] + v;' : 'y[i] = v;'}
  }
}`;

const epilogueKernels = new Map<string, WgslKernel>();

/**
 * y[M, N] (+)= act(c + b): the epilogue of `linearInto` on a product formed elsewhere, or on `splits` partial
 * products [splits, M, N] that it adds up first.
 */
export function linearEpilogue(
  gpu: WebGPUBackendLike,
  c: tf.TensorInfo,
  b: tf.TensorInfo,
  y: tf.TensorInfo,
  M: number,
  N: number,
  e: LinearEpilogue,
  splits = 1,
): void {
  const key = `${+e.bias}${+e.gelu}${+e.accumulate}`;
  let kern = epilogueKernels.get(key);
  if (!kern) epilogueKernels.set(key, (kern = new WgslKernel(`linearEpilogue${key}`, epilogueCode(e))));
  kern.dispatch(
    gpu,
    [c, b, y],
    uniformBlock([
      ['u32', M * N],
      ['u32', N],
      ['u32', splits],
    ]),
    [gridStrideGroups(M * N, 256)],
    [y],
  );
}

/**
 * y[M, N] (+)= x[M, K]·w[N, K]ᵀ (+ b[N]) (GELU) into an existing tensor. K must be a multiple of 4 (float4
 * loads); without a bias, `b` is any tensor (bound, not read). `scratch` (>= M·N floats) holds products before
 * their epilogue: with tensor-core matmuls on, the product runs on tensor cores (fp16 inputs, fp32
 * accumulation); in fp32, a product too small to fill the GPU splits K there (`linearPlan`). Otherwise one
 * fp32 dispatch does the product and the epilogue.
 */
export function linearInto(
  gpu: WebGPUBackendLike,
  x: tf.TensorInfo,
  w: tf.TensorInfo,
  b: tf.TensorInfo,
  y: tf.TensorInfo,
  M: number,
  e: LinearEpilogue,
  scratch?: tf.TensorInfo,
): void {
  const [N, K] = w.shape;
  if (K % 4 !== 0) throw new Error(`linearInto: K = ${K} is not a multiple of 4`);
  if (scratch && tensorCoreLinearInto(gpu, x, w, scratch, M)) {
    linearEpilogue(gpu, scratch, b, y, M, N, e);
    return;
  }
  const { g, splits } = linearPlan(M, N, K, scratch ? tf.util.sizeFromShape(scratch.shape) : 0);
  const split = splits > 1 && scratch;
  const ep = split ? { bias: false, gelu: false, accumulate: false } : e;
  const key = `${+ep.bias}${+ep.gelu}${+ep.accumulate}/${g}`;
  let kern = linearKernels.get(key);
  if (!kern) linearKernels.set(key, (kern = new WgslKernel(`linear${key}`, linearCode(ep, g))));
  const out = split ? scratch : y;
  kern.dispatch(
    gpu,
    [x, w, b, out],
    uniformBlock([
      ['u32', M],
      ['u32', N],
      ['u32', K],
      ['u32', split ? Math.ceil(K / splits / TK) * TK : K],
    ]),
    [Math.ceil(N / (64 * g)), Math.ceil(M / (64 * g)), split ? splits : 1],
    [out],
  );
  if (split) linearEpilogue(gpu, scratch, b, y, M, N, e, splits);
}

const embed = new WgslKernel(
  'embedTokens',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> pw: array<f32>;
@group(0) @binding(2) var<storage, read> pb: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<f32>;
@group(0) @binding(4) var<storage, read> index: array<i32>;
@group(0) @binding(5) var<storage, read> temb: array<f32>;
@group(0) @binding(6) var<storage, read> params: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;
struct U { rows: u32, N: u32, Lq: u32, d: u32, D: u32, useT: u32 }
@group(0) @binding(8) var<uniform> u: U;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var e = gid.x; e < u.rows * u.Lq * u.D; e = e + nwg.x * 256u) {
    let c = e % u.D;
    let token = e / u.D;
    let n = (token / u.Lq) % u.N; // the CFG copy reads its own sample's tokens
    let src = n * u.Lq + token % u.Lq;
    var s = 0.0;
    for (var j = 0u; j < u.d; j = j + 1u) { s = s + x[src * u.d + j] * pw[c * u.d + j]; }
    var v = (s + pb[c]) + pos[u32(index[src]) * u.D + c];
    if (u.useT == 1u) { v = v + temb[u32(params[0]) * u.D + c]; }
    y[e] = v;
  }
}`,
);

/**
 * y[rows, Lq, D] = x_proj(x[n]) + pos_embed[index[n]] (+ temb[tRow] for noisy tokens, tRow from the step's
 * `params`), n = row mod N: x holds N samples' tokens [N, Lq, d] and `index` their raster positions [N, Lq].
 */
export function embedTokens(
  gpu: WebGPUBackendLike,
  t: {
    x: tf.TensorInfo;
    w: tf.TensorInfo;
    b: tf.TensorInfo;
    pos: tf.TensorInfo;
    index: tf.TensorInfo;
    temb: tf.TensorInfo;
    params: tf.TensorInfo;
    y: tf.TensorInfo;
  },
  s: { rows: number; N: number; Lq: number; d: number; D: number; noisy: boolean },
): void {
  embed.dispatch(
    gpu,
    [t.x, t.w, t.b, t.pos, t.index, t.temb, t.params, t.y],
    uniformBlock([
      ['u32', s.rows],
      ['u32', s.N],
      ['u32', s.Lq],
      ['u32', s.d],
      ['u32', s.D],
      ['u32', +s.noisy],
    ]),
    [gridStrideGroups(s.rows * s.Lq * s.D, 256)],
    [t.y],
  );
}

const cond = new WgslKernel(
  'condTokens',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> table: array<f32>;
@group(0) @binding(1) var<storage, read> condPos: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
struct U { rows: u32, nc: u32, D: u32 }
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let per = u.nc * u.D;
  for (var e = gid.x; e < u.rows * per; e = e + nwg.x * 256u) {
    let r = e / per;
    y[e] = table[u32(labels[r]) * per + e % per] + condPos[e % per];
  }
}`,
);

/** y[rows, nc, D] = label table row of labels[r] as nc tokens + cond_pos_embed. */
export function condTokens(
  gpu: WebGPUBackendLike,
  t: { table: tf.TensorInfo; condPos: tf.TensorInfo; labels: tf.TensorInfo; y: tf.TensorInfo },
  s: { rows: number; nc: number; D: number },
): void {
  cond.dispatch(
    gpu,
    [t.table, t.condPos, t.labels, t.y],
    uniformBlock([
      ['u32', s.rows],
      ['u32', s.nc],
      ['u32', s.D],
    ]),
    [gridStrideGroups(s.rows * s.nc * s.D, 256)],
    [t.y],
  );
}

/** Horner steps p = c + p·w over `coefficients`, as WGSL. */
const erfinvSteps = (coefficients: readonly number[]) =>
  coefficients.map((c) => `p = ${c.toExponential()} + p * w;`).join('\n    ');

/** WGSL of `counterNormal(k0, k1, e)`: element e of rng's `counterNormals([k0, k1], ...)`, in float32. */
const COUNTER_NORMAL_WGSL = /* wgsl */ `
fn lowbias32(v: u32) -> u32 {
  var x = v;
  x = x ^ (x >> 16u);
  x = x * 0x7feb352du;
  x = x ^ (x >> 15u);
  x = x * 0x846ca68bu;
  return x ^ (x >> 16u);
}
fn counterNormal(k0: u32, k1: u32, e: u32) -> f32 {
  let m = lowbias32(lowbias32(e ^ k0) + k1) >> 8u;
  let x = (f32(m) * 2.0 + 1.0 - 16777216.0) / 16777216.0;
  var w = -log((1.0 - x) * (1.0 + x));
  var p: f32;
  if (w < 5.0) {
    w = w - 2.5;
    p = 2.81022636e-8;
    ${erfinvSteps(ERFINV_CENTRAL)}
  } else {
    w = sqrt(w) - 3.0;
    p = -0.000200214257;
    ${erfinvSteps(ERFINV_TAIL)}
  }
  return 1.4142135623730951 * p * x;
}`;

const step = new WgslKernel(
  'guidedStep',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> next: array<f32>;
@group(0) @binding(3) var<storage, read_write> epsOut: array<f32>;
@group(0) @binding(4) var<storage, read_write> x0Out: array<f32>;
struct P { tRow: f32, guided: f32, clip: f32, ddim: f32, cfg: f32, vA: f32, vB: f32, c1: f32, c2: f32, m1: f32, m2: f32, sigma: f32, k0: u32, k1: u32 }
@group(0) @binding(5) var<storage, read> u: P;
struct U { n: u32 }
@group(0) @binding(6) var<uniform> size: U;
${COUNTER_NORMAL_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = size.n;
  for (var i = gid.x; i < n; i = i + nwg.x * 256u) {
    let xt = x[i];
    var o = out[i];
    if (u.guided == 1.0) { let un = out[n + i]; o = un + (o - un) * u.cfg; }
    let eps = u.vA * xt + u.vB * o;
    var x0 = u.c1 * xt - u.c2 * eps;
    if (u.clip == 1.0) { x0 = clamp(x0, -1.0, 1.0); }
    var e = eps;
    if (u.ddim == 1.0 && u.clip == 1.0) { e = (u.c1 * xt - x0) / u.c2; }
    var nx = u.m1 * x0;
    if (u.ddim == 1.0) { nx = nx + u.m2 * e; } else { nx = nx + u.m2 * xt; }
    if (u.sigma != 0.0) { nx = nx + u.sigma * counterNormal(u.k0, u.k1, i); }
    next[i] = nx;
    epsOut[i] = eps;
    x0Out[i] = x0;
  }
}`,
);

/** Length of the per-step parameters of the fused sampler (`stepParams`). */
export const STEP_PARAMS = 14;

/**
 * The values that change from one denoising step to the next, as `embedTokens` and `guidedStep` read them
 * from one small tensor (written before each step, so a recorded step replays unchanged): the t-embedding
 * row, the guidance, the reverse step's coefficients and the key of its noise (`counterNormals`; any where
 * sigma is 0).
 */
export function stepParams(
  tRow: number,
  guidance: { guided: boolean; cfg: number },
  c: ReverseStepCoefficients,
  noiseKey: readonly [number, number] | null,
): Float32Array {
  const p = Float32Array.of(
    tRow,
    +guidance.guided,
    +c.clip,
    +c.ddim,
    guidance.cfg,
    c.vA,
    c.vB,
    c.c1,
    c.c2,
    c.m1,
    c.m2,
    c.sigma,
    0,
    0,
  );
  new Uint32Array(p.buffer).set(noiseKey ?? [0, 0], 12);
  return p;
}

/**
 * One reverse step over n = N·Lq·d values: x_{t-1} into `next`, the guided eps and x0 into their tensors, with
 * the guidance, coefficients and noise key of `params` (`stepParams`; the noise is computed where it is added).
 * `out` holds the network output, [cond; uncond] rows when guided (mixed as u + cfg·(c − u) first).
 */
export function guidedStep(
  gpu: WebGPUBackendLike,
  t: {
    x: tf.TensorInfo;
    out: tf.TensorInfo;
    next: tf.TensorInfo;
    eps: tf.TensorInfo;
    x0: tf.TensorInfo;
    params: tf.TensorInfo;
  },
  n: number,
): void {
  step.dispatch(
    gpu,
    [t.x, t.out, t.next, t.eps, t.x0, t.params],
    uniformBlock([['u32', n]]),
    [gridStrideGroups(n, 256)],
    [t.next, t.eps, t.x0],
  );
}
