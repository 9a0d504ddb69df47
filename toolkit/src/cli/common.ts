/**
 * Flag groups several commands share: the model to load, the diffusion sampler, the AR factorization of sampling.
 */
import * as fs from 'fs';
import { PRESETS, PresetName, makeConfig, CausalFusionConfig } from '../model/config';
import { loadModel } from '../io/checkpoint';
import { CausalDiffusionModel } from '../model/causalfusion';
import { SHIPPED_MODEL, projectPath } from '../data/assets';
import { DATASET_NAMES } from '../data/datasets';
import { Flag, UsageError, atLeastOne, flag, orderFlag } from './flags';
import { defaultRespacing, OrderSpec, SAMPLING_DEFAULTS, SampleOptions } from '../sample/sampler';

/** A file flag that must exist when given (or by default). */
export const fileFlag = (dflt: string | undefined, help: string, shown?: string): Flag<string | undefined> => ({
  metavar: 'FILE',
  help,
  shown: shown ?? dflt,
  read: (name, raw) => {
    const file = raw ?? dflt;
    if (file !== undefined && !fs.existsSync(file)) throw new UsageError(`--${name}: ${file} not found`);
    return file;
  },
});

const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/** --preset / --config: a model preset by name. */
export const presetFlag = <D extends PresetName | undefined>(dflt: D, help: string) =>
  flag.oneOf(PRESET_NAMES, dflt, help);

/** --checkpoint / --config / --weights: which model to load (checked now, loaded after the backend starts). */
export const MODEL_FLAGS = {
  checkpoint: fileFlag(
    SHIPPED_MODEL,
    'the model: ours (default: the shipped one), an official safetensors state_dict or a PyTorch .pt',
    projectPath(SHIPPED_MODEL),
  ),
  config: presetFlag(undefined, 'model preset for files without a config (official .pt / .safetensors)'),
  weights: flag.oneOf(['ema', 'model'] as const, 'ema', 'the EMA weights or the raw ones'),
};

/** The model the MODEL_FLAGS name. */
export function modelSource(v: { checkpoint?: string; config?: PresetName; weights: 'ema' | 'model' }): {
  file: string;
  weights: 'ema' | 'model';
  config: CausalFusionConfig | undefined;
  load: () => CausalDiffusionModel;
} {
  const file = v.checkpoint ?? SHIPPED_MODEL;
  const config = v.config ? makeConfig(v.config) : undefined;
  return { file, weights: v.weights, config, load: () => loadModel(file, { weights: v.weights, config }) };
}

/** --sampler / --steps / --cfg; `ddpmSteps` is the command's default number of DDPM steps. */
export const samplerFlags = (ddpmSteps: number = SAMPLING_DEFAULTS.ddpmSteps) => ({
  sampler: flag.oneOf(['ddpm', 'ddim'] as const, 'ddpm', 'diffusion sampler'),
  steps: {
    metavar: 'N',
    help: "diffusion steps per AR step, or 'ddimN'",
    shown: `${ddpmSteps}; ddim: ${SAMPLING_DEFAULTS.ddimSteps}`,
    read: (name: string, raw: string | undefined) => {
      if (raw !== undefined && !/^(ddim)?\d+$/.test(raw))
        throw new UsageError(`--${name} must be a number or ddimN, got "${raw}"`);
      return raw;
    },
  } as Flag<string | undefined>,
  cfg: flag.num(1, 'classifier-free guidance scale (1 = none)', atLeastOne),
});

/**
 * The sampling options the shared flags give (--sampler / --steps / --cfg, --ar-steps / --order, --seed), for
 * `sampleImages`, `editImages` and the evaluation's sampler; `ddpmSteps` is the command's DDPM default.
 */
export function sampleOptions(
  v: { sampler: 'ddpm' | 'ddim'; steps?: string; cfg: number; 'ar-steps': number; order: OrderSpec; seed: number },
  ddpmSteps: number = SAMPLING_DEFAULTS.ddpmSteps,
): Pick<SampleOptions, 'arSteps' | 'order' | 'diffusionSteps' | 'sampler' | 'cfgScale' | 'clipDenoised' | 'seed'> {
  return {
    arSteps: v['ar-steps'],
    order: v.order,
    diffusionSteps: v.steps ?? defaultRespacing(v.sampler, ddpmSteps),
    sampler: v.sampler,
    cfgScale: v.cfg,
    clipDenoised: true,
    seed: v.seed,
  };
}

/** --ar-steps / --order: the AR factorization of sampling. */
export const AR_FLAGS = {
  'ar-steps': flag.int(1, 'AR steps (1 = plain diffusion, L = token by token)'),
  order: orderFlag(),
};

/** --dataset for the built-in datasets. */
export const datasetFlag = () => flag.oneOf(DATASET_NAMES, 'mnist', 'dataset');

/** --seed. */
export const seedFlag = () => flag.int(0, 'random seed', 0);
