import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import * as tf from '@tensorflow/tfjs';
import { Trainer, TrainSettings, LogEvent, RunSummary, SampleEvent } from '../src/train/trainer';
import { LossStats } from '../src/train/stats';
import { ProgressBar, formatDuration } from '../src/train/progress';
import { loadModel, readCheckpoint } from '../src/io/checkpoint';
import { syntheticDataset, useBackend, tempDir } from './helpers';

const SETTINGS: TrainSettings = { model: 'tiny', batchSize: 8, lr: 1e-3, warmupSteps: 2, emaDecay: 0.9, seed: 3 };
const tmp = () => tempDir('cf-trainer-');
const params = (t: Trainer) => ({
  ...t.model.stateDict(),
  ...Object.fromEntries(Object.entries(t.emaModel.stateDict()).map(([k, v]) => [`ema.${k}`, v])),
});

test('train 2N steps == train N, save, resume, train N (bit for bit)', async () => {
  await useBackend('wasm');
  const ds = syntheticDataset();
  const a = new Trainer(ds, SETTINGS);
  await a.run({ steps: 10, logEvery: 5 });
  const file = path.join(tmp(), 'run.safetensors');
  const b = new Trainer(ds, SETTINGS);
  await b.run({ steps: 5, logEvery: 5, checkpointPath: file });
  b.dispose();
  const c = Trainer.resume(file, ds);
  assert.equal(c.step, 5);
  await c.run({ steps: 5, logEvery: 5 });
  const pa = params(a);
  const pc = params(c);
  for (const k of Object.keys(pa)) assert.deepEqual(pc[k].data, pa[k].data, `${k} differs after resume`);
  assert.deepEqual(
    c.history.map((h) => h.loss),
    a.history.map((h) => h.loss),
  );
  assert.deepEqual(c.loader.state(), a.loader.state());
  a.dispose();
  c.dispose();
});

describe('one run with every callback, stopped by an AbortSignal at step 7', () => {
  const seen = { step: 0, log: [] as LogEvent[], samples: [] as SampleEvent[], ckpt: 0, splitSums: [] as number[] };
  let summary: RunSummary;
  let trainer: Trainer;
  let file: string;
  before(async () => {
    await useBackend('wasm');
    trainer = new Trainer(syntheticDataset(), SETTINGS);
    const ac = new AbortController();
    file = path.join(tmp(), 'every.safetensors');
    summary = await trainer.run({
      steps: 100,
      signal: ac.signal,
      logEvery: 2,
      sampleEvery: 3,
      sample: { perClass: 1, diffusionSteps: '5' },
      checkpointEvery: 4,
      checkpointPath: file,
      callbacks: {
        onStep: (e) => {
          seen.step++;
          seen.splitSums.push(e.splitSizes.reduce((x, y) => x + y, 0));
          if (e.step === 7) ac.abort();
        },
        onLog: (e) => void seen.log.push(e),
        onSample: (e) => void seen.samples.push(e),
        onCheckpoint: () => void seen.ckpt++,
      },
    });
  });
  after(() => trainer.dispose());

  test('the signal stops the run after the current step', () => {
    assert.equal(summary.stoppedBy, 'signal');
    assert.equal(summary.steps, 7);
    assert.equal(seen.step, 7);
  });

  test('onStep sees each step split into AR steps covering all 16 tokens', () => {
    assert.deepEqual(seen.splitSums, new Array(7).fill(16));
  });

  test('onLog fires every logEvery steps and at the stop', () => {
    assert.deepEqual(
      seen.log.map((e) => e.step),
      [2, 4, 6, 7],
    );
  });

  test('onSample fires every sampleEvery steps with one image per class', () => {
    assert.equal(seen.samples.length, 2);
    for (const e of seen.samples) {
      assert.deepEqual(e.labels, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.equal(e.result.images.length, 10 * 4 * 16);
    }
  });

  test('checkpoints are written every checkpointEvery steps and at the stop', () => {
    assert.equal(seen.ckpt, 2); // step 4, and the final one at 7
    assert.equal(readCheckpoint(file).meta.step, 7);
  });

  test('loss breakdowns by AR step, S and t bin; a log window covers every token of the window', () => {
    const bd = trainer.stats.breakdown();
    assert.ok(bd.byArStep[0] !== null && bd.byArStep[0]! > 0);
    assert.equal(bd.byTBin.length, 10);
    assert.ok(bd.byNumSteps.some((v) => v !== null));
    assert.equal(
      seen.log[0].breakdown.arStepTokens.reduce((x, y) => x + y, 0),
      2 * 8 * 16,
    );
  });
});

test('LossStats buckets tokens by AR step, S and t bin', () => {
  const s = new LossStats(4, 1000);
  // 2 samples x 4 tokens, split [1, 3]; t = 0 and 999
  s.add(new Float32Array([1, 2, 2, 2, 3, 4, 4, 4]), [0, 1, 4], [0, 999]);
  const b = s.breakdown();
  assert.deepEqual(b.byArStep, [2, 3]);
  assert.deepEqual(b.arStepTokens, [2, 6]);
  assert.deepEqual(b.byNumSteps, [null, 2.75]);
  assert.deepEqual(b.byTBin, [1.75, null, null, 3.75]);
  assert.deepEqual(LossStats.fromJSON(JSON.parse(JSON.stringify(s.toJSON()))).breakdown(), b);
});

test('tf.memory() stays flat over 1000 training steps', async () => {
  await useBackend('wasm');
  const t = new Trainer(syntheticDataset(), { ...SETTINGS, batchSize: 4 });
  await t.run({ steps: 5, logEvery: 0 });
  const before = tf.memory().numTensors;
  const bytes = tf.memory().numBytes;
  await t.run({ steps: 1000, logEvery: 100 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(tf.memory().numBytes, bytes);
  assert.ok(
    t.history.every((h) => h.tensors === before),
    `tensor counts ${t.history.map((h) => h.tensors)}`,
  );
  t.dispose();
});

test('a NaN loss stops training with a message naming the step', async () => {
  await useBackend('wasm');
  const t = new Trainer(syntheticDataset(), SETTINGS);
  await t.run({ steps: 3, logEvery: 0 });
  t.model.params['x_proj.bias'].assign(tf.fill([64], NaN));
  await assert.rejects(t.run({ steps: 3 }), /loss is NaN at step 4: training stopped/);
  t.dispose();
});

test('bad settings and a mismatched dataset get clear errors', async () => {
  await useBackend('wasm');
  const ds = syntheticDataset();
  assert.throws(
    () => new Trainer(ds, { ...SETTINGS, model: 'mnist-small' }),
    /dataset synthetic has images 4x4x4 but the model expects 1x28x28/,
  );
  assert.throws(() => new Trainer(ds, { ...SETTINGS, batchSize: 0 }), /batchSize must be a positive integer/);
  assert.throws(() => new Trainer(ds, { ...SETTINGS, lr: -1 }), /learning rate must be > 0/);
  assert.throws(
    () => new Trainer(ds, { ...SETTINGS, timeSampling: 'beta' as 'uniform' }),
    /time sampling must be uniform or min-snr, got beta/,
  );
  assert.throws(
    () => new Trainer(ds, { ...SETTINGS, factorization: { arStepDecay: 1.5 } }),
    /AR-step decay must be in \(0, 1\]/,
  );
  const file = path.join(tmp(), 'w.safetensors');
  const t = new Trainer(ds, SETTINGS);
  t.exportWeights(file);
  assert.throws(() => Trainer.resume(file, ds), /not a full training checkpoint/);
  const m = loadModel(file);
  assert.deepEqual(m.stateDict()['x_proj.weight'].data, t.emaModel.stateDict()['x_proj.weight'].data);
  t.save(file);
  assert.throws(
    () => Trainer.resume(file, { ...ds, name: 'other' }),
    /was trained on synthetic \(40 images\), not other/,
  );
  m.dispose();
  t.dispose();
});

test('a trainer killed with SIGKILL while saving leaves a resumable checkpoint', async () => {
  const dir = tmp();
  const file = path.join(dir, 'ckpt.safetensors');
  const mod = (p: string) => JSON.stringify(path.resolve(__dirname, '..', 'src', p));
  const script = `
    const { initBackend } = require(${mod('backend/index.js')});
    const { Trainer } = require(${mod('train/trainer.js')});
    const ds = require(${JSON.stringify(path.join(__dirname, 'helpers.js'))}).syntheticDataset();
    initBackend({ backend: 'wasm', quiet: true }).then(async () => {
      const t = new Trainer(ds, ${JSON.stringify(SETTINGS)});
      await t.run({ steps: 2, logEvery: 0 });
      t.save(${JSON.stringify(file)});
      process.stdout.write('ready\\n');
      for (;;) t.save(${JSON.stringify(file)});
    });`;
  await useBackend('wasm');
  for (let round = 0; round < 3; round++) {
    const child = spawn(process.execPath, ['-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NODE_TEST_CONTEXT: '' },
    });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 20 + 37 * round));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const t = Trainer.resume(file, syntheticDataset());
    assert.equal(t.step, 2);
    // the next save clears temp files of killed writers, so they never pile up
    t.save(file);
    assert.deepEqual(fs.readdirSync(dir), ['ckpt.safetensors']);
    t.dispose();
  }
});

test('a checkpoint save on a full disk (injected ENOSPC after a short write) keeps the previous checkpoint and says so', async () => {
  await useBackend('wasm');
  const dir = tmp();
  const file = path.join(dir, 'ckpt.safetensors');
  const t = new Trainer(syntheticDataset(), SETTINGS);
  await t.run({ steps: 2, logEvery: 0, checkpointPath: file });
  const before = fs.readFileSync(file);
  const nodeFs = require('fs') as { writeSync: typeof fs.writeSync }; // the module itself, not the import's read-only view
  const realWrite = nodeFs.writeSync;
  let calls = 0;
  // the disk takes half of the next write, then reports ENOSPC: the state a nearly full disk leaves
  (nodeFs as { writeSync: unknown }).writeSync = (fd: number, buf: Uint8Array, off = 0, len = buf.length - off) => {
    if (calls++ === 0) return realWrite(fd, buf, off, Math.floor(len / 2));
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  };
  try {
    await assert.rejects(t.run({ steps: 1, logEvery: 0, checkpointPath: file }), (e: Error & { code?: string }) => {
      assert.match(
        e.message,
        /could not write .*ckpt\.safetensors: no space left on device \(\d+\.\d MB\); the previous file is unchanged/,
      );
      assert.equal(e.code, 'ENOSPC');
      return true;
    });
  } finally {
    nodeFs.writeSync = realWrite;
  }
  assert.ok(calls >= 2, 'the save went through the injected disk');
  assert.deepEqual(fs.readFileSync(file), before); // bit for bit the step-2 checkpoint
  assert.deepEqual(fs.readdirSync(dir), ['ckpt.safetensors']); // the partial temp file is gone
  const again = Trainer.resume(file, syntheticDataset());
  assert.equal(again.step, 2);
  [t, again].forEach((x) => x.dispose());
});

test('the progress bar renders step, loss, speed and ETA', () => {
  const line = ProgressBar.render({ step: 50, total: 100, loss: 0.12345, stepsPerSec: 2, elapsedSec: 25 }, 10);
  assert.equal(line, 'step 50/100 [====>     ] loss 0.1235 2.00 it/s 25s elapsed, eta 25s');
  const chunks: string[] = [];
  const out = { isTTY: false, write: (s: string) => (chunks.push(s), true) } as unknown as NodeJS.WritableStream;
  const bar = new ProgressBar(out, 10);
  bar.update({ step: 1, total: 2, loss: 1, stepsPerSec: 1, elapsedSec: 1 });
  assert.equal(chunks.length, 0); // not a TTY: only forced (log) updates print
  bar.update({ step: 1, total: 2, loss: 1, stepsPerSec: 1, elapsedSec: 1 }, true);
  assert.match(chunks[0], /^step 1\/2 \[/);
});

test('the ETA respects the time budget: the smaller of the step-based and the time-based estimate', () => {
  // 4181 of 100000 steps at 5 it/s would take 5h19m; a 14-minute budget with 13m elapsed leaves 1 minute
  const capped = ProgressBar.render(
    { step: 4181, total: 100000, loss: 0.1, stepsPerSec: 5, elapsedSec: 780, maxSeconds: 840 },
    10,
  );
  assert.match(capped, /eta 1m00s$/);
  // steps finish before the budget: the step-based estimate wins
  const bySteps = ProgressBar.render(
    { step: 90, total: 100, loss: 0.1, stepsPerSec: 2, elapsedSec: 45, maxSeconds: 840 },
    10,
  );
  assert.match(bySteps, /eta 5s$/);
  // past the budget: 0s, never negative
  assert.match(
    ProgressBar.render({ step: 9, total: 100, loss: 0.1, stepsPerSec: 1, elapsedSec: 900, maxSeconds: 840 }, 10),
    /eta 0s$/,
  );
});

test('durations are rounded before they are split into minutes and seconds', () => {
  assert.equal(formatDuration(1019.6), '17m00s'); // was "16m60s"
  assert.equal(formatDuration(59.5), '1m00s');
  assert.equal(formatDuration(59.4), '59s');
  assert.equal(formatDuration(3599.9), '60m00s');
  assert.equal(formatDuration(NaN), '?');
});
