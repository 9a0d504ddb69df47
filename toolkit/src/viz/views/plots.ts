/**
 * Small static plots drawn with d3 (scales, axes and ticks from d3-scale / d3-axis): a line chart with labelled
 * series and an optional log y axis, and a bar chart. They serve reports and the static pictures of the plotly
 * charts, where no browser runs.
 */
import { axisBottom, axisLeft } from 'd3-axis';
import { scaleBand, scaleLinear, scaleLog } from 'd3-scale';
import { line } from 'd3-shape';
import { legend, legendWidth, Sel, svgRoot, View } from './common';

export interface Series {
  name: string;
  x: readonly number[];
  /** null leaves a gap. */
  y: readonly (number | null)[];
  color?: string;
}

export interface LineChartSpec {
  title: string;
  xTitle: string;
  yTitle: string;
  series: readonly Series[];
  width?: number;
  height?: number;
  logY?: boolean;
}

export interface BarChartSpec {
  title: string;
  xTitle: string;
  yTitle: string;
  labels: readonly (string | number)[];
  values: readonly number[];
  width?: number;
  height?: number;
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];
const MARGIN = { l: 64, t: 32, b: 44 };

/** Axis titles, and the axes' lines and labels in the charts' grey. */
function frame(svg: Sel, plot: Sel, spec: { xTitle: string; yTitle: string }, w: number, h: number, logY = false) {
  plot.selectAll('.domain').attr('stroke', '#333');
  plot.selectAll('.tick text').attr('fill', '#333').attr('font-size', 11);
  svg
    .append('text')
    .attr('x', MARGIN.l + w / 2)
    .attr('y', MARGIN.t + h + 36)
    .attr('text-anchor', 'middle')
    .text(spec.xTitle);
  svg
    .append('text')
    .attr('transform', `translate(14 ${MARGIN.t + h / 2}) rotate(-90)`)
    .attr('text-anchor', 'middle')
    .text(`${spec.yTitle}${logY ? ' (log)' : ''}`);
}

export const drawLineChart: View<LineChartSpec> = (el, spec) => {
  const finite = (y: number | null): y is number => y !== null && Number.isFinite(y) && (!spec.logY || y > 0);
  const pts = spec.series.flatMap((s) => s.x.flatMap((x, i) => (finite(s.y[i]) ? [[x, s.y[i] as number]] : [])));
  if (pts.length === 0) throw new Error(`chart "${spec.title}" has no finite points`);
  const items = spec.series.map((s, k) => ({ color: s.color ?? PALETTE[k % PALETTE.length], label: s.name }));
  const W = spec.width ?? 640;
  const H = spec.height ?? 320;
  const right = 16 + legendWidth(items);
  const [w, h] = [W - MARGIN.l - right, H - MARGIN.t - MARGIN.b];
  const span = (v: number[], pad: number): [number, number] => {
    const [lo, hi] = [Math.min(...v), Math.max(...v)];
    return hi > lo ? [lo, hi] : [lo - pad, hi + pad];
  };
  const x = scaleLinear()
    .domain(
      span(
        pts.map((p) => p[0]),
        1,
      ),
    )
    .range([0, w]);
  const [ylo, yhi] = span(
    pts.map((p) => p[1]),
    0.5,
  );
  const y = (
    spec.logY ? scaleLog().domain(ylo > 0 ? [ylo, yhi] : [yhi / 10, yhi]) : scaleLinear().domain([ylo, yhi])
  ).range([h, 0]);
  const svg = svgRoot(el, W, H, spec.title);
  const plot = svg.append('g').attr('transform', `translate(${MARGIN.l},${MARGIN.t})`);
  const yAxis = axisLeft(y)
    .ticks(spec.logY ? 6 : 5, '~g')
    .tickSize(-w)
    .tickPadding(6);
  // a log axis over less than a decade (a loss between 0.6 and 1.6) gets few log ticks: round linear ones
  const [d0, d1] = y.domain();
  if (spec.logY && d1 / d0 < 10) yAxis.tickValues(scaleLinear().domain([d0, d1]).ticks(5));
  plot
    .append('g')
    .call(yAxis)
    .call((g) => g.selectAll('.tick line').attr('stroke', '#ddd'));
  plot.append('g').attr('transform', `translate(0,${h})`).call(axisBottom(x).ticks(5, '~g'));
  frame(svg, plot, spec, w, h, spec.logY);
  const path = line<[number, number | null]>()
    .defined((d) => finite(d[1]))
    .x((d) => x(d[0]))
    .y((d) => y(d[1] as number));
  spec.series.forEach((s, k) =>
    plot
      .append('path')
      .attr('d', path(s.x.map((xv, i) => [xv, s.y[i]])))
      .attr('fill', 'none')
      .attr('stroke', items[k].color)
      .attr('stroke-width', 1.8)
      .append('title')
      .text(s.name),
  );
  legend(svg, items, W - right + 12, MARGIN.t);
};

export const drawBarChart: View<BarChartSpec> = (el, spec) => {
  const W = spec.width ?? 560;
  const H = spec.height ?? 260;
  const [w, h] = [W - MARGIN.l - 16, H - MARGIN.t - MARGIN.b];
  const names = spec.labels.map(String);
  const x = scaleBand().domain(names).range([0, w]).padding(0.1);
  const y = scaleLinear()
    .domain([0, Math.max(1e-12, ...spec.values)])
    .nice()
    .range([h, 0]);
  const svg = svgRoot(el, W, H, spec.title);
  const plot = svg.append('g').attr('transform', `translate(${MARGIN.l},${MARGIN.t})`);
  plot
    .append('g')
    .call(axisLeft(y).ticks(4, '~g').tickSize(-w).tickPadding(6))
    .call((g) => g.selectAll('.tick line').attr('stroke', '#ddd'));
  const every = Math.ceil(names.length / 16);
  plot
    .append('g')
    .attr('transform', `translate(0,${h})`)
    .call(axisBottom(x).tickValues(names.filter((_, i) => i % every === 0)));
  plot
    .append('g')
    .selectAll('rect')
    .data(spec.values)
    .join('rect')
    .attr('x', (_, i) => x(names[i]) as number)
    .attr('y', (v) => y(v))
    .attr('width', x.bandwidth())
    .attr('height', (v) => h - y(v))
    .attr('fill', '#1f77b4')
    .append('title')
    .text((v, i) => `${names[i]}: ${v.toPrecision(4)}`);
  frame(svg, plot, spec, w, h);
};
