import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { Rng } from '../src/rng';
import { frechetDistance } from '../src/eval/frechet';
import { Classifier } from '../src/eval/classifier';
import { nearestDistances, scoreSamples } from '../src/eval/metrics';
import { loadFashionMnist, loadMnist, toModelRange } from '../src/data/datasets';
import { useBackend } from './helpers';
import { median } from '../src/util/median';
import { loadModel } from '../src/io/checkpoint';
import { sampleImages } from '../src/sample/sampler';

const DATA = path.resolve(__dirname, '..', '..', '..', 'data');

test('Fréchet distance: 0 for identical sets, the closed form for 1-D Gaussians, symmetric', () => {
  const rng = new Rng(1);
  const x = Float64Array.from(rng.normalArray(4000 * 3));
  assert.ok(frechetDistance(x, x, 3) < 1e-9);
  // 1-D: (mu1 - mu2)^2 + (s1 - s2)^2 with the sample moments
  const a = Float64Array.from({ length: 5000 }, () => 1 + 2 * rng.normal());
  const b = Float64Array.from({ length: 5000 }, () => -0.5 + 0.5 * rng.normal());
  const moments = (v: Float64Array) => {
    const m = v.reduce((s, t) => s + t, 0) / v.length;
    return [m, Math.sqrt(v.reduce((s, t) => s + (t - m) ** 2, 0) / (v.length - 1))];
  };
  const [ma, sa] = moments(a);
  const [mb, sb] = moments(b);
  assert.ok(Math.abs(frechetDistance(a, b, 1) - ((ma - mb) ** 2 + (sa - sb) ** 2)) < 1e-9);
  // a rank-deficient case (n < d) stays finite and symmetric
  const p = Float64Array.from(rng.normalArray(20 * 32));
  const q = Float64Array.from(rng.normalArray(20 * 32).map((v) => v * 2));
  assert.ok(Math.abs(frechetDistance(p, q, 32) - frechetDistance(q, p, 32)) < 1e-6);
});

test('nearest distances match a brute-force search', async () => {
  await useBackend('wasm');
  const rng = new Rng(2);
  const a = rng.normalArray(7 * 5);
  const b = rng.normalArray(30 * 5);
  const got = nearestDistances(a, b, 5, 8);
  for (let i = 0; i < 7; i++) {
    let best = Infinity;
    for (let j = 0; j < 30; j++)
      best = Math.min(best, Math.hypot(...Array.from({ length: 5 }, (_, k) => a[i * 5 + k] - b[j * 5 + k])));
    assert.ok(Math.abs(got[i] - best) < 1e-4, `${got[i]} vs ${best}`);
  }
});

test('the shipped MNIST classifier: >= 99% test accuracy; FD ~0 real vs real and growing with noise', async () => {
  await useBackend('wasm');
  const clf = Classifier.load(path.join(DATA, 'classifier-mnist.safetensors'));
  const test = loadMnist('test');
  const train = loadMnist('train');
  assert.ok(clf.accuracy(test) >= 0.99);
  const idx = Array.from({ length: 1000 }, (_, i) => i);
  const labels = idx.map((i) => test.labels[i]);
  const clean = toModelRange(test, idx);
  const rng = new Rng(3);
  const scores = [0, 0.3, 1.0].map((sigma) => {
    const noisy = sigma === 0 ? clean : clean.map((v) => Math.max(-1, Math.min(1, v + sigma * rng.normal())));
    return scoreSamples(clf, noisy, labels, loadMnist('test'), train, 0);
  });
  // the "samples" are the test images themselves at sigma 0: accuracy as on the test set, FD near the floor
  assert.ok(
    scores[0].conditionalAccuracy >= 0.98,
    `accuracy on the first 1000 test images ${scores[0].conditionalAccuracy}`,
  );
  assert.ok(scores[0].fd < 2 * scores[0].fdRealVsReal + 0.5, `FD ${scores[0].fd} vs real ${scores[0].fdRealVsReal}`);
  for (let i = 1; i < scores.length; i++)
    assert.ok(scores[i].fd > scores[i - 1].fd, `FD not increasing: ${scores.map((s) => s.fd)}`);
  assert.ok(scores[2].conditionalAccuracy < scores[0].conditionalAccuracy);
  // test images are new, not copies: none is a near-copy by construction of the threshold beyond ~1%
  assert.ok(scores[0].memorisation.nearCopies <= 0.02);
  clf.dispose();
});

test('the shipped Fashion-MNIST classifier: >= 90% test accuracy', async () => {
  await useBackend('wasm');
  const clf = Classifier.load(path.join(DATA, 'classifier-fashion-mnist.safetensors'));
  assert.equal(clf.config.classes, 10);
  assert.ok(clf.accuracy(loadFashionMnist('test')) >= 0.9);
  clf.dispose();
});

test('median: middle value, mean of the middle pair, error on empty', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median(new Float32Array([4, 1, 3, 2])), 2.5);
  assert.throws(() => median([]), /median of an empty list/);
});

test('the shipped 49-token model (F16) draws digits its classifier recognises, at S = 1 and token by token', async () => {
  await useBackend('wasm');
  const model = loadModel(path.join(DATA, 'mnist-base.safetensors'));
  assert.equal(model.numPatches, 49);
  const classifier = Classifier.load(path.join(DATA, 'classifier-mnist.safetensors'));
  const labels = Array.from({ length: 20 }, (_, i) => i % 10);
  for (const arSteps of [1, 49]) {
    const { images } = sampleImages(model, {
      labels,
      arSteps,
      order: 'random',
      diffusionSteps: 'ddim10',
      sampler: 'ddim',
      clipDenoised: true,
      seed: 3,
    });
    const predicted = Array.from(classifier.embed(images).predictions);
    const correct = predicted.filter((p, i) => p === labels[i]).length;
    assert.ok(correct >= 17, `S = ${arSteps}: ${correct} of 20 samples classified as their class`);
  }
  classifier.dispose();
  model.dispose();
});
