import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { createDiffusion, getNamedBetaSchedule, minSnrCdf, spaceTimesteps, timeSampler } from '../src/diffusion';
import { Rng } from '../src/rng';
import { maxAbsDiff, reference, useBackend } from './helpers';

test('linear beta schedule and alpha-bar equal the official float64 values to 1e-12', () => {
  const ref = reference().diffusion;
  const d = createDiffusion('');
  assert.equal(d.numTimesteps, 1000);
  assert.ok(maxAbsDiff(d.betas, ref.betas) <= 1e-12);
  assert.ok(maxAbsDiff(d.alphasCumprod, ref.alphas_cumprod) <= 1e-12);
  assert.ok(maxAbsDiff(getNamedBetaSchedule(1000), ref.betas) <= 1e-12);
});

test('ADM respacing "250" / "50" / "10": timestep map exact, betas to 1e-12', () => {
  for (const [spec, ref] of Object.entries(reference().respaced)) {
    const d = createDiffusion(spec);
    assert.deepEqual(d.timestepMap, ref.timestep_map, spec);
    assert.ok(maxAbsDiff(d.betas, ref.betas) <= 1e-12, spec);
    // respacing keeps the marginals: alpha-bar at kept steps is unchanged
    const full = createDiffusion('');
    d.timestepMap.forEach((t, i) => assert.ok(Math.abs(d.alphasCumprod[i] - full.alphasCumprod[t]) < 1e-12));
  }
});

test('ddim and sectioned respacing, and clear errors', () => {
  assert.deepEqual(
    spaceTimesteps(1000, 'ddim25'),
    Array.from({ length: 25 }, (_, i) => i * 40),
  );
  assert.deepEqual(spaceTimesteps(300, '10,15,20').length, 45);
  assert.deepEqual(spaceTimesteps(100, [1]), [0]);
  assert.throws(() => spaceTimesteps(1000, 'ddim999'), /integer stride/);
  assert.throws(() => spaceTimesteps(1000, 'fast'), /bad respacing/);
  assert.throws(() => spaceTimesteps(10, '20'), /cannot divide section of 10 steps into 20/);
});

test('fixed-large variance replaces the first entry by posterior_variance[1]', () => {
  const d = createDiffusion('250');
  assert.equal(d.modelVariance[0], d.posteriorVariance[1]);
  assert.equal(d.modelVariance[5], d.betas[5]);
});

test('qSample reproduces the official x_t, and predictXStartFromEps inverts it', async () => {
  await useBackend('wasm');
  const f = reference().forward;
  const d = createDiffusion('');
  const x = tf.tensor(f.x.data, f.x.shape);
  const noise = tf.tensor(f.noise.data, f.noise.shape);
  const xt = d.qSample(x, f.t, noise);
  assert.ok(maxAbsDiff(xt.dataSync(), f.x_t.data) <= 1e-6);
  // the host-side twin used to build training batches gives the same values
  assert.ok(maxAbsDiff(d.qSampleArray(f.x.data, f.t, f.noise.data), f.x_t.data) <= 1e-6);
  assert.throws(() => d.qSampleArray(f.x.data, [0, 1000], f.noise.data), /timestep 1000 is outside/);
  const x0 = d.predictXStartFromEps(xt, f.t, noise);
  assert.ok(maxAbsDiff(x0.dataSync(), f.x.data) <= 1e-4);
  assert.throws(() => d.qSample(x, [0, 1000], noise), /timestep 1000 is outside/);
  tf.dispose([x, noise, xt, x0]);
});

test('DDPM step: no noise at t = 0; DDIM with eta 0 is deterministic and lands on x0 at t = 0', async () => {
  await useBackend('wasm');
  const d = createDiffusion('50');
  const xt = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 1);
  const eps = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 2);
  const n1 = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 3);
  const n2 = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 4);
  const a = d.pSample(xt, 0, eps, n1);
  const b = d.pSample(xt, 0, eps, n2);
  assert.deepEqual(Array.from(a.sample.dataSync()), Array.from(b.sample.dataSync()));
  const c = d.pSample(xt, 10, eps, n1);
  const e = d.pSample(xt, 10, eps, n2);
  assert.ok(maxAbsDiff(c.sample.dataSync(), e.sample.dataSync()) > 1e-3);
  const di = d.ddimSample(xt, 0, eps, n1, 0);
  assert.ok(maxAbsDiff(di.sample.dataSync(), di.predXStart.dataSync()) < 1e-5);
  tf.dispose([
    xt,
    eps,
    n1,
    n2,
    a.sample,
    a.predXStart,
    b.sample,
    b.predXStart,
    c.sample,
    c.predXStart,
    e.sample,
    e.predXStart,
    di.sample,
    di.predXStart,
  ]);
});

test('cosine schedule (improved DDPM) for small pixel models; unknown names are refused', () => {
  const b = getNamedBetaSchedule(1000, 'cosine');
  // values of improved-diffusion's betas_for_alpha_bar(1000, cos((t + 0.008) / 1.008 * pi / 2) ** 2, 0.999), computed in Python
  assert.ok(Math.abs(b[0] - 4.128422482196914e-5) < 1e-15);
  assert.ok(Math.abs(b[500] - 0.003155691441585007) < 1e-15);
  assert.ok(Math.abs(b[998] - 0.7499993929011166) < 1e-12);
  assert.equal(b[999], 0.999);
  const d = createDiffusion('', { noiseSchedule: 'cosine' });
  assert.ok(Math.abs(d.alphasCumprod[499] - 0.4938435904406382) < 1e-12);
  assert.throws(() => getNamedBetaSchedule(1000, 'quadratic' as never), /unknown noise schedule "quadratic"/);
});

test('v-prediction: the v target and eps-from-v invert each other', async () => {
  const { useBackend } = await import('./helpers');
  await useBackend('wasm');
  const tf = await import('@tensorflow/tfjs');
  const d = createDiffusion('', { noiseSchedule: 'cosine' });
  const rng = new (await import('../src/rng')).Rng(3);
  const x0 = rng.normalArray(3 * 8);
  const eps = rng.normalArray(3 * 8);
  const t = [5, 500, 990];
  const xt = d.qSampleArray(x0, t, eps);
  const v = d.vTargetArray(x0, t, eps);
  t.forEach((ti, n) => {
    const got = tf.tidy(() =>
      d.epsFromV(tf.tensor(xt.subarray(n * 8, n * 8 + 8)), ti, tf.tensor(v.subarray(n * 8, n * 8 + 8))).dataSync(),
    );
    got.forEach((g, i) => assert.ok(Math.abs(g - eps[n * 8 + i]) < 1e-5, `t=${ti}: ${g} vs ${eps[n * 8 + i]}`));
    // and v = sqrt(abar) eps - sqrt(1 - abar) x0
    const a = Math.sqrt(d.alphasCumprod[ti]);
    assert.ok(Math.abs(v[n * 8] - (a * eps[n * 8] - Math.sqrt(1 - a * a) * x0[n * 8])) < 1e-6);
  });
});

test('Min-SNR time sampling: the CDF of min(SNR, 2) / (SNR + 1), uniform draws exactly the official randint', () => {
  const d = createDiffusion('', { noiseSchedule: 'cosine', prediction: 'v' });
  const cdf = minSnrCdf(d);
  assert.equal(cdf[cdf.length - 1], 1);
  for (let t = 1; t < cdf.length; t++) assert.ok(cdf[t] >= cdf[t - 1]);
  // the density peaks where SNR crosses gamma and vanishes for nearly clean images
  const density = (t: number) => cdf[t] - (t > 0 ? cdf[t - 1] : 0);
  const snr = (t: number) => d.alphasCumprod[t] / (1 - d.alphasCumprod[t]);
  const peak = Array.from(cdf.keys()).reduce((a, t) => (density(t) > density(a) ? t : a), 0);
  assert.ok(snr(peak) > 1 && snr(peak) < 4, `peak at t=${peak}, SNR ${snr(peak)}`);
  assert.ok(density(0) < 0.01 * density(peak));
  // draws follow the CDF: the median draw is where the CDF crosses 1/2
  const draw = timeSampler(d, 'min-snr');
  const rng = new Rng(1);
  const draws = Array.from({ length: 4000 }, () => draw(rng)).sort((a, b) => a - b);
  const half = cdf.findIndex((c) => c >= 0.5);
  assert.ok(Math.abs(draws[2000] - half) <= 15, `median draw ${draws[2000]} vs ${half}`);
  // the weight follows the diffusion's prediction: eps weighs min(SNR, 2) / SNR, flat below SNR 2
  const eps = minSnrCdf(createDiffusion('', { noiseSchedule: 'cosine' }));
  assert.ok(eps[500] < cdf[500], `eps ${eps[500]} vs v ${cdf[500]}`);
  const [a, b] = [new Rng(3), new Rng(3)];
  const uniform = timeSampler(d, 'uniform');
  for (let i = 0; i < 100; i++) assert.equal(uniform(a), b.randint(0, 999));
});

test('the diffusion owns its parameterisation: training target and eps from the network output follow `prediction`', () => {
  const x0 = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i));
  const noise = Float32Array.from({ length: 16 }, (_, i) => Math.cos(3 * i));
  const t = [10, 700];
  const eps = createDiffusion('');
  const v = createDiffusion('', { prediction: 'v' });
  assert.equal(eps.trainingTargetArray(x0, t, noise), noise);
  assert.deepEqual(v.trainingTargetArray(x0, t, noise), v.vTargetArray(x0, t, noise));
  const xt = tf.tensor2d(
    Array.from({ length: 8 }, (_, i) => i / 8),
    [1, 8],
  );
  const out = tf.tensor2d(
    Array.from({ length: 8 }, (_, i) => 1 - i / 8),
    [1, 8],
  );
  assert.equal(eps.epsFromOutput(xt, 3, out), out);
  assert.deepEqual(v.epsFromOutput(xt, 3, out).dataSync(), v.epsFromV(xt, 3, out).dataSync());
  assert.throws(() => createDiffusion('', { prediction: 'x0' as 'v' }), /prediction must be eps or v, got x0/);
});
