/**
 * The hand-written kernels against tfjs's own kernels on the same backend: WGSL on webgpu (Mesa lavapipe in CI)
 * and the native CPU kernels on wasm (toolkit/native). Each fused path must give what the plain tfjs path
 * gives, within float32 reordering.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { backendReport, fusedKernels, nativeKernels, setFusedKernels } from '../src/backend';
import { geluTanh, layerNorm } from '../src/model/ops';
import { cachedAttention, LayerCache, maskedAttention, Params } from '../src/model/attention';
import { rangesTensor } from '../src/backend/wgsl/attention';
import { loadNativeKernels } from '../src/backend/native-kernels';
import { additiveMask, getAttnMask, getAttnRanges, sequenceLength } from '../src/factorization/mask';
import { createDiffusion } from '../src/diffusion';
import { CausalDiffusionModel } from '../src/model/causalfusion';
import { makeConfig } from '../src/model/config';
import { StateDict } from '../src/model/params';
import { Rng } from '../src/rng';
import { AdamW, Ema } from '../src/train/optim';
import { FACTORIZATION_DEFAULTS, sampleBatch, STEP_DEFAULTS, trainStep } from '../src/train/step';
import { Trainer, TrainSettings } from '../src/train/trainer';
import { maxAbs, maxAbsDiff, syntheticDataset, useBackend, valueAndGrads } from './helpers';

/** The backends with hand-written kernels: WGSL on webgpu (Mesa lavapipe in CI), toolkit/native on wasm. */
const FUSED_BACKENDS = ['webgpu', 'wasm'] as const;
type FusedBackend = (typeof FUSED_BACKENDS)[number];

/** Switches to `backend` with the fused kernels on, checking they are really there (not tfjs against tfjs). */
async function useFused(backend: FusedBackend): Promise<void> {
  await useBackend(backend);
  setFusedKernels(true);
  const active = backend === 'webgpu' ? fusedKernels() : nativeKernels();
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

/**
 * Largest |a - b| / (|b| + floor) over every tensor of two state dicts, but k_norm.bias: it shifts every
 * score of a query by the same q·b, which softmax ignores, so its gradient is rounding noise, and Adam
 * turns noise of either sign into full-size steps (both paths agree on every other weight).
 */
function maxRelDiff(a: StateDict, b: StateDict, floor = 1e-3): number {
  let m = 0;
  for (const [k, t] of Object.entries(b)) {
    if (k.endsWith('k_norm.bias')) continue;
    const u = a[k].data;
    for (let i = 0; i < t.data.length; i++) m = Math.max(m, Math.abs(u[i] - t.data[i]) / (Math.abs(t.data[i]) + floor));
  }
  return m;
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

/** Every fused kernel against the tfjs ops it replaces, on one backend. */
function fusedSuite(backend: FusedBackend): void {
  for (const [what, extra] of [
    ['clipping active', { gradClip: 0.05 }],
    ['weight decay, no clipping at 1e3', { gradClip: 1e3, weightDecay: 0.05 }],
  ] as const) {
    test(`${backend}: fused AdamW + EMA + clip == the tfjs ops over 4 steps (${what}): weights, EMA, loss, gradient norm`, async () => {
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
        const out = { events, weights: t.model.stateDict(), ema: t.emaModel.stateDict() };
        t.dispose();
        return out;
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
      assert.ok(
        maxRelDiff(fused.weights, plain.weights) < 1e-4,
        `weights differ by ${maxRelDiff(fused.weights, plain.weights)}`,
      );
      assert.ok(maxRelDiff(fused.ema, plain.ema) < 1e-4, `EMA differs by ${maxRelDiff(fused.ema, plain.ema)}`);
    });
  }

  test(`${backend}: fused AdamW without an EMA == the tfjs ops over 3 steps (grouped kernels, parameter groups of 3 with a remainder)`, async () => {
    const run = () => {
      const model = new CausalDiffusionModel(makeConfig('tiny'), { seed: 2 });
      const opt = new AdamW({ lr: 1e-3, weightDecay: 0.01 });
      const rng = new Rng(5);
      const x = new Float32Array(2 * 4 * 16).map(() => rng.normal());
      const norms = [0, 1, 2].map(
        () => trainStep(model, opt, null, sampleBatch(model, createDiffusion(''), x, [3, 4], rng)).gradNorm,
      );
      const w = model.stateDict();
      assert.ok(model.trainableNames().length % 3 !== 0, 'the parameter count must leave a smaller last group');
      opt.dispose();
      model.dispose();
      return { norms, w };
    };
    const { plain, fused } = await plainAndFused(backend, run);
    fused.norms.forEach((n, i) =>
      assert.ok(Math.abs(n - plain.norms[i]) <= 1e-5 * plain.norms[i], `step ${i + 1} norm ${n} vs ${plain.norms[i]}`),
    );
    assert.ok(maxRelDiff(fused.w, plain.w) < 1e-4, `weights differ by ${maxRelDiff(fused.w, plain.w)}`);
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
    assert.equal(maxRelDiff(model.stateDict(), before.w), 0);
    assert.equal(maxRelDiff(stateOf(ema), before.e), 0);
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
        assert.equal(maxRelDiff(scaled.w, plain.w), 0);
        assert.equal(maxRelDiff(scaled.e, plain.e), 0);
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
          const keyRanges = getAttnRanges(c.L, c.cond, c.sizes);
          const ctx = {
            mask: tf.tensor2d(additiveMask(mask), [seq, seq]),
            ranges: rangesTensor(keyRanges, c.D / c.H),
            keyRanges,
          };
          const [x, dy] = [tf.tensor3d(xHost, [N, seq, c.D]), tf.tensor3d(dyHost, [N, seq, c.D])];
          // k_norm.bias shifts all scores of a query alike: its true gradient is 0, both paths give rounding noise
          const names = Object.keys(p).filter((k) => k !== 'a.k_norm.bias');
          const f = (xs: tf.Tensor, ...ws: tf.Tensor[]) => {
            const q = { ...p, ...Object.fromEntries(names.map((k, i) => [k, ws[i]])) };
            return maskedAttention(q, 'a', xs as tf.Tensor3D, c.H, ctx);
          };
          const out = valueAndGrads(f, [x, ...names.map((k) => p[k])], dy);
          tf.dispose([x, dy, ctx.mask, ctx.ranges, ...Object.values(p)]);
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
  assert.throws(() => k.geluForward(x, new Float32Array(4), 8), /^RangeError: y holds 4 values, needs 8$/);
  assert.throws(
    () => k.geluForward(x, new Int32Array(8) as unknown as Float32Array, 8),
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
