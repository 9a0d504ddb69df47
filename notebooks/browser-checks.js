/**
 * What the browser checks of the notebooks share (check-exports.js: nbconvert's HTML exports; check-lab.js:
 * JupyterLab's renderers): Debian's Chromium through playwright-core, pages that fail on any console error,
 * page error or network request, and the checks that every figure and every interactive chart drew something,
 * that the charts' interactions work, and that live explorers run.
 */
'use strict';
const fs = require('fs');
const { chromium } = require('playwright-core');

const CHROMIUM =
  process.env.CHROMIUM_PATH || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

/** Chromium, headless, allowed to read file:// pages. */
async function launch() {
  if (!CHROMIUM) throw new Error("Chromium not found (install Debian's chromium, or set CHROMIUM_PATH)");
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--allow-file-access-from-files'] });
}

/**
 * A page that records console errors, page errors and any request leaving the machine into `problems`; the page
 * gets `window.cfDrawn` (drawnInPage) for the checks' in-page code.
 */
async function offlinePage(browser, problems) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.addInitScript(`window.cfDrawn = ${drawnInPage}`);
  page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (/^(file|data|blob):/.test(url)) return route.continue();
    problems.push(`network request: ${url}`);
    return route.abort();
  });
  return page;
}

/** In the page: whether an element (an <img>, or an <svg> with marks) drew something, and its size. */
function drawnInPage(el) {
  const r = el.getBoundingClientRect();
  const drawn =
    el.tagName.toLowerCase() === 'img'
      ? el.naturalWidth > 0 && el.complete
      : el.querySelectorAll('rect, path, text, line, image').length > 1;
  return { tag: el.tagName.toLowerCase(), w: r.width, h: r.height, drawn };
}

/**
 * Static figures of the page (SVG and images matching `selector`, outside our interactive charts and live
 * explorers, whose fallbacks are hidden once they render): what each drew.
 */
function drawnFigures(page, selector) {
  return page.evaluate(
    (sel) =>
      Array.from(document.querySelectorAll(sel))
        .filter((el) => !el.closest('.cf-chart, .cf-explorer-output') && !el.parentElement.closest('svg'))
        .map((el) => window.cfDrawn(el)),
    selector,
  );
}

/**
 * Interactive charts of our runtime: all rendered and drawn; picking a query token changes the attention maps,
 * moving an order slider changes the image. Returns how many there are.
 */
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

/**
 * Live explorers (`cf.explorer(model)` outputs, an iframe with the whole page): each must start its backend,
 * load its model, draw its first image and generate again when asked, with no error. Returns how many there are.
 */
async function checkExplorers(page, problems) {
  const frames = await page.locator('iframe.cf-explorer').elementHandles();
  for (const [i, handle] of frames.entries()) {
    try {
      const frame = await handle.contentFrame();
      await frame.waitForFunction(() => window.causalfusion, null, { timeout: 60000 });
      const card = await frame.evaluate(() => window.causalfusion.ready);
      const r = await frame.evaluate(() => window.causalfusion.generate({ diffusionSteps: 3, count: 2, seed: 1 }));
      if (
        r.images.length !== 2 ||
        !r.images.every((im) => im.length === card.imageSize ** 2 && im.every(Number.isFinite))
      )
        problems.push(`explorer ${i} (${card.name}) generated no image`);
    } catch (e) {
      problems.push(`explorer ${i} did not run: ${e.message.split('\n')[0]}`);
    }
  }
  return frames.length;
}

module.exports = { launch, offlinePage, drawnFigures, checkCharts, checkExplorers };
