/**
 * Charts of the diffusion side: the noise schedule, full and respaced (vega-lite), x_t / x0 trajectories of
 * chosen tokens (vega-lite), and image grids such as AR step x diffusion step predicted x0 (the d3 view
 * `views/frames.ts`).
 */
import { TrajectoryRecord } from '../introspect/recorders';
import { DenoisingFrames } from '../introspect/frames';
import { Chart, d3Chart } from './chart';
import { pngDataUri } from './svg-compose';
import { vegaLiteChart } from './vega';

/** What a schedule chart reads of a diffusion process (a `GaussianDiffusion` is one). */
export interface ScheduleCurve {
  numTimesteps: number;
  /** The original timestep of each step. */
  timestepMap: readonly number[];
  alphasCumprod: ArrayLike<number>;
  betas: ArrayLike<number>;
}

/**
 * alpha-bar, SNR (log scale) and beta against the original timestep, for the full chain and, as points, for
 * each respaced chain given (e.g. the 50 or 250 steps a sampler actually visits).
 */
export function scheduleChart(
  full: ScheduleCurve,
  respaced: Record<string, ScheduleCurve> = {},
  opts: { title?: string } = {},
): Chart {
  const rows: Record<string, number | string>[] = [];
  const add = (chain: string, d: ScheduleCurve) =>
    d.timestepMap.forEach((t, i) => {
      const ab = d.alphasCumprod[i];
      rows.push(
        { chain, t, quantity: 'ᾱ (alpha-bar)', value: ab },
        { chain, t, quantity: 'SNR = ᾱ / (1 - ᾱ)', value: ab / (1 - ab) },
        { chain, t, quantity: 'β', value: d.betas[i] },
      );
    });
  add(`full (${full.numTimesteps} steps)`, full);
  for (const [name, d] of Object.entries(respaced)) add(name, d);
  const panel = (q: string, log: boolean) => ({
    width: 220,
    height: 170,
    transform: [{ filter: { field: 'quantity', equal: q } }],
    title: q,
    layer: [
      {
        mark: { type: 'line', strokeWidth: 2 },
        transform: [{ filter: `datum.chain == 'full (${full.numTimesteps} steps)'` }],
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'timestep t' },
          y: {
            field: 'value',
            type: 'quantitative',
            title: null,
            scale: log ? { type: 'log' } : {},
            axis: log ? { values: [1e-8, 1e-6, 1e-4, 1e-2, 1, 1e2, 1e4], format: '.0e' } : {},
          },
          color: {
            field: 'chain',
            type: 'nominal',
            title: 'chain',
            scale: { range: ['#444444', '#ff7f0e', '#1f77b4', '#2ca02c'] },
          },
        },
      },
      {
        mark: { type: 'point', filled: true, size: 18 },
        transform: [{ filter: `datum.chain != 'full (${full.numTimesteps} steps)'` }],
        encoding: {
          x: { field: 't', type: 'quantitative' },
          y: { field: 'value', type: 'quantitative', scale: log ? { type: 'log' } : {} },
          color: { field: 'chain', type: 'nominal' },
          tooltip: [{ field: 'chain' }, { field: 't' }, { field: 'value', format: '.4g' }],
        },
      },
    ],
  });
  return vegaLiteChart(opts.title ?? 'Noise schedule: full chain and the respaced steps a sampler visits', {
    data: { values: rows },
    hconcat: [panel('ᾱ (alpha-bar)', false), panel('SNR = ᾱ / (1 - ᾱ)', true), panel('β', false)],
  });
}

/**
 * x_t and predicted x0 of chosen tokens along the denoising chain of their AR step: one line per token and
 * quantity (mean over the token's pixels, or one pixel with `pixel`), against the original timestep.
 */
export function trajectoryChart(
  records: readonly TrajectoryRecord[],
  tokens: readonly number[],
  opts: { title?: string; pixel?: number; sample?: number } = {},
): Chart {
  const sample = opts.sample ?? records[0]?.sample ?? 0;
  const rows: Record<string, number | string>[] = [];
  for (const r of records) {
    if (r.sample !== sample) continue;
    const d = r.shape[1];
    r.positions.forEach((pos, k) => {
      if (!tokens.includes(pos)) return;
      const val = (a: number[]) =>
        opts.pixel !== undefined ? a[k * d + opts.pixel] : a.slice(k * d, (k + 1) * d).reduce((s, v) => s + v, 0) / d;
      rows.push(
        { token: `token ${pos} (AR step ${r.arStep + 1})`, t: r.t, quantity: 'x_t', value: val(r.xt) },
        { token: `token ${pos} (AR step ${r.arStep + 1})`, t: r.t, quantity: 'predicted x0', value: val(r.x0) },
      );
    });
  }
  if (!rows.length) throw new Error(`no trajectory of tokens ${tokens.join(', ')} for sample ${sample} was recorded`);
  return vegaLiteChart(
    opts.title ??
      `Denoising trajectories (${opts.pixel !== undefined ? `pixel ${opts.pixel}` : 'token mean'}): x_t becomes x0`,
    {
      width: 460,
      height: 220,
      data: { values: rows },
      mark: { type: 'line', point: { size: 12 } },
      encoding: {
        x: { field: 't', type: 'quantitative', title: 'timestep t (noisy → clean)', scale: { reverse: true } },
        y: { field: 'value', type: 'quantitative', title: 'value ([-1, 1] pixels)' },
        color: { field: 'token', type: 'nominal', title: 'token' },
        strokeDash: { field: 'quantity', type: 'nominal', title: 'quantity' },
        tooltip: [{ field: 'token' }, { field: 'quantity' }, { field: 't' }, { field: 'value', format: '.3f' }],
      },
    },
  );
}

/** A labelled grid of grey images: `cells[row * cols + col]` is [size x size] in [-1, 1], or null for an empty cell. */
export function imageGridChart(
  cells: readonly (Float32Array | null)[],
  size: number,
  rows: readonly string[],
  cols: readonly string[],
  opts: { title: string; rowTitle?: string; colTitle?: string; cellPx?: number },
): Chart {
  if (cells.length !== rows.length * cols.length)
    throw new Error(`${cells.length} cells for a ${rows.length} x ${cols.length} grid`);
  return d3Chart('d3-frames', opts.title, {
    title: opts.title,
    size,
    rows: [...rows],
    cols: [...cols],
    rowTitle: opts.rowTitle ?? 'row',
    colTitle: opts.colTitle ?? 'column',
    cellPx: opts.cellPx ?? 56,
    cells: cells.map((c) => (c ? pngDataUri(c, size) : null)),
  });
}

/** The AR step x diffusion step grid of predicted x0 images (`denoisingFrames` of a sampling run). */
export function denoisingGridChart(frames: DenoisingFrames, opts: { title?: string } = {}): Chart {
  return imageGridChart(frames.cells, frames.size, frames.rows, frames.cols, {
    title: opts.title ?? 'Predicted x0 while each AR step is denoised (white = not generated yet)',
    rowTitle: 'AR step',
    colTitle: 'diffusion step',
  });
}
