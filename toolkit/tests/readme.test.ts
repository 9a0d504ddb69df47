/**
 * The README's code: its toolkit example run as written through the package name (only sizes and paths
 * shrunk, each edit checked to apply once) and its command lines run through the shell.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { tempDir } from './helpers';

/** The README's "Using the toolkit" code block, as written. */
function readmeExample(): string {
  const readme = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const block = /## Using the toolkit\n+```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README has a "Using the toolkit" code block');
  return block[1];
}

test("the README's toolkit example runs as written through require('causalfusion'), with only its sizes and paths shrunk", async () => {
  const dir = tempDir('cf-readme-');
  const data = path.resolve(__dirname, '..', '..', '..', 'data');
  // each edit must match exactly once, so a change of the README's example fails here instead of going untested
  const edits: [string, string][] = [
    ["import * as cf from 'causalfusion';", "const cf = require('causalfusion');"],
    ['await cf.initBackend();', 'await cf.initBackend({ quiet: true });'],
    ['batchSize: 32', 'batchSize: 8'],
    ['steps: 3000', 'steps: 4'],
    ['logEvery: 50', 'logEvery: 2'],
    ['sampleEvery: 500', 'sampleEvery: 4'],
    ['checkpointEvery: 500', 'checkpointEvery: 2'],
    ["diffusionSteps: '250'", "diffusionSteps: '5'"],
    ["'data/mnist-small.safetensors'", JSON.stringify(path.join(data, 'mnist-small.safetensors'))],
    ["'grid.png'", JSON.stringify(path.join(dir, 'grid.png'))],
  ];
  let code = readmeExample().replace(/console\.log\(/g, 'log(');
  for (const [from, to] of edits) {
    assert.equal(code.split(from).length, 2, `README example: expected exactly one ${from}`);
    code = code.replace(from, to);
  }
  code = code
    .split("'runs/mine/checkpoint.safetensors'")
    .join(JSON.stringify(path.join(dir, 'checkpoint.safetensors')));
  const logs: unknown[][] = [];
  const run = new Function(
    'require',
    'log',
    `return (async () => {\n${code}\nreturn { trainer, again, model, images, orders, edit };\n})();`,
  );
  const r = await run(require, (...a: unknown[]) => void logs.push(a));
  assert.deepEqual(
    logs.map((l) => l[0]),
    [2, 4, 4],
  ); // two log lines, then the step-4 preview
  assert.equal((logs[2] as number[])[1], 10 * 784); // one preview image per class
  assert.equal(r.again.step, 4);
  assert.equal(r.images.length, 4 * 784);
  assert.equal(r.orders.length, 4);
  assert.equal(r.edit.images.length, 2 * 784);
  assert.ok(fs.statSync(path.join(dir, 'grid.png')).size > 100);
  [r.trainer, r.again, r.model].forEach((x: { dispose(): void }) => x.dispose());
});

/** The README's `npx causalfusion ...` lines, as written (comments stripped). */
function readmeCliLines(): string[] {
  const readme = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const block = /## Command line\n+```\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README has a "Command line" code block');
  return block[1]
    .split('\n')
    .filter((l) => l.startsWith('npx causalfusion '))
    .map((l) => l.replace(/\s+#.*$/, '').trim());
}

/** Runs a command line through the shell from the repository root, as a user types it after `npm test`. */
function shell(line: string) {
  const { spawnSync } = require('child_process') as typeof import('child_process');
  return spawnSync('sh', ['-c', line], {
    cwd: path.resolve(__dirname, '..', '..', '..'),
    encoding: 'utf8',
    env: { ...process.env, CAUSALFUSION_BACKEND: 'wasm' },
  });
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
  const sample = shell(
    `${pick('sample')
      .replace(/--out \S+/, `--out ${out}`)
      .replace(/--per-class \d+/, '--per-class 1')} --steps 4`,
  );
  assert.equal(sample.status, 0, sample.stderr);
  assert.ok(fs.statSync(out).size > 100);
});
