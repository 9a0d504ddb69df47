/**
 * The optimizer tail of a training step in 2 dispatches per parameter, instead of ~20 tfjs kernels:
 * `clip_grad_norm_` + `torch.optim.AdamW` + the EMA update, all on the GPU, with nothing read back.
 *
 *   1. `sumSquares`, per gradient: 64 partial sums of g² into its slots of one buffer;
 *   2. `clipCoef`, once: norm = sqrt(sum of all partials) / gradScale, coef = min(1, maxNorm / (norm + 1e-6)),
 *      and ok = loss and norm are finite, so that a diverged step leaves the weights as they were;
 *   3. `adamwEma`, per parameter: g·coef/gradScale, the moments, the parameter and its EMA updated in place;
 *      `emaOnly` for parameters without a gradient (a frozen pos_embed still has an EMA copy).
 * The arithmetic follows `AdamW.apply` / `Ema.update` operation by operation (same constants in float32).
 */
import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackendLike } from '../webgpu';
import { asTensor, emptyTensor, gridStrideGroups, ownBuffer, uniformBlock, WgslKernel, workgroupSum } from './runner';

const SLOTS = 64; // partial sums per gradient
const WG = 256;

const sumSquares = new WgslKernel(
  'sumSquares',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
struct U { n: u32, slot: u32 }
@group(0) @binding(2) var<uniform> u: U;
${workgroupSum(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  var s = 0.0;
  for (var i = wg.x * ${WG}u + li; i < u.n; i = i + ${SLOTS * WG}u) { let x = g[i]; s = s + x * x; }
  let total = wgSum(li, s);
  if (li == 0u) { partials[u.slot * ${SLOTS}u + wg.x] = total; }
}`,
);

const FINITE = /* wgsl */ `fn finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }`;

const clipCoef = new WgslKernel(
  'clipCoef',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read> loss: array<f32>;
@group(0) @binding(2) var<storage, read_write> clip: array<f32>;
struct U { count: u32, maxNorm: f32, gradScale: f32 }
@group(0) @binding(3) var<uniform> u: U;
${workgroupSum(WG)}
${FINITE}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  for (var i = li; i < u.count; i = i + ${WG}u) { s = s + partials[i]; }
  let total = wgSum(li, s);
  if (li == 0u) {
    let norm = sqrt(total) / u.gradScale;
    let ok = finite(norm) && finite(loss[0]);
    var coef = 1.0;
    if (ok && u.maxNorm > 0.0) { coef = min(1.0, u.maxNorm / (norm + 1e-6)); }
    clip[0] = norm;
    clip[1] = coef / u.gradScale; // a power of two: exact
    clip[2] = select(0.0, 1.0, ok);
    clip[3] = 0.0;
  }
}`,
);

const adamwBody = (withEma: boolean) => /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> p: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read> clip: array<f32>;
${withEma ? '@group(0) @binding(5) var<storage, read_write> e: array<f32>;' : ''}
struct U { n: u32, beta1: f32, oneMinusBeta1: f32, beta2: f32, oneMinusBeta2: f32, bc2Sqrt: f32, eps: f32, decayFactor: f32, stepSize: f32, emaDecay: f32, oneMinusEmaDecay: f32 }
@group(0) @binding(${withEma ? 6 : 5}) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (clip[2] == 0.0) { return; }
  let coef = clip[1];
  for (var i = gid.x; i < u.n; i = i + nwg.x * ${WG}u) {
    let gi = g[i] * coef;
    let m1 = m[i] * u.beta1 + gi * u.oneMinusBeta1;
    let v1 = v[i] * u.beta2 + (gi * gi) * u.oneMinusBeta2;
    let denom = sqrt(v1) / u.bc2Sqrt + u.eps;
    let p1 = p[i] * u.decayFactor - (m1 / denom) * u.stepSize;
    m[i] = m1;
    v[i] = v1;
    p[i] = p1;
    ${withEma ? 'e[i] = e[i] * u.emaDecay + p1 * u.oneMinusEmaDecay;' : ''}
  }
}`;
const adamw = new WgslKernel('adamw', adamwBody(false));
const adamwEma = new WgslKernel('adamwEma', adamwBody(true));

const emaOnly = new WgslKernel(
  'emaOnly',
  /* wgsl */ `
@group(0) @binding(0) var<storage, read> p: array<f32>;
@group(0) @binding(1) var<storage, read_write> e: array<f32>;
@group(0) @binding(2) var<storage, read> clip: array<f32>;
struct U { n: u32, emaDecay: f32, oneMinusEmaDecay: f32 }
@group(0) @binding(3) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (clip[2] == 0.0) { return; }
  for (var i = gid.x; i < u.n; i = i + nwg.x * ${WG}u) { e[i] = e[i] * u.emaDecay + p[i] * u.oneMinusEmaDecay; }
}`,
);

/** Optimizer settings of one fused update: the AdamW hyper-parameters and this step's bias corrections. */
export interface FusedAdamWArgs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1 - beta1^step, with step counted from 1 (`biasCorrections` in train/optim). */
  bc1: number;
  /** sqrt(1 - beta2^step). */
  bc2Sqrt: number;
  /** `clip_grad_norm_`'s max_norm; 0 or less: no clipping. */
  maxNorm: number;
  /** EMA decay, when an EMA is kept. */
  emaDecay?: number;
  /** The loss scale the gradients carry (a power of two), divided out here. */
  gradScale?: number;
}

/**
 * Clips `grads`, applies AdamW to `params` with `moments`, and updates `ema`, in place, unless the loss or
 * the gradient norm is not finite. Returns [norm, coef, ok] as a tensor (read it with the loss).
 */
export function fusedAdamWUpdate(
  backend: WebGPUBackendLike,
  params: Record<string, tf.Variable>,
  grads: Record<string, tf.Tensor>,
  moments: (name: string) => { m: tf.Variable; v: tf.Variable },
  ema: Record<string, tf.Variable> | null,
  loss: tf.Tensor,
  a: FusedAdamWArgs,
): tf.Tensor1D {
  const names = Object.keys(grads);
  const partials = emptyTensor(backend, [Math.max(1, names.length) * SLOTS]);
  names.forEach((name, slot) => {
    const g = grads[name];
    sumSquares.dispatch(backend, [g, partials], uniformBlock([['u32', g.size], ['u32', slot]]), [SLOTS]);
  });
  const clip = emptyTensor(backend, [4]);
  clipCoef.dispatch(backend, [partials, loss, clip], uniformBlock([['u32', names.length * SLOTS], ['f32', a.maxNorm], ['f32', a.gradScale ?? 1]]), [1]);
  backend.disposeData(partials.dataId);

  const decay = a.emaDecay ?? 1;
  const common = [
    ['f32', a.beta1],
    ['f32', 1 - a.beta1],
    ['f32', a.beta2],
    ['f32', 1 - a.beta2],
    ['f32', a.bc2Sqrt],
    ['f32', a.eps],
    ['f32', a.weightDecay > 0 ? 1 - a.lr * a.weightDecay : 1],
    ['f32', a.lr / a.bc1],
    ['f32', decay],
    ['f32', 1 - decay],
  ] as const;
  for (const name of Object.keys(params)) {
    const p = params[name];
    const e = ema?.[name];
    ownBuffer(backend, p);
    if (e) ownBuffer(backend, e);
    const g = grads[name];
    if (!g) {
      if (e) emaOnly.dispatch(backend, [p, e, clip], uniformBlock([['u32', p.size], ['f32', decay], ['f32', 1 - decay]]), [gridStrideGroups(p.size, WG)], [e]);
      continue;
    }
    const { m, v } = moments(name);
    ownBuffer(backend, m);
    ownBuffer(backend, v);
    const u = uniformBlock([['u32', p.size], ...common]);
    if (e) adamwEma.dispatch(backend, [p, g, m, v, clip, e], u, [gridStrideGroups(p.size, WG)], [p, m, v, e]);
    else adamw.dispatch(backend, [p, g, m, v, clip], u, [gridStrideGroups(p.size, WG)], [p, m, v]);
  }
  return asTensor<tf.Tensor1D>(clip);
}
