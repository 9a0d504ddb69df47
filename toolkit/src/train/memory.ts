/**
 * Will a training step fit the GPU? The largest single buffer of a step is known from the shapes alone: the
 * MLP's hidden activations [B·T, mlpRatio·D] over the longest sequence an AR split can make (T = condition tokens + L
 * noised + L − 1 clean ones, at S = L), or, without flash attention, the scores [B, H, T, T]. WebGPU refuses a
 * buffer above the adapter's `maxStorageBufferBindingSize` / `maxBufferSize`, and a refused buffer surfaces as
 * a validation error steps later; checking before the first step names the cause and the batch that fits.
 */
import type { CausalFusionConfig } from '../model/config';
import { numPatches } from '../model/config';

/** The biggest buffer of a training step. */
export interface StepBuffers {
  /** Bytes of the largest single buffer. */
  largestBytes: number;
  /** What it holds, for messages. */
  largest: string;
  /** Tokens of the longest training sequence. */
  tokens: number;
}

/** The largest buffer of a step at `batch`, for model `c`. */
export function stepBuffers(c: CausalFusionConfig, batch: number, opts: { flashAttention: boolean }): StepBuffers {
  const L = numPatches(c);
  const T = c.numCondTokens + 2 * L - 1;
  const hidden = Math.floor(c.hiddenSize * c.mlpRatio);
  const mlp = batch * T * hidden * 4;
  const scores = batch * c.numHeads * T * T * 4;
  const [largestBytes, largest] =
    !opts.flashAttention && scores > mlp
      ? [scores, `attention scores [B, H, T, T] = [${batch}, ${c.numHeads}, ${T}, ${T}]`]
      : [mlp, `MLP activations [B·T, ${hidden}] = [${batch}·${T}, ${hidden}]`];
  return { largestBytes, largest, tokens: T };
}

const GiB = 2 ** 30;
const gib = (b: number) => `${(b / GiB).toFixed(2)} GiB`;

/**
 * Throws, naming the buffer, the limit and the largest batch that fits, when a step at `batch` needs a buffer
 * above the adapter's limits.
 */
export function checkStepFits(
  c: CausalFusionConfig,
  batch: number,
  limits: Record<string, number>,
  opts: { flashAttention: boolean },
): void {
  const b = stepBuffers(c, batch, opts);
  const limit = Math.min(limits.maxStorageBufferBindingSize ?? Infinity, limits.maxBufferSize ?? Infinity);
  if (b.largestBytes <= limit) return;
  const perSample = b.largestBytes / batch;
  const fits = Math.floor(limit / perSample);
  throw new Error(
    `batch ${batch} does not fit this GPU: a training step needs a ${gib(b.largestBytes)} buffer (${b.largest}, ` +
      `T up to ${b.tokens} tokens) and the adapter allows at most ${gib(limit)} per buffer; ` +
      (fits >= 1
        ? `use a batch of at most ${fits}`
        : 'even one sample is too large: use a smaller model (width or tokens)') +
      ` (activation checkpointing saves memory across layers but not this buffer)`,
  );
}
