#!/usr/bin/env node
/**
 * The README's picture of the explorer (data/explorer.png): opens an explorer folder (default runs/explorer, from
 * `npm run explorer`) in Debian's Chromium on wasm, edits a test digit, compares S = 1, 4, 16, generates the digit
 * 3 in 4 AR steps and clicks a token of the third step, then saves the page as a palette PNG.
 *
 *   node toolkit/scripts/explorer-screenshot.js [EXPLORER_DIR] [OUT.png]
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');
const { PNG } = require('pngjs');
const { encodePalettePng } = require('../dist/src/io/png');

const ROOT = path.resolve(__dirname, '..', '..');
const dir = path.resolve(process.argv[2] || path.join(ROOT, 'runs', 'explorer'));
const out = path.resolve(process.argv[3] || path.join(ROOT, 'data', 'explorer.png'));
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

async function main() {
  if (!fs.existsSync(path.join(dir, 'index.html'))) throw new Error(`${dir} has no explorer: run npm run explorer`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`file://${dir}/index.html?backend=wasm&label=3&S=4&steps=50&seed=2`);
    const api = (f, arg) => page.evaluate(f, arg);
    await api(() => window.causalfusion.ready);
    await api(() => window.causalfusion.edit({ image: 3, keep: 'bottom', label: 8, arSteps: 2, diffusionSteps: 50 }));
    await api(() => window.causalfusion.compare({ label: 3, diffusionSteps: 50, seed: 2 }));
    const run = await api(() => window.causalfusion.generate({ label: 3, arSteps: 4, diffusionSteps: 50, seed: 2 }));
    await api((t) => window.causalfusion.clickToken(t), run.orders[0][9]);
    await page.waitForTimeout(2500); // the replay ends on the final image
    const shot = PNG.sync.read(await page.screenshot({ fullPage: true }));
    const png = encodePalettePng({ width: shot.width, height: shot.height, data: new Uint8Array(shot.data) });
    fs.writeFileSync(out, png);
    console.log(`wrote ${out} (${shot.width}x${shot.height}, ${(png.length / 1000).toFixed(0)} kB)`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`explorer-screenshot: ${e.message}`);
  process.exit(1);
});
