/**
 * The attention explorer (the d3 view `views/attention.ts`): for a chosen query token, its attention over the
 * image's patch grid drawn on the image, as layer x head small multiples plus the head mean and the attention
 * rollout across layers; the full query x key matrix of one layer with the mask overlaid; click a patch or a
 * matrix row to pick the query.
 */
import { AttentionRecord } from '../introspect/recorders';
import { attentionPerToken, cachedRollout, headMean } from '../introspect/rollout';
import { positionLabel as describe, SequencePosition } from '../factorization/mask';
import { Chart, d3Chart } from './chart';
import { ROLE_COLORS, ROLES } from './palette';
import { colorRaster, packBits, pngDataUri } from './svg-compose';
import { toBase64 } from '../util/bytes';
import { matrixColor, MatrixSpec } from './views/attention';

const roleIndex = (p: SequencePosition) => ROLES.indexOf(p.role);

const quantise = (rows: Float32Array[]) => {
  const out = new Uint8Array(rows.length * (rows[0]?.length ?? 0));
  rows.forEach((r, i) => {
    const max = Math.max(1e-12, ...r);
    r.forEach((v, j) => (out[i * r.length + j] = Math.round((255 * v) / max)));
  });
  return toBase64(out);
};

export interface AttentionChartOptions {
  title?: string;
  /** At most this many query tokens are offered (evenly spaced), to keep outputs small at 256+ tokens. Default 64. */
  maxQueries?: number;
  /** Layer whose full matrix is drawn (default the last recorded); null for none. */
  matrixLayer?: number | null;
  /** Raster token of the query shown first (default the last query, i.e. one of the latest AR step). */
  query?: number;
}

/**
 * The attention explorer for records of one sample and one (AR step, diffusion step), one record per layer:
 * from `SamplingRecorder.attention` or `traceTrainingBatch(...).attention`. `image` [size x size] in [-1, 1]
 * is drawn under the maps; `grid` is the patch grid side.
 */
export function attentionChart(
  records: readonly AttentionRecord[],
  image: Float32Array,
  size: number,
  grid: number,
  opts: AttentionChartOptions = {},
): Chart {
  if (!records.length) throw new Error('attentionChart needs at least one attention record (one per layer)');
  const layers = [...records].sort((a, b) => a.layer - b.layer);
  const first = layers[0];
  if (
    layers.some(
      (r) => r.sample !== first.sample || r.arStep !== first.arStep || r.diffusionStep !== first.diffusionStep,
    )
  )
    throw new Error(
      'attentionChart: records must come from one sample and one (AR step, diffusion step); filter them first',
    );
  if (image.length !== size * size)
    throw new Error(`attentionChart expects one grey ${size}x${size} image, got ${image.length} values`);
  const G = grid * grid;
  const noisy = first.queries.map((p, i) => ({ p, i })).filter((q) => q.p.role === 'noisy');
  if (!noisy.length) throw new Error('no noisy query tokens in these records');
  const maxQ = opts.maxQueries ?? 64;
  const chosen =
    noisy.length <= maxQ ? noisy : Array.from({ length: maxQ }, (_, k) => noisy[Math.floor((k * noisy.length) / maxQ)]);
  const queries = chosen.map(({ p, i }) => ({ token: p.token, row: i, label: describe(p) }));
  // by default the query that sees the most context: a token of the last AR step present
  const defaultQuery = Math.max(
    0,
    opts.query === undefined ? queries.length - 1 : queries.findIndex((q) => q.token === opts.query),
  );
  const [, , Lk] = first.shape;

  const viewOf = (label: string, rowsOf: (qRow: number) => Float32Array | number[]) => {
    const per = queries.map((q) => attentionPerToken(rowsOf(q.row), first.keys, G));
    return { label, maps: quantise(per.map((x) => x.grid)), cond: per.map((x) => Number(x.cond.toFixed(4))) };
  };
  const means = layers.map(headMean);
  const layerViews = layers.map((r, li) => {
    const Lq = r.shape[1];
    const mean = means[li];
    const heads = r.heads.map((h, k) =>
      viewOf(`head ${h}`, (row) => r.data.slice(k * Lq * Lk + row * Lk, k * Lq * Lk + (row + 1) * Lk)),
    );
    return {
      label: `layer ${r.layer}`,
      heads: [...heads, viewOf('mean', (row) => mean.subarray(row * Lk, (row + 1) * Lk))],
    };
  });
  if (layers.length > 1) {
    const R = cachedRollout(layers); // a training trace's records are square: plain rollout
    layerViews.push({ label: 'rollout', heads: [viewOf('mean', (row) => R.subarray(row * Lk, (row + 1) * Lk))] });
  }

  const mLayer =
    opts.matrixLayer === null
      ? null
      : layers.find((r) => r.layer === (opts.matrixLayer ?? layers[layers.length - 1].layer));
  let matrix: MatrixSpec | undefined;
  if (mLayer) {
    const mean = means[layers.indexOf(mLayer)];
    const [, Lq] = mLayer.shape;
    const rows = Array.from({ length: Lq }, (_, i) => mean.subarray(i * Lk, (i + 1) * Lk));
    const rowMax = rows.map((r) => Math.max(1e-12, ...r));
    matrix = {
      title: `Full attention of layer ${mLayer.layer} (head mean): ${Lq} queries x ${Lk} keys; grey = masked; click a noisy row to pick it`,
      rows: Lq,
      cols: Lk,
      image: pngDataUri(colorRaster(Lq, Lk, (r, c) => matrixColor(rows[r][c] > 0 ? rows[r][c] / rowMax[r] : null))),
      values: quantise(rows),
      rowMax: rowMax.map((m) => Number(m.toPrecision(4))),
      allowed: packBits(mean.length, (i) => mean[i] > 0),
      rowRoles: mLayer.queries.map(roleIndex),
      colRoles: mLayer.keys.map(roleIndex),
      rowLabels: mLayer.queries.map((p, i) => `query ${i}: ${describe(p)}`),
      colLabels: mLayer.keys.map((p, j) => `key ${j}: ${describe(p)}`),
      roleColors: [ROLE_COLORS.cond, ROLE_COLORS.clean, ROLE_COLORS.noisy],
    };
  }
  const where =
    first.arStep >= 0
      ? `AR step ${first.arStep + 1}, diffusion step ${first.diffusionStep} (t = ${first.t})`
      : `training batch, t = ${first.t}`;
  const title = opts.title ?? `Attention of one query over the image tokens: ${where}, sample ${first.sample}`;
  return d3Chart('d3-attention', title, {
    title,
    grid,
    size,
    image: pngDataUri(image, size),
    queries,
    defaultQuery,
    layers: layerViews,
    matrix,
  });
}
