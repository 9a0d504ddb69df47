/**
 * The explorer page's speed, headless Chromium on this machine, per backend, against the Node sampler in the
 * same run: time from navigation to the first image (backend start, weights, shader compilation, the first
 * generation at the page's defaults), and 10 images at S = 1, 4 and L for both shipped models, with the same
 * options and seed on both sides (the page also records its animation frames and attention; Node's `sampleImages`
 * records nothing); and the page's weight. WebGPU and WebGL run on SwiftShader here (a CPU
 * rasteriser): their times say what the page costs without a GPU, not what a GPU does.
 * `npm run bench` runs it on wasm only (software WebGL / WebGPU take half an hour here); `npm run bench -- --explorer`
 * runs it alone on all three; BENCH_EXPLORER_BACKENDS picks backends, BENCH_EXPLORER_REPEATS the repeats (default 3).
 */
import * as fs from 'fs';
import * as path from 'path';
import { chromium } from 'playwright-core';
import { initBackend } from '../src/backend';
import { buildExplorer, writeExplorerFolder } from '../src/explorer/folder';
import { ExplorerSession } from '../src/explorer/session';
import type { ExplorerApi, RunSummary } from '../src/explorer/api';
import { median } from '../src/util/median';
import { sampleImages } from '../src/sample/sampler';
import { splitEqual } from '../src/factorization/steps';

const CHROMIUM =
  process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
const ROOT = path.resolve(__dirname, '..', '..', '..');
const MODELS = ['mnist-small', 'mnist-base'];
/** Denoising steps per AR step: the page's default. */
const STEPS = 25;
/** Software adapters would take minutes for S = L of the 49-token model: only the small model runs all three. */
const SOFTWARE_SKIPS = (backend: string, model: string, S: number) =>
  backend !== 'wasm' && model === 'mnist-base' && S === 49;

type Win = { causalfusion: ExplorerApi };

export async function benchExplorer(
  repeats = 3,
  backends: readonly string[] = ['wasm', 'webgl', 'webgpu'],
): Promise<Record<string, unknown>[]> {
  if (!CHROMIUM) {
    console.log('\nexplorer: Chromium not found, skipped');
    return [];
  }
  const built = buildExplorer(MODELS.map((checkpoint) => ({ checkpoint })));
  const site = writeExplorerFolder(path.join(ROOT, 'runs', 'bench-explorer'), built);
  const size = (f: string) => fs.statSync(path.join(site.dir, f)).size;
  const weight = {
    bundle: size('explorer.js'),
    wasm: size('wasm.js'),
    ...Object.fromEntries(built.manifest.models.map((m) => [m.name, dirBytes(path.join(site.dir, 'models', m.name))])),
  };
  const mb = (n: number) => (n / 1e6).toFixed(2);
  console.log(
    `\nexplorer page weight: bundle ${mb(weight.bundle)} MB, wasm files ${mb(weight.wasm)} MB (wasm backend only), ` +
      MODELS.map((m) => `${m} weights ${mb((weight as Record<string, number>)[m])} MB`).join(', '),
  );

  // Node: the same sessions on the same float16 bytes
  await initBackend({ backend: 'wasm', quiet: true });
  const node = new Map<string, ExplorerSession>();
  for (const m of MODELS) {
    const s = new ExplorerSession();
    s.load(built.weights.get(m)!, `${m}.safetensors`);
    node.set(m, s);
  }
  const results: Record<string, unknown>[] = [{ explorerPageBytes: weight }];
  console.log(
    `explorer: 10 images, ${STEPS} DDPM steps per AR step, median of ${repeats}; first image at the page defaults`,
  );
  console.log(
    'backend | model       | first image | S = 1: page / Node        | S = 4: page / Node        | S = L: page / Node',
  );
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--use-angle=swiftshader', '--enable-features=Vulkan'],
  });
  try {
    for (const backend of backends)
      for (const model of MODELS) {
        const firsts: number[] = [];
        let page = null;
        for (let r = 0; r < repeats; r++) {
          await page?.close();
          page = await browser.newPage();
          await page.goto(`file://${site.dir}/index.html?backend=${backend}&model=${model}`);
          await page.evaluate(() => (window as unknown as Win).causalfusion.ready);
          firsts.push((await page.evaluate(() => (window as unknown as Win).causalfusion.timings())).firstImage);
        }
        const L = node.get(model)!.card!.tokens;
        const row: Record<string, unknown> = { backend, model, firstImageMs: median(firsts) };
        const cells: string[] = [];
        for (const S of [1, 4, L]) {
          if (SOFTWARE_SKIPS(backend, model, S)) {
            cells.push('skipped (software adapter)'.padEnd(25));
            continue;
          }
          const opts = {
            label: 3,
            count: 10,
            arSteps: S,
            diffusionSteps: STEPS,
            seed: 1,
            cfgScale: 1,
            order: 'random' as const,
            stepSizes: 'equal' as const,
          };
          const pageMs: number[] = [];
          const nodeMs: number[] = [];
          for (let r = 0; r < repeats; r++) {
            const got = (await page!.evaluate(
              (o) => (window as unknown as Win).causalfusion.generate(o),
              opts,
            )) as RunSummary;
            pageMs.push(got.ms);
            const t0 = Date.now();
            const sizes = splitEqual(L, S).splitSizes; // the page's 'equal'
            sampleImages(node.get(model)!.model, {
              labels: new Array(10).fill(3),
              stepSizes: sizes,
              diffusionSteps: STEPS,
              seed: 1,
            });
            nodeMs.push(Date.now() - t0);
          }
          const [p, n] = [median(pageMs), median(nodeMs)];
          row[`S${S}`] = { pageMs: p, nodeMs: n, ratio: p / n };
          cells.push(`${(p / 1000).toFixed(2)} s / ${(n / 1000).toFixed(2)} s = ${(p / n).toFixed(2)}x`.padEnd(25));
        }
        await page!.close();
        results.push(row);
        console.log(
          `${backend.padEnd(7)} | ${model.padEnd(11)} | ${(median(firsts) / 1000).toFixed(2).padStart(9)} s | ${cells.join(' | ')}`,
        );
      }
  } finally {
    await browser.close();
    for (const s of node.values()) s.model.dispose();
  }
  return results;
}

function dirBytes(dir: string): number {
  return fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}
