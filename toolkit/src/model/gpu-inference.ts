/**
 * The sampler's forward passes on WebGPU as the project's own kernels (backend/wgsl/inference): the same
 * model as `forwardCacheUpdate` / `forwardInference` + the reverse step, but each denoising step of a batch is
 * 8·depth + 4 dispatches (one more per product whose K is split) with cached bind groups and uniforms (the
 * op-by-op path: ~25 tfjs ops per block, ~30 µs of host time each), and nothing is allocated, concatenated or
 * read back inside a diffusion chain.
 *
 * The KV cache is preallocated per layer at its final length [rows, H, cond + L, hd]: a chunk's keys and values
 * are written at the cache's end (the denoising chain's own tokens sit there until the finished clean tokens
 * overwrite them), so the cache never grows by concatenation. Workspace tensors are sized for the largest
 * chunk once per run.
 *
 * Within a chain every step binds the same buffers (x_t and x_{t-1} swap roles; the step's timestep row,
 * coefficients and noise key are written into a small tensor first, and the noise is computed on the GPU from
 * that key), so a chain records its first two steps and replays them: a step then costs one 56-byte write,
 * three WebGPU calls per dispatch and one submit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GaussianDiffusion, ReverseStepCoefficients } from '../diffusion/gaussian';
import { FlashShape, headMajor, tokenMajor } from '../backend/kernels';
import type { WebGPUBackendLike } from '../backend/webgpu-types';
import { layerNormInto } from '../backend/wgsl/layernorm';
import { cachedAttentionInto } from '../backend/wgsl/cached-attention';
import { MAX_HEAD_DIM } from '../backend/wgsl/attention';
import {
  condTokens,
  embedTokens,
  guidedStep,
  LinearEpilogue,
  linearInto,
  STEP_PARAMS,
  stepParams,
} from '../backend/wgsl/inference';
import { qkNormToCache } from '../backend/wgsl/qk-norm';
import {
  activeWebgpu,
  DispatchRecording,
  recordDispatches,
  replayDispatches,
  writeTensor,
} from '../backend/wgsl/runner';
import type { CausalDiffusionModel } from './causalfusion';
import type { LayerCache } from './attention';
import { timestepFrequencies } from './causalfusion';

/** Why the fused path cannot run `model` on the active backend, or null when it can. */
export function fusedInferenceUnavailable(model: CausalDiffusionModel): string | null {
  const c = model.config;
  if (!activeWebgpu()) return 'the active backend is not webgpu';
  const hd = c.hiddenSize / c.numHeads;
  if (hd > MAX_HEAD_DIM || hd % 4 !== 0) return `head size ${hd} is not a multiple of 4 up to ${MAX_HEAD_DIM}`;
  return null;
}

/** The tensors of one denoising step, valid until the next step (what a sampling observer is shown). */
export interface FusedStep {
  xt: tf.Tensor3D;
  eps: tf.Tensor3D;
  x0: tf.Tensor3D;
  next: tf.Tensor3D;
}

/** A denoising chain's tensors: x_t and x_{t-1} alternate between `x[parity]` and the other one. */
interface Chain {
  index: tf.Tensor;
  k: number;
  x: [tf.Tensor3D, tf.Tensor3D];
  eps: tf.Tensor3D;
  x0: tf.Tensor3D;
  parity: 0 | 1;
  /** The step's dispatches for each parity, recorded at the chain's first two steps. */
  recordings: [DispatchRecording | null, DispatchRecording | null];
}

/** One sampling run's KV cache and workspace on the GPU; `dispose()` frees them. */
export class FusedInference {
  private readonly gpu: WebGPUBackendLike;
  private readonly keep: tf.Tensor[] = [];
  private readonly cacheK: tf.Tensor[];
  private readonly cacheV: tf.Tensor[];
  private readonly ws: Record<'h' | 'a' | 'qkv' | 'q' | 'o' | 'mlp' | 'stats' | 'out' | 'product', tf.Tensor>;
  private readonly temb: tf.Tensor;
  /** The step's `stepParams`. */
  private readonly params: tf.Tensor;
  private chain: Chain | null = null;
  /** Tokens in the cache. */
  length = 0;
  readonly rows: number;
  private readonly Lmax: number;

  /**
   * @param N images; the cache holds 2N rows (cond, null) when `guided`.
   * @param maxChunk the most tokens any chunk (condition, kept tokens, AR step) will have.
   * @param timesteps the chain's original timesteps in the order they run: their t-embeddings are made once.
   */
  constructor(
    private readonly model: CausalDiffusionModel,
    readonly N: number,
    readonly guided: boolean,
    maxChunk: number,
    timesteps: readonly number[],
  ) {
    const why = fusedInferenceUnavailable(model);
    if (why) throw new Error(`fused inference: ${why}`);
    this.gpu = activeWebgpu()!;
    const c = model.config;
    const D = c.hiddenSize;
    this.rows = guided ? 2 * N : N;
    this.Lmax = c.numCondTokens + model.numPatches;
    const R = this.rows;
    const T = R * maxChunk;
    // tf.fill runs on the GPU; tf.zeros would build each buffer on the host and upload it (the KV cache of
    // the paper's model at batch 8 is 0.4 GB: most of a run's set-up time)
    const alloc = (n: number) => {
      const t = tf.fill([n], 0);
      this.keep.push(t);
      return t;
    };
    this.cacheK = Array.from({ length: c.depth }, () => alloc(R * this.Lmax * D));
    this.cacheV = Array.from({ length: c.depth }, () => alloc(R * this.Lmax * D));
    this.ws = {
      h: alloc(T * D),
      a: alloc(T * D),
      qkv: alloc(T * 3 * D),
      q: alloc(T * D),
      o: alloc(T * D),
      mlp: alloc(T * 4 * D),
      stats: alloc(2 * T),
      out: alloc(T * model.patchDim),
      product: alloc(T * 4 * D), // products before their epilogue (tensor cores, or fp32 with K split)
    };
    this.temb = tf.tidy(() =>
      model.tEmbed(model.params, tf.tensor2d(timestepFrequencies(timesteps), [timesteps.length, 256])),
    );
    this.params = alloc(STEP_PARAMS);
    this.keep.push(this.temb);
  }

  private p(name: string): tf.Tensor {
    return this.model.params[name];
  }

  /**
   * The blocks over the embedded chunk in `ws.h` (Lq tokens per row), writing the chunk's keys and values at
   * the cache's end; `full` runs the last block's MLP and the final layer into `ws.out`.
   */
  private blocks(Lq: number, full: boolean): void {
    const c = this.model.config;
    const D = c.hiddenSize;
    const H = c.numHeads;
    const hd = D / H;
    const M = this.rows * Lq;
    const { h, a, qkv, q, o, mlp, stats } = this.ws;
    const Lk = this.length + Lq;
    const s: FlashShape = {
      N: this.rows,
      H,
      Lq,
      Lk,
      hd,
      scale: Math.pow(hd, -0.5),
      q: tokenMajor(H, Lq, hd),
      k: headMajor(H, this.Lmax, hd),
      v: headMajor(H, this.Lmax, hd),
    };
    // y (+)= x·Wᵀ (+ b) (GELU) for the weights under `w` (bias under `w` with .bias)
    const lin = (x: tf.Tensor, w: string, y: tf.Tensor, e: LinearEpilogue) =>
      linearInto(
        this.gpu,
        x,
        this.p(`${w}.weight`),
        this.p(e.bias ? `${w}.bias` : `${w}.weight`),
        y,
        M,
        e,
        this.ws.product,
      );
    const none = { bias: false, gelu: false, accumulate: false };
    const residual = { bias: true, gelu: false, accumulate: true };
    for (let i = 0; i < c.depth; i++) {
      const b = `blocks.${i}`;
      layerNormInto(
        this.gpu,
        { x: h, w: this.p(`${b}.norm1.weight`), b: this.p(`${b}.norm1.bias`), y: a, stats },
        M,
        D,
        1e-5,
      );
      lin(a, `${b}.attn.qkv`, qkv, none);
      qkNormToCache(
        this.gpu,
        {
          qkv,
          qw: this.p(`${b}.attn.q_norm.weight`),
          qb: this.p(`${b}.attn.q_norm.bias`),
          kw: this.p(`${b}.attn.k_norm.weight`),
          kb: this.p(`${b}.attn.k_norm.bias`),
          q,
          kc: this.cacheK[i],
          vc: this.cacheV[i],
        },
        { rows: this.rows, Lq, H, hd, at: this.length, Lmax: this.Lmax },
      );
      // a cache update needs the last block only up to its keys and values
      if (!full && i === c.depth - 1) break;
      cachedAttentionInto(this.gpu, s, { q, k: this.cacheK[i], v: this.cacheV[i], o });
      lin(o, `${b}.attn.proj`, h, residual);
      layerNormInto(
        this.gpu,
        { x: h, w: this.p(`${b}.norm2.weight`), b: this.p(`${b}.norm2.bias`), y: a, stats },
        M,
        D,
        1e-5,
      );
      lin(a, `${b}.mlp.fc1`, mlp, { bias: true, gelu: true, accumulate: false });
      lin(mlp, `${b}.mlp.fc2`, h, residual);
    }
    if (!full) return;
    layerNormInto(
      this.gpu,
      { x: h, w: this.p('final_layer.0.weight'), b: this.p('final_layer.0.bias'), y: a, stats },
      M,
      D,
      1e-5,
    );
    lin(a, 'final_layer.1', this.ws.out, { bias: true, gelu: false, accumulate: false });
  }

  /** Puts the condition tokens of `labels` (one per cache row: cond, then null, with CFG) into the cache. */
  appendCondition(labels: readonly number[]): void {
    if (labels.length !== this.rows) throw new Error(`fused inference: ${labels.length} labels for ${this.rows} rows`);
    const c = this.model.config;
    const y = tf.tensor1d(Int32Array.from(labels), 'int32');
    condTokens(
      this.gpu,
      {
        table: this.p('y_embedder.embedding_table.weight'),
        condPos: this.p('cond_pos_embed'),
        labels: y,
        y: this.ws.h,
      },
      { rows: this.rows, nc: c.numCondTokens, D: c.hiddenSize },
    );
    this.blocks(c.numCondTokens, false);
    this.length += c.numCondTokens;
    y.dispose();
  }

  /** Appends clean tokens [N, k, d] at per-sample raster positions (both CFG halves see them). */
  appendClean(tokens: Float32Array, positions: readonly (readonly number[])[]): void {
    const k = positions[0].length;
    const x = tf.tensor1d(tokens);
    const index = tf.tensor1d(Int32Array.from(positions.flat()), 'int32');
    this.embed(x, index, k, false);
    this.blocks(k, false);
    this.length += k;
    tf.dispose([x, index]);
  }

  private embed(x: tf.Tensor, index: tf.Tensor, Lq: number, noisy: boolean): void {
    const c = this.model.config;
    embedTokens(
      this.gpu,
      {
        x,
        w: this.p('x_proj.weight'),
        b: this.p('x_proj.bias'),
        pos: this.p('pos_embed'),
        index,
        temb: this.temb,
        params: this.params,
        y: this.ws.h,
      },
      { rows: this.rows, N: this.N, Lq, d: this.model.patchDim, D: c.hiddenSize, noisy },
    );
  }

  /** Starts a denoising chain for the tokens at `positions` [N][k] from x_T [N, k, d]. */
  startChain(positions: readonly (readonly number[])[], xT: Float32Array): void {
    this.endChain();
    const k = positions[0].length;
    const shape: [number, number, number] = [this.N, k, this.model.patchDim];
    this.chain = {
      index: tf.tensor1d(Int32Array.from(positions.flat()), 'int32'),
      k,
      x: [tf.tensor3d(xT, shape), tf.fill(shape, 0)],
      eps: tf.fill(shape, 0),
      x0: tf.fill(shape, 0),
      parity: 0,
      recordings: [null, null],
    };
  }

  /**
   * One reverse step of the chain: the network at the j-th timestep of the run (index `i` of `diffusion`), the
   * guided output u + cfg·(c − u) (or the conditional one alone when `cfg` is null), then the DDPM or DDIM
   * update with the noise of stream `noiseKey` (rng's `counterNormals`; null where the update has none).
   * Returns x_t, eps, x0 and x_{t-1}, valid until the next step; x_{t-1} becomes the chain's x.
   */
  step(
    j: number,
    diffusion: GaussianDiffusion,
    i: number,
    cfg: number | null,
    noiseKey: readonly [number, number] | null,
    update: { ddim: boolean; eta: number; clip: boolean },
  ): FusedStep {
    const ch = this.current();
    const guidance = { guided: this.guided && cfg !== null, cfg: cfg ?? 1 };
    this.writeStep(j, guidance, diffusion.reverseStepCoefficients(i, update), noiseKey);
    const p = ch.parity;
    const rec = ch.recordings[p];
    if (!rec || !replayDispatches(this.gpu, rec))
      ch.recordings[p] = recordDispatches(this.gpu, () => {
        this.embed(ch.x[p], ch.index, ch.k, true);
        this.blocks(ch.k, true);
        this.reverseStep(this.ws.out);
      });
    return this.advance();
  }

  /**
   * The reverse step from a network output computed elsewhere ([N, k, d], guidance already applied): the
   * op-by-op forward on `layerCaches()`, for a step whose attention probabilities an observer wants.
   */
  stepFromOutput(
    out: tf.Tensor3D,
    diffusion: GaussianDiffusion,
    i: number,
    noiseKey: readonly [number, number] | null,
    update: { ddim: boolean; eta: number; clip: boolean },
  ): FusedStep {
    this.writeStep(0, { guided: false, cfg: 1 }, diffusion.reverseStepCoefficients(i, update), noiseKey);
    this.reverseStep(out);
    return this.advance();
  }

  /** The step's parameters into their tensor (after the work already encoded, which reads the old ones). */
  private writeStep(
    tRow: number,
    guidance: { guided: boolean; cfg: number },
    c: ReverseStepCoefficients,
    noiseKey: readonly [number, number] | null,
  ): void {
    if (!noiseKey && c.sigma !== 0) throw new Error('fused inference: this update needs a noise key');
    writeTensor(this.gpu, this.params, stepParams(tRow, guidance, c, noiseKey));
  }

  private reverseStep(out: tf.Tensor): void {
    const ch = this.current();
    const p = ch.parity;
    guidedStep(
      this.gpu,
      { x: ch.x[p], out, next: ch.x[1 - p], eps: ch.eps, x0: ch.x0, params: this.params },
      ch.eps.size,
    );
  }

  /** The step's tensors; x_{t-1} becomes the chain's x (the two swap roles again at the next step). */
  private advance(): FusedStep {
    const ch = this.current();
    const p = ch.parity;
    ch.parity = p === 0 ? 1 : 0;
    return { xt: ch.x[p], eps: ch.eps, x0: ch.x0, next: ch.x[1 - p] };
  }

  /**
   * The cache as the op-by-op path keeps it: per layer k and v [rows, H, length, hd] (new tensors: dispose them),
   * for `forwardInference` with hooks.
   */
  layerCaches(): LayerCache[] {
    const c = this.model.config;
    const hd = c.hiddenSize / c.numHeads;
    const view = (t: tf.Tensor) =>
      tf.tidy(() =>
        tf.slice(tf.reshape(t, [this.rows, c.numHeads, this.Lmax, hd]), [0, 0, 0, 0], [-1, -1, this.length, -1]),
      ) as tf.Tensor4D;
    return this.cacheK.map((k, i) => ({ k: view(k), v: view(this.cacheV[i]) }));
  }

  private current() {
    if (!this.chain) throw new Error('fused inference: no chain started');
    return this.chain;
  }

  /** The chain's current x [N, k, d] (x_0 once the chain ran to its end); valid until the next step. */
  get x(): tf.Tensor3D {
    const ch = this.current();
    return ch.x[ch.parity];
  }

  private endChain(): void {
    const ch = this.chain;
    if (!ch) return;
    tf.dispose([ch.index, ...ch.x, ch.eps, ch.x0]);
    this.chain = null;
  }

  dispose(): void {
    this.endChain();
    tf.dispose(this.keep);
  }
}
