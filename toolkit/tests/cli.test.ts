import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { REFERENCE_PATH, tempDir } from './helpers';
import { readCheckpoint } from '../src/io/checkpoint';

const CLI = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');
const run = (...args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CAUSALFUSION_BACKEND: 'wasm' },
  });

test("verify passes on the project's fixture and prints a table of errors", () => {
  const r = run('verify', '--reference', REFERENCE_PATH);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /attn_probs layer 1 .* ok/);
  assert.match(r.stdout, /verify: 77 of 77 checks within tolerance/);
});

test('verify exits non-zero on a fixture whose values disagree, naming the items', () => {
  const ref = JSON.parse(fs.readFileSync(REFERENCE_PATH, 'utf8'));
  ref.forward.loss *= 1.01;
  ref.inference.eps2.data[0] += 0.5;
  ref.masks[1].masked_out[5][0] = 1;
  const file = path.join(tempDir('cf-'), 'bad.json');
  fs.writeFileSync(file, JSON.stringify(ref));
  const r = run('verify', '--reference', file, '--json');
  assert.equal(r.status, 1);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(
    out.rows
      .filter((x: { pass: boolean }) => !x.pass)
      .map((x: { item: string }) => x.item)
      .sort(),
    ['AR step 2 eps (KV cache: cond + clean step 1)', 'loss', 'mask L=16 cond=4 split=[4,4,4,4]'],
  );
});

test('bench --json prints one line with the median step time, memory and backend', () => {
  const r = run(
    'bench',
    '--json',
    '--hidden',
    '64',
    '--depth',
    '1',
    '--heads',
    '2',
    '--image-size',
    '4',
    '--channels',
    '4',
    '--batch',
    '2',
    '--steps',
    '3',
    '--warmup',
    '1',
  );
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const j = JSON.parse(lines[0]);
  assert.equal(j.backend, 'wasm');
  assert.ok(j.medianMs > 0 && j.peakRssMb > 0);
  assert.equal(j.stepsMs.length, 3);
  assert.equal(j.splits.length, 4);
  assert.equal(j.tensorsLeakedPerStep, 0);
  // on wasm a step is synchronous: its host time is nearly the whole step; GPU dispatches are not counted
  assert.ok(j.hostMsPerStep > 0 && j.hostMsPerStep <= j.maxMs, `host ${j.hostMsPerStep} ms`);
  assert.equal(j.dispatchesPerStep, null);
  assert.equal(j.pool, null);
});

/** One usage mistake per test: the command exits 2 with one clear message. */
function rejects(args: string[], re: RegExp): void {
  test(`${args.join(' ')}: exit 2, ${re.source.replace(/\\/g, '')}`, () => {
    const r = run(...args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
  });
}

rejects(['bench', '--heads', '3'], /hidden size 256 is not divisible by the number of heads 3/);
rejects(['bench', '--image-size', '9', '--patch-size', '2'], /image size 9 is not divisible by the patch size 2/);
rejects(['bench', '--batch', 'x'], /--batch must be an integer >= 1, got "x"/);
rejects(['bench', '--nope'], /Unknown option '--nope'/);
rejects(
  ['bench', '--kernels'],
  /--kernels needs the webgpu backend on an adapter with timestamp queries \(this is wasm;/,
);
rejects(['verify', '--reference', REFERENCE_PATH, '--backend', 'tpu'], /unknown backend "tpu"/);
rejects(
  ['edit', '--tokens', '99', '--steps', '2'],
  /--tokens: token 99 is outside the 16 tokens of this model \(0\.\.15\)/,
);
rejects(['edit', '--tokens', '3,3', '--steps', '2'], /--tokens: token 3 is listed twice/);
rejects(
  ['edit', '--tokens', '3', '--mode', 'top'],
  /--tokens and --mode both choose the region to regenerate: give one/,
);
rejects(
  ['edit', '--images', '10000', '--steps', '2'],
  /--images: 10000 is outside the 10000 test images \(0\.\.9999\)/,
);
rejects(['edit', '--mode', 'middle'], /--mode must be one of inpaint, outpaint, top, bottom, left, right/);
rejects(['verify', '--reference', '/no/such.json'], /reference fixture not found: \/no\/such.json/);
rejects(['frobnicate'], /unknown command "frobnicate"/);
rejects(['train', '--dataset', 'cifar'], /--dataset must be mnist, fashion-mnist or folder:PATH, got "cifar"/);
rejects(['train', '--lr', '0'], /--lr must be > 0/);
rejects(['train', '--label-dropout', '1'], /--label-dropout must be in \[0, 1\)/);
rejects(['train', '--ar-weights', 'cubic'], /--ar-weights must be one of linear, cosine/);
rejects(['train', '--resume', '/no/such.safetensors'], /--resume: \/no\/such.safetensors not found/);
rejects(['sample', '--sampler', 'euler'], /--sampler must be one of ddpm, ddim/);
rejects(['sample', '--steps', 'many'], /--steps must be a number or ddimN/);
rejects(['sample', '--checkpoint', '/no/model.safetensors'], /--checkpoint: \/no\/model.safetensors not found/);
rejects(['export', '--out', 'x.safetensors'], /export needs --checkpoint FILE and --out FILE/);
rejects(
  ['export', '--checkpoint', REFERENCE_PATH, '--out', 'x.safetensors', '--dtype', 'f8'],
  /--dtype must be one of f32, f16/,
);

test('--help lists the commands', () => {
  const h = run('--help');
  assert.equal(h.status, 0);
  assert.match(h.stdout, /Commands:/);
});

/** A folder dataset of 8x8 grey PNGs in 2 classes (bright top / bright bottom). */
function pngFolder(): string {
  const { PNG } = require('pngjs') as typeof import('pngjs');
  const root = tempDir('cf-folder-');
  for (const [cls, top] of [
    ['top', true],
    ['bottom', false],
  ] as const) {
    fs.mkdirSync(path.join(root, cls));
    for (let i = 0; i < 6; i++) {
      const png = new PNG({ width: 8, height: 8 });
      for (let p = 0; p < 64; p++) {
        const v = p < 32 === top ? 200 + i * 5 : 20;
        png.data.set([v, v, v, 255], p * 4);
      }
      fs.writeFileSync(path.join(root, cls, `${i}.png`), PNG.sync.write(png));
    }
  }
  return root;
}

test('train runs end to end on a PNG folder: checkpoint, weights, sample grid, report; resume continues', () => {
  const out = tempDir('cf-train-');
  const common = [
    '--dataset',
    `folder:${pngFolder()}`,
    '--preset',
    'tiny',
    '--batch',
    '4',
    '--per-class',
    '2',
    '--log-every',
    '2',
    '--out',
    out,
    '--no-progress',
  ];
  const r = run('train', ...common, '--steps', '4');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /done: 4 steps in .* min \(stopped by steps\)/);
  for (const f of [
    'checkpoint.safetensors',
    'model.safetensors',
    'samples.png',
    'report.md',
    'loss.svg',
    'ar-step-loss.svg',
    'history.json',
  ])
    assert.ok(fs.existsSync(path.join(out, f)), f);
  const { PNG } = require('pngjs') as typeof import('pngjs');
  const grid = PNG.sync.read(fs.readFileSync(path.join(out, 'samples.png')));
  assert.deepEqual([grid.width, grid.height], [2 * 16 + 3 * 2, 2 * 16 + 3 * 2]); // 2 per class x 2 classes, x2 upscaled, 2px gaps
  const report = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
  assert.match(report, /\| steps \| 4 \(stopped by steps\) \|/);
  assert.match(fs.readFileSync(path.join(out, 'loss.svg'), 'utf8'), /^<svg[\s\S]*AR-weighted loss[\s\S]*<\/svg>$/);
  const again = run('train', ...common, '--steps', '2', '--resume', path.join(out, 'checkpoint.safetensors'));
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /from step 4 for 2 steps/);
  assert.match(again.stdout, /done: 6 steps/);
});

test('sample draws a grid from the shipped MNIST model', () => {
  const out = path.join(tempDir('cf-sample-'), 'grid.png');
  const r = run(
    'sample',
    '--per-class',
    '1',
    '--classes',
    '3,7',
    '--steps',
    '10',
    '--ar-steps',
    '2',
    '--order',
    'raster',
    '--out',
    out,
    '--json',
  );
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.deepEqual([info.images, info.stepSizes.length, info.diffusionSteps], [2, 2, 10]);
  const { PNG } = require('pngjs') as typeof import('pngjs');
  const grid = PNG.sync.read(fs.readFileSync(out));
  assert.deepEqual([grid.width, grid.height], [56 + 4, 2 * 56 + 6]);
});

test('edit inpaints test digits with the shipped model and writes originals / kept / edits', () => {
  const out = path.join(tempDir('cf-edit-'), 'edits.png');
  const r = run('edit', '--images', '0,1', '--mode', 'bottom', '--class', '3', '--steps', '5', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /bottom of 2 MNIST test images \(as class 3\)/);
  const { PNG } = require('pngjs') as typeof import('pngjs');
  const grid = PNG.sync.read(fs.readFileSync(out));
  assert.deepEqual([grid.width, grid.height], [2 * 56 + 6, 3 * 56 + 8]);
});

test('train runs on Fashion-MNIST from the Debian package', () => {
  const out = tempDir('cf-fashion-');
  const r = run(
    'train',
    '--dataset',
    'fashion-mnist',
    '--steps',
    '2',
    '--batch',
    '8',
    '--per-class',
    '1',
    '--log-every',
    '1',
    '--out',
    out,
    '--no-progress',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /training on Fashion-MNIST train \(60000 images\)/);
  assert.match(fs.readFileSync(path.join(out, 'report.md'), 'utf8'), /T-shirt\/top, Trouser, Pullover/);
});

test('an out-of-memory abort of the wasm heap is explained', () => {
  const { explainError } = require('../src/cli/main') as typeof import('../src/cli/main');
  assert.match(
    explainError(new Error('Aborted(). Build with -sASSERTIONS for more info.')),
    /wasm heap \(4 GiB\) ran out of memory; use a smaller --batch/,
  );
  assert.match(
    explainError(new Error('the GPU ran out of memory (Out of memory)')),
    /ran out of memory \(Out of memory\): use a smaller --batch, or --checkpoint-activations/,
  );
  assert.equal(explainError(new Error('plain')), 'plain');
});

test('export writes the EMA weights alone, as F16 at half the size, and sampling reads them back', () => {
  const dir = tempDir('cf-export-');
  const shipped = path.resolve(__dirname, '..', '..', '..', 'data', 'mnist-small.safetensors');
  const out = path.join(dir, 'half.safetensors');
  const r = run('export', '--checkpoint', shipped, '--out', out, '--dtype', 'f16');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /wrote .*half\.safetensors \(1\.7 MiB, f16\)/);
  assert.ok(Math.abs(fs.statSync(out).size / fs.statSync(shipped).size - 0.5) < 0.01);
  const full = readCheckpoint(shipped);
  const half = readCheckpoint(out);
  assert.deepEqual(half.config, full.config);
  assert.equal(half.ema, undefined);
  for (const [k, t] of Object.entries(full.model))
    for (let i = 0; i < t.data.length; i += 97)
      assert.ok(Math.abs(half.model[k].data[i] - t.data[i]) <= Math.abs(t.data[i]) * 2 ** -11 + 2 ** -24, k);
  const s = run('sample', '--checkpoint', out, '--out', path.join(dir, 's.png'), '--per-class', '1', '--steps', '2');
  assert.equal(s.status, 0, s.stderr);
});

test('explorer writes the static folder of a checkpoint, and refuses a folder of other files untouched', () => {
  const dir = tempDir('cf-cli-explorer-');
  const out = path.join(dir, 'site');
  const r = run('explorer', '--checkpoint', 'mnist-small', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /wrote .*site \(\d+ files, [\d.]+ MB; the first page load is [\d.]+ MB\)/);
  assert.match(r.stdout, /models: mnist-small \(1\.7 MB float16\)/);
  for (const f of ['index.html', 'manifest.js', 'explorer.js', 'wasm.js', path.join('models', 'mnist-small', '0.js')])
    assert.ok(fs.existsSync(path.join(out, f)), `${f} missing`);
  const mine = path.join(dir, 'notes');
  fs.mkdirSync(mine);
  fs.writeFileSync(path.join(mine, 'todo.txt'), 'keep me');
  const refused = run('explorer', '--out', mine);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /notes is not empty and is not an explorer folder/);
  assert.equal(fs.readFileSync(path.join(mine, 'todo.txt'), 'utf8'), 'keep me');
  assert.equal(run('explorer').status, 2);
});
