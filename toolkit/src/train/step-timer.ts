/**
 * Times the training step (forward, backward, clip, AdamW, EMA) for a model shape on the active backend.
 * The AR-step splits are drawn up front from the gamma law and returned, so a PyTorch twin can replay the
 * exact same sequence lengths. `causalfusion bench` and `npm run bench` both use it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backendReport } from '../backend';
import {
  activeWebgpu,
  KernelTime,
  kernelTimes,
  webgpuPeakMb,
  webgpuPoolCounters,
  wgslDispatches,
} from '../backend/wgsl/runner';
import type { PoolCounters } from '../backend/webgpu-pool';
import { median } from '../util/median';
import { Rng } from '../rng';
import { createDiffusion } from '../diffusion';
import { splitIntegerExpDecay } from '../factorization/steps';
import { CausalFusionConfig, makeConfig } from '../model/config';
import { CausalDiffusionModel } from '../model/causalfusion';
import { countParameters } from '../model/params';
import { FACTORIZATION_DEFAULTS, sampleBatch, STEP_DEFAULTS, trainStep } from './step';
import { OFFICIAL_RECIPE } from './recipes';
import { AdamW, Ema } from './optim';

export interface BenchOptions {
  hidden: number;
  depth: number;
  heads: number;
  imageSize: number;
  patchSize: number;
  channels: number;
  condTokens: number;
  classes: number;
  batch: number;
  /** Timed steps (after `warmup` untimed ones). */
  steps: number;
  warmup: number;
  checkpoint: boolean;
  arStepDecay: number;
  seed: number;
}

export const BENCH_DEFAULTS: BenchOptions = {
  hidden: 256,
  depth: 4,
  heads: 4,
  imageSize: 8,
  patchSize: 1,
  channels: 48,
  condTokens: 4,
  classes: 10,
  batch: 16,
  steps: 10,
  warmup: 2,
  checkpoint: false,
  arStepDecay: 0.9,
  seed: 0,
};

export interface BenchResult {
  backend: string;
  config: CausalFusionConfig;
  params: number;
  batch: number;
  checkpoint: boolean;
  medianMs: number;
  minMs: number;
  maxMs: number;
  stepsMs: number[];
  /** Peak resident memory of the process (includes the wasm heap). */
  peakRssMb: number;
  /** The most device memory the webgpu buffer pool held at once (null on other backends). */
  peakGpuMb: number | null;
  /** Tensors alive after the last step minus after the first: must be 0. */
  tensorsLeakedPerStep: number;
  /**
   * Median host ms of a step up to its first read-back (the loss): the work of tfjs and of this toolkit in
   * JavaScript; on webgpu the GPU may still be busy after it, elsewhere it is the whole step.
   */
  hostMsPerStep: number;
  /** GPU dispatches of the last step (tfjs's programs and this toolkit's WGSL kernels); null off webgpu. */
  dispatchesPerStep: number | null;
  /**
   * The webgpu buffer pool over the timed steps: storage buffers it created per step (its misses: each a driver
   * allocation and a first-use clear), their MiB per step, and how many times it was trimmed; null off webgpu.
   */
  pool: { buffersCreatedPerStep: number; mbCreatedPerStep: number; trims: number } | null;
  /** AR-step sizes used by each step, warm-up first. */
  splits: number[][];
}

/** A bench's model, optimizer, EMA and data, its AR splits drawn up front (warm-up first), and one step. */
function benchRig(o: BenchOptions) {
  const config = makeConfig(null, {
    inputSize: o.imageSize,
    patchSize: o.patchSize,
    latentChannels: o.channels,
    hiddenSize: o.hidden,
    depth: o.depth,
    numHeads: o.heads,
    numCondTokens: o.condTokens,
    numClasses: o.classes,
    trainablePos: true,
  });
  const rng = new Rng(o.seed);
  const model = new CausalDiffusionModel(config, { seed: o.seed });
  const diffusion = createDiffusion('');
  const opt = new AdamW({ lr: OFFICIAL_RECIPE.lr });
  const ema = new Ema(model.params);
  const splitRng = rng.fork('splits');
  const splits = Array.from(
    { length: o.warmup + o.steps },
    () => splitIntegerExpDecay(model.numPatches, o.arStepDecay, splitRng).splitSizes,
  );
  const x = rng.normalArray(o.batch * o.channels * o.imageSize * o.imageSize);
  const y = Array.from({ length: o.batch }, (_, i) => i % o.classes);
  return {
    config,
    splits,
    /** Samples the batch of step `s` (host work), then returns the training step to time. */
    prepare(s: number): () => void {
      const batch = sampleBatch(model, diffusion, x, y, rng, { ...FACTORIZATION_DEFAULTS, splitSizes: splits[s] });
      return () => void trainStep(model, opt, ema, batch, { ...STEP_DEFAULTS, checkpoint: o.checkpoint });
    },
    dispose(): void {
      opt.dispose();
      ema.dispose();
      model.dispose();
    },
  };
}

export function benchTrainStep(opts: Partial<BenchOptions> = {}): BenchResult {
  const o = { ...BENCH_DEFAULTS, ...opts };
  if (!(o.steps >= 1)) throw new Error(`--steps must be >= 1, got ${o.steps}`);
  const rig = benchRig(o);
  const { config, splits } = rig;
  const total = o.warmup + o.steps;
  const times: number[] = [];
  const hostTimes: number[] = [];
  let dispatches: number | null = null;
  let tensorsAfterFirst = 0;
  let poolBefore: PoolCounters | null = null; // at the first timed step
  try {
    for (let s = 0; s < total; s++) {
      if (s === o.warmup) poolBefore = webgpuPoolCounters();
      const run = rig.prepare(s);
      const start = performance.now();
      const step = watchStep(run);
      const ms = performance.now() - start;
      if (s === 0) tensorsAfterFirst = tf.memory().numTensors;
      if (s >= o.warmup) {
        times.push(ms);
        hostTimes.push(step.firstReadAt - start);
        dispatches = step.dispatches;
      }
    }
    const leaked = (tf.memory().numTensors - tensorsAfterFirst) / Math.max(1, total - 1);
    const poolAfter = webgpuPoolCounters();
    return {
      backend: backendReport()?.chosen ?? tf.getBackend(),
      config,
      params: countParameters(config),
      batch: o.batch,
      checkpoint: o.checkpoint,
      medianMs: median(times),
      minMs: Math.min(...times),
      maxMs: Math.max(...times),
      stepsMs: times,
      peakRssMb: process.resourceUsage().maxRSS / 1024,
      peakGpuMb: webgpuPeakMb(),
      tensorsLeakedPerStep: leaked,
      hostMsPerStep: median(hostTimes),
      dispatchesPerStep: dispatches,
      pool:
        poolBefore && poolAfter
          ? {
              buffersCreatedPerStep: (poolAfter.created - poolBefore.created) / o.steps,
              mbCreatedPerStep: (poolAfter.createdBytes - poolBefore.createdBytes) / 2 ** 20 / o.steps,
              trims: poolAfter.trims - poolBefore.trims,
            }
          : null,
      splits,
    };
  } finally {
    rig.dispose();
  }
}

/** The GPU's own time of a training step, in all and by kernel (tfjs's programs and this toolkit's WGSL). */
export interface StepKernels {
  gpuMs: number;
  /** By kernel name, most time first: dispatches in the step and their summed ms. */
  kernels: KernelTime[];
}

/** The `top` kernels of a profiled step as lines of a table: name, dispatches, ms, share of the step. */
export function kernelTable(p: StepKernels, top: number): string[] {
  return p.kernels
    .slice(0, top)
    .map(
      (k) =>
        `  ${k.name.padEnd(36)} ${String(k.dispatches).padStart(5)} dispatches ${k.ms.toFixed(2).padStart(9)} ms ${((100 * k.ms) / p.gpuMs).toFixed(1).padStart(5)} %`,
    );
}

/**
 * Runs the bench's warm-up steps, then times the next step on the GPU, each dispatch between timestamp queries
 * in a pass of its own (slower than an untimed step: use it for shares, `benchTrainStep` for step times). Null
 * off webgpu, or where the adapter has no timestamp queries.
 */
export async function profileTrainStep(opts: Partial<BenchOptions> = {}): Promise<StepKernels | null> {
  const o = { ...BENCH_DEFAULTS, ...opts, steps: 1 };
  const gpu = activeWebgpu();
  if (!gpu?.supportTimestampQuery) return null;
  const rig = benchRig(o);
  try {
    for (let s = 0; s < o.warmup; s++) rig.prepare(s)();
    const run = rig.prepare(o.warmup);
    const info = await tf.time(run);
    return { gpuMs: info.kernelMs as number, kernels: kernelTimes(info) };
  } finally {
    rig.dispose();
  }
}

/**
 * Runs a step, noting when it first reads a tensor back (the backend's `readSync` / `read`) and, on webgpu, how
 * many GPU programs it dispatched (tfjs's `recordAndSubmit` plus this toolkit's WGSL kernels).
 */
function watchStep(f: () => void): { firstReadAt: number; dispatches: number | null } {
  const backend = tf.backend() as unknown as Record<string, (...args: unknown[]) => unknown>;
  const gpu = activeWebgpu() !== null;
  let firstReadAt = 0;
  let programs = 0;
  const patched = ['readSync', 'read', ...(gpu ? ['recordAndSubmit'] : [])].map((name) => {
    const original = backend[name];
    backend[name] = (...args: unknown[]) => {
      if (name === 'recordAndSubmit') programs++;
      else firstReadAt ||= performance.now();
      return original.apply(backend, args);
    };
    return [name, original] as const;
  });
  const ours = wgslDispatches();
  try {
    f();
  } finally {
    for (const [name, original] of patched) backend[name] = original;
  }
  return { firstReadAt: firstReadAt || performance.now(), dispatches: gpu ? programs + wgslDispatches() - ours : null };
}
