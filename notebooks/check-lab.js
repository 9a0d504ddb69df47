#!/usr/bin/env node
/**
 * JupyterLab's rendering of every notebook, in a real browser: the outputs of the committed notebooks
 * (notebooks/*.ipynb, slim) and of the executed ones (runs/notebooks/*.ipynb, written by execute.js, with the live
 * chart outputs and the chart libraries) go through JupyterLab's own renderers (@jupyterlab/outputarea,
 * @jupyterlab/rendermime, the vega and plotly mime renderers; see lab/render-outputs.js) in Debian's Chromium,
 * trusted and untrusted. Fails on any console error, page error or network request, and on any figure output
 * (chart, SVG, image) that drew nothing, trusted or not (committed figures are PNGs, which an untrusted JupyterLab
 * draws); with our runtime on the page it also checks the charts' interactions, and trusted, that live explorers run.
 * The vega-lite and plotly specs are then drawn alone by JupyterLab's vega and plotly renderers (what VS Code
 * and JupyterLab use without our scripts). A screenshot of each page goes to runs/lab/.
 *
 *   node notebooks/check-lab.js [NAME.ipynb ...]
 */
'use strict';
const fs = require('fs');
const path = require('path');
const esbuild = require('esbuild');
const { launch, offlinePage, checkCharts, checkExplorers } = require('./browser-checks');

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'runs', 'lab');
const { isChartOutput, text, NATIVE_CHART_TYPES } = require('./slim');

/** An output as the Jupyter server hands it to JupyterLab: multi-line strings joined (nbformat's rejoin_lines). */
function rejoin(o) {
  const joined = { ...o };
  if (o.text !== undefined) joined.text = text(o.text);
  if (o.data)
    joined.data = Object.fromEntries(
      Object.entries(o.data).map(([t, v]) => [
        t,
        /json$/.test(t) || (typeof v !== 'string' && !Array.isArray(v)) ? v : text(v),
      ]),
    );
  return joined;
}

/** Bundles the page (JupyterLab's renderers, vega, plotly.js) once into runs/lab/. */
function buildPage() {
  fs.mkdirSync(OUT, { recursive: true });
  esbuild.buildSync({
    entryPoints: [path.join(__dirname, 'lab', 'render-outputs.js')],
    outfile: path.join(OUT, 'lab.js'),
    bundle: true,
    format: 'iife',
    platform: 'browser',
    minify: true,
    loader: { '.svg': 'dataurl', '.png': 'dataurl', '.woff': 'dataurl', '.woff2': 'dataurl' },
    define: { 'process.env.NODE_ENV': '"production"', global: 'window' },
    logLevel: 'error',
  });
  const page = path.join(OUT, 'index.html');
  fs.writeFileSync(
    page,
    '<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="stylesheet" href="lab.css"></head>' +
      '<body style="font-family:sans-serif;width:1150px"><script src="lab.js"></script></body></html>',
  );
  return page;
}

/** Whether an output is a figure: one of our charts, an SVG, an image, or a native vega-lite / plotly chart. */
function isFigure(o) {
  const d = o.data ?? {};
  return ['image/svg+xml', 'image/png', 'image/jpeg', ...NATIVE_CHART_TYPES].some((t) => t in d) || isChartOutput(o);
}

/** In the page: per output area, the MIME type JupyterLab chose and whether it drew something. */
function outputsInPage() {
  return Array.from(document.querySelectorAll('[data-output]'), (area) => {
    const out = area.querySelector('.jp-OutputArea-output');
    const shown = Array.from(out ? out.querySelectorAll('img, svg, canvas, iframe.cf-explorer') : []).filter(
      (el) => !el.parentElement.closest('svg') && el.getBoundingClientRect().width > 10,
    );
    return {
      index: Number(area.getAttribute('data-output')),
      mime: out ? out.getAttribute('data-mime-type') : null,
      // a live explorer's frame counts here; checkExplorers checks that it runs
      drawn: shown.some((el) => ['canvas', 'iframe'].includes(el.tagName.toLowerCase()) || window.cfDrawn(el).drawn),
      text: out ? out.textContent.trim() : '',
    };
  });
}

/** Renders `outputs` in a fresh page, trusted or not; returns the problems found. */
async function checkOutputs(browser, page0, outputs, trusted, shot) {
  const problems = [];
  const page = await offlinePage(browser, problems);
  await page.goto(`file://${page0}`, { waitUntil: 'load' });
  await page.evaluate(([o, t]) => window.renderOutputs(o, t), [outputs, trusted]);
  // renderers finish asynchronously: plotly.js and vega draw after a tick, our runtime mounts on load
  await page.waitForTimeout(1500);
  const withRuntime = trusted && (await page.evaluate(() => !!window.causalfusionViz));
  const charts = withRuntime ? await checkCharts(page, problems) : 0;
  const explorers = trusted ? await checkExplorers(page, problems) : 0;
  const drawn = await page.evaluate(outputsInPage);
  let figures = 0;
  for (const r of drawn) {
    if (!isFigure(outputs[r.index])) continue;
    figures++;
    if (!r.drawn) problems.push(`output ${r.index} (shown as ${r.mime}) drew nothing: "${r.text.slice(0, 80)}"`);
  }
  await page.screenshot({ path: shot, fullPage: true });
  await page.close();
  return { problems, figures, charts, explorers };
}

async function main() {
  const chosen = process.argv.slice(2).map((f) => path.basename(f));
  const sources = [
    { label: 'committed', dir: path.join(ROOT, 'notebooks') },
    { label: 'executed', dir: path.join(ROOT, 'runs', 'notebooks') },
  ];
  const page0 = buildPage();
  const browser = await launch();
  let failed = 0;
  try {
    for (const { label, dir } of sources) {
      const files = fs.existsSync(dir)
        ? fs
            .readdirSync(dir)
            .filter((f) => f.endsWith('.ipynb') && (!chosen.length || chosen.includes(f)))
            .sort()
        : [];
      if (!files.length) throw new Error(`no ${label} notebooks in ${dir} (run node notebooks/execute.js first)`);
      for (const f of files) {
        const nb = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
        const outputs = nb.cells.flatMap((c) => c.outputs ?? []).map(rejoin);
        for (const trusted of [true, false]) {
          const shot = path.join(OUT, `${label}-${f.replace(/\.ipynb$/, '')}-${trusted ? 'trusted' : 'untrusted'}.png`);
          const r = await checkOutputs(browser, page0, outputs, trusted, shot);
          const name = `${label} ${f}, ${trusted ? 'trusted' : 'untrusted'}`;
          if (r.problems.length) {
            failed++;
            console.log(`FAIL ${name}\n  ${r.problems.slice(0, 10).join('\n  ')}`);
          } else
            console.log(
              `ok   ${name}: ${r.figures} figures drawn${r.charts ? ` (${r.charts} interactive)` : ''}${r.explorers ? `, ${r.explorers} live explorer(s) ran` : ''}`,
            );
        }
        // what VS Code and JupyterLab draw from the ecosystem's types alone, without our scripts
        const native = outputs
          .filter((o) => o.data && NATIVE_CHART_TYPES.some((t) => t in o.data))
          .map((o) => ({
            ...o,
            data: Object.fromEntries(Object.entries(o.data).filter(([t]) => NATIVE_CHART_TYPES.includes(t))),
          }));
        if (native.length) {
          const r = await checkOutputs(
            browser,
            page0,
            native,
            false,
            path.join(OUT, `${label}-${f.replace(/\.ipynb$/, '')}-native.png`),
          );
          if (r.problems.length) {
            failed++;
            console.log(
              `FAIL ${label} ${f}, vega-lite / plotly renderers alone\n  ${r.problems.slice(0, 10).join('\n  ')}`,
            );
          } else
            console.log(`ok   ${label} ${f}: ${r.figures} vega-lite / plotly specs drawn by JupyterLab's renderers`);
        }
      }
    }
  } finally {
    await browser.close();
  }
  if (failed) {
    console.error(`${failed} JupyterLab rendering check(s) failed`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(`check-lab: ${e.message}`);
  process.exit(1);
});
