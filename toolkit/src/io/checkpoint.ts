/**
 * Checkpoints in safetensors, under the official parameter names:
 *   `<name>`               model weights (what official `ckpt["model"]` / `sample.py` state_dicts hold)
 *   `ema.<name>`           EMA weights (`ckpt["ema"]`)
 *   `opt.exp_avg.<name>`, `opt.exp_avg_sq.<name>`   AdamW moments (`ckpt["opt"]`)
 * and string metadata: the model config, the training config and the resumable state (step, RNG, data
 * position, history). A weights-only export has just the first group (the EMA weights, usually) and the
 * config. Files are written atomically (temp file + rename).
 */
import * as path from 'path';
import { CausalFusionConfig, makeConfig, validateConfig } from '../model/config';
import { CausalDiffusionModel } from '../model/causalfusion';
import { StateDict } from '../model/params';
import { StoredDtype } from './safetensors';
import { loadSafetensors, saveSafetensors } from './files';
import { readTorchStateDict } from './files';
import { existingAsset, projectPath } from '../data/assets';

export const CHECKPOINT_FORMAT = 'causalfusion-checkpoint/1';

/** Everything a checkpoint holds, host side. */
export interface Checkpoint {
  config: CausalFusionConfig;
  model: StateDict;
  ema?: StateDict;
  optimizer?: { step: number; expAvg: StateDict; expAvgSq: StateDict };
  /** JSON-serialisable extras (training config, step, RNG state, loader position, history). */
  meta: Record<string, unknown>;
}

function withPrefix(sd: StateDict, prefix: string, into: StateDict): void {
  for (const [k, v] of Object.entries(sd)) into[prefix + k] = v;
}

function takePrefix(all: StateDict, prefix: string): StateDict | undefined {
  const out: StateDict = {};
  let any = false;
  for (const [k, v] of Object.entries(all)) {
    if (k.startsWith(prefix)) {
      out[k.slice(prefix.length)] = v;
      any = true;
    }
  }
  return any ? out : undefined;
}

/** Writes a checkpoint atomically (F16 halves the file; training state belongs in F32). */
export function saveCheckpoint(file: string, ck: Checkpoint, dtype: StoredDtype = 'F32'): void {
  const tensors: StateDict = { ...ck.model };
  if (ck.ema) withPrefix(ck.ema, 'ema.', tensors);
  if (ck.optimizer) {
    withPrefix(ck.optimizer.expAvg, 'opt.exp_avg.', tensors);
    withPrefix(ck.optimizer.expAvgSq, 'opt.exp_avg_sq.', tensors);
  }
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    config: JSON.stringify(ck.config),
    meta: JSON.stringify(ck.meta),
  };
  if (ck.optimizer) metadata.optimizer_step = String(ck.optimizer.step);
  saveSafetensors(file, tensors, metadata, dtype);
}

/** The EMA weights when asked for and present (as the official sampler takes them), else the model's. */
function pickWeights(ck: Checkpoint, which: 'ema' | 'model', file: string): StateDict {
  const sd = which === 'ema' && ck.ema ? ck.ema : ck.model;
  if (Object.keys(sd).length === 0) throw new Error(`${file}: holds no model weights`);
  return sd;
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
 * Reads a checkpoint: ours (safetensors with metadata), an official-format safetensors state_dict, or a
 * PyTorch `.pt` / `.pth` file (a `state_dict`, or a training dict with "model" / "ema"). Files without our
 * metadata need `config` (for instance `makeConfig('CausalFusion-XL')`).
 */
export function readCheckpoint(file: string, config?: CausalFusionConfig): Checkpoint {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.pt' || ext === '.pth' || ext === '.bin') {
    const t = readTorchStateDict(file);
    if (!config)
      throw new Error(
        `${file}: a PyTorch checkpoint carries no CausalFusion config; pass one (e.g. makeConfig('CausalFusion-XL'))`,
      );
    return { config, model: t.model, ema: t.ema, meta: { source: 'pytorch' } };
  }
  const f = loadSafetensors(file);
  let cfg = config;
  if (!cfg && f.metadata.config) {
    try {
      cfg = makeConfig(null, JSON.parse(f.metadata.config) as Partial<CausalFusionConfig>);
    } catch (e) {
      throw new Error(`${file}: bad model config in the metadata (${(e as Error).message})`);
    }
  }
  if (!cfg) throw new Error(`${file}: no model config in the metadata; pass one (e.g. makeConfig('CausalFusion-XL'))`);
  validateConfig(cfg);
  const model: StateDict = {};
  for (const [k, v] of Object.entries(f.tensors)) if (!k.startsWith('ema.') && !k.startsWith('opt.')) model[k] = v;
  const ema = takePrefix(f.tensors, 'ema.');
  const expAvg = takePrefix(f.tensors, 'opt.exp_avg.');
  const expAvgSq = takePrefix(f.tensors, 'opt.exp_avg_sq.');
  let meta: Record<string, unknown> = {};
  if (f.metadata.meta) {
    try {
      meta = JSON.parse(f.metadata.meta) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${file}: bad training metadata (${(e as Error).message})`);
    }
  }
  const optimizer =
    f.metadata.optimizer_step !== undefined
      ? { step: Number(f.metadata.optimizer_step), expAvg: expAvg ?? {}, expAvgSq: expAvgSq ?? {} }
      : undefined;
  return { config: cfg, model, ema, optimizer, meta };
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
  const ck = readCheckpoint(file, opts.config);
  const sd = pickWeights(ck, opts.weights ?? 'ema', file);
  try {
    const source = file === nameOrFile ? file : `${nameOrFile} (shipped: ${projectPath(file)})`;
    return new CausalDiffusionModel(ck.config, { stateDict: sd, source });
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}
