import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { REFERENCE_PATH } from './helpers';

const CLI = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CAUSALFUSION_BACKEND: 'wasm' } });

test('verify passes on the shared fixture and prints a table of errors', () => {
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
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cf-')), 'bad.json');
  fs.writeFileSync(file, JSON.stringify(ref));
  const r = run('verify', '--reference', file, '--json');
  assert.equal(r.status, 1);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.rows.filter((x: { pass: boolean }) => !x.pass).map((x: { item: string }) => x.item).sort(), [
    'AR step 2 eps (KV cache: cond + clean step 1)',
    'loss',
    'mask L=16 cond=4 split=[4,4,4,4]',
  ]);
});

test('bench --json prints one line with the median step time, memory and backend', () => {
  const r = run('bench', '--json', '--hidden', '64', '--depth', '1', '--heads', '2', '--image-size', '4', '--channels', '4', '--batch', '2', '--steps', '3', '--warmup', '1');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const j = JSON.parse(lines[0]);
  assert.equal(j.backend, 'wasm');
  assert.ok(j.medianMs > 0 && j.peakRssMb > 0);
  assert.equal(j.stepsMs.length, 3);
  assert.equal(j.splits.length, 4);
  assert.equal(j.tensorsLeakedPerStep, 0);
});

test('bad input: one clear error each, exit code 2', () => {
  const cases: [string[], RegExp][] = [
    [['bench', '--heads', '3'], /hidden size 256 is not divisible by the number of heads 3/],
    [['bench', '--image-size', '9', '--patch-size', '2'], /image size 9 is not divisible by the patch size 2/],
    [['bench', '--batch', 'x'], /--batch must be an integer >= 1, got "x"/],
    [['bench', '--nope'], /Unknown option '--nope'/],
    [['verify', '--reference', REFERENCE_PATH, '--backend', 'tpu'], /unknown backend "tpu"/],
    [['verify'], /verify needs --reference FILE/],
    [['verify', '--reference', '/no/such.json'], /reference fixture not found: \/no\/such.json/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  for (const [args, re] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, re);
  }
  const h = run('--help');
  assert.equal(h.status, 0);
  assert.match(h.stdout, /Commands:/);
});
