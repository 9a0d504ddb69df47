/**
 * Charts of the claims study (vega-lite and d3): sample quality against S_eval per training variant with the
 * seed spread, the held-out loss against the number of AR steps (Fig. 4a), and what each variant draws.
 */
import { ClaimsResults, ownOrderEvals } from './claims';
import { Chart } from '../viz/chart';
import { imageGridChart } from '../viz/charts-diffusion';
import { vegaLiteChart } from '../viz/vega';
import { fromBase64 } from '../util/bytes';

/** A categorical colour channel on `field` with its legend. */
const colorBy = (field: string, title: string, legend: Record<string, unknown> = { labelLimit: 320 }) => ({
  field,
  type: 'nominal',
  title,
  scale: { scheme: 'category10' },
  legend,
});

/** A quantitative channel on a log2 scale with ticks at exactly `values` (AR-step counts). */
const log2Axis = (field: string, title: string, values: readonly number[]) => ({
  field,
  type: 'quantitative',
  title,
  scale: { type: 'log', base: 2 },
  axis: { values },
});

const labelOf = (r: ClaimsResults, id: string) => r.ablations.find((a) => a.id === id)?.label ?? id;

/** FD (log scale) and conditional accuracy against S_eval per variant: mean over seeds as a dot, min..max as a bar. */
export function claimsQualityChart(r: ClaimsResults, opts: { title?: string } = {}): Chart {
  const rows = r.runs.flatMap((run) =>
    ownOrderEvals(r, run).map((e) => ({
      variant: labelOf(r, run.ablation),
      seed: run.seed,
      sEval: e.sEval,
      fd: e.fd,
      accuracy: e.conditionalAccuracy,
    })),
  );
  const floor = r.runs[0]?.fdRealVsReal ?? 0;
  const color = colorBy('variant', 'training variant', { labelLimit: 480, orient: 'bottom', columns: 2 });
  const x = { field: 'sEval', type: 'ordinal', title: 'AR steps when sampling (S_eval)' };
  // variants side by side within each S_eval, so the seed ranges do not hide each other
  const xOffset = { field: 'variant', type: 'nominal' };
  const panel = (field: string, title: string, log: boolean) => ({
    width: 320,
    height: 240,
    title,
    layer: [
      {
        mark: { type: 'rule', strokeWidth: 2, opacity: 0.6 },
        encoding: {
          x,
          xOffset,
          y: { field, type: 'quantitative', aggregate: 'min', title: null },
          y2: { field, aggregate: 'max' },
          color,
        },
      },
      {
        mark: { type: 'point', filled: true, size: 40 },
        encoding: {
          x,
          xOffset,
          y: {
            aggregate: 'mean',
            field,
            type: 'quantitative',
            title: null,
            scale: log ? { type: 'log', nice: false, padding: 8 } : { domain: [0, 1] },
            axis: log ? {} : { format: '%' },
          },
          color,
          tooltip: [
            { field: 'variant' },
            { field: 'sEval', title: 'S_eval' },
            { aggregate: 'mean', field, format: log ? '.1f' : '.1%', title: `mean ${field}` },
            { aggregate: 'min', field, format: log ? '.1f' : '.1%', title: 'min over seeds' },
            { aggregate: 'max', field, format: log ? '.1f' : '.1%', title: 'max over seeds' },
          ],
        },
      },
    ],
  });
  return vegaLiteChart(
    opts.title ??
      `Sample quality by training variant (${r.setting.name} setting: ${r.setting.steps} steps, N = ${r.setting.evalN}, seeds ${r.setting.seeds.join(', ')}): dot = mean, bar = min..max over seeds`,
    {
      data: { values: rows },
      hconcat: [
        panel('fd', `Fréchet distance, lower is better (real vs real: ${floor.toFixed(1)})`, true),
        panel('accuracy', 'conditional accuracy', false),
      ],
    },
  );
}

/** Held-out loss against the number of AR steps S next to FD when sampling with S: Fig. 4a vs Table 2. */
export function claimsLossChart(r: ClaimsResults, opts: { title?: string; variants?: string[] } = {}): Chart {
  const keep = opts.variants ?? ['causalfusion', 'gamma-1.0', 'fixed-1'];
  const runs = r.runs.filter((x) => keep.includes(x.ablation));
  const loss = runs.flatMap((run) =>
    run.heldOutLossByS.map((e) => ({ variant: labelOf(r, run.ablation), S: e.S, mse: e.mse })),
  );
  const fd = runs.flatMap((run) =>
    ownOrderEvals(r, run).map((e) => ({ variant: labelOf(r, run.ablation), S: e.sEval, fd: e.fd })),
  );
  const color = colorBy('variant', 'training variant');
  const x = log2Axis('S', 'AR steps S', r.setting.lossS);
  // one line panel per quantity: the same axes, colours and tooltips
  const panel = (title: string, values: object[], field: string, yTitle: string, scale: object, format: string) => ({
    width: 280,
    height: 220,
    title,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x,
      y: { aggregate: 'mean', field, type: 'quantitative', title: yTitle, scale },
      color,
      tooltip: [{ field: 'variant' }, { field: 'S' }, { aggregate: 'mean', field, format }],
    },
  });
  return vegaLiteChart(opts.title ?? 'More AR steps: the loss falls, the samples do not get better', {
    hconcat: [
      panel('held-out MSE with the image cut into S steps (Fig. 4a)', loss, 'mse', 'MSE', { zero: false }, '.4f'),
      panel('FD when sampling with S steps (Table 2)', fd, 'fd', 'FD (log)', { type: 'log' }, '.1f'),
    ],
  });
}

/** The digits 0-3 drawn by each variant (seed `seed`) at each S_eval, as a 2 x 2 tile per cell. */
export function claimsSamplesChart(r: ClaimsResults, opts: { seed?: number; size?: number } = {}): Chart {
  const seed = opts.seed ?? r.setting.seeds[0];
  const size = opts.size ?? 28;
  const S = r.setting.sEval;
  const cells = r.ablations.flatMap((a) =>
    S.map((s) => {
      const run = r.runs.find((x) => x.ablation === a.id && x.seed === seed);
      const e = run && ownOrderEvals(r, run).find((v) => v.sEval === s);
      if (!e) return null;
      const bytes = fromBase64(e.thumbnails);
      const tile = new Float32Array(4 * size * size);
      for (let d = 0; d < 4; d++)
        for (let y = 0; y < size; y++)
          for (let x = 0; x < size; x++)
            tile[(Math.floor(d / 2) * size + y) * 2 * size + (d % 2) * size + x] =
              bytes[d * size * size + y * size + x] / 127.5 - 1;
      return tile;
    }),
  );
  return imageGridChart(
    cells,
    2 * size,
    r.ablations.map((a) => a.id),
    S.map((s) => `S_eval = ${s}`),
    {
      title: `Digits 0-3 as each variant draws them (seed ${seed}, no guidance)`,
      rowTitle: 'variant',
      colTitle: 'sampling',
      cellPx: 84,
    },
  );
}

/**
 * Random- vs raster-trained models, each sampled in both orders, FD against S_eval (mean over seeds, min..max
 * as a band): Table 3b across S_eval. Needs a study that samples in several orders (`evalOrders`).
 */
export function claimsOrderChart(r: ClaimsResults, opts: { title?: string } = {}): Chart {
  if (!r.setting.evalOrders)
    throw new Error(`the ${r.setting.name} study sampled each model in its training order only: no order chart`);
  const rows = r.runs
    .filter((run) => run.ablation === 'causalfusion' || run.ablation === 'raster')
    .flatMap((run) =>
      run.evals.map((e) => ({
        model: `trained ${run.ablation === 'raster' ? 'raster' : 'random'}, sampled ${e.order}`,
        sEval: e.sEval,
        fd: e.fd,
        seed: run.seed,
      })),
    );
  const x = log2Axis('sEval', 'AR steps when sampling (S_eval)', r.setting.sEval);
  const color = colorBy('model', 'token order');
  return vegaLiteChart(
    opts.title ??
      `Random vs raster order across S_eval (${r.setting.name}: seeds ${r.setting.seeds.join(', ')}; line = mean, band = min..max)`,
    {
      width: 420,
      height: 260,
      data: { values: rows },
      layer: [
        {
          mark: { type: 'area', opacity: 0.18 },
          encoding: {
            x,
            y: { aggregate: 'min', field: 'fd', type: 'quantitative' },
            y2: { aggregate: 'max', field: 'fd' },
            color,
          },
        },
        {
          mark: { type: 'line', point: true },
          encoding: {
            x,
            y: {
              aggregate: 'mean',
              field: 'fd',
              type: 'quantitative',
              title: 'FD (log), lower is better',
              scale: { type: 'log' },
            },
            color,
            tooltip: [
              { field: 'model' },
              { field: 'sEval', title: 'S_eval' },
              { aggregate: 'mean', field: 'fd', format: '.1f', title: 'mean FD' },
            ],
          },
        },
      ],
    },
  );
}
