/**
 * The AR x diffusion sampler of CausalFusion (paper §3, official `sample.py` generalised to S > 1 AR steps).
 *
 * The condition tokens go into a KV cache; then for each AR step the step's tokens start from pure noise and
 * run a full reverse diffusion chain against the cache; the finished clean tokens are embedded and appended to
 * the cache so later steps see them. With classifier-free guidance the cache holds [cond; null] rows and every
 * clean block goes to both halves. S = 1 is the official pure-diffusion sampler; S = L is token-by-token AR.
 * Editing puts known tokens into the cache first (as clean context) and generates only the rest.
 */
import * as tf from '@tensorflow/tfjs-core';
import { counterNormals, Rng } from '../rng';
import { createDiffusion, GaussianDiffusion, NoiseSchedule, Prediction } from '../diffusion/gaussian';
import { fromSizes, splitEqual, Split } from '../factorization/steps';
import { makeOrder, OrderKind, validateOrder } from '../factorization/orders';
import { CausalDiffusionModel, disposeCache, ForwardHooks } from '../model/causalfusion';
import { gatherTokens, patchify, unpatchify } from '../model/patchify';
import { freezeWeights } from '../model/ops';
import { FusedInference, fusedInferenceUnavailable } from '../model/gpu-inference';

/** How tokens are ordered: a named kind (per-sample draws for 'random'), one order for all, or one per sample. */
export type OrderSpec = OrderKind | readonly number[] | readonly (readonly number[])[];

export interface SampleOptions {
  /** Class label per image; `numClasses` is the null (unconditional) class. */
  labels: readonly number[];
  /** Number of AR steps S (equal split); ignored when `stepSizes` is given. Default 1. */
  arSteps?: number;
  /** Explicit AR step sizes; they must sum to the number of generated tokens. */
  stepSizes?: readonly number[];
  /** Token order of the generated tokens. Default 'random'. */
  order?: OrderSpec;
  /** Respacing of the 1000-step chain: '250', '50', 'ddim25', or a number. Default: `defaultRespacing(sampler)`. */
  diffusionSteps?: string | number;
  /** 'ddpm' (ancestral, as the official code) or 'ddim'. Default 'ddpm'. */
  sampler?: 'ddpm' | 'ddim';
  /** DDIM stochasticity (0 = deterministic). */
  eta?: number;
  /** Classifier-free guidance scale (1 = off). */
  cfgScale?: number;
  /** Guidance is applied only while cfgInterval[0] <= t < cfgInterval[1] (original timesteps). */
  cfgInterval?: [number, number];
  /** Clamp the predicted x0 to [-1, 1] at every step (pixel-space models). Default false, as the official code. */
  clipDenoised?: boolean;
  /** Seed of all randomness (orders, initial noise, DDPM noise). Default 0. */
  seed?: number;
  /** Known tokens for editing: the kept tokens go into the clean context and only the rest is generated. */
  context?: EditContext;
  /** Observers (see `introspect`); absent ones cost nothing. */
  observer?: SamplingObserver;
  /**
   * On webgpu, run each denoising step as the project's fused kernels (model/gpu-inference; default true):
   * ~8 dispatches per block instead of ~25 tfjs ops. A step whose attention probabilities an observer wants runs
   * op by op (on the same cache), which forms them. Other backends ignore it.
   */
  fused?: boolean;
}

/** Known content for zero-shot editing. */
export interface EditContext {
  /** Images [N, C, H, W] in model range, whose kept tokens are copied. */
  images: Float32Array;
  /** keep[raster index] = true for the tokens to keep; shared by the batch. */
  keep: readonly boolean[];
}

/** What the sampler tells an observer at each event; tensors are valid only during the call. */
export interface SamplingObserver {
  /** An AR step starts: the raster positions it generates, per sample, and the cache length before it. */
  onArStep?(e: { arStep: number; positions: number[][]; cacheLength: number }): void;
  /** Which (arStep, diffusion step) pairs want attention probabilities; default: none. */
  wantsAttention?(arStep: number, diffusionStep: number): boolean;
  /** Attention of one layer during a denoising call, [rows, heads, Lq, Lk] (rows = 2N with CFG). */
  onAttention?(e: { arStep: number; diffusionStep: number; t: number; layer: number }, probs: tf.Tensor4D): void;
  /** After each denoising step: x_t before the step, predicted eps (guided) and x0, and x_{t-1}; [N, k, d]. */
  onDiffusionStep?(
    e: { arStep: number; diffusionStep: number; t: number },
    s: { xt: tf.Tensor3D; eps: tf.Tensor3D; x0: tf.Tensor3D; next: tf.Tensor3D },
  ): void;
  /** Clean context was appended to the cache (kind 'condition' | 'kept' | 'generated'). */
  onCacheUpdate?(e: {
    arStep: number;
    kind: 'condition' | 'kept' | 'generated';
    added: number;
    cacheLength: number;
    positions?: number[][];
  }): void;
}

export interface SampleResult {
  /** Generated images [N, C, H, W] in model range. */
  images: Float32Array;
  /** [N, C, H, W] of `images`. */
  imageShape: [number, number, number, number];
  /** Final tokens [N, L, d] in raster order. */
  tokens: Float32Array;
  /** Per-sample generation order of the generated tokens (raster indices), AR step by AR step. */
  orders: number[][];
  /** AR step sizes used. */
  stepSizes: number[];
  /** Original timesteps of the chain, in the order they were run. */
  timesteps: number[];
}

/** Resolves the per-sample orders of the `free` positions (raster indices not kept). */
function resolveOrders(spec: OrderSpec, N: number, grid: number, free: number[], rng: Rng): number[][] {
  const L = grid * grid;
  const restrict = (o: readonly number[]) => {
    const f = new Set(free);
    return o.filter((i) => f.has(i));
  };
  if (typeof spec === 'string') {
    return Array.from({ length: N }, () => restrict(makeOrder(spec, grid, rng)));
  }
  if (spec.length > 0 && Array.isArray(spec[0])) {
    const per = spec as readonly (readonly number[])[];
    if (per.length !== N) throw new Error(`got ${per.length} token orders for ${N} images`);
    return per.map((o) => restrict(validateOrder(o, L)));
  }
  const one = restrict(validateOrder(spec as readonly number[], L));
  return Array.from({ length: N }, () => one.slice());
}

function resolveSplit(opts: SampleOptions, free: number): Split {
  if (free === 0) throw new Error('nothing to generate: the edit context keeps every token');
  if (opts.stepSizes) return fromSizes(opts.stepSizes, free);
  const S = opts.arSteps ?? 1;
  if (!Number.isInteger(S) || S < 1 || S > free)
    throw new Error(`AR steps must be an integer in [1, ${free}], got ${S}`);
  return splitEqual(free, S);
}

/** `perClass` labels of each of `numClasses` classes, class by class (one grid row per class). */
export function classLabels(numClasses: number, perClass = 1): number[] {
  return Array.from({ length: numClasses }, (_, c) => new Array<number>(perClass).fill(c)).flat();
}

/**
 * The number of steps of each diffusion chain when none is given: 250 DDPM steps (the official sampler's
 * respacing), 50 DDIM steps, and 100 DDPM steps for an evaluation's thousands of samples.
 */
export const SAMPLING_DEFAULTS = { ddpmSteps: 250, ddimSteps: 50, evalDdpmSteps: 100 } as const;

/** The default respacing of a sampler: '250' for DDPM (or `ddpmSteps`), 'ddim50' for DDIM. */
export function defaultRespacing(sampler: 'ddpm' | 'ddim', ddpmSteps: number = SAMPLING_DEFAULTS.ddpmSteps): string {
  return sampler === 'ddim' ? `ddim${SAMPLING_DEFAULTS.ddimSteps}` : String(ddpmSteps);
}

/**
 * The diffusion used for sampling: '250' / 'ddim50' / 50 style respacing of the 1000-step chain, with the
 * schedule and prediction of `model` (a model's config; the official linear / eps by default).
 */
export function samplingDiffusion(
  steps: string | number = defaultRespacing('ddpm'),
  model: { noiseSchedule?: NoiseSchedule; prediction?: Prediction } = {},
): GaussianDiffusion {
  return createDiffusion(String(steps), { noiseSchedule: model.noiseSchedule, prediction: model.prediction });
}

/**
 * Where a sampling run pauses: after every denoising step (a page draws, a driver yields to the event loop)
 * and before each read-back of a finished AR step (an asynchronous driver reads `tensor` without blocking,
 * after which the run's own synchronous read is a cache hit).
 */
export type SamplingPause =
  | { kind: 'step'; arStep: number; diffusionStep: number; diffusionSteps: number; arSteps: number }
  | { kind: 'read'; tensor: tf.Tensor };

/**
 * Generates images with S AR steps x a reverse diffusion chain per step. Deterministic for a given seed on a
 * given backend.
 */
export function sampleImages(model: CausalDiffusionModel, opts: SampleOptions): SampleResult {
  const run = samplingRun(model, opts);
  for (;;) {
    const r = run.next();
    if (r.done) return r.value;
  }
}

/** Options of the asynchronous driver. */
export interface AsyncSampling {
  /** Called at every pause; return a promise to hold the run (a page's animation frame, say). */
  onPause?(p: SamplingPause): void | Promise<void>;
  /** Longest stretch of synchronous work between two yields to the event loop, ms. Default 25. */
  sliceMs?: number;
  /** Checked at every pause: true stops the run with an error "sampling cancelled". */
  cancelled?(): boolean;
}

/**
 * `sampleImages` for a page: the same run (same numbers for a seed), but it yields to the event loop every
 * `sliceMs` and reads results back asynchronously, so the page stays responsive and WebGPU / WebGL never take
 * the slow synchronous read.
 */
export async function sampleImagesAsync(
  model: CausalDiffusionModel,
  opts: SampleOptions,
  drive: AsyncSampling = {},
): Promise<SampleResult> {
  const run = samplingRun(model, opts);
  const slice = drive.sliceMs ?? 25;
  let since = Date.now();
  try {
    for (;;) {
      const r = run.next();
      if (r.done) return r.value;
      const p = r.value;
      await drive.onPause?.(p);
      if (drive.cancelled?.()) throw new Error('sampling cancelled');
      if (p.kind === 'read') await p.tensor.data();
      if (Date.now() - since >= slice) {
        await new Promise((res) => setTimeout(res, 0));
        since = Date.now();
      }
    }
  } finally {
    run.return(undefined as never); // frees the KV cache when the run stopped early
  }
}

/** The sampling run itself, paused at every `SamplingPause` (see `sampleImages`, `sampleImagesAsync`). */
export function* samplingRun(
  model: CausalDiffusionModel,
  opts: SampleOptions,
): Generator<SamplingPause, SampleResult, void> {
  const c = model.config;
  const N = opts.labels.length;
  if (N === 0) throw new Error('labels must name at least one image');
  const badLabel = opts.labels.find((y) => !Number.isInteger(y) || y < 0 || y > c.numClasses);
  if (badLabel !== undefined)
    throw new Error(`label ${badLabel} outside [0, ${c.numClasses}] (${c.numClasses} = unconditional)`);
  const cfgScale = opts.cfgScale ?? 1;
  if (!(cfgScale >= 1)) throw new Error(`cfg scale must be >= 1, got ${cfgScale}`);
  if (cfgScale > 1 && c.classDropoutProb <= 0)
    throw new Error(
      'this model was built without a null class (classDropoutProb 0): classifier-free guidance needs one',
    );
  const sampler = opts.sampler ?? 'ddpm';
  if (sampler !== 'ddpm' && sampler !== 'ddim')
    throw new Error(`unknown sampler "${sampler as string}" (use ddpm or ddim)`);
  const eta = opts.eta ?? 0;
  const diffusion = samplingDiffusion(opts.diffusionSteps ?? defaultRespacing(sampler), c);
  const L = model.numPatches;
  const d = model.patchDim;
  const grid = c.inputSize / c.patchSize;
  const shape = [c.latentChannels, c.inputSize, c.inputSize] as const;
  const rng = new Rng(opts.seed ?? 0);
  const guided = cfgScale > 1;
  const obs = opts.observer;

  // Known tokens (editing) in raster order.
  let known: Float32Array | null = null;
  const keep = opts.context?.keep ?? new Array<boolean>(L).fill(false);
  if (keep.length !== L) throw new Error(`edit mask has ${keep.length} entries, the model has L = ${L} tokens`);
  if (opts.context) {
    const want = N * shape[0] * shape[1] * shape[2];
    if (opts.context.images.length !== want)
      throw new Error(`edit images: expected ${want} values for [${N}, ${shape}], got ${opts.context.images.length}`);
    known = patchify(opts.context.images, N, shape[0], shape[1], shape[2], c.patchSize);
  }
  const keptPos = keep.flatMap((k, i) => (k ? [i] : []));
  const free = keep.flatMap((k, i) => (k ? [] : [i]));
  const orders = resolveOrders(opts.order ?? 'random', N, grid, free, rng);
  const split = resolveSplit(opts, free.length);
  const out = known ? known.slice() : new Float32Array(N * L * d);
  const timesteps = diffusion.timestepMap.slice().reverse();

  const cfgInterval = opts.cfgInterval ?? [0, 1000];
  const clip = !!opts.clipDenoised;
  const ys = guided ? [...opts.labels, ...opts.labels.map(() => c.numClasses)] : opts.labels.slice();
  const kp = Array.from({ length: N }, () => keptPos);
  const useFused = opts.fused !== false && fusedInferenceUnavailable(model) === null;
  const engine = useFused
    ? fusedEngine(model, N, guided, Math.max(c.numCondTokens, keptPos.length, ...split.splitSizes), timesteps)
    : opsEngine(model, N, guided);
  const thaw = freezeWeights(); // weights are constants for the run: transposed once where a backend wants that
  let cacheLength = 0;
  const appendClean = (tokens: Float32Array, positions: number[][], arStep: number, kind: 'kept' | 'generated') => {
    engine.appendClean(tokens, positions);
    cacheLength += positions[0].length;
    obs?.onCacheUpdate?.({ arStep, kind, added: positions[0].length, cacheLength, positions });
  };

  try {
    engine.appendCondition(ys);
    cacheLength = c.numCondTokens;
    obs?.onCacheUpdate?.({ arStep: -1, kind: 'condition', added: c.numCondTokens, cacheLength });
    if (known && keptPos.length > 0) appendClean(gatherTokens(known, N, L, d, kp, keptPos.length), kp, -1, 'kept');

    for (let s = 0; s < split.splitSizes.length; s++) {
      const positions = orders.map((o) => o.slice(split.cumsum[s], split.cumsum[s + 1]));
      const k = positions[0].length;
      obs?.onArStep?.({ arStep: s, positions, cacheLength });
      engine.startChain(positions, rng.normalArray(N * k * d));
      for (let j = 0; j < timesteps.length; j++) {
        const tOrig = timesteps[j];
        const i = timesteps.length - 1 - j; // index into the respaced chain
        const hooks: ForwardHooks = {};
        if (obs?.onAttention && obs.wantsAttention?.(s, j))
          hooks.attention = (layer, probs) => obs.onAttention!({ arStep: s, diffusionStep: j, t: tOrig, layer }, probs);
        const noiseKey: [number, number] | null =
          i > 0 && (sampler === 'ddpm' || eta > 0) ? [rng.nextU32(), rng.nextU32()] : null;
        const step = engine.step({
          j,
          i,
          tOrig,
          cfgScale,
          cfgInterval,
          noiseKey,
          hooks,
          diffusion,
          sampler,
          eta,
          clip,
        });
        obs?.onDiffusionStep?.({ arStep: s, diffusionStep: j, t: tOrig }, step);
        engine.endStep(step);
        yield {
          kind: 'step',
          arStep: s,
          diffusionStep: j,
          diffusionSteps: timesteps.length,
          arSteps: split.splitSizes.length,
        };
      }
      yield { kind: 'read', tensor: engine.x() };
      const tokens = engine.x().dataSync() as Float32Array;
      positions.forEach((ps, n) =>
        ps.forEach((p, i) => out.set(tokens.subarray((n * k + i) * d, (n * k + i + 1) * d), (n * L + p) * d)),
      );
      if (s < split.splitSizes.length - 1) appendClean(tokens, positions, s, 'generated');
    }
  } finally {
    engine.dispose(); // also when the run stopped inside a chain
    thaw();
  }
  return {
    images: unpatchify(out, N, shape[0], shape[1], shape[2], c.patchSize),
    imageShape: [N, shape[0], shape[1], shape[2]],
    tokens: out,
    orders,
    stepSizes: split.splitSizes.slice(),
    timesteps,
  };
}

/** What one reverse step needs besides the chain's own state. */
interface StepRequest {
  j: number;
  i: number;
  tOrig: number;
  cfgScale: number;
  cfgInterval: [number, number];
  /**
   * The stream of the update's noise [N, k, d] (`counterNormals`: the fused kernels draw it on the GPU), null
   * where the update has none (the last step; DDIM with eta 0).
   */
  noiseKey: [number, number] | null;
  hooks: ForwardHooks;
  diffusion: GaussianDiffusion;
  sampler: 'ddpm' | 'ddim';
  eta: number;
  clip: boolean;
}

type StepTensors = { xt: tf.Tensor3D; eps: tf.Tensor3D; x0: tf.Tensor3D; next: tf.Tensor3D };

/** The KV cache and the current chain of a run, kept by one of two engines (op by op, or fused kernels). */
interface SamplingEngine {
  appendCondition(labels: readonly number[]): void;
  appendClean(tokens: Float32Array, positions: number[][]): void;
  startChain(positions: number[][], xT: Float32Array): void;
  step(r: StepRequest): StepTensors;
  /** After the observer saw the step: x_{t-1} becomes the chain's x. */
  endStep(s: StepTensors): void;
  /** The chain's x [N, k, d]. */
  x(): tf.Tensor3D;
  dispose(): void;
}

/** The tfjs path: `forwardCacheUpdate` / `forwardInference` and the diffusion's tensor steps. */
function opsEngine(model: CausalDiffusionModel, N: number, guided: boolean): SamplingEngine {
  const d = model.patchDim;
  const cache = model.newCache();
  let chain: { pos: tf.Tensor3D; x: tf.Tensor3D } | null = null;
  return {
    appendCondition(labels) {
      const cond = model.embedCondition(labels);
      model.forwardCacheUpdate(cond, cache);
      cond.dispose();
    },
    appendClean(tokens, positions) {
      tf.tidy(() => {
        const e = model.embedClean(tf.tensor3d(tokens, [N, positions[0].length, d]), positions);
        model.forwardCacheUpdate(guided ? tf.concat([e, e], 0) : e, cache);
      });
    },
    startChain(positions, xT) {
      if (chain) tf.dispose([chain.pos, chain.x]);
      chain = { pos: model.posEmbedAt(positions), x: tf.tensor3d(xT, [N, positions[0].length, d]) };
    },
    step(r) {
      const { pos, x } = chain!;
      const out = model.forwardInference(x, r.tOrig, cache, pos, r.cfgScale, r.cfgInterval, r.hooks);
      const eps = r.diffusion.epsFromOutput(x, r.i, out) as tf.Tensor3D;
      if (eps !== out) out.dispose();
      const noise = r.noiseKey
        ? tf.tensor3d(counterNormals(r.noiseKey, x.size), x.shape)
        : tf.zeros<tf.Rank.R3>(x.shape);
      const st =
        r.sampler === 'ddpm'
          ? r.diffusion.pSample(x, r.i, eps, noise, r.clip)
          : r.diffusion.ddimSample(x, r.i, eps, noise, r.eta, r.clip);
      noise.dispose();
      return { xt: x, eps, x0: st.predXStart as tf.Tensor3D, next: st.sample as tf.Tensor3D };
    },
    endStep(s) {
      tf.dispose([s.xt, s.eps, s.x0]);
      chain!.x = s.next;
    },
    x: () => chain!.x,
    dispose() {
      disposeCache(cache);
      if (chain) tf.dispose([chain.pos, chain.x].filter((t) => !t.isDisposed));
      chain = null;
    },
  };
}

/** The fused path (model/gpu-inference): the same steps as the project's WebGPU kernels. */
function fusedEngine(
  model: CausalDiffusionModel,
  N: number,
  guided: boolean,
  maxChunk: number,
  timesteps: readonly number[],
): SamplingEngine {
  const f = new FusedInference(model, N, guided, maxChunk, timesteps);
  let positions: number[][] = [];
  return {
    appendCondition: (labels) => f.appendCondition(labels),
    appendClean: (tokens, positions) => f.appendClean(tokens, positions),
    startChain(p, xT) {
      positions = p;
      f.startChain(p, xT);
    },
    step(r) {
      const update = { ddim: r.sampler === 'ddim', eta: r.eta, clip: r.clip };
      if (r.hooks.attention) {
        // an observer wants this step's attention probabilities: the op-by-op forward forms them
        const caches = f.layerCaches();
        const pos = model.posEmbedAt(positions);
        const out = model.forwardInference(f.x, r.tOrig, caches, pos, r.cfgScale, r.cfgInterval, r.hooks);
        const st = f.stepFromOutput(out, r.diffusion, r.i, r.noiseKey, update);
        tf.dispose([out, pos]);
        disposeCache(caches);
        return st;
      }
      // guided where the interval says so, else the conditional output alone (as `forwardInference`)
      const mix = guided && r.cfgInterval[0] <= r.tOrig && r.tOrig < r.cfgInterval[1];
      return f.step(r.j, r.diffusion, r.i, mix ? r.cfgScale : null, r.noiseKey, update);
    },
    endStep: () => undefined,
    x: () => f.x,
    dispose: () => f.dispose(),
  };
}
