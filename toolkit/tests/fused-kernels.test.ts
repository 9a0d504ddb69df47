/**
 * The hand-written kernels against tfjs's own kernels on the same backend: WGSL on webgpu (Mesa lavapipe in CI)
 * and the native CPU kernels on wasm (toolkit/native). Each fused path must give what the plain tfjs path
 * gives, within float32 reordering.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { backendReport, fusedKernels, nativeKernels, setFusedKernels } from '../src/backend';
import { geluTanh, layerNorm, linear, linearResidual, mlpResidual } from '../src/model/ops';
import { cachedAttention, LayerCache, maskedAttention, Params } from '../src/model/attention';
import { attentionRanges, disposeRanges, FusedAdamWArgs, kernels, setKernelTable } from '../src/backend/kernels';
import { heapKernelTable } from '../src/backend/kernels-heap';
import { jsHeapKernels } from '../src/backend/js-kernels';
import { loadNativeKernels } from '../src/backend/native-kernels';
import { additiveMask, getAttnMask, getAttnRanges, sequenceLength } from '../src/factorization/mask';
import { createDiffusion } from '../src/diffusion';
import { CausalDiffusionModel } from '../src/model/causalfusion';
import { makeConfig } from '../src/model/config';
import { StateDict } from '../src/model/params';
import { Rng } from '../src/rng';
import { ADAMW_DEFAULTS, AdamW, AdamWConfig, biasCorrections, Ema } from '../src/train/optim';
import {
  applyUpdate,
  countUpdate,
  FACTORIZATION_DEFAULTS,
  sampleBatch,
  STEP_DEFAULTS,
  trainStep,
} from '../src/train/step';
import { Trainer, TrainSettings } from '../src/train/trainer';
import { maxAbs, maxAbsDiff, syntheticDataset, useBackend, valueAndGrads } from './helpers';

/**
 * The kernel tables: WGSL on webgpu (Mesa lavapipe in CI), toolkit/native on wasm, and the JS heap kernels a
 * page's wasm uses (`wasm-js`: the wasm backend with `jsHeapKernels` installed instead of the addon).
 */
const FUSED_BACKENDS = ['webgpu', 'wasm', 'wasm-js'] as const;
type FusedBackend = (typeof FUSED_BACKENDS)[number];

/** Switches to `backend` with the fused kernels on, checking they are really there (not tfjs against tfjs). */
async function useFused(backend: FusedBackend): Promise<void> {
  await useBackend(backend === 'wasm-js' ? 'wasm' : backend);
  if (backend === 'wasm-js') setKernelTable('wasm', heapKernelTable(jsHeapKernels, 'js'));
  setFusedKernels(true);
  const active =
    backend === 'webgpu' ? fusedKernels() : backend === 'wasm' ? nativeKernels() : kernels()?.name === 'js';
  assert.ok(active, `no fused kernels on ${backend}: ${backendReport()?.detail}`);
}

/** Runs `f` with the fused kernels off, then on (on `backend` both times). */
async function plainAndFused<T>(backend: FusedBackend, f: () => T): Promise<{ plain: T; fused: T }> {
  await useFused(backend);
  setFusedKernels(false);
  try {
    const plain = f();
    setFusedKernels(true);
    return { plain, fused: f() };
  } finally {
    setFusedKernels(true);
  }
}

function stateOf(ema: Ema): StateDict {
  return Object.fromEntries(
    Object.entries(ema.shadow).map(([k, v]) => [k, { shape: v.shape, data: v.dataSync() as Float32Array }]),
  );
}

/** Every output of `run` fused vs plain: max |difference| <= tol * max |plain|. */
async function sameFusedAndPlain(
  backend: FusedBackend,
  run: () => Float32Array[],
  tol: number,
  label: string,
): Promise<void> {
  const { plain, fused } = await plainAndFused(backend, run);
  plain.forEach((p, i) => {
    const d = maxAbsDiff(fused[i], p);
    assert.ok(d <= tol * maxAbs(p), `${label}, output ${i}: max diff ${d} vs max ${maxAbs(p)}`);
  });
}

const LN_SHAPES: number[][] = [
  [2, 7, 384],
  [3, 5, 66, 64],
  [1, 131, 48],
];
/** Random weights of one `GeneralizedCausalAttention` of width D (official names under prefix `a`). */
function attentionParams(rng: Rng, D: number, numHeads: number): Params {
  const hd = D / numHeads;
  const host = (shape: number[], scale: number, offset = 0) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => offset + scale * rng.normal()),
      shape,
    );
  return {
    'a.qkv.weight': host([3 * D, D], 1 / Math.sqrt(D)),
    'a.q_norm.weight': host([hd], 0.2, 1),
    'a.q_norm.bias': host([hd], 0.1),
    'a.k_norm.weight': host([hd], 0.2, 1),
    'a.k_norm.bias': host([hd], 0.1),
    'a.proj.weight': host([D, D], 1 / Math.sqrt(D)),
    'a.proj.bias': host([D], 0.1),
  };
}

// hd 64 and 96 take the two tile sizes; L = 49 with 4 cond tokens and 5 steps spans 2 query workgroups and
// leaves whole key tiles masked; hd 8 is the fixture's head size.
const FLASH_CASES: { D: number; H: number; L: number; cond: number; sizes: number[] }[] = [
  { D: 128, H: 2, L: 49, cond: 4, sizes: [9, 17, 3, 12, 8] },
  { D: 96, H: 1, L: 16, cond: 1, sizes: [1, 4, 11] },
  { D: 16, H: 2, L: 16, cond: 4, sizes: [16] },
];

/** The two update settings the fused update is checked under. */
const UPDATE_CASES = [
  ['clipping active', { gradClip: 0.05, weightDecay: 0 }],
  ['weight decay, no clipping at 1e3', { gradClip: 1e3, weightDecay: 0.05 }],
] as const;

/**
 * Fused and tfjs update from the same inputs differ only by float32 rounding of a few operations per element
 * (the order of m / (sqrt(v) / bc2 + eps) * lr / bc1, a sum over the model for the clip norm): a few ulp of the
 * element's rounding scale (RoundingScale), 2^-24 each; 64 ulp leave room. The smallest mutation below
 * (weight decay of the wrong sign) moves a weight by 2 lr wd |w| = 1e-4 |w| per step, 25x that.
 */
const UPDATE_TOL = 64 * 2 ** -24;
/** The gradient norm: a float32 sum of squares over the whole model (tfjs) or a double one (native), 1e-5 apart at most. */
const NORM_TOL = 1e-5;
/** The learning rate of the identical-gradient runs after warm-up: lr_s = 0, lr/2, lr, lr. */
const UPDATE_LR = 1e-3;

/** Wrong kernels, made by handing the fused kernel wrong settings: each must fail the comparison. */
function mutations(extra: { gradClip: number; weightDecay: number }): [string, Partial<FusedAdamWArgs>][] {
  return [
    ['no bias correction', { bc1: 1, bc2Sqrt: 1 }],
    ...(extra.weightDecay > 0
      ? [['weight decay of the wrong sign', { weightDecay: -extra.weightDecay }] as [string, Partial<FusedAdamWArgs>]]
      : []),
    ...(extra.gradClip < 1 ? [['no clipping', { maxNorm: 1e9 }] as [string, Partial<FusedAdamWArgs>]] : []),
  ];
}

/** Largest |a - b| / size over every element of two state dicts, `size` the element's rounding scale. */
function relDiff(a: StateDict, b: StateDict, size: Record<string, Float64Array>): number {
  let m = 0;
  for (const [k, t] of Object.entries(b)) {
    const u = a[k].data;
    for (let i = 0; i < t.data.length; i++) m = Math.max(m, Math.abs(u[i] - t.data[i]) / (size[k][i] + 1e-38));
  }
  return m;
}

/**
 * What float32 rounding can change in each element of an update run, from its operands: the sums of the
 * magnitudes of the terms that made it (|w0| + sum lr |step| + lr wd |w| for a weight, sum (1 - b1) b1^k |g|
 * for m, and so on), tracked in float64 beside the run. An element is a short chain of such sums and products,
 * so it carries at most a few ulp of that size: UPDATE_TOL below.
 */
class RoundingScale {
  readonly w: Record<string, Float64Array> = {};
  readonly m: Record<string, Float64Array> = {};
  readonly v: Record<string, Float64Array> = {};
  readonly ema: Record<string, Float64Array> = {};
  private readonly v64: Record<string, Float64Array> = {};

  constructor(
    weights: StateDict,
    private readonly c: AdamWConfig,
    private readonly emaDecay: number,
  ) {
    for (const [k, t] of Object.entries(weights)) {
      this.w[k] = Float64Array.from(t.data, Math.abs);
      this.ema[k] = Float64Array.from(t.data, Math.abs);
      for (const d of [this.m, this.v, this.v64]) d[k] = new Float64Array(t.data.length);
    }
  }

  /** One update from `grads` (host copies) scaled by the clip coefficient `coef`, at `lr`, step `step`. */
  step(grads: Record<string, Float32Array>, coef: number, lr: number, step: number): void {
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this.c;
    const { bc1, bc2Sqrt } = biasCorrections(this.c, step);
    for (const [k, g] of Object.entries(grads)) {
      const [w, m, v, v64] = [this.w[k], this.m[k], this.v[k], this.v64[k]];
      // a clipped gradient carries the clip coefficient's error too: the norm is a float32 sum over the model
      const slack = coef < 1 ? 1 + NORM_TOL / UPDATE_TOL : 1;
      for (let i = 0; i < g.length; i++) {
        const gi = coef * g[i];
        v64[i] = b2 * v64[i] + (1 - b2) * gi * gi;
        m[i] = b1 * m[i] + (1 - b1) * Math.abs(gi) * slack;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi * 2 * slack;
        // the step's rounding is relative to the terms of m, which may cancel: their magnitudes, not m itself
        w[i] += lr * wd * w[i] + (lr * (m[i] / bc1)) / (Math.sqrt(v64[i]) / bc2Sqrt + eps);
      }
    }
    for (const [k, e] of Object.entries(this.ema)) {
      const w = this.w[k];
      for (let i = 0; i < e.length; i++) e[i] = this.emaDecay * e[i] + (1 - this.emaDecay) * w[i];
    }
  }
}

/**
 * Four clip + AdamW + EMA updates of the tiny model's parameters from fixed gradients (no matmul anywhere, so
 * identical on every CPU): magnitudes from 1e-9 to 1, so Adam's normalisation and eps see every scale. With
 * `wrong`, the fused kernel is called directly with those settings changed (the mutation check).
 */
function updateRun(
  extra: { gradClip: number; weightDecay: number; ema?: boolean },
  wrong?: Partial<FusedAdamWArgs>,
): { weights: StateDict; m: StateDict; v: StateDict; ema: StateDict; norms: number[]; scale: RoundingScale } {
  const model = new CausalDiffusionModel(makeConfig('tiny'), { seed: 1 });
  const opt = new AdamW({ lr: UPDATE_LR, weightDecay: extra.weightDecay });
  const ema = extra.ema === false ? null : new Ema(model.params, 0.9);
  const scale = new RoundingScale(model.stateDict(), opt.config, 0.9);
  const rng = new Rng(11);
  const norms: number[] = [];
  for (let s = 0; s < 4; s++) {
    const host = Object.fromEntries(
      model.trainableNames().map((n) => {
        const p = model.params[n];
        return [n, Float32Array.from({ length: p.size }, () => rng.normal() * 10 ** (-9 * rng.random()))];
      }),
    );
    const grads = Object.fromEntries(Object.entries(host).map(([n, g]) => [n, tf.tensor(g, model.params[n].shape)]));
    const lr = [0, UPDATE_LR / 2, UPDATE_LR, UPDATE_LR][s];
    let norm: number;
    if (wrong) {
      const moments = (n: string) => opt.moment(n, model.params[n]);
      const args: FusedAdamWArgs = {
        ...opt.config,
        ...biasCorrections(opt.config, opt.step + 1),
        lr,
        maxNorm: extra.gradClip,
        emaDecay: ema?.decay,
        gradScale: 1,
        ...wrong,
      };
      const loss = tf.scalar(1);
      const out = kernels()!.adamwUpdate(model.params, grads, moments, ema?.shadow ?? null, loss, args);
      norm = out.dataSync()[0];
      tf.dispose([out, loss, ...Object.values(grads)]);
    } else {
      const loss = tf.scalar(1);
      const out = applyUpdate(model.params, opt, ema, grads, loss, 1, lr, extra.gradClip);
      norm = out.dataSync()[0];
      tf.dispose([out, loss]);
    }
    countUpdate(opt, 1, norm);
    norms.push(norm);
    scale.step(host, Math.min(1, extra.gradClip / (norm + 1e-6)), lr, s + 1);
  }
  const st = opt.state();
  const out = { weights: model.stateDict(), m: st.expAvg, v: st.expAvgSq, ema: ema ? stateOf(ema) : {}, norms, scale };
  [opt, ema, model].forEach((o) => o?.dispose());
  return out;
}

/**
 * How far two AdamW trajectories can part when their gradients differ by rounding only: Adam's normalised step
 * |m_hat| / sqrt(v_hat) is at most R_s = (1 - b1) / (1 - b1^s) * sqrt((1 - b2^s) / (1 - b2)) *
 * sqrt(sum_{k<s} (b1^2 / b2)^k) at step s (Cauchy-Schwarz over the gradients, whatever they are), so an element
 * whose gradient is rounding noise can move by lr_s R_s either way: two runs part by at most
 * 2 sum_s lr_s R_s (plus weight decay's share, 2 lr wd |w| per step, below 1e-4 here and left in the margin).
 */
function adamEnvelope(lrs: number[], s: { beta1?: number; beta2?: number }): number {
  const b1 = s.beta1 ?? ADAMW_DEFAULTS.beta1;
  const b2 = s.beta2 ?? ADAMW_DEFAULTS.beta2;
  return lrs.reduce((sum, lr, i) => {
    const step = i + 1;
    let geo = 0;
    for (let k = 0; k < step; k++) geo += ((b1 * b1) / b2) ** k;
    const r = ((1 - b1) / (1 - b1 ** step)) * Math.sqrt((1 - b2 ** step) / (1 - b2)) * Math.sqrt(geo);
    return sum + 2 * lr * r;
  }, 0);
}

/**
 * Two trajectories whose gradients differ by rounding only. Where a gradient is rounding noise (zero in exact
 * arithmetic, like k_norm.bias: it shifts all scores of a query alike, which softmax ignores; or cancelling
 * to near zero), Adam's normalised step makes it a full step of either sign, so no element may part by more
 * than the envelope, and only those few may come near it: the share of elements that part by more than 1 %
 * of it is the second number (a wrong update moves nearly all of them).
 */
function trajectoryParting(a: StateDict, b: StateDict, envelope: number): { worst: string; share: number } {
  let worst = 0;
  let where = 'none';
  let far = 0;
  let total = 0;
  for (const [k, t] of Object.entries(b)) {
    const u = a[k].data;
    for (let i = 0; i < t.data.length; i++) {
      const d = Math.abs(u[i] - t.data[i]);
      total += 1;
      if (d > envelope / 100) far += 1;
      if (d > worst) ((worst = d), (where = `${k}[${i}] by ${d}`));
    }
  }
  return { worst: worst > envelope ? where : '', share: far / total };
}

/** Every fused kernel against the tfjs ops it replaces, on one backend. */
function fusedSuite(backend: FusedBackend): void {
  for (const [what, extra] of UPDATE_CASES) {
    test(`${backend}: fused clip + AdamW + EMA == the tfjs update fed identical gradients, 4 steps (${what}): weights, moments, EMA, norm to float32 rounding`, async () => {
      await useFused(backend);
      const { plain, fused } = await plainAndFused(backend, () => updateRun(extra));
      const size = { weights: plain.scale.w, m: plain.scale.m, v: plain.scale.v, ema: plain.scale.ema };
      for (const k of ['weights', 'm', 'v', 'ema'] as const) {
        const d = relDiff(fused[k], plain[k], size[k]);
        assert.ok(d <= UPDATE_TOL, `${k} differ by ${d} (float32 rounding: <= ${UPDATE_TOL})`);
      }
      fused.norms.forEach((n, i) =>
        assert.ok(
          Math.abs(n - plain.norms[i]) <= NORM_TOL * plain.norms[i],
          `step ${i + 1} norm ${n} vs ${plain.norms[i]}`,
        ),
      );
      if (extra.gradClip < 1)
        assert.ok(
          plain.norms.every((n) => n > extra.gradClip),
          'the test must clip',
        );
      // mutation check: the tolerance must catch a wrong kernel, so feed the fused kernel wrong settings
      for (const [mutation, wrong] of mutations(extra)) {
        const bad = updateRun(extra, wrong);
        const d = relDiff(bad.weights, plain.weights, plain.scale.w);
        assert.ok(d > 10 * UPDATE_TOL, `a kernel with ${mutation} must fail (differs by ${d})`);
      }
    });

    test(`${backend}: fused AdamW + EMA + clip in the trainer == the tfjs ops over 4 steps (${what}): loss and norm; weights and EMA within the Adam envelope`, async () => {
      const settings: TrainSettings = {
        model: 'tiny',
        batchSize: 4,
        lr: 1e-3,
        warmupSteps: 2,
        emaDecay: 0.9,
        seed: 7,
        ...extra,
      };
      const { plain, fused } = await plainAndFused(backend, () => {
        const t = new Trainer(syntheticDataset(), settings);
        const events = [0, 1, 2, 3].map(() => t.trainOne());
        const ck = t.checkpoint();
        t.dispose();
        return { events, weights: ck.model, ema: ck.ema ?? {}, v: ck.optimizer?.expAvgSq ?? {} };
      });
      fused.events.forEach((e, i) => {
        const p = plain.events[i];
        assert.ok(Math.abs(e.loss - p.loss) <= 1e-5 * Math.abs(p.loss), `step ${i + 1} loss ${e.loss} vs ${p.loss}`);
        assert.ok(
          Math.abs(e.gradNorm - p.gradNorm) <= 1e-5 * p.gradNorm,
          `step ${i + 1} norm ${e.gradNorm} vs ${p.gradNorm}`,
        );
      });
      if (extra.gradClip < 1)
        assert.ok(
          plain.events.every((e) => e.gradNorm > extra.gradClip),
          'the test must clip',
        );
      const envelope = adamEnvelope(
        plain.events.map((e) => e.lr),
        settings,
      );
      // the EMA is a convex combination of the weights along the way, so the same bound holds for it
      for (const k of ['weights', 'ema'] as const) {
        const r = trajectoryParting(fused[k], plain[k], envelope);
        assert.equal(r.worst, '', `${k} part by more than the Adam envelope ${envelope}`);
        assert.ok(r.share <= 0.01, `${k}: ${r.share} of the elements part by more than 1 % of the envelope`);
      }
    });
  }

  test(`${backend}: fused AdamW without an EMA == the tfjs update fed identical gradients, 4 steps (grouped kernels, parameter groups of 3 with a remainder)`, async () => {
    await useFused(backend);
    const { plain, fused } = await plainAndFused(backend, () =>
      updateRun({ gradClip: 1e3, weightDecay: 0.01, ema: false }),
    );
    const size = { weights: plain.scale.w, m: plain.scale.m, v: plain.scale.v };
    for (const k of ['weights', 'm', 'v'] as const) {
      const d = relDiff(fused[k], plain[k], size[k]);
      assert.ok(d <= UPDATE_TOL, `${k} differ by ${d} (float32 rounding: <= ${UPDATE_TOL})`);
    }
    assert.ok(
      Object.keys(plain.weights).filter((n) => plain.m[n]).length % 3 !== 0,
      'the parameter count must leave a smaller last group',
    );
  });

  test(`${backend}: fused update: a NaN loss stops the step with the weights, EMA and AdamW step count untouched`, async () => {
    await useFused(backend);
    const model = new CausalDiffusionModel(makeConfig('tiny'), { seed: 1 });
    const opt = new AdamW({ lr: 1e-3 });
    const ema = new Ema(model.params, 0.9);
    const rng = new Rng(3);
    const x = new Float32Array(2 * 4 * 16).map(() => rng.normal());
    const ok = sampleBatch(model, createDiffusion(''), x, [1, 2], rng, FACTORIZATION_DEFAULTS);
    trainStep(model, opt, ema, ok); // moments exist, buffers are the optimizer's own
    const before = { w: model.stateDict(), e: stateOf(ema), step: opt.step };
    x[5] = NaN;
    const bad = sampleBatch(model, createDiffusion(''), x, [1, 2], rng, FACTORIZATION_DEFAULTS);
    assert.throws(() => trainStep(model, opt, ema, bad), /^Error: loss is NaN at step 2: training stopped$/);
    assert.equal(opt.step, before.step);
    assert.deepStrictEqual(model.stateDict(), before.w);
    assert.deepStrictEqual(stateOf(ema), before.e);
    opt.dispose();
    ema.dispose();
    model.dispose();
  });

  for (const fused of [true, false]) {
    test(`${backend}: loss scaling (fp16 matmuls) is exact: 3 steps with loss scale 2^14 == unscaled, ${fused ? 'fused' : 'tfjs'} update, clipping active`, async () => {
      await useFused(backend);
      setFusedKernels(fused);
      try {
        const run = (lossScale: number) => {
          const model = new CausalDiffusionModel(makeConfig('tiny'), { seed: 1 });
          const opt = new AdamW({ lr: 1e-3 });
          const ema = new Ema(model.params, 0.9);
          const rng = new Rng(3);
          const x = new Float32Array(2 * 4 * 16).map(() => rng.normal());
          const results = [0, 1, 2].map(() =>
            trainStep(model, opt, ema, sampleBatch(model, createDiffusion(''), x, [1, 2], rng), {
              ...STEP_DEFAULTS,
              gradClip: 0.05,
              lossScale,
            }),
          );
          const out = { results, w: model.stateDict(), e: stateOf(ema) };
          [opt, ema, model].forEach((o) => o.dispose());
          return out;
        };
        const [plain, scaled] = [run(1), run(2 ** 14)];
        scaled.results.forEach((r, i) => {
          assert.equal(r.loss, plain.results[i].loss, `step ${i + 1} loss`);
          assert.ok(
            Math.abs(r.gradNorm - plain.results[i].gradNorm) <= 1e-6 * plain.results[i].gradNorm,
            `step ${i + 1} norm ${r.gradNorm} vs ${plain.results[i].gradNorm}`,
          );
        });
        assert.deepStrictEqual(scaled.w, plain.w);
        assert.deepStrictEqual(scaled.e, plain.e);
      } finally {
        setFusedKernels(true);
      }
    });
  }

  for (const shape of LN_SHAPES) {
    test(`${backend}: fused LayerNorm == tfjs ops on [${shape}]: y, dx, dw, db`, async () => {
      const rng = new Rng(shape.length);
      const C = shape[shape.length - 1];
      const host = (n: number, scale = 1, offset = 0) =>
        Float32Array.from({ length: n }, () => offset + scale * rng.normal());
      const size = shape.reduce((a, b) => a * b, 1);
      const data = { x: host(size, 3, 0.5), w: host(C, 0.2, 1), b: host(C, 0.1), dy: host(size) };
      await sameFusedAndPlain(
        backend,
        () => {
          const [x, w, b, dy] = [
            tf.tensor(data.x, shape),
            tf.tensor(data.w),
            tf.tensor(data.b),
            tf.tensor(data.dy, shape),
          ];
          const out = valueAndGrads((xs, ws, bs) => layerNorm(xs, ws, bs), [x, w, b], dy);
          tf.dispose([x, w, b, dy]);
          return out;
        },
        2e-5,
        'LayerNorm',
      );
    });
  }

  test(`${backend}: fused GELU (tanh) == tfjs ops: value and gradient, over [-8, 8]`, async () => {
    const n = 70001;
    const x = Float32Array.from({ length: n }, (_, i) => -8 + (16 * i) / (n - 1));
    const dy = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
    await sameFusedAndPlain(
      backend,
      () => {
        const [xt, dyt] = [tf.tensor(x), tf.tensor(dy)];
        const out = valueAndGrads((v) => geluTanh(v), [xt], dyt);
        tf.dispose([xt, dyt]);
        return out;
      },
      1e-5,
      'GELU',
    );
  });

  test(`${backend}: linear layers with their epilogues (x·Wᵀ + b; r + x·Wᵀ + b; the MLP r + fc2(GELU(fc1(x)))) == tfjs ops: value and every gradient`, async () => {
    await useFused(backend);
    // every table sums a bias's gradient (sumRows); the webgpu table fuses the epilogues too, the CPU tables
    // compose tfjs ops (the same function either way)
    assert.ok(kernels()?.sumRows);
    if (backend === 'webgpu')
      assert.ok(kernels()?.mlpResidual && kernels()?.biasResidual && kernels()?.normedAttention);
    const rng = new Rng(11);
    const host = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
    const [D, F] = [48, 80]; // 74 rows: ragged against every workgroup size
    const shapes: Record<string, number[]> = {
      r: [2, 37, D],
      x: [2, 37, D],
      xWide: [2, 37, F],
      w1: [F, D],
      b1: [F],
      w2: [D, F],
      b2: [D],
    };
    const values = Object.fromEntries(Object.entries(shapes).map(([k, sh]) => [k, host(tf.util.sizeFromShape(sh))]));
    const dy = host(2 * 37 * D);
    const cases: [string, (...t: tf.Tensor[]) => tf.Tensor, string[]][] = [
      ['linear', (x, w, b) => linear(x, w, b), ['xWide', 'w2', 'b2']],
      ['proj', (r, x, w, b) => linearResidual(r, x, w, b), ['r', 'xWide', 'w2', 'b2']],
      [
        'mlp',
        (r, x, w1, b1, w2, b2) => mlpResidual(r, x, { weight: w1, bias: b1 }, { weight: w2, bias: b2 }),
        ['r', 'x', 'w1', 'b1', 'w2', 'b2'],
      ],
    ];
    for (const [label, f, names] of cases)
      await sameFusedAndPlain(
        backend,
        () => {
          const ins = names.map((n) => tf.tensor(values[n], shapes[n]));
          const g = tf.tensor3d(dy, [2, 37, D]);
          const out = valueAndGrads(f, ins, g);
          tf.dispose([...ins, g]);
          return out;
        },
        1e-5,
        label,
      );
  });

  for (const c of FLASH_CASES) {
    test(`${backend}: fused attention == tfjs attention under the generalized mask (D ${c.D}, ${c.H} heads, splits ${c.sizes}): value and every gradient`, async () => {
      const rng = new Rng(c.D);
      const N = 2;
      const seq = sequenceLength(c.L, c.cond, c.sizes);
      const xHost = Float32Array.from({ length: N * seq * c.D }, () => rng.normal());
      const dyHost = Float32Array.from({ length: N * seq * c.D }, () => rng.normal());
      await sameFusedAndPlain(
        backend,
        () => {
          const p = attentionParams(new Rng(7), c.D, c.H);
          const mask = getAttnMask(c.L, c.cond, c.sizes);
          const ctx = {
            mask: tf.tensor2d(additiveMask(mask), [seq, seq]),
            ranges: attentionRanges(getAttnRanges(c.L, c.cond, c.sizes), c.D / c.H),
          };
          const [x, dy] = [tf.tensor3d(xHost, [N, seq, c.D]), tf.tensor3d(dyHost, [N, seq, c.D])];
          // k_norm.bias shifts all scores of a query alike: its true gradient is 0, both paths give rounding noise
          const names = Object.keys(p).filter((k) => k !== 'a.k_norm.bias');
          const f = (xs: tf.Tensor, ...ws: tf.Tensor[]) => {
            const q = { ...p, ...Object.fromEntries(names.map((k, i) => [k, ws[i]])) };
            return maskedAttention(q, 'a', xs as tf.Tensor3D, c.H, ctx);
          };
          const out = valueAndGrads(f, [x, ...names.map((k) => p[k])], dy);
          tf.dispose([x, dy, ctx.mask, ...Object.values(p)]);
          disposeRanges(ctx.ranges);
          return out;
        },
        2e-5,
        'flash attention',
      );
    });
  }

  test(`${backend}: fused attention on the KV cache (head-major cache, 3 queries over 13 keys, unmasked) == tfjs attention`, async () => {
    const D = 64;
    const H = 2;
    const rng = new Rng(3);
    const host = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
    const [ctxHost, xHost] = [host(2 * 10 * D), host(2 * 3 * D)];
    await sameFusedAndPlain(
      backend,
      () => {
        const p = attentionParams(new Rng(9), D, H);
        const cache: LayerCache = { k: null, v: null };
        tf.tidy(() => cachedAttention(p, 'a', tf.tensor3d(ctxHost, [2, 10, D]), H, cache, true));
        const out = tf.tidy(
          () => cachedAttention(p, 'a', tf.tensor3d(xHost, [2, 3, D]), H, cache, false).dataSync() as Float32Array,
        );
        tf.dispose([cache.k!, cache.v!, ...Object.values(p)]);
        return [out];
      },
      2e-5,
      'cached flash attention',
    );
  });
}

for (const backend of FUSED_BACKENDS) fusedSuite(backend);

test('native kernels name the argument that is wrong: type, size, count', () => {
  const k = loadNativeKernels();
  assert.ok(k, 'native kernels not built: npm run setup builds toolkit/native');
  const x = new Float32Array(8);
  assert.throws(() => k.geluForward!(x, new Float32Array(4), 8), /^RangeError: y holds 4 values, needs 8$/);
  assert.throws(
    () => k.geluForward!(x, new Int32Array(8) as unknown as Float32Array, 8),
    /^TypeError: argument 1 \(y\) must be a Float32Array$/,
  );
  assert.throws(
    () => (k.geluForward as (...a: unknown[]) => void)(x, x),
    /^TypeError: geluForward: expected 3 arguments, got 2$/,
  );
  assert.throws(
    () => k.attentionForward(x, x, x, new Int32Array(3), x, x, 1, 1, 4, 4, 2, 1, 8, 2, 2, 8, 2, 2, 8, 2, 2),
    /^RangeError: ranges holds 3 values, needs 12$/,
  );
});
