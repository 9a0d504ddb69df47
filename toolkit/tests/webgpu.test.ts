/**
 * The engine on WebGPU (Dawn), forced onto whatever adapter the machine has: Mesa's lavapipe on a CPU machine
 * (the setup installs it), so CI checks the GPU path end to end. Parity with the official code, the trainer
 * (checkpoint, resume, activation checkpointing), KV-cache sampling with CFG, editing and the recorders, each
 * compared with the wasm backend where the result must not depend on the backend.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { backendReport } from '../src/backend';
import { fixtureInputs } from '../src/parity';
import { CausalDiffusionModel, disposeBatch } from '../src/model/causalfusion';
import { configFromOfficial } from '../src/model/config';
import { sampleImages, SampleOptions } from '../src/sample/sampler';
import { editImages } from '../src/sample/edit';
import { replayedDispatches, wgslDispatches } from '../src/backend/wgsl/runner';
import { layerNormInto } from '../src/backend/wgsl/layernorm';
import type { WebGPUBackendLike } from '../src/backend/webgpu-types';
import { SamplingRecorder, traceTrainingBatch } from '../src/introspect/recorders';
import { Trainer, TrainSettings } from '../src/train/trainer';
import { benchTrainStep, profileTrainStep } from '../src/train/step-timer';
import { gradients } from '../src/train/backprop';
import { FACTORIZATION_DEFAULTS, sampleBatch } from '../src/train/step';
import { createDiffusion } from '../src/diffusion';
import { makeConfig } from '../src/model/config';
import { Rng } from '../src/rng';
import { assertFullParity, maxAbs, maxAbsDiff, reference, syntheticDataset, useBackend, tempDir } from './helpers';

const refModel = () =>
  new CausalDiffusionModel(configFromOfficial(reference().model_config), { stateDict: reference().state_dict });
const SETTINGS: TrainSettings = { model: 'tiny', batchSize: 4, lr: 1e-3, warmupSteps: 2, emaDecay: 0.9, seed: 7 };

/** Runs `f` on wasm and on webgpu; returns both results. */
async function onBoth<T>(f: () => T): Promise<{ wasm: T; webgpu: T }> {
  await useBackend('wasm');
  const wasm = f();
  await useBackend('webgpu');
  return { wasm, webgpu: f() };
}

test('webgpu starts when forced, on the adapter this machine has', async () => {
  await useBackend('webgpu');
  assert.equal(tf.getBackend(), 'webgpu');
  assert.match(backendReport()!.detail, /^adapter /);
  // a synchronous read of a GPU result (the path tfjs-webgpu leaves to a browser canvas)
  const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
  assert.deepEqual(Array.from(tf.matMul(x, x, false, true).dataSync()), [14, 32, 32, 77]);
  tf.dispose(x);
});

test('every fixture comparison within tolerance on webgpu: forward, attention, every gradient, KV cache + CFG', async () => {
  await useBackend('webgpu');
  assertFullParity();
});

test('KV-cache sampling with CFG gives the same images on webgpu as on wasm (same seed)', async () => {
  const opts: SampleOptions = {
    labels: [1, 2, 10],
    arSteps: 4,
    diffusionSteps: '10',
    cfgScale: 2,
    seed: 3,
    sampler: 'ddpm',
  };
  const { wasm, webgpu } = await onBoth(() => {
    const m = refModel();
    const r = sampleImages(m, opts);
    m.dispose();
    return r;
  });
  assert.deepEqual(webgpu.orders, wasm.orders);
  assert.ok(maxAbsDiff(webgpu.images, wasm.images) < 1e-3, `max diff ${maxAbsDiff(webgpu.images, wasm.images)}`);
});

test('the fused sampling kernels give the op-by-op images on webgpu (DDPM, CFG, DDIM + clip + CFG interval, an edit, recorded attention), leak nothing, and run no tfjs op inside a chain', async () => {
  await useBackend('webgpu');
  const m = refModel();
  const images = Float32Array.from({ length: 2 * 4 * 16 }, (_, i) => Math.sin(i));
  const keep = Array.from({ length: 16 }, (_, i) => i % 3 === 0);
  const cases: SampleOptions[] = [
    { labels: [1, 2, 10], arSteps: 1, diffusionSteps: '10', seed: 3 },
    { labels: [1, 2, 10], stepSizes: [1, 5, 10], diffusionSteps: '10', cfgScale: 2, seed: 3 },
    {
      labels: [1, 2],
      arSteps: 3,
      diffusionSteps: 'ddim10',
      sampler: 'ddim',
      eta: 0.5,
      clipDenoised: true,
      cfgScale: 3,
      cfgInterval: [0, 500],
      seed: 5,
    },
    { labels: [3, 4], arSteps: 2, diffusionSteps: '5', seed: 2, context: { images, keep } },
  ];
  for (const opts of cases) {
    const before = tf.memory().numTensors;
    const ops = sampleImages(m, { ...opts, fused: false });
    const steps: number[] = [];
    const fused = sampleImages(m, {
      ...opts,
      observer: { onDiffusionStep: (_e, s) => steps.push(s.next.shape[1]) },
    });
    assert.equal(tf.memory().numTensors, before, 'tensors left behind');
    assert.deepEqual(fused.orders, ops.orders);
    const scale = Math.max(1, ...Array.from(ops.images, Math.abs));
    const rel = maxAbsDiff(fused.images, ops.images) / scale;
    assert.ok(rel < 1e-5, `${JSON.stringify(opts.stepSizes ?? opts.arSteps)}: relative difference ${rel}`);
    assert.equal(steps.length, fused.stepSizes.length * fused.timesteps.length);
  }
  // a step whose attention is recorded runs op by op on the fused cache: the same probabilities and images
  const recorded = (fused: boolean) => {
    const rec = new SamplingRecorder({ attention: { layers: [1], diffusionSteps: [2] } });
    const r = sampleImages(m, {
      labels: [1, 10],
      arSteps: 3,
      diffusionSteps: '6',
      cfgScale: 2,
      seed: 4,
      observer: rec,
      fused,
    });
    return { images: r.images, attention: rec.attention.map((a) => a.data) };
  };
  const [withOps, withFused] = [recorded(false), recorded(true)];
  assert.equal(withFused.attention.length, 3);
  withFused.attention.forEach((a, i) =>
    assert.ok(maxAbsDiff(a, withOps.attention[i]) < 1e-5, `AR step ${i} attention`),
  );
  assert.ok(maxAbsDiff(withFused.images, withOps.images) / maxAbs(withOps.images) < 1e-5);
  // tfjs kernels of a whole 2-step run: the fused path runs only the per-step noise and the run's setup
  const opts: SampleOptions = { labels: [1, 2], arSteps: 2, diffusionSteps: '20', cfgScale: 2, seed: 1 };
  const kernels = async (fused: boolean) =>
    (await tf.profile(() => void sampleImages(m, { ...opts, fused }))).kernels.length;
  const [opsKernels, fusedKernels] = [await kernels(false), await kernels(true)];
  assert.ok(fusedKernels < 80, `fused path ran ${fusedKernels} tfjs kernels (op by op: ${opsKernels})`);
  assert.ok(opsKernels > 40 * 20, `op-by-op path ran ${opsKernels} tfjs kernels`);
  m.dispose();
});

test('fused sampling records the first two steps of a chain and replays the rest; a recycled uniform cache makes it record again', async () => {
  await useBackend('webgpu');
  const m = refModel();
  const opts: SampleOptions = { labels: [1, 2], stepSizes: [4, 12], diffusionSteps: '10', cfgScale: 2, seed: 7 };
  const [d0, r0] = [wgslDispatches(), replayedDispatches()];
  const marks: number[] = []; // dispatches so far at each diffusion step
  const plain = sampleImages(m, { ...opts, observer: { onDiffusionStep: () => void marks.push(wgslDispatches()) } });
  const [all, replayed] = [wgslDispatches() - d0, replayedDispatches() - r0];
  // a step is 8·depth + 4 kernels, plus an epilogue for each product whose K is split (linearPlan)
  const perStep = marks[2] - marks[1];
  assert.ok(perStep >= 8 * m.config.depth + 4, `${perStep} dispatches a step`);
  // per chain the first two steps are recorded (one per parity of x_t / x_{t-1}), eight are replayed; the cache
  // updates (condition, first chunk) are not replayed
  assert.equal(replayed, 2 * 8 * perStep, `${replayed} of ${all} dispatches replayed`);
  // the observer fills the uniform cache past its size at step 4 of each chain: the cached blocks are handed
  // back to the pool (and may be reused for other bytes), so the recordings must not be replayed any more
  const gpu = tf.backend() as unknown as WebGPUBackendLike;
  const [x, w, b, y, stats] = [tf.ones([4]), tf.ones([4]), tf.zeros([4]), tf.zeros([4]), tf.zeros([2])];
  const r1 = replayedDispatches();
  const flooded = sampleImages(m, {
    ...opts,
    observer: {
      onDiffusionStep: (e) => {
        if (e.diffusionStep !== 4) return;
        for (let k = 0; k < 2100; k++) layerNormInto(gpu, { x, w, b, y, stats }, 1, 4, 1e-5 * (1 + k / 4096));
      },
    },
  });
  assert.ok(maxAbsDiff(flooded.images, plain.images) === 0, 'images changed after the uniform cache was recycled');
  // steps 5 and 6 record again, 2-4 and 7-9 replay
  assert.equal(replayedDispatches() - r1, 2 * 6 * perStep);
  tf.dispose([x, w, b, y, stats]);
  m.dispose();
});

test('editing keeps the kept tokens bit for bit on webgpu; the recorder sees every AR step', async () => {
  await useBackend('webgpu');
  const m = refModel();
  const images = Float32Array.from({ length: 2 * 4 * 16 }, (_, i) => Math.sin(i));
  const r = editImages(m, images, [3, 4], 'bottom', { diffusionSteps: '5', seed: 2 });
  for (let n = 0; n < 2; n++)
    for (let c = 0; c < 4; c++)
      for (let y = 0; y < 2; y++)
        for (let x = 0; x < 4; x++) {
          const i = ((n * 4 + c) * 4 + y) * 4 + x; // the top half is kept
          assert.equal(r.images[i], images[i]);
        }
  const rec = new SamplingRecorder({ attention: { layers: [1], diffusionSteps: [0] }, trajectories: { samples: [0] } });
  sampleImages(m, { labels: [0], arSteps: 2, diffusionSteps: '4', seed: 1, observer: rec });
  assert.equal(rec.generation.length, 2);
  assert.equal(rec.attention.length, 2); // layer 1, first diffusion step of each AR step
  assert.ok(rec.trajectories.length > 0);
  // the training recorder's attention equals the official attention probabilities on this backend too
  const f = reference().forward;
  const trace = traceTrainingBatch(m, fixtureInputs(reference()));
  const ref = f.attn_probs[trace.attention[0].layer];
  const got = trace.attention[0].data;
  assert.ok(maxAbsDiff(got, ref.data.subarray(0, got.length)) < 1e-5);
  m.dispose();
});

test('a batch too large for the adapter is refused by the trainer before anything is allocated', async () => {
  await useBackend('webgpu');
  const limit = (tf.backend() as unknown as WebGPUBackendLike).device.limits.maxStorageBufferBindingSize;
  const ds = syntheticDataset();
  const before = tf.memory().numTensors;
  // tiny: 16 tokens, T = 4 + 16 + 15, 4·64 floats of MLP activations per token
  const batch = Math.ceil(limit / (35 * 256 * 4)) + 1;
  assert.throws(
    () => new Trainer(ds, { ...SETTINGS, batchSize: batch }),
    /does not fit this GPU: .*use a batch of at most/,
  );
  assert.equal(tf.memory().numTensors, before);
});

test('training on webgpu: 2N steps == N, save, resume, N; activation checkpointing gives the same step', async () => {
  await useBackend('webgpu');
  const ds = syntheticDataset();
  const dir = tempDir('cf-webgpu-');
  const file = path.join(dir, 'run.safetensors');
  const a = new Trainer(ds, SETTINGS);
  await a.run({ steps: 6, logEvery: 3 });
  const b = new Trainer(ds, SETTINGS);
  await b.run({ steps: 3, logEvery: 3, checkpointPath: file });
  b.dispose();
  const c = Trainer.resume(file, ds);
  assert.equal(c.step, 3);
  await c.run({ steps: 3, logEvery: 3 });
  assert.deepEqual(
    c.history.map((h) => h.loss),
    a.history.map((h) => h.loss),
  );
  const ck = new Trainer(ds, { ...SETTINGS, checkpointActivations: true });
  await ck.run({ steps: 6, logEvery: 3 });
  ck.history.forEach((h, i) =>
    assert.ok(Math.abs(h.loss - a.history[i].loss) < 1e-5, `step ${h.step}: ${h.loss} vs ${a.history[i].loss}`),
  );
  assert.ok(a.history.every((h) => Number.isFinite(h.loss)));
  [a, c, ck].forEach((t) => t.dispose());
});

test('a training step on webgpu matches wasm (same batch, same seed)', async () => {
  const { wasm, webgpu } = await onBoth(() => {
    const t = new Trainer(syntheticDataset(), SETTINGS);
    const e = t.trainOne();
    t.dispose();
    return e;
  });
  assert.deepEqual(webgpu.splitSizes, wasm.splitSizes);
  assert.ok(Math.abs(webgpu.loss - wasm.loss) <= 1e-4 * Math.abs(wasm.loss), `${webgpu.loss} vs ${wasm.loss}`);
  assert.ok(
    Math.abs(webgpu.gradNorm - wasm.gradNorm) <= 1e-3 * wasm.gradNorm,
    `${webgpu.gradNorm} vs ${wasm.gradNorm}`,
  );
});

test('8 steps of random AR splits on webgpu follow wasm (buffers reused across sequence lengths hold no stale values)', async () => {
  const { wasm, webgpu } = await onBoth(() => {
    const t = new Trainer(syntheticDataset(), { ...SETTINGS, batchSize: 8 });
    const losses = Array.from({ length: 8 }, () => t.trainOne().loss);
    t.dispose();
    return losses;
  });
  webgpu.forEach((l, i) =>
    assert.ok(Math.abs(l - wasm[i]) <= 1e-4 * Math.abs(wasm[i]), `step ${i + 1}: ${l} vs ${wasm[i]}`),
  );
});

test('the step bench on webgpu counts a step`s GPU dispatches (tfjs programs and ours), its host time and the buffer pool`s misses', async () => {
  await useBackend('webgpu');
  const r = benchTrainStep({ hidden: 64, depth: 2, heads: 2, batch: 2, steps: 2, warmup: 1 });
  // per block at least the fused LayerNorms, attention and the linear products forward and backward
  assert.ok(
    Number.isInteger(r.dispatchesPerStep) && r.dispatchesPerStep! > 20 * 2,
    `${r.dispatchesPerStep} dispatches`,
  );
  assert.ok(r.hostMsPerStep > 0 && r.hostMsPerStep <= r.maxMs, `host ${r.hostMsPerStep} ms of ${r.maxMs}`);
  // the pool's misses: steps of one AR split (S = 1 every step) reuse what the last one released, so next to the
  // hundreds of buffers a step takes it creates almost none (a pool that reused nothing would create them all)
  const same = benchTrainStep({ hidden: 64, depth: 2, heads: 2, batch: 2, steps: 4, warmup: 2, arStepDecay: 1e-6 });
  assert.ok(same.splits.every((s) => s.length === 1));
  assert.ok(same.pool && same.pool.buffersCreatedPerStep <= 2, JSON.stringify(same.pool));
  assert.equal(same.pool.trims, 0);
  assert.ok(r.pool && r.pool.buffersCreatedPerStep >= 0 && r.pool.mbCreatedPerStep >= 0, JSON.stringify(r.pool));
});

test('the step bench times a step on the GPU by kernel: every dispatch of the step, named, their times summing to the total', async () => {
  await useBackend('webgpu');
  const opts = { hidden: 64, depth: 2, heads: 2, batch: 2, warmup: 1, arStepDecay: 1e-6 };
  const p = await profileTrainStep(opts);
  assert.ok(p, 'lavapipe has timestamp queries');
  const steps = benchTrainStep({ ...opts, steps: 1 });
  const counted = p.kernels.reduce((n, k) => n + k.dispatches, 0);
  assert.equal(counted, steps.dispatchesPerStep, 'one timing per dispatch of the step (same AR split)');
  const summed = p.kernels.reduce((t, k) => t + k.ms, 0);
  assert.ok(p.gpuMs > 0 && Math.abs(summed - p.gpuMs) <= 1e-6 * p.gpuMs + 1e-9, `${summed} vs ${p.gpuMs}`);
  for (const name of ['qkNorm', 'flashAttention', 'biasResidual', 'layerNormGradX', 'MatMulPackedProgram'])
    assert.ok(
      p.kernels.some((k) => k.name === name),
      `${name} in ${p.kernels.map((k) => k.name)}`,
    );
  assert.deepEqual(
    p.kernels.map((k) => k.ms),
    [...p.kernels.map((k) => k.ms)].sort((a, b) => b - a),
  );
});

/** GPU dispatches (tfjs's programs and ours) of `f` on the webgpu backend. */
function dispatchesOf(f: () => void): number {
  const backend = tf.backend() as unknown as { recordAndSubmit: (...a: unknown[]) => unknown };
  const original = backend.recordAndSubmit;
  let programs = 0;
  backend.recordAndSubmit = (...a: unknown[]) => (programs++, original.apply(backend, a));
  const ours = wgslDispatches();
  try {
    f();
  } finally {
    backend.recordAndSubmit = original;
  }
  return programs + wgslDispatches() - ours;
}

test('webgpu: a transformer block trains in 11 dispatches forward and 26 backward (QK-norm + attention in one op, bias, GELU and residual after each product; GELU recomputed with its gradient; bias gradients in one pass)', async () => {
  await useBackend('webgpu');
  const config = makeConfig('tiny', { hiddenSize: 64, numHeads: 2 });
  const model = new CausalDiffusionModel(config, { seed: 1 });
  const rng = new Rng(2);
  const N = 2;
  const x0 = rng.normalArray(N * config.latentChannels * config.inputSize ** 2);
  const batch = sampleBatch(model, createDiffusion(''), x0, [1, 2], rng, {
    ...FACTORIZATION_DEFAULTS,
    splitSizes: [5, 11],
  });
  const b = model.prepareBatch(batch);
  const P = model.params as unknown as Record<string, tf.Tensor>;
  const x = tf.tidy(() => model.embed(P, b));
  const own = Object.keys(P).filter((n) => n.startsWith('blocks.0.'));
  let forward = 0;
  let both = 0;
  tf.tidy(() => {
    forward = dispatchesOf(() => model.block(P, 0, x, b));
    both = dispatchesOf(() => gradients(() => model.block(P, 0, x, b), [x, ...own.map((n) => P[n])]));
  });
  tf.dispose([x]);
  disposeBatch(b);
  model.dispose();
  // forward: 2 LayerNorms, 4 products, QK-norm, attention, 3 epilogues; backward: 4 x 2 products, 3 bias sums
  // (1 each), GELU's output again with its gradient (one pass), 2 LayerNorms' (3 each), attention's 2 and QK-norm's 3, 2
  // residual gradient adds
  assert.equal(forward, 11);
  assert.equal(both - forward, 26);
});

test('a forced webgpu without a driver is one clear error naming what is missing', () => {
  const { spawnSync } = require('child_process') as typeof import('child_process');
  const cli = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');
  const r = spawnSync(process.execPath, [cli, 'info'], {
    encoding: 'utf8',
    env: {
      ...process.env,
      CAUSALFUSION_BACKEND: 'webgpu',
      VK_ICD_FILENAMES: '/nonexistent/icd.json',
      VK_DRIVER_FILES: '/nonexistent/icd.json',
    },
  });
  assert.equal(r.status, 2);
  assert.match(
    r.stderr,
    /causalfusion info: backend webgpu is not available: webgpu \(Dawn\) found no GPU adapter: no Vulkan driver found \(install libvulkan1 and a GPU driver/,
  );
});
