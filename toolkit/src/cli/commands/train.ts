import * as fs from 'fs';
import * as path from 'path';
import { numPatches } from '../../model/config';
import { countParameters } from '../../model/params';
import { ImageDataset, loadFashionMnist, loadMnist } from '../../data/datasets';
import { loadImageFolder } from '../../data/folder';
import { configForDataset, Trainer } from '../../train/trainer';
import { writeTrainingReport } from '../../studies/training-report';
import { QUICK_RECIPE as Q } from '../../train/recipes';
import { FACTORIZATION_DEFAULTS as F } from '../../train/step';
import { imageGrid } from '../../io/images';
import { savePng } from '../../io/image-files';
import { classLabels, defaultRespacing } from '../../sample/sampler';
import { defineCommand } from '../command';
import { fileFlag, presetFlag, seedFlag } from '../common';
import { UsageError, atLeastOne, decayRange, flag, nonNegative, positive, probability, unitInterval } from '../flags';

/** mnist, fashion-mnist or folder:PATH (one sub-folder of PNGs per class). */
function trainingDataset(spec: string, channels: 1 | 3): ImageDataset {
  if (spec === 'mnist') return loadMnist('train');
  if (spec === 'fashion-mnist') return loadFashionMnist('train');
  if (spec.startsWith('folder:')) return loadImageFolder(spec.slice('folder:'.length), { channels });
  throw new UsageError(`--dataset must be mnist, fashion-mnist or folder:PATH, got "${spec}"`);
}

/** SIGINT stops training after the current step (and still saves); a second one quits at once. */
function stopOnSigint(): { signal: AbortSignal; release(): void } {
  const ac = new AbortController();
  const onSigint = () => {
    if (ac.signal.aborted) process.exit(130);
    console.error('\nstopping after this step (Ctrl-C again to quit without saving)');
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  return { signal: ac.signal, release: () => process.off('SIGINT', onSigint) };
}

export const train = defineCommand({
  name: 'train',
  summary: 'train a CausalFusion model (MNIST by default), write checkpoints, samples and a report',
  about: `Trains on a dataset with the official factorization (random order, AR steps from the truncated geometric
law, generalized causal mask, AR loss weights, label dropout) and optimisation (AdamW + warm-up, clipping, EMA),
with the main job's budget defaults; then writes into --out: checkpoint.safetensors (resumable),
model.safetensors (EMA weights), samples.png (one row per class), report.md (+ loss.svg, ar-step-loss.svg,
history.json). Ctrl-C stops after the current step and still saves.`,
  flags: {
    dataset: flag.text('mnist', 'mnist | fashion-mnist | folder:PATH (one sub-folder of PNGs per class)', 'NAME'),
    channels: flag.oneOf(['1', '3'] as const, '1', 'channels of a folder dataset'),
    preset: presetFlag(Q.model, 'model preset (image size, channels and classes follow the dataset)'),
    steps: flag.int(Q.steps, 'stop after this many steps ...'),
    minutes: flag.num(Q.minutes, '... or this many minutes, whichever comes first', positive, 'M'),
    batch: flag.int(Q.batchSize, 'batch size'),
    lr: flag.num(Q.lr, 'peak learning rate (the official recipe: 1e-4)', positive),
    warmup: flag.int(Q.warmupSteps, 'linear warm-up steps', 0),
    'time-sampling': flag.oneOf(
      ['uniform', 'min-snr'] as const,
      Q.timeSampling,
      'diffusion times of training: uniform (official) or by the Min-SNR-2 weight',
    ),
    ema: flag.num(Q.emaDecay, 'EMA decay', unitInterval),
    prediction: flag.oneOf(['eps', 'v'] as const, Q.prediction, 'regression target (the official model: eps)'),
    schedule: flag.oneOf(['linear', 'cosine'] as const, Q.noiseSchedule, 'noise schedule (the official model: linear)'),
    decay: flag.num(F.arStepDecay, 'AR-step decay gamma (1 = uniform)', decayRange, 'G'),
    'fixed-ar-steps': flag.int(undefined, 'train with exactly S AR steps instead of the law', 1, 'S'),
    'ar-weights': flag.oneOf(['linear', 'cosine'] as const, F.arWeightSchedule, 'AR loss weight schedule'),
    'max-ar-weight': flag.num(F.maxArWeight, 'loss weight of the first AR step (the last gets 1)'),
    'label-dropout': flag.num(F.classDropoutProb, 'label dropout, for classifier-free guidance', probability, 'P'),
    'grad-clip': flag.num(1, 'gradient clipping norm', positive),
    'weight-decay': flag.num(0, 'AdamW weight decay', nonNegative),
    flip: flag.switch('random horizontal flips'),
    'checkpoint-activations': flag.switch('recompute blocks in the backward pass (bounded memory)'),
    seed: seedFlag(),
    out: flag.text(undefined, 'output folder', 'DIR', 'runs/<dataset>'),
    resume: fileFlag(undefined, 'continue a run from its checkpoint'),
    'log-every': flag.int(50, 'steps between log lines'),
    'checkpoint-every': flag.int(250, 'steps between checkpoints'),
    'per-class': flag.int(8, 'samples per class in the final grid'),
    'ar-steps': flag.int(1, 'AR steps of the final grid'),
    cfg: flag.num(Q.cfgScale, 'guidance scale of the final grid', atLeastOne),
    'no-progress': flag.switch('plain log lines instead of the progress bar'),
  },
  async run(v, ctx) {
    const channels = v.channels === '3' ? 3 : 1;
    const out = path.resolve(
      v.out ?? path.join('runs', v.dataset.replace(/^folder:/, '').replace(/[^A-Za-z0-9_-]+/g, '_')),
    );
    const ds = trainingDataset(v.dataset, channels);
    const report = await ctx.startBackend(true);
    console.log(report.line);
    const trainer = v.resume
      ? Trainer.resume(v.resume, ds)
      : new Trainer(ds, {
          // the model's classDropoutProb gives it the null class (guidance needs one); the rate the batches use is
          // the factorization's, which may be 0 (no dropout) while the null class stays
          model: configForDataset(v.preset, ds, {
            classDropoutProb: v['label-dropout'] > 0 ? v['label-dropout'] : F.classDropoutProb,
            noiseSchedule: v.schedule,
            prediction: v.prediction,
          }),
          batchSize: v.batch,
          lr: v.lr,
          warmupSteps: v.warmup,
          timeSampling: v['time-sampling'],
          emaDecay: v.ema,
          gradClip: v['grad-clip'],
          weightDecay: v['weight-decay'],
          seed: v.seed,
          flip: v.flip,
          checkpointActivations: v['checkpoint-activations'],
          factorization: {
            arStepDecay: v.decay,
            fixedArSteps: v['fixed-ar-steps'],
            arWeightSchedule: v['ar-weights'],
            maxArWeight: v['max-ar-weight'],
            classDropoutProb: v['label-dropout'],
          },
        });
    const c = trainer.config;
    console.log(
      `training on ${ds.name} (${ds.count} images): ${countParameters(c.model).toLocaleString('en')} params, ${numPatches(c.model)} tokens, batch ${c.batchSize}, from step ${trainer.step} for ${v.steps} steps or ${v.minutes} min -> ${out}`,
    );
    fs.mkdirSync(out, { recursive: true });
    const stop = stopOnSigint();
    let summary;
    try {
      summary = await trainer.run({
        steps: v.steps,
        maxSeconds: v.minutes * 60,
        signal: stop.signal,
        logEvery: v['log-every'],
        checkpointEvery: v['checkpoint-every'],
        checkpointPath: path.join(out, 'checkpoint.safetensors'),
        progress: v['no-progress'] ? false : process.stderr,
        callbacks: v['no-progress']
          ? {
              onLog: (e) =>
                console.log(
                  `step ${e.step}: loss ${e.loss.toFixed(4)}, MSE ${e.mse.toFixed(4)}, ${e.imagesPerSec.toFixed(0)} img/s`,
                ),
            }
          : {},
      });
    } finally {
      stop.release();
    }
    trainer.exportWeights(path.join(out, 'model.safetensors'));
    const t0 = Date.now();
    const labels = classLabels(ds.classNames.length, v['per-class']);
    const { cfg, seed } = v;
    const res = trainer.sample({
      labels,
      arSteps: v['ar-steps'],
      diffusionSteps: defaultRespacing('ddpm'),
      clipDenoised: true,
      cfgScale: cfg,
      seed,
    });
    const sampleSec = (Date.now() - t0) / 1000;
    const mc = c.model;
    savePng(
      path.join(out, 'samples.png'),
      imageGrid(res.images, labels.length, mc.latentChannels, mc.inputSize, mc.inputSize, {
        cols: v['per-class'],
        scale: 2,
      }),
    );
    const file = writeTrainingReport(out, {
      trainer,
      summary,
      backend: report.line,
      samples: 'samples.png',
      samplesCaption: `One row per class (${ds.classNames.join(', ')}); EMA weights, ${v['ar-steps']} AR step(s), 250 DDPM steps, ${cfg > 1 ? `guidance scale ${cfg}` : 'no guidance'}, seed ${seed}; ${sampleSec.toFixed(1)} s to sample.`,
      checkpoint: 'checkpoint.safetensors',
      weights: 'model.safetensors',
    });
    console.log(
      `done: ${trainer.step} steps in ${(trainer.elapsedSec / 60).toFixed(1)} min (stopped by ${summary.stoppedBy}), last loss ${summary.lastLoss.toFixed(4)}`,
    );
    console.log(`samples ${path.join(out, 'samples.png')}\nreport  ${file}`);
    trainer.dispose();
    return 0;
  },
});
