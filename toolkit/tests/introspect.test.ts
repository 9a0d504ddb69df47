import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CausalDiffusionModel } from '../src/model/causalfusion';
import { configFromOfficial } from '../src/model/config';
import { getAttnMask } from '../src/factorization/mask';
import { SamplingRecorder, traceTrainingBatch, TrainingRecorder } from '../src/introspect/recorders';
import { sampleImages, SampleResult } from '../src/sample/sampler';
import { Trainer } from '../src/train/trainer';
import { reference, syntheticDataset, useBackend } from './helpers';
import { fixtureInputs } from '../src/parity';

function refModel(): CausalDiffusionModel {
  const ref = reference();
  return new CausalDiffusionModel(configFromOfficial(ref.model_config), { stateDict: ref.state_dict });
}

test("recorded training attention equals the fixture's attn_probs, and is exactly 0 where the mask forbids it", async () => {
  await useBackend('wasm');
  const f = reference().forward;
  const m = refModel();
  const N = f.t.length;
  const trace = traceTrainingBatch(m, fixtureInputs(reference()), { samples: Array.from({ length: N }, (_, n) => n) });
  assert.equal(trace.attention.length, f.attn_probs.length * N);
  for (const rec of trace.attention) {
    const ref = f.attn_probs[rec.layer];
    const [, H, S] = ref.shape;
    assert.deepEqual(rec.shape, [H, S, S]);
    const off = rec.sample * H * S * S;
    let maxRef = 0;
    let maxDiff = 0;
    rec.data.forEach((v, i) => {
      maxRef = Math.max(maxRef, Math.abs(ref.data[off + i]));
      maxDiff = Math.max(maxDiff, Math.abs(v - ref.data[off + i]));
      if (trace.mask.maskedOut[i % (S * S)]) assert.equal(v, 0, `layer ${rec.layer} entry ${i} is masked but ${v}`);
    });
    assert.ok(maxDiff / maxRef < 1e-4, `layer ${rec.layer} sample ${rec.sample}: rel ${maxDiff / maxRef}`);
    // keys are labelled: cond first, then clean tokens of steps 1..S-1, then all noisy tokens
    assert.equal(rec.keys.filter((k) => k.role === 'cond').length, 4);
    assert.equal(rec.keys.filter((k) => k.role === 'noisy').length, 16);
    assert.deepEqual(
      rec.keys.filter((k) => k.role === 'noisy').map((k) => k.token),
      f.ids_shuffle[rec.sample],
    );
  }
  assert.deepEqual(trace.tokenMse.length, N);
  m.dispose();
});

describe('the sampling recorder on one run (AR steps of 3, 5, 8 tokens, 6 diffusion steps, CFG)', () => {
  let m: CausalDiffusionModel;
  let rec: SamplingRecorder;
  let r: SampleResult;
  before(async () => {
    await useBackend('wasm');
    m = refModel();
    rec = new SamplingRecorder({
      attention: { layers: [1], heads: [0, 2], diffusionSteps: [0, 5] },
      trajectories: { samples: [0, 1] },
    });
    r = sampleImages(m, {
      labels: [2, 9],
      stepSizes: [3, 5, 8],
      diffusionSteps: '6',
      cfgScale: 1.5,
      seed: 4,
      observer: rec,
    });
  });
  after(() => m.dispose());

  test('generation order: the tokens of each AR step, per sample', () => {
    assert.deepEqual(
      rec.generation.map((g) => g.positions),
      [0, 1, 2].map((s) => r.orders.map((o) => o.slice([0, 3, 8][s], [3, 8, 16][s]))),
    );
  });

  test('the KV cache grows by the clean tokens of each finished AR step', () => {
    assert.deepEqual(
      rec.cacheLength.map((c) => c.length),
      [4, 4, 7, 7, 12, 12],
    );
  });

  test('attention is recorded only where asked, over cache + own step, rows summing to 1', () => {
    assert.equal(rec.attention.length, 3 * 2); // 3 AR steps x 2 diffusion steps x layer 1 x sample 0
    for (const a of rec.attention) {
      const k = r.stepSizes[a.arStep];
      const cache = 4 + r.stepSizes.slice(0, a.arStep).reduce((x, y) => x + y, 0);
      assert.deepEqual(a.shape, [2, k, cache + k]);
      assert.equal(a.keys.length, cache + k);
      for (let row = 0; row < 2 * k; row++) {
        const sum = a.data.slice(row * (cache + k), (row + 1) * (cache + k)).reduce((x, y) => x + y, 0);
        assert.ok(Math.abs(sum - 1) < 1e-5);
      }
    }
  });

  test("the last trajectory point's x0 is the sampled token", () => {
    assert.equal(rec.trajectories.length, 3 * 6 * 2);
    const d = 4;
    for (const tr of rec.trajectories.filter((t) => t.diffusionStep === 5))
      tr.positions.forEach((p, i) =>
        assert.deepEqual(
          tr.x0.slice(i * d, (i + 1) * d),
          Array.from(r.tokens.subarray((tr.sample * 16 + p) * d, (tr.sample * 16 + p + 1) * d)),
        ),
      );
  });

  test("the recorded mask is get_attn_mask of the run's split, its noisy positions the sample's order", () => {
    const { mask, positions } = rec.mask(0);
    assert.deepEqual(mask.maskedOut, getAttnMask(16, 4, [3, 5, 8]).maskedOut);
    assert.deepEqual(
      positions.filter((p) => p.role === 'noisy').map((p) => p.token),
      r.orders[0],
    );
  });

  test('the recorder serialises to JSON with its arrays', () => {
    const json = JSON.parse(JSON.stringify(rec));
    assert.equal(json.attention[0].data.length, 2 * 3 * 7);
  });
});

test('the training recorder gets order, step sizes, t, AR weights and per-token loss of each step', async () => {
  await useBackend('wasm');
  const t = new Trainer(syntheticDataset(), { model: 'tiny', batchSize: 4, seed: 1 });
  const rec = new TrainingRecorder(2);
  await t.run({ steps: 4, logEvery: 0, callbacks: { onStep: rec.onStep } });
  assert.deepEqual(
    rec.steps.map((s) => s.step),
    [2, 4],
  );
  const s = rec.steps[0];
  assert.equal(s.orders.length, 4);
  assert.equal(s.arWeights.length, 16);
  assert.equal(s.tokenMse.length, 4 * 16);
  assert.equal(s.t.length, 4);
  t.dispose();
});
