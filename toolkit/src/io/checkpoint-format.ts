/**
 * The checkpoint format, on bytes (browser-safe): safetensors under the official parameter names,
 *   `<name>`               model weights (what official `ckpt["model"]` / `sample.py` state_dicts hold)
 *   `ema.<name>`           EMA weights (`ckpt["ema"]`)
 *   `opt.exp_avg.<name>`, `opt.exp_avg_sq.<name>`   AdamW moments (`ckpt["opt"]`)
 * and string metadata: the model config, the training config and the resumable state (step, RNG, data
 * position, history). A weights-only export has just the first group (the EMA weights, usually) and the
 * config. Official PyTorch `.pt` files are read too. io/checkpoint.ts reads and writes them as files.
 */
import { CausalFusionConfig, makeConfig, PRESETS, PresetName, validateConfig } from '../model/config';
import { CausalDiffusionModel } from '../model/causalfusion';
import { parameterShapes, StateDict } from '../model/params';
import { parseSafetensors, serializeSafetensors, StoredDtype } from './safetensors';
import { parseTorchStateDict } from './torch-pickle';

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

/** The safetensors bytes of a checkpoint (F16 halves them; training state belongs in F32). */
export function serializeCheckpoint(ck: Checkpoint, dtype: StoredDtype = 'F32'): Uint8Array {
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
  return serializeSafetensors(tensors, metadata, dtype);
}

/** The EMA weights when asked for and present (as the official sampler takes them), else the model's. */
export function pickWeights(ck: Checkpoint, which: 'ema' | 'model', label: string): StateDict {
  const sd = which === 'ema' && ck.ema ? ck.ema : ck.model;
  if (Object.keys(sd).length === 0) throw new Error(`${label}: holds no model weights`);
  return sd;
}

/**
 * The preset (with or without a null class) whose parameter names and shapes are exactly those of `sd`: the
 * config of an official state_dict that carries none. Throws naming the closest preset's first mismatch.
 */
export function configFromShapes(sd: StateDict, label: string): CausalFusionConfig {
  const names = Object.keys(sd);
  let closest = { miss: Infinity, why: '', preset: '' };
  for (const preset of Object.keys(PRESETS) as PresetName[]) {
    for (const classDropoutProb of [0.1, 0]) {
      const cfg = makeConfig(preset, { classDropoutProb });
      const want = parameterShapes(cfg);
      const why: string[] = [];
      for (const [n, shape] of want) {
        const got = sd[n]?.shape;
        if (!got) why.push(`${n} missing`);
        else if (got.join('x') !== shape.join('x')) why.push(`${n} is [${got}], ${preset} has [${shape}]`);
      }
      const extra = names.length - want.filter(([n]) => n in sd).length;
      if (extra > 0) why.push(`${extra} tensors ${preset} does not have`);
      if (!why.length) return cfg;
      if (why.length < closest.miss) closest = { miss: why.length, why: why.slice(0, 2).join('; '), preset };
    }
  }
  throw new Error(
    `${label}: its tensors match no CausalFusion preset (closest, ${closest.preset}: ${closest.why}); ` +
      `is this a CausalFusion checkpoint?`,
  );
}

/**
 * Parses a checkpoint's bytes; `name` (a file name) tells the format: `.pt` / `.pth` / `.bin` are PyTorch files
 * (a `state_dict`, or a training dict with "model" / "ema"), anything else safetensors (ours, with metadata, or an
 * official-format state_dict). Files without our metadata need `config` (e.g. `makeConfig('CausalFusion-XL')`),
 * or `'infer'`: the preset their shapes match (`configFromShapes`).
 */
export function parseCheckpoint(bytes: Uint8Array, name: string, config?: CausalFusionConfig | 'infer'): Checkpoint {
  const infer = (sd: StateDict) => configFromShapes(sd, name);
  if (/\.(pt|pth|bin)$/i.test(name)) {
    const t = parseTorchStateDict(bytes, name);
    if (config === 'infer')
      return { config: infer(t.ema ?? t.model), model: t.model, ema: t.ema, meta: { source: 'pytorch' } };
    if (!config)
      throw new Error(
        `${name}: a PyTorch checkpoint carries no CausalFusion config; pass one (e.g. makeConfig('CausalFusion-XL'))`,
      );
    return { config, model: t.model, ema: t.ema, meta: { source: 'pytorch' } };
  }
  const f = parseSafetensors(bytes, name);
  let cfg = config === 'infer' ? undefined : config;
  if (!cfg && f.metadata.config) {
    try {
      cfg = makeConfig(null, JSON.parse(f.metadata.config) as Partial<CausalFusionConfig>);
    } catch (e) {
      throw new Error(`${name}: bad model config in the metadata (${(e as Error).message})`);
    }
  }
  const model: StateDict = {};
  for (const [k, v] of Object.entries(f.tensors)) if (!k.startsWith('ema.') && !k.startsWith('opt.')) model[k] = v;
  if (!cfg && config === 'infer') cfg = infer(model);
  if (!cfg) throw new Error(`${name}: no model config in the metadata; pass one (e.g. makeConfig('CausalFusion-XL'))`);
  validateConfig(cfg);
  const ema = takePrefix(f.tensors, 'ema.');
  const expAvg = takePrefix(f.tensors, 'opt.exp_avg.');
  const expAvgSq = takePrefix(f.tensors, 'opt.exp_avg_sq.');
  let meta: Record<string, unknown> = {};
  if (f.metadata.meta) {
    try {
      meta = JSON.parse(f.metadata.meta) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${name}: bad training metadata (${(e as Error).message})`);
    }
  }
  const optimizer =
    f.metadata.optimizer_step !== undefined
      ? { step: Number(f.metadata.optimizer_step), expAvg: expAvg ?? {}, expAvgSq: expAvgSq ?? {} }
      : undefined;
  return { config: cfg, model, ema, optimizer, meta };
}

/** A model for sampling from a parsed checkpoint (`weights: 'ema'`, the default, takes the EMA weights when present). */
export function modelFromCheckpoint(
  ck: Checkpoint,
  label: string,
  opts: { weights?: 'ema' | 'model'; source?: string } = {},
): CausalDiffusionModel {
  const sd = pickWeights(ck, opts.weights ?? 'ema', label);
  try {
    return new CausalDiffusionModel(ck.config, { stateDict: sd, source: opts.source ?? label });
  } catch (e) {
    throw new Error(`${label}: ${(e as Error).message}`);
  }
}
