/**
 * The paper's Fig. 4b from the AR-step sampler alone: Monte Carlo statistics of `splitIntegerExpDecay` for one
 * decay gamma: the law of the number of AR steps S, and how much of training happens in small steps.
 */
import { Rng } from '../rng';
import { splitIntegerExpDecay } from './steps';

export interface ArStepStats {
  L: number;
  gamma: number;
  draws: number;
  /** P(S = s) for s = 0..L (index 0 unused). */
  pS: Float64Array;
  /** Share of all drawn AR steps with at most k tokens, k = 0..L. */
  stepShare: Float64Array;
  /** Share of all tokens that sit in AR steps of at most k tokens, k = 0..L. */
  tokenShare: Float64Array;
}

/** `draws` splits of L tokens under decay `gamma`, from a stream named after gamma (the same for any caller). */
export function arStepStats(L: number, gamma: number, opts: { draws?: number; seed?: number } = {}): ArStepStats {
  const draws = opts.draws ?? 20000;
  const rng = new Rng(opts.seed ?? 0).fork(`gamma-${gamma}`);
  const pS = new Float64Array(L + 1);
  const stepsOfSize = new Float64Array(L + 1);
  let steps = 0;
  for (let i = 0; i < draws; i++) {
    const { splitSizes } = splitIntegerExpDecay(L, gamma, rng);
    pS[splitSizes.length]++;
    for (const k of splitSizes) stepsOfSize[k]++;
    steps += splitSizes.length;
  }
  const stepShare = new Float64Array(L + 1);
  const tokenShare = new Float64Array(L + 1);
  // shares of cumulative counts (not sums of shares): exact for every k
  let accSteps = 0;
  let accTokens = 0;
  for (let k = 1; k <= L; k++) {
    pS[k] /= draws;
    accSteps += stepsOfSize[k];
    accTokens += k * stepsOfSize[k];
    stepShare[k] = accSteps / steps;
    tokenShare[k] = accTokens / (draws * L);
  }
  return { L, gamma, draws, pS, stepShare, tokenShare };
}
