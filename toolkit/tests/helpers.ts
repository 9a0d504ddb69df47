/** Shared test helpers: where the reference fixture lives, backend switching, array comparison. */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, BackendName } from '../src/backend';
import { loadReference, ReferenceFixture } from '../src/io/reference';

/** The fixture of the official code: $CAUSALFUSION_REFERENCE or ../shared/reference beside the checkout. */
export const REFERENCE_PATH =
  process.env.CAUSALFUSION_REFERENCE ?? path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'reference', 'causalfusion-reference.json');

let cached: ReferenceFixture | null = null;
export function reference(): ReferenceFixture {
  return (cached ??= loadReference(REFERENCE_PATH));
}

/** Activates a backend quietly; `nativeGemm` only matters for wasm. */
export async function useBackend(name: BackendName, nativeGemm = true): Promise<void> {
  await initBackend({ backend: name, nativeGemm, quiet: true });
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
