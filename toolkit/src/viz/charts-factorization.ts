/**
 * Charts of the dual factorization itself: the generalized causal mask and the generation order with a step
 * slider (d3 views, `views/mask.ts` and `views/order.ts`), and the AR-step statistics of the training law
 * (vega-lite, the paper's Fig. 4b).
 */
import { AttnMask, SequencePosition } from '../factorization/mask';
import { ArStepStats } from '../factorization/step-stats';
import { Chart, d3Chart, staticViewSvg } from './chart';
import { colorScheme, rgbBytes, ROLE_COLORS, ROLES } from './palette';
import { colorRaster, packBits, pngDataUri } from './svg-compose';
import { vegaLiteChart } from './vega';
import { drawOrder, OrderSpec } from './views/order';

/** A colour 25 % towards white: the mask's cells, lighter than the role strips. */
const light = (color: string) =>
  `rgb(${rgbBytes(color)
    .map((v) => Math.round(255 - 0.75 * (255 - v)))
    .join(',')})`;

/**
 * The generalized causal mask as an interactive heatmap: rows are queries, columns keys, both with a role
 * strip; hovering names query and key (role, AR step, raster token). The cells are one raster, so 64 + 2 x 256
 * positions stay small and fast; `colorBy: 'step'` colours allowed cells by the key's AR step instead of its role.
 */
export function maskChart(
  mask: AttnMask,
  positions: readonly SequencePosition[],
  opts: { title?: string; colorBy?: 'role' | 'step'; highlight?: number } = {},
): Chart {
  const n = mask.seqLen;
  if (positions.length !== n) throw new Error(`${positions.length} position labels for a mask of ${n}`);
  const S = Math.max(1, ...positions.map((p) => p.step + 1));
  const title = opts.title ?? `Generalized causal mask: ${n} positions, ${S} AR steps`;
  const colors = colorScheme(S);
  const colorBy = opts.colorBy ?? 'role';
  // a cell's colour is its key's: one per column, not one per cell
  const keyColor = positions.map((p) =>
    light(colorBy === 'step' && p.role !== 'cond' ? colors.steps[p.step] : ROLE_COLORS[p.role]),
  );
  return d3Chart('d3-mask', title, {
    title,
    n,
    cells: pngDataUri(colorRaster(n, n, (r, c) => (mask.maskedOut[r * n + c] ? null : keyColor[c]))),
    allowed: packBits(n * n, (i) => mask.maskedOut[i] === 0),
    positions: positions.map((p) => [ROLES.indexOf(p.role), p.step, p.token]),
    roleNames: ['condition', 'clean', 'noisy'],
    colors,
    colorBy,
    highlight: opts.highlight,
  });
}

/**
 * The order in which a sampler fills the image: the patch grid coloured by AR step, and the image after
 * each step (tokens not generated yet drawn mid-grey) behind a slider and a play button. `image` is the
 * final image [size x size] in [-1, 1]; `steps[s]` lists the raster tokens of step s; `kept` tokens (editing)
 * are visible from the start.
 */
export function orderChart(
  image: Float32Array,
  size: number,
  grid: number,
  steps: readonly (readonly number[])[],
  opts: { title?: string; kept?: readonly number[] } = {},
): Chart {
  if (image.length !== size * size)
    throw new Error(`orderChart expects one grey ${size}x${size} image, got ${image.length} values`);
  const p = size / grid;
  if (!Number.isInteger(p)) throw new Error(`image size ${size} is not a multiple of the grid ${grid}`);
  const title = opts.title ?? `Generation order: ${grid * grid} tokens in ${steps.length} AR steps`;
  const visible = new Uint8Array(grid * grid);
  for (const t of opts.kept ?? []) visible[t] = 1;
  const frame = () =>
    pngDataUri(
      image.map((v, i) => (visible[Math.floor(Math.floor(i / size) / p) * grid + Math.floor((i % size) / p)] ? v : 0)),
      size,
    );
  const frames = [frame()];
  for (const ps of steps) {
    for (const t of ps) visible[t] = 1;
    frames.push(frame());
  }
  return d3Chart('d3-order', title, orderSpec(title, grid, size, steps, opts.kept, frames));
}

/** The order view's spec: `frames` (PNG data URIs before step 1 and after each step) may be empty (grid only). */
function orderSpec(
  title: string,
  grid: number,
  size: number,
  steps: readonly (readonly number[])[],
  kept: readonly number[] = [],
  frames: string[] = [],
): OrderSpec {
  return {
    title,
    grid,
    size,
    steps: steps.map((s) => [...s]),
    kept: [...kept],
    frames,
    colors: colorScheme(steps.length),
    startLabel: kept.length ? 'kept tokens only' : 'nothing generated yet',
  };
}

/**
 * The patch grid coloured and numbered by the AR step that produces each token, as an SVG document: `steps[s]`
 * lists the raster tokens of step s; `kept` tokens (editing) are grey. (`orderChart` adds the image per step.)
 */
export function orderGridSvg(
  grid: number,
  steps: readonly (readonly number[])[],
  opts: { title?: string; kept?: readonly number[] } = {},
): string {
  const title = opts.title ?? `Generation order (${steps.length} AR steps)`;
  return staticViewSvg(drawOrder, orderSpec(title, grid, grid, steps, opts.kept));
}

/**
 * The paper's Fig. 4b: for each decay gamma, the law of the number of AR steps S, and the share of steps and of
 * tokens that sit in steps of at most k tokens (`arStepStats`, one per gamma, all of one L).
 */
export function arStepStatsChart(stats: readonly ArStepStats[]): Chart {
  if (!stats.length) throw new Error('arStepStatsChart needs the statistics of at least one gamma');
  const { L, draws } = stats[0];
  if (stats.some((s) => s.L !== L)) throw new Error('arStepStatsChart: every gamma must have the same L');
  const rows: Record<string, number | string>[] = [];
  const cum: Record<string, number | string>[] = [];
  for (const st of stats) {
    const gamma = `γ = ${st.gamma}`;
    for (let S = 1; S <= L; S++) rows.push({ gamma, S, probability: st.pS[S] });
    for (let k = 1; k <= L; k++)
      cum.push(
        { gamma, k, share: st.stepShare[k], of: 'AR steps' },
        { gamma, k, share: st.tokenShare[k], of: 'tokens' },
      );
  }
  const color = { field: 'gamma', type: 'nominal', title: 'AR-step decay', scale: { scheme: 'dark2' } };
  return vegaLiteChart(`AR-step statistics of the training law (L = ${L}, ${draws} draws per γ)`, {
    hconcat: [
      {
        title: 'Number of AR steps S',
        width: 300,
        height: 200,
        data: { values: rows },
        mark: { type: 'line', point: L <= 32, interpolate: 'step-after' },
        encoding: {
          x: {
            field: 'S',
            type: 'quantitative',
            title: 'AR steps S',
            scale: { type: 'log', domain: [1, L], nice: false },
          },
          y: { field: 'probability', type: 'quantitative', title: 'P(S)' },
          color,
          tooltip: [{ field: 'gamma' }, { field: 'S' }, { field: 'probability', format: '.4f' }],
        },
      },
      {
        title: 'Share in steps of at most k tokens',
        width: 300,
        height: 200,
        data: { values: cum },
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x: {
            field: 'k',
            type: 'quantitative',
            title: 'step size k (tokens)',
            scale: { type: 'log', domain: [1, L], nice: false },
          },
          y: { field: 'share', type: 'quantitative', title: 'cumulative share', axis: { format: '%' } },
          color,
          strokeDash: { field: 'of', type: 'nominal', title: 'share of' },
          tooltip: [{ field: 'gamma' }, { field: 'of' }, { field: 'k' }, { field: 'share', format: '.1%' }],
        },
      },
    ],
  });
}
