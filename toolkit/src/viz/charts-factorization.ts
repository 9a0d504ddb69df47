/**
 * Charts of the dual factorization itself: the generalized causal mask (d3, canvas), the generation order
 * with a step slider (d3), and the AR-step statistics of the training law (vega-lite, the paper's Fig. 4b).
 */
import { AttnMask, SequencePosition, TokenRole } from '../factorization/mask';
import { ArStepStats } from '../factorization/step-stats';
import { greyBase64 } from '../io/images';
import { Chart } from './chart';
import { maskSvg, orderGridSvg, ROLE_COLORS, stepColor } from './svg-grids';
import { vegaLiteChart } from './vega';
import { hstackSvg, imageSvg } from './svg-compose';

const ROLES: TokenRole[] = ['cond', 'clean', 'noisy'];

/** Role colours in role-index order (condition, clean, noisy) and one colour per AR step. */
export function colorScheme(S: number): { roles: string[]; steps: string[] } {
  return { roles: ROLES.map((r) => ROLE_COLORS[r]), steps: Array.from({ length: S }, (_, s) => stepColor(s, S)) };
}

/**
 * The generalized causal mask as an interactive heatmap: rows are queries, columns keys, both with a role
 * strip; hovering names query and key (role, AR step, raster token). Drawn on a canvas, so 64 + 2 x 256
 * positions stay fast; `colorBy: 'step'` colours allowed cells by the key's AR step instead of its role.
 */
export function maskChart(
  mask: AttnMask,
  positions: readonly SequencePosition[],
  opts: { title?: string; colorBy?: 'role' | 'step' } = {},
): Chart {
  const n = mask.seqLen;
  if (positions.length !== n) throw new Error(`${positions.length} position labels for a mask of ${n}`);
  const S = Math.max(1, ...positions.map((p) => p.step + 1));
  const title = opts.title ?? `Generalized causal mask: ${n} positions, ${S} AR steps`;
  const allowed = Buffer.from(Uint8Array.from(mask.maskedOut, (m) => (m ? 0 : 1))).toString('base64');
  return new Chart(
    'd3-mask',
    title,
    {
      n,
      allowed,
      positions: positions.map((p) => [ROLES.indexOf(p.role), p.step, p.token]),
      roleNames: ['condition', 'clean', 'noisy'],
      colors: colorScheme(S),
      colorBy: opts.colorBy ?? 'role',
      title,
    },
    () => maskSvg(mask, positions, { title }),
  );
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
  const S = steps.length;
  const title = opts.title ?? `Generation order: ${grid * grid} tokens in ${S} AR steps`;
  const visible = new Uint8Array(grid * grid);
  for (const t of opts.kept ?? []) visible[t] = 1;
  const frames: string[] = [];
  const frame = () =>
    greyBase64(
      Array.from(image, (v, i) =>
        visible[Math.floor(Math.floor(i / size) / p) * grid + Math.floor((i % size) / p)] ? v : 0,
      ),
    );
  frames.push(frame());
  for (const ps of steps) {
    for (const t of ps) visible[t] = 1;
    frames.push(frame());
  }
  return new Chart(
    'd3-order',
    title,
    {
      grid,
      size,
      steps,
      frames,
      colors: colorScheme(S),
      startLabel: opts.kept?.length ? 'kept tokens only' : 'nothing generated yet',
      title,
    },
    () =>
      hstackSvg([
        orderGridSvg(grid, steps, { title, kept: opts.kept }),
        imageSvg(image, size, { title: 'final image', scale: Math.max(2, Math.floor(224 / size)) }),
      ]),
  );
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
