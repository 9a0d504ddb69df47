import { test } from 'node:test';
import { checkStepFits, stepBuffers } from '../src/train/memory';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/rng';
import { makeConfig } from '../src/model/config';
import { CausalDiffusionModel } from '../src/model/causalfusion';
import { createDiffusion } from '../src/diffusion';
import { FACTORIZATION_DEFAULTS, lossAndGrads, sampleBatch, trainStep, STEP_DEFAULTS } from '../src/train/step';
import { AdamW, clipGradNorm, Ema, warmupLr } from '../src/train/optim';
import { maxAbs, useBackend } from './helpers';

function setup(seed = 1) {
  const cfg = makeConfig('tiny');
  const model = new CausalDiffusionModel(cfg, { seed });
  // give the zero-initialised head some weight so every gradient is non-trivial
  model.params['final_layer.1.weight'].assign(tf.randomNormal([4, 64], 0, 0.05, 'float32', seed));
  const rng = new Rng(seed);
  const x = rng.normalArray(4 * 4 * 16);
  return { cfg, model, rng, x, y: [0, 1, 2, 3], diffusion: createDiffusion('') };
}

test('activation checkpointing gives the same loss and gradients as one autograd pass', async () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    await useBackend(backend);
    const { model, rng, x, y, diffusion } = setup();
    const batch = sampleBatch(model, diffusion, x, y, rng, { ...FACTORIZATION_DEFAULTS, splitSizes: [5, 4, 7] });
    const b = model.prepareBatch(batch);
    const a = lossAndGrads(model, b, batch.arWeights, false);
    const c = lossAndGrads(model, b, batch.arWeights, true);
    assert.deepEqual(Object.keys(c.grads).sort(), Object.keys(a.grads).sort());
    assert.ok(Math.abs(a.loss.dataSync()[0] - c.loss.dataSync()[0]) < 1e-6);
    for (const k of Object.keys(a.grads)) {
      const diff = tf.tidy(
        () => maxAbs(tf.sub(a.grads[k], c.grads[k]).dataSync()) / (maxAbs(a.grads[k].dataSync()) + 1e-12),
      );
      assert.ok(diff < 1e-5, `${backend} ${k}: ${diff}`);
    }
    tf.dispose([a.loss, c.loss, a.tokenMse, c.tokenMse, ...Object.values(a.grads), ...Object.values(c.grads)]);
    model.dispose();
  }
});

test('AdamW follows torch.optim.AdamW (bias corrections, eps, decoupled decay)', async () => {
  await useBackend('wasm');
  const p = { w: tf.variable(tf.tensor1d([1, -2])) };
  const opt = new AdamW({ lr: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01 });
  const g = [0.5, -1];
  let m = [0, 0],
    v = [0, 0],
    w = [1, -2];
  for (let step = 1; step <= 3; step++) {
    opt.apply(p, { w: tf.tensor1d(g) });
    w = w.map((wi, i) => {
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i];
      const denom = Math.sqrt(v[i]) / Math.sqrt(1 - 0.95 ** step) + 1e-8;
      return wi * (1 - 0.1 * 0.01) - (0.1 / (1 - 0.9 ** step)) * (m[i] / denom);
    });
  }
  const got = Array.from(p.w.dataSync());
  w.forEach((wi, i) => assert.ok(Math.abs(got[i] - wi) < 1e-6, `${got[i]} vs ${wi}`));
  assert.throws(() => new AdamW({ beta1: 1 }), /betas/);
  opt.dispose();
  p.w.dispose();
});

test('grad clipping, warm-up and EMA', async () => {
  await useBackend('wasm');
  const { grads, norm } = clipGradNorm({ a: tf.tensor1d([3]), b: tf.tensor1d([4]) }, 1.0);
  assert.ok(Math.abs(norm - 5) < 1e-6);
  assert.ok(Math.abs(grads.a.dataSync()[0] - 3 / (5 + 1e-6)) < 1e-6);
  const small = clipGradNorm({ a: tf.tensor1d([0.3]) }, 1.0);
  assert.equal(small.grads.a.dataSync()[0], Math.fround(0.3));
  assert.equal(warmupLr(1e-3, 0, 100), 0);
  assert.equal(warmupLr(1e-3, 50, 100), 5e-4);
  assert.equal(warmupLr(1e-3, 100, 100), 1e-3);
  assert.equal(warmupLr(1e-3, 0, 0), 1e-3);
  const params = { w: tf.variable(tf.tensor1d([1])) };
  const ema = new Ema(params, 0.9);
  params.w.assign(tf.tensor1d([2]));
  ema.update(params);
  assert.ok(Math.abs(ema.shadow.w.dataSync()[0] - 1.1) < 1e-6);
  tf.dispose([...Object.values(grads), ...Object.values(small.grads)]);
  ema.dispose();
});

test('training lowers the loss on a fixed batch, and no tensor leaks across steps', async () => {
  await useBackend('wasm');
  const { model, rng, x, y, diffusion } = setup(2);
  const opt = new AdamW({ lr: 3e-3 });
  const ema = new Ema(model.params);
  const fixed = sampleBatch(model, diffusion, x, y, rng);
  const first = trainStep(model, opt, ema, fixed, { ...STEP_DEFAULTS, lr: 3e-3 });
  const tensors = tf.memory().numTensors;
  let last = first;
  for (let i = 0; i < 60; i++) {
    last = trainStep(model, opt, ema, sampleBatch(model, diffusion, x, y, rng), {
      ...STEP_DEFAULTS,
      lr: 3e-3,
      checkpoint: i % 2 === 0,
    });
    assert.equal(tf.memory().numTensors, tensors, `tensors leaked at step ${i + 2}`);
  }
  const after = trainStep(model, opt, ema, fixed, { ...STEP_DEFAULTS, lr: 0 });
  assert.ok(after.loss < first.loss, `${after.loss} !< ${first.loss}`);
  assert.ok(Number.isFinite(last.gradNorm));
  opt.dispose();
  ema.dispose();
  model.dispose();
});

test('a NaN in the loss stops the step with a message naming it, weights untouched', async () => {
  await useBackend('wasm');
  const { model, rng, x, y, diffusion } = setup(3);
  const opt = new AdamW();
  trainStep(model, opt, null, sampleBatch(model, diffusion, x, y, rng));
  const before = Array.from(model.params['x_proj.weight'].dataSync());
  const bad = x.slice();
  bad[5] = NaN;
  assert.throws(() => trainStep(model, opt, null, sampleBatch(model, diffusion, bad, y, rng)), /loss is NaN at step 2/);
  assert.deepEqual(Array.from(model.params['x_proj.weight'].dataSync()), before);
  opt.dispose();
  model.dispose();
});

test('sampleBatch is reproducible from the seed and validates inputs', async () => {
  await useBackend('wasm');
  const { model, x, y, diffusion } = setup(4);
  const a = sampleBatch(model, diffusion, x, y, new Rng(8));
  const b = sampleBatch(model, diffusion, x, y, new Rng(8));
  assert.deepEqual(a.t, b.t);
  assert.deepEqual(a.idsShuffle, b.idsShuffle);
  assert.deepEqual(a.splitSizes, b.splitSizes);
  assert.deepEqual(Array.from(a.xn), Array.from(b.xn));
  const raster = sampleBatch(model, diffusion, x, y, new Rng(8), {
    ...FACTORIZATION_DEFAULTS,
    order: Array.from({ length: 16 }, (_, i) => i),
    fixedArSteps: 4,
  });
  assert.equal(raster.splitSizes.length, 4);
  assert.deepEqual(
    raster.idsShuffle[2],
    Array.from({ length: 16 }, (_, i) => i),
  );
  assert.throws(() => model.forward({ ...a, y: [0, 1, 2, 99] }), /label 99 is outside \[0, 11\)/);
  model.dispose();
});

test('sampleBatch at a fixed t: x_t and the target are those of that t; bad times are named', async () => {
  await useBackend('wasm');
  const { model, x, y, diffusion } = setup(4);
  const b = sampleBatch(model, diffusion, x, y, new Rng(3), FACTORIZATION_DEFAULTS, { t: 300 });
  assert.deepEqual(b.t, [300, 300, 300, 300]);
  // the same noise drawn first, so x_t follows from it at t = 300
  const noise = new Rng(3).normalArray(x.length);
  assert.deepEqual(Array.from(b.xn), Array.from(diffusion.qSampleArray(x, b.t, noise)));
  assert.deepEqual(
    sampleBatch(model, diffusion, x, y, new Rng(3), FACTORIZATION_DEFAULTS, { t: [1, 2, 3, 4] }).t,
    [1, 2, 3, 4],
  );
  assert.throws(
    () => sampleBatch(model, diffusion, x, y, new Rng(3), FACTORIZATION_DEFAULTS, { t: [1, 2] }),
    /2 diffusion times for a batch of 4/,
  );
  assert.throws(
    () => sampleBatch(model, diffusion, x, y, new Rng(3), FACTORIZATION_DEFAULTS, { t: diffusion.numTimesteps }),
    /diffusion time 1000 is not an integer in 0\.\.999/,
  );
  assert.throws(
    () => sampleBatch(model, createDiffusion('', { prediction: 'v' }), x, y, new Rng(3)),
    /the diffusion predicts v, the model eps: build it with createDiffusion\('', model\.config\)/,
  );
  model.dispose();
});

test('AdamW state() / load(): a restored optimizer continues exactly; incomplete state is named', async () => {
  await useBackend('wasm');
  const p = { w: tf.variable(tf.tensor([1, -2, 3])), b: tf.variable(tf.tensor([0.5])) };
  const q = { w: tf.variable(tf.tensor([1, -2, 3])), b: tf.variable(tf.tensor([0.5])) };
  const grads = () => ({ w: tf.tensor([0.1, 0.2, -0.3]), b: tf.tensor([1]) });
  const a = new AdamW({ lr: 0.1 });
  const g1 = grads();
  a.apply(p, g1);
  a.apply(q, g1); // q now equals p; a has taken two steps
  const st = a.state();
  assert.equal(st.step, 2);
  assert.deepEqual(Object.keys(st.expAvg).sort(), ['b', 'w']);
  const b = new AdamW({ lr: 0.1 });
  b.load(st);
  const g2 = grads();
  a.apply(p, g2);
  b.apply(q, g2);
  assert.deepEqual(Array.from(p.w.dataSync()), Array.from(q.w.dataSync()));
  assert.deepEqual(Array.from(p.b.dataSync()), Array.from(q.b.dataSync()));
  assert.throws(
    () => b.load({ ...st, expAvgSq: { w: st.expAvgSq.w } }, 'ck.safetensors'),
    /ck\.safetensors: optimizer state of b is incomplete/,
  );
  tf.dispose([p.w, p.b, q.w, q.b, g1.w, g1.b, g2.w, g2.b]);
  a.dispose();
  b.dispose();
});

test('a batch whose largest buffer exceeds the adapter limit is refused before the first step, naming the buffer and the batch that fits', () => {
  const c = makeConfig('mnist-base'); // L = 49: T = 4 + 49 + 48 = 101 tokens, 4D = 1024
  const perSample = 101 * 1024 * 4;
  assert.equal(stepBuffers(c, 8, { flashAttention: true }).largestBytes, 8 * perSample);
  // without flash attention: at width 256 the MLP buffer is still the larger (4 heads · 101 < 1024); at 16 heads of 4, the scores
  assert.match(stepBuffers(c, 8, { flashAttention: false }).largest, /MLP/);
  const wide = makeConfig('mnist-base', { hiddenSize: 64, numHeads: 16 });
  assert.match(
    stepBuffers(wide, 8, { flashAttention: false }).largest,
    /attention scores \[B, H, T, T\] = \[8, 16, 101, 101\]/,
  );
  const limits = { maxStorageBufferBindingSize: 100 * perSample, maxBufferSize: 2 ** 40 };
  checkStepFits(c, 100, limits, { flashAttention: true });
  assert.throws(
    () => checkStepFits(c, 101, limits, { flashAttention: true }),
    /batch 101 does not fit this GPU: .*MLP activations \[B·T, 1024\] = \[101·101, 1024\].* at most 0.04 GiB per buffer; use a batch of at most 100/,
  );
  assert.throws(
    () => checkStepFits(c, 1, { maxBufferSize: perSample / 2 }, { flashAttention: true }),
    /even one sample/,
  );
});
