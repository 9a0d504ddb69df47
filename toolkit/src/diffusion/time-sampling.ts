/**
 * Which diffusion times a training batch draws. The official `train.py` draws t uniformly. `min-snr` draws t with
 * probability proportional to the Min-SNR-γ loss weight (Hang et al. 2023, "Efficient Diffusion Training via
 * Min-SNR Weighting Strategy"): min(SNR_t, γ) / (SNR_t + 1) for v-prediction, min(SNR_t, γ) / SNR_t for eps.
 * Sampling by the weight instead of multiplying the loss by it gives the same expected gradient up to a constant,
 * and spends no steps on the nearly clean times whose weight is ~0.
 */
import type { Rng } from '../rng';
import type { GaussianDiffusion } from './gaussian';

export type TimeSampling = 'uniform' | 'min-snr';

/**
 * γ of Min-SNR-γ. The paper uses 5; for the main job 2 measured better (10-minute runs on 2 cores, N = 1000:
 * 91.0 % unguided accuracy, FD 18.8 against 89.4 %, FD 22.5 with 5, and 88.5 %, FD 28.6 with uniform times).
 */
export const MIN_SNR_GAMMA = 2;

/** The cumulative distribution of t under Min-SNR-γ for the diffusion's prediction, over its timesteps. */
export function minSnrCdf(d: GaussianDiffusion, gamma = MIN_SNR_GAMMA): Float64Array {
  const cdf = new Float64Array(d.numTimesteps);
  let total = 0;
  d.alphasCumprod.forEach((a, t) => {
    const snr = a / (1 - a);
    cdf[t] = total += Math.min(snr, gamma) / (d.prediction === 'v' ? snr + 1 : snr);
  });
  return cdf.map((c) => c / total);
}

/** A function drawing one training time from `rng` (uniform: exactly the official `randint`). */
export function timeSampler(d: GaussianDiffusion, kind: TimeSampling): (rng: Rng) => number {
  if (kind === 'uniform') return (rng) => rng.randint(0, d.numTimesteps - 1);
  const cdf = minSnrCdf(d);
  return (rng) => {
    const u = rng.random();
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}
