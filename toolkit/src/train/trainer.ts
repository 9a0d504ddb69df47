/**
 * The CausalFusion trainer, in the spirit of minGPT's: one object holding model, EMA, optimizer, data and
 * randomness; `run` loops over `trainStep`, fires callbacks, logs, samples and checkpoints, and stops
 * cooperatively when an AbortSignal fires (checked between steps: in a notebook, interrupting a cell does not
 * stop async work, so this is the clean way to stop).
 *
 * Everything random flows from `seed`: the model init, the data order (per epoch), and one training stream
 * for noise, t, label dropout, AR splits and token orders. A checkpoint stores all of it, so N steps + save +
 * load + N steps equals 2N steps bit for bit on the same backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng, RngState } from '../rng';
import { createDiffusion, GaussianDiffusion } from '../diffusion/gaussian';
import { TimeSampling, timeSampler } from '../diffusion/time-sampling';
import { CausalFusionConfig, makeConfig, PresetName, validateConfig } from '../model/config';
import { CausalDiffusionModel } from '../model/causalfusion';
import { BatchLoader, LoaderState } from '../data/loader';
import { ImageDataset } from '../data/datasets';
import { Checkpoint, readCheckpoint, saveCheckpoint } from '../io/checkpoint';
import { classLabels, sampleImages, SampleOptions, SampleResult } from '../sample/sampler';
import { AdamW, Ema } from './optim';
import { FACTORIZATION_DEFAULTS, FactorizationConfig, sampleBatch, trainStep } from './step';
import { LossBreakdown, LossStats, LossStatsState } from './stats';
import { ProgressBar } from './progress';
import { OFFICIAL_RECIPE } from './recipes';
import { checkStepFits } from './memory';
import { activeWebgpu } from '../backend/wgsl/runner';
import { kernels } from '../backend/kernels';

/** Every training choice; all have defaults from the official recipe except where a small run needs others. */
export interface TrainConfig {
  model: CausalFusionConfig;
  batchSize: number;
  seed: number;
  /** Random horizontal flips (off for digits). */
  flip: boolean;
  factorization: FactorizationConfig;
  lr: number;
  warmupSteps: number;
  /** Which diffusion times batches draw: `uniform` (official) or `min-snr` (diffusion/time-sampling.ts). */
  timeSampling: TimeSampling;
  gradClip: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  emaDecay: number;
  /** Recompute blocks in the backward pass (bounded memory for large batches). */
  checkpointActivations: boolean;
  /** Bins of t for the per-t loss breakdown. */
  tBins: number;
}

/** The official recipe (train.py defaults) for everything but the model. */
export const TRAIN_DEFAULTS: Omit<TrainConfig, 'model'> = {
  batchSize: 64,
  seed: 0,
  flip: false,
  factorization: FACTORIZATION_DEFAULTS,
  ...OFFICIAL_RECIPE,
  timeSampling: 'uniform',
  checkpointActivations: false,
  tBins: 10,
};

/** What `new Trainer` accepts: a model config or preset name, and any overrides of the defaults. */
export type TrainSettings = Partial<Omit<TrainConfig, 'model' | 'factorization'>> & {
  model: CausalFusionConfig | PresetName;
  factorization?: Partial<FactorizationConfig>;
};

export interface StepEvent {
  step: number;
  epoch: number;
  loss: number;
  gradNorm: number;
  lr: number;
  splitSizes: number[];
  t: number[];
  /** Per-sample token order (raster index of each shuffled position). */
  orders: number[][];
  /** AR loss weight of each shuffled position. */
  arWeights: Float32Array;
  /** Unweighted noise MSE per token, [N * L] in shuffled order. */
  tokenMse: Float32Array;
}

export interface LogEvent {
  step: number;
  epoch: number;
  /** Mean AR-weighted loss over the steps since the last log (what the official code logs). */
  loss: number;
  /** Mean unweighted MSE of the prediction target (noise, or v) over the same window. */
  mse: number;
  lr: number;
  gradNorm: number;
  stepsPerSec: number;
  imagesPerSec: number;
  elapsedSec: number;
  /** Fig. 4 breakdowns over the window. */
  breakdown: LossBreakdown;
  tensors: number;
}

export interface SampleEvent {
  step: number;
  labels: number[];
  result: SampleResult;
}

/** Event handlers; a handler may return a promise, which the trainer awaits before the next step. */
export interface TrainCallbacks {
  onStep?(e: StepEvent): unknown;
  onLog?(e: LogEvent): unknown;
  onSample?(e: SampleEvent): unknown;
  onCheckpoint?(e: { step: number; path: string }): unknown;
}

export interface RunOptions {
  /** Steps to run in this call. */
  steps: number;
  /** Stop after this much wall time (seconds), finishing the current step. */
  maxSeconds?: number;
  signal?: AbortSignal;
  logEvery?: number;
  /** Draw samples every this many steps (0 = never), with these options (labels default to perClass x class). */
  sampleEvery?: number;
  sample?: Partial<SampleOptions> & { perClass?: number };
  /** Write a full checkpoint to `checkpointPath` every this many steps (0 = only at the end). */
  checkpointEvery?: number;
  checkpointPath?: string;
  /** Draw a progress bar on stderr (true) or on the given stream. */
  progress?: boolean | NodeJS.WritableStream;
  callbacks?: TrainCallbacks;
}

export interface RunSummary {
  steps: number;
  stoppedBy: 'steps' | 'signal' | 'time';
  elapsedSec: number;
  lastLoss: number;
}

/** Running sums over the steps since the last log line. */
class LogWindow {
  loss = 0;
  gradNorm = 0;
  n = 0;
  readonly t = Date.now();

  constructor(readonly stats: LossStats) {}

  add(e: StepEvent): void {
    this.loss += e.loss;
    this.gradNorm += e.gradNorm;
    this.n += 1;
  }
}

/** Training state beyond the tensors, as stored in a checkpoint's metadata. */
interface TrainerMeta {
  train: Omit<TrainConfig, 'model'>;
  step: number;
  rng: RngState;
  loader: LoaderState;
  dataset: { name: string; count: number };
  elapsedSec: number;
  history: LogEvent[];
  stats: LossStatsState;
}

/**
 * A preset's config shaped for a dataset (image size, channels, classes), with `overrides`: the model config of a
 * training run, built once (the trainer takes it as it is).
 */
export function configForDataset(
  preset: PresetName,
  ds: ImageDataset,
  overrides: Partial<CausalFusionConfig> = {},
): CausalFusionConfig {
  return makeConfig(preset, {
    inputSize: ds.height,
    latentChannels: ds.channels,
    numClasses: ds.classNames.length,
    ...overrides,
  });
}

function resolveConfig(s: TrainSettings): TrainConfig {
  if (typeof s.model !== 'string') validateConfig(s.model);
  const model = typeof s.model === 'string' ? makeConfig(s.model) : s.model;
  const { model: _m, factorization, ...rest } = s;
  void _m;
  const cfg: TrainConfig = {
    ...TRAIN_DEFAULTS,
    ...rest,
    model,
    factorization: { ...FACTORIZATION_DEFAULTS, classDropoutProb: model.classDropoutProb, ...factorization },
  };
  const posInt = ['batchSize', 'tBins'] as const;
  for (const k of posInt)
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) throw new Error(`${k} must be a positive integer, got ${cfg[k]}`);
  if (!(cfg.lr > 0)) throw new Error(`learning rate must be > 0, got ${cfg.lr}`);
  if (!Number.isInteger(cfg.warmupSteps) || cfg.warmupSteps < 0)
    throw new Error(`warm-up steps must be an integer >= 0, got ${cfg.warmupSteps}`);
  if (!(cfg.gradClip > 0)) throw new Error(`gradient clip must be > 0, got ${cfg.gradClip}`);
  if (cfg.timeSampling !== 'uniform' && cfg.timeSampling !== 'min-snr')
    throw new Error(`time sampling must be uniform or min-snr, got ${cfg.timeSampling}`);
  const f = cfg.factorization;
  if (!(f.arStepDecay > 0 && f.arStepDecay <= 1))
    throw new Error(`AR-step decay must be in (0, 1], got ${f.arStepDecay}`);
  if (!(f.classDropoutProb >= 0 && f.classDropoutProb < 1))
    throw new Error(`label dropout must be in [0, 1), got ${f.classDropoutProb}`);
  if (f.classDropoutProb > 0 && model.classDropoutProb <= 0)
    throw new Error('label dropout needs a model with a null class (config.classDropoutProb > 0)');
  return cfg;
}

/** Fails, naming both shapes, when the dataset's images or classes do not fit the model. */
export function checkDataset(ds: ImageDataset, c: CausalFusionConfig): void {
  if (ds.channels !== c.latentChannels || ds.height !== c.inputSize || ds.width !== c.inputSize) {
    throw new Error(
      `dataset ${ds.name} has images ${ds.channels}x${ds.height}x${ds.width} but the model expects ${c.latentChannels}x${c.inputSize}x${c.inputSize} (set inputSize / latentChannels, or resize the images)`,
    );
  }
  if (ds.classNames.length > c.numClasses)
    throw new Error(`dataset ${ds.name} has ${ds.classNames.length} classes, the model only ${c.numClasses}`);
}

const sleep0 = () => new Promise<void>((r) => setImmediate(r));

export class Trainer {
  readonly config: TrainConfig;
  readonly model: CausalDiffusionModel;
  /** The EMA weights as a model of their own, ready to sample from. */
  readonly emaModel: CausalDiffusionModel;
  readonly diffusion: GaussianDiffusion;
  /** Draws each sample's diffusion time (`timeSampling`). */
  private readonly drawT: (rng: Rng) => number;
  readonly loader: BatchLoader;
  /** Log events so far (loss curve and Fig. 4 breakdowns over time). */
  history: LogEvent[] = [];
  /** Breakdown over all steps so far. */
  stats: LossStats;
  step = 0;
  elapsedSec = 0;
  private readonly opt: AdamW;
  private readonly ema: Ema;
  private readonly rng: Rng;
  /** Learning rate of the last step (for log events). */
  private lastLr = 0;

  constructor(
    readonly dataset: ImageDataset,
    settings: TrainSettings,
  ) {
    this.config = resolveConfig(settings);
    const c = this.config;
    checkDataset(dataset, c.model);
    const gpu = activeWebgpu();
    if (gpu) checkStepFits(c.model, c.batchSize, gpu.device.limits, { flashAttention: kernels() !== null });
    this.model = new CausalDiffusionModel(c.model, { seed: c.seed });
    this.emaModel = new CausalDiffusionModel(c.model, { seed: c.seed });
    this.ema = new Ema(this.model.params, c.emaDecay, this.emaModel.params);
    this.opt = new AdamW({ lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay });
    this.diffusion = createDiffusion('', c.model);
    this.drawT = timeSampler(this.diffusion, c.timeSampling);
    this.loader = new BatchLoader(dataset, { batchSize: c.batchSize, seed: c.seed, flip: c.flip });
    this.rng = new Rng(c.seed).fork('train');
    this.stats = this.newStats();
  }

  /** Continues a run from a full checkpoint written by `save` (same dataset). */
  static resume(file: string, dataset: ImageDataset): Trainer {
    const ck = readCheckpoint(file);
    const meta = ck.meta as unknown as TrainerMeta;
    if (!meta.train || !ck.ema || !ck.optimizer)
      throw new Error(
        `${file}: not a full training checkpoint (no optimizer / EMA / training state); load it with loadModel instead`,
      );
    if (meta.dataset.name !== dataset.name || meta.dataset.count !== dataset.count) {
      throw new Error(
        `${file} was trained on ${meta.dataset.name} (${meta.dataset.count} images), not ${dataset.name} (${dataset.count})`,
      );
    }
    const tr = new Trainer(dataset, { ...meta.train, model: ck.config });
    tr.model.loadStateDict(ck.model);
    tr.emaModel.loadStateDict(ck.ema);
    tr.opt.load(ck.optimizer, file);
    tr.rng.setState(meta.rng);
    tr.loader.restore(meta.loader);
    tr.step = meta.step;
    tr.elapsedSec = meta.elapsedSec;
    tr.history = meta.history;
    tr.stats = LossStats.fromJSON(meta.stats);
    return tr;
  }

  /** One optimisation step on the next batch. Throws (naming the step) on a non-finite loss. */
  trainOne(window?: LossStats): StepEvent {
    const c = this.config;
    const batch = this.loader.next();
    const sb = sampleBatch(this.model, this.diffusion, batch.x, batch.y, this.rng, c.factorization, {
      drawT: this.drawT,
    });
    const r = trainStep(this.model, this.opt, this.ema, sb, {
      lr: c.lr,
      warmupSteps: c.warmupSteps,
      gradClip: c.gradClip,
      checkpoint: c.checkpointActivations,
    });
    this.step += 1;
    this.stats.add(r.tokenMse, sb.split.cumsum, sb.t);
    window?.add(r.tokenMse, sb.split.cumsum, sb.t);
    return {
      step: this.step,
      epoch: this.loader.state().epoch,
      loss: r.loss,
      gradNorm: r.gradNorm,
      lr: r.lr,
      splitSizes: sb.splitSizes.slice(),
      t: sb.t.slice(),
      orders: sb.idsShuffle as number[][],
      arWeights: sb.arWeights,
      tokenMse: r.tokenMse,
    };
  }

  /** Trains for `opts.steps` steps (or until the signal or time limit), with callbacks, logs, samples and checkpoints. */
  async run(opts: RunOptions): Promise<RunSummary> {
    const { steps, signal, callbacks: cb = {} } = opts;
    if (!Number.isInteger(steps) || steps < 0) throw new Error(`steps must be an integer >= 0, got ${steps}`);
    const logEvery = opts.logEvery ?? 50;
    const sampleEvery = opts.sampleEvery ?? 0;
    const ckEvery = opts.checkpointEvery ?? 0;
    if (ckEvery > 0 && !opts.checkpointPath) throw new Error('checkpointEvery needs a checkpointPath');
    const bar = opts.progress
      ? new ProgressBar(
          opts.progress === true ? process.stderr : (opts.progress as NodeJS.WritableStream & { isTTY?: boolean }),
        )
      : null;
    const target = this.step + steps;
    const t0 = Date.now();
    const base = this.elapsedSec;
    let win = new LogWindow(this.newStats());
    let lastLoss = NaN;
    const progress = (force: boolean) =>
      bar?.update(
        {
          step: this.step,
          total: target,
          loss: lastLoss,
          stepsPerSec: (this.step - (target - steps)) / Math.max(1e-9, (Date.now() - t0) / 1000),
          elapsedSec: (Date.now() - t0) / 1000,
          maxSeconds: opts.maxSeconds,
        },
        force,
      );
    const flushLog = async () => {
      if (win.n === 0) return;
      const e = this.logEvent(win);
      this.history.push(e);
      win = new LogWindow(this.newStats());
      progress(true);
      await cb.onLog?.(e);
    };
    const checkpoint = async () => {
      this.save(opts.checkpointPath!);
      await cb.onCheckpoint?.({ step: this.step, path: opts.checkpointPath! });
    };
    const stopReason = (): RunSummary['stoppedBy'] | null =>
      this.step >= target
        ? 'steps'
        : signal?.aborted
          ? 'signal'
          : opts.maxSeconds !== undefined && (Date.now() - t0) / 1000 >= opts.maxSeconds
            ? 'time'
            : null;
    let stoppedBy: RunSummary['stoppedBy'] | null;
    try {
      while (!(stoppedBy = stopReason())) {
        const e = this.trainOne(win.stats);
        this.elapsedSec = base + (Date.now() - t0) / 1000;
        this.lastLr = e.lr;
        lastLoss = e.loss;
        win.add(e);
        progress(false);
        await cb.onStep?.(e);
        if (logEvery > 0 && this.step % logEvery === 0) await flushLog();
        if (sampleEvery > 0 && this.step % sampleEvery === 0) await cb.onSample?.(this.preview(opts.sample));
        if (ckEvery > 0 && this.step % ckEvery === 0) await checkpoint();
        await sleep0(); // lets an abort (button, signal handler) be delivered between steps
      }
      await flushLog();
      if (opts.checkpointPath && (ckEvery === 0 || this.step % ckEvery !== 0)) await checkpoint();
    } finally {
      progress(true);
      bar?.done();
    }
    return { steps: this.step, stoppedBy, elapsedSec: (Date.now() - t0) / 1000, lastLoss };
  }

  /** The log line of the steps in `win`. */
  private logEvent(win: LogWindow): LogEvent {
    const dt = (Date.now() - win.t) / 1000;
    const bd = win.stats.breakdown();
    const tokens = bd.arStepTokens.reduce((a, b) => a + b, 0);
    const mse = bd.byArStep.reduce<number>((a, m, i) => a + (m ?? 0) * bd.arStepTokens[i], 0) / Math.max(1, tokens);
    return {
      step: this.step,
      epoch: this.loader.state().epoch,
      loss: win.loss / win.n,
      mse,
      lr: this.lastLr,
      gradNorm: win.gradNorm / win.n,
      stepsPerSec: win.n / dt,
      imagesPerSec: (win.n * this.config.batchSize) / dt,
      elapsedSec: this.elapsedSec,
      breakdown: bd,
      tensors: tf.memory().numTensors,
    };
  }

  /** An empty loss breakdown with this run's t bins. */
  private newStats(): LossStats {
    return new LossStats(this.config.tBins, this.diffusion.numTimesteps);
  }

  /** Samples from the EMA model: `perClass` images of every class unless `labels` are given. */
  sample(opts: Partial<SampleOptions> & { perClass?: number } = {}): SampleResult {
    const { perClass, ...rest } = opts;
    return sampleImages(this.emaModel, {
      diffusionSteps: '50',
      ...rest,
      labels: opts.labels ?? classLabels(this.dataset.classNames.length, perClass),
    });
  }

  private preview(opts: Partial<SampleOptions> & { perClass?: number } = {}): SampleEvent {
    const labels = opts.labels?.slice() ?? classLabels(this.dataset.classNames.length, opts.perClass);
    return { step: this.step, labels, result: this.sample({ seed: this.step, ...opts, labels }) };
  }

  /** Everything needed to resume, as a host-side checkpoint. */
  checkpoint(): Checkpoint {
    const { model: _m, ...train } = this.config;
    void _m;
    const meta: TrainerMeta = {
      train,
      step: this.step,
      rng: this.rng.getState(),
      loader: this.loader.state(),
      dataset: { name: this.dataset.name, count: this.dataset.count },
      elapsedSec: this.elapsedSec,
      history: this.history,
      stats: this.stats.toJSON(),
    };
    return {
      config: this.config.model,
      model: this.model.stateDict(),
      ema: this.emaModel.stateDict(),
      optimizer: this.opt.state(),
      meta: meta as unknown as Record<string, unknown>,
    };
  }

  /** Writes a full, resumable checkpoint atomically. */
  save(file: string): void {
    saveCheckpoint(file, this.checkpoint());
  }

  /** Writes a weights-only file (EMA weights by default) with the config and a summary: what ships. */
  exportWeights(file: string, which: 'ema' | 'model' = 'ema'): void {
    const m = which === 'ema' ? this.emaModel : this.model;
    const last = this.history[this.history.length - 1];
    saveCheckpoint(file, {
      config: this.config.model,
      model: m.stateDict(),
      meta: {
        weights: which,
        step: this.step,
        dataset: this.dataset.name,
        classNames: this.dataset.classNames,
        lastLoss: last?.loss ?? null,
        elapsedSec: this.elapsedSec,
      },
    });
  }

  dispose(): void {
    this.opt.dispose();
    this.model.dispose();
    this.emaModel.dispose();
  }
}
