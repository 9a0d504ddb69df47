/**
 * Recorders: what a notebook attaches to see inside CausalFusion. Each one turns the sampler's or the
 * trainer's events into plain, JSON-serialisable records (number arrays with their shapes and labels), and
 * records only what was selected (layers, heads, AR steps, diffusion steps, samples), so memory stays bounded.
 * Nothing is recorded, and nothing costs anything, when no recorder is attached.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AttnMask, describeSequence, getAttnMask, SequencePosition } from '../factorization/mask';
import { fromSizes } from '../factorization/steps';
import { CausalDiffusionModel, TrainingInputs } from '../model/causalfusion';
import { SamplingObserver } from '../sample/sampler';
import { StepEvent } from '../train/trainer';

/** Which events to keep; an absent list means "all". */
export interface Selection {
  layers?: readonly number[];
  heads?: readonly number[];
  arSteps?: readonly number[];
  /** Indices into the (respaced) chain, 0 = first (noisiest) step. */
  diffusionSteps?: readonly number[];
  /** Batch rows to record (default [0]). */
  samples?: readonly number[];
}

const wants = (list: readonly number[] | undefined, v: number) => !list || list.includes(v);

/** The selected heads (all when none are given) that exist in a [rows, H, Lq, Lk] tensor. */
const selectHeads = (sel: readonly number[] | undefined, H: number) =>
  (sel ?? Array.from({ length: H }, (_, h) => h)).filter((h) => h < H);

/** Row `row` of attention probabilities [rows, H, Lq, Lk], chosen heads only, [heads, Lq, Lk], on the device. */
function headsTensor(probs: tf.Tensor4D, row: number, heads: readonly number[]): tf.Tensor {
  const [, H, Lq, Lk] = probs.shape;
  return tf.tidy(() =>
    tf.gather(tf.reshape(tf.slice(probs, [row, 0, 0, 0], [1, H, Lq, Lk]), [H, Lq, Lk]), Array.from(heads)),
  );
}

/** The same as a plain array, read now. */
function headsOf(probs: tf.Tensor4D, row: number, heads: readonly number[]): number[] {
  const t = headsTensor(probs, row, heads);
  const v = Array.from(t.dataSync());
  t.dispose();
  return v;
}

/** Attention probabilities of one layer, one sample: [heads, queries, keys], with what each axis holds. */
export interface AttentionRecord {
  arStep: number;
  diffusionStep: number;
  t: number;
  layer: number;
  sample: number;
  /** Whether these rows are the unconditional (null-class) half of a CFG batch. */
  unconditional: boolean;
  heads: number[];
  shape: [number, number, number];
  data: number[];
  queries: SequencePosition[];
  keys: SequencePosition[];
}

/** The state of the tokens of one AR step at one denoising step, for one sample: [k, d] arrays. */
export interface TrajectoryRecord {
  arStep: number;
  diffusionStep: number;
  t: number;
  sample: number;
  /** Raster positions of the k tokens. */
  positions: number[];
  shape: [number, number];
  xt: number[];
  x0: number[];
  eps: number[];
}

export interface SamplingRecorderOptions {
  /** Record attention for this selection (omit to record none). */
  attention?: Selection & { unconditional?: boolean };
  /** Record x_t / x0 / eps trajectories for this selection (omit to record none). */
  trajectories?: Omit<Selection, 'layers' | 'heads'>;
  /**
   * Read attention from the device later, asynchronously: its records get their data at `settle()` (a page's
   * WebGPU and WebGL have no dependable synchronous read). Default false: records are complete at once.
   */
  deferReads?: boolean;
}

/**
 * Records a sampling run: the generation order and cache growth always (they are tiny), attention and
 * trajectories for the selected events.
 */
export class SamplingRecorder implements SamplingObserver {
  /** Raster positions produced by each AR step, per sample. */
  readonly generation: { arStep: number; positions: number[][] }[] = [];
  /** KV-cache length after each cache update and at the start of each AR step. */
  readonly cacheLength: { arStep: number; event: string; length: number }[] = [];
  readonly attention: AttentionRecord[] = [];
  readonly trajectories: TrajectoryRecord[] = [];
  /** Clean blocks in the cache after the condition tokens: AR step (-1 = kept) and positions per sample. */
  private blocks: { step: number; positions: number[][] }[] = [];
  private current: number[][] = [];
  private condTokens = 0;

  /** Attention read back at `settle()`: the device rows and the record each fills. */
  private pending: { rows: tf.Tensor; record: AttentionRecord }[] = [];

  constructor(readonly options: SamplingRecorderOptions = {}) {}

  /** Fills the records of a `deferReads` recorder (one read for all of them). Idempotent. */
  async settle(): Promise<void> {
    const pending = this.pending;
    if (!pending.length) return;
    this.pending = [];
    const all = tf.concat(pending.map((p) => tf.reshape(p.rows, [-1])));
    tf.dispose(pending.map((p) => p.rows));
    const v = await all.data();
    all.dispose();
    let at = 0;
    for (const p of pending) {
      const n = p.record.shape.reduce((a, b) => a * b, 1);
      p.record.data = Array.from(v.subarray(at, at + n));
      at += n;
    }
  }

  /** Frees attention still waiting for `settle()` (a run that stopped early). */
  dispose(): void {
    tf.dispose(this.pending.map((p) => p.rows));
    this.pending = [];
  }

  private samples(sel?: Selection): readonly number[] {
    return sel?.samples ?? [0];
  }

  onCacheUpdate(e: {
    arStep: number;
    kind: 'condition' | 'kept' | 'generated';
    added: number;
    cacheLength: number;
    positions?: number[][];
  }): void {
    if (e.kind === 'condition') {
      this.condTokens = e.added;
      this.blocks = [];
    } else if (e.positions) {
      this.blocks.push({ step: e.kind === 'kept' ? -1 : e.arStep, positions: e.positions.map((p) => p.slice()) });
    }
    this.cacheLength.push({ arStep: e.arStep, event: e.kind, length: e.cacheLength });
  }

  /** What each cached key of sample n holds: cond tokens, then kept / generated clean tokens. */
  private cacheKeys(n: number): SequencePosition[] {
    const cond: SequencePosition[] = Array.from({ length: this.condTokens }, (_, c) => ({
      role: 'cond',
      step: -1,
      token: c,
    }));
    return [
      ...cond,
      ...this.blocks.flatMap((b) =>
        b.positions[n].map((p): SequencePosition => ({ role: 'clean', step: b.step, token: p })),
      ),
    ];
  }

  onArStep(e: { arStep: number; positions: number[][]; cacheLength: number }): void {
    this.current = e.positions;
    this.generation.push({ arStep: e.arStep, positions: e.positions.map((p) => p.slice()) });
    this.cacheLength.push({ arStep: e.arStep, event: 'step-start', length: e.cacheLength });
  }

  wantsAttention(arStep: number, diffusionStep: number): boolean {
    const a = this.options.attention;
    return !!a && wants(a.arSteps, arStep) && wants(a.diffusionSteps, diffusionStep);
  }

  onAttention(e: { arStep: number; diffusionStep: number; t: number; layer: number }, probs: tf.Tensor4D): void {
    const a = this.options.attention!;
    if (!wants(a.layers, e.layer)) return;
    const [rows, H, Lq, Lk] = probs.shape;
    const N = this.current.length;
    const guided = rows === 2 * N;
    const heads = selectHeads(a.heads, H);
    const halves = guided && a.unconditional ? [false, true] : [false];
    const defer = !!this.options.deferReads;
    for (const n of this.samples(a)) {
      if (n >= N) continue;
      for (const unconditional of halves) {
        const row = unconditional ? N + n : n;
        const noisy: SequencePosition[] = this.current[n].map((p) => ({ role: 'noisy', step: e.arStep, token: p }));
        const record: AttentionRecord = {
          ...e,
          sample: n,
          unconditional,
          heads,
          shape: [heads.length, Lq, Lk],
          data: defer ? [] : headsOf(probs, row, heads),
          queries: noisy,
          keys: [...this.cacheKeys(n), ...noisy],
        };
        if (defer) this.pending.push({ rows: tf.keep(headsTensor(probs, row, heads)), record });
        this.attention.push(record);
      }
    }
  }

  onDiffusionStep(
    e: { arStep: number; diffusionStep: number; t: number },
    s: { xt: tf.Tensor3D; eps: tf.Tensor3D; x0: tf.Tensor3D; next: tf.Tensor3D },
  ): void {
    const sel = this.options.trajectories;
    if (!sel || !wants(sel.arSteps, e.arStep) || !wants(sel.diffusionSteps, e.diffusionStep)) return;
    const [N, k, d] = s.xt.shape;
    for (const n of this.samples(sel)) {
      if (n >= N) continue;
      const row = (x: tf.Tensor3D) => Array.from(tf.tidy(() => tf.slice(x, [n, 0, 0], [1, k, d]).dataSync()));
      this.trajectories.push({
        ...e,
        sample: n,
        positions: this.current[n].slice(),
        shape: [k, d],
        xt: row(s.xt),
        x0: row(s.x0),
        eps: row(s.eps),
      });
    }
  }

  /**
   * The generalized causal mask that the run was equivalent to, for `sample`: the full-sequence mask with
   * the kept tokens (editing) as a first, already clean step, and the positions in generation order.
   */
  mask(sample = 0): { mask: AttnMask; positions: SequencePosition[] } {
    const kept = this.blocks.find((b) => b.step === -1)?.positions[sample] ?? [];
    const steps = this.generation.map((g) => g.positions[sample]);
    const sizes = [...(kept.length ? [kept.length] : []), ...steps.map((s) => s.length)];
    const order = [...kept, ...steps.flat()];
    const L = order.length;
    const split = fromSizes(sizes, L);
    const positions = describeSequence(L, this.condTokens, split, order).map((p) =>
      kept.length && p.role !== 'cond' ? { ...p, step: p.step - 1 } : p,
    );
    return { mask: getAttnMask(L, this.condTokens, sizes), positions };
  }

  toJSON(): object {
    return {
      generation: this.generation,
      cacheLength: this.cacheLength,
      attention: this.attention,
      trajectories: this.trajectories,
    };
  }
}

/** What one training batch looked like to the model: mask, positions, attention, per-token loss. */
export interface TrainingTrace {
  splitSizes: number[];
  t: number[];
  /** Per-sample token order (raster index of each shuffled position). */
  orders: number[][];
  /** AR loss weight of each shuffled position. */
  arWeights: number[];
  mask: AttnMask;
  /** Sequence positions for each sample (role, AR step, raster index). */
  positions: SequencePosition[][];
  /** Per-token unweighted noise MSE, [N, L] in shuffled order. */
  tokenMse: number[][];
  attention: AttentionRecord[];
}

/**
 * Runs one training forward (no gradients) on a sampled batch with attention hooks and returns everything
 * about it; the attention equals what the training step computes on the same inputs.
 */
export function traceTrainingBatch(
  model: CausalDiffusionModel,
  batch: TrainingInputs & { arWeights?: Float32Array },
  sel: Selection = {},
): TrainingTrace {
  const L = model.numPatches;
  const nc = model.config.numCondTokens;
  const split = fromSizes(batch.splitSizes, L);
  const positions = batch.idsShuffle.map((o) => describeSequence(L, nc, split, o));
  const attention: AttentionRecord[] = [];
  const samples = sel.samples ?? [0];
  const mse = model.forward(batch, {
    attention: (layer, probs) => {
      if (!wants(sel.layers, layer)) return;
      const [, H, Lq, Lk] = probs.shape;
      const heads = selectHeads(sel.heads, H);
      for (const n of samples) {
        if (n >= probs.shape[0]) continue;
        attention.push({
          arStep: -1,
          diffusionStep: -1,
          t: batch.t[n],
          layer,
          sample: n,
          unconditional: false,
          heads,
          shape: [heads.length, Lq, Lk],
          data: headsOf(probs, n, heads),
          queries: positions[n],
          keys: positions[n],
        });
      }
    },
  });
  const tokenMse = tf.tidy(() => tf.mean(mse, 2).arraySync() as number[][]);
  mse.dispose();
  return {
    splitSizes: batch.splitSizes.slice(),
    t: batch.t.slice(),
    orders: batch.idsShuffle.map((o) => o.slice()),
    arWeights: Array.from(batch.arWeights ?? []),
    mask: getAttnMask(L, nc, batch.splitSizes),
    positions,
    tokenMse,
    attention,
  };
}

/** Keeps the trainer's per-step details (order, step sizes, t, AR weights, per-token loss) for chosen steps. */
export class TrainingRecorder {
  readonly steps: StepEvent[] = [];

  constructor(readonly every = 1) {}

  /** Pass as `callbacks.onStep`. */
  readonly onStep = (e: StepEvent): void => {
    if (e.step % this.every === 0) this.steps.push(e);
  };
}
