/**
 * The optimisation recipe of the official `train.py`: `clip_grad_norm_(params, 1.0)`, `torch.optim.AdamW`
 * (beta 0.9 / 0.95, eps 1e-15, no weight decay by default), constant LR with linear warm-up
 * (`get_constant_schedule_with_warmup`) and an EMA of all parameters (decay 0.9999).
 */
import * as tf from '@tensorflow/tfjs-core';
import { StateDict } from '../model/params';
import { OFFICIAL_RECIPE } from './recipes';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = {
  lr: OFFICIAL_RECIPE.lr,
  beta1: OFFICIAL_RECIPE.beta1,
  beta2: OFFICIAL_RECIPE.beta2,
  eps: OFFICIAL_RECIPE.eps,
  weightDecay: OFFICIAL_RECIPE.weightDecay,
};

/** AdamW's bias corrections at `step` (counted from 1): 1 - beta1^step and sqrt(1 - beta2^step). */
export function biasCorrections(c: AdamWConfig, step: number): { bc1: number; bc2Sqrt: number } {
  return { bc1: 1 - Math.pow(c.beta1, step), bc2Sqrt: Math.sqrt(1 - Math.pow(c.beta2, step)) };
}

/** AdamW's serialisable state: the step count and both moments per parameter. */
export interface AdamWState {
  step: number;
  expAvg: StateDict;
  expAvgSq: StateDict;
}

/** `torch.optim.AdamW`, same update order and bias corrections; `state()` / `load()` save and restore it. */
export class AdamW {
  readonly config: AdamWConfig;
  step = 0;
  readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();

  constructor(config: Partial<AdamWConfig> = {}) {
    this.config = { ...ADAMW_DEFAULTS, ...config };
    const c = this.config;
    if (!(c.lr >= 0)) throw new Error(`learning rate must be >= 0, got ${c.lr}`);
    if (!(c.beta1 >= 0 && c.beta1 < 1) || !(c.beta2 >= 0 && c.beta2 < 1))
      throw new Error(`AdamW betas must be in [0, 1), got ${c.beta1}, ${c.beta2}`);
    if (!(c.eps > 0)) throw new Error(`AdamW eps must be > 0, got ${c.eps}`);
    if (!(c.weightDecay >= 0)) throw new Error(`weight decay must be >= 0, got ${c.weightDecay}`);
  }

  /** Applies one update to `params[name]` for every gradient given, at learning rate `lr`, and counts it. */
  apply(params: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr = this.config.lr): void {
    this.step += 1;
    this.applyAt(params, grads, lr, this.step);
  }

  /** The update of `apply` with the bias corrections of `step`, leaving the step count to the caller. */
  applyAt(params: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number, step: number): void {
    const { beta1, beta2, eps, weightDecay } = this.config;
    const { bc1, bc2Sqrt } = biasCorrections(this.config, step);
    for (const [name, g] of Object.entries(grads)) {
      const p = params[name];
      const { m, v } = this.moment(name, p);
      tf.tidy(() => {
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        const denom = tf.add(tf.div(tf.sqrt(v1), bc2Sqrt), eps);
        let p1 = weightDecay > 0 ? tf.mul(p, 1 - lr * weightDecay) : (p as tf.Tensor);
        p1 = tf.sub(p1, tf.mul(tf.div(m1, denom), lr / bc1));
        m.assign(m1);
        v.assign(v1);
        p.assign(p1);
      });
    }
  }

  /** The step count and both moments as host arrays: the official checkpoint's `opt` entry (`exp_avg`, `exp_avg_sq`). */
  state(): AdamWState {
    const expAvg: StateDict = {};
    const expAvgSq: StateDict = {};
    for (const [name, { m, v }] of this.moments) {
      expAvg[name] = { shape: m.shape.slice(), data: m.dataSync() as Float32Array };
      expAvgSq[name] = { shape: v.shape.slice(), data: v.dataSync() as Float32Array };
    }
    return { step: this.step, expAvg, expAvgSq };
  }

  /** Restores what `state` returned (replacing any moments held); `label` names the source in errors. */
  load(s: AdamWState, label = 'optimizer state'): void {
    const names = Object.keys(s.expAvg);
    const incomplete = names.find((n) => !s.expAvgSq[n] || s.expAvgSq[n].data.length !== s.expAvg[n].data.length);
    if (incomplete !== undefined) throw new Error(`${label}: optimizer state of ${incomplete} is incomplete`);
    this.dispose();
    this.step = s.step;
    for (const name of names) {
      const m = s.expAvg[name];
      const v = s.expAvgSq[name];
      this.moments.set(
        name,
        tf.tidy(() => ({
          m: tf.variable(tf.tensor(m.data, m.shape), false),
          v: tf.variable(tf.tensor(v.data, v.shape), false),
        })),
      );
    }
  }

  /** The first and second moments of parameter `name`, created as zeros shaped like `like` on first use. */
  moment(name: string, like: tf.Tensor): { m: tf.Variable; v: tf.Variable } {
    let st = this.moments.get(name);
    if (!st) {
      st = tf.tidy(() => ({ m: tf.variable(tf.zerosLike(like), false), v: tf.variable(tf.zerosLike(like), false) }));
      this.moments.set(name, st);
    }
    return st;
  }

  dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
  }
}

/**
 * `clip_grad_norm_(max_norm)`: scales all gradients by min(1, max_norm / (total_norm + 1e-6)). Returns new
 * gradient tensors (the inputs are disposed) and the total norm before clipping.
 */
export function clipGradNorm(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
): { grads: Record<string, tf.Tensor>; norm: number } {
  const norm = tf.tidy(() => Math.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))).dataSync()[0]));
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  if (coef >= 1 || !Number.isFinite(norm)) return { grads, norm };
  const out: Record<string, tf.Tensor> = {};
  for (const [k, g] of Object.entries(grads)) {
    out[k] = tf.mul(g, coef);
    g.dispose();
  }
  return { grads: out, norm };
}

/** `get_constant_schedule_with_warmup`: lr * min(1, step / warmup), step counted from 0 before the update. */
export function warmupLr(baseLr: number, step: number, warmupSteps: number): number {
  return warmupSteps > 0 && step < warmupSteps ? (baseLr * step) / warmupSteps : baseLr;
}

/**
 * Exponential moving average of all parameters (trainable or not), initialised as a copy
 * (`update_ema(ema, model, decay=0)`). `shadow` may be the parameters of a second model, so the EMA weights
 * can be sampled from directly.
 */
export class Ema {
  readonly shadow: Record<string, tf.Variable>;

  constructor(
    params: Record<string, tf.Variable>,
    readonly decay = 0.9999,
    shadow?: Record<string, tf.Variable>,
  ) {
    if (!(decay >= 0 && decay <= 1)) throw new Error(`EMA decay must be in [0, 1], got ${decay}`);
    if (shadow) {
      for (const [k, p] of Object.entries(params)) {
        if (!shadow[k]) throw new Error(`EMA target has no parameter ${k}`);
        shadow[k].assign(p);
      }
      this.shadow = shadow;
    } else {
      this.shadow = {};
      for (const [k, p] of Object.entries(params)) this.shadow[k] = tf.tidy(() => tf.variable(p.clone(), false));
    }
  }

  /** ema = decay * ema + (1 - decay) * param. */
  update(params: Record<string, tf.Variable>): void {
    tf.tidy(() => {
      for (const [k, e] of Object.entries(this.shadow))
        e.assign(tf.add(tf.mul(e, this.decay), tf.mul(params[k], 1 - this.decay)));
    });
  }

  dispose(): void {
    tf.dispose(Object.values(this.shadow));
  }
}
