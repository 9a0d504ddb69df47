/**
 * Real-browser test of the interactive charts: the gallery of every chart, built from the shipped model, is
 * opened offline in Debian's Chromium (playwright-core). Fails on any console error, page error or network
 * request, on a chart that did not render or drew nothing, and checks the interactions: picking a query
 * token changes the attention maps, moving the order slider changes the image, hovering the mask names
 * query and key. A screenshot goes to runs/charts/browser-gallery.png.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { chromium, Page } from 'playwright-core';
import { useBackend, tempDir } from './helpers';
import { loadModel } from '../src/io/checkpoint';
import { loadMnist } from '../src/data/datasets';
import { galleryCharts } from '../src/studies/gallery';
import { recordGalleryRun } from '../src/studies/gallery-run';
import { standalonePage } from '../src/viz/chart';
import { SHIPPED_MODEL } from '../src/data/assets';

const CHROMIUM =
  process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
const SCREENSHOT = path.resolve(__dirname, '..', '..', '..', 'runs', 'charts', 'browser-gallery.png');

/** What the first element matching `selector` inside chart `chart` draws: its markup (SVG attributes included). */
const drawnState = (page: Page, chart: number, selector: string) =>
  page
    .locator('.cf-chart')
    .nth(chart)
    .locator('.cf-live')
    .locator(selector)
    .first()
    .evaluate((e) => e.outerHTML);

/** What `causalfusionViz.report()` says about one chart. */
interface Drawn {
  renderer: string;
  rendered: boolean;
  marks: number;
  w: number;
  h: number;
  staticHidden: boolean;
}

test(
  'every chart renders offline in Chromium without errors, and its interactions work',
  { timeout: 240_000 },
  async () => {
    assert.ok(CHROMIUM, "Chromium not found: install Debian's chromium (npm test's setup does) or set CHROMIUM_PATH");
    await useBackend('wasm');
    const model = loadModel(SHIPPED_MODEL);
    const gallery = galleryCharts(await recordGalleryRun(model, loadMnist('test')));
    model.dispose();
    const names = Object.keys(gallery);
    const dir = tempDir('cf-browser-');
    const file = path.join(dir, 'gallery.html');
    fs.writeFileSync(file, standalonePage('gallery', Object.values(gallery)));

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--allow-file-access-from-files'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
      const problems: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      await page.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('file://') || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
        problems.push(`network request: ${url}`);
        return route.abort();
      });
      const t0 = Date.now();
      await page.goto(`file://${file}`, { waitUntil: 'load' });
      await page.waitForFunction(
        `document.querySelectorAll('.cf-chart[data-rendered="true"]').length === ${names.length}`,
        undefined,
        { timeout: 30_000 },
      );
      const renderMs = Date.now() - t0;

      // each chart drew something (SVG marks and images, plotly traces); the static fallback is hidden
      const drawn = (await page.evaluate('window.causalfusionViz.report()')) as Drawn[];
      drawn.forEach((d, i) => {
        assert.ok(d.staticHidden, `${names[i]}: static fallback still shown`);
        assert.ok(d.w > 100 && d.h > 60, `${names[i]}: ${d.w}x${d.h}`);
        assert.ok(d.marks > 10, `${names[i]} (${d.renderer}) drew nothing`);
      });

      // picking a query token changes the attention maps
      const att = names.indexOf('attention-sampling');
      const spec = gallery['attention-sampling'].spec as {
        queries: { token: number }[];
        defaultQuery: number;
        grid: number;
        size: number;
      };
      const before = await drawnState(page, att, '.cf-attn-map');
      const other = spec.queries.findIndex((_, k) => k !== spec.defaultQuery);
      assert.ok(other >= 0, 'the sampling attention needs two query tokens');
      const tokenPx = (spec.size / spec.grid) * Math.max(2, Math.floor(224 / spec.size));
      const picker = page.locator('.cf-chart').nth(att).locator('.cf-live .cf-query-picker');
      const tok = spec.queries[other].token;
      await picker.click({
        position: {
          x: (tok % spec.grid) * tokenPx + tokenPx / 2,
          y: Math.floor(tok / spec.grid) * tokenPx + tokenPx / 2,
        },
      });
      assert.equal(
        await page.locator('.cf-chart').nth(att).locator('.cf-live').getAttribute('data-query'),
        String(other),
      );
      assert.notEqual(
        await drawnState(page, att, '.cf-attn-map'),
        before,
        'attention maps unchanged after picking another query',
      );

      // moving the order slider changes the image
      const ord = names.indexOf('order');
      const full = await drawnState(page, ord, '.cf-order-image');
      await page.locator('.cf-chart').nth(ord).locator('.cf-live .cf-order-slider').fill('1');
      assert.equal(await page.locator('.cf-chart').nth(ord).locator('.cf-live').getAttribute('data-step'), '1');
      assert.notEqual(
        await drawnState(page, ord, '.cf-order-image'),
        full,
        'image unchanged after moving the order slider',
      );

      // hovering the mask names query and key
      const mask = page.locator('.cf-chart').nth(names.indexOf('mask')).locator('.cf-live .cf-mask-cells');
      const box = (await mask.boundingBox())!;
      await mask.hover({ position: { x: box.width - 5, y: box.height - 5 } });
      assert.match(
        (await page.locator('.cf-chart').nth(names.indexOf('mask')).locator('.cf-tooltip').textContent()) ?? '',
        /query \d+: noisy token \d+ \(AR step \d\)\nkey \d+: noisy token/,
      );

      fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      assert.deepEqual(problems, []);
      console.log(`# ${names.length} charts rendered in ${renderMs} ms`);
    } finally {
      await browser.close();
    }
  },
);
