/**
 * The generalized causal mask (`get_attn_mask` of the official `train.py`) and the sequence layout it acts on:
 * `[cond | clean tokens of steps 1..S-1 | noisy tokens of all L positions]`.
 */
import { Split, fromSizes } from './steps';

/** A square boolean mask over the training sequence, row = query, column = key, stored row-major. */
export interface AttnMask {
  seqLen: number;
  /** 1 = the query may NOT attend to the key (the official polarity); 0 = it may. */
  maskedOut: Uint8Array;
}

/** Length of the training sequence: cond + clean tokens of all but the last step + all L noisy tokens. */
export function sequenceLength(L: number, condLen: number, splitSizes: readonly number[]): number {
  return condLen + L - splitSizes[splitSizes.length - 1] + L;
}

/**
 * `get_attn_mask(sample_len=L, cond_len, split_sizes, cumsum)`: every row sees the cond tokens; clean rows of
 * step i see clean steps <= i; noisy rows of step i see clean steps < i and the noisy tokens of step i only.
 */
export function getAttnMask(L: number, condLen: number, splitSizes: readonly number[]): AttnMask {
  if (!Number.isInteger(condLen) || condLen < 0)
    throw new Error(`cond_len must be a non-negative integer, got ${condLen}`);
  const { cumsum } = fromSizes(splitSizes, L);
  const S = splitSizes.length;
  const visibleLen = L - splitSizes[S - 1];
  const ctxLen = condLen + visibleLen;
  const seqLen = ctxLen + L;
  const m = new Uint8Array(seqLen * seqLen).fill(1);
  const open = (r0: number, r1: number, c0: number, c1: number) => {
    for (let r = r0; r < r1; r++) m.fill(0, r * seqLen + c0, r * seqLen + c1);
  };
  open(0, seqLen, 0, condLen);
  for (let i = 0; i < S - 1; i++) {
    open(condLen + cumsum[i], condLen + cumsum[i + 1], condLen, condLen + cumsum[i + 1]); // triangle1
    open(ctxLen + cumsum[i + 1], ctxLen + cumsum[i + 2], condLen, condLen + cumsum[i + 1]); // triangle2
  }
  for (let i = 0; i < S; i++)
    open(ctxLen + cumsum[i], ctxLen + cumsum[i + 1], ctxLen + cumsum[i], ctxLen + cumsum[i + 1]);
  return { seqLen, maskedOut: m };
}

/**
 * The same mask as key ranges, 3 numbers per query row: the row may attend to keys [0, prefixEnd) and
 * [ownStart, ownEnd). Every row of the generalized causal mask has this shape (cond + earlier clean steps, then
 * its own noisy step), so a fused attention kernel needs O(S) numbers instead of an S x S tensor.
 */
export function getAttnRanges(L: number, condLen: number, splitSizes: readonly number[]): Int32Array {
  const { cumsum } = fromSizes(splitSizes, L);
  const S = splitSizes.length;
  const ctxLen = condLen + L - splitSizes[S - 1];
  const out = new Int32Array(3 * (ctxLen + L));
  for (let r = 0; r < condLen; r++) out[3 * r] = condLen;
  for (let i = 0; i < S; i++) {
    for (let j = cumsum[i]; j < cumsum[i + 1]; j++) {
      if (i < S - 1) out[3 * (condLen + j)] = condLen + cumsum[i + 1]; // clean row: steps <= i
      out.set([condLen + cumsum[i], ctxLen + cumsum[i], ctxLen + cumsum[i + 1]], 3 * (ctxLen + j)); // noisy row
    }
  }
  return out;
}

/** Ranges of unmasked attention (the KV-cache path): each of `rows` queries sees all `keys` keys. */
export function fullRanges(rows: number, keys: number): Int32Array {
  const out = new Int32Array(3 * rows);
  for (let r = 0; r < rows; r++) out[3 * r] = keys;
  return out;
}

/** The same mask in the opposite polarity (1 = may attend), as PyTorch's `scaled_dot_product_attention` wants. */
export function invertMask(mask: AttnMask): AttnMask {
  return { seqLen: mask.seqLen, maskedOut: mask.maskedOut.map((v) => 1 - v) };
}

/** Additive form used inside softmax: 0 where attention is allowed, -Infinity where it is masked out. */
export function additiveMask(mask: AttnMask): Float32Array {
  const out = new Float32Array(mask.maskedOut.length);
  for (let i = 0; i < out.length; i++) out[i] = mask.maskedOut[i] ? -Infinity : 0;
  return out;
}

/** What a position of the training sequence holds. */
export type TokenRole = 'cond' | 'clean' | 'noisy';

/** One position of the training sequence, for labels, hovers and recorders. */
export interface SequencePosition {
  role: TokenRole;
  /** AR step (0-based) of a clean or noisy token; -1 for cond tokens. */
  step: number;
  /** Raster index of the image token (needs `order`), or the cond-token index for cond tokens. */
  token: number;
}

/** How hovers and labels name a sequence position: role, raster token and AR step. */
export const positionLabel = (p: SequencePosition): string =>
  p.role === 'cond' ? `condition token ${p.token}` : `${p.role} token ${p.token} (AR step ${p.step + 1})`;

/**
 * Describes every position of the sequence built for `split`. `order` maps shuffled position -> raster
 * index (the sample's `ids_shuffle`); without it, `token` is the shuffled position.
 */
export function describeSequence(
  L: number,
  condLen: number,
  split: Split,
  order?: readonly number[],
): SequencePosition[] {
  if (order && order.length !== L) throw new Error(`order has ${order.length} entries, expected L = ${L}`);
  const stepOf = new Int32Array(L);
  split.splitSizes.forEach((_, s) => stepOf.fill(s, split.cumsum[s], split.cumsum[s + 1]));
  const visibleLen = L - split.splitSizes[split.splitSizes.length - 1];
  const out: SequencePosition[] = [];
  for (let c = 0; c < condLen; c++) out.push({ role: 'cond', step: -1, token: c });
  const tok = (i: number) => (order ? order[i] : i);
  for (let i = 0; i < visibleLen; i++) out.push({ role: 'clean', step: stepOf[i], token: tok(i) });
  for (let i = 0; i < L; i++) out.push({ role: 'noisy', step: stepOf[i], token: tok(i) });
  return out;
}
