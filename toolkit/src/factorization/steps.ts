/**
 * How an image of L tokens is cut into AR steps (the "number of AR steps" law of the paper, Sec. 2.1 of the
 * notes) — `split_integer_exp_decay` of the official `train.py`.
 */
import { Rng } from '../rng';

/** Step sizes and their running boundaries: step i covers shuffled positions [cumsum[i], cumsum[i+1]). */
export interface Split {
  splitSizes: number[];
  cumsum: number[];
}

/**
 * P(number of AR steps = n) for n = 1..L: truncated geometric, P(n) ∝ decay^(n-1); uniform when decay = 1.
 * Same arithmetic as the official code (`base * decay**i`), so it matches it to the last bits.
 */
export function arStepCountProbs(L: number, decay: number): Float64Array {
  checkTokenCount(L);
  if (!(decay > 0 && decay <= 1)) throw new Error(`AR-step decay must be in (0, 1], got ${decay}`);
  const p = new Float64Array(L);
  if (decay === 1) return p.fill(1 / L);
  const base = (1 - decay) / (1 - Math.pow(decay, L));
  for (let i = 0; i < L; i++) p[i] = base * Math.pow(decay, i);
  return p;
}

/**
 * Draws the number of AR steps from `arStepCountProbs(L, decay)`, then n-1 distinct cut points uniformly
 * from 1..L-1 (`split_integer_exp_decay(S=L, ar_step_decay=decay)`).
 */
export function splitIntegerExpDecay(L: number, decay: number, rng: Rng): Split {
  const n = decay === 1 ? rng.randint(1, L) : 1 + rng.choice(arStepCountProbs(L, decay));
  return splitIntegerRandom(L, n, rng);
}

/** A split into exactly `numSteps` steps with uniformly random cut points (fixed-S training, Table 2). */
export function splitIntegerRandom(L: number, numSteps: number, rng: Rng): Split {
  checkStepCount(L, numSteps);
  const cuts = rng.sample(range(1, L), numSteps - 1).sort((a, b) => a - b);
  return fromCumsum([0, ...cuts, L]);
}

/** A split into `numSteps` steps of (almost) equal size, larger steps first: what samplers use by default. */
export function splitEqual(L: number, numSteps: number): Split {
  checkStepCount(L, numSteps);
  const base = Math.floor(L / numSteps);
  const extra = L % numSteps;
  return fromSizes(
    Array.from({ length: numSteps }, (_, i) => base + (i < extra ? 1 : 0)),
    L,
  );
}

/** Validates user-given step sizes (positive integers summing to L) and adds their cumsum. */
export function fromSizes(splitSizes: readonly number[], L: number): Split {
  checkTokenCount(L);
  if (splitSizes.length === 0) throw new Error('split sizes must not be empty');
  const bad = splitSizes.find((s) => !Number.isInteger(s) || s <= 0);
  if (bad !== undefined) throw new Error(`split sizes must be positive integers, got ${bad} in [${splitSizes}]`);
  const total = splitSizes.reduce((a, b) => a + b, 0);
  if (total !== L) {
    throw new Error(`split sizes [${splitSizes}] sum to ${total}, but the image has L = ${L} tokens`);
  }
  const cumsum = [0];
  for (const s of splitSizes) cumsum.push(cumsum[cumsum.length - 1] + s);
  return { splitSizes: splitSizes.slice(), cumsum };
}

/** Builds a split from its boundaries [0, c1, ..., L]. */
export function fromCumsum(cumsum: readonly number[]): Split {
  if (cumsum.length < 2 || cumsum[0] !== 0) throw new Error(`cumsum must start at 0, got [${cumsum}]`);
  const sizes = cumsum.slice(1).map((c, i) => c - cumsum[i]);
  return fromSizes(sizes, cumsum[cumsum.length - 1]);
}

function range(lo: number, hi: number): number[] {
  return Array.from({ length: Math.max(0, hi - lo) }, (_, i) => lo + i);
}

function checkTokenCount(L: number): void {
  if (!Number.isInteger(L) || L < 1) throw new Error(`the number of tokens L must be a positive integer, got ${L}`);
}

function checkStepCount(L: number, n: number): void {
  checkTokenCount(L);
  if (!Number.isInteger(n) || n < 1 || n > L) {
    throw new Error(`the number of AR steps must be an integer in [1, L = ${L}], got ${n}`);
  }
}
