/**
 * CausalDiffusionModel — the official `models.py`, in tfjs.
 *
 * A decoder-only transformer over `[cond tokens | clean tokens of steps 1..S-1 | noisy tokens of all L
 * positions]`: shared `x_proj` and `pos_embed` for clean and noisy copies, the timestep embedding added to
 * noisy tokens only, 64-or-so in-context class tokens from one label-table row, pre-LN blocks with QK-norm
 * and GELU(tanh), and a zero-initialised `final_layer` read on the last L positions.
 *
 * Layers are pure functions of a parameter record `p` (official names -> tensors), so the same code serves
 * autograd over the model's variables and block-by-block recomputation (activation checkpointing).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../rng';
import { additiveMask, getAttnMask, getAttnRanges } from '../factorization/mask';
import { AttentionRanges, attentionRanges, disposeRanges } from '../backend/kernels';
import { CausalFusionConfig, numPatches, patchDim, presetOf, validateConfig } from './config';
import { escapeXml } from '../util/markup';
import { cachedAttention, LayerCache, maskedAttention, MaskedContext, Params, ProbsHook } from './attention';
import { layerNorm, linear, mlpResidual, silu } from './ops';
import { HostTensor, initParameters, parameterShapes, StateDict } from './params';
import { gatherTokens, patchify } from './patchify';

/** Inputs of one training forward, as the official `forward(xn, t, x, y, attn_mask, last_split_size, noise)`. */
export interface TrainingInputs {
  /** Clean latent / image [N, C, H, W]. */
  x: Float32Array;
  /** Its noised version q_sample(x, t, noise) [N, C, H, W]. */
  xn: Float32Array;
  /** The regression target [N, C, H, W]: the noise (the official `noise` argument), or v for `prediction: 'v'` models. */
  target: Float32Array;
  /** One original timestep (0..T-1) per sample. */
  t: readonly number[];
  /** Class labels (after label dropout: the null class is `numClasses`). */
  y: readonly number[];
  /** AR step sizes of this iteration (shared by the batch). */
  splitSizes: readonly number[];
  /** Per-sample token order: `idsShuffle[n][i]` = raster index of the i-th token. */
  idsShuffle: readonly (readonly number[])[];
}

/** Optional observers of a forward pass; they cost nothing when absent. */
export interface ForwardHooks {
  /** Attention probabilities of layer `layer`, [N, heads, Lq, Lk]; copy synchronously, do not keep. */
  attention?: (layer: number, probs: tf.Tensor4D) => void;
  /** The predicted noise [N, Lq, d] (before CFG mixing in inference); copy synchronously, do not keep. */
  prediction?: (eps: tf.Tensor3D) => void;
}

/** A training batch on the device, built once and shared by forward and checkpointed backward. */
export interface PreparedBatch {
  N: number;
  L: number;
  /** Clean context length L - |last step|. */
  Lc: number;
  /** Clean tokens of the first Lc shuffled positions [N*Lc, d]. */
  clean: tf.Tensor2D;
  /** Noisy tokens, shuffled [N*L, d]. */
  noisy: tf.Tensor2D;
  /** Shuffled noise, the target [N, L, d]. */
  target: tf.Tensor3D;
  /** Raster index of each shuffled token, flattened [N*L]. */
  posIndex: tf.Tensor1D;
  /** Sinusoidal timestep features [N, 256]. */
  tFreq: tf.Tensor2D;
  y: tf.Tensor1D;
  /** Additive generalized causal mask [S, S] (tfjs attention). */
  mask: tf.Tensor2D;
  /** The same mask as key ranges per row, in the form the backend's fused attention reads. */
  ranges: AttentionRanges;
}

/** `TimestepEmbedder.timestep_embedding`: [cos | sin] features, float32 arithmetic as in PyTorch. */
export function timestepFrequencies(t: readonly number[], dim = 256, maxPeriod = 10000): Float32Array {
  const half = Math.floor(dim / 2);
  const f = Math.fround;
  const freqs = Float32Array.from({ length: half }, (_, i) => Math.exp(f(f(-Math.log(maxPeriod) * i) / half)));
  const out = new Float32Array(t.length * dim);
  t.forEach((ti, n) => {
    for (let i = 0; i < half; i++) {
      const a = f(ti * freqs[i]);
      out[n * dim + i] = Math.cos(a);
      out[n * dim + half + i] = Math.sin(a);
    }
  });
  return out;
}

export class CausalDiffusionModel {
  readonly config: CausalFusionConfig;
  /** Parameters under their official state_dict names. */
  readonly params: Record<string, tf.Variable>;
  /** Where the weights came from: a checkpoint file, or the initialisation and its seed. */
  readonly source: string;

  constructor(config: CausalFusionConfig, opts: { seed?: number; stateDict?: StateDict; source?: string } = {}) {
    validateConfig(config);
    this.config = config;
    this.source = opts.source ?? (opts.stateDict ? 'weights given in code' : `initialised (seed ${opts.seed ?? 0})`);
    const sd = opts.stateDict ?? initParameters(config, new Rng(opts.seed ?? 0));
    checkStateDict(config, sd);
    this.params = {};
    for (const [name] of parameterShapes(config)) {
      const trainable = name !== 'pos_embed' || config.trainablePos;
      this.params[name] = tf.tidy(() => tf.variable(tf.tensor(sd[name].data, sd[name].shape), trainable));
    }
  }

  get numPatches(): number {
    return numPatches(this.config);
  }

  get patchDim(): number {
    return patchDim(this.config);
  }

  /** The number of parameters (all of them, trainable or not). */
  get numParams(): number {
    return Object.values(this.params).reduce((n, p) => n + p.size, 0);
  }

  /**
   * The model card a notebook shows for a model (Jupyter's display protocol, shared with Deno's kernel): preset,
   * tokens, parameters, the whole config, where the weights came from.
   */
  [Symbol.for('Jupyter.display')](): Record<string, string> {
    const c = this.config;
    const grid = c.inputSize / c.patchSize;
    const preset = presetOf(c) ?? 'custom';
    const params = this.numParams;
    const million = `${(params / 1e6).toFixed(2)} M`;
    const summary = `CausalFusion model (${preset}): ${this.numPatches} tokens (${grid} x ${grid} patches of ${c.patchSize} x ${c.patchSize} x ${c.latentChannels}), ${million} parameters, ${c.prediction}-prediction, ${c.noiseSchedule} schedule, from ${this.source}`;
    const rows = Object.entries(c)
      .map(
        ([k, v]) =>
          `<tr><td style="text-align:left">${k}</td><td style="text-align:left">${escapeXml(String(v))}</td></tr>`,
      )
      .join('');
    const html =
      `<div class="cf-model-card"><b>CausalFusion model</b> &middot; preset <code>${preset}</code> &middot; ` +
      `${this.numPatches} tokens (${grid} x ${grid}) &middot; ${million} parameters (${params.toLocaleString('en-US')})` +
      `<br>weights: <code>${escapeXml(this.source)}</code>` +
      `<details><summary>config</summary><table>${rows}</table></details></div>`;
    return { 'text/plain': summary, 'text/html': html };
  }

  /** Names of the parameters that receive gradients (pos_embed only when `trainablePos`). */
  trainableNames(): string[] {
    return Object.keys(this.params).filter((n) => this.params[n].trainable);
  }

  /** Copies the weights to the host under the official names and shapes. */
  stateDict(): StateDict {
    const out: StateDict = {};
    for (const [name, v] of Object.entries(this.params))
      out[name] = { shape: v.shape.slice(), data: v.dataSync() as Float32Array };
    return out;
  }

  /** Loads official-format weights; every name and shape must match (an error lists what does not). */
  loadStateDict(sd: StateDict): void {
    checkStateDict(this.config, sd);
    for (const [name, v] of Object.entries(this.params)) v.assign(tf.tensor(sd[name].data, sd[name].shape));
  }

  dispose(): void {
    Object.values(this.params).forEach((v) => v.dispose());
  }

  // ----- layers: pure functions of the parameter record ---------------------------------------------------

  /** `TimestepEmbedder`: Linear(256, D) -> SiLU -> Linear(D, D). */
  tEmbed(p: Params, tFreq: tf.Tensor2D): tf.Tensor2D {
    const h = silu(linear(tFreq, p['t_embedder.mlp.0.weight'], p['t_embedder.mlp.0.bias']));
    return linear(h, p['t_embedder.mlp.2.weight'], p['t_embedder.mlp.2.bias']) as tf.Tensor2D;
  }

  /** `LabelEmbedder` row reshaped to numCondTokens tokens, plus `cond_pos_embed`: [N, nc, D]. */
  condTokens(p: Params, y: tf.Tensor1D): tf.Tensor3D {
    const { numCondTokens: nc, hiddenSize: D } = this.config;
    const rows = tf.gather(p['y_embedder.embedding_table.weight'], y);
    return tf.add(tf.reshape(rows, [y.shape[0], nc, D]), p['cond_pos_embed']) as tf.Tensor3D;
  }

  /** pos_embed rows at raster indices `index` [M] -> [M, D]. */
  posAt(p: Params, index: tf.Tensor1D): tf.Tensor2D {
    const { hiddenSize: D } = this.config;
    return tf.gather(tf.reshape(p['pos_embed'], [this.numPatches, D]), index) as tf.Tensor2D;
  }

  /** One pre-LN `Block`: x + attn(norm1(x)), then x + mlp(norm2(x)); masked (training) or cached (inference). */
  block(
    p: Params,
    i: number,
    x: tf.Tensor3D,
    ctx: MaskedContext | { cache: LayerCache; update: boolean },
    onProbs?: ProbsHook,
  ): tf.Tensor3D {
    const b = `blocks.${i}`;
    const h = layerNorm(x, p[`${b}.norm1.weight`], p[`${b}.norm1.bias`]) as tf.Tensor3D;
    const H = this.config.numHeads;
    const x1 =
      'mask' in ctx
        ? maskedAttention(p, `${b}.attn`, h, H, ctx, onProbs, x)
        : cachedAttention(p, `${b}.attn`, h, H, ctx.cache, ctx.update, onProbs, x);
    const m = layerNorm(x1, p[`${b}.norm2.weight`], p[`${b}.norm2.bias`]);
    const fc = (name: string) => ({ weight: p[`${b}.mlp.${name}.weight`], bias: p[`${b}.mlp.${name}.bias`] });
    return mlpResidual(x1, m, fc('fc1'), fc('fc2')) as tf.Tensor3D;
  }

  /** `final_layer`: LayerNorm -> Linear(D, p*p*C). */
  finalLayer(p: Params, x: tf.Tensor3D): tf.Tensor3D {
    const h = layerNorm(x, p['final_layer.0.weight'], p['final_layer.0.bias']);
    return linear(h, p['final_layer.1.weight'], p['final_layer.1.bias']) as tf.Tensor3D;
  }

  // ----- training forward ----------------------------------------------------------------------------------

  /** Patchifies, shuffles and uploads one batch, and builds its mask. Dispose with `disposeBatch`. */
  prepareBatch(inp: TrainingInputs): PreparedBatch {
    const c = this.config;
    const N = inp.t.length;
    const L = this.numPatches;
    const d = this.patchDim;
    const S = c.inputSize;
    const size = N * c.latentChannels * S * S;
    for (const key of ['x', 'xn', 'target'] as const) {
      if (inp[key].length !== size)
        throw new Error(
          `${key} has ${inp[key].length} values, expected [${N}, ${c.latentChannels}, ${S}, ${S}] = ${size}`,
        );
    }
    if (inp.y.length !== N) throw new Error(`y has ${inp.y.length} labels for a batch of ${N}`);
    const maxLabel = c.numClasses + (c.classDropoutProb > 0 ? 1 : 0);
    const badLabel = inp.y.find((v) => !Number.isInteger(v) || v < 0 || v >= maxLabel);
    if (badLabel !== undefined) throw new Error(`label ${badLabel} is outside [0, ${maxLabel})`);
    const mask = getAttnMask(L, c.numCondTokens, inp.splitSizes);
    const keyRanges = getAttnRanges(L, c.numCondTokens, inp.splitSizes);
    const Lc = L - inp.splitSizes[inp.splitSizes.length - 1];
    const tok = (a: Float32Array) => patchify(a, N, c.latentChannels, S, S, c.patchSize);
    return {
      N,
      L,
      Lc,
      clean: tf.tensor2d(gatherTokens(tok(inp.x), N, L, d, inp.idsShuffle, Lc), [N * Lc, d]),
      noisy: tf.tensor2d(gatherTokens(tok(inp.xn), N, L, d, inp.idsShuffle), [N * L, d]),
      target: tf.tensor3d(gatherTokens(tok(inp.target), N, L, d, inp.idsShuffle), [N, L, d]),
      posIndex: tf.tensor1d(Int32Array.from(inp.idsShuffle.flat()), 'int32'),
      tFreq: tf.tensor2d(timestepFrequencies(inp.t), [N, 256]),
      y: tf.tensor1d(Int32Array.from(inp.y), 'int32'),
      mask: tf.tensor2d(additiveMask(mask), [mask.seqLen, mask.seqLen]),
      ranges: attentionRanges(keyRanges, c.hiddenSize / c.numHeads),
    };
  }

  /** The input sequence [cond | clean | noisy + t] of the first block, [N, S, D]. */
  embed(p: Params, b: PreparedBatch): tf.Tensor3D {
    const { N, L, Lc } = b;
    const D = this.config.hiddenSize;
    const pos = tf.reshape(this.posAt(p, b.posIndex), [N, L, D]);
    const proj = linear(tf.concat([b.clean, b.noisy], 0), p['x_proj.weight'], p['x_proj.bias']);
    const [cleanP, noisyP] = tf.split(proj, [N * Lc, N * L], 0);
    const clean = tf.add(tf.reshape(cleanP, [N, Lc, D]), tf.slice(pos, [0, 0, 0], [N, Lc, D]));
    const tEmb = tf.reshape(this.tEmbed(p, b.tFreq), [N, 1, D]);
    const noisy = tf.add(tf.add(tf.reshape(noisyP, [N, L, D]), pos), tEmb);
    return tf.concat([this.condTokens(p, b.y), clean, noisy], 1) as tf.Tensor3D;
  }

  /** Per-element squared error of the noise prediction on the last L positions, [N, L, d] (shuffled order). */
  head(p: Params, x: tf.Tensor3D, b: PreparedBatch, hooks: ForwardHooks = {}): tf.Tensor3D {
    const [N, S, D] = x.shape;
    const out = this.finalLayer(p, tf.slice(x, [0, S - b.L, 0], [N, b.L, D]));
    hooks.prediction?.(out);
    return tf.square(tf.sub(b.target, out)) as tf.Tensor3D;
  }

  /** The official training forward: returns the per-element MSE [N, L, d] in shuffled token order. */
  forwardPrepared(b: PreparedBatch, hooks: ForwardHooks = {}, p: Params = this.params): tf.Tensor3D {
    return tf.tidy(() => {
      let x = this.embed(p, b);
      for (let i = 0; i < this.config.depth; i++) {
        const onProbs = hooks.attention ? (pr: tf.Tensor4D) => hooks.attention!(i, pr) : undefined;
        x = this.block(p, i, x, b, onProbs);
      }
      return this.head(p, x, b, hooks);
    });
  }

  /** `forward(xn, t, x, y, attn_mask, last_split_size, noise)` from host inputs. */
  forward(inp: TrainingInputs, hooks: ForwardHooks = {}): tf.Tensor3D {
    const b = this.prepareBatch(inp);
    try {
      return this.forwardPrepared(b, hooks);
    } finally {
      disposeBatch(b);
    }
  }

  // ----- inference with a KV cache -------------------------------------------------------------------------

  /** An empty KV cache, one entry per block. */
  newCache(): LayerCache[] {
    return Array.from({ length: this.config.depth }, () => ({ k: null, v: null }));
  }

  /** Condition tokens for labels y (use `numClasses` for the null class), [N, nc, D]. */
  embedCondition(y: readonly number[]): tf.Tensor3D {
    return tf.tidy(() => this.condTokens(this.params, tf.tensor1d(Int32Array.from(y), 'int32')));
  }

  /** pos_embed at per-sample raster positions [N][Lq] -> [N, Lq, D]. */
  posEmbedAt(positions: readonly (readonly number[])[]): tf.Tensor3D {
    const N = positions.length;
    const Lq = positions[0]?.length ?? 0;
    return tf.tidy(
      () =>
        tf.reshape(this.posAt(this.params, tf.tensor1d(Int32Array.from(positions.flat()), 'int32')), [
          N,
          Lq,
          this.config.hiddenSize,
        ]) as tf.Tensor3D,
    );
  }

  /** Clean tokens [N, Lc, d] at raster positions, embedded as context: x_proj(x) + pos_embed, no t-embedding. */
  embedClean(tokens: tf.Tensor3D, positions: readonly (readonly number[])[]): tf.Tensor3D {
    return tf.tidy(() => {
      const pos = this.posEmbedAt(positions);
      return tf.add(linear(tokens, this.params['x_proj.weight'], this.params['x_proj.bias']), pos) as tf.Tensor3D;
    });
  }

  /** `forward_cache_update`: runs an embedded chunk [N, Lc, D] through all blocks, only to extend the cache. */
  forwardCacheUpdate(x: tf.Tensor3D, cache: LayerCache[], hooks: ForwardHooks = {}): void {
    checkCache(this.config.depth, cache, x.shape[0], false);
    tf.tidy(() => {
      let h = x;
      for (let i = 0; i < this.config.depth; i++) {
        const onProbs = hooks.attention ? (pr: tf.Tensor4D) => hooks.attention!(i, pr) : undefined;
        h = this.block(this.params, i, h, { cache: cache[i], update: true }, onProbs);
      }
    });
  }

  /**
   * `forward_inference`: noise prediction for noisy tokens xn [N, Lq, d] at original timestep t, attending to
   * the cache. With cfgScale > 1 the cache must hold 2N rows (cond, then null) and the guided
   * eps_u + s (eps_c - eps_u) is returned while cfgInterval[0] <= t < cfgInterval[1], eps_c otherwise.
   */
  forwardInference(
    xn: tf.Tensor3D,
    t: number,
    cache: LayerCache[],
    posEmbed: tf.Tensor3D,
    cfgScale = 1.0,
    cfgInterval: [number, number] = [0, 1000],
    hooks: ForwardHooks = {},
  ): tf.Tensor3D {
    const guided = cfgScale > 1.0;
    const N = xn.shape[0];
    checkCache(this.config.depth, cache, guided ? 2 * N : N, true);
    return tf.tidy(() => {
      const p = this.params;
      const xs = guided ? tf.concat([xn, xn], 0) : xn;
      const pos = guided ? tf.concat([posEmbed, posEmbed], 0) : posEmbed;
      const tEmb = this.tEmbed(p, tf.tensor2d(timestepFrequencies([t]), [1, 256]));
      let h = tf.add(
        tf.add(linear(xs, p['x_proj.weight'], p['x_proj.bias']), pos),
        tf.reshape(tEmb, [1, 1, -1]),
      ) as tf.Tensor3D;
      for (let i = 0; i < this.config.depth; i++) {
        const onProbs = hooks.attention ? (pr: tf.Tensor4D) => hooks.attention!(i, pr) : undefined;
        h = this.block(p, i, h, { cache: cache[i], update: false }, onProbs);
      }
      const eps = this.finalLayer(p, h);
      hooks.prediction?.(eps);
      if (!guided) return eps;
      const [cond, uncond] = tf.split(eps, 2, 0);
      if (cfgInterval[0] <= t && t < cfgInterval[1])
        return tf.add(uncond, tf.mul(tf.sub(cond, uncond), cfgScale)) as tf.Tensor3D;
      return cond as tf.Tensor3D;
    });
  }
}

/** Frees the device tensors of a prepared batch. */
export function disposeBatch(b: PreparedBatch): void {
  tf.dispose([b.clean, b.noisy, b.target, b.posIndex, b.tFreq, b.y, b.mask]);
  disposeRanges(b.ranges);
}

/** Frees a KV cache. */
export function disposeCache(cache: LayerCache[]): void {
  for (const c of cache) {
    c.k?.dispose();
    c.v?.dispose();
    c.k = c.v = null;
  }
}

function checkCache(depth: number, cache: LayerCache[], rows: number, mustHoldContext: boolean): void {
  if (cache.length !== depth) throw new Error(`KV cache has ${cache.length} layers, the model has ${depth}`);
  const k = cache[0].k;
  if (!k) {
    if (mustHoldContext)
      throw new Error('KV cache is empty: put the condition tokens in it first (forwardCacheUpdate)');
    return;
  }
  if (k.shape[0] !== rows) {
    throw new Error(
      `KV cache holds ${k.shape[0]} rows but this call needs ${rows}` +
        (rows % 2 === 0 ? ' (with CFG the cache holds [cond; null] = 2N rows)' : ''),
    );
  }
}

/** Every official parameter present with the right shape; an error lists the missing / unexpected / misshapen. */
function checkStateDict(c: CausalFusionConfig, sd: Record<string, HostTensor>): void {
  const problems: string[] = [];
  const want = new Map(parameterShapes(c));
  for (const [name, shape] of want) {
    const got = sd[name];
    if (!got) problems.push(`missing ${name}`);
    else if (!tf.util.arraysEqual(got.shape, shape))
      problems.push(`${name} has shape [${got.shape}], expected [${shape}]`);
    else if (got.data.length !== shape.reduce((a, b) => a * b, 1))
      problems.push(`${name} has ${got.data.length} values for shape [${shape}]`);
  }
  for (const name of Object.keys(sd)) if (!want.has(name)) problems.push(`unexpected ${name}`);
  if (problems.length)
    throw new Error(
      `state_dict does not fit this config: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? `; and ${problems.length - 8} more` : ''}`,
    );
}
