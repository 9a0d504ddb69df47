/**
 * The explorer's session, in Node (the page runs the same code in the browser: tests/explorer-browser.test.ts):
 * its generations are the sampler's, bit for bit, on the same backend; its asynchronous run is the synchronous
 * one; editing keeps the kept tokens; a token's attention is the recorder's row for it; and every bad file gets
 * one clear message while the previous model stays in use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import {
  BROWSER_MODEL_BUDGET,
  ExplorerSession,
  frameImage,
  maskRow,
  modelFromBytes,
  runImage,
  stepOfToken,
  tokenAttention,
} from '../src/explorer/session';
import { buildExplorer, explorerHtml, writeExplorerFolder } from '../src/explorer/folder';
import { decodeImages } from '../src/explorer/manifest';
import { sampleImages, sampleImagesAsync } from '../src/sample/sampler';
import { SamplingRecorder } from '../src/introspect/recorders';
import { cachedRollout, attentionRollout } from '../src/introspect/rollout';
import { serializeCheckpoint, configFromShapes } from '../src/io/checkpoint-format';
import { serializeSafetensors } from '../src/io/safetensors';
import { makeConfig } from '../src/model/config';
import { CausalDiffusionModel } from '../src/model/causalfusion';
import { shippedPath } from '../src/data/assets';
import { tempDir, useBackend } from './helpers';

const FIXTURE_PT = path.join(__dirname, '..', '..', 'tests', 'fixtures', 'tiny-official.pt');

/** The shipped small model as the explorer ships it (float16 weights). */
function shippedSmall(): { session: ExplorerSession; bytes: Uint8Array } {
  const b = buildExplorer([{ checkpoint: 'mnist-small' }]);
  const bytes = b.weights.get('mnist-small')!;
  const session = new ExplorerSession();
  session.load(bytes, 'mnist-small.safetensors');
  return { session, bytes };
}

test('a generation is the sampler run with the same options, bit for bit, with frames and attention', async () => {
  await useBackend('wasm');
  const { session } = shippedSmall();
  const run = await session.generate({
    label: 7,
    count: 2,
    arSteps: 3,
    stepSizes: 'law',
    diffusionSteps: 6,
    seed: 11,
    cfgScale: 2,
  });
  const ref = sampleImages(session.model, {
    labels: [7, 7],
    stepSizes: run.stepSizes,
    diffusionSteps: 6,
    seed: 11,
    cfgScale: 2,
  });
  assert.deepEqual(run.images, ref.images);
  assert.deepEqual(run.orders, ref.orders);
  assert.equal(run.stepSizes.length, 3);
  assert.equal(
    run.stepSizes.reduce((a, b) => a + b),
    16,
  );
  // frames: one per denoising step of each AR step; the last x̂0 of a step's chain is the x_0 it produced
  assert.equal(run.frames.length, 3);
  for (const f of run.frames) assert.equal(f.x0.length, 6);
  const last = frameImage(run, 2, 5, 'xt');
  assert.equal(last.length, 28 * 28);
  // the first frame shows nothing of later steps: their tokens are mid-grey (0)
  const first = frameImage(run, 0, 0, 'x0');
  const later = run.frames[2].positions[0];
  const [r, c] = [Math.floor(later / 4) * 7, (later % 4) * 7];
  assert.equal(first[r * 28 + c], 0);
  // attention of image 0 at the last denoising step of each AR step, every layer
  assert.equal(run.attention.length, 3 * 4);
  assert.ok(run.attention.every((a) => a.diffusionStep === 5 && a.sample === 0 && !a.unconditional));
  session.model.dispose();
});

test('the asynchronous run is the synchronous one (same numbers), and it can be cancelled', async () => {
  await useBackend('wasm');
  const model = new CausalDiffusionModel(makeConfig('tiny'), { seed: 3 });
  const opts = { labels: [1, 2, 3], arSteps: 4, diffusionSteps: '5', seed: 4, cfgScale: 1.5 };
  const sync = sampleImages(model, opts);
  let pauses = 0;
  const before = tf.memory().numTensors;
  const asyncR = await sampleImagesAsync(model, opts, { onPause: () => void pauses++, sliceMs: 0 });
  assert.deepEqual(asyncR.images, sync.images);
  assert.equal(pauses, 4 * 5 + 4); // a pause per denoising step, and one read per AR step
  let n = 0;
  await assert.rejects(sampleImagesAsync(model, opts, { cancelled: () => ++n > 3 }), /sampling cancelled/);
  assert.equal(tf.memory().numTensors, before, 'a cancelled run frees its KV cache and tensors');
  model.dispose();
});

test('step sizes: equal, drawn from the training law (seeded), typed; bad ones are refused', () => {
  const { session } = shippedSmall();
  assert.deepEqual(session.stepSizesFor({ arSteps: 3 }, 16), [6, 5, 5]);
  const law = session.stepSizesFor({ stepSizes: 'law', seed: 5 }, 16);
  assert.deepEqual(session.stepSizesFor({ stepSizes: 'law', seed: 5 }, 16), law);
  assert.equal(
    law.reduce((a, b) => a + b),
    16,
  );
  assert.equal(session.stepSizesFor({ stepSizes: 'law', arSteps: 5, seed: 1 }, 16).length, 5);
  assert.deepEqual(session.stepSizesFor({ stepSizes: [1, 3, 12] }, 16), [1, 3, 12]);
  assert.throws(() => session.stepSizesFor({ stepSizes: [1, 3] }, 16), /16/);
  assert.throws(() => session.stepSizesFor({ arSteps: 17 }, 16), /AR steps must be an integer in \[1, 16\]/);
  session.model.dispose();
});

test("editing keeps the kept tokens bit-exact and is the sampler's edit", async () => {
  await useBackend('wasm');
  const b = buildExplorer([{ checkpoint: 'mnist-small' }]);
  const session = new ExplorerSession();
  session.load(b.weights.get('mnist-small')!, 'mnist-small.safetensors');
  const images = decodeImages(b.manifest.images['mnist-small']);
  assert.equal(images.length, 10);
  assert.deepEqual(b.manifest.images['mnist-small'].labels, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const keep = Array.from({ length: 16 }, (_, i) => i < 8); // keep the top half
  const run = await session.edit(images[3], keep, { label: 5, arSteps: 2, diffusionSteps: 5, seed: 2 });
  const out = runImage(run, 0);
  for (let y = 0; y < 14; y++) for (let x = 0; x < 28; x++) assert.equal(out[y * 28 + x], images[3][y * 28 + x]);
  assert.notDeepEqual(out.slice(14 * 28), images[3].slice(14 * 28));
  assert.deepEqual(run.kept, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(stepOfToken(run, 2), -1);
  assert.throws(() => tokenAttention(run, 2), /kept, not generated/);
  const ref = sampleImages(session.model, {
    labels: [5],
    stepSizes: run.stepSizes,
    diffusionSteps: 5,
    seed: 2,
    context: { images: images[3], keep },
  });
  assert.deepEqual(run.images, ref.images);
  session.model.dispose();
});

test("a token's attention is the recorder's row for it, summed per patch; rollout rows are distributions", async () => {
  await useBackend('wasm');
  const { session } = shippedSmall();
  const run = await session.generate({ label: 2, arSteps: 4, diffusionSteps: 4, seed: 9 });
  const rec = new SamplingRecorder({ attention: { diffusionSteps: [3] } });
  sampleImages(session.model, { labels: [2], stepSizes: run.stepSizes, diffusionSteps: 4, seed: 9, observer: rec });
  const token = run.orders[0][9]; // generated in AR step 3
  const a = tokenAttention(run, token);
  assert.equal(a.arStep, 2);
  for (const l of a.layers) {
    const r = rec.attention.find((x) => x.arStep === 2 && x.layer === l.layer)!;
    const [H, Lq, Lk] = r.shape;
    const row = r.queries.findIndex((q) => q.token === token);
    for (let h = 0; h < H; h++) {
      const want = new Float32Array(16);
      let cond = 0;
      r.keys.forEach((k, j) => {
        const v = r.data[(h * Lq + row) * Lk + j];
        if (k.role === 'cond') cond += v;
        else want[k.token] += v;
      });
      assert.deepEqual(l.heads[h], want);
      assert.equal(l.cond[h], cond);
    }
    // the mask forbids the tokens of later AR steps
    for (const later of run.orders[0].slice(12)) assert.equal(l.mean[later], 0);
  }
  const R = cachedRollout(run.attention.filter((x) => x.arStep === 2));
  const Lk = run.attention.find((x) => x.arStep === 2)!.shape[2];
  for (let i = 0; i < R.length / Lk; i++) {
    const s = R.subarray(i * Lk, (i + 1) * Lk).reduce((x, y) => x + y, 0);
    assert.ok(Math.abs(s - 1) < 1e-5, `rollout row ${i} sums to ${s}`);
  }
  assert.ok(Math.abs(a.rollout.reduce((x, y) => x + y, 0) + a.rolloutCond - 1) < 1e-5);
  // the row of the token in the run's mask is its noisy query
  const row = maskRow(run, token);
  assert.deepEqual(run.mask.positions[row], { role: 'noisy', step: 2, token });
  session.model.dispose();
});

test('cachedRollout with no cache is the plain rollout', () => {
  const rec = (layer: number, data: number[]) => ({
    arStep: 0,
    diffusionStep: 0,
    t: 0,
    layer,
    sample: 0,
    unconditional: false,
    heads: [0],
    shape: [1, 2, 2] as [number, number, number],
    data,
    queries: [],
    keys: [],
  });
  const rs = [rec(0, [1, 0, 0.5, 0.5]), rec(1, [0.2, 0.8, 0.3, 0.7])];
  assert.deepEqual(cachedRollout(rs), attentionRollout(rs));
});

test('bad files get one clear message each, and the previous model stays in use', async () => {
  await useBackend('wasm');
  const { session, bytes } = shippedSmall();
  const before = session.model;
  const w0 = before.params['x_proj.weight'].dataSync().slice();
  const tryLoad = (b: Uint8Array, name: string, budget?: number) => () => session.load(b, name, budget);
  assert.throws(tryLoad(new Uint8Array(0), 'empty.safetensors'), /empty.safetensors: the file is empty/);
  assert.throws(tryLoad(new TextEncoder().encode('hello'), 'notes.txt'), /notes.txt: not a CausalFusion checkpoint/);
  assert.throws(tryLoad(bytes.subarray(0, bytes.length - 1000), 'cut.safetensors'), /cut.safetensors: .*truncated/);
  const png = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'data', 'mnist-small-samples.png'));
  assert.throws(tryLoad(png, 'image.safetensors'), /image.safetensors: header length .* truncated or not safetensors/);
  // a wrong dtype: integer tensors
  const header = JSON.stringify({ 'x_proj.weight': { dtype: 'I32', shape: [1], data_offsets: [0, 4] } });
  const intFile = new Uint8Array(8 + header.length + 4);
  new DataView(intFile.buffer).setBigUint64(0, BigInt(header.length), true);
  intFile.set(new TextEncoder().encode(header), 8);
  assert.throws(
    tryLoad(intFile, 'ints.safetensors'),
    /ints.safetensors: tensor x_proj.weight has dtype I32; supported: F32, F64, F16, BF16/,
  );
  // an official-format state_dict whose shapes match no preset
  const odd = serializeSafetensors({ 'x_proj.weight': { shape: [3, 5], data: new Float32Array(15) } }, {});
  assert.throws(
    tryLoad(odd, 'odd.safetensors'),
    /odd.safetensors: its tensors match no CausalFusion preset \(closest, .*\); is this a CausalFusion checkpoint\?/,
  );
  // a model too large for a browser tab: refused from its config, before any tensor is built
  const xl = serializeCheckpoint({ config: makeConfig('CausalFusion-XL'), model: {}, meta: {} });
  assert.throws(
    tryLoad(xl, 'xl.safetensors'),
    /xl.safetensors: this model \(CausalFusion-XL, \d+ M parameters\) needs about [\d.]+ GiB in the page, more than the 1.5 GiB/,
  );
  assert.throws(tryLoad(bytes, 'small.safetensors', 1e6), /more than the 0.0 GiB/);
  assert.ok(BROWSER_MODEL_BUDGET > 2 * 4 * 5e6, 'the shipped models fit');
  // through all of that the first model stayed, untouched and usable
  assert.equal(session.model, before);
  assert.deepEqual(session.model.params['x_proj.weight'].dataSync(), w0);
  const run = await session.generate({ diffusionSteps: 2 });
  assert.ok(run.images.every(Number.isFinite));
  session.model.dispose();
});

test("an official .pt without a config loads: its preset is found from the tensors' shapes", async () => {
  await useBackend('wasm');
  const { model, card } = modelFromBytes(fs.readFileSync(FIXTURE_PT), 'tiny-official.pt');
  assert.equal(card.preset, 'tiny');
  assert.equal(card.tokens, 16);
  const sd = model.stateDict();
  assert.equal(configFromShapes(sd, 'x').hiddenSize, 64);
  model.dispose();
});

test('the explorer folder: files, float16 weights that parse back, test images, and no overwriting of foreign folders', () => {
  const dir = tempDir('cf-explorer-');
  const b = buildExplorer([{ checkpoint: shippedPath('mnist-small'), name: 'small' }]);
  const out = path.join(dir, 'site');
  const f = writeExplorerFolder(out, b);
  assert.deepEqual(
    f.files.filter((x) => !x.startsWith('models')),
    ['explorer.js', 'index.html', 'manifest.js', 'wasm.js'],
  );
  assert.equal(f.files.filter((x) => x.startsWith(path.join('models', 'small'))).length, b.manifest.models[0].chunks);
  const chunks = Array.from({ length: b.manifest.models[0].chunks }, (_, i) => {
    const js = fs.readFileSync(path.join(out, 'models', 'small', `${i}.js`), 'utf8');
    return Buffer.from(/"([A-Za-z0-9+/=]+)"\);\s*$/.exec(js)![1], 'base64');
  });
  const bytes = Buffer.concat(chunks);
  assert.equal(bytes.length, b.manifest.models[0].bytes);
  const { card, model } = modelFromBytes(new Uint8Array(bytes), 'small.safetensors');
  assert.equal(card.parameters, 862641);
  assert.ok(bytes.length < 0.55 * fs.statSync(shippedPath('mnist-small')).size, 'float16 halves the float32 file');
  model.dispose();
  const html = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
  assert.match(html, /<script src="manifest.js"><\/script>\s*<script src="explorer.js"><\/script>/);
  // rewriting an explorer folder replaces it; a folder of other files is refused, untouched
  writeExplorerFolder(out, b);
  const mine = path.join(dir, 'mine');
  fs.mkdirSync(mine);
  fs.writeFileSync(path.join(mine, 'thesis.tex'), 'precious');
  assert.throws(() => writeExplorerFolder(mine, b), /mine is not empty and is not an explorer folder/);
  assert.equal(fs.readFileSync(path.join(mine, 'thesis.tex'), 'utf8'), 'precious');
  // the single-file page inlines everything and closes no script early
  const single = explorerHtml(b, true);
  assert.equal(single.match(/<\/script>/g)!.length, 4);
  assert.ok(single.includes('CAUSALFUSION_INLINE_WEIGHTS'));
});
