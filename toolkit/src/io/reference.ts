/**
 * Reader for reference fixtures produced by running the official PyTorch code
 * (the project's copy in `toolkit/tests/fixtures/reference/` and any file of the same format).
 */
import * as fs from 'fs';
import * as nodePath from 'path';
import { HostTensor, StateDict } from '../model/params';

interface JsonTensor {
  shape: number[];
  data: number[];
}

export interface ReferenceFixture {
  source: string;
  seed: number;
  masks: { sample_len: number; cond_len: number; split_sizes: number[]; cumsum: number[]; masked_out: number[][] }[];
  ar_weights: { split_sizes: number[]; cumsum: number[]; schedule: 'linear' | 'cosine'; max: number; min: number; weights: number[] | number }[];
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

/** The project's own copy of the official code's outputs (this file runs from `toolkit/dist/src/io/`). */
export const DEFAULT_REFERENCE = nodePath.resolve(__dirname, '..', '..', '..', 'tests', 'fixtures', 'reference', 'causalfusion-reference.json');

function isJsonTensor(v: unknown): v is JsonTensor {
  return typeof v === 'object' && v !== null && Array.isArray((v as JsonTensor).shape) && Array.isArray((v as JsonTensor).data);
}

/** Turns every {shape, data} leaf into a HostTensor with a Float32Array. */
function convert(v: unknown): unknown {
  if (isJsonTensor(v)) {
    const n = v.shape.reduce((a, b) => a * b, 1);
    if (v.data.length !== n) throw new Error(`tensor of shape [${v.shape}] has ${v.data.length} values`);
    return { shape: v.shape, data: Float32Array.from(v.data) };
  }
  if (Array.isArray(v)) return v.map(convert);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, convert(x)]));
  return v;
}

const REQUIRED = ['masks', 'ar_weights', 'ar_step_count_probs', 'diffusion', 'respaced', 'model_config', 'state_dict', 'forward', 'inference'];

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
