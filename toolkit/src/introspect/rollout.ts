/**
 * Analyses of recorded attention: the head mean of a layer and the attention rollout across layers, as numbers
 * (the attention explorer draws them; notebook 4 reads them).
 */
import type { SequencePosition } from '../factorization/mask';
import { AttentionRecord } from './recorders';

/**
 * One query's attention `row` over `keys`, summed per raster token of the image [G] (a token is a key once,
 * clean or noisy), and the share that went to the condition tokens.
 */
export function attentionPerToken(
  row: ArrayLike<number>,
  keys: readonly SequencePosition[],
  G: number,
): { grid: Float32Array; cond: number } {
  const grid = new Float32Array(G);
  let cond = 0;
  keys.forEach((k, j) => {
    if (k.role === 'cond') cond += row[j];
    else grid[k.token] += row[j];
  });
  return { grid, cond };
}

/** Mean over heads of one record: [Lq, Lk]. */
export function headMean(r: AttentionRecord): Float32Array {
  const [H, Lq, Lk] = r.shape;
  const out = new Float32Array(Lq * Lk);
  for (let h = 0; h < H; h++) for (let i = 0; i < Lq * Lk; i++) out[i] += r.data[h * Lq * Lk + i] / H;
  return out;
}

/**
 * Attention rollout (Abnar & Zuidema 2020) over square records (queries = keys, e.g. a training trace):
 * the product over layers of 0.5 * head-mean attention + 0.5 * identity, each row renormalised. [n, n].
 */
export function attentionRollout(records: readonly AttentionRecord[]): Float32Array {
  if (!records.length) throw new Error('attention rollout needs at least one layer');
  const n = records[0].shape[1];
  if (records.some((r) => r.shape[1] !== n || r.shape[2] !== n))
    throw new Error('attention rollout needs square records of one size (queries = keys, as in traceTrainingBatch)');
  let R = new Float32Array(n * n);
  for (let i = 0; i < n; i++) R[i * n + i] = 1;
  for (const r of [...records].sort((a, b) => a.layer - b.layer)) {
    const A = headMean(r);
    for (let i = 0; i < n; i++) {
      A[i * n + i] += 1;
      let s = 0;
      for (let j = 0; j < n; j++) s += A[i * n + j];
      for (let j = 0; j < n; j++) A[i * n + j] /= s;
    }
    const next = new Float32Array(n * n);
    for (let i = 0; i < n; i++)
      for (let k = 0; k < n; k++) {
        const a = A[i * n + k];
        if (a === 0) continue;
        for (let j = 0; j < n; j++) next[i * n + j] += a * R[k * n + j];
      }
    R = next;
  }
  return R;
}

/**
 * Attention rollout of a KV-cache sampling step, whose records are [k queries x (cache + k) keys], the queries
 * being the last k keys: the cached tokens are held fixed (their own mixing happened when they entered the
 * cache and is not traced again), i.e. their rows are the identity; then as `attentionRollout`. Returns the
 * query rows of the rollout, [k, cache + k].
 */
export function cachedRollout(records: readonly AttentionRecord[]): Float32Array {
  if (!records.length) throw new Error('attention rollout needs at least one layer');
  const [, k, n] = records[0].shape;
  if (records.some((r) => r.shape[1] !== k || r.shape[2] !== n))
    throw new Error('attention rollout needs records of one shape (one AR step, one denoising step)');
  if (k === n) return attentionRollout(records);
  const cache = n - k;
  const square = records.map((r): AttentionRecord => {
    const mean = headMean(r);
    const data = new Array<number>(n * n).fill(0);
    for (let i = 0; i < cache; i++) data[i * n + i] = 1;
    for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) data[(cache + i) * n + j] = mean[i * n + j];
    return { ...r, heads: [0], shape: [1, n, n], data };
  });
  return attentionRollout(square).slice(cache * n);
}
