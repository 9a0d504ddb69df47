/**
 * Interactive charts in Node: spec snapshots (tests/fixtures/chart-specs, refreshed with UPDATE_SNAPSHOTS=1),
 * static rendering (vega's own SVG, resvg PNG checked pixel by pixel), files, output HTML and the size and
 * speed limits at 64 + 2 x 256 tokens and 16 heads. The browser side is in browser.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import { describeSequence, getAttnMask } from '../src/factorization/mask';
import { fromSizes } from '../src/factorization/steps';
import { createDiffusion } from '../src/diffusion/gaussian';
import { samplingDiffusion } from '../src/sample/sampler';
import { AttentionRecord, TrajectoryRecord } from '../src/introspect/recorders';
import { randomAttentionRecord } from '../src/introspect/synthetic';
import { LogEvent } from '../src/train/trainer';
import { Chart, PLOTLY_MIME, VEGALITE_MIME } from '../src/viz/chart';
import { arStepStatsChart, maskChart, orderChart } from '../src/viz/charts-factorization';
import { attentionChart } from '../src/viz/charts-attention';
import { attentionRollout } from '../src/introspect/rollout';
import { denoisingFrames } from '../src/introspect/frames';
import { arStepStats } from '../src/factorization/step-stats';
import { denoisingGridChart, imageGridChart, scheduleChart, trajectoryChart } from '../src/viz/charts-diffusion';
import { lossBreakdownChart, trainingCurvesChart } from '../src/viz/charts-training';
import { vizSetupHtml, VIZ_LIBRARIES } from '../src/viz/runtime';
import { Rng } from '../src/rng';
import { assertSvgSnapshot, tempDir } from './helpers';

const SNAPSHOTS = path.resolve(__dirname, '..', '..', 'tests', 'fixtures', 'chart-specs');

/** A digit-like test image: a bright ring on black, [size x size] in [-1, 1]. */
function ring(size = 28): Float32Array {
  return Float32Array.from({ length: size * size }, (_, i) => {
    const r = Math.hypot((i % size) - size / 2, Math.floor(i / size) - size / 2);
    return r > size / 5 && r < size / 3 ? 1 : -1;
  });
}

/** Square attention records (queries = keys) of a 1-cond, 16-token, 3-step training sequence, 2 layers x 2 heads. */
function squareRecords(): AttentionRecord[] {
  const sizes = [4, 4, 8];
  const mask = getAttnMask(16, 1, sizes);
  const positions = describeSequence(
    16,
    1,
    fromSizes(sizes, 16),
    Array.from({ length: 16 }, (_, i) => (i * 5) % 16),
  );
  const n = mask.seqLen;
  const rng = new Rng(3);
  return [0, 1].map((layer) => {
    const data: number[] = [];
    for (let h = 0; h < 2; h++)
      for (let r = 0; r < n; r++) {
        const row = Array.from({ length: n }, (_, c) => (mask.maskedOut[r * n + c] ? 0 : 0.1 + rng.random()));
        const s = row.reduce((a, b) => a + b, 0);
        data.push(...row.map((v) => v / s));
      }
    return {
      arStep: -1,
      diffusionStep: -1,
      t: 500,
      layer,
      sample: 0,
      unconditional: false,
      heads: [0, 1],
      shape: [2, n, n] as [number, number, number],
      data,
      queries: positions,
      keys: positions,
    };
  });
}

const history: LogEvent[] = Array.from({ length: 8 }, (_, k) => ({
  step: 10 * (k + 1),
  epoch: 0,
  loss: 1 / (k + 1),
  mse: 0.6 / (k + 1),
  lr: Math.min(1, (k + 1) / 3) * 1e-3,
  gradNorm: 2 / Math.sqrt(k + 1),
  stepsPerSec: 5,
  imagesPerSec: 160,
  elapsedSec: 2 * k,
  breakdown: { byArStep: [], byNumSteps: [], byTBin: [], arStepTokens: [] },
  tensors: 100,
}));

/** Trajectories of a 16-token, 7x7-patch image: AR step 0 makes tokens 0 and 5, step 1 the rest, 3 denoising steps each. */
function trajectories(): TrajectoryRecord[] {
  const rng = new Rng(4);
  const out: TrajectoryRecord[] = [];
  const steps = [[0, 5], Array.from({ length: 16 }, (_, i) => i).filter((i) => i !== 0 && i !== 5)];
  steps.forEach((positions, arStep) =>
    [0, 1, 2].forEach((k) => {
      const n = positions.length * 49;
      const x0 = Array.from(rng.normalArray(n), (v) => Math.tanh(v));
      out.push({
        arStep,
        diffusionStep: k,
        t: 999 - 450 * k,
        sample: 0,
        positions,
        shape: [positions.length, 49],
        xt: x0.map((v) => v + (2 - k) * 0.5),
        x0,
        eps: x0.map(() => 0),
      });
    }),
  );
  return out;
}

/** One chart of each kind, from fixed inputs. */
function charts(): Record<string, Chart> {
  const sizes = [4, 4, 8];
  return {
    mask: maskChart(getAttnMask(16, 1, sizes), describeSequence(16, 1, fromSizes(sizes, 16))),
    order: orderChart(ring(), 28, 4, [
      [0, 5, 10, 15],
      [1, 2, 3],
      [4, 6, 7, 8, 9, 11, 12, 13, 14],
    ]),
    'ar-step-stats': arStepStatsChart([1.0, 0.9].map((g) => arStepStats(16, g, { draws: 2000 }))),
    schedule: scheduleChart(createDiffusion(''), { '10 respaced steps': samplingDiffusion(10) }),
    training: trainingCurvesChart(history),
    'loss-breakdown': lossBreakdownChart({
      byArStep: [0.3, 0.25, 0.2],
      byNumSteps: [0.3, null, 0.22],
      byTBin: [0.5, 0.3, 0.1],
      arStepTokens: [160, 100, 60],
    }),
    attention: attentionChart(squareRecords(), ring(), 28, 4),
    grid: imageGridChart([ring(), null, ring(), ring()], 28, ['a', 'b'], ['x', 'y'], { title: 'grid' }),
    trajectories: trajectoryChart(trajectories(), [0, 5], { pixel: 24 }),
    denoising: denoisingGridChart(
      denoisingFrames(
        trajectories(),
        new Float32Array(16 * 49).fill(0.5),
        { channels: 1, size: 28, patch: 7 },
        {
          columns: [0, 2],
        },
      ),
    ),
  };
}

test('chart specs match their snapshots', () => {
  const update = process.env.UPDATE_SNAPSHOTS === '1';
  fs.mkdirSync(SNAPSHOTS, { recursive: true });
  for (const [name, chart] of Object.entries(charts())) {
    const file = path.join(SNAPSHOTS, `${name}.json`);
    const now = JSON.parse(JSON.stringify({ renderer: chart.renderer, title: chart.title, spec: chart.spec }));
    if (update) fs.writeFileSync(file, JSON.stringify(now, null, 1) + '\n');
    assert.ok(fs.existsSync(file), `${name}: no snapshot ${file} (UPDATE_SNAPSHOTS=1 writes it)`);
    assert.deepEqual(
      now,
      JSON.parse(fs.readFileSync(file, 'utf8')),
      `${name}: spec differs from ${file} (UPDATE_SNAPSHOTS=1 to accept)`,
    );
  }
});

test('every library is used: vega-lite, plotly and d3 renderers', () => {
  const libs = new Set(Object.values(charts()).map((c) => c.library));
  assert.deepEqual([...libs].sort(), ['d3', 'plotly', 'vega-lite']);
});

/** Decoded PNG and the share of pixels that are not near-white. */
function inked(png: Uint8Array): { width: number; height: number; ink: number } {
  const img = PNG.sync.read(Buffer.from(png));
  let ink = 0;
  for (let i = 0; i < img.width * img.height; i++)
    if (img.data[4 * i] + img.data[4 * i + 1] + img.data[4 * i + 2] < 600) ink++;
  return { width: img.width, height: img.height, ink: ink / (img.width * img.height) };
}

test('static rendering in Node: vega draws the vega-lite charts, every chart rasterises to a PNG with ink', () => {
  const all = charts();
  const vl = all['ar-step-stats'].svg();
  assert.match(vl, /^<svg[^>]*class="marks"/); // vega's own SVG renderer
  for (const text of ['AR-step statistics of the training law', 'AR steps S', 'cumulative share', 'γ = 0.9'])
    assert.ok(vl.includes(text), `vega SVG lacks "${text}"`);
  assert.ok(all.schedule.svg().includes('SNR'));
  for (const [name, chart] of Object.entries(all)) {
    const png = inked(chart.png(1));
    assert.ok(png.width > 100 && png.height > 60, `${name}: ${png.width}x${png.height}`);
    assert.ok(png.ink > 0.01 && png.ink < 0.95, `${name}: ${(100 * png.ink).toFixed(1)}% inked pixels`);
  }
});

test('charts save as .html (offline, libraries inline), .svg and .png, atomically; other extensions are refused', () => {
  const dir = tempDir('cf-charts-');
  const c = charts().order;
  const html = fs.readFileSync(c.save(path.join(dir, 'order.html')), 'utf8');
  assert.ok(html.includes('window.causalfusionViz') && html.includes('cf-chart'));
  assert.ok(!/<script[^>]+src=/.test(html), 'the page loads a script from elsewhere'); // nothing fetched
  assert.match(fs.readFileSync(c.save(path.join(dir, 'order.svg')), 'utf8'), /^<svg/);
  assert.equal(inked(fs.readFileSync(c.save(path.join(dir, 'sub', 'order.png')))).width > 100, true);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['order.html', 'order.svg', 'sub']);
  assert.throws(
    () => c.save(path.join(dir, 'order.pdf')),
    /cannot save a chart as "\.pdf": use \.html, \.svg or \.png/,
  );
});

test("vega-lite and plotly outputs also carry the ecosystem's MIME type, with the spec the runtime draws", () => {
  const all = charts();
  const vl = all.schedule.mimeBundle()[VEGALITE_MIME] as Record<string, unknown>;
  assert.equal(vl.$schema, 'https://vega.github.io/schema/vega-lite/v5.json');
  assert.deepEqual({ ...vl, $schema: undefined }, { ...all.schedule.spec, $schema: undefined });
  const plotly = all.training.mimeBundle()[PLOTLY_MIME] as { data: unknown[]; layout: object };
  assert.ok(Array.isArray(plotly.data) && plotly.data.length > 0 && typeof plotly.layout === 'object');
  assert.equal(all.schedule.mimeBundle()[PLOTLY_MIME], undefined);
});

test('a chart output carries static SVG, spec and loader but no library code', () => {
  const c = charts().attention;
  const html = c.html();
  assert.ok(html.length < 100_000, `${html.length} bytes`);
  assert.match(html, /<div class="cf-static"><img alt="Attention of one query[^"]*" src="data:image\/svg\+xml;base64,/);
  const img = /src="data:image\/svg\+xml;base64,([^"]+)"/.exec(html)![1];
  assert.equal(Buffer.from(img, 'base64').toString(), c.svg()); // the static picture is the chart's SVG
  assert.match(html, /<script type="application\/json" class="cf-spec">/);
  assert.doesNotMatch(html, /vegaEmbed|Plotly\.newPlot|d3\.select/);
  const bundle = c.mimeBundle();
  assert.deepEqual(Object.keys(bundle).sort(), ['image/svg+xml', 'text/html', 'text/plain']); // d3: no native type
});

test('the setup output carries each library once, AMD hidden once, no closing script tag inside', () => {
  const setup = vizSetupHtml();
  assert.deepEqual(Object.keys(VIZ_LIBRARIES).sort(), ['d3', 'plotly', 'vega-lite']);
  for (const marker of ['if(!window.vegaEmbed)', 'if(!window.Plotly)', 'if(!window.causalfusionViz)'])
    assert.equal(setup.split(marker).length, 2, marker);
  assert.equal(setup.match(/window\.define=undefined/g)?.length, 1);
  assert.doesNotMatch(setup.slice(setup.indexOf('<script>') + 8, setup.lastIndexOf('</script>')), /<\/script/i);
});

test('a page of d3 views gets our runtime only (the d3 modules it uses bundled in)', () => {
  const d3only = vizSetupHtml(['d3']);
  assert.ok(d3only.length < 100_000 && !d3only.includes('if(!window.Plotly)'), `${d3only.length} bytes`);
});

test('the d3 views draw the same static SVG as their snapshots (tests/fixtures/chart-svgs)', () => {
  const d3 = Object.entries(charts()).filter(([, c]) => c.library === 'd3');
  assert.deepEqual(d3.map(([n]) => n).sort(), ['attention', 'denoising', 'grid', 'mask', 'order']);
  for (const [name, chart] of d3) assertSvgSnapshot(name, chart.svg());
});

test('attention rollout: rows sum to 1, masked structure kept, identity for a single self-attending layer', () => {
  const recs = squareRecords();
  const R = attentionRollout(recs);
  const n = recs[0].shape[1];
  for (let i = 0; i < n; i++) {
    const s = R.subarray(i * n, (i + 1) * n).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(s - 1) < 1e-5, `row ${i} sums to ${s}`);
    // a condition query (row 0) may only attend to itself under the mask, so its rollout row stays one-hot
  }
  assert.ok(Math.abs(R[0] - 1) < 1e-6);
  assert.throws(() => attentionRollout([{ ...recs[0], shape: [2, 3, 5] }]), /square records/);
});

test('bad chart input names the problem', () => {
  assert.throws(() => orderChart(ring(), 28, 5, [[0]]), /image size 28 is not a multiple of the grid 5/);
  assert.throws(() => orderChart(ring(), 14, 2, [[0]]), /expects one grey 14x14 image, got 784 values/);
  assert.throws(() => attentionChart([], ring(), 28, 4), /at least one attention record/);
  assert.throws(() => imageGridChart([ring()], 28, ['a', 'b'], ['x'], { title: 't' }), /1 cells for a 2 x 1 grid/);
  assert.throws(
    () =>
      denoisingFrames(trajectories(), new Float32Array(16 * 49), { channels: 1, size: 28, patch: 7 }, { arSteps: [5] }),
    /no trajectories of AR steps 5 were recorded \(recorded: 0, 1\)/,
  );
  // one AR step's full denoising row: earlier steps' tokens are final (0.5), this step's are its x0 guesses
  const one = denoisingFrames(
    trajectories(),
    new Float32Array(16 * 49).fill(0.5),
    { channels: 1, size: 28, patch: 7 },
    {
      arSteps: [1],
      columns: [0, 1, 2],
    },
  );
  assert.deepEqual(one.rows, ['AR step 2']);
});

// their build and draw times are measured by `npm run bench` (charts section), not asserted: a slow machine is not a bug
test('scale: a 64 + 2 x 256 mask and 16-head attention over 576 positions stay small', () => {
  const split = fromSizes([100, 60, 40, 30, 25, 1], 256); // a 1-token last step: 64 + 255 clean + 256 noisy = 575 positions
  const mask = getAttnMask(256, 64, split.splitSizes);
  const m = maskChart(mask, describeSequence(256, 64, split));
  const html = m.html();
  assert.ok(html.length < 1_500_000, `mask output ${html.length} bytes`);
  // 16 heads of random attention over the 576 x 576 sequence, one layer
  const pos = describeSequence(256, 64, split);
  const rec = randomAttentionRecord(mask, pos, 16);
  const a = attentionChart([rec], ring(32), 32, 16).html();
  assert.ok(a.length < 3_000_000, `attention output ${a.length} bytes`);
});
