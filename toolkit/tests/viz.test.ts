/**
 * The static pictures of the d3 views (the views' own code run in Node on linkedom): structure of the SVG they
 * draw, d3-scale ticks, gaps, and SVG snapshots of every view (tests/fixtures/chart-svgs, refreshed with
 * UPDATE_SNAPSHOTS=1). Chart specs and PNGs are in charts.test.ts, the browser in browser.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeSequence, getAttnMask } from '../src/factorization/mask';
import { fromSizes } from '../src/factorization/steps';
import { barChartSvg, lineChartSvg } from '../src/viz/static-svg';
import { maskChart, orderGridSvg } from '../src/viz/charts-factorization';
import { display, inNotebook, newDisplay } from '../src/viz/display';
import { assertSvgSnapshot } from './helpers';

const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;
/** The tick labels of the nth axis (d3-axis writes a domain path, then one group per tick). */
const tickLabels = (svg: string, nth: number) =>
  [
    ...svg
      .split('<path class="domain"')
      [nth + 1].split('<path class="domain"')[0]
      .matchAll(/<text fill="#333"[^>]*>([^<]*)<\/text>/g),
  ].map((m) => m[1]);

test('mask view, static: role strips for every row and column, the cells as one raster, legend', () => {
  const mask = getAttnMask(7, 1, [2, 2, 3]);
  const pos = describeSequence(7, 1, fromSizes([2, 2, 3], 7));
  const svg = maskChart(mask, pos, { title: 'Fig. 7' }).svg();
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal(count(svg, /<image [^>]*href="data:image\/png;base64,/g), 1);
  assert.equal(count(svg, /<rect x="-10" y="\d+" width="8"/g), 12); // one row strip per position
  assert.equal(count(svg, /<rect y="-10" x="\d+" height="8"/g), 12);
  for (const text of ['Fig. 7', 'keys →', 'queries →', 'condition', 'clean', 'noisy', 'blank = masked'])
    assert.ok(svg.includes(`>${text}</text>`), text);
  assert.throws(() => maskChart(mask, pos.slice(1)), /11 position labels for a mask of 12/);
  assertSvgSnapshot('mask-small', svg);
});

test('order grid: one cell per token with its AR step, kept tokens grey', () => {
  const svg = orderGridSvg(2, [[0, 3], [1]], { kept: [2] });
  assert.equal(count(svg, /<title>token \d, AR step \d<\/title>/g), 3);
  assert.match(svg, /fill="#bbbbbb"><title>token 2 \(kept\)<\/title>/);
  assertSvgSnapshot('order-grid', svg);
});

test('line chart: d3-scale ticks, log axis, gaps, no finite points is an error', () => {
  const spec = {
    title: 't',
    xTitle: 'x',
    yTitle: 'y',
    series: [{ name: 'a', x: [0, 1, 2, 3], y: [0.15, null, 0.6, 1.2] }],
  };
  const svg = lineChartSvg(spec);
  assert.deepEqual(tickLabels(svg, 1), ['0', '0.5', '1', '1.5', '2', '2.5', '3']); // x axis: d3's nice steps
  assert.equal(count(svg, /<path d="M[^"]*M/g), 1); // the null splits the line into two pieces
  const log = lineChartSvg({ ...spec, logY: true, series: [{ name: 'a', x: [0, 1], y: [0.003, 0.05] }] });
  assert.deepEqual(tickLabels(log, 0), ['0.003', '0.004', '0.005', '0.01', '0.02', '0.03', '0.04', '0.05']);
  assert.match(log, />y \(log\)</);
  const narrow = lineChartSvg({ ...spec, logY: true, series: [{ name: 'a', x: [0, 1], y: [0.6, 1.6] }] });
  assert.deepEqual(tickLabels(narrow, 0), ['0.6', '0.8', '1', '1.2', '1.4', '1.6']); // less than a decade: linear ticks
  assert.throws(
    () => lineChartSvg({ title: 'empty', xTitle: '', yTitle: '', series: [{ name: 'a', x: [0], y: [null] }] }),
    /chart "empty" has no finite points/,
  );
  assertSvgSnapshot('line', svg);
});

test('bar chart: one bar per value with its label, nice y ticks', () => {
  const svg = barChartSvg({ title: 'S', xTitle: 'S', yTitle: 'p', labels: [1, 2, 3], values: [0.5, 0.3, 0.2] });
  assert.equal(count(svg, /fill="#1f77b4"><title>/g), 3);
  assert.match(svg, /<title>2: 0.3000<\/title>/);
  assert.deepEqual(tickLabels(svg, 0), ['0', '0.1', '0.2', '0.3', '0.4', '0.5']);
  assertSvgSnapshot('bars', svg);
});

test('display: nothing is shown (and nothing fails) outside a notebook kernel', () => {
  assert.equal(inNotebook(), false);
  assert.doesNotThrow(() => display('<svg xmlns="http://www.w3.org/2000/svg"></svg>'));
  assert.doesNotThrow(() => newDisplay().show({ width: 1, height: 1, data: new Uint8Array(4) }));
});
