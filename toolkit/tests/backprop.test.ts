/**
 * The freeing backward walk (train/backprop): the same numbers as tfjs's own walk, bit for bit, on a model's
 * loss and on ops whose gradients pass tensors through or fan out; no tensor left behind; and on the GPU
 * (lavapipe here) a real drop of the device memory a step holds at its peak.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { gradients, variableGrads } from '../src/train/backprop';
import { makeConfig } from '../src/model/config';
import { CausalDiffusionModel, disposeBatch } from '../src/model/causalfusion';
import { createDiffusion } from '../src/diffusion';
import { FACTORIZATION_DEFAULTS, sampleBatch } from '../src/train/step';
import { weightedLoss } from '../src/train/loss';
import type { BufferPool } from '../src/backend/webgpu-pool';
import { Rng } from '../src/rng';
import { useBackend } from './helpers';

/** A model's weighted loss on one fixed batch, as a function of nothing (its variables are the xs). */
function modelLoss(preset: Parameters<typeof makeConfig>[0], N: number, splitSizes: number[]) {
  const model = new CausalDiffusionModel(makeConfig(preset), { seed: 3 });
  const last = Object.keys(model.params).find((n) => n.startsWith('final_layer.') && n.endsWith('weight'))!;
  model.params[last].assign(tf.randomNormal(model.params[last].shape, 0, 0.05, 'float32', 3)); // zero-initialised head
  const rng = new Rng(3);
  const x = rng.normalArray(N * model.numPatches * model.patchDim);
  const y = Array.from({ length: N }, (_, i) => i % 10);
  const batch = sampleBatch(model, createDiffusion(''), x, y, rng, { ...FACTORIZATION_DEFAULTS, splitSizes });
  const b = model.prepareBatch(batch);
  const vars = model.trainableNames().map((n) => model.params[n]);
  const f = () => weightedLoss(model.forwardPrepared(b), batch.arWeights);
  const dispose = () => {
    disposeBatch(b);
    model.dispose();
  };
  return { vars, f, dispose };
}

test('the freeing walk gives tfjs`s loss and gradients bit for bit and leaves no tensor behind (cpu, wasm)', async () => {
  for (const backend of ['cpu', 'wasm'] as const) {
    await useBackend(backend);
    const m = modelLoss('tiny', 4, [5, 4, 7]);
    const tensorsBefore = tf.memory().numTensors;
    const theirs = tf.variableGrads(m.f, m.vars);
    const ours = variableGrads(m.f, m.vars);
    assert.equal(ours.value.dataSync()[0], theirs.value.dataSync()[0]);
    assert.deepEqual(Object.keys(ours.grads).sort(), Object.keys(theirs.grads).sort());
    assert.equal(Object.keys(ours.grads).length, m.vars.length);
    for (const [name, g] of Object.entries(theirs.grads)) {
      assert.deepEqual(ours.grads[name].dataSync(), g.dataSync(), `${backend} ${name}`);
    }
    tf.dispose([theirs.value, ours.value, ...Object.values(theirs.grads), ...Object.values(ours.grads)]);
    assert.equal(tf.memory().numTensors, tensorsBefore, `${backend}: tensors left behind`);
    m.dispose();
  }
});

test('pass-through and fan-out gradients, an upstream dy, a variable f ignores; bad calls name the problem', async () => {
  await useBackend('cpu');
  const x = tf.tensor2d([0.5, -1, 2, 3, -0.25, 1.5], [2, 3]);
  const w = tf.tensor1d([2, -1, 0.5]);
  const unused = tf.tensor1d([7]);
  // x reaches y through a reshape, itself twice (x·x), an identity-gradient add and a broadcast
  const f = () => tf.add(tf.mul(tf.reshape(tf.reshape(x, [6]), [2, 3]), x), tf.add(tf.mul(x, w), x));
  const dy = tf.tensor2d([1, 2, 3, -1, 0.5, 4], [2, 3]);
  const before = tf.memory().numTensors;
  const ours = gradients(f, [x, w, unused], dy);
  const theirs = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
    tf.add(tf.mul(tf.reshape(tf.reshape(a, [6]), [2, 3]), a), tf.add(tf.mul(a, b), a)),
  )([x, w], dy);
  assert.deepEqual(ours.grads[0]!.dataSync(), theirs[0].dataSync());
  assert.deepEqual(ours.grads[1]!.dataSync(), theirs[1].dataSync());
  assert.equal(ours.grads[2], null);
  // and the exact values: d/dx = dy·(2x + w + 1), d/dw = Σ_rows dy·x
  const want = [
    1 * (1 + 2 + 1),
    2 * (-2 - 1 + 1),
    3 * (4 + 0.5 + 1),
    -1 * (6 + 2 + 1),
    0.5 * (-0.5 - 1 + 1),
    4 * (3 + 0.5 + 1),
  ];
  assert.deepEqual(Array.from(ours.grads[0]!.dataSync()), want);
  assert.ok(!dy.isDisposed, 'the caller`s dy is left alone');
  tf.dispose([ours.value, ...ours.grads.filter((g): g is tf.Tensor => g !== null), ...theirs]);
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => gradients(() => tf.mul(w, 2), [unused]), /y does not depend on any of the xs/);
  assert.throws(
    () => tf.grads((a: tf.Tensor) => tf.sum(gradients(() => tf.sum(tf.mul(a, a)), [a]).value))([w]),
    /nested gradient calls are not supported/,
  );
  // a forward that throws leaves no saved tensor behind, and the next call works
  const held = tf.memory().numTensors;
  assert.throws(
    () =>
      gradients(() => {
        tf.mul(x, x); // saves x twice on the tape
        throw new Error('broken forward');
      }, [x]),
    /broken forward/,
  );
  assert.equal(tf.memory().numTensors, held);
  const again = gradients(() => tf.sum(tf.mul(x, x)), [x]);
  assert.deepEqual(
    Array.from(again.grads[0]!.dataSync()),
    tf.tidy(() => Array.from(tf.mul(x, 2).dataSync())),
  );
  tf.dispose([again.value, again.grads[0]!]);
  const vw = tf.variable(w);
  assert.throws(
    () => variableGrads(() => tf.mul(vw, 2) as unknown as tf.Scalar, [vw]),
    /must return a scalar, not a \[3\]/,
  );
  tf.dispose([x, w, unused, dy, vw]);
});

test('on webgpu a step`s gradients hold about half the device memory of tfjs`s walk, and are the same numbers', async () => {
  await useBackend('webgpu');
  const pool = (tf.backend() as unknown as { bufferManager: BufferPool }).bufferManager;
  let peak = 0;
  const acquire = pool.acquireBuffer;
  pool.acquireBuffer = (...args) => {
    const b = acquire.apply(pool, args);
    peak = Math.max(peak, pool.numBytesUsed);
    return b;
  };
  try {
    const m = modelLoss('mnist-base', 8, [28, 21]);
    const peakOf = async (walk: typeof variableGrads) => {
      const base = pool.numBytesUsed;
      peak = base;
      const r = walk(m.f, m.vars);
      const values = await Promise.all(Object.values(r.grads).map((g) => g.data()));
      tf.dispose([r.value, ...Object.values(r.grads)]);
      return { bytes: peak - base, values };
    };
    const theirs = await peakOf(tf.variableGrads);
    const ours = await peakOf(variableGrads);
    assert.deepEqual(ours.values, theirs.values);
    // measured on lavapipe: 117 MB against 234-254 MB
    assert.ok(ours.bytes < 0.6 * theirs.bytes, `peak ${ours.bytes} bytes vs tfjs's ${theirs.bytes}`);
    m.dispose();
  } finally {
    pool.acquireBuffer = acquire;
  }
});
