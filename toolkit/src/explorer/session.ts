/**
 * What the explorer page does, without the page: load a CausalFusion model from a file's bytes (refusing bad
 * files with one clear message and keeping the model it had), generate with the reader's choice of class, CFG,
 * AR steps S and their sizes, token order, diffusion steps and seed, while recording what the page animates
 * (x_t and the predicted x̂0 of every denoising step of image 0) and what a click on a token shows (its attention
 * at the AR step that generated it); edit an image keeping some tokens; and compare S = 1, a few steps and S = L.
 * Browser-safe; it runs in Node too, which is how the tests compare the page against the Node sampler.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../rng';
import { AttnMask, SequencePosition } from '../factorization/mask';
import { fromSizes, splitEqual, splitIntegerExpDecay, splitIntegerRandom } from '../factorization/steps';
import { CausalFusionConfig, nullClass, presetOf } from '../model/config';
import { countParameters } from '../model/params';
import { CausalDiffusionModel } from '../model/causalfusion';
import { unpatchify } from '../model/patchify';
import { Checkpoint, modelFromCheckpoint, parseCheckpoint } from '../io/checkpoint-format';
import { AsyncSampling, SampleResult, sampleImagesAsync, SamplingObserver, SamplingPause } from '../sample/sampler';
import { AttentionRecord, SamplingRecorder } from '../introspect/recorders';
import { attentionPerToken, cachedRollout, headMean } from '../introspect/rollout';

/** What the page's model card shows. */
export interface ModelCard {
  name: string;
  /** The preset whose architecture it has, or 'custom'. */
  preset: string;
  tokens: number;
  grid: number;
  patchSize: number;
  channels: number;
  imageSize: number;
  parameters: number;
  classes: number;
  /** Whether it has the null class that unconditional sampling and CFG need. */
  nullClass: boolean;
  /** Bytes of the file it came from. */
  fileBytes: number;
}

/** How the AR step sizes are chosen: drawn from the training law (gamma 0.9, seeded), equal, or typed. */
export type StepSizesSpec = 'law' | 'equal' | readonly number[];

/** One generation, as the page's controls set it. */
export interface ExplorerOptions {
  /** Class label, or null for unconditional. Default 0. */
  label?: number | null;
  /** Images to generate. Default 1. */
  count?: number;
  /** Classifier-free guidance scale (1 = off). Default 1. */
  cfgScale?: number;
  /** Number of AR steps S for 'equal' and 'law' ('law' draws S itself when this is absent). Default 1. */
  arSteps?: number;
  /** Step sizes: 'equal' (default), 'law', or the sizes themselves. */
  stepSizes?: StepSizesSpec;
  /** Token order: 'random' (seeded), 'raster', or the raster indices in the order to generate them. */
  order?: 'random' | 'raster' | readonly number[];
  /** Denoising steps of each AR step's chain. Default 25. */
  diffusionSteps?: number;
  sampler?: 'ddpm' | 'ddim';
  /** Seed of the order, the noise and the law's step sizes. Default 0. */
  seed?: number;
  /** Which denoising step of each AR step the attention is recorded at: index into the chain. Default the last. */
  attentionStep?: number;
  /** Record the x_t / x̂0 frames of image 0 (the animation). Default true. */
  frames?: boolean;
}

/** The denoising chain of one AR step of image 0: its tokens' x_t and x̂0 after every denoising step. */
export interface StepFrames {
  arStep: number;
  /** Raster positions generated in this AR step. */
  positions: number[];
  /** Original timestep of each denoising step. */
  t: number[];
  /** Per denoising step, [k, d] values of x_t (before the step) and of the predicted x̂0. */
  xt: Float32Array[];
  x0: Float32Array[];
}

/** A finished generation (the sampler's result) with what was recorded. */
export interface ExplorerRun extends SampleResult {
  options: Required<Omit<ExplorerOptions, 'label' | 'attentionStep' | 'frames'>> & {
    label: number | null;
    attentionStep: number;
  };
  /** Labels given to the sampler (numClasses = unconditional). */
  labels: number[];
  frames: StepFrames[];
  /** Attention of image 0 at `options.attentionStep` of every AR step, one record per layer (conditional half). */
  attention: AttentionRecord[];
  /** Tokens kept from the input (editing), raster indices. */
  kept: number[];
  /** Tokens per image and values per token. */
  L: number;
  d: number;
  /** The generalized causal mask the run of image 0 was equivalent to, with what each position holds. */
  mask: { mask: AttnMask; positions: SequencePosition[] };
  ms: number;
}

/** A token's attention at the AR step that generated it, summed per raster token of the patch grid. */
export interface TokenAttention {
  token: number;
  arStep: number;
  diffusionStep: number;
  t: number;
  /** Per layer: each head's map [grid²], the head mean, and the share each put on the condition tokens. */
  layers: { layer: number; heads: Float32Array[]; mean: Float32Array; cond: number[]; meanCond: number }[];
  /** Attention rollout through this AR step's layers (cached tokens held fixed), [grid²], and its condition share. */
  rollout: Float32Array;
  rolloutCond: number;
}

/** A browser tab's memory for a model's float32 weights and the working set, by default (1.5 GiB). */
export const BROWSER_MODEL_BUDGET = 1.5 * 2 ** 30;

/** Bytes a model needs in the page: float32 weights, plus the same again for activations and the KV cache. */
export const modelBytesNeeded = (c: CausalFusionConfig): number => 2 * 4 * countParameters(c);

/** A checkpoint's file extensions (safetensors of this toolkit or official; PyTorch files). */
const CHECKPOINT_FILE = /\.(safetensors|pt|pth|bin)$/i;

/** "mnist-small" for ".../mnist-small.safetensors": how the page and the notebook name a model by its file. */
export const checkpointStem = (file: string): string => file.replace(/^.*[\\/]/, '').replace(CHECKPOINT_FILE, '');

/** The gamma of the training law of AR step counts (paper §3.2). */
const LAW_GAMMA = 0.9;

/** Parses checkpoint bytes into a model, or throws one message naming the file and the problem. */
export function modelFromBytes(
  bytes: Uint8Array,
  name: string,
  budget = BROWSER_MODEL_BUDGET,
): { model: CausalDiffusionModel; card: ModelCard } {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new Error(`${name}: the file is empty`);
  if (!CHECKPOINT_FILE.test(name))
    throw new Error(
      `${name}: not a CausalFusion checkpoint (expected a .safetensors written by this toolkit or an official .pt)`,
    );
  let ck: Checkpoint;
  try {
    ck = parseCheckpoint(bytes, name, 'infer');
  } catch (e) {
    const m = (e as Error).message;
    throw new Error(m.startsWith(name) ? m : `${name}: ${m}`);
  }
  const need = modelBytesNeeded(ck.config);
  if (need > budget)
    throw new Error(
      `${name}: this model (${presetOf(ck.config) ?? 'custom'}, ${(countParameters(ck.config) / 1e6).toFixed(0)} M parameters) ` +
        `needs about ${(need / 2 ** 30).toFixed(1)} GiB in the page, more than the ${(budget / 2 ** 30).toFixed(1)} GiB ` +
        `a browser tab can count on; explore it with the toolkit in Node instead`,
    );
  const model = modelFromCheckpoint(ck, name, { source: name });
  const c = model.config;
  const card: ModelCard = {
    name: checkpointStem(name),
    preset: presetOf(c) ?? 'custom',
    tokens: model.numPatches,
    grid: c.inputSize / c.patchSize,
    patchSize: c.patchSize,
    channels: c.latentChannels,
    imageSize: c.inputSize,
    parameters: model.numParams,
    classes: c.numClasses,
    nullClass: c.classDropoutProb > 0,
    fileBytes: bytes.length,
  };
  return { model, card };
}

/** Records x_t and x̂0 of image 0 as kept GPU tensors, read back once per AR step (no read inside a chain). */
class FrameCapture implements SamplingObserver {
  readonly frames: StepFrames[] = [];
  private pending: tf.Tensor[] = [];

  onArStep(e: { arStep: number; positions: number[][] }): void {
    this.frames.push({ arStep: e.arStep, positions: e.positions[0].slice(), t: [], xt: [], x0: [] });
  }

  onDiffusionStep(e: { t: number }, s: { xt: tf.Tensor3D; x0: tf.Tensor3D }): void {
    const [, k, d] = s.xt.shape;
    this.frames[this.frames.length - 1].t.push(e.t);
    this.pending.push(tf.keep(tf.concat([tf.slice(s.xt, [0, 0, 0], [1, k, d]), tf.slice(s.x0, [0, 0, 0], [1, k, d])])));
  }

  /** Reads the frames of the AR step that just finished. */
  async collect(): Promise<void> {
    if (!this.pending.length) return;
    const f = this.frames[this.frames.length - 1];
    const all = tf.stack(this.pending); // [steps, 2, k, d]
    tf.dispose(this.pending);
    this.pending = [];
    const v = (await all.data()) as Float32Array;
    const [steps, , k, d] = all.shape;
    all.dispose();
    for (let j = 0; j < steps; j++) {
      f.xt.push(v.slice(2 * j * k * d, (2 * j + 1) * k * d));
      f.x0.push(v.slice((2 * j + 1) * k * d, (2 * j + 2) * k * d));
    }
  }

  dispose(): void {
    tf.dispose(this.pending);
    this.pending = [];
  }
}

/** Both observers at once. */
const both = (a: SamplingObserver, b: SamplingObserver): SamplingObserver => ({
  onArStep: (e) => (a.onArStep?.(e), b.onArStep?.(e)),
  wantsAttention: (s, j) => !!a.wantsAttention?.(s, j) || !!b.wantsAttention?.(s, j),
  onAttention: (e, p) => (a.onAttention?.(e, p), b.onAttention?.(e, p)),
  onDiffusionStep: (e, s) => (a.onDiffusionStep?.(e, s), b.onDiffusionStep?.(e, s)),
  onCacheUpdate: (e) => (a.onCacheUpdate?.(e), b.onCacheUpdate?.(e)),
});

/** The explorer's model and what it does with it (see the module comment). */
export class ExplorerSession {
  private current: { model: CausalDiffusionModel; card: ModelCard } | null = null;

  /** The model in use, or an error when none is loaded. */
  get model(): CausalDiffusionModel {
    if (!this.current) throw new Error('no model loaded yet');
    return this.current.model;
  }

  get card(): ModelCard | null {
    return this.current && { ...this.current.card };
  }

  /** Loads a model from a file's bytes; on any error the previous model stays in use, untouched. */
  load(bytes: Uint8Array, name: string, budget = BROWSER_MODEL_BUDGET): ModelCard {
    const next = modelFromBytes(bytes, name, budget);
    this.current?.model.dispose();
    this.current = next;
    return { ...next.card };
  }

  /** The AR step sizes for `opts` over `free` tokens (the training law draws from its own seeded stream). */
  stepSizesFor(opts: ExplorerOptions, free: number): number[] {
    const spec = opts.stepSizes ?? 'equal';
    if (Array.isArray(spec)) return fromSizes(spec as number[], free).splitSizes.slice();
    const S = opts.arSteps ?? 1;
    if (!Number.isInteger(S) || S < 1 || S > free)
      throw new Error(`AR steps must be an integer in [1, ${free}], got ${S}`);
    if (spec === 'law') {
      // the law's own S when the reader leaves S unset, else its random cut points for the S asked for
      const rng = new Rng((opts.seed ?? 0) + 0x5eed);
      const split =
        opts.arSteps === undefined ? splitIntegerExpDecay(free, LAW_GAMMA, rng) : splitIntegerRandom(free, S, rng);
      return split.splitSizes.slice();
    }
    if (spec !== 'equal') throw new Error(`unknown step sizes "${String(spec)}" (use law, equal or a list of sizes)`);
    return splitEqual(free, S).splitSizes.slice();
  }

  /**
   * Generates with the page's options (an edit when `context` is given), recording the frames of image 0 and its
   * attention at every AR step; `drive` gets the pauses (a page animates and yields there).
   */
  async generate(
    opts: ExplorerOptions = {},
    drive: AsyncSampling = {},
    context?: { images: Float32Array; keep: readonly boolean[] },
  ): Promise<ExplorerRun> {
    const model = this.model;
    const c = model.config;
    const L = model.numPatches;
    const count = opts.count ?? 1;
    if (!Number.isInteger(count) || count < 1 || count > 64) throw new Error(`images must be 1..64, got ${count}`);
    const label = opts.label === undefined ? 0 : opts.label;
    if (label !== null && (!Number.isInteger(label) || label < 0 || label >= c.numClasses))
      throw new Error(`class ${label} outside 0..${c.numClasses - 1}`);
    if (label === null && c.classDropoutProb <= 0)
      throw new Error('this model has no null class: it cannot sample unconditionally');
    const diffusionSteps = opts.diffusionSteps ?? 25;
    if (!Number.isInteger(diffusionSteps) || diffusionSteps < 1 || diffusionSteps > 1000)
      throw new Error(`diffusion steps must be an integer in 1..1000, got ${diffusionSteps}`);
    const seed = opts.seed ?? 0;
    const kept = context ? context.keep.flatMap((k, i) => (k ? [i] : [])) : [];
    const free = L - kept.length;
    const stepSizes = this.stepSizesFor(opts, free);
    const sampler = opts.sampler ?? 'ddpm';
    const attentionStep = opts.attentionStep ?? diffusionSteps - 1;
    const labels = new Array<number>(count).fill(label ?? nullClass(c));
    const recorder = new SamplingRecorder({
      attention: { diffusionSteps: [attentionStep], samples: [0] },
      deferReads: true,
    });
    const frames = new FrameCapture();
    const observer = opts.frames === false ? recorder : both(recorder, frames);
    const order = typeof opts.order === 'object' ? [...opts.order] : (opts.order ?? 'random');
    const started = Date.now();
    let r: SampleResult;
    try {
      r = await sampleImagesAsync(
        model,
        {
          labels,
          stepSizes,
          order,
          diffusionSteps: sampler === 'ddim' ? `ddim${diffusionSteps}` : diffusionSteps,
          sampler,
          cfgScale: opts.cfgScale ?? 1,
          seed,
          observer,
          context,
        },
        {
          ...drive,
          onPause: async (p: SamplingPause) => {
            if (p.kind === 'read') await Promise.all([frames.collect(), recorder.settle()]);
            await drive.onPause?.(p);
          },
        },
      );
    } finally {
      frames.dispose();
      recorder.dispose();
    }
    return {
      options: {
        label,
        count,
        cfgScale: opts.cfgScale ?? 1,
        arSteps: stepSizes.length,
        stepSizes,
        order,
        diffusionSteps,
        sampler,
        seed,
        attentionStep,
      },
      labels,
      images: r.images,
      imageShape: r.imageShape,
      tokens: r.tokens,
      orders: r.orders,
      stepSizes: r.stepSizes,
      timesteps: r.timesteps,
      frames: frames.frames,
      attention: recorder.attention.filter((a) => !a.unconditional),
      kept,
      L,
      d: model.patchDim,
      mask: recorder.mask(0),
      ms: Date.now() - started,
    };
  }

  /**
   * Regenerates the tokens where `keep` is false in `image` ([C, H, W], model range) for `label` (the image's own
   * class or a new one); the kept tokens come back bit-exact.
   */
  edit(
    image: Float32Array,
    keep: readonly boolean[],
    opts: ExplorerOptions = {},
    drive: AsyncSampling = {},
  ): Promise<ExplorerRun> {
    const c = this.model.config;
    const want = c.latentChannels * c.inputSize * c.inputSize;
    if (image.length !== want) throw new Error(`edit: the image has ${image.length} values, this model takes ${want}`);
    if (keep.length !== this.model.numPatches)
      throw new Error(`edit: ${keep.length} token flags for a model of ${this.model.numPatches} tokens`);
    const count = opts.count ?? 1;
    const images = new Float32Array(count * want);
    for (let n = 0; n < count; n++) images.set(image, n * want);
    return this.generate(opts, drive, { images, keep });
  }

  /** The same seed and options at each S of `arSteps` (default 1, 4 and L): the side-by-side panel. */
  async compare(
    opts: ExplorerOptions = {},
    arSteps?: readonly number[],
    drive: AsyncSampling = {},
  ): Promise<ExplorerRun[]> {
    const L = this.model.numPatches;
    const out: ExplorerRun[] = [];
    for (const S of arSteps ?? [1, Math.min(4, L), L])
      out.push(await this.generate({ ...opts, arSteps: S, stepSizes: 'equal', frames: false }, drive));
    return out;
  }
}

/** Image `n` of a run at the moment (AR step s, denoising step j): earlier steps final, step s's tokens as x_t or x̂0, later ones grey. */
export function frameImage(run: ExplorerRun, s: number, j: number, which: 'xt' | 'x0'): Float32Array {
  const [, C, H, W] = run.imageShape;
  const { L, d } = run;
  const p = Math.round(Math.sqrt(d / C));
  const tokens = new Float32Array(L * d);
  const show = (pos: number) => tokens.set(run.tokens.subarray(pos * d, (pos + 1) * d), pos * d);
  run.kept.forEach(show);
  run.frames.slice(0, s).forEach((f) => f.positions.forEach(show));
  const f = run.frames[s];
  if (f) {
    const src = (which === 'xt' ? f.xt : f.x0)[Math.min(j, f.xt.length - 1)];
    f.positions.forEach((pos, i) => tokens.set(src.subarray(i * d, (i + 1) * d), pos * d));
  }
  return unpatchify(tokens, 1, C, H, W, p);
}

/** Image `n` of a run, [C, H, W]. */
export function runImage(run: ExplorerRun, n: number): Float32Array {
  const [, C, H, W] = run.imageShape;
  return run.images.slice(n * C * H * W, (n + 1) * C * H * W);
}

/** The AR step (0-based) that generated raster token `token` of image 0, or -1 for a kept token. */
export function stepOfToken(run: ExplorerRun, token: number): number {
  const order = run.orders[0];
  const i = order.indexOf(token);
  if (i < 0) {
    if (run.kept.includes(token)) return -1;
    throw new Error(`token ${token} is not in this image`);
  }
  let cum = 0;
  for (let s = 0; s < run.stepSizes.length; s++) {
    cum += run.stepSizes[s];
    if (i < cum) return s;
  }
  return run.stepSizes.length - 1;
}

/** The attention `token` of image 0 paid at the AR step that generated it (what a click on it shows). */
export function tokenAttention(run: ExplorerRun, token: number): TokenAttention {
  const s = stepOfToken(run, token);
  if (s < 0) throw new Error(`token ${token} was kept, not generated: it has no attention of its own`);
  const records = run.attention.filter((a) => a.arStep === s).sort((a, b) => a.layer - b.layer);
  if (!records.length) throw new Error(`no attention was recorded at AR step ${s + 1}`);
  const row = records[0].queries.findIndex((q) => q.token === token);
  const G = run.L;
  const layers = records.map((r) => {
    const [H, Lq, Lk] = r.shape;
    const heads = Array.from({ length: H }, (_, h) =>
      attentionPerToken(r.data.slice((h * Lq + row) * Lk, (h * Lq + row + 1) * Lk), r.keys, G),
    );
    const mean = attentionPerToken(headMean(r).subarray(row * Lk, (row + 1) * Lk), r.keys, G);
    return {
      layer: r.layer,
      heads: heads.map((x) => x.grid),
      cond: heads.map((x) => x.cond),
      mean: mean.grid,
      meanCond: mean.cond,
    };
  });
  const R = cachedRollout(records);
  const Lk = records[0].shape[2];
  const roll = attentionPerToken(R.subarray(row * Lk, (row + 1) * Lk), records[0].keys, G);
  return {
    token,
    arStep: s,
    diffusionStep: records[0].diffusionStep,
    t: records[0].t,
    layers,
    rollout: roll.grid,
    rolloutCond: roll.cond,
  };
}

/** The row of `token`'s noisy query in the run's mask (`run.mask`). */
export function maskRow(run: ExplorerRun, token: number): number {
  const row = run.mask.positions.findIndex((p) => p.role === 'noisy' && p.token === token);
  if (row < 0) throw new Error(`token ${token} is not in this image`);
  return row;
}
