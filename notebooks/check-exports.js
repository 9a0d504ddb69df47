#!/usr/bin/env node
/**
 * Real-browser check of the notebooks' HTML exports (runs/notebooks/*.html, written by execute.js): Debian's
 * Chromium, driven by playwright-core, opens each export offline and fails on any console error, page error or
 * network request, on any static figure (SVG or image output) that drew nothing, and on any interactive chart
 * that did not render or drew nothing; where an export has them, it checks that picking a query token changes
 * the attention maps and that moving an order slider changes the image. A screenshot of each page goes next
 * to the export for a human look.
 *
 *   node notebooks/check-exports.js [DIR]
 */
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const DIR = path.resolve(process.argv[2] || path.join(__dirname, '..', 'runs', 'notebooks'));
const CHROMIUM =
  process.env.CHROMIUM_PATH || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

/** Interactive charts: all rendered and drawn; the attention picker and the order slider respond. */
async function checkCharts(page, problems) {
  const n = await page.locator('.cf-chart').count();
  if (n === 0) return 0;
  try {
    await page.waitForFunction((k) => document.querySelectorAll('.cf-chart[data-rendered="true"]').length === k, n, {
      timeout: 30000,
    });
  } catch {
    problems.push(
      `only ${await page.locator('.cf-chart[data-rendered="true"]').count()} of ${n} interactive charts rendered`,
    );
  }
  const report = await page.evaluate(() => (window.causalfusionViz ? window.causalfusionViz.report() : []));
  report.forEach((c, i) => {
    if (!(c.rendered && c.staticHidden && c.w > 100 && c.h > 60 && c.marks > 10))
      problems.push(`chart ${i} (${c.renderer}) drew nothing: ${JSON.stringify(c)}`);
  });
  // what an element of the live chart draws: its markup, SVG attributes included
  const drawn = (chart, selector) =>
    chart
      .locator(`.cf-live ${selector}`)
      .first()
      .evaluate((e) => e.outerHTML);
  for (const chart of await page.locator('.cf-chart[data-renderer="d3-attention"]').all()) {
    const spec = JSON.parse(await chart.locator('script.cf-spec').textContent()).spec;
    if (spec.queries.length < 2) continue;
    const before = await drawn(chart, '.cf-attn-map');
    const k = spec.defaultQuery === 0 ? 1 : 0;
    const px = (spec.size / spec.grid) * Math.max(2, Math.floor(224 / spec.size));
    const tok = spec.queries[k].token;
    await chart
      .locator('.cf-live .cf-query-picker')
      .click({ position: { x: (tok % spec.grid) * px + px / 2, y: Math.floor(tok / spec.grid) * px + px / 2 } });
    if ((await drawn(chart, '.cf-attn-map')) === before)
      problems.push('picking another query token did not change the attention maps');
  }
  for (const chart of await page.locator('.cf-chart[data-renderer="d3-order"]').all()) {
    const before = await drawn(chart, '.cf-order-image');
    await chart.locator('.cf-live .cf-order-slider').fill('1');
    if ((await drawn(chart, '.cf-order-image')) === before)
      problems.push('moving the order slider did not change the image');
  }
  return n;
}

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
  // static figures: outputs outside the interactive charts (whose fallbacks are hidden once they render)
  const figures = await page.evaluate(() =>
    Array.from(
      document.querySelectorAll(
        '.jp-OutputArea-output svg, .jp-OutputArea-output img, .output_area svg, .output_area img',
      ),
    )
      .filter((el) => !el.closest('.cf-chart') && !el.parentElement.closest('svg'))
      .map((el) => {
        const r = el.getBoundingClientRect();
        const drawn =
          el.tagName.toLowerCase() === 'img'
            ? el.naturalWidth > 0 && el.complete
            : el.querySelectorAll('rect, path, text, line, image').length > 1;
        return { tag: el.tagName.toLowerCase(), w: r.width, h: r.height, drawn };
      }),
  );
  figures.forEach((f, i) => {
    if (!(f.w > 10 && f.h > 10 && f.drawn)) problems.push(`figure ${i} (${f.tag}) drew nothing (${f.w}x${f.h})`);
  });
  const charts = await checkCharts(page, problems);
  if (figures.length + charts === 0) problems.push('no figures found');
  await page.screenshot({ path: file.replace(/\.html$/, '.png'), fullPage: true });
  await page.close();
  return { figures: figures.length, charts, problems };
}

async function main() {
  if (!CHROMIUM) throw new Error("Chromium not found (install Debian's chromium, or set CHROMIUM_PATH)");
  const files = fs.existsSync(DIR)
    ? fs
        .readdirSync(DIR)
        .filter((f) => f.endsWith('.html'))
        .sort()
    : [];
  if (files.length === 0) throw new Error(`no HTML exports in ${DIR}: run node notebooks/execute.js first`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--allow-file-access-from-files'],
  });
  let failed = 0;
  try {
    for (const f of files) {
      const { figures, charts, problems } = await checkPage(browser, path.join(DIR, f));
      if (problems.length) {
        failed++;
        console.log(`FAIL ${f}\n  ${problems.slice(0, 10).join('\n  ')}`);
      } else
        console.log(
          `ok   ${f}: ${figures} static figures and ${charts} interactive charts drawn, no errors, no network`,
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
