/**
 * Chart speed at ImageNet scale (64 condition + 2 x 256 image positions, 16 heads): time to build the mask
 * and attention charts in Node, their output size, the static SVG and PNG, and the time Chromium needs to
 * draw them (when Debian's chromium is installed). Medians of `repeats`.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { chromium } from 'playwright-core';
import { describeSequence, getAttnMask } from '../src/factorization/mask';
import { fromSizes } from '../src/factorization/steps';
import { randomAttentionRecord } from '../src/introspect/synthetic';
import '../src/viz/node-host';
import { Chart, standalonePage } from '../src/viz/chart';
import { maskChart } from '../src/viz/charts-factorization';
import { attentionChart } from '../src/viz/charts-attention';
import { median } from '../src/util/median';

const CHROMIUM =
  process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

function time<T>(f: () => T, repeats: number): { value: T; ms: number } {
  const ms: number[] = [];
  let value!: T;
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    value = f();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { value, ms: median(ms) };
}

export async function benchCharts(repeats = 3): Promise<Record<string, unknown>[]> {
  const split = fromSizes([100, 60, 40, 30, 25, 1], 256); // a 1-token last step: 64 + 255 clean + 256 noisy = 575 positions
  const mask = getAttnMask(256, 64, split.splitSizes);
  const pos = describeSequence(256, 64, split);
  const n = mask.seqLen;
  const rec = randomAttentionRecord(mask, pos, 16);
  const image = new Float32Array(32 * 32).map((_, i) => Math.sin(i / 7));
  const build: [string, () => Chart][] = [
    [`mask, ${n} positions`, () => maskChart(mask, pos)],
    [`attention, ${n} positions x 16 heads`, () => attentionChart([rec, { ...rec, layer: 1 }], image, 32, 16)],
  ];
  const rows: Record<string, unknown>[] = [];
  const charts: Chart[] = [];
  console.log(`\ncharts at ImageNet scale, median of ${repeats}`);
  console.log('chart                                 | build + HTML | output   | static SVG | PNG     | browser draw');
  for (const [name, make] of build) {
    const html = time(() => make().html(), repeats);
    const chart = make();
    const png = time(() => chart.png(1), repeats);
    charts.push(chart);
    rows.push({
      chart: name,
      buildMs: html.ms,
      outputBytes: html.value.length,
      svgBytes: chart.svg().length,
      pngMs: png.ms,
    });
  }
  if (CHROMIUM) {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cf-bench-')), 'page.html');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--allow-file-access-from-files'],
    });
    try {
      for (let k = 0; k < charts.length; k++) {
        fs.writeFileSync(file, standalonePage('bench', [charts[k]]));
        const ms: number[] = [];
        for (let r = 0; r < repeats; r++) {
          const page = await browser.newPage();
          const t0 = Date.now();
          await page.goto(`file://${file}`);
          await page.waitForSelector('.cf-chart[data-rendered="true"]');
          ms.push(Date.now() - t0);
          await page.close();
        }
        rows[k].browserMs = median(ms);
      }
    } finally {
      await browser.close();
    }
  }
  const kb = (b: unknown) => `${((b as number) / 1024).toFixed(0)} kB`;
  for (const r of rows)
    console.log(
      `${String(r.chart).padEnd(38)}| ${(r.buildMs as number).toFixed(0).padStart(6)} ms    | ${kb(r.outputBytes).padStart(8)} | ${kb(r.svgBytes).padStart(9)}  | ${(r.pngMs as number).toFixed(0).padStart(4)} ms | ` +
        `${r.browserMs === undefined ? 'no chromium' : `${r.browserMs} ms (page load incl. libraries)`}`,
    );
  return rows.map((r) => ({ bench: 'charts', ...r }));
}
