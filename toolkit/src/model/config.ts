/**
 * Model configurations: the constructor arguments of the official `CausalDiffusionModel`, validated, and
 * named presets from a unit-test toy up to the paper's L / XL / H systems.
 */
import type { NoiseSchedule, Prediction } from '../diffusion/gaussian';

export interface CausalFusionConfig {
  /** Side of the (latent) image in pixels; the image is inputSize x inputSize. */
  inputSize: number;
  patchSize: number;
  latentChannels: number;
  hiddenSize: number;
  /** Number of in-context condition (class) tokens. */
  numCondTokens: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
  /** Label dropout for classifier-free guidance; > 0 adds the null class row to the label table. */
  classDropoutProb: number;
  numClasses: number;
  /** Whether pos_embed is trained (L/XL/H) or a frozen sin-cos table (the ablation model). */
  trainablePos: boolean;
  /**
   * Noise schedule the model is trained and sampled with. Not an argument of the official model (which is
   * always 'linear'); kept with the weights so a checkpoint samples with the schedule it was trained on.
   */
  noiseSchedule: NoiseSchedule;
  /**
   * What the network predicts: 'eps' (the official model) or 'v' = sqrt(abar) eps - sqrt(1 - abar) x0
   * (Salimans & Ho), which small pixel-space models learn much faster at high noise. Kept with the weights.
   */
  prediction: Prediction;
}

export type { Prediction };

const DEFAULTS: CausalFusionConfig = {
  inputSize: 32,
  patchSize: 2,
  latentChannels: 4,
  hiddenSize: 1152,
  numCondTokens: 4,
  depth: 28,
  numHeads: 16,
  mlpRatio: 4.0,
  classDropoutProb: 0.1,
  numClasses: 1000,
  trainablePos: false,
  noiseSchedule: 'linear',
  prediction: 'eps',
};

const MNIST_SMALL = {
  inputSize: 28,
  patchSize: 7,
  latentChannels: 1,
  hiddenSize: 128,
  numCondTokens: 4,
  depth: 4,
  numHeads: 4,
  numClasses: 10,
  trainablePos: true,
};

/** Named presets. L / XL / H are the official `model_dict`; `ablation` is the paper's Table 9 model. */
export const PRESETS = {
  /** The shape of the reference fixture: 4x4 latent, 16 tokens; for tests and demos in milliseconds. */
  tiny: {
    inputSize: 4,
    patchSize: 1,
    latentChannels: 4,
    hiddenSize: 64,
    numCondTokens: 4,
    depth: 2,
    numHeads: 4,
    numClasses: 10,
    trainablePos: true,
  },
  /** MNIST in pixel space, 28x28 in 7x7 patches = 16 tokens of 49 values: the 15-minute model on 2 cores. */
  'mnist-small': MNIST_SMALL,
  /** mnist-small's width and depth on 4x4 patches = 49 tokens: the claims study at 49 tokens (7 runs share one GPU). */
  'mnist-small-49': { ...MNIST_SMALL, patchSize: 4 },
  /** MNIST with 4x4 patches = 49 tokens of 16 values, wider and deeper: for longer runs and finer attention maps. */
  'mnist-base': {
    inputSize: 28,
    patchSize: 4,
    latentChannels: 1,
    hiddenSize: 256,
    numCondTokens: 4,
    depth: 6,
    numHeads: 4,
    numClasses: 10,
    trainablePos: true,
  },
  /** Paper ablation model (Table 9): SD-VAE latents 32x32x4, patch 2, 4 class tokens, fixed sin-cos positions. */
  ablation: {
    inputSize: 32,
    patchSize: 2,
    latentChannels: 4,
    hiddenSize: 1024,
    numCondTokens: 4,
    depth: 24,
    numHeads: 16,
    numClasses: 1000,
    trainablePos: false,
  },
  'CausalFusion-L': {
    inputSize: 16,
    patchSize: 1,
    latentChannels: 16,
    hiddenSize: 1024,
    numCondTokens: 64,
    depth: 24,
    numHeads: 16,
    numClasses: 1000,
    trainablePos: true,
  },
  'CausalFusion-XL': {
    inputSize: 16,
    patchSize: 1,
    latentChannels: 16,
    hiddenSize: 1280,
    numCondTokens: 64,
    depth: 32,
    numHeads: 20,
    numClasses: 1000,
    trainablePos: true,
  },
  /** Depth 48 as in the official code; the paper's Table 10 says 40 layers (see paper-notes §5.19). */
  'CausalFusion-H': {
    inputSize: 16,
    patchSize: 1,
    latentChannels: 16,
    hiddenSize: 1408,
    numCondTokens: 64,
    depth: 48,
    numHeads: 22,
    numClasses: 1000,
    trainablePos: true,
  },
} satisfies Record<string, Partial<CausalFusionConfig>>;

export type PresetName = keyof typeof PRESETS;

/** Fills defaults, applies a preset, validates; throws one clear error per problem found. */
export function makeConfig(
  preset?: PresetName | null,
  overrides: Partial<CausalFusionConfig> = {},
): CausalFusionConfig {
  if (preset != null && !(preset in PRESETS)) {
    throw new Error(`unknown model preset "${preset}": use one of ${Object.keys(PRESETS).join(', ')}`);
  }
  const cfg = { ...DEFAULTS, ...(preset ? PRESETS[preset] : {}), ...overrides };
  validateConfig(cfg);
  return cfg;
}

/** The preset whose architecture `c` has (size, patches, channels, width, depth, heads, condition), if any. */
export function presetOf(c: CausalFusionConfig): PresetName | undefined {
  const keys = [
    'inputSize',
    'patchSize',
    'latentChannels',
    'hiddenSize',
    'depth',
    'numHeads',
    'numCondTokens',
    'numClasses',
  ] as const;
  return (Object.keys(PRESETS) as PresetName[]).find((name) => {
    const p = makeConfig(name);
    return keys.every((k) => p[k] === c[k]);
  });
}

export function validateConfig(c: CausalFusionConfig): void {
  for (const key of [
    'inputSize',
    'patchSize',
    'latentChannels',
    'hiddenSize',
    'numCondTokens',
    'depth',
    'numHeads',
    'numClasses',
  ] as const) {
    const v = c[key];
    const min = key === 'numCondTokens' ? 0 : 1;
    if (!Number.isInteger(v) || v < min) throw new Error(`config.${key} must be an integer >= ${min}, got ${v}`);
  }
  if (c.hiddenSize % c.numHeads !== 0) {
    throw new Error(`hidden size ${c.hiddenSize} is not divisible by the number of heads ${c.numHeads}`);
  }
  if (c.inputSize % c.patchSize !== 0) {
    throw new Error(`image size ${c.inputSize} is not divisible by the patch size ${c.patchSize}`);
  }
  if (c.prediction !== 'eps' && c.prediction !== 'v')
    throw new Error(`config.prediction must be eps or v, got ${String(c.prediction)}`);
  if (c.noiseSchedule !== 'linear' && c.noiseSchedule !== 'cosine')
    throw new Error(`config.noiseSchedule must be linear or cosine, got ${String(c.noiseSchedule)}`);
  if (c.hiddenSize % 4 !== 0)
    throw new Error(`hidden size ${c.hiddenSize} must be a multiple of 4 (2-D sin-cos position embedding)`);
  if (!(c.mlpRatio > 0) || !Number.isInteger(c.hiddenSize * c.mlpRatio)) {
    throw new Error(`mlpRatio ${c.mlpRatio} must be > 0 and give an integer MLP width`);
  }
  if (!(c.classDropoutProb >= 0 && c.classDropoutProb < 1)) {
    throw new Error(`classDropoutProb must be in [0, 1), got ${c.classDropoutProb}`);
  }
}

/** Number of image tokens L. */
export const numPatches = (c: CausalFusionConfig) => (c.inputSize / c.patchSize) ** 2;
/** Values per token, p*p*C. */
export const patchDim = (c: CausalFusionConfig) => c.patchSize * c.patchSize * c.latentChannels;
/** Rows of the label table: classes plus the null class when label dropout is on. */
export const labelTableRows = (c: CausalFusionConfig) => c.numClasses + (c.classDropoutProb > 0 ? 1 : 0);
/** Index of the null (unconditional) class used by classifier-free guidance. */
export const nullClass = (c: CausalFusionConfig) => c.numClasses;

/** Reads the official constructor arguments (snake_case, as in the reference fixture's `model_config`). */
export function configFromOfficial(o: Record<string, unknown>): CausalFusionConfig {
  const pick = <T>(k: string, d: T): T => (o[k] === undefined ? d : (o[k] as T));
  return makeConfig(null, {
    inputSize: pick('input_size', DEFAULTS.inputSize),
    patchSize: pick('patch_size', DEFAULTS.patchSize),
    latentChannels: pick('latent_channels', DEFAULTS.latentChannels),
    hiddenSize: pick('hidden_size', DEFAULTS.hiddenSize),
    numCondTokens: pick('num_cond_tokens', DEFAULTS.numCondTokens),
    depth: pick('depth', DEFAULTS.depth),
    numHeads: pick('num_heads', DEFAULTS.numHeads),
    mlpRatio: pick('mlp_ratio', DEFAULTS.mlpRatio),
    classDropoutProb: pick('class_dropout_prob', DEFAULTS.classDropoutProb),
    numClasses: pick('num_classes', DEFAULTS.numClasses),
    trainablePos: pick('trainable_pos', DEFAULTS.trainablePos),
  });
}
