/**
 * Every chart of the toolkit built from one real run: a model samples with a recorder attached, traces one
 * training batch, and trains a few steps; `causalfusion charts` saves the result as an offline gallery page
 * plus .svg / .png per chart, and the browser tests open that page.
 */
import { makeConfig } from '../model/config';
import { CausalDiffusionModel } from '../model/causalfusion';
import { createDiffusion } from '../diffusion/gaussian';
import { getAttnMask, describeSequence } from '../factorization/mask';
import { splitIntegerExpDecay } from '../factorization/steps';
import { ImageDataset, toModelRange } from '../data/datasets';
import { SamplingRecorder, traceTrainingBatch } from '../introspect/recorders';
import { samplingDiffusion, sampleImages } from '../sample/sampler';
import { sampleBatch } from '../train/step';
import { Trainer } from '../train/trainer';
import { Rng } from '../rng';
import { Chart } from './chart';
import { arStepStatsChart, maskChart, orderChart } from './charts-factorization';
import { attentionChart } from './charts-attention';
import { denoisingGridChart, imageGridChart, scheduleChart, trajectoryChart } from './charts-diffusion';
import { lossBreakdownChart, trainingCurvesChart } from './charts-training';
import { QUICK_RECIPE } from '../train/recipes';

/** Chart name -> chart, in display order. */
export type Gallery = Record<string, Chart>;

/**
 * Builds the gallery from `model` (a class-conditional single-channel model, e.g. the shipped MNIST one) and
 * `data` (its dataset, for the training trace and the short training run).
 */
export async function buildGallery(
  model: CausalDiffusionModel,
  data: ImageDataset,
  opts: { seed?: number; trainSteps?: number } = {},
): Promise<Gallery> {
  const c = model.config;
  const size = c.inputSize;
  const grid = size / c.patchSize;
  const L = grid * grid;
  const seed = opts.seed ?? 0;
  const S = Math.min(4, L);
  const steps = 20;
  const rec = new SamplingRecorder({ attention: { arSteps: [1], diffusionSteps: [steps - 1] }, trajectories: {} });
  const r = sampleImages(model, {
    labels: [3, 7, 1, 9],
    arSteps: S,
    diffusionSteps: steps,
    clipDenoised: true,
    seed,
    observer: rec,
  });
  const first = r.images.subarray(0, size * size);
  const { mask, positions } = rec.mask(0);

  const idx = [0, 1];
  const x = toModelRange(data, idx);
  const diffusion = createDiffusion('', { noiseSchedule: c.noiseSchedule });
  const rng = new Rng(seed).fork('gallery');
  const sb = sampleBatch(
    model,
    diffusion,
    x,
    idx.map((i) => data.labels[i]),
    rng,
    {
      arStepDecay: 0.9,
      fixedArSteps: S,
      maxArWeight: 2,
      minArWeight: 1,
      arWeightSchedule: 'linear',
      classDropoutProb: 0,
    },
  );
  const trace = traceTrainingBatch(model, sb);

  const trainer = new Trainer(data, {
    model: makeConfig(null, { ...c }),
    batchSize: 8,
    lr: QUICK_RECIPE.lr,
    warmupSteps: 5,
    seed,
  });
  await trainer.run({ steps: opts.trainSteps ?? 30, logEvery: 3 });
  const history = trainer.history;
  const breakdown = trainer.stats.breakdown();
  trainer.dispose();

  const bigSplit = splitIntegerExpDecay(256, 0.9, new Rng(seed));
  const big = getAttnMask(256, 64, bigSplit.splitSizes);
  const tokens = r.tokens.subarray(0, L * c.latentChannels * c.patchSize ** 2);
  const samples = Array.from({ length: 4 }, (_, k) => r.images.slice(k * size * size, (k + 1) * size * size));

  return {
    mask: maskChart(mask, positions, {
      title: `Generalized causal mask of this sampling run (${S} AR steps, random order)`,
    }),
    'mask-576': maskChart(big, describeSequence(256, 64, bigSplit), {
      title: 'Generalized causal mask at ImageNet scale: 64 condition + 2 x 256 image positions',
      colorBy: 'step',
    }),
    'attention-sampling': attentionChart(rec.attention, first, size, grid),
    'attention-training': attentionChart(
      trace.attention.filter((a) => a.sample === 0),
      toModelRange(data, [0]),
      size,
      grid,
      { title: 'Attention in a training batch (full sequence: rollout and mask overlay)' },
    ),
    order: orderChart(
      first,
      size,
      grid,
      rec.generation.map((g) => g.positions[0]),
      { title: `Generation order: ${L} tokens in ${S} AR steps (random order)` },
    ),
    denoising: denoisingGridChart(rec.trajectories, tokens, { channels: c.latentChannels, size, patch: c.patchSize }),
    schedule: scheduleChart(diffusion, { '50 respaced steps': samplingDiffusion(50, c.noiseSchedule) }),
    trajectories: trajectoryChart(rec.trajectories, r.orders[0].slice(0, 3)),
    training: trainingCurvesChart(history),
    'loss-breakdown': lossBreakdownChart(breakdown),
    'ar-step-stats': arStepStatsChart(256, [1.0, 0.9, 0.8]),
    samples: imageGridChart(samples, size, ['samples'], ['3', '7', '1', '9'], {
      title: 'Samples (class label above)',
      rowTitle: '',
      colTitle: 'class',
    }),
  };
}
