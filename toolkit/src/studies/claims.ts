/**
 * The paper's ablations (Tables 2, 3a-c, Fig. 4a) in miniature: small MNIST models trained with identical
 * budgets and seeds that differ in one factorization choice each, then scored with the project's own
 * evaluator at the same N. Each finished run is cached as JSON, so an interrupted study resumes where it
 * stopped and a notebook can show the committed full-setting numbers without retraining.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { ImageDataset, toModelRange } from '../data/datasets';
import { GaussianDiffusion } from '../diffusion/gaussian';
import { CausalDiffusionModel, disposeBatch } from '../model/causalfusion';
import { numPatches, PresetName } from '../model/config';
import { rasterOrder } from '../factorization/orders';
import { Rng } from '../rng';
import { sampleImages } from '../sample/sampler';
import { greyBase64 } from '../io/images';
import { writeFileAtomic } from '../util/atomic-write';
import { FactorizationConfig, sampleBatch } from '../train/step';
import { configForDataset, Trainer } from '../train/trainer';
import { Classifier } from '../eval/classifier';
import { scoreSamples } from '../eval/metrics';
import { QUICK_RECIPE } from '../train/recipes';

/** Budget and evaluation of one study; every ablation gets exactly the same. */
export interface ClaimsSetting {
  name: string;
  preset: PresetName;
  steps: number;
  batchSize: number;
  lr: number;
  warmupSteps: number;
  emaDecay: number;
  seeds: number[];
  /** Class-conditional samples per S_eval (balanced over classes), no guidance. */
  evalN: number;
  /** DDPM steps per AR step when sampling for evaluation. */
  evalDiffusionSteps: number;
  sEval: number[];
  /** Orders every model is sampled in; absent: each model in its own training order. */
  evalOrders?: SampleOrder[];
  /** Held-out test images for the loss-by-S measurement (Fig. 4a). */
  lossImages: number;
  lossS: number[];
}

/** Token orders a study samples in. */
export type SampleOrder = 'random' | 'raster';

/**
 * Every study trains with the main job's recipe (model, batch, optimiser, EMA, v-prediction, cosine schedule) but
 * for one thing: diffusion times are drawn uniformly (the official choice), not by the Min-SNR weight the main job
 * adopted after these studies were run; switching would invalidate the committed runs (data/claims, claims-49)
 * that notebook 7 reads, and every comparison is within one study, so the ablations stay comparable.
 */
const { model: preset, batchSize, lr, warmupSteps, emaDecay, noiseSchedule, prediction } = QUICK_RECIPE;
const STUDY_TIME_SAMPLING = 'uniform';
const SHARED = {
  preset,
  batchSize,
  lr,
  warmupSteps,
  emaDecay,
  seeds: [0, 1, 2],
  sEval: [1, 2, 4, 8],
  lossS: [1, 2, 4, 8, 16],
};

/** Names of the studies in `CLAIMS_SETTINGS`. */
export type ClaimsSettingName = 'full' | 'gpu-49' | 'reduced';

/**
 * `full`: the committed 16-token study (~7.5 CPU-minutes of training per run, 21 runs); `gpu-49`: the same
 * ablations at 49 tokens, trained side by side on one GPU (its step count is set per machine with `--steps`) and
 * sampled in both orders up to token-by-token AR; `reduced`: the 16-token pipeline in about a minute, for CI.
 */
export const CLAIMS_SETTINGS: Record<ClaimsSettingName, ClaimsSetting> = {
  full: { ...SHARED, name: 'full', steps: 3000, evalN: 200, evalDiffusionSteps: 50, lossImages: 256 },
  'gpu-49': {
    ...SHARED,
    name: 'gpu-49',
    preset: 'mnist-small-49',
    batchSize: 64,
    steps: 5000,
    evalN: 500,
    evalDiffusionSteps: 50,
    sEval: [1, 2, 4, 8, 16, 49],
    evalOrders: ['random', 'raster'],
    lossImages: 256,
    lossS: [1, 2, 4, 8, 16, 49],
  },
  reduced: {
    ...SHARED,
    name: 'reduced',
    seeds: [0, 1],
    steps: 30,
    warmupSteps: 10,
    batchSize: 16,
    evalN: 20,
    evalDiffusionSteps: 10,
    lossImages: 32,
  },
};

/** One training variant: the baseline with one factorization choice changed. */
export interface Ablation {
  id: string;
  label: string;
  factorization: Partial<FactorizationConfig>;
  /** Token order for training (and for sampling, unless the setting names `evalOrders`). */
  order: SampleOrder;
}

/** The baseline (CausalFusion's selected recipe) and the variants of Tables 2, 3a, 3b and 3c. */
export const ABLATIONS: Ablation[] = [
  { id: 'causalfusion', label: 'CausalFusion: random order, γ 0.9, weights 2→1', factorization: {}, order: 'random' },
  { id: 'raster', label: 'raster order (Table 3b)', factorization: {}, order: 'raster' },
  { id: 'gamma-1.0', label: 'γ 1.0 = uniform S (Table 3a)', factorization: { arStepDecay: 1.0 }, order: 'random' },
  { id: 'gamma-0.8', label: 'γ 0.8 (Table 3a)', factorization: { arStepDecay: 0.8 }, order: 'random' },
  {
    id: 'fixed-1',
    label: 'fixed S_train = 1: plain diffusion (Table 2)',
    factorization: { fixedArSteps: 1 },
    order: 'random',
  },
  { id: 'fixed-4', label: 'fixed S_train = 4 (Table 2)', factorization: { fixedArSteps: 4 }, order: 'random' },
  { id: 'weights-1to1', label: 'AR loss weights 1→1 (Table 3c)', factorization: { maxArWeight: 1.0 }, order: 'random' },
];

/** Quality of one trained model sampled with S_eval AR steps. */
export interface EvalPoint {
  sEval: number;
  /** Order the AR steps were generated in; absent in studies that sample each model in its training order. */
  order?: SampleOrder;
  fd: number;
  conditionalAccuracy: number;
  sampleSeconds: number;
  /** The first `classes` samples (one per class) as 8-bit grey values, base64: what the model draws. */
  thumbnails: string;
}

/** Everything measured for one (ablation, seed). */
export interface ClaimRun {
  ablation: string;
  seed: number;
  setting: string;
  steps: number;
  trainSeconds: number;
  /** Mean AR-weighted training loss over the last 10% of steps. */
  finalTrainLoss: number;
  /** Held-out unweighted MSE of the EMA model when the image is cut into S equal-probability random steps (Fig. 4a). */
  heldOutLossByS: { S: number; mse: number }[];
  evals: EvalPoint[];
  /** FD of real training images vs the same real test images at the same N: the floor. */
  fdRealVsReal: number;
}

export interface ClaimsResults {
  setting: ClaimsSetting;
  ablations: Ablation[];
  runs: ClaimRun[];
}

/**
 * Unweighted held-out MSE of `model` on `x` when every image is split into exactly S AR steps, with the same
 * noise, t and token orders for every S, so the only thing that changes is how much clean context each token sees.
 */
export function heldOutLossByS(
  model: CausalDiffusionModel,
  diffusion: GaussianDiffusion,
  x: Float32Array,
  y: readonly number[],
  sList: readonly number[],
  seed = 0,
  batch = 64,
): { S: number; mse: number }[] {
  const n = y.length;
  const D = x.length / n;
  return sList.map((S) => {
    if (!Number.isInteger(S) || S < 1 || S > model.numPatches)
      throw new Error(`S = ${S} is outside 1..${model.numPatches}`);
    let sum = 0;
    for (let k = 0; k < n; k += batch) {
      const m = Math.min(batch, n - k);
      // one stream per chunk, identical for every S: noise and t are drawn before the split and the orders
      const rng = new Rng(seed).fork(`loss-${k}`);
      const sb = sampleBatch(model, diffusion, x.subarray(k * D, (k + m) * D), y.slice(k, k + m), rng, {
        arStepDecay: 1,
        fixedArSteps: S,
        maxArWeight: 1,
        minArWeight: 1,
        arWeightSchedule: 'linear',
        classDropoutProb: 0,
      });
      const b = model.prepareBatch(sb);
      sum += tf.tidy(() => tf.mean(model.forwardPrepared(b)).dataSync()[0]) * m;
      disposeBatch(b);
    }
    return { S, mse: sum / n };
  });
}

/** What a study needs besides its setting: datasets and the evaluator. */
export interface ClaimsEnv {
  train: ImageDataset;
  test: ImageDataset;
  classifier: Classifier;
  log?: (line: string) => void;
}

/** Trains and evaluates one (ablation, seed). */
export function runClaim(ab: Ablation, seed: number, s: ClaimsSetting, env: ClaimsEnv): ClaimRun {
  const { train, test, classifier } = env;
  const model = configForDataset(s.preset, train, { noiseSchedule, prediction });
  const L = numPatches(model);
  const order = ab.order === 'raster' ? rasterOrder(L) : undefined;
  const trainer = new Trainer(train, {
    model,
    batchSize: s.batchSize,
    lr: s.lr,
    warmupSteps: s.warmupSteps,
    emaDecay: s.emaDecay,
    timeSampling: STUDY_TIME_SAMPLING,
    seed,
    factorization: { ...ab.factorization, order },
  });
  const losses: number[] = [];
  const t0 = Date.now();
  for (let i = 0; i < s.steps; i++) losses.push(trainer.trainOne().loss);
  const trainSeconds = (Date.now() - t0) / 1000;
  const tail = losses.slice(-Math.max(1, Math.floor(s.steps / 10)));
  const ema = trainer.emaModel;

  const lossIdx = new Rng(1234).sample(
    Array.from({ length: test.count }, (_, i) => i),
    s.lossImages,
  );
  const heldOut = heldOutLossByS(
    ema,
    trainer.diffusion,
    toModelRange(test, lossIdx),
    lossIdx.map((i) => test.labels[i]),
    s.lossS.filter((S) => S <= L),
  );

  const labels = Array.from({ length: s.evalN }, (_, i) => i % train.classNames.length);
  let fdRealVsReal = NaN;
  const evals = (s.evalOrders ?? [ab.order]).flatMap((order) =>
    s.sEval.map((sEval) => {
      const t1 = Date.now();
      const r = sampleImages(ema, {
        labels,
        arSteps: sEval,
        order,
        diffusionSteps: s.evalDiffusionSteps,
        clipDenoised: true,
        seed: 777,
      });
      const sampleSeconds = (Date.now() - t1) / 1000;
      const m = scoreSamples(classifier, r.images, labels, test, train, 0);
      fdRealVsReal = m.fdRealVsReal;
      const k = train.classNames.length * train.channels * train.height * train.width;
      const point: EvalPoint = {
        sEval,
        fd: m.fd,
        conditionalAccuracy: m.conditionalAccuracy,
        sampleSeconds,
        thumbnails: greyBase64(r.images.subarray(0, k)),
      };
      return s.evalOrders ? { ...point, order } : point;
    }),
  );
  trainer.dispose();
  return {
    ablation: ab.id,
    seed,
    setting: s.name,
    steps: s.steps,
    trainSeconds,
    finalTrainLoss: tail.reduce((a, b) => a + b, 0) / tail.length,
    heldOutLossByS: heldOut,
    evals,
    fdRealVsReal,
  };
}

/** Which runs of a study: the cache folder, the ablations and the seeds. */
export interface ClaimsSelection {
  /** Folder of the per-run cache (one JSON per ablation and seed) and `results.json`. */
  dir: string;
  /** Ablation ids (default all). */
  only?: string[];
  /** Seeds (default the setting's). */
  seeds?: number[];
}

function chosenAblations(only?: string[]): Ablation[] {
  const unknown = (only ?? []).filter((id) => !ABLATIONS.some((a) => a.id === id));
  if (unknown.length)
    throw new Error(`unknown ablation(s) ${unknown.join(', ')} (known: ${ABLATIONS.map((a) => a.id).join(', ')})`);
  return ABLATIONS.filter((a) => !only || only.includes(a.id));
}

const runFile = (dir: string, ab: Ablation, seed: number) => path.join(dir, `${ab.id}-seed${seed}.json`);

/** The cached run of (ab, seed), if one was made under the same setting name and step count. */
function cachedRun(setting: ClaimsSetting, dir: string, ab: Ablation, seed: number): ClaimRun | null {
  const file = runFile(dir, ab, seed);
  const run = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as ClaimRun) : null;
  return run && run.setting === setting.name && run.steps === setting.steps ? run : null;
}

/**
 * Runs (or loads from `dir`) every chosen ablation for every seed and writes `dir/results.json`. A cached run is
 * reused only when it was made under the same setting name and step count.
 */
export function runClaims(setting: ClaimsSetting, env: ClaimsEnv, opts: ClaimsSelection): ClaimsResults {
  const log = env.log ?? (() => undefined);
  const chosen = chosenAblations(opts.only);
  fs.mkdirSync(opts.dir, { recursive: true });
  const runs: ClaimRun[] = [];
  for (const seed of opts.seeds ?? setting.seeds) {
    for (const ab of chosen) {
      const cached = cachedRun(setting, opts.dir, ab, seed);
      if (cached) {
        runs.push(cached);
        continue;
      }
      log(`training ${ab.id} seed ${seed} (${setting.steps} steps) ...`);
      const run = runClaim(ab, seed, setting, env);
      writeFileAtomic(runFile(opts.dir, ab, seed), Buffer.from(JSON.stringify(run, null, 1)));
      log(
        `  ${ab.id} seed ${seed}: ${run.trainSeconds.toFixed(0)} s, FD@S=1 ${run.evals[0].fd.toFixed(1)}, acc@S=1 ${(100 * run.evals[0].conditionalAccuracy).toFixed(1)}%`,
      );
      runs.push(run);
    }
  }
  const results: ClaimsResults = { setting, ablations: chosen, runs };
  fs.writeFileSync(path.join(opts.dir, 'results.json'), JSON.stringify(results, null, 1));
  return results;
}

/**
 * Reads a study from its cache without training or writing anything. `seeds: 'available'` takes the setting's
 * seeds whose runs are all cached (a study committed before all its seeds ran); a missing run is an error naming it.
 */
export function loadClaims(
  setting: ClaimsSetting,
  opts: Omit<ClaimsSelection, 'seeds'> & { seeds?: number[] | 'available' },
): ClaimsResults {
  const chosen = chosenAblations(opts.only);
  const available = opts.seeds === 'available';
  const seeds = opts.seeds === undefined || opts.seeds === 'available' ? setting.seeds : opts.seeds;
  const perSeed = seeds.map((seed) => ({
    seed,
    runs: chosen.map((ab) => ({ ab, run: cachedRun(setting, opts.dir, ab, seed) })),
  }));
  const kept = available ? perSeed.filter((p) => p.runs.every((x) => x.run)) : perSeed;
  if (!kept.length)
    throw new Error(
      `${opts.dir}: no seed of the ${setting.name} study has all its runs cached (run "causalfusion claims --setting ${setting.name}")`,
    );
  const runs = kept.flatMap(({ seed, runs }) =>
    runs.map(({ ab, run }) => {
      if (!run)
        throw new Error(
          `${runFile(opts.dir, ab, seed)}: no cached run of "${ab.id}" seed ${seed} for setting ${setting.name} (run "causalfusion claims --setting ${setting.name}")`,
        );
      return run;
    }),
  );
  return { setting, ablations: chosen, runs };
}

/** Mean and spread (half the min-max range) of one metric over seeds. */
export interface Spread {
  mean: number;
  halfRange: number;
  n: number;
}

function spread(values: number[]): Spread {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return { mean, halfRange: (Math.max(...values) - Math.min(...values)) / 2, n: values.length };
}

/** Per ablation: FD and accuracy per S_eval and held-out loss per S, each as mean ± half-range over seeds. */
export interface ClaimsSummaryRow {
  ablation: Ablation;
  /** FD per S_eval when sampling in the model's training order. */
  fd: Record<number, Spread>;
  accuracy: Record<number, Spread>;
  /** FD and accuracy per S_eval for every order the study sampled in. */
  fdByOrder: Partial<Record<SampleOrder, Record<number, Spread>>>;
  accuracyByOrder: Partial<Record<SampleOrder, Record<number, Spread>>>;
  heldOutLoss: Record<number, Spread>;
  trainSeconds: Spread;
}

/** The order an evaluation sampled in: its own, or (in studies that sample each model once) the model's training order. */
export function evalOrder(e: EvalPoint, ab: Ablation): SampleOrder {
  return e.order ?? ab.order;
}

/** The evaluations of `run` made in the order its model was trained in. */
export function ownOrderEvals(r: ClaimsResults, run: ClaimRun): EvalPoint[] {
  const ab = r.ablations.find((a) => a.id === run.ablation);
  if (!ab) throw new Error(`run of unknown ablation "${run.ablation}"`);
  return run.evals.filter((e) => evalOrder(e, ab) === ab.order);
}

export function summarizeClaims(r: ClaimsResults): ClaimsSummaryRow[] {
  return r.ablations.map((ablation) => {
    const runs = r.runs.filter((x) => x.ablation === ablation.id);
    if (!runs.length) throw new Error(`no runs of ${ablation.id}`);
    const by = <T>(pick: (run: ClaimRun) => T[], key: (t: T) => number, val: (t: T) => number) => {
      const out: Record<number, Spread> = {};
      for (const k of pick(runs[0]).map(key))
        out[k] = spread(runs.map((run) => val(pick(run).find((t) => key(t) === k)!)));
      return out;
    };
    const orders = [...new Set(runs[0].evals.map((e) => evalOrder(e, ablation)))];
    const inOrder = (o: SampleOrder) => (run: ClaimRun) => run.evals.filter((e) => evalOrder(e, ablation) === o);
    const perOrder = (val: (e: EvalPoint) => number) =>
      Object.fromEntries(orders.map((o) => [o, by(inOrder(o), (e) => e.sEval, val)]));
    const fdByOrder = perOrder((e) => e.fd);
    const accuracyByOrder = perOrder((e) => e.conditionalAccuracy);
    return {
      ablation,
      fd: fdByOrder[ablation.order],
      accuracy: accuracyByOrder[ablation.order],
      fdByOrder,
      accuracyByOrder,
      heldOutLoss: by(
        (x) => x.heldOutLossByS,
        (e) => e.S,
        (e) => e.mse,
      ),
      trainSeconds: spread(runs.map((x) => x.trainSeconds)),
    };
  });
}
