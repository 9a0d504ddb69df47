/**
 * The set-up on a machine without apt (a Mac, another Linux): with apt-get and dpkg hidden from PATH it says in one
 * line what it skips and what that costs, installs nothing from Debian, and the main job (`npm start` is this
 * set-up, `npm run build`, then `causalfusion train`) still trains and writes its samples and report.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { tempDir } from './helpers';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const HIDDEN = new Set(['apt-get', 'apt', 'dpkg', 'dpkg-query']);

/** A PATH like this one, with every folder mirrored by symlinks except to the apt and dpkg commands. */
function pathWithoutApt(): string {
  const base = tempDir('cf-noapt-');
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((d) => fs.existsSync(d) && fs.statSync(d).isDirectory())
    .map((d, i) => {
      const mirror = path.join(base, String(i));
      fs.mkdirSync(mirror);
      for (const f of fs.readdirSync(d)) if (!HIDDEN.has(f)) fs.symlinkSync(path.join(d, f), path.join(mirror, f));
      return mirror;
    })
    .join(path.delimiter);
}

test('without apt-get and dpkg: the set-up skips the Debian packages in one line, and the main job trains and writes its samples', () => {
  const env = { ...process.env, PATH: pathWithoutApt() };
  assert.equal(
    spawnSync('bash', ['-c', 'command -v apt-get || command -v dpkg'], { env }).status,
    1,
    'apt still visible',
  );
  const setup = spawnSync('bash', ['toolkit/scripts/setup.sh'], { cwd: ROOT, env, encoding: 'utf8' });
  assert.equal(setup.status, 0, setup.stderr);
  const skip = setup.stdout.split('\n').filter((l) => l.includes('no apt-get / dpkg'));
  assert.equal(skip.length, 1, setup.stdout);
  assert.match(skip[0], /skipping the Debian packages .*fused CPU kernels.*WebGPU tests.*Jupyter/);
  assert.doesNotMatch(setup.stdout, /installing Debian packages|installing Mesa/);
  const out = tempDir('cf-noapt-run-');
  const train = spawnSync(
    process.execPath,
    ['toolkit/dist/src/cli/main.js', 'train', '--steps', '3', '--per-class', '1', '--no-progress', '--out', out],
    { cwd: ROOT, env, encoding: 'utf8', timeout: 300_000 },
  );
  assert.equal(train.status, 0, train.stderr);
  for (const f of ['samples.png', 'report.md', 'model.safetensors', 'checkpoint.safetensors'])
    assert.ok(fs.statSync(path.join(out, f)).size > 0, `${f} missing`);
});
