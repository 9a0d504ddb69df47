/**
 * Checkpoint files (Node): the format of checkpoint-format.ts read from and written to disk, atomically (temp file
 * + rename), and models loaded from files or by shipped name.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CausalFusionConfig } from '../model/config';
import { CausalDiffusionModel } from '../model/causalfusion';
import { StoredDtype } from './safetensors';
import {
  Checkpoint,
  modelFromCheckpoint,
  parseCheckpoint,
  pickWeights,
  serializeCheckpoint,
} from './checkpoint-format';
import { writeFileAtomic } from '../util/atomic-write';
import { existingAsset, projectPath } from '../data/assets';

export { CHECKPOINT_FORMAT } from './checkpoint-format';
export type { Checkpoint } from './checkpoint-format';

/** Writes a checkpoint atomically (F16 halves the file; training state belongs in F32). */
export function saveCheckpoint(file: string, ck: Checkpoint, dtype: StoredDtype = 'F32'): void {
  writeFileAtomic(file, serializeCheckpoint(ck, dtype));
}

/**
 * Writes the weights of any checkpoint `readCheckpoint` accepts as a weights-only file (EMA weights by default,
 * as sampling uses), optionally as F16: what a model is shipped or shared as.
 */
export function exportWeights(
  src: string,
  dst: string,
  opts: { weights?: 'ema' | 'model'; dtype?: StoredDtype; config?: CausalFusionConfig } = {},
): void {
  const ck = readCheckpoint(src, opts.config);
  const which = opts.weights ?? 'ema';
  if (which === 'ema' && !ck.ema && ck.optimizer)
    throw new Error(`${src}: a training checkpoint without EMA weights; export --weights model`);
  const model = pickWeights(ck, which, src);
  saveCheckpoint(
    dst,
    { config: ck.config, model, meta: { ...ck.meta, weights: which, exportedFrom: path.basename(src) } },
    opts.dtype,
  );
}

/**
 * Reads a checkpoint file: ours (safetensors with metadata), an official-format safetensors state_dict, or a
 * PyTorch `.pt` / `.pth` file (a `state_dict`, or a training dict with "model" / "ema"). Files without our
 * metadata need `config` (for instance `makeConfig('CausalFusion-XL')`).
 */
export function readCheckpoint(file: string, config?: CausalFusionConfig): Checkpoint {
  if (!fs.existsSync(file))
    throw new Error(/\.(pt|pth|bin)$/i.test(file) ? `${file} not found` : `checkpoint not found: ${file}`);
  return parseCheckpoint(fs.readFileSync(file), file, config);
}

/**
 * Loads a model for sampling from any checkpoint `readCheckpoint` accepts, or a shipped model by name
 * (`'mnist-small'`, `'mnist-base'`: found in the project's data/ from any folder). `weights: 'ema'` (the
 * default) takes the EMA weights when the file has them, as the official sampler does.
 */
export function loadModel(
  nameOrFile: string,
  opts: { weights?: 'ema' | 'model'; config?: CausalFusionConfig } = {},
): CausalDiffusionModel {
  const file = existingAsset(nameOrFile, ['mnist-small', 'mnist-base'], 'checkpoint');
  const source = file === nameOrFile ? file : `${nameOrFile} (shipped: ${projectPath(file)})`;
  return modelFromCheckpoint(readCheckpoint(file, opts.config), file, { weights: opts.weights, source });
}
