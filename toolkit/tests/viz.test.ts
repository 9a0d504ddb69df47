import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeSequence, getAttnMask } from '../src/factorization/mask';
import { fromSizes } from '../src/factorization/steps';
import { attentionGridSvg, barChartSvg, maskSvg, orderGridSvg } from '../src/viz/svg-grids';
import { lineChartSvg, logTicks, niceTicks } from '../src/viz/svg-chart';
import { display, inNotebook, newDisplay } from '../src/viz/display';

const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;

test('mask SVG: one filled cell per allowed entry, role strips, hover titles', () => {
  const mask = getAttnMask(7, 1, [2, 2, 3]);
  const pos = describeSequence(7, 1, fromSizes([2, 2, 3], 7));
  const svg = maskSvg(mask, pos, { title: 'Fig. 7' });
  const allowed = mask.maskedOut.filter((v) => v === 0).length;
  assert.equal(count(svg, /fill-opacity="0.75"/g), allowed);
  assert.equal(count(svg, /<title>query: /g), allowed);
  assert.match(svg, /query: noisy token 4 \(AR step 3\)&#10;key: clean token 0 \(AR step 1\)/);
  assert.match(svg, /^<svg[\s\S]*Fig. 7[\s\S]*<\/svg>$/);
  assert.throws(() => maskSvg(mask, pos.slice(1)), /11 position labels for a mask of 12/);
});

test('order grid, attention grid and bar chart SVGs', () => {
  const order = orderGridSvg(2, [[0, 3], [1], [2]]);
  assert.equal(count(order, /<title>token \d, AR step \d<\/title>/g), 4);
  assert.match(order, /token 3, AR step 1/);
  const att = attentionGridSvg(new Float32Array(16).fill(-1), 4, 2, [0.1, 0.2, 0.3, 0.4], { query: 3 });
  assert.equal(count(att, /<image [^>]*href="data:image\/png;base64,/g), 1); // the image as one embedded PNG
  assert.match(att, /token 3: 0.4000/);
  assert.match(att, /stroke="#d62728"/);
  const bars = barChartSvg({ title: 'S', xTitle: 'S', yTitle: 'p', labels: [1, 2, 3], values: [0.5, 0.3, 0.2] });
  assert.equal(count(bars, /<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="#1f77b4">/g), 3);
});

test('line chart ticks and gaps', () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  const svg = lineChartSvg({
    title: 't',
    xTitle: 'x',
    yTitle: 'y',
    series: [{ name: 'a', x: [0, 1, 2, 3], y: [1, null, 2, 3] }],
  });
  assert.equal(count(svg, /M/g) >= 2, true); // the null splits the line into two pieces
  assert.throws(
    () => lineChartSvg({ title: 'empty', xTitle: '', yTitle: '', series: [{ name: 'a', x: [0], y: [null] }] }),
    /chart "empty" has no finite points/,
  );
});

test('display: nothing is shown (and nothing fails) outside a notebook kernel', () => {
  assert.equal(inNotebook(), false);
  assert.doesNotThrow(() => display('<svg xmlns="http://www.w3.org/2000/svg"></svg>'));
  assert.doesNotThrow(() => newDisplay().show({ width: 1, height: 1, data: new Uint8Array(4) }));
});

test('log-axis ticks: 1-2-5 per decade inside the range', () => {
  assert.deepEqual(logTicks(0.15, 1.2), [0.2, 0.5, 1]);
  assert.deepEqual(logTicks(0.003, 0.05), [0.005, 0.01, 0.02, 0.05]);
  assert.deepEqual(logTicks(0.6, 1.6), [0.6, 0.8, 1, 1.2, 1.4, 1.6]); // too narrow for 1-2-5: linear round ticks
});
