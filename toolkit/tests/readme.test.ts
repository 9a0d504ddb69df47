/**
 * The README's first code example ("Using the toolkit"), run through the package name as a notebook would,
 * with its step counts shrunk so it takes seconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tempDir } from './helpers';

test('README quick-start runs through `require("causalfusion")`', async () => {
  const cf = require('causalfusion') as typeof import('../src');
  await cf.initBackend({ quiet: true });
  const dir = tempDir('cf-readme-');
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

/** The README's `npx causalfusion ...` lines, as written (comments stripped). */
function readmeCliLines(): string[] {
  const readme = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const block = /## Command line\n+```\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README has a "Command line" code block');
  return block[1].split('\n').filter((l) => l.startsWith('npx causalfusion ')).map((l) => l.replace(/\s+#.*$/, '').trim());
}

/** Runs a command line through the shell from the repository root, as a user types it after `npm test`. */
function shell(line: string) {
  const { spawnSync } = require('child_process') as typeof import('child_process');
  return spawnSync('sh', ['-c', line], { cwd: path.resolve(__dirname, '..', '..', '..'), encoding: 'utf8', env: { ...process.env, CAUSALFUSION_BACKEND: 'wasm' } });
}

test("the README's CLI lines work from the repository root with npx: info, verify, sample (small sizes)", () => {
  const lines = readmeCliLines();
  const pick = (cmd: string) => {
    const l = lines.find((x) => x.startsWith(`npx causalfusion ${cmd}`));
    assert.ok(l, `README shows npx causalfusion ${cmd}`);
    return l;
  };
  const info = shell(pick('info'));
  assert.equal(info.status, 0, info.stderr);
  assert.match(info.stdout, /preset mnist-small\s+16 tokens/);
  const verify = shell(pick('verify'));
  assert.equal(verify.status, 0, verify.stderr);
  assert.match(verify.stdout, /forward\s+attn_probs layer 0 .* ok/);
  const dir = tempDir('cf-readme-cli-');
  const out = path.join(dir, 'grid.png');
  // the README's sample line, with its output moved to a temp folder and fewer images and steps
  const sample = shell(`${pick('sample').replace(/--out \S+/, `--out ${out}`).replace(/--per-class \d+/, '--per-class 1')} --steps 4`);
  assert.equal(sample.status, 0, sample.stderr);
  assert.ok(fs.statSync(out).size > 100);
  fs.rmSync(dir, { recursive: true, force: true });
});
