/**
 * Parity with the official PyTorch code: the reader of its reference fixtures (the project's copy in
 * `toolkit/tests/fixtures/reference/` and any file of the same format) and the comparison of this implementation
 * with one: masks, AR weights, step-count law, schedule and respacing, one training forward + backward, and
 * KV-cache inference with CFG. Used by the parity tests and by `causalfusion verify --reference FILE`.
 */
import * as fs from 'fs';
import * as nodePath from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { arStepCountProbs, getArWeights, getAttnMask } from './factorization';
import { createDiffusion } from './diffusion';
import { configFromOfficial } from './model/config';
import { CausalDiffusionModel, disposeBatch, disposeCache, TrainingInputs } from './model/causalfusion';
import { HostTensor, StateDict } from './model/params';
import { FusedInference, fusedInferenceUnavailable } from './model/gpu-inference';
import { weightedLoss } from './train/loss';
import { variableGrads } from './train/backprop';
import { withMatmulPrecision } from './backend/wgsl/matmul';

interface JsonTensor {
  shape: number[];
  data: number[];
}

export interface ReferenceFixture {
  source: string;
  seed: number;
  masks: { sample_len: number; cond_len: number; split_sizes: number[]; cumsum: number[]; masked_out: number[][] }[];
  ar_weights: {
    split_sizes: number[];
    cumsum: number[];
    schedule: 'linear' | 'cosine';
    max: number;
    min: number;
    weights: number[] | number;
  }[];
  ar_step_count_probs: { L: number; decay: number; p_num_steps: number[] }[];
  diffusion: { num_timesteps: number; betas: number[]; alphas_cumprod: number[] };
  respaced: Record<string, { timestep_map: number[]; betas: number[] }>;
  model_config: Record<string, unknown>;
  state_dict: StateDict;
  forward: {
    x: HostTensor;
    noise: HostTensor;
    x_t: HostTensor;
    t: number[];
    y: number[];
    split_sizes: number[];
    cumsum: number[];
    ids_shuffle: number[][];
    attn_probs: HostTensor[];
    final_out: HostTensor;
    mse_per_element: HostTensor;
    ar_weights: number[];
    loss: number;
    grads: StateDict;
  };
  inference: {
    labels: number[];
    null_label: number;
    order: number[];
    step1_tokens: number[];
    step2_tokens: number[];
    z1: HostTensor;
    t1: number;
    eps1: HostTensor;
    clean1: HostTensor;
    z2: HostTensor;
    t2: number;
    eps2: HostTensor;
    cfg_scale: number;
    eps1_cfg: HostTensor;
  };
}

/** The project's own copy of the official code's outputs (this file runs from `toolkit/dist/src/`). */
export const DEFAULT_REFERENCE = nodePath.resolve(
  __dirname,
  '..',
  '..',
  'tests',
  'fixtures',
  'reference',
  'causalfusion-reference.json',
);

/** The fixture's training forward as model inputs (the official `forward(xn, t, x, y, ..., noise)` arguments). */
export function fixtureInputs(ref: ReferenceFixture): TrainingInputs {
  const f = ref.forward;
  return {
    x: f.x.data,
    xn: f.x_t.data,
    target: f.noise.data,
    t: f.t,
    y: f.y,
    splitSizes: f.split_sizes,
    idsShuffle: f.ids_shuffle,
  };
}

function isJsonTensor(v: unknown): v is JsonTensor {
  return (
    typeof v === 'object' &&
    v !== null &&
    Array.isArray((v as JsonTensor).shape) &&
    Array.isArray((v as JsonTensor).data)
  );
}

/** Turns every {shape, data} leaf into a HostTensor with a Float32Array. */
function convert(v: unknown): unknown {
  if (isJsonTensor(v)) {
    const n = v.shape.reduce((a, b) => a * b, 1);
    if (v.data.length !== n) throw new Error(`tensor of shape [${v.shape}] has ${v.data.length} values`);
    return { shape: v.shape, data: Float32Array.from(v.data) };
  }
  if (Array.isArray(v)) return v.map(convert);
  if (typeof v === 'object' && v !== null)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, convert(x)]));
  return v;
}

const REQUIRED = [
  'masks',
  'ar_weights',
  'ar_step_count_probs',
  'diffusion',
  'respaced',
  'model_config',
  'state_dict',
  'forward',
  'inference',
];

/** Loads and checks a fixture; a missing file or section gets an error naming it. */
export function loadReference(path: string): ReferenceFixture {
  if (!fs.existsSync(path)) throw new Error(`reference fixture not found: ${path}`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`reference fixture ${path} is not valid JSON: ${(e as Error).message}`);
  }
  const missing = REQUIRED.filter((k) => !(k in raw));
  if (missing.length) throw new Error(`reference fixture ${path} lacks section(s): ${missing.join(', ')}`);
  return convert(raw) as ReferenceFixture;
}

/** Tolerances of the parity contract. `rel` errors are max|ours - ref| / max|ref| over the compared tensor. */
export const TOLERANCES = {
  exact: 0,
  stepProbs: 1e-12,
  schedule: 1e-12,
  forward: 1e-4,
  grads: 1e-3,
  inference: 1e-4,
} as const;

/** A gradient whose reference values are all below this fraction of the largest gradient is "~0" and skipped. */
export const ZERO_GRAD_FRACTION = 1e-6;

export interface VerifyRow {
  section: 'factorization' | 'diffusion' | 'forward' | 'grads' | 'inference';
  item: string;
  maxAbs: number;
  maxRel: number;
  /** 'exact' rows need maxAbs = 0; 'abs' rows maxAbs <= tol; 'rel' rows maxRel <= tol. */
  metric: 'exact' | 'abs' | 'rel';
  tol: number;
  pass: boolean;
  note?: string;
}

function errors(ours: ArrayLike<number>, ref: ArrayLike<number>): { maxAbs: number; maxRel: number } {
  if (ours.length !== ref.length) return { maxAbs: Infinity, maxRel: Infinity };
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i] - ref[i]);
    maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return { maxAbs, maxRel: maxAbs / Math.max(scale, 1e-30) };
}

function row(
  section: VerifyRow['section'],
  item: string,
  ours: ArrayLike<number>,
  ref: ArrayLike<number>,
  metric: VerifyRow['metric'],
  tol: number,
  note?: string,
): VerifyRow {
  const e = errors(ours, ref);
  const value = metric === 'rel' ? e.maxRel : e.maxAbs;
  return { section, item, ...e, metric, tol, pass: value <= tol, ...(note ? { note } : {}) };
}

function verifyFactorization(ref: ReferenceFixture): VerifyRow[] {
  const rows: VerifyRow[] = [];
  for (const m of ref.masks) {
    const ours = getAttnMask(m.sample_len, m.cond_len, m.split_sizes);
    rows.push(
      row(
        'factorization',
        `mask L=${m.sample_len} cond=${m.cond_len} split=[${m.split_sizes}]`,
        ours.maskedOut,
        m.masked_out.flat(),
        'exact',
        TOLERANCES.exact,
      ),
    );
  }
  for (const w of ref.ar_weights) {
    const ours = getArWeights(w.split_sizes, w.max, w.min, w.schedule);
    const want = typeof w.weights === 'number' ? new Array(ours.length).fill(w.weights) : w.weights;
    rows.push(
      row(
        'factorization',
        `AR weights ${w.schedule} ${w.max}->${w.min} split=[${w.split_sizes}]`,
        ours,
        want,
        'exact',
        TOLERANCES.exact,
      ),
    );
  }
  for (const p of ref.ar_step_count_probs) {
    rows.push(
      row(
        'factorization',
        `P(#AR steps) L=${p.L} decay=${p.decay}`,
        arStepCountProbs(p.L, p.decay),
        p.p_num_steps,
        'abs',
        TOLERANCES.stepProbs,
      ),
    );
  }
  return rows;
}

function verifyDiffusion(ref: ReferenceFixture): VerifyRow[] {
  const full = createDiffusion('', { diffusionSteps: ref.diffusion.num_timesteps });
  const rows = [
    row('diffusion', 'betas (linear, 1000)', full.betas, ref.diffusion.betas, 'abs', TOLERANCES.schedule),
    row('diffusion', 'alphas_cumprod', full.alphasCumprod, ref.diffusion.alphas_cumprod, 'abs', TOLERANCES.schedule),
  ];
  for (const [spec, r] of Object.entries(ref.respaced)) {
    const d = createDiffusion(spec, { diffusionSteps: ref.diffusion.num_timesteps });
    rows.push(
      row('diffusion', `respaced "${spec}" timestep_map`, d.timestepMap, r.timestep_map, 'exact', TOLERANCES.exact),
    );
    rows.push(row('diffusion', `respaced "${spec}" betas`, d.betas, r.betas, 'abs', TOLERANCES.schedule));
  }
  const f = ref.forward;
  const xt = tf.tidy(() =>
    full.qSample(tf.tensor(f.x.data, f.x.shape), f.t, tf.tensor(f.noise.data, f.noise.shape)).dataSync(),
  );
  rows.push(row('diffusion', 'qSample x_t', xt, f.x_t.data, 'rel', TOLERANCES.forward));
  return rows;
}

function verifyForward(ref: ReferenceFixture, model: CausalDiffusionModel): VerifyRow[] {
  const f = ref.forward;
  const rows: VerifyRow[] = [];
  const probs: Float32Array[] = [];
  let eps: Float32Array | null = null;
  const batch = model.prepareBatch(fixtureInputs(ref));
  const arW = getArWeights(f.split_sizes);
  rows.push(row('forward', 'AR weights of the step', arW, f.ar_weights, 'exact', TOLERANCES.exact));
  const names = model.trainableNames();
  const vars = names.map((n) => model.params[n]);
  const { value, grads } = variableGrads(() => {
    const mse = model.forwardPrepared(batch, {
      attention: (_layer, p) => probs.push(p.dataSync() as Float32Array),
      prediction: (e) => (eps = e.dataSync() as Float32Array),
    });
    rows.push(row('forward', 'mse_per_element', mse.dataSync(), f.mse_per_element.data, 'rel', TOLERANCES.forward));
    return weightedLoss(mse, arW);
  }, vars);
  f.attn_probs.forEach((ref_, i) =>
    rows.push(row('forward', `attn_probs layer ${i}`, probs[i] ?? [], ref_.data, 'rel', TOLERANCES.forward)),
  );
  rows.push(row('forward', 'final_out (predicted noise)', eps ?? [], f.final_out.data, 'rel', TOLERANCES.forward));
  rows.push(row('forward', 'loss', [value.dataSync()[0]], [f.loss], 'rel', TOLERANCES.forward));
  const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const scale = Math.max(...Object.values(f.grads).map((g) => maxAbs(g.data)));
  names.forEach((name, i) => {
    const want = f.grads[name];
    const ours = grads[vars[i].name].dataSync();
    const tiny = maxAbs(want.data) < ZERO_GRAD_FRACTION * scale;
    const r = row(
      'grads',
      name,
      ours,
      want.data,
      'rel',
      TOLERANCES.grads,
      tiny ? 'true gradient ~0 (skipped)' : undefined,
    );
    rows.push(tiny ? { ...r, pass: true } : r);
  });
  for (const name of Object.keys(f.grads)) {
    if (!names.includes(name))
      rows.push({
        section: 'grads',
        item: name,
        maxAbs: NaN,
        maxRel: NaN,
        metric: 'rel',
        tol: TOLERANCES.grads,
        pass: false,
        note: 'reference has a gradient for a frozen parameter',
      });
  }
  tf.dispose([value, ...Object.values(grads)]);
  disposeBatch(batch);
  return rows;
}

function verifyInference(ref: ReferenceFixture, model: CausalDiffusionModel): VerifyRow[] {
  const inf = ref.inference;
  const N = inf.labels.length;
  const rows: VerifyRow[] = [];
  const rep = (tokens: number[]) => Array.from({ length: N }, () => tokens);
  const t3 = (h: { data: Float32Array; shape: number[] }) => tf.tensor3d(h.data, h.shape as [number, number, number]);
  const cachedCondition = (labels: number[]) => {
    const cache = model.newCache();
    const cond = model.embedCondition(labels);
    model.forwardCacheUpdate(cond, cache);
    cond.dispose();
    return cache;
  };
  tf.tidy(() => {
    const cache = cachedCondition(inf.labels);
    const eps1 = model.forwardInference(t3(inf.z1), inf.t1, cache, model.posEmbedAt(rep(inf.step1_tokens)));
    rows.push(
      row('inference', 'AR step 1 eps (KV cache: cond)', eps1.dataSync(), inf.eps1.data, 'rel', TOLERANCES.inference),
    );
    model.forwardCacheUpdate(model.embedClean(t3(inf.clean1), rep(inf.step1_tokens)), cache);
    const eps2 = model.forwardInference(t3(inf.z2), inf.t2, cache, model.posEmbedAt(rep(inf.step2_tokens)));
    rows.push(
      row(
        'inference',
        'AR step 2 eps (KV cache: cond + clean step 1)',
        eps2.dataSync(),
        inf.eps2.data,
        'rel',
        TOLERANCES.inference,
      ),
    );
    disposeCache(cache);
    const cfgCache = cachedCondition([...inf.labels, ...new Array(N).fill(inf.null_label)]);
    const eps1c = model.forwardInference(
      t3(inf.z1),
      inf.t1,
      cfgCache,
      model.posEmbedAt(rep(inf.step1_tokens)),
      inf.cfg_scale,
    );
    rows.push(
      row(
        'inference',
        `AR step 1 eps with CFG ${inf.cfg_scale} (cache [cond; null])`,
        eps1c.dataSync(),
        inf.eps1_cfg.data,
        'rel',
        TOLERANCES.inference,
      ),
    );
    disposeCache(cfgCache);
  });
  if (fusedInferenceUnavailable(model) === null) rows.push(...verifyFusedInference(ref, model));
  return rows;
}

/** The same three comparisons through the fused WebGPU sampling kernels (model/gpu-inference). */
function verifyFusedInference(ref: ReferenceFixture, model: CausalDiffusionModel): VerifyRow[] {
  const inf = ref.inference;
  const N = inf.labels.length;
  const rep = (tokens: number[]) => Array.from({ length: N }, () => tokens);
  const diffusion = createDiffusion('');
  const plain = { ddim: false, eta: 0, clip: false };
  const maxChunk = Math.max(model.config.numCondTokens, inf.step1_tokens.length, inf.step2_tokens.length);
  // eps of one step from x_t = z at original timestep t (the step's update itself is not compared)
  const eps = (f: FusedInference, j: number, tokens: number[], z: HostTensor, cfg: number | null) => {
    f.startChain(rep(tokens), z.data);
    return f.step(j, diffusion, 0, cfg, null, plain).eps.dataSync();
  };
  const rows: VerifyRow[] = [];
  const f = new FusedInference(model, N, false, maxChunk, [inf.t1, inf.t2]);
  try {
    f.appendCondition(inf.labels);
    const e1 = eps(f, 0, inf.step1_tokens, inf.z1, null);
    rows.push(row('inference', 'fused kernels: AR step 1 eps', e1, inf.eps1.data, 'rel', TOLERANCES.inference));
    f.appendClean(inf.clean1.data, rep(inf.step1_tokens));
    const e2 = eps(f, 1, inf.step2_tokens, inf.z2, null);
    rows.push(row('inference', 'fused kernels: AR step 2 eps', e2, inf.eps2.data, 'rel', TOLERANCES.inference));
  } finally {
    f.dispose();
  }
  const g = new FusedInference(model, N, true, maxChunk, [inf.t1]);
  try {
    g.appendCondition([...inf.labels, ...new Array<number>(N).fill(inf.null_label)]);
    const e = eps(g, 0, inf.step1_tokens, inf.z1, inf.cfg_scale);
    rows.push(
      row(
        'inference',
        `fused kernels: AR step 1 eps with CFG ${inf.cfg_scale}`,
        e,
        inf.eps1_cfg.data,
        'rel',
        TOLERANCES.inference,
      ),
    );
  } finally {
    g.dispose();
  }
  return rows;
}

/**
 * Runs every comparison on the active backend, with fp32 matmuls: the contract is the official fp32 code's
 * numbers (tensor cores, when on, are checked against their own fp16 bound instead). The fixture's model
 * config may differ from ours in any way.
 */
export function verifyReference(ref: ReferenceFixture): VerifyRow[] {
  const model = new CausalDiffusionModel(configFromOfficial(ref.model_config), { stateDict: ref.state_dict });
  try {
    return withMatmulPrecision('f32', () => [
      ...verifyFactorization(ref),
      ...verifyDiffusion(ref),
      ...verifyForward(ref, model),
      ...verifyInference(ref, model),
    ]);
  } finally {
    model.dispose();
  }
}

/** A fixed-width table of the rows, one per line, with a summary line. */
export function formatVerifyTable(rows: VerifyRow[]): string {
  const fmt = (v: number) => (Number.isNaN(v) ? 'n/a' : v === 0 ? '0' : v.toExponential(2));
  const width = Math.max(...rows.map((r) => r.item.length), 4);
  const lines = [
    `${'section'.padEnd(14)}${'item'.padEnd(width + 2)}${'max abs'.padStart(10)}${'max rel'.padStart(10)}  ${'check'.padEnd(12)}result`,
  ];
  for (const r of rows) {
    const check = r.metric === 'exact' ? 'exact' : `${r.metric} <= ${r.tol.toExponential(0)}`;
    lines.push(
      `${r.section.padEnd(14)}${r.item.padEnd(width + 2)}${fmt(r.maxAbs).padStart(10)}${fmt(r.maxRel).padStart(10)}  ${check.padEnd(12)}${r.pass ? 'ok' : 'FAIL'}${r.note ? ` (${r.note})` : ''}`,
    );
  }
  const failed = rows.filter((r) => !r.pass).length;
  lines.push(
    `verify: ${rows.length - failed} of ${rows.length} checks within tolerance${failed ? `, ${failed} FAILED` : ''}`,
  );
  return lines.join('\n');
}
