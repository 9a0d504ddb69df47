/**
 * Training charts: loss, learning rate and gradient norm curves (plotly: zoom, hover, and redrawn in place
 * while training runs), and the loss breakdowns behind the paper's Fig. 4 (vega-lite).
 */
import type { LogEvent } from '../train/trainer';
import type { LossBreakdown } from '../train/stats';
import { Chart, staticViewSvg } from './chart';
import { drawLineChart, LineChartSpec } from './views/plots';
import { svgRoot } from './views/common';
import { hstackSvg } from './svg-compose';
import { vegaLiteChart } from './vega';

const COLORS = { loss: '#1f77b4', mse: '#aec7e8', lr: '#2ca02c', grad: '#d62728' };

/** Loss (weighted and unweighted), learning rate and gradient norm against the step, in three stacked panels. */
export function trainingCurvesChart(history: readonly LogEvent[], opts: { title?: string } = {}): Chart {
  const title =
    opts.title ?? `Training: ${history.length ? `step ${history[history.length - 1].step}` : 'no steps yet'}`;
  const x = history.map((e) => e.step);
  const trace = (name: string, y: number[], color: string, yaxis: string) => ({
    type: 'scatter',
    mode: 'lines',
    name,
    x,
    y,
    yaxis,
    line: { color, width: 2 },
    hovertemplate: `step %{x}<br>${name} %{y:.4g}<extra></extra>`,
  });
  const data = [
    trace(
      'loss (AR-weighted)',
      history.map((e) => e.loss),
      COLORS.loss,
      'y',
    ),
    trace(
      'MSE (unweighted)',
      history.map((e) => e.mse),
      COLORS.mse,
      'y',
    ),
    trace(
      'learning rate',
      history.map((e) => e.lr),
      COLORS.lr,
      'y2',
    ),
    trace(
      'grad norm (before clip)',
      history.map((e) => e.gradNorm),
      COLORS.grad,
      'y3',
    ),
  ];
  const layout = {
    title: { text: title, x: 0, xanchor: 'left', font: { size: 13 } },
    width: 680,
    height: 440,
    margin: { l: 60, r: 20, t: 40, b: 40 },
    grid: { rows: 3, columns: 1, pattern: 'coupled', roworder: 'top to bottom' },
    xaxis: { title: { text: 'step' } },
    yaxis: { title: { text: 'loss' }, type: 'log', domain: [0.45, 1] },
    yaxis2: { title: { text: 'lr' }, domain: [0.23, 0.4], exponentformat: 'e' },
    yaxis3: { title: { text: 'grad norm' }, domain: [0, 0.18] },
    legend: { orientation: 'h', y: -0.15 },
    font: { family: 'sans-serif', size: 11 },
  };
  return new Chart('plotly', title, { data, layout }, () => {
    if (!history.length) return staticViewSvg((el) => void svgRoot(el, 300, 28, title), null);
    const lineChartSvg = (spec: LineChartSpec) => staticViewSvg(drawLineChart, spec);
    return hstackSvg(
      [
        lineChartSvg({
          title,
          xTitle: 'step',
          yTitle: 'loss',
          logY: true,
          width: 640,
          height: 240,
          series: [
            { name: 'loss (AR-weighted)', x, y: data[0].y, color: COLORS.loss },
            { name: 'MSE (unweighted)', x, y: data[1].y, color: COLORS.mse },
          ],
        }),
        lineChartSvg({
          title: 'Learning rate and gradient norm',
          xTitle: 'step',
          yTitle: 'value',
          width: 640,
          height: 180,
          series: [
            { name: 'lr x 1000', x, y: data[2].y.map((v) => v * 1000), color: COLORS.lr },
            { name: 'grad norm', x, y: data[3].y, color: COLORS.grad },
          ],
        }),
      ],
      { vertical: true, gap: 4 },
    );
  });
}

/**
 * The loss breakdowns of the paper's Fig. 4: by AR-step index (4c: later steps see more context), by the
 * number of AR steps S of the batch (4a) and by diffusion time t. From `trainer.stats.breakdown()` or a log event.
 */
export function lossBreakdownChart(b: LossBreakdown, opts: { title?: string; numTimesteps?: number } = {}): Chart {
  const T = opts.numTimesteps ?? 1000;
  const rows: Record<string, number | string>[] = [];
  b.byArStep.forEach(
    (v, s) =>
      v !== null &&
      rows.push({ panel: 'by AR-step index (Fig. 4c)', x: s + 1, mse: v, detail: `${b.arStepTokens[s]} tokens` }),
  );
  b.byNumSteps.forEach(
    (v, s) => v !== null && rows.push({ panel: 'by number of AR steps S (Fig. 4a)', x: s + 1, mse: v, detail: '' }),
  );
  b.byTBin.forEach(
    (v, k) =>
      v !== null &&
      rows.push({ panel: 'by diffusion time t', x: Math.round(((k + 0.5) * T) / b.byTBin.length), mse: v, detail: '' }),
  );
  const panel = (name: string, xTitle: string) => ({
    title: name,
    width: 210,
    height: 170,
    transform: [{ filter: { field: 'panel', equal: name } }],
    mark: { type: 'line', point: true, color: '#1f77b4' },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: xTitle },
      y: { field: 'mse', type: 'quantitative', title: 'mean MSE', scale: { zero: false } },
      tooltip: [{ field: 'x', title: xTitle }, { field: 'mse', format: '.4f' }, { field: 'detail' }],
    },
  });
  return vegaLiteChart(opts.title ?? 'Training loss breakdown (unweighted MSE)', {
    data: { values: rows },
    hconcat: [
      panel('by AR-step index (Fig. 4c)', 'AR step'),
      panel('by number of AR steps S (Fig. 4a)', 'S'),
      panel('by diffusion time t', 't (bin centre)'),
    ],
  });
}
