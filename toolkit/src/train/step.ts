/**
 * One training step of the official recipe: sample the dual factorization (AR-step count, split, per-sample
 * order, one t per sample), compute the AR-weighted loss and its gradients, clip, AdamW, EMA.
 *
 * Gradients come either from one autograd pass or, with `checkpoint`, block by block: a forward without
 * tape keeps only each block's input, then each block is recomputed under its own gradient call. Both go
 * through `backprop.ts`, which frees each saved activation and intermediate gradient once the backward is past
 * it; checkpointing bounds the peak further, to one block's activations, for a third more time.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../rng';
import { fromSizes, splitIntegerExpDecay, splitIntegerRandom, Split } from '../factorization/steps';
import { ArWeightSchedule, getArWeights } from '../factorization/weights';
import { GaussianDiffusion } from '../diffusion/gaussian';
import { timeSampler } from '../diffusion/time-sampling';
import { CausalDiffusionModel, disposeBatch, PreparedBatch, TrainingInputs } from '../model/causalfusion';
import { Params } from '../model/attention';
import { weightedLoss } from './loss';
import { gradients, variableGrads } from './backprop';
import { AdamW, biasCorrections, clipGradNorm, Ema, warmupLr } from './optim';
import { FusedAdamWArgs, kernels } from '../backend/kernels';
import { lossScaleFor } from '../backend/wgsl/matmul';
import { OFFICIAL_RECIPE } from './recipes';

/** How the factorization is sampled for each batch. */
export interface FactorizationConfig {
  /** Decay gamma of the AR-step-count law (1 = uniform). */
  arStepDecay: number;
  /** Train with exactly this many AR steps instead of the law (Table 2's fixed S_train). */
  fixedArSteps?: number;
  /** Use exactly these step sizes (must sum to L); overrides the law and `fixedArSteps`. */
  splitSizes?: readonly number[];
  /** A fixed token order for every sample (raster, ...); random per sample when absent. */
  order?: readonly number[];
  maxArWeight: number;
  minArWeight: number;
  arWeightSchedule: ArWeightSchedule;
  /** Label dropout for classifier-free guidance. */
  classDropoutProb: number;
}

export const FACTORIZATION_DEFAULTS: FactorizationConfig = {
  arStepDecay: 0.9,
  maxArWeight: 2.0,
  minArWeight: 1.0,
  arWeightSchedule: 'linear',
  classDropoutProb: 0.1,
};

/** A sampled training batch: model inputs plus the per-token AR weights. */
export interface SampledBatch extends TrainingInputs {
  split: Split;
  arWeights: Float32Array;
}

/** What `sampleBatch` may be told instead of drawing it. */
export interface SampleBatchOptions {
  /** Diffusion time (0..T-1): one for the whole batch, or one per sample (to look at one noise level, say). */
  t?: number | readonly number[];
  /** How to draw t otherwise (`timeSampler`); default uniform, as the official code. */
  drawT?: (rng: Rng) => number;
}

/**
 * Draws everything random about one batch from `rng`: noise, t (unless given), x_t = q_sample(x, t, noise), label
 * dropout, the split (shared by the batch) and a token order per sample.
 */
export function sampleBatch(
  model: CausalDiffusionModel,
  diffusion: GaussianDiffusion,
  x: Float32Array,
  y: readonly number[],
  rng: Rng,
  f: FactorizationConfig = FACTORIZATION_DEFAULTS,
  opts: SampleBatchOptions = {},
): SampledBatch {
  const N = y.length;
  const L = model.numPatches;
  if (N === 0 || x.length % N !== 0) throw new Error(`${x.length} pixel values do not split into ${N} images`);
  if (diffusion.prediction !== model.config.prediction)
    throw new Error(
      `the diffusion predicts ${diffusion.prediction}, the model ${model.config.prediction}: build it with createDiffusion('', model.config)`,
    );
  const noise = rng.normalArray(x.length);
  const drawT = opts.drawT ?? timeSampler(diffusion, 'uniform');
  const t =
    opts.t === undefined ? Array.from({ length: N }, () => drawT(rng)) : fixedTimes(opts.t, N, diffusion.numTimesteps);
  const xn = diffusion.qSampleArray(x, t, noise);
  const target = diffusion.trainingTargetArray(x, t, noise);
  const nullLabel = model.config.numClasses;
  const yd = y.map((v) => (f.classDropoutProb > 0 && rng.random() < f.classDropoutProb ? nullLabel : v));
  const split = f.splitSizes
    ? fromSizes(f.splitSizes, L)
    : f.fixedArSteps
      ? splitIntegerRandom(L, f.fixedArSteps, rng)
      : splitIntegerExpDecay(L, f.arStepDecay, rng);
  const idsShuffle = Array.from({ length: N }, () => (f.order ? f.order.slice() : rng.permutation(L)));
  return {
    x,
    xn,
    target,
    t,
    y: yd,
    splitSizes: split.splitSizes,
    idsShuffle,
    split,
    arWeights: getArWeights(split.splitSizes, f.maxArWeight, f.minArWeight, f.arWeightSchedule),
  };
}

function fixedTimes(t: number | readonly number[], N: number, T: number): number[] {
  const ts = typeof t === 'number' ? new Array<number>(N).fill(t) : t.slice();
  if (ts.length !== N) throw new Error(`sampleBatch: ${ts.length} diffusion times for a batch of ${N}`);
  const bad = ts.find((v) => !Number.isInteger(v) || v < 0 || v >= T);
  if (bad !== undefined) throw new Error(`sampleBatch: diffusion time ${bad} is not an integer in 0..${T - 1}`);
  return ts;
}

const pick = (p: Params, names: string[]) => names.map((n) => p[n]);

/**
 * The weighted loss of a head output times `scale` (the loss scale of fp16 matmuls); also keeps the
 * unweighted per-token MSE [N, L] for statistics.
 */
function lossKeepingTokenMse(
  mse: tf.Tensor3D,
  arWeights: Float32Array,
  keep: { tokenMse?: tf.Tensor2D },
  scale: number,
): tf.Scalar {
  keep.tokenMse = tf.keep(tf.mean(mse, 2) as tf.Tensor2D);
  const loss = weightedLoss(mse, arWeights);
  return scale === 1 ? loss : tf.mul(loss, scale);
}

/** Loss and gradients of all trainable parameters in one autograd pass. */
function plainLossAndGrads(
  model: CausalDiffusionModel,
  b: PreparedBatch,
  arWeights: Float32Array,
  scale: number,
): LossAndGrads {
  const names = model.trainableNames();
  const vars = names.map((n) => model.params[n]);
  const keep: { tokenMse?: tf.Tensor2D } = {};
  const { value, grads } = variableGrads(
    () => lossKeepingTokenMse(model.forwardPrepared(b), arWeights, keep, scale),
    vars,
  );
  const out: Record<string, tf.Tensor> = {};
  names.forEach((n, i) => (out[n] = grads[vars[i].name]));
  return { loss: value, grads: out, tokenMse: keep.tokenMse!, scale };
}

/** The same loss and gradients, recomputing each block during the backward pass. */
function checkpointedLossAndGrads(
  model: CausalDiffusionModel,
  b: PreparedBatch,
  arWeights: Float32Array,
  scale: number,
): LossAndGrads {
  const P = model.params as Params;
  const trainable = new Set(model.trainableNames());
  const owned = (prefix: string) => Object.keys(P).filter((n) => n.startsWith(prefix) && trainable.has(n));
  const headNames = owned('final_layer.');
  const blockNames = Array.from({ length: model.config.depth }, (_, i) => owned(`blocks.${i}.`));
  const claimed = new Set([...headNames, ...blockNames.flat()]);
  const embedNames = [...trainable].filter((n) => !claimed.has(n));

  const inputs: tf.Tensor3D[] = [tf.tidy(() => model.embed(P, b))];
  for (let i = 0; i < model.config.depth; i++) {
    const x = inputs[i];
    inputs.push(tf.tidy(() => model.block(P, i, x, b)));
  }
  const grads: Record<string, tf.Tensor> = {};
  const store = (names: string[], gs: (tf.Tensor | null)[]) =>
    names.forEach((n, i) => {
      const g = gs[i];
      if (!g) throw new Error(`no gradient reaches ${n}`);
      grads[n] = g;
    });

  const keep: { tokenMse?: tf.Tensor2D } = {};
  const xD = inputs[model.config.depth];
  const { value: loss, grads: hg } = gradients(
    () => lossKeepingTokenMse(model.head(P, xD, b), arWeights, keep, scale),
    [xD, ...pick(P, headNames)],
  );
  let dx = hg[0]!;
  store(headNames, hg.slice(1));
  for (let i = model.config.depth - 1; i >= 0; i--) {
    const g = gradients(() => model.block(P, i, inputs[i], b), [inputs[i], ...pick(P, blockNames[i])], dx);
    tf.dispose([g.value, dx, inputs[i + 1]]);
    dx = g.grads[0]!;
    store(blockNames[i], g.grads.slice(1));
  }
  const fe = gradients(() => model.embed(P, b), pick(P, embedNames), dx);
  store(embedNames, fe.grads);
  tf.dispose([fe.value, dx, inputs[0]]);
  return { loss: loss as tf.Scalar, grads, tokenMse: keep.tokenMse!, scale };
}

/**
 * The weighted loss and gradients keyed by official parameter name, both multiplied by `scale`, and the
 * per-token MSE [N, L] (shuffled order).
 */
export interface LossAndGrads {
  loss: tf.Scalar;
  grads: Record<string, tf.Tensor>;
  tokenMse: tf.Tensor2D;
  scale: number;
}

/** Weighted loss and gradients keyed by official parameter name, scaled by `scale` (a power of two). */
export function lossAndGrads(
  model: CausalDiffusionModel,
  b: PreparedBatch,
  arWeights: Float32Array,
  checkpoint = false,
  scale = 1,
): LossAndGrads {
  return checkpoint
    ? checkpointedLossAndGrads(model, b, arWeights, scale)
    : plainLossAndGrads(model, b, arWeights, scale);
}

/** Optimisation settings of a step. */
export interface StepConfig {
  lr: number;
  warmupSteps: number;
  gradClip: number;
  /** Recompute blocks in the backward pass to bound memory. */
  checkpoint: boolean;
  /** Loss scale, a power of two; by default `lossScaleFor` (1 unless the matmuls run in fp16). */
  lossScale?: number;
}

export const STEP_DEFAULTS: StepConfig = {
  lr: OFFICIAL_RECIPE.lr,
  warmupSteps: OFFICIAL_RECIPE.warmupSteps,
  gradClip: OFFICIAL_RECIPE.gradClip,
  checkpoint: false,
};

export interface StepResult {
  loss: number;
  gradNorm: number;
  lr: number;
  /** Unweighted MSE of every noised token, [N * L] in each sample's shuffled (generation) order. */
  tokenMse: Float32Array;
}

/** The settings of a fused clip + AdamW + EMA update: the optimizer's next step. */
function fusedUpdateArgs(opt: AdamW, ema: Ema | null, lr: number, gradClip: number, gradScale: number): FusedAdamWArgs {
  const c = opt.config;
  return { ...c, ...biasCorrections(c, opt.step + 1), lr, maxNorm: gradClip, emaDecay: ema?.decay, gradScale };
}

/**
 * clip + AdamW + EMA of `params`, in place, from `grads` scaled by `scale` (disposed here), in the backend's
 * fused kernel where its table has one (backend/kernels.ts), else with tfjs ops. Nothing changes
 * when the loss or the gradient norm is not finite. Returns [gradient norm, ...] as a tensor, so the GPU's
 * result is read together with the loss; `opt.step` counts the update once it is read (`countUpdate`).
 */
export function applyUpdate(
  params: Record<string, tf.Variable>,
  opt: AdamW,
  ema: Ema | null,
  grads: Record<string, tf.Tensor>,
  loss: tf.Scalar,
  scale: number,
  lr: number,
  gradClip: number,
): tf.Tensor1D {
  const fused = kernels();
  if (fused) {
    const moments = (n: string) => opt.moment(n, params[n]);
    const args = fusedUpdateArgs(opt, ema, lr, gradClip, scale);
    const clip = fused.adamwUpdate(params, grads, moments, ema?.shadow ?? null, loss, args);
    tf.dispose(Object.values(grads));
    return clip;
  }
  if (!Number.isFinite(loss.dataSync()[0])) {
    tf.dispose(Object.values(grads));
    return tf.tensor1d([NaN]);
  }
  if (scale !== 1) {
    for (const [n, g] of Object.entries(grads)) {
      grads[n] = tf.mul(g, 1 / scale);
      g.dispose();
    }
  }
  const clipped = clipGradNorm(grads, gradClip);
  if (Number.isFinite(clipped.norm)) {
    opt.applyAt(params, clipped.grads, lr, opt.step + 1);
    ema?.update(params);
  }
  tf.dispose(Object.values(clipped.grads));
  return tf.tensor1d([clipped.norm]);
}

/** Counts an update of `applyUpdate` in the optimizer's step once its loss and norm are read: only a finite one happened. */
export function countUpdate(opt: AdamW, loss: number, gradNorm: number): void {
  if (Number.isFinite(loss) && Number.isFinite(gradNorm)) opt.step += 1;
}

/**
 * forward + backward + clip + AdamW + EMA on one sampled batch. Throws, naming the step, when the loss or
 * the gradient norm is not finite (the weights are left untouched then).
 */
export function trainStep(
  model: CausalDiffusionModel,
  opt: AdamW,
  ema: Ema | null,
  batch: SampledBatch,
  cfg: StepConfig = STEP_DEFAULTS,
): StepResult {
  const b = model.prepareBatch(batch);
  try {
    const r = lossAndGrads(
      model,
      b,
      batch.arWeights,
      cfg.checkpoint,
      cfg.lossScale ?? lossScaleFor(b.N * b.L * model.patchDim),
    );
    const lr = warmupLr(cfg.lr, opt.step, cfg.warmupSteps);
    const clip = applyUpdate(model.params, opt, ema, r.grads, r.loss, r.scale, lr, cfg.gradClip);
    // loss, norm and token MSE in one read at the end of the step
    const all = tf.tidy(() =>
      tf.concat([tf.reshape(r.loss, [1]), tf.slice(clip, [0], [1]), tf.reshape(r.tokenMse, [-1])]),
    );
    const values = all.dataSync() as Float32Array;
    tf.dispose([all, clip, r.loss, r.tokenMse]);
    const u = { loss: values[0] / r.scale, gradNorm: values[1], tokenMse: values.slice(2) };
    countUpdate(opt, u.loss, u.gradNorm);
    if (!Number.isFinite(u.loss)) throw new Error(`loss is ${u.loss} at step ${opt.step + 1}: training stopped`);
    if (!Number.isFinite(u.gradNorm))
      throw new Error(`gradient norm is ${u.gradNorm} at step ${opt.step + 1}: training stopped`);
    return { ...u, lr };
  } finally {
    disposeBatch(b);
  }
}
