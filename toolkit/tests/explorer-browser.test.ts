/**
 * The explorer page in a real browser: Debian's Chromium, headless and offline, from a folder written by
 * `writeExplorerFolder` and opened as file://. On each backend the browser offers here (WebGPU and WebGL2 on
 * SwiftShader, and wasm) a generation with given options and seed must give the Node sampler's images; a click on
 * a token must show the attention the Node recorder records for it; an edit must keep its kept tokens bit-exact;
 * a broken or foreign file must show its error and change nothing else; the panels must draw; and the page must
 * log no error and request nothing outside its folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { chromium, Browser, Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { buildExplorer, writeExplorerFolder } from '../src/explorer/folder';
import { decodeImages } from '../src/explorer/manifest';
import { ExplorerSession, runImage } from '../src/explorer/session';
import type { ExplorerApi, RunSummary } from '../src/explorer/api';
import { sampleImages } from '../src/sample/sampler';
import { SamplingRecorder } from '../src/introspect/recorders';
import { headMean } from '../src/introspect/rollout';
import { maxAbsDiff, tempDir, useBackend } from './helpers';

const CHROMIUM =
  process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

/**
 * How far the page's images may lie from Node's (wasm with the native kernels), per backend, in model range
 * (pixels span [-1, 1]). Both sides run the same float32 arithmetic in a different order (XNNPACK vs OpenBLAS
 * sums, GPU reductions, GPU exp / tanh), so they part by rounding, which 4 AR steps x 8 DDPM steps with CFG carry
 * along: measured here 1.9e-5 (wasm), 2.0e-5 (WebGL on SwiftShader), 1.8e-5 (WebGPU on SwiftShader). The bound
 * is 50x those; a real error (a wrong mask, order, noise draw or guidance) moves pixels by 0.1 and more.
 */
const TOLERANCE: Record<string, number> = { wasm: 1e-3, webgl: 1e-3, webgpu: 1e-3 };
/** Head-mean attention per patch, same reasoning (probabilities in [0, 1]). */
const ATTENTION_TOLERANCE = 1e-3;

const OPTIONS = {
  label: 7,
  count: 2,
  arSteps: 4,
  stepSizes: 'equal' as const,
  order: 'random' as const,
  diffusionSteps: 8,
  seed: 3,
  cfgScale: 2,
};

type Win = { causalfusion: ExplorerApi };

let site: { dir: string; bytes: Uint8Array; testImages: Float32Array[] } | null = null;

/** The folder under test (written once): the shipped small model, and its bytes for Node. */
function explorerSite() {
  if (site) return site;
  const built = buildExplorer([{ checkpoint: 'mnist-small' }, { checkpoint: 'mnist-base' }]);
  const dir = writeExplorerFolder(path.join(tempDir('cf-explorer-site-'), 'explorer'), built).dir;
  site = {
    dir,
    bytes: built.weights.get('mnist-small')!,
    testImages: decodeImages(built.manifest.images['mnist-small']),
  };
  return site;
}

async function launch(): Promise<Browser> {
  assert.ok(CHROMIUM, "Chromium not found: install Debian's chromium (npm test's setup does) or set CHROMIUM_PATH");
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--use-angle=swiftshader', '--enable-features=Vulkan'],
  });
}

/** Opens the page on `backend`, recording console errors, page errors and every request outside the folder. */
async function open(browser: Browser, backend: string, query = '&S=2&steps=4') {
  const { dir } = explorerSite();
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(`file://${dir}/`) && !u.startsWith('blob:') && !u.startsWith('data:'))
      problems.push(`request outside the folder: ${u}`);
  });
  await page.goto(`file://${dir}/index.html?backend=${backend}${query}`);
  await page.evaluate(() => (window as unknown as Win).causalfusion.ready);
  return { page, problems };
}

/** Calls `window.causalfusion[name](...args)` in the page. */
async function call<K extends keyof ExplorerApi>(
  page: Page,
  name: K,
  ...args: ExplorerApi[K] extends (...a: infer A) => unknown ? A : never
): Promise<ExplorerApi[K] extends (...a: never[]) => infer R ? Awaited<R> : never> {
  return page.evaluate(
    ([n, a]) => ((window as unknown as Win).causalfusion[n] as (...x: unknown[]) => unknown)(...(a as unknown[])),
    [name, args] as const,
  ) as never;
}

/** The Node session on the same float16 bytes the page loads. */
function nodeSession(): ExplorerSession {
  const s = new ExplorerSession();
  s.load(explorerSite().bytes, 'mnist-small.safetensors');
  return s;
}

/** Fraction of a screenshot's pixels that are not the background, and its number of distinct colours. */
function ink(png: Buffer): { drawn: number; colours: number } {
  const img = PNG.sync.read(png);
  const colours = new Set<number>();
  let drawn = 0;
  for (let i = 0; i < img.data.length; i += 4) {
    const [r, g, b] = [img.data[i], img.data[i + 1], img.data[i + 2]];
    colours.add((r << 16) | (g << 8) | b);
    if (r + g + b < 3 * 235) drawn++;
  }
  return { drawn: drawn / (img.width * img.height), colours: colours.size };
}

for (const backend of ['wasm', 'webgl', 'webgpu']) {
  test(
    `explorer on ${backend}: the Node sampler's images and order, the recorder's attention on a click, bit-exact edits`,
    { timeout: 300_000 },
    async () => {
      await useBackend('wasm');
      const browser = await launch();
      const node = nodeSession();
      try {
        const { page, problems } = await open(browser, backend);
        const report = (await call(page, 'backend'))!;
        assert.equal(report.chosen, backend);
        if (backend === 'webgpu') assert.match(report.detail, /WGSL flash attention/);
        const got = (await page.evaluate(
          (o) => (window as unknown as Win).causalfusion.generate(o),
          OPTIONS,
        )) as RunSummary;
        // Node, with the sizes and seed the page used: same orders, same images within the backend's rounding
        const ref = sampleImages(node.model, {
          labels: [7, 7],
          stepSizes: got.stepSizes,
          diffusionSteps: 8,
          seed: 3,
          cfgScale: 2,
        });
        assert.deepEqual(got.stepSizes, [4, 4, 4, 4]);
        assert.deepEqual(got.orders, ref.orders);
        const diff = maxAbsDiff(got.images.flat(), ref.images);
        console.log(`# ${backend}: page vs Node images, max |diff| ${diff.toExponential(2)}`);
        assert.ok(diff <= TOLERANCE[backend], `${backend}: images differ from Node by ${diff}`);

        // a click on a token of AR step 3 shows its attention: the Node recorder's head mean, summed per patch
        const token = got.orders[0][9];
        const canvas = (await page.$('#cf-main'))!;
        const box = (await canvas.boundingBox())!;
        const cell = box.width / 4;
        await canvas.click({
          position: { x: (token % 4) * cell + cell / 2, y: Math.floor(token / 4) * cell + cell / 2 },
        });
        const shown = (await call(page, 'shownAttention'))!;
        assert.equal(shown.token, token);
        assert.equal(shown.arStep, 2);
        const rec = new SamplingRecorder({ attention: { diffusionSteps: [7] } });
        sampleImages(node.model, {
          labels: [7, 7],
          stepSizes: got.stepSizes,
          diffusionSteps: 8,
          seed: 3,
          cfgScale: 2,
          observer: rec,
        });
        let worst = 0;
        for (const l of shown.layers) {
          const r = rec.attention.find((x) => x.arStep === 2 && x.layer === l.layer && !x.unconditional)!;
          const [, , Lk] = r.shape;
          const row = r.queries.findIndex((q) => q.token === token);
          const mean = headMean(r).subarray(row * Lk, (row + 1) * Lk);
          const want = new Array<number>(16).fill(0);
          r.keys.forEach((k, j) => k.role !== 'cond' && (want[k.token] += mean[j]));
          worst = Math.max(worst, maxAbsDiff(l.mean, want));
        }
        assert.equal(shown.layers.length, 4);
        assert.ok(worst <= ATTENTION_TOLERANCE, `${backend}: attention differs from the recorder by ${worst}`);
        const drawn = await page.evaluate(() => ({
          marks: document.querySelectorAll('#cf-attention svg image, #cf-attention svg rect').length,
          row: document.querySelectorAll('#cf-mask .cf-mask-row').length,
        }));
        assert.ok(drawn.marks > 20, `the attention view drew ${drawn.marks} marks`);
        assert.equal(drawn.row, 1, "the token's mask row is outlined");

        // an edit of a real test image: the kept half comes back bit-exact
        const ed = (await page.evaluate(() =>
          (window as unknown as Win).causalfusion.edit({
            image: 3,
            keep: 'bottom',
            label: 5,
            arSteps: 2,
            diffusionSteps: 4,
            seed: 1,
            cfgScale: 1, // the controls hold the last generation's 2, which an edit would take
          }),
        )) as RunSummary & { input: number[] };
        assert.deepEqual(ed.input, Array.from(explorerSite().testImages[3]));
        for (let i = 0; i < 14 * 28; i++) assert.equal(ed.images[0][i], ed.input[i], `kept pixel ${i}`);
        const regenerated = ed.images[0].slice(14 * 28);
        assert.ok(maxAbsDiff(regenerated, ed.input.slice(14 * 28)) > 0.5, 'the bottom half was regenerated');
        const nodeEdit = runImage(
          await node.edit(
            explorerSite().testImages[3],
            Array.from({ length: 16 }, (_, i) => i < 8),
            { label: 5, arSteps: 2, diffusionSteps: 4, seed: 1 },
          ),
          0,
        );
        const editDiff = maxAbsDiff(ed.images[0], nodeEdit);
        assert.ok(editDiff <= TOLERANCE[backend], `${backend}: the edit differs from Node's by ${editDiff}`);

        assert.deepEqual(problems, []);
        await page.close();
      } finally {
        node.model.dispose();
        await browser.close();
      }
    },
  );
}

test(
  'explorer: a broken or foreign file shows its error and changes nothing; a second model loads; the panels draw',
  { timeout: 300_000 },
  async () => {
    const browser = await launch();
    try {
      const { page, problems } = await open(browser, 'wasm');
      const card = await page.evaluate(() => (window as unknown as Win).causalfusion.card());
      const before = (await page.evaluate(() =>
        (window as unknown as Win).causalfusion.generate({ seed: 4, diffusionSteps: 3 }),
      )) as RunSummary;
      const input = page.locator('.drop input[type=file]');
      const cases: [string, Buffer, RegExp][] = [
        ['broken.safetensors', Buffer.from(explorerSite().bytes.subarray(0, 5000)), /broken.safetensors: .*truncated/],
        [
          'photo.png',
          fs.readFileSync(path.join(__dirname, '..', '..', '..', 'data', 'mnist-small-samples.png')),
          /photo.png: not a CausalFusion checkpoint/,
        ],
        [
          'notes.safetensors',
          Buffer.from('just some text, not a checkpoint'),
          /notes.safetensors: header length .*not safetensors/,
        ],
      ];
      for (const [name, buffer, message] of cases) {
        await input.setInputFiles({ name, mimeType: 'application/octet-stream', buffer });
        await page.waitForFunction(() => document.querySelector<HTMLElement>('.error')!.style.display === 'block');
        assert.match((await page.textContent('.error'))!, message);
        assert.deepEqual(await page.evaluate(() => (window as unknown as Win).causalfusion.card()), card);
        const again = (await page.evaluate(() =>
          (window as unknown as Win).causalfusion.generate({ seed: 4, diffusionSteps: 3 }),
        )) as RunSummary;
        assert.deepEqual(again.images, before.images, `after ${name} the model is the same`);
        assert.equal(await page.evaluate(() => document.querySelector<HTMLElement>('.error')!.style.display), 'none');
      }
      // left to choose, the page passes over software GPUs (SwiftShader here): they are slower than wasm
      const auto = await open(browser, 'auto');
      const chosen = (await call(auto.page, 'backend'))!;
      for (const s of chosen.skipped) assert.match(s.why, /software|no adapter|no WebGPU/, `${s.name}: ${s.why}`);
      if (chosen.chosen !== 'wasm') assert.doesNotMatch(chosen.detail, /swiftshader|llvmpipe|lavapipe/i);
      assert.deepEqual(auto.problems, []);
      await auto.page.close();
      // the second shipped model: its chunks load from the folder, the card follows
      const base = (await page.evaluate(() => (window as unknown as Win).causalfusion.selectModel('mnist-base'))) as {
        tokens: number;
      };
      assert.equal(base.tokens, 49);
      await page.evaluate(() => (window as unknown as Win).causalfusion.selectModel('mnist-small'));
      // every panel draws
      await page.evaluate(() =>
        (window as unknown as Win).causalfusion.generate({ label: 2, arSteps: 4, diffusionSteps: 5, count: 4 }),
      );
      await page.evaluate(() => (window as unknown as Win).causalfusion.clickToken(0));
      await page.evaluate(() =>
        (window as unknown as Win).causalfusion.edit({ image: 1, keep: 'left', diffusionSteps: 4 }),
      );
      await page.evaluate(() => (window as unknown as Win).causalfusion.compare({ diffusionSteps: 4 }));
      for (const id of ['cf-controls', 'cf-generation', 'cf-attention-panel', 'cf-editing', 'cf-compare']) {
        const shot = await page.locator(`#${id}`).screenshot();
        const { drawn, colours } = ink(shot);
        assert.ok(
          drawn > 0.05 && colours > 20,
          `#${id} looks blank: ${(100 * drawn).toFixed(1)} % drawn, ${colours} colours`,
        );
      }
      assert.equal(await page.locator('#cf-compare-out canvas').count(), 3);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  },
);
