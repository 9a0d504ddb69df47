/**
 * The files the project ships in its top-level `data/` folder: the demo model and the evaluator classifiers.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DatasetName } from './datasets';

/** The repository's `data/` folder (this file compiles to toolkit/dist/src/data/). */
export const DATA_DIR = path.resolve(__dirname, '..', '..', '..', '..', 'data');

/** A project file's path relative to the repository root, as help texts and reports show it. */
export function projectPath(file: string): string {
  return path.relative(path.dirname(DATA_DIR), file);
}

/**
 * The files shipped in data/, by the name a user passes instead of a path (`cf.loadModel('mnist-base')`), so
 * a notebook or script runs from any folder: `mnist-small` (16 tokens, trained by the main job's recipe on the
 * CPU), `mnist-base` (49 tokens, trained on a GPU), the evaluator classifiers and the committed claims studies.
 */
export const SHIPPED_ASSETS = {
  'mnist-small': 'mnist-small.safetensors',
  'mnist-base': 'mnist-base.safetensors',
  'classifier-mnist': 'classifier-mnist.safetensors',
  'classifier-fashion-mnist': 'classifier-fashion-mnist.safetensors',
  claims: 'claims',
  'claims-49': 'claims-49',
} as const;
export type ShippedAsset = keyof typeof SHIPPED_ASSETS;

/** The path of a shipped file or folder. */
export function shippedPath(name: ShippedAsset): string {
  return path.join(DATA_DIR, SHIPPED_ASSETS[name]);
}

/**
 * A shipped asset's name or a path: an existing file or folder wins (so a local `mnist-small` folder is still
 * yours), then the shipped names; anything else is returned as given, for the reader to name in its error.
 */
export function resolveAsset(nameOrPath: string): string {
  if (fs.existsSync(nameOrPath) || !Object.hasOwn(SHIPPED_ASSETS, nameOrPath)) return nameOrPath;
  return shippedPath(nameOrPath as ShippedAsset);
}

/** The model `sample`, `edit` and `eval` use when no checkpoint is given. */
export const SHIPPED_MODEL = shippedPath('mnist-small');

/** The evaluator classifier of a dataset (what `causalfusion classifier` writes and `eval` reads). */
export function classifierPath(dataset: DatasetName): string {
  return shippedPath(`classifier-${dataset}`);
}

/** `resolveAsset`, failing with one message that names the path and the shipped `names` when nothing is there. */
export function existingAsset(nameOrPath: string, names: ShippedAsset[], what: string): string {
  const file = resolveAsset(nameOrPath);
  if (!fs.existsSync(file))
    throw new Error(`no ${what} at "${nameOrPath}" (a path, or a shipped name: ${names.join(', ')})`);
  return file;
}
