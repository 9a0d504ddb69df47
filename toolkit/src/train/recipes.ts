/**
 * The training recipes, each written once. `OFFICIAL_RECIPE` is the official `train.py` / paper optimisation
 * (AdamW, clipping, warm-up, EMA); every default of the optimizer, the training step and the `Trainer` comes from
 * it. `QUICK_RECIPE` is the main job's 2-core CPU recipe, which changes only what its budget needs (see README).
 */
import type { NoiseSchedule } from '../diffusion/gaussian';
import type { TimeSampling } from '../diffusion/time-sampling';
import type { Prediction, PresetName } from '../model/config';

export const OFFICIAL_RECIPE = {
  /** The paper's base learning rate (Tables 9, 10); `train.py`'s default 8e-4 is it scaled to batch 2048. */
  lr: 1e-4,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-15,
  weightDecay: 0,
  gradClip: 1.0,
  warmupSteps: 0,
  emaDecay: 0.9999,
} as const;

/**
 * The main job's recipe: recognisable MNIST digits in 10 minutes on 2 CPU cores (the time limit stops it). Its
 * names are the trainer's (`TrainSettings`) and the model config's, so it spreads into either; `steps` and
 * `minutes` are the run's budget, `cfgScale` the guidance of the final sample grid.
 */
export const QUICK_RECIPE = {
  model: 'mnist-small' as PresetName,
  batchSize: 32,
  lr: 2e-3,
  warmupSteps: 200,
  emaDecay: 0.998,
  /** Min-SNR-2 time sampling (official: uniform); see diffusion/time-sampling.ts and the README. */
  timeSampling: 'min-snr' as TimeSampling,
  // the official model is eps + linear; at this budget in pixel space it stays at blobs (see README), v + cosine does not
  noiseSchedule: 'cosine' as NoiseSchedule,
  prediction: 'v' as Prediction,
  steps: 20000,
  minutes: 10,
  cfgScale: 2,
};
