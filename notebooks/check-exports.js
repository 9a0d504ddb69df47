#!/usr/bin/env node
/**
 * Real-browser check of the notebooks' HTML exports (runs/notebooks/*.html, written by execute.js): Debian's
 * Chromium, driven by playwright-core, opens each export offline and fails on any console error, page error or
 * network request, and on any figure (SVG or image output) that drew nothing. A screenshot of each page goes
 * next to the export for a human look.
 *
 *   node notebooks/check-exports.js [DIR]
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const DIR = path.resolve(process.argv[2] || path.join(__dirname, '..', 'runs', 'notebooks'));
const CHROMIUM = process.env.CHROMIUM_PATH || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

async function checkPage(browser, file) {
  const problems = [];
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file://') || url.startsWith('data:')) return route.continue();
    problems.push(`network request: ${url}`);
    return route.abort();
  });
  await page.goto(`file://${file}`, { waitUntil: 'load' });
  const figures = await page.evaluate(() =>
    Array.from(document.querySelectorAll('.jp-OutputArea-output svg, .jp-OutputArea-output img, .output_area svg, .output_area img')).map((el) => {
      const r = el.getBoundingClientRect();
      const drawn = el.tagName.toLowerCase() === 'img' ? el.naturalWidth > 0 && el.complete : el.querySelectorAll('rect, path, text, line').length > 1;
      return { tag: el.tagName.toLowerCase(), w: r.width, h: r.height, drawn };
    }),
  );
  if (figures.length === 0) problems.push('no figures found');
  figures.forEach((f, i) => {
    if (!(f.w > 10 && f.h > 10 && f.drawn)) problems.push(`figure ${i} (${f.tag}) drew nothing (${f.w}x${f.h})`);
  });
  await page.screenshot({ path: file.replace(/\.html$/, '.png'), fullPage: true });
  await page.close();
  return { figures: figures.length, problems };
}

async function main() {
  if (!CHROMIUM) throw new Error('Chromium not found (install Debian\'s chromium, or set CHROMIUM_PATH)');
  const files = fs.existsSync(DIR) ? fs.readdirSync(DIR).filter((f) => f.endsWith('.html')).sort() : [];
  if (files.length === 0) throw new Error(`no HTML exports in ${DIR}: run node notebooks/execute.js first`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--allow-file-access-from-files'] });
  let failed = 0;
  try {
    for (const f of files) {
      const { figures, problems } = await checkPage(browser, path.join(DIR, f));
      if (problems.length) {
        failed++;
        console.log(`FAIL ${f}\n  ${problems.slice(0, 10).join('\n  ')}`);
      } else console.log(`ok   ${f}: ${figures} figures drawn, no errors, no network`);
    }
  } finally {
    await browser.close();
  }
  if (failed) {
    console.error(`${failed} export(s) failed the browser check`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(`check-exports: ${e.message}`);
  process.exit(1);
});
