/**
 * The Gaussian diffusion of the official code (`diffusion/gaussian_diffusion.py`, ADM lineage): linear beta
 * schedule, epsilon prediction, fixed-large variance for sampling. Like ADM's `model_mean_type`, the diffusion owns
 * what the network predicts (eps, or v for the demo models): callers hand it the network's output. Schedules are float64, like numpy there;
 * per-sample coefficients are rounded to float32 before they touch tensors, like `_extract_into_tensor`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { spaceTimesteps } from './respace';

/** Noise schedules: 'linear' is the official one; 'cosine' (Nichol & Dhariwal) is offered for small pixel models. */
export type NoiseSchedule = 'linear' | 'cosine';

/**
 * `get_named_beta_schedule`: Ho et al.'s linear schedule scaled to any number of steps (np.linspace), or the
 * cosine schedule of improved DDPM (`betas_for_alpha_bar` with max beta 0.999).
 */
export function getNamedBetaSchedule(numTimesteps = 1000, schedule: NoiseSchedule = 'linear'): Float64Array {
  if (!Number.isInteger(numTimesteps) || numTimesteps < 2)
    throw new Error(`diffusion steps must be an integer >= 2, got ${numTimesteps}`);
  if (schedule === 'cosine') {
    const abar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    return Float64Array.from({ length: numTimesteps }, (_, i) =>
      Math.min(1 - abar((i + 1) / numTimesteps) / abar(i / numTimesteps), 0.999),
    );
  }
  if (schedule !== 'linear') throw new Error(`unknown noise schedule "${schedule as string}" (use linear or cosine)`);
  const scale = 1000 / numTimesteps;
  const start = scale * 0.0001;
  const stop = scale * 0.02;
  const step = (stop - start) / (numTimesteps - 1);
  const b = new Float64Array(numTimesteps);
  for (let i = 0; i < numTimesteps; i++) b[i] = i * step + start;
  b[numTimesteps - 1] = stop;
  return b;
}

export type ModelVarType = 'fixed-large' | 'fixed-small';

/**
 * What the network predicts: 'eps' (the official model) or 'v' = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans &
 * Ho), which keeps the target's scale at every t.
 */
export type Prediction = 'eps' | 'v';

function cumprod(a: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  let acc = 1;
  for (let i = 0; i < a.length; i++) out[i] = acc *= a[i];
  return out;
}

const map = (a: Float64Array, f: (v: number, i: number) => number) => Float64Array.from(a, f);

export class GaussianDiffusion {
  readonly numTimesteps: number;
  readonly alphasCumprod: Float64Array;
  readonly alphasCumprodPrev: Float64Array;
  readonly sqrtAlphasCumprod: Float64Array;
  readonly sqrtOneMinusAlphasCumprod: Float64Array;
  readonly sqrtRecipAlphasCumprod: Float64Array;
  readonly sqrtRecipm1AlphasCumprod: Float64Array;
  readonly posteriorVariance: Float64Array;
  readonly posteriorLogVarianceClipped: Float64Array;
  readonly posteriorMeanCoef1: Float64Array;
  readonly posteriorMeanCoef2: Float64Array;
  /** Variance used by `pSample`: fixed-large is beta_t with the first entry replaced by posterior_variance[1]. */
  readonly modelVariance: Float64Array;
  /** Respaced index -> original timestep (identity when not respaced); the model is always called with these. */
  readonly timestepMap: number[];

  constructor(
    readonly betas: Float64Array,
    readonly modelVarType: ModelVarType = 'fixed-large',
    timestepMap?: number[],
    readonly prediction: Prediction = 'eps',
  ) {
    if (prediction !== 'eps' && prediction !== 'v')
      throw new Error(`prediction must be eps or v, got ${String(prediction)}`);
    if (betas.some((b) => !(b > 0 && b <= 1))) throw new Error('betas must lie in (0, 1]');
    this.numTimesteps = betas.length;
    this.timestepMap = timestepMap ?? Array.from({ length: betas.length }, (_, i) => i);
    const alphas = map(betas, (b) => 1 - b);
    this.alphasCumprod = cumprod(alphas);
    const ac = this.alphasCumprod;
    this.alphasCumprodPrev = map(ac, (_, i) => (i === 0 ? 1 : ac[i - 1]));
    const acp = this.alphasCumprodPrev;
    this.sqrtAlphasCumprod = map(ac, Math.sqrt);
    this.sqrtOneMinusAlphasCumprod = map(ac, (v) => Math.sqrt(1 - v));
    this.sqrtRecipAlphasCumprod = map(ac, (v) => Math.sqrt(1 / v));
    this.sqrtRecipm1AlphasCumprod = map(ac, (v) => Math.sqrt(1 / v - 1));
    this.posteriorVariance = map(betas, (b, i) => (b * (1 - acp[i])) / (1 - ac[i]));
    const pv = this.posteriorVariance;
    this.posteriorLogVarianceClipped = map(pv, (v, i) => Math.log(i === 0 ? pv[1] : v));
    this.posteriorMeanCoef1 = map(betas, (b, i) => (b * Math.sqrt(acp[i])) / (1 - ac[i]));
    this.posteriorMeanCoef2 = map(betas, (b, i) => ((1 - acp[i]) * Math.sqrt(1 - b)) / (1 - ac[i]));
    this.modelVariance = modelVarType === 'fixed-large' ? map(betas, (b, i) => (i === 0 ? pv[1] : b)) : pv.slice();
  }

  /** Per-sample float32 coefficient tensor of shape [N, 1, ..., 1] (rank `rank`). */
  private coef(arr: Float64Array, t: readonly number[], rank: number): tf.Tensor {
    t.forEach((ti) => {
      if (!Number.isInteger(ti) || ti < 0 || ti >= this.numTimesteps) {
        throw new Error(`timestep ${ti} is outside [0, ${this.numTimesteps})`);
      }
    });
    const shape = [t.length, ...new Array(rank - 1).fill(1)];
    return tf.tensor(
      Float32Array.from(t, (ti) => arr[ti]),
      shape,
    );
  }

  /** q(x_t | x_0): sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, one t per sample (first axis). */
  qSample(xStart: tf.Tensor, t: readonly number[], noise: tf.Tensor): tf.Tensor {
    if (!tf.util.arraysEqual(xStart.shape, noise.shape))
      throw new Error(`noise shape [${noise.shape}] != x shape [${xStart.shape}]`);
    return tf.tidy(() =>
      tf.add(
        tf.mul(this.coef(this.sqrtAlphasCumprod, t, xStart.rank), xStart),
        tf.mul(this.coef(this.sqrtOneMinusAlphasCumprod, t, xStart.rank), noise),
      ),
    );
  }

  /**
   * The v target sqrt(abar_t) eps - sqrt(1 - abar_t) x0 on host arrays (one t per sample), float32 arithmetic.
   */
  vTargetArray(xStart: Float32Array, t: readonly number[], noise: Float32Array): Float32Array {
    const per = xStart.length / t.length;
    const fr = Math.fround;
    const out = new Float32Array(xStart.length);
    t.forEach((ti, n) => {
      const a = fr(this.sqrtAlphasCumprod[ti]);
      const s = fr(this.sqrtOneMinusAlphasCumprod[ti]);
      for (let i = n * per; i < (n + 1) * per; i++) out[i] = fr(fr(a * noise[i]) - fr(s * xStart[i]));
    });
    return out;
  }

  /**
   * The regression target of a training batch on host arrays (one t per sample): the noise, or v =
   * sqrt(abar_t) eps - sqrt(1 - abar_t) x0 for a v-predicting model.
   */
  trainingTargetArray(xStart: Float32Array, t: readonly number[], noise: Float32Array): Float32Array {
    return this.prediction === 'v' ? this.vTargetArray(xStart, t, noise) : noise;
  }

  /** eps from the network's output at index t of this (possibly respaced) chain: the output itself, or from v. */
  epsFromOutput(xT: tf.Tensor, t: number, out: tf.Tensor): tf.Tensor {
    return this.prediction === 'v' ? this.epsFromV(xT, t, out) : out;
  }

  /** eps from a v prediction: sqrt(1 - abar_t) x_t + sqrt(abar_t) v, at index t of this (possibly respaced) chain. */
  epsFromV(xT: tf.Tensor, t: number, v: tf.Tensor): tf.Tensor {
    return tf.tidy(() =>
      tf.add(
        tf.mul(Math.fround(this.sqrtOneMinusAlphasCumprod[t]), xT),
        tf.mul(Math.fround(this.sqrtAlphasCumprod[t]), v),
      ),
    );
  }

  /**
   * `qSample` on host arrays [N, ...] (one t per sample), with the same float32 arithmetic as the tensor
   * version: used to build training batches without a round trip through the backend.
   */
  qSampleArray(xStart: Float32Array, t: readonly number[], noise: Float32Array): Float32Array {
    if (xStart.length !== noise.length) throw new Error(`noise has ${noise.length} values, x has ${xStart.length}`);
    const per = xStart.length / t.length;
    if (!Number.isInteger(per)) throw new Error(`${xStart.length} values do not split into ${t.length} samples`);
    const fr = Math.fround;
    const out = new Float32Array(xStart.length);
    t.forEach((ti, n) => {
      if (!Number.isInteger(ti) || ti < 0 || ti >= this.numTimesteps)
        throw new Error(`timestep ${ti} is outside [0, ${this.numTimesteps})`);
      const a = fr(this.sqrtAlphasCumprod[ti]);
      const s = fr(this.sqrtOneMinusAlphasCumprod[ti]);
      for (let i = n * per; i < (n + 1) * per; i++) out[i] = fr(fr(a * xStart[i]) + fr(s * noise[i]));
    });
    return out;
  }

  /** x0 implied by a noise prediction: sqrt(1/abar) x_t - sqrt(1/abar - 1) eps. */
  predictXStartFromEps(xT: tf.Tensor, t: readonly number[], eps: tf.Tensor): tf.Tensor {
    return tf.tidy(() =>
      tf.sub(
        tf.mul(this.coef(this.sqrtRecipAlphasCumprod, t, xT.rank), xT),
        tf.mul(this.coef(this.sqrtRecipm1AlphasCumprod, t, xT.rank), eps),
      ),
    );
  }

  /** x0 from eps, clamped to [-1, 1] when `clip` (`clip_denoised`); DDIM then re-derives eps from it. */
  private predXStart(xT: tf.Tensor, t: readonly number[], eps: tf.Tensor, clip: boolean): tf.Tensor {
    const x0 = this.predictXStartFromEps(xT, t, eps);
    return clip ? tf.clipByValue(x0, -1, 1) : x0;
  }

  /** Mean of q(x_{t-1} | x_t, x_0). */
  qPosteriorMean(xStart: tf.Tensor, xT: tf.Tensor, t: readonly number[]): tf.Tensor {
    return tf.tidy(() =>
      tf.add(
        tf.mul(this.coef(this.posteriorMeanCoef1, t, xT.rank), xStart),
        tf.mul(this.coef(this.posteriorMeanCoef2, t, xT.rank), xT),
      ),
    );
  }

  /**
   * One ancestral DDPM step from a noise prediction (`p_sample`): returns x_{t-1} and the predicted x0.
   * `noise` is the fresh Gaussian draw; no noise is added at t = 0.
   */
  pSample(
    xT: tf.Tensor,
    t: number,
    eps: tf.Tensor,
    noise: tf.Tensor,
    clipDenoised = false,
  ): { sample: tf.Tensor; predXStart: tf.Tensor } {
    return tf.tidy(() => {
      const ts = new Array<number>(xT.shape[0]).fill(t);
      const predXStart = this.predXStart(xT, ts, eps, clipDenoised);
      const mean = this.qPosteriorMean(predXStart, xT, ts);
      const sample = t === 0 ? mean : tf.add(mean, tf.mul(Math.fround(Math.sqrt(this.modelVariance[t])), noise));
      return { sample, predXStart };
    });
  }

  /**
   * The float32 coefficients of one reverse step at index t of this chain, for a fused kernel that computes
   * `epsFromOutput`, then `pSample` or `ddimSample`, elementwise from them (see `ReverseStepCoefficients`).
   */
  reverseStepCoefficients(t: number, o: { ddim: boolean; eta: number; clip: boolean }): ReverseStepCoefficients {
    if (!Number.isInteger(t) || t < 0 || t >= this.numTimesteps)
      throw new Error(`timestep ${t} is outside [0, ${this.numTimesteps})`);
    const f = Math.fround;
    const v = this.prediction === 'v';
    const common = {
      vA: v ? f(this.sqrtOneMinusAlphasCumprod[t]) : 0,
      vB: v ? f(this.sqrtAlphasCumprod[t]) : 1,
      c1: f(this.sqrtRecipAlphasCumprod[t]),
      c2: f(this.sqrtRecipm1AlphasCumprod[t]),
      clip: o.clip,
      ddim: o.ddim,
    };
    if (!o.ddim)
      return {
        ...common,
        m1: f(this.posteriorMeanCoef1[t]),
        m2: f(this.posteriorMeanCoef2[t]),
        sigma: t === 0 ? 0 : f(Math.sqrt(this.modelVariance[t])),
      };
    const abar = this.alphasCumprod[t];
    const abarPrev = this.alphasCumprodPrev[t];
    const sigma = o.eta * Math.sqrt((1 - abarPrev) / (1 - abar)) * Math.sqrt(1 - abar / abarPrev);
    const dir = Math.sqrt(Math.max(0, 1 - abarPrev - sigma * sigma));
    return { ...common, m1: f(Math.sqrt(abarPrev)), m2: f(dir), sigma: t > 0 && sigma > 0 ? f(sigma) : 0 };
  }

  /** One DDIM step (Song et al.) with stochasticity `eta` (0 = deterministic). */
  ddimSample(
    xT: tf.Tensor,
    t: number,
    eps: tf.Tensor,
    noise: tf.Tensor,
    eta = 0,
    clipDenoised = false,
  ): { sample: tf.Tensor; predXStart: tf.Tensor } {
    return tf.tidy(() => {
      const ts = new Array<number>(xT.shape[0]).fill(t);
      const predXStart = this.predXStart(xT, ts, eps, clipDenoised);
      const abar = this.alphasCumprod[t];
      const abarPrev = this.alphasCumprodPrev[t];
      const sigma = eta * Math.sqrt((1 - abarPrev) / (1 - abar)) * Math.sqrt(1 - abar / abarPrev);
      const dir = Math.sqrt(Math.max(0, 1 - abarPrev - sigma * sigma));
      // after clamping x0, eps is re-derived from it (`_predict_eps_from_xstart`), as guided-diffusion does
      const e = clipDenoised
        ? tf.div(
            tf.sub(tf.mul(this.coef(this.sqrtRecipAlphasCumprod, ts, xT.rank), xT), predXStart),
            this.coef(this.sqrtRecipm1AlphasCumprod, ts, xT.rank),
          )
        : eps;
      let sample = tf.add(tf.mul(Math.fround(Math.sqrt(abarPrev)), predXStart), tf.mul(Math.fround(dir), e));
      if (t > 0 && sigma > 0) sample = tf.add(sample, tf.mul(Math.fround(sigma), noise));
      return { sample, predXStart };
    });
  }
}

/**
 * One reverse step as elementwise float32 arithmetic on x_t, the network output `out` and fresh noise:
 * eps = vA·x + vB·out; x0 = c1·x − c2·eps (clamped to [-1, 1] when `clip`); DDPM: next = m1·x0 + m2·x +
 * sigma·noise; DDIM: next = m1·x0 + m2·e + sigma·noise, e = clip ? (c1·x − x0) / c2 : eps.
 */
export interface ReverseStepCoefficients {
  vA: number;
  vB: number;
  c1: number;
  c2: number;
  clip: boolean;
  ddim: boolean;
  m1: number;
  m2: number;
  sigma: number;
}

/**
 * `create_diffusion(timestep_respacing)`: "" trains on all steps; "250", "50", "ddim25", "10,20,30" respace.
 * Respaced betas are recomputed from the kept alpha-bars so the marginals q(x_t | x_0) are unchanged. A model's
 * config carries its schedule and prediction: `createDiffusion('', model.config)` is the diffusion it was built for.
 */
export function createDiffusion(
  timestepRespacing: string | readonly number[] = '',
  opts: { diffusionSteps?: number; sigmaSmall?: boolean; noiseSchedule?: NoiseSchedule; prediction?: Prediction } = {},
): GaussianDiffusion {
  const T = opts.diffusionSteps ?? 1000;
  const betas = getNamedBetaSchedule(T, opts.noiseSchedule);
  const varType: ModelVarType = opts.sigmaSmall ? 'fixed-small' : 'fixed-large';
  const spec = typeof timestepRespacing === 'string' && timestepRespacing.trim() === '' ? [T] : timestepRespacing;
  const keep = new Set(spaceTimesteps(T, spec));
  const base = new GaussianDiffusion(betas, varType);
  const newBetas: number[] = [];
  const timestepMap: number[] = [];
  let last = 1.0;
  base.alphasCumprod.forEach((ac, i) => {
    if (keep.has(i)) {
      newBetas.push(1 - ac / last);
      last = ac;
      timestepMap.push(i);
    }
  });
  return new GaussianDiffusion(Float64Array.from(newBetas), varType, timestepMap, opts.prediction);
}
