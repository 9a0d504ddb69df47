/** Shared test helpers: where the reference fixture lives, backend switching, array comparison. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import '../src/viz/node-host'; // the chart host of Node, for tests that draw charts without the package entry
import { initBackend, BackendName, setMatmulPrecision } from '../src/backend';
import assert from 'node:assert/strict';
import { DEFAULT_REFERENCE, loadReference, ReferenceFixture, verifyReference, VerifyRow } from '../src/parity';
import { ImageDataset } from '../src/data/datasets';
import { Rng } from '../src/rng';

/** The fixture of the official code: $CAUSALFUSION_REFERENCE or the project's own copy. */
export const REFERENCE_PATH = process.env.CAUSALFUSION_REFERENCE ?? DEFAULT_REFERENCE;

let cached: ReferenceFixture | null = null;
export function reference(): ReferenceFixture {
  return (cached ??= loadReference(REFERENCE_PATH));
}

/** Activates a backend quietly; `nativeGemm` only matters for wasm. */
/**
 * Activates a backend for a test, with fp32 matmuls: parity with wasm and the official code is an fp32
 * contract; the tensor-core tests switch to fp16 themselves.
 */
export async function useBackend(name: BackendName, nativeGemm = true): Promise<void> {
  await initBackend({ backend: name, nativeGemm, quiet: true });
  setMatmulPrecision('f32');
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export const values = (t: tf.Tensor) => Array.from(t.dataSync());

/** Value and gradients of `f` at `inputs` under the upstream gradient `dy`, on the host. */
export function valueAndGrads(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  dy: tf.Tensor,
): Float32Array[] {
  return tf.tidy(() => {
    const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => f(...xs))(inputs, dy);
    return [value, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

/** 40 random 4-channel 4x4 "images" in 10 classes: the shape of the tiny preset. */
export function syntheticDataset(count = 40, seed = 5): ImageDataset {
  const rng = new Rng(seed);
  const images = new Uint8Array(count * 4 * 16).map(() => rng.randint(0, 255));
  const labels = new Uint8Array(count).map((_, i) => i % 10);
  return {
    name: 'synthetic',
    images,
    labels,
    count,
    channels: 4,
    height: 4,
    width: 4,
    classNames: Array.from({ length: 10 }, (_, i) => `c${i}`),
  };
}

const tempDirs: string[] = [];
process.on('exit', () => tempDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A fresh temporary folder, removed when the test file's process exits (each test file runs in its own). */
export function tempDir(prefix = 'cf-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/**
 * Runs every comparison with the official fixture on the active backend and fails on any miss; also fails when
 * a section compared nothing or a gradient is missing. Returns the rows for further checks.
 */
export function assertFullParity(): VerifyRow[] {
  const rows = verifyReference(reference());
  const failed = rows.filter((r) => !r.pass);
  assert.deepEqual(failed, [], `failed: ${failed.map((r) => `${r.item} rel=${r.maxRel}`).join(', ')}`);
  for (const s of ['factorization', 'diffusion', 'forward', 'grads', 'inference'] as const)
    assert.ok(
      rows.some((r) => r.section === s),
      `nothing compared in ${s}`,
    );
  assert.equal(rows.filter((r) => r.section === 'grads').length, Object.keys(reference().forward.grads).length);
  return rows;
}

const SVG_SNAPSHOTS = path.resolve(__dirname, '..', '..', 'tests', 'fixtures', 'chart-svgs');

/** Compares an SVG with its snapshot; UPDATE_SNAPSHOTS=1 writes it. */
export function assertSvgSnapshot(name: string, svg: string): void {
  const file = path.join(SVG_SNAPSHOTS, `${name}.svg`);
  if (process.env.UPDATE_SNAPSHOTS === '1') {
    fs.mkdirSync(SVG_SNAPSHOTS, { recursive: true });
    fs.writeFileSync(file, svg + '\n');
  }
  if (!fs.existsSync(file)) assert.fail(`${name}: no snapshot ${file} (UPDATE_SNAPSHOTS=1 writes it)`);
  const want = fs.readFileSync(file, 'utf8').trimEnd();
  if (svg === want) return;
  let at = 0;
  while (svg[at] === want[at]) at++;
  assert.fail(
    `${name}: SVG differs from ${file} at character ${at}: "…${svg.slice(at, at + 80)}" vs "…${want.slice(at, at + 80)}" (UPDATE_SNAPSHOTS=1 to accept)`,
  );
}
