/**
 * The README's first code example ("Using the toolkit"), run through the package name as a notebook would,
 * with its step counts shrunk so it takes seconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

test('README quick-start runs through `require("causalfusion")`', async () => {
  const cf = require('causalfusion') as typeof import('../src');
  await cf.initBackend({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cf-readme-'));
  const mnist = cf.loadMnist('train');
  const trainer = new cf.Trainer(mnist, { model: 'mnist-small', batchSize: 8, lr: 2e-3, warmupSteps: 100, emaDecay: 0.995 });
  const stop = new AbortController();
  const logs: number[] = [];
  await trainer.run({
    steps: 4,
    signal: stop.signal,
    logEvery: 2,
    sampleEvery: 4,
    sample: { perClass: 1, diffusionSteps: '2' },
    checkpointEvery: 2,
    checkpointPath: path.join(dir, 'checkpoint.safetensors'),
    callbacks: { onLog: (e) => void logs.push(e.breakdown.byArStep.length) },
  });
  assert.equal(logs.length, 2);
  const again = cf.Trainer.resume(path.join(dir, 'checkpoint.safetensors'), mnist);
  assert.equal(again.step, 4);

  const model = cf.loadModel(path.resolve(__dirname, '..', '..', '..', 'data', 'mnist-small.safetensors'));
  const { images, orders } = cf.sampleImages(model, { labels: [0, 1, 2, 3], arSteps: 4, order: 'raster', diffusionSteps: '5', sampler: 'ddpm', cfgScale: 2, clipDenoised: true, seed: 0 });
  assert.equal(orders.length, 4);
  const testImages = cf.toModelRange(cf.loadMnist('test'), [0, 1]);
  const edit = cf.editImages(model, testImages, [7, 7], 'bottom', { diffusionSteps: '5' });
  assert.equal(edit.images.length, 2 * 784);
  cf.savePng(path.join(dir, 'grid.png'), cf.imageGrid(images, 4, 1, 28, 28, { cols: 4, scale: 2 }));
  assert.ok(fs.statSync(path.join(dir, 'grid.png')).size > 100);
  [trainer, again].forEach((t) => t.dispose());
  model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});
