import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/rng';
import { configFromOfficial, makeConfig } from '../src/model/config';
import { CausalDiffusionModel, disposeCache } from '../src/model/causalfusion';
import { countParameters, get2dSincosPosEmbed, parameterShapes } from '../src/model/params';
import { gatherTokens, patchify, scatterTokens, unpatchify } from '../src/model/patchify';
import { maxAbs, maxAbsDiff, reference, useBackend } from './helpers';

test('bad configs get one clear error each', () => {
  assert.throws(() => makeConfig('tiny', { numHeads: 5 }), /hidden size 64 is not divisible by the number of heads 5/);
  assert.throws(
    () => makeConfig('tiny', { inputSize: 5, patchSize: 2 }),
    /image size 5 is not divisible by the patch size 2/,
  );
  assert.throws(() => makeConfig('huge' as 'tiny'), /unknown model preset "huge"/);
  assert.throws(() => makeConfig('tiny', { depth: 0 }), /config.depth must be an integer >= 1/);
  assert.throws(() => makeConfig('tiny', { hiddenSize: 66, numHeads: 3 }), /multiple of 4/);
});

test('official parameter names and shapes; preset sizes match the paper notes', () => {
  const ref = reference();
  const cfg = configFromOfficial(ref.model_config);
  const shapes = parameterShapes(cfg);
  assert.deepEqual(
    shapes.map(([n]) => n),
    Object.keys(ref.state_dict),
  );
  for (const [n, s] of shapes) assert.deepEqual(s, ref.state_dict[n].shape, n);
  const M = (name: Parameters<typeof makeConfig>[0]) => countParameters(makeConfig(name)) / 1e6;
  assert.ok(Math.abs(M('CausalFusion-L') - 369.5) < 0.1, `L ${M('CausalFusion-L')}`);
  assert.ok(Math.abs(M('ablation') - 308.0) < 0.1, `ablation ${M('ablation')}`);
  assert.ok(Math.abs(M('CausalFusion-XL') - 714) < 0.5);
  assert.ok(Math.abs(M('CausalFusion-H') - 1236) < 1);
});

test('2-D sin-cos position table: column in the first half, row in the second, [sin | cos] each', () => {
  const pe = get2dSincosPosEmbed(8, 2); // omega = [1, 0.01]
  const f = Math.fround;
  // token 1 = (row 0, column 1)
  assert.deepEqual(Array.from(pe.subarray(8, 16)), [
    f(Math.sin(1)),
    f(Math.sin(0.01)),
    f(Math.cos(1)),
    f(Math.cos(0.01)),
    0,
    0,
    1,
    1,
  ]);
  // token 2 = (row 1, column 0)
  assert.deepEqual(Array.from(pe.subarray(16, 24)), [
    0,
    0,
    1,
    1,
    f(Math.sin(1)),
    f(Math.sin(0.01)),
    f(Math.cos(1)),
    f(Math.cos(0.01)),
  ]);
});

test('initialisation: zero final layer (eps = 0), xavier bounds, N(0, 0.02) label table; seeded', async () => {
  await useBackend('wasm');
  const cfg = makeConfig('tiny');
  const a = new CausalDiffusionModel(cfg, { seed: 3 });
  const b = new CausalDiffusionModel(cfg, { seed: 3 });
  const sa = a.stateDict();
  assert.deepEqual(
    Array.from(sa['blocks.0.mlp.fc1.weight'].data),
    Array.from(b.stateDict()['blocks.0.mlp.fc1.weight'].data),
  );
  assert.equal(maxAbs(sa['final_layer.1.weight'].data), 0);
  assert.ok(maxAbs(sa['blocks.0.mlp.fc1.weight'].data) <= Math.sqrt(6 / (256 + 64)));
  const tab = sa['y_embedder.embedding_table.weight'].data;
  const std = Math.sqrt(tab.reduce((s, v) => s + v * v, 0) / tab.length);
  assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std}`);
  assert.equal(a.trainableNames().includes('pos_embed'), true);
  const frozen = new CausalDiffusionModel(makeConfig('tiny', { trainablePos: false }));
  assert.equal(frozen.trainableNames().includes('pos_embed'), false);
  [a, b, frozen].forEach((m) => m.dispose());
});

test('state dicts: round trip, and a clear error for missing or misshapen weights', async () => {
  await useBackend('wasm');
  const ref = reference();
  const cfg = configFromOfficial(ref.model_config);
  const m = new CausalDiffusionModel(cfg, { stateDict: ref.state_dict });
  const sd = m.stateDict();
  for (const [n, t] of Object.entries(ref.state_dict)) assert.deepEqual(Array.from(sd[n].data), Array.from(t.data), n);
  const broken = { ...ref.state_dict };
  delete (broken as Record<string, unknown>)['x_proj.bias'];
  broken['x_proj.weight'] = { shape: [4, 64], data: new Float32Array(256) };
  assert.throws(
    () => m.loadStateDict(broken),
    /x_proj.weight has shape \[4,64\], expected \[64,4\]; missing x_proj.bias/,
  );
  assert.throws(
    () => new CausalDiffusionModel(makeConfig('tiny', { depth: 3 }), { stateDict: ref.state_dict }),
    /missing blocks.2/,
  );
  m.dispose();
});

test('patchify is nchpwq -> nhwpqc and inverts; gather/scatter invert', () => {
  const N = 2,
    C = 3,
    H = 4,
    W = 4,
    p = 2;
  const x = Float32Array.from({ length: N * C * H * W }, (_, i) => i);
  const t = patchify(x, N, C, H, W, p);
  // token 1 of sample 0 = patch at row 0, col 1: pixel (0,2) channel 0 first, channel-last inside the patch
  assert.deepEqual(Array.from(t.subarray(12, 18)), [2, 18, 34, 3, 19, 35]);
  assert.deepEqual(Array.from(unpatchify(t, N, C, H, W, p)), Array.from(x));
  const order = [
    [3, 1, 0, 2],
    [0, 2, 3, 1],
  ];
  const g = gatherTokens(t, N, 4, 12, order);
  assert.deepEqual(Array.from(scatterTokens(g, N, 4, 12, order)), Array.from(t));
  assert.throws(() => patchify(x, N, C, H, W, 3), /not divisible/);
});

test('KV-cache inference equals the masked full-sequence forward (two AR steps, per-sample orders)', async () => {
  await useBackend('wasm');
  const ref = reference();
  const cfg = configFromOfficial(ref.model_config);
  const model = new CausalDiffusionModel(cfg, { stateDict: ref.state_dict });
  const rng = new Rng(5);
  const N = 2,
    L = 16,
    d = 4,
    C = 4,
    S = 4;
  const x = rng.normalArray(N * C * S * S);
  const xn = rng.normalArray(N * C * S * S);
  const order = [rng.permutation(L), rng.permutation(L)];
  const split = [6, 10];
  const t = 321;
  let full: Float32Array = new Float32Array();
  tf.dispose(
    model.forward(
      { x, xn, target: xn, t: [t, t], y: [1, 2], splitSizes: split, idsShuffle: order },
      { prediction: (e) => (full = e.dataSync() as Float32Array) },
    ),
  );
  const tokX = gatherTokens(patchify(x, N, C, S, S, 1), N, L, d, order);
  const tokN = gatherTokens(patchify(xn, N, C, S, S, 1), N, L, d, order);
  const part = (a: Float32Array, from: number, to: number) => {
    const out: number[] = [];
    for (let n = 0; n < N; n++) out.push(...a.subarray((n * L + from) * d, (n * L + to) * d));
    return tf.tensor3d(out, [N, to - from, d]);
  };
  const pos = (from: number, to: number) => order.map((o) => o.slice(from, to));
  const cache = model.newCache();
  model.forwardCacheUpdate(model.embedCondition([1, 2]), cache);
  const eps1 = model.forwardInference(part(tokN, 0, 6), t, cache, model.posEmbedAt(pos(0, 6)));
  model.forwardCacheUpdate(model.embedClean(part(tokX, 0, 6), pos(0, 6)), cache);
  const eps2 = model.forwardInference(part(tokN, 6, 16), t, cache, model.posEmbedAt(pos(6, 16)));
  const fullT = tf.tensor3d(full, [N, L, d]);
  assert.ok(maxAbsDiff(eps1.dataSync(), tf.slice(fullT, [0, 0, 0], [N, 6, d]).dataSync()) < 1e-5);
  assert.ok(maxAbsDiff(eps2.dataSync(), tf.slice(fullT, [0, 6, 0], [N, 10, d]).dataSync()) < 1e-5);
  assert.equal(cache[0].k!.shape[2], 4 + 6);
  assert.throws(
    () => model.forwardInference(part(tokN, 0, 6), t, model.newCache(), model.posEmbedAt(pos(0, 6))),
    /KV cache is empty/,
  );
  assert.throws(() => model.forwardInference(part(tokN, 0, 6), t, cache, model.posEmbedAt(pos(0, 6)), 4.0), /2N rows/);
  disposeCache(cache);
  model.dispose();
});
