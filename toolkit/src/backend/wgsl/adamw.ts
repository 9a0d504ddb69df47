/**
 * The optimizer tail of a training step in ~40 dispatches for ~100 parameters, instead of ~20 tfjs kernels per
 * parameter: `clip_grad_norm_` + `torch.optim.AdamW` + the EMA update, all on the GPU, nothing read back.
 * Each kernel takes as many tensors as one shader may bind (15 gradients; 3 parameters with gradient, moments
 * and EMA), generated once per group size:
 *
 *   1. `sumSquares`, per group of gradients: 64 partial sums of g² each, into their slots of one buffer;
 *   2. `clipCoef`, once: norm = sqrt(sum of all partials) / gradScale, coef = min(1, maxNorm / (norm + 1e-6)),
 *      and ok = loss and norm are finite, so that a diverged step leaves the weights as they were;
 *   3. `adamwEma`, per group of parameters: g·coef/gradScale, the moments, the parameter and its EMA, in place;
 *      `emaOnly` for parameters without a gradient (a frozen pos_embed still has an EMA copy).
 * The arithmetic follows `AdamW.apply` / `Ema.update` operation by operation (same constants in float32).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FusedAdamWArgs } from '../kernels';
import type { WebGPUBackendLike } from '../webgpu-types';
import { asTensor, emptyTensor, gridStrideGroups, ownBuffer, uniformBlock, WgslKernel, workgroupSum } from './runner';

const SLOTS = 64; // partial sums per gradient
const WG = 256;

/** Kernels generated once per group size (the last group of a step is usually smaller). */
function perSize(name: string, code: (k: number) => string): (k: number) => WgslKernel {
  const made = new Map<number, WgslKernel>();
  return (k) => {
    let kern = made.get(k);
    if (!kern) made.set(k, (kern = new WgslKernel(`${name}x${k}`, code(k))));
    return kern;
  };
}

const range = (k: number) => Array.from({ length: k }, (_, i) => i);

/** Element counts of a group's tensors, as the uniform array `n` (4 per vec4) after `head` scalar fields. */
function counts(sizes: number[]): (readonly ['u32', number])[] {
  return range(Math.ceil(sizes.length / 4) * 4).map((i) => ['u32', sizes[i] ?? 0] as const);
}
const nAt = (i: number) => `u.n[${i >> 2}][${i & 3}]`;

// Partial sums of g² for k gradients: SLOTS workgroups each sum a stride of every gradient.
const sumSquares = perSize(
  'sumSquares',
  (k) => /* wgsl */ `
${range(k)
  .map((i) => `@group(0) @binding(${i}) var<storage, read> g${i}: array<f32>;`)
  .join('\n')}
@group(0) @binding(${k}) var<storage, read_write> partials: array<f32>;
struct U { slot: u32, pad1: u32, pad2: u32, pad3: u32, n: array<vec4<u32>, ${Math.ceil(k / 4)}> }
@group(0) @binding(${k + 1}) var<uniform> u: U;
${workgroupSum(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  var s = 0.0;
${range(k)
  .map(
    (i) => `  s = 0.0;
  for (var j = wg.x * ${WG}u + li; j < ${nAt(i)}; j = j + ${SLOTS * WG}u) { let x = g${i}[j]; s = s + x * x; }
  s = wgSum(li, s);
  if (li == 0u) { partials[(u.slot + ${i}u) * ${SLOTS}u + wg.x] = s; }`,
  )
  .join('\n')}
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

// AdamW (+ EMA) for k parameters, each updated in place by a grid-stride loop over its elements.
const adamwCode = (withEma: boolean) => (k: number) => {
  const per = withEma ? 5 : 4;
  const b = (i: number, j: number) => i * per + j;
  return /* wgsl */ `
${range(k)
  .map(
    (i) => `@group(0) @binding(${b(i, 0)}) var<storage, read_write> p${i}: array<f32>;
@group(0) @binding(${b(i, 1)}) var<storage, read> g${i}: array<f32>;
@group(0) @binding(${b(i, 2)}) var<storage, read_write> m${i}: array<f32>;
@group(0) @binding(${b(i, 3)}) var<storage, read_write> v${i}: array<f32>;${withEma ? `\n@group(0) @binding(${b(i, 4)}) var<storage, read_write> e${i}: array<f32>;` : ''}`,
  )
  .join('\n')}
@group(0) @binding(${k * per}) var<storage, read> clip: array<f32>;
struct U { beta1: f32, oneMinusBeta1: f32, beta2: f32, oneMinusBeta2: f32, bc2Sqrt: f32, eps: f32, decayFactor: f32, stepSize: f32, emaDecay: f32, oneMinusEmaDecay: f32, pad1: u32, pad2: u32, n: array<vec4<u32>, ${Math.ceil(k / 4)}> }
@group(0) @binding(${k * per + 1}) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (clip[2] == 0.0) { return; }
  let coef = clip[1];
${range(k)
  .map(
    (i) => `  for (var j = gid.x; j < ${nAt(i)}; j = j + nwg.x * ${WG}u) {
    let gi = g${i}[j] * coef;
    let mt = m${i}[j] * u.beta1 + gi * u.oneMinusBeta1;
    let vt = v${i}[j] * u.beta2 + (gi * gi) * u.oneMinusBeta2;
    let denom = sqrt(vt) / u.bc2Sqrt + u.eps;
    let pt = p${i}[j] * u.decayFactor - (mt / denom) * u.stepSize;
    m${i}[j] = mt;
    v${i}[j] = vt;
    p${i}[j] = pt;${withEma ? `\n    e${i}[j] = e${i}[j] * u.emaDecay + pt * u.oneMinusEmaDecay;` : ''}
  }`,
  )
  .join('\n')}
}`;
};
const adamw = perSize('adamw', adamwCode(false));
const adamwEma = perSize('adamwEma', adamwCode(true));

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

/** [index of the first, the items] for consecutive runs of at most `size` items. */
function chunks<T>(items: T[], size: number): [number, T[]][] {
  const out: [number, T[]][] = [];
  for (let i = 0; i < items.length; i += size) out.push([i, items.slice(i, i + size)]);
  return out;
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
  // as many tensors per dispatch as the adapter lets a shader bind (16 storage buffers: 15 gradients, or
  // 3 parameters with their gradient, moments and EMA), instead of one dispatch per tensor
  // (at most 16 even where more are allowed: the group sizes stay the ones tested on lavapipe in CI)
  const maxBindings = Math.min(16, backend.device.limits.maxStorageBuffersPerShaderStage);
  const names = Object.keys(grads);
  const partials = emptyTensor(backend, [Math.max(1, names.length) * SLOTS]);
  for (const [first, group] of chunks(names, maxBindings - 1)) {
    const gs = group.map((n) => grads[n]);
    sumSquares(gs.length).dispatch(
      backend,
      [...gs, partials],
      uniformBlock([['u32', first], ['u32', 0], ['u32', 0], ['u32', 0], ...counts(gs.map((g) => g.size))]),
      [SLOTS],
    );
  }
  const clip = emptyTensor(backend, [4]);
  clipCoef.dispatch(
    backend,
    [partials, loss, clip],
    uniformBlock([
      ['u32', names.length * SLOTS],
      ['f32', a.maxNorm],
      ['f32', a.gradScale ?? 1],
    ]),
    [1],
  );
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
    ['u32', 0],
    ['u32', 0],
  ] as const;
  const updated: tf.Tensor[][] = [[], []]; // [without EMA, with EMA]: each entry p, g, m, v (, e)
  for (const name of Object.keys(params)) {
    const p = params[name];
    const e = ema?.[name];
    ownBuffer(backend, p);
    if (e) ownBuffer(backend, e);
    const g = grads[name];
    if (!g) {
      if (e)
        emaOnly.dispatch(
          backend,
          [p, e, clip],
          uniformBlock([
            ['u32', p.size],
            ['f32', decay],
            ['f32', 1 - decay],
          ]),
          [gridStrideGroups(p.size, WG)],
          [e],
        );
      continue;
    }
    const { m, v } = moments(name);
    ownBuffer(backend, m);
    ownBuffer(backend, v);
    updated[e ? 1 : 0].push(p, g, m, v, ...(e ? [e] : []));
  }
  for (const withEma of [false, true]) {
    const per = withEma ? 5 : 4;
    const tensors = updated[+withEma];
    const perDispatch = Math.floor((maxBindings - 1) / per);
    for (let i = 0; i < tensors.length; i += per * perDispatch) {
      const group = tensors.slice(i, i + per * perDispatch);
      const k = group.length / per;
      const sizes = range(k).map((j) => group[j * per].size);
      const written = group.filter((_, j) => j % per !== 1); // all but the gradients
      (withEma ? adamwEma : adamw)(k).dispatch(
        backend,
        [...group, clip],
        uniformBlock([...common, ...counts(sizes)]),
        [gridStrideGroups(Math.max(...sizes), WG)],
        written,
      );
    }
  }
  return asTensor<tf.Tensor1D>(clip);
}
