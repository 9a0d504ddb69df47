/**
 * The offline pack (toolkit/scripts/pack-offline.js, what a GPU machine without network runs): packed, unpacked in
 * a folder outside the repository and run with the system's Node hidden from PATH, `info` and a 2-step `bench`
 * work, so a file the pack misses fails here (as `boolbase`, an ES module's dependency, once did).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { tempDir } from './helpers';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** PATH without any folder that holds a `node` (the unpacked bin/node must be what runs). */
function pathWithoutNode(): string {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((d) => !fs.existsSync(path.join(d, 'node')))
    .join(path.delimiter);
}

test(
  'the offline pack runs info and a 2-step bench from its own folder, with the system Node hidden',
  { timeout: 600_000 },
  () => {
    const out = tempDir('cf-pack-');
    const pack = spawnSync(process.execPath, ['toolkit/scripts/pack-offline.js', '--out', out, '--no-mnist'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(pack.status, 0, pack.stderr);
    const tarball = path.join(out, 'causalfusion-offline.tar.xz');
    const unpack = path.join(out, 'unpacked');
    fs.mkdirSync(unpack);
    assert.equal(spawnSync('tar', ['-xJf', tarball, '-C', unpack]).status, 0);
    const dir = path.join(unpack, 'causalfusion-offline');
    const env = { PATH: pathWithoutNode(), HOME: out, CAUSALFUSION_BACKEND: 'wasm' };
    assert.notEqual(spawnSync('bash', ['-c', 'command -v node'], { env }).status, 0, 'node still on PATH');
    const run = (args: string[]) =>
      spawnSync('./bin/node', ['toolkit/dist/src/cli/main.js', ...args], {
        cwd: dir,
        env,
        encoding: 'utf8',
        timeout: 300_000,
      });
    const info = run(['info']);
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stdout, /backend wasm/);
    const bench = run([
      'bench',
      '--json',
      '--steps',
      '2',
      '--warmup',
      '0',
      '--hidden',
      '64',
      '--depth',
      '2',
      '--batch',
      '2',
    ]);
    assert.equal(bench.status, 0, bench.stderr);
    const r = JSON.parse(bench.stdout.trim().split('\n').pop()!) as { stepsMs: number[]; backend: string };
    assert.equal(r.stepsMs.length, 2);
    assert.equal(r.backend, 'wasm');
  },
);
