#!/usr/bin/env node
/**
 * Real-browser check of the notebooks' HTML exports (runs/notebooks/*.html, written by execute.js): Debian's
 * Chromium, driven by playwright-core, opens each export offline and fails on any console error, page error or
 * network request, on any static figure (SVG or image output) that drew nothing, and on any interactive chart
 * that did not render or drew nothing; where an export has them, it checks that picking a query token changes
 * the attention maps and that moving an order slider changes the image; a live explorer must run. A screenshot of each page goes next
 * to the export for a human look.
 *
 *   node notebooks/check-exports.js [DIR]
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { launch, offlinePage, drawnFigures, checkCharts, checkExplorers } = require('./browser-checks');

const DIR = path.resolve(process.argv[2] || path.join(__dirname, '..', 'runs', 'notebooks'));

async function checkPage(browser, file) {
  const problems = [];
  const page = await offlinePage(browser, problems);
  await page.goto(`file://${file}`, { waitUntil: 'load' });
  const figures = await drawnFigures(
    page,
    '.jp-OutputArea-output svg, .jp-OutputArea-output img, .output_area svg, .output_area img',
  );
  figures.forEach((f, i) => {
    if (!(f.w > 10 && f.h > 10 && f.drawn)) problems.push(`figure ${i} (${f.tag}) drew nothing (${f.w}x${f.h})`);
  });
  const charts = await checkCharts(page, problems);
  const explorers = await checkExplorers(page, problems);
  if (figures.length + charts === 0) problems.push('no figures found');
  await page.screenshot({ path: file.replace(/\.html$/, '.png'), fullPage: true });
  await page.close();
  return { figures: figures.length, charts, explorers, problems };
}

async function main() {
  const files = fs.existsSync(DIR)
    ? fs
        .readdirSync(DIR)
        .filter((f) => f.endsWith('.html'))
        .sort()
    : [];
  if (files.length === 0) throw new Error(`no HTML exports in ${DIR}: run node notebooks/execute.js first`);
  const browser = await launch();
  let failed = 0;
  try {
    for (const f of files) {
      const { figures, charts, explorers, problems } = await checkPage(browser, path.join(DIR, f));
      if (problems.length) {
        failed++;
        console.log(`FAIL ${f}\n  ${problems.slice(0, 10).join('\n  ')}`);
      } else
        console.log(
          `ok   ${f}: ${figures} static figures and ${charts} interactive charts drawn${explorers ? `, ${explorers} live explorer(s) ran` : ''}, no errors, no network`,
        );
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
