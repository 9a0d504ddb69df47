#!/usr/bin/env node
/**
 * `causalfusion` command line: train, sample, verify, bench, info. Every flag is validated; errors name the flag.
 */
import * as fs from 'fs';
import * as path from 'path';
import { BACKENDS, initBackend, parseBackendName } from '../backend';
import { DEFAULT_REFERENCE, formatVerifyTable, loadReference, verifyReference } from '../parity';
import { BENCH_DEFAULTS, BenchOptions, benchTrainStep } from '../../bench/train-step';
import { PRESETS, PresetName, makeConfig, numPatches, CausalFusionConfig } from '../model/config';
import { countParameters } from '../model/params';

import { ImageDataset, loadFashionMnist, loadMnist, toModelRange } from '../data/datasets';
import { EDIT_MODES, editImages, editMask, keepAllBut, keepToPixels } from '../sample/edit';
import { loadImageFolder } from '../data/folder';
import { Trainer } from '../train/trainer';
import { writeTrainingReport } from '../train/report';
import { exportWeights, loadModel } from '../io/checkpoint';
import { imageGrid, savePng } from '../io/images';
import { classLabels, sampleImages, SampleOptions } from '../sample/sampler';
import { UsageError, Values, int, intList, num, oneOf, parse, parseOrder, probability, usage } from './flags';
import { CausalDiffusionModel } from '../model/causalfusion';
import { Classifier } from '../eval/classifier';
import { scoreSamples } from '../eval/metrics';
import { buildGallery } from '../viz/gallery';
import { standalonePage } from '../viz/chart';
import { writeFileAtomic } from '../util/atomic-write';
import { ABLATIONS, CLAIMS_SETTINGS, runClaims, summarizeClaims } from '../eval/claims';
import { claimsMarkdown } from '../eval/claims-report';
import { QUICK_RECIPE } from '../train/recipes';

/** The model shipped in data/ (trained by the main job's recipe). */
export const SHIPPED_MODEL = path.resolve(__dirname, '..', '..', '..', '..', 'data', 'mnist-small.safetensors');

const HELP: Record<string, string> = {
  main: `causalfusion — Causal Diffusion Transformers (CausalFusion, arXiv 2412.12095) on TensorFlow.js

Usage: causalfusion <command> [options]

Commands:
  train    train a CausalFusion model (MNIST by default), write checkpoints, samples and a report
  sample   generate a grid of images from a checkpoint (any AR steps, order, sampler, CFG)
  edit     zero-shot inpainting / outpainting / half regeneration / class swap of dataset images
  eval     score a checkpoint's samples: Fréchet distance, conditional accuracy, memorisation (JSON)
  classifier  train the evaluator classifier of a dataset (what data/classifier-*.safetensors holds)
  charts   every interactive chart from the shipped model: offline gallery.html plus .svg / .png per chart
  claims   the paper's ablations in miniature (order, gamma, fixed S, loss weights): train, score, report
  export   write a checkpoint's weights alone (EMA by default), in float32 or float16
  verify   compare this install with a reference fixture of the official PyTorch code
  bench    time one training step (forward, backward, clip, AdamW, EMA)
  info     backend, presets and their sizes

Every command takes --backend auto|${BACKENDS.join('|')} (default: auto, or $CAUSALFUSION_BACKEND)
and --help.`,
  verify: `Usage: causalfusion verify [--reference FILE] [--backend NAME] [--json]

Loads a fixture of the official code's outputs (masks, AR weights, step law, schedule, one training
forward/backward, KV-cache inference with CFG; any model config; by default the project's copy in
toolkit/tests/fixtures/reference/), recomputes everything here and prints max
abs / rel errors per item. Exits 1 when anything is outside tolerance:
masks and AR weights exact; step law, schedule, respacing 1e-12; attention, noise prediction, MSE, loss 1e-4
relative; gradients 1e-3 relative (gradients whose true value is ~0 are skipped and marked); inference 1e-4.`,
  bench: `Usage: causalfusion bench [--json] [options]

Times the training step on the active backend and prints the median step time, peak memory and backend.
Options (defaults in brackets):
  --hidden N [${BENCH_DEFAULTS.hidden}]  --depth N [${BENCH_DEFAULTS.depth}]  --heads N [${BENCH_DEFAULTS.heads}]
  --image-size N [${BENCH_DEFAULTS.imageSize}]  --patch-size N [${BENCH_DEFAULTS.patchSize}]  --channels N [${BENCH_DEFAULTS.channels}]
  --cond-tokens N [${BENCH_DEFAULTS.condTokens}]  --classes N [${BENCH_DEFAULTS.classes}]  --batch N [${BENCH_DEFAULTS.batch}]
  --steps N [${BENCH_DEFAULTS.steps}] timed steps  --warmup N [${BENCH_DEFAULTS.warmup}] untimed steps first
  --checkpoint  recompute blocks in the backward pass (bounded memory, for large batches)
  --decay G [${BENCH_DEFAULTS.arStepDecay}] AR-step decay  --seed N [${BENCH_DEFAULTS.seed}]
  --json  one JSON line (with the AR-step splits used, for a PyTorch twin to replay)`,
  train: `Usage: causalfusion train [options]

Trains on a dataset with the official recipe (random order, AR steps from the truncated geometric law,
generalized causal mask, AR loss weights, AdamW + warm-up, clipping, EMA, label dropout), then writes into
--out: checkpoint.safetensors (resumable), model.safetensors (EMA weights), samples.png (one row per class),
report.md (+ loss.svg, ar-step-loss.svg, history.json). Ctrl-C stops after the current step and still saves.
Options (defaults in brackets):
  --dataset NAME [mnist]     mnist | fashion-mnist | folder:PATH (one sub-folder of PNGs per class)
  --channels 1|3 [1]         for folder datasets
  --preset NAME [${QUICK_RECIPE.preset}]   model preset (image size / channels / classes follow the dataset)
  --steps N [${QUICK_RECIPE.steps}]  --minutes M [${QUICK_RECIPE.minutes}] stop at whichever comes first
  --batch N [${QUICK_RECIPE.batch}]  --lr X [${QUICK_RECIPE.lr}]  --warmup N [${QUICK_RECIPE.warmup}]  --ema X [${QUICK_RECIPE.ema}]
  --prediction eps|v [${QUICK_RECIPE.prediction}]  --schedule linear|cosine [${QUICK_RECIPE.schedule}]   (the official model: eps + linear)
  --decay G [0.9] AR-step decay (1 = uniform)  --fixed-ar-steps S  train with exactly S AR steps
  --ar-weights linear|cosine [linear]  --max-ar-weight X [2]  --label-dropout P [0.1]
  --grad-clip X [1]  --weight-decay X [0]  --flip  random horizontal flips  --checkpoint-activations
  --seed N [0]  --out DIR [runs/<dataset>]  --resume FILE  continue a run from its checkpoint
  --log-every N [50]  --checkpoint-every N [250]
  --per-class N [8] samples per class in the final grid  --ar-steps S [1]  --cfg X [${QUICK_RECIPE.cfg}] guidance for them
  --no-progress  plain log lines instead of the progress bar`,
  sample: `Usage: causalfusion sample [options]

Generates one row per class from a checkpoint (ours, an official safetensors state_dict, or a PyTorch .pt).
Options (defaults in brackets):
  --checkpoint FILE [data/mnist-small.safetensors, the shipped model]
  --config PRESET   model preset for files without a config (official .pt / .safetensors)
  --weights ema|model [ema]
  --out FILE [samples.png]  --per-class N [8]  --classes LIST (e.g. 3,5,7) [all]
  --ar-steps S [1]  --step-sizes LIST (sum = L)  --order random|raster|block-raster|dilated [random]
  --steps N [250] diffusion steps per AR step (ddpm) or 'ddimN'  --sampler ddpm|ddim [ddpm]  --eta X [0]
  --cfg X [1] guidance scale  --cfg-interval LO,HI [0,1000]  --no-clip  do not clamp x0 to [-1, 1]
  --seed N [0]  --scale N [2] pixel upscaling of the grid  --json  print timings as JSON`,
  edit: `Usage: causalfusion edit [options]

Keeps part of each image as clean context and generates the rest (no retraining). Writes a grid with three
rows: the originals, the kept part (regenerated region grey), the edits.
Options (defaults in brackets):
  --checkpoint FILE [the shipped MNIST model]  --config PRESET  --weights ema|model [ema]
  --dataset mnist|fashion-mnist [mnist]  --images LIST  test-split images to edit [0,1,2,3,4,5,6,7]
  --mode inpaint|outpaint|top|bottom|left|right [inpaint]
  --tokens LIST  regenerate exactly these tokens (raster indices 0..L-1) instead of a --mode region
  --class K  generate every image as class K (class swap) [each image's own label]
  --ar-steps S [1]  --order random|raster|block-raster|dilated [random]  --steps N [250]
  --sampler ddpm|ddim [ddpm]  --cfg X [1]  --seed N [0]  --out FILE [edits.png]  --scale N [2]`,
  eval: `Usage: causalfusion eval [options]

Samples N images (N/10 per class) from a checkpoint and prints one JSON object: the Fréchet distance of their
classifier features to real test images and the real-vs-real value at the same N, the conditional accuracy
(overall and per class), the mean confidence, and the memorisation check (distance to the nearest training
image, against held-out real images).
Options (defaults in brackets):
  --checkpoint FILE [the shipped MNIST model]  --config PRESET  --weights ema|model [ema]
  --dataset mnist|fashion-mnist [mnist]  --classifier FILE [data/classifier-<dataset>.safetensors]
  --n N [1000]  --ar-steps S [1]  --order random|raster|block-raster|dilated [random]
  --steps N [100]  --sampler ddpm|ddim [ddpm]  --cfg X [1]  --seed N [0]`,
  classifier: `Usage: causalfusion classifier --dataset mnist|fashion-mnist [--epochs N] [--out FILE]

Trains the evaluator CNN on the dataset's training split, prints test accuracy and writes the weights
(default data/classifier-<dataset>.safetensors). Options: --epochs N [3] --batch N [128] --lr X [0.001] --seed N [0]`,
  claims: `Usage: causalfusion claims [options]

Trains one small MNIST model per ablation and seed with identical budgets (random vs raster order, gamma 1.0 /
0.9 / 0.8, fixed S_train 1 and 4, AR loss weights 1->1 vs 2->1), scores each with S_eval = 1, 2, 4, 8 (gpu-49:
also 16 and 49, in random and raster order; FD and conditional accuracy at the same N, real-vs-real floor beside
it) and measures held-out loss by S (Fig. 4a).
Finished runs are cached in --out, so an interrupted study resumes; several processes may share one --out
with different --seeds. Writes <out>/results.json; notebook 07 turns it into tables and charts.
Options (defaults in brackets):
  --setting full|gpu-49|reduced [full]  full: 16 tokens, ${CLAIMS_SETTINGS.full.steps} steps per run; gpu-49: 49 tokens,
      sampled in random and raster order at S_eval up to 49 (for a GPU); reduced: ${CLAIMS_SETTINGS.reduced.steps} steps, for CI
  --steps N  training steps per run [the setting's]; cached runs are reused only at the same N
  --out DIR [data/claims for full, data/claims-49 for gpu-49, runs/claims-reduced otherwise]
  --only LIST  ablation ids (${ABLATIONS.map((a) => a.id).join(', ')}) [all]
  --seeds LIST [full: 0,1,2; reduced: 0,1]`,
  charts: `Usage: causalfusion charts [--out DIR] [--checkpoint FILE] [--no-png]

Samples from a model with a recorder attached, traces a training batch and trains a few steps, then writes
every chart of the toolkit (mask, attention explorer, generation order, denoising grid, schedule,
trajectories, training curves, Fig. 4 breakdowns, AR-step statistics, sample grid) to DIR [runs/charts]:
gallery.html (interactive, offline: libraries inlined once) and NAME.svg / NAME.png (static) per chart.`,
  export: `Usage: causalfusion export --checkpoint FILE --out FILE [--weights ema|model] [--dtype f32|f16] [--config PRESET]

Writes the weights of a checkpoint (ours, an official safetensors state_dict or a PyTorch .pt) as a
weights-only safetensors file with the model config: what sample / eval / the notebooks load. --dtype f16
halves the file (how data/mnist-base.safetensors ships); sampling reads it back as float32.
Options (defaults in brackets): --weights ema|model [ema]  --dtype f32|f16 [f32]`,
  info: `Usage: causalfusion info [--backend NAME]

Prints the chosen backend and the model presets with token counts and parameter counts.`,
};

function backendName(v: Values) {
  return typeof v.backend === 'string' ? parseBackendName(v.backend) : undefined;
}

async function backendFrom(v: Values, quiet = false) {
  return initBackend({ backend: backendName(v), quiet });
}

async function cmdVerify(argv: string[]): Promise<number> {
  const v = parse(argv, { reference: { type: 'string' }, json: { type: 'boolean' } });
  if (v.help) return (console.log(HELP.verify), 0);
  backendName(v);
  const ref = loadReference(typeof v.reference === 'string' ? v.reference : DEFAULT_REFERENCE);
  const report = await backendFrom(v, !!v.json);
  const rows = verifyReference(ref);
  const failed = rows.filter((r) => !r.pass).length;
  if (v.json) console.log(JSON.stringify({ backend: report.chosen, failed, rows }));
  else console.log(formatVerifyTable(rows));
  return failed ? 1 : 0;
}

async function cmdBench(argv: string[]): Promise<number> {
  const names = [
    'hidden',
    'depth',
    'heads',
    'image-size',
    'patch-size',
    'channels',
    'cond-tokens',
    'classes',
    'batch',
    'steps',
    'warmup',
    'decay',
    'seed',
  ];
  const v = parse(argv, {
    ...Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])),
    json: { type: 'boolean' },
    checkpoint: { type: 'boolean' },
  });
  if (v.help) return (console.log(HELP.bench), 0);
  const s = (k: string) => v[k] as string | undefined;
  const d = BENCH_DEFAULTS;
  const opts: BenchOptions = {
    hidden: int('hidden', s('hidden'), d.hidden),
    depth: int('depth', s('depth'), d.depth),
    heads: int('heads', s('heads'), d.heads),
    imageSize: int('image-size', s('image-size'), d.imageSize),
    patchSize: int('patch-size', s('patch-size'), d.patchSize),
    channels: int('channels', s('channels'), d.channels),
    condTokens: int('cond-tokens', s('cond-tokens'), d.condTokens, 0),
    classes: int('classes', s('classes'), d.classes),
    batch: int('batch', s('batch'), d.batch),
    steps: int('steps', s('steps'), d.steps),
    warmup: int('warmup', s('warmup'), d.warmup, 0),
    checkpoint: !!v.checkpoint,
    arStepDecay: num('decay', s('decay'), d.arStepDecay),
    seed: int('seed', s('seed'), d.seed, 0),
  };
  // validate the shape before starting a backend, so a bad config fails fast with one message
  makeConfig(null, {
    inputSize: opts.imageSize,
    patchSize: opts.patchSize,
    latentChannels: opts.channels,
    hiddenSize: opts.hidden,
    depth: opts.depth,
    numHeads: opts.heads,
    numCondTokens: opts.condTokens,
    numClasses: opts.classes,
  });
  await backendFrom(v, !!v.json);
  const r = benchTrainStep(opts);
  if (v.json) {
    console.log(
      JSON.stringify({
        backend: r.backend,
        medianMs: r.medianMs,
        minMs: r.minMs,
        maxMs: r.maxMs,
        peakRssMb: r.peakRssMb,
        params: r.params,
        batch: r.batch,
        checkpoint: r.checkpoint,
        tensorsLeakedPerStep: r.tensorsLeakedPerStep,
        stepsMs: r.stepsMs,
        splits: r.splits,
        config: r.config,
      }),
    );
  } else {
    console.log(
      `backend ${r.backend}: ${r.params.toLocaleString()} params, batch ${r.batch}${r.checkpoint ? ', checkpointed' : ''}`,
    );
    console.log(
      `median step ${r.medianMs.toFixed(0)} ms (min ${r.minMs.toFixed(0)}, max ${r.maxMs.toFixed(0)}, ${r.stepsMs.length} steps), peak RSS ${r.peakRssMb.toFixed(0)} MB, leaked tensors/step ${r.tensorsLeakedPerStep}`,
    );
  }
  return 0;
}

async function cmdExport(argv: string[]): Promise<number> {
  const v = parse(
    argv,
    Object.fromEntries(
      ['checkpoint', 'out', 'weights', 'dtype', 'config'].map((n) => [n, { type: 'string' as const }]),
    ),
  );
  if (v.help) return (console.log(HELP.export), 0);
  const s = (k: string) => v[k] as string | undefined;
  const dst = s('out');
  if (!s('checkpoint') || !dst) throw new UsageError('export needs --checkpoint FILE and --out FILE');
  const { file, weights, config } = modelFlags(s);
  const dtype = oneOf('dtype', s('dtype'), ['f32', 'f16'] as const, 'f32');
  exportWeights(file, path.resolve(dst), { weights, dtype: dtype === 'f16' ? 'F16' : 'F32', config });
  console.log(`wrote ${dst} (${(fs.statSync(dst).size / 2 ** 20).toFixed(1)} MiB, ${dtype})`);
  return 0;
}

async function cmdInfo(argv: string[]): Promise<number> {
  const v = parse(argv, {});
  if (v.help) return (console.log(HELP.info), 0);
  const rep = await backendFrom(v, true);
  console.log(rep.line);
  for (const name of Object.keys(PRESETS) as (keyof typeof PRESETS)[]) {
    const c = makeConfig(name);
    console.log(
      `preset ${name.padEnd(16)} ${String(numPatches(c)).padStart(4)} tokens  ${(countParameters(c) / 1e6).toFixed(2).padStart(8)} M params  hidden ${c.hiddenSize} depth ${c.depth} heads ${c.numHeads}`,
    );
  }
  return 0;
}

function loadDataset(spec: string, channels: 1 | 3): ImageDataset {
  if (spec === 'mnist') return loadMnist('train');
  if (spec === 'fashion-mnist') return loadFashionMnist('train');
  if (spec.startsWith('folder:')) return loadImageFolder(spec.slice('folder:'.length), { channels });
  throw new UsageError(`--dataset must be mnist, fashion-mnist or folder:PATH, got "${spec}"`);
}

async function cmdTrain(argv: string[]): Promise<number> {
  const strings = [
    'prediction',
    'schedule',
    'dataset',
    'channels',
    'preset',
    'steps',
    'minutes',
    'batch',
    'lr',
    'warmup',
    'ema',
    'decay',
    'fixed-ar-steps',
    'ar-weights',
    'max-ar-weight',
    'label-dropout',
    'grad-clip',
    'weight-decay',
    'seed',
    'out',
    'resume',
    'log-every',
    'checkpoint-every',
    'per-class',
    'ar-steps',
    'cfg',
  ];
  const v = parse(argv, {
    ...Object.fromEntries(strings.map((n) => [n, { type: 'string' as const }])),
    flip: { type: 'boolean' },
    'checkpoint-activations': { type: 'boolean' },
    'no-progress': { type: 'boolean' },
  });
  if (v.help) return (console.log(HELP.train), 0);
  const s = (k: string) => v[k] as string | undefined;
  const Q = QUICK_RECIPE;
  const datasetName = s('dataset') ?? 'mnist';
  const channels = oneOf('channels', s('channels'), ['1', '3'], '1') === '3' ? 3 : 1;
  const preset = s('preset') ?? Q.preset;
  if (!(preset in PRESETS))
    throw new UsageError(`--preset must be one of ${Object.keys(PRESETS).join(', ')}, got "${preset}"`);
  const steps = int('steps', s('steps'), Q.steps);
  const minutes = num('minutes', s('minutes'), Q.minutes);
  if (!(minutes > 0)) throw new UsageError(`--minutes must be > 0, got "${s('minutes')}"`);
  const lr = num('lr', s('lr'), Q.lr);
  if (!(lr > 0)) throw new UsageError(`--lr must be > 0, got "${s('lr')}"`);
  const ema = num('ema', s('ema'), Q.ema);
  if (!(ema >= 0 && ema <= 1)) throw new UsageError(`--ema must be in [0, 1], got "${s('ema')}"`);
  const decay = num('decay', s('decay'), 0.9);
  if (!(decay > 0 && decay <= 1)) throw new UsageError(`--decay must be in (0, 1], got "${s('decay')}"`);
  const fixed = s('fixed-ar-steps') === undefined ? undefined : int('fixed-ar-steps', s('fixed-ar-steps'), 1);
  const arWeights = oneOf('ar-weights', s('ar-weights'), ['linear', 'cosine'], 'linear');
  const maxArWeight = num('max-ar-weight', s('max-ar-weight'), 2);
  const labelDropout = probability('label-dropout', s('label-dropout'), 0.1);
  const gradClip = num('grad-clip', s('grad-clip'), 1);
  if (!(gradClip > 0)) throw new UsageError(`--grad-clip must be > 0, got "${s('grad-clip')}"`);
  const weightDecay = num('weight-decay', s('weight-decay'), 0);
  if (!(weightDecay >= 0)) throw new UsageError(`--weight-decay must be >= 0, got "${s('weight-decay')}"`);
  const batch = int('batch', s('batch'), Q.batch);
  const warmup = int('warmup', s('warmup'), Q.warmup, 0);
  const seed = int('seed', s('seed'), 0, 0);
  const logEvery = int('log-every', s('log-every'), 50);
  const ckEvery = int('checkpoint-every', s('checkpoint-every'), 250);
  const perClass = int('per-class', s('per-class'), 8);
  const arSteps = int('ar-steps', s('ar-steps'), 1);
  const cfgScale = num('cfg', s('cfg'), Q.cfg);
  if (cfgScale < 1) throw new UsageError(`--cfg must be >= 1, got "${s('cfg')}"`);
  const out = path.resolve(
    s('out') ?? path.join('runs', datasetName.replace(/^folder:/, '').replace(/[^A-Za-z0-9_-]+/g, '_')),
  );
  const resume = s('resume');
  if (resume !== undefined && !fs.existsSync(resume)) throw new UsageError(`--resume: ${resume} not found`);

  const ds = loadDataset(datasetName, channels);
  const report = await backendFrom(v, true);
  console.log(report.line);
  const trainer = resume
    ? Trainer.resume(resume, ds)
    : new Trainer(ds, {
        model: makeConfig(preset as PresetName, {
          inputSize: ds.height,
          latentChannels: ds.channels,
          numClasses: ds.classNames.length,
          classDropoutProb: labelDropout > 0 ? labelDropout : 0.1,
          noiseSchedule: oneOf('schedule', s('schedule'), ['linear', 'cosine'] as const, Q.schedule),
          prediction: oneOf('prediction', s('prediction'), ['eps', 'v'] as const, Q.prediction),
        }),
        batchSize: batch,
        lr,
        warmupSteps: warmup,
        emaDecay: ema,
        gradClip,
        weightDecay,
        seed,
        flip: !!v.flip,
        checkpointActivations: !!v['checkpoint-activations'],
        factorization: {
          arStepDecay: decay,
          fixedArSteps: fixed,
          arWeightSchedule: arWeights,
          maxArWeight,
          classDropoutProb: labelDropout,
        },
      });
  const c = trainer.config;
  console.log(
    `training on ${ds.name} (${ds.count} images): ${countParameters(c.model).toLocaleString('en')} params, ${numPatches(c.model)} tokens, batch ${c.batchSize}, from step ${trainer.step} for ${steps} steps or ${minutes} min -> ${out}`,
  );
  fs.mkdirSync(out, { recursive: true });
  const ac = new AbortController();
  const onSigint = () => {
    if (ac.signal.aborted) process.exit(130);
    console.error('\nstopping after this step (Ctrl-C again to quit without saving)');
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  const ckpt = path.join(out, 'checkpoint.safetensors');
  let summary;
  try {
    summary = await trainer.run({
      steps,
      maxSeconds: minutes * 60,
      signal: ac.signal,
      logEvery,
      checkpointEvery: ckEvery,
      checkpointPath: ckpt,
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
    process.off('SIGINT', onSigint);
  }
  trainer.exportWeights(path.join(out, 'model.safetensors'));
  const t0 = Date.now();
  const labels = classLabels(ds.classNames.length, perClass);
  const res = trainer.sample({ labels, arSteps, diffusionSteps: '250', clipDenoised: true, cfgScale, seed });
  const sampleSec = (Date.now() - t0) / 1000;
  savePng(
    path.join(out, 'samples.png'),
    imageGrid(res.images, labels.length, c.model.latentChannels, c.model.inputSize, c.model.inputSize, {
      cols: perClass,
      scale: 2,
    }),
  );
  const file = writeTrainingReport(out, {
    trainer,
    summary,
    backend: report.line,
    samples: 'samples.png',
    samplesCaption: `One row per class (${ds.classNames.join(', ')}); EMA weights, ${arSteps} AR step(s), 250 DDPM steps, ${cfgScale > 1 ? `guidance scale ${cfgScale}` : 'no guidance'}, seed ${seed}; ${sampleSec.toFixed(1)} s to sample.`,
    checkpoint: 'checkpoint.safetensors',
    weights: 'model.safetensors',
  });
  console.log(
    `done: ${trainer.step} steps in ${(trainer.elapsedSec / 60).toFixed(1)} min (stopped by ${summary.stoppedBy}), last loss ${summary.lastLoss.toFixed(4)}`,
  );
  console.log(`samples ${path.join(out, 'samples.png')}\nreport  ${file}`);
  trainer.dispose();
  return 0;
}

/** --checkpoint / --config / --weights: validated now, loaded later (after the backend starts). */
function modelFlags(s: (k: string) => string | undefined): {
  file: string;
  weights: 'ema' | 'model';
  config: CausalFusionConfig | undefined;
  load: () => CausalDiffusionModel;
} {
  const file = s('checkpoint') ?? SHIPPED_MODEL;
  if (!fs.existsSync(file)) throw new UsageError(`--checkpoint: ${file} not found`);
  const preset = s('config');
  if (preset !== undefined && !(preset in PRESETS))
    throw new UsageError(`--config must be one of ${Object.keys(PRESETS).join(', ')}, got "${preset}"`);
  const weights = oneOf('weights', s('weights'), ['ema', 'model'] as const, 'ema');
  const config = preset ? makeConfig(preset as PresetName) : undefined;
  return { file, weights, config, load: () => loadModel(file, { weights, config }) };
}

/** --sampler / --steps / --cfg, shared by sample, edit and eval. */
function samplerFlags(
  s: (k: string) => string | undefined,
  ddpmSteps: string,
): { sampler: 'ddpm' | 'ddim'; steps: string; cfg: number } {
  const sampler = oneOf('sampler', s('sampler'), ['ddpm', 'ddim'] as const, 'ddpm');
  const steps = s('steps') ?? (sampler === 'ddim' ? 'ddim50' : ddpmSteps);
  if (!/^(ddim)?\d+$/.test(steps)) throw new UsageError(`--steps must be a number or ddimN, got "${steps}"`);
  const cfg = num('cfg', s('cfg'), 1);
  if (cfg < 1) throw new UsageError(`--cfg must be >= 1, got "${s('cfg')}"`);
  return { sampler, steps, cfg };
}

async function cmdSample(argv: string[]): Promise<number> {
  const strings = [
    'checkpoint',
    'config',
    'weights',
    'out',
    'per-class',
    'classes',
    'ar-steps',
    'step-sizes',
    'order',
    'steps',
    'sampler',
    'eta',
    'cfg',
    'cfg-interval',
    'seed',
    'scale',
  ];
  const v = parse(argv, {
    ...Object.fromEntries(strings.map((n) => [n, { type: 'string' as const }])),
    'no-clip': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (v.help) return (console.log(HELP.sample), 0);
  const s = (k: string) => v[k] as string | undefined;
  const { load } = modelFlags(s);
  const { sampler, steps, cfg } = samplerFlags(s, '250');
  const interval = intList('cfg-interval', s('cfg-interval'));
  if (interval && interval.length !== 2) throw new UsageError('--cfg-interval takes two numbers: LO,HI');
  const perClass = int('per-class', s('per-class'), 8);
  const eta = num('eta', s('eta'), 0);
  const seed = int('seed', s('seed'), 0, 0);
  const scale = int('scale', s('scale'), 2);
  const out = s('out') ?? 'samples.png';
  await backendFrom(v, !!v.json);
  const model = load();
  const mc = model.config;
  const classes = intList('classes', s('classes')) ?? Array.from({ length: Math.min(mc.numClasses, 10) }, (_, i) => i);
  const labels = classes.flatMap((k) => new Array<number>(perClass).fill(k));
  const opts: SampleOptions = {
    labels,
    arSteps: s('ar-steps') === undefined ? undefined : int('ar-steps', s('ar-steps'), 1),
    stepSizes: intList('step-sizes', s('step-sizes')),
    order: parseOrder(s('order')),
    diffusionSteps: steps,
    sampler,
    eta,
    cfgScale: cfg,
    cfgInterval: interval as [number, number] | undefined,
    clipDenoised: !v['no-clip'],
    seed,
  };
  const t0 = Date.now();
  const r = sampleImages(model, opts);
  const sec = (Date.now() - t0) / 1000;
  savePng(
    out,
    imageGrid(r.images, labels.length, mc.latentChannels, mc.inputSize, mc.inputSize, { cols: perClass, scale }),
  );
  if (v.json)
    console.log(
      JSON.stringify({
        out,
        images: labels.length,
        seconds: sec,
        stepSizes: r.stepSizes,
        diffusionSteps: r.timesteps.length,
      }),
    );
  else
    console.log(
      `${labels.length} images (${r.stepSizes.length} AR steps x ${r.timesteps.length} ${sampler} steps) in ${sec.toFixed(1)} s -> ${out}`,
    );
  model.dispose();
  return 0;
}

async function cmdEdit(argv: string[]): Promise<number> {
  const strings = [
    'checkpoint',
    'config',
    'weights',
    'dataset',
    'images',
    'tokens',
    'mode',
    'class',
    'ar-steps',
    'order',
    'steps',
    'sampler',
    'cfg',
    'seed',
    'out',
    'scale',
  ];
  const v = parse(argv, Object.fromEntries(strings.map((n) => [n, { type: 'string' as const }])));
  if (v.help) return (console.log(HELP.edit), 0);
  const s = (k: string) => v[k] as string | undefined;
  const { load } = modelFlags(s);
  const mode = oneOf('mode', s('mode'), EDIT_MODES, 'inpaint');
  const dsName = oneOf('dataset', s('dataset'), ['mnist', 'fashion-mnist'] as const, 'mnist');
  const indices = intList('images', s('images')) ?? [0, 1, 2, 3, 4, 5, 6, 7];
  const tokens = intList('tokens', s('tokens'));
  if (tokens && s('mode') !== undefined)
    throw new UsageError('--tokens and --mode both choose the region to regenerate: give one');
  const { sampler, steps, cfg } = samplerFlags(s, '250');
  const out = s('out') ?? 'edits.png';
  const scale = int('scale', s('scale'), 2);
  await backendFrom(v, true);
  const model = load();
  const mc = model.config;
  const ds = dsName === 'mnist' ? loadMnist('test') : loadFashionMnist('test');
  if (ds.channels !== mc.latentChannels || ds.height !== mc.inputSize)
    throw new UsageError(
      `${ds.name} images (${ds.channels}x${ds.height}x${ds.width}) do not fit this model (${mc.latentChannels}x${mc.inputSize}x${mc.inputSize})`,
    );
  const bad = indices.find((i) => i >= ds.count);
  if (bad !== undefined)
    throw new UsageError(`--images: ${bad} is outside the ${ds.count} test images (0..${ds.count - 1})`);
  const cls = s('class') === undefined ? undefined : int('class', s('class'), 0, 0);
  if (cls !== undefined && cls >= mc.numClasses) throw new UsageError(`--class must be < ${mc.numClasses}, got ${cls}`);
  const images = toModelRange(ds, indices);
  const labels = indices.map((i) => cls ?? ds.labels[i]);
  const grid = mc.inputSize / mc.patchSize;
  const keep = tokens ? usage(() => keepAllBut(tokens, grid * grid), 'tokens') : editMask(mode, grid);
  const t0 = Date.now();
  const r = editImages(model, images, labels, keep, {
    arSteps: s('ar-steps') === undefined ? undefined : int('ar-steps', s('ar-steps'), 1),
    order: parseOrder(s('order')),
    diffusionSteps: steps,
    sampler,
    cfgScale: cfg,
    clipDenoised: true,
    seed: int('seed', s('seed'), 0, 0),
  });
  const sec = (Date.now() - t0) / 1000;
  const pix = keepToPixels(keep, grid, mc.patchSize);
  const per = mc.latentChannels * mc.inputSize * mc.inputSize;
  const masked = images.map((x, i) => (pix[(i % per) % (mc.inputSize * mc.inputSize)] ? x : 0));
  const all = new Float32Array(3 * images.length);
  all.set(images, 0);
  all.set(masked, images.length);
  all.set(r.images, 2 * images.length);
  savePng(
    out,
    imageGrid(all, 3 * indices.length, mc.latentChannels, mc.inputSize, mc.inputSize, { cols: indices.length, scale }),
  );
  console.log(
    `${tokens ? `${tokens.length} regenerated tokens` : mode} of ${indices.length} ${ds.name} images (${cls === undefined ? 'own labels' : `as class ${cls}`}) in ${sec.toFixed(1)} s -> ${out}`,
  );
  model.dispose();
  return 0;
}

const DATA_DIR = path.dirname(SHIPPED_MODEL);

function testAndTrain(name: 'mnist' | 'fashion-mnist'): { test: ImageDataset; train: ImageDataset } {
  return name === 'mnist'
    ? { test: loadMnist('test'), train: loadMnist('train') }
    : { test: loadFashionMnist('test'), train: loadFashionMnist('train') };
}

async function cmdClassifier(argv: string[]): Promise<number> {
  const v = parse(
    argv,
    Object.fromEntries(
      ['dataset', 'epochs', 'batch', 'lr', 'seed', 'out'].map((n) => [n, { type: 'string' as const }]),
    ),
  );
  if (v.help) return (console.log(HELP.classifier), 0);
  const s = (k: string) => v[k] as string | undefined;
  const name = oneOf('dataset', s('dataset'), ['mnist', 'fashion-mnist'] as const, 'mnist');
  const epochs = int('epochs', s('epochs'), 3);
  const batchSize = int('batch', s('batch'), 128);
  const lr = num('lr', s('lr'), 1e-3);
  if (!(lr > 0)) throw new UsageError(`--lr must be > 0, got "${s('lr')}"`);
  const seed = int('seed', s('seed'), 0, 0);
  const out = s('out') ?? path.join(DATA_DIR, `classifier-${name}.safetensors`);
  const rep = await backendFrom(v, true);
  console.log(rep.line);
  const { test, train } = testAndTrain(name);
  const clf = new Classifier(
    {
      size: train.height,
      channels: train.channels,
      classes: train.classNames.length,
      dataset: train.name.replace(/ train$/, ''),
    },
    undefined,
    seed,
  );
  const t0 = Date.now();
  clf.train(train, {
    epochs,
    batchSize,
    lr,
    seed,
    onEpoch: (e, loss) =>
      console.log(`epoch ${e}: loss ${loss.toFixed(4)} (${((Date.now() - t0) / 1000).toFixed(0)} s)`),
  });
  const acc = clf.accuracy(test);
  const sec = (Date.now() - t0) / 1000;
  clf.save(out, { testAccuracy: acc, epochs, batchSize, lr, seed, trainSeconds: sec });
  console.log(`test accuracy ${(100 * acc).toFixed(2)}% after ${epochs} epochs (${sec.toFixed(0)} s) -> ${out}`);
  clf.dispose();
  return 0;
}

async function cmdEval(argv: string[]): Promise<number> {
  const strings = [
    'checkpoint',
    'config',
    'weights',
    'dataset',
    'classifier',
    'n',
    'ar-steps',
    'order',
    'steps',
    'sampler',
    'cfg',
    'seed',
  ];
  const v = parse(argv, Object.fromEntries(strings.map((n) => [n, { type: 'string' as const }])));
  if (v.help) return (console.log(HELP.eval), 0);
  const s = (k: string) => v[k] as string | undefined;
  const { file, load } = modelFlags(s);
  const name = oneOf('dataset', s('dataset'), ['mnist', 'fashion-mnist'] as const, 'mnist');
  const clfFile = s('classifier') ?? path.join(DATA_DIR, `classifier-${name}.safetensors`);
  if (!fs.existsSync(clfFile))
    throw new UsageError(
      `--classifier: ${clfFile} not found (train one with "causalfusion classifier --dataset ${name}")`,
    );
  const n = int('n', s('n'), 1000, 2);
  const { sampler, steps, cfg } = samplerFlags(s, '100');
  const seed = int('seed', s('seed'), 0, 0);
  await backendFrom(v, true);
  const model = load();
  const clf = Classifier.load(clfFile);
  const { test, train } = testAndTrain(name);
  const mc = model.config;
  if (mc.inputSize !== test.height || mc.latentChannels !== test.channels)
    throw new UsageError(
      `the model makes ${mc.latentChannels}x${mc.inputSize}x${mc.inputSize} images, ${test.name} has ${test.channels}x${test.height}x${test.width}`,
    );
  const labels = Array.from({ length: n }, (_, i) => i % test.classNames.length);
  const t0 = Date.now();
  const images = new Float32Array(n * mc.latentChannels * mc.inputSize * mc.inputSize);
  const chunk = 250;
  for (let k = 0; k < n; k += chunk) {
    const part = labels.slice(k, k + chunk);
    const r = sampleImages(model, {
      labels: part,
      arSteps: s('ar-steps') === undefined ? undefined : int('ar-steps', s('ar-steps'), 1),
      order: parseOrder(s('order')),
      diffusionSteps: steps,
      sampler,
      cfgScale: cfg,
      clipDenoised: true,
      seed: seed + k,
    });
    images.set(r.images, k * mc.latentChannels * mc.inputSize * mc.inputSize);
  }
  const sampleSeconds = (Date.now() - t0) / 1000;
  const m = scoreSamples(clf, images, labels, test, train, seed);
  console.log(JSON.stringify({ checkpoint: file, dataset: test.name, sampler, steps, cfg, sampleSeconds, ...m }));
  model.dispose();
  clf.dispose();
  return 0;
}

async function cmdCharts(argv: string[]): Promise<number> {
  const v = parse(argv, {
    out: { type: 'string' },
    checkpoint: { type: 'string' },
    config: { type: 'string' },
    weights: { type: 'string' },
    'no-png': { type: 'boolean' },
  });
  if (v.help) return (console.log(HELP.charts), 0);
  const s = (k: string) => v[k] as string | undefined;
  const { load } = modelFlags(s);
  const out = path.resolve(s('out') ?? path.join('runs', 'charts'));
  await backendFrom(v, true);
  const model = load();
  const t0 = Date.now();
  const gallery = await buildGallery(model, loadMnist('test'));
  console.log(`built ${Object.keys(gallery).length} charts in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  for (const [name, chart] of Object.entries(gallery)) {
    chart.save(path.join(out, `${name}.svg`));
    if (!v['no-png']) chart.save(path.join(out, `${name}.png`));
  }
  const page = path.join(out, 'gallery.html');
  writeFileAtomic(page, Buffer.from(standalonePage('CausalFusion Lab chart gallery', Object.values(gallery))));
  console.log(`gallery ${page}`);
  model.dispose();
  return 0;
}

async function cmdClaims(argv: string[]): Promise<number> {
  const v = parse(
    argv,
    Object.fromEntries(['setting', 'out', 'only', 'seeds', 'steps'].map((n) => [n, { type: 'string' as const }])),
  );
  if (v.help) return (console.log(HELP.claims), 0);
  const s = (k: string) => v[k] as string | undefined;
  const base = CLAIMS_SETTINGS[oneOf('setting', s('setting'), ['full', 'gpu-49', 'reduced'] as const, 'full')];
  const setting = { ...base, steps: int('steps', s('steps'), base.steps, 1) };
  const committed: Record<string, string> = { full: 'claims', 'gpu-49': 'claims-49' };
  const out = path.resolve(
    s('out') ??
      (committed[setting.name]
        ? path.join(DATA_DIR, committed[setting.name])
        : path.join('runs', `claims-${setting.name}`)),
  );
  const seeds = s('seeds')
    ?.split(',')
    .map((x) => int('seeds', x, 0, 0));
  const only = s('only')?.split(',');
  const report = await backendFrom(v, true);
  console.log(report.line);
  const { test, train } = testAndTrain('mnist');
  const classifier = Classifier.load(path.join(DATA_DIR, 'classifier-mnist.safetensors'));
  const r = runClaims(setting, { train, test, classifier, log: (l) => console.log(l) }, { dir: out, only, seeds });
  for (const row of summarizeClaims(r)) {
    const cells = Object.entries(row.fd).map(([S, f]) => `S=${S} ${f.mean.toFixed(1)}±${f.halfRange.toFixed(1)}`);
    console.log(`${row.ablation.id.padEnd(14)} FD ${cells.join('  ')}`);
  }
  // the report needs every variant; with fewer seeds than planned it says so and calls its verdicts provisional
  if (!only) writeFileAtomic(path.join(out, 'report.md'), Buffer.from(claimsMarkdown(r)));
  console.log(`results ${path.join(out, 'results.json')}${only ? '' : `, report ${path.join(out, 'report.md')}`}`);
  classifier.dispose();
  return 0;
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  train: cmdTrain,
  sample: cmdSample,
  edit: cmdEdit,
  eval: cmdEval,
  classifier: cmdClassifier,
  claims: cmdClaims,
  charts: cmdCharts,
  export: cmdExport,
  verify: cmdVerify,
  bench: cmdBench,
  info: cmdInfo,
};

/** The error's message, with what to do about it where the raw message says nothing useful. */
export function explainError(e: Error): string {
  // emscripten's out-of-memory abort in the wasm backend: the heap is capped at 4 GiB
  if (/^Aborted\(/.test(e.message))
    return `${e.message}: the wasm heap (4 GiB) ran out of memory; use a smaller --batch, or --checkpoint (bench) / --checkpoint-activations (train) to recompute activations`;
  if (/the GPU ran out of memory|GPUOutOfMemoryError|Out of memory/i.test(e.message))
    return `${e.message}: use a smaller --batch, or --checkpoint-activations (train) / --checkpoint (bench) to recompute activations instead of keeping them`;
  return e.message;
}

/** Runs the CLI on `argv` (without node and script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(HELP.main);
    return cmd ? 0 : 2;
  }
  const run = COMMANDS[cmd];
  try {
    if (!run) throw new UsageError(`unknown command "${cmd}" (use ${Object.keys(COMMANDS).join(', ')})`);
    return await run(rest);
  } catch (e) {
    console.error(`causalfusion ${cmd}: ${explainError(e as Error)}`);
    if (e instanceof UsageError)
      console.error(`Run "causalfusion ${cmd in COMMANDS ? `${cmd} ` : ''}--help" for usage.`);
    return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
