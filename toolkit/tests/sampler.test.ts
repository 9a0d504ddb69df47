import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CausalDiffusionModel } from '../src/model/causalfusion';
import { configFromOfficial } from '../src/model/config';
import { sampleImages } from '../src/sample/sampler';
import { editMask, keepToPixels } from '../src/sample/edit';
import { patchify } from '../src/model/patchify';
import { Rng } from '../src/rng';
import { reference, useBackend } from './helpers';

function refModel(): CausalDiffusionModel {
  const ref = reference();
  return new CausalDiffusionModel(configFromOfficial(ref.model_config), { stateDict: ref.state_dict });
}

test('sampling is seeded: same seed, same images; S = 1 .. L all run; orders are permutations', async () => {
  await useBackend('wasm');
  const m = refModel();
  const base = { labels: [1, 2, 10], diffusionSteps: '10' };
  const a = sampleImages(m, { ...base, arSteps: 4, seed: 3 });
  const b = sampleImages(m, { ...base, arSteps: 4, seed: 3 });
  const c = sampleImages(m, { ...base, arSteps: 4, seed: 4 });
  assert.deepEqual(a.images, b.images);
  assert.notDeepEqual(a.images, c.images);
  for (const S of [1, 2, 16]) {
    const r = sampleImages(m, { ...base, arSteps: S, diffusionSteps: '3', order: 'raster' });
    assert.equal(r.stepSizes.length, S);
    assert.ok(r.images.every(Number.isFinite));
    assert.deepEqual(
      r.orders[0],
      Array.from({ length: 16 }, (_, i) => i),
    );
  }
  for (const o of a.orders)
    assert.deepEqual(
      o.slice().sort((x, y) => x - y),
      Array.from({ length: 16 }, (_, i) => i),
    );
  assert.deepEqual(sampleImages(m, { ...base, stepSizes: [1, 5, 10] }).stepSizes, [1, 5, 10]);
  m.dispose();
});

test('the last predicted x0 of each AR step is the token it returns; the cache grows by each step', async () => {
  await useBackend('wasm');
  const m = refModel();
  const lastX0: Float32Array[] = [];
  const cacheLengths: number[] = [];
  const r = sampleImages(m, {
    labels: [0, 3],
    arSteps: 3,
    diffusionSteps: '8',
    cfgScale: 2,
    seed: 1,
    observer: {
      onArStep: (e) => cacheLengths.push(e.cacheLength),
      onDiffusionStep: (e, s) => {
        if (e.diffusionStep === 7) lastX0[e.arStep] = s.x0.dataSync() as Float32Array;
      },
    },
  });
  assert.deepEqual(cacheLengths, [4, 4 + r.stepSizes[0], 4 + r.stepSizes[0] + r.stepSizes[1]]);
  const d = 4;
  r.stepSizes.forEach((k, s) => {
    for (let n = 0; n < 2; n++)
      for (let i = 0; i < k; i++) {
        const pos = r.orders[n][r.stepSizes.slice(0, s).reduce((a, b) => a + b, 0) + i];
        const got = r.tokens.subarray((n * 16 + pos) * d, (n * 16 + pos + 1) * d);
        assert.deepEqual(Array.from(got), Array.from(lastX0[s].subarray((n * k + i) * d, (n * k + i + 1) * d)));
      }
  });
  m.dispose();
});

test('editing keeps the kept tokens bit-identical and generates the rest', async () => {
  await useBackend('wasm');
  const m = refModel();
  const rng = new Rng(2);
  const images = rng.normalArray(2 * 4 * 16);
  const keep = Array.from({ length: 16 }, (_, i) => i < 8); // top half of the 4x4 grid
  const r = sampleImages(m, { labels: [5, 6], arSteps: 2, diffusionSteps: '5', context: { images, keep } });
  const src = patchify(images, 2, 4, 4, 4, 1);
  for (let n = 0; n < 2; n++)
    for (let p = 0; p < 16; p++) {
      const a = Array.from(r.tokens.subarray((n * 16 + p) * 4, (n * 16 + p + 1) * 4));
      const b = Array.from(src.subarray((n * 16 + p) * 4, (n * 16 + p + 1) * 4));
      if (keep[p]) assert.deepEqual(a, b);
      else assert.notDeepEqual(a, b);
    }
  assert.ok(r.orders.every((o) => o.length === 8 && o.every((p) => p >= 8)));
  // any user mask: a checkerboard, generated token by token in raster order
  const checker = Array.from({ length: 16 }, (_, i) => (Math.floor(i / 4) + i) % 2 === 0);
  const c = sampleImages(m, {
    labels: [1, 2],
    stepSizes: new Array(8).fill(1),
    order: 'raster',
    diffusionSteps: '3',
    context: { images, keep: checker },
  });
  for (let n = 0; n < 2; n++)
    checker.forEach((k, p) => {
      if (k)
        assert.deepEqual(
          Array.from(c.tokens.subarray((n * 16 + p) * 4, (n * 16 + p + 1) * 4)),
          Array.from(src.subarray((n * 16 + p) * 4, (n * 16 + p + 1) * 4)),
        );
    });
  assert.deepEqual(
    c.orders[0],
    checker.flatMap((k, p) => (k ? [] : [p])),
  );
  m.dispose();
});

test('bad sampling options get clear errors', async () => {
  await useBackend('wasm');
  const m = refModel();
  assert.throws(() => sampleImages(m, { labels: [11] }), /label 11 outside \[0, 10\]/);
  assert.throws(() => sampleImages(m, { labels: [1], arSteps: 17 }), /AR steps must be an integer in \[1, 16\]/);
  assert.throws(() => sampleImages(m, { labels: [1], stepSizes: [3, 3] }), /sum/);
  assert.throws(() => sampleImages(m, { labels: [1], cfgScale: 0.5 }), /cfg scale must be >= 1/);
  assert.throws(() => sampleImages(m, { labels: [1], order: [0, 1, 2] }), /order has 3 entries, expected L = 16/);
  assert.throws(
    () => sampleImages(m, { labels: [1], context: { images: new Float32Array(64), keep: [true] } }),
    /edit mask has 1 entries/,
  );
  assert.throws(
    () => sampleImages(m, { labels: [1], context: { images: new Float32Array(64), keep: new Array(16).fill(true) } }),
    /nothing to generate/,
  );
  m.dispose();
});

test('named edit regions on a 4x4 grid', () => {
  const show = (k: boolean[]) =>
    Array.from({ length: 4 }, (_, r) =>
      k
        .slice(4 * r, 4 * r + 4)
        .map((v) => (v ? 'k' : 'g'))
        .join(''),
    ).join('/');
  assert.equal(show(editMask('inpaint', 4)), 'kkkk/kggk/kggk/kkkk');
  assert.equal(show(editMask('outpaint', 4)), 'gggg/gkkg/gkkg/gggg');
  assert.equal(show(editMask('top', 4)), 'gggg/gggg/kkkk/kkkk');
  assert.equal(show(editMask('bottom', 4)), 'kkkk/kkkk/gggg/gggg');
  assert.equal(show(editMask('left', 4)), 'ggkk/ggkk/ggkk/ggkk');
  assert.throws(() => editMask('middle' as never, 4), /unknown edit mode "middle"/);
  assert.deepEqual(
    Array.from(keepToPixels(editMask('top', 2), 2, 2)),
    [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1],
  );
});
