/**
 * The files the project ships in its top-level `data/` folder: the demo model and the evaluator classifiers.
 */
import * as path from 'path';
import { DatasetName } from './datasets';

/** The repository's `data/` folder (this file compiles to toolkit/dist/src/data/). */
export const DATA_DIR = path.resolve(__dirname, '..', '..', '..', '..', 'data');

/** A project file's path relative to the repository root, as help texts and reports show it. */
export function projectPath(file: string): string {
  return path.relative(path.dirname(DATA_DIR), file);
}

/** The model shipped in data/ (trained by the main job's recipe on the CPU). */
export const SHIPPED_MODEL = path.join(DATA_DIR, 'mnist-small.safetensors');

/** The evaluator classifier of a dataset (what `causalfusion classifier` writes and `eval` reads). */
export function classifierPath(dataset: DatasetName): string {
  return path.join(DATA_DIR, `classifier-${dataset}.safetensors`);
}
