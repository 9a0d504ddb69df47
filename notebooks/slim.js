#!/usr/bin/env node
/**
 * Slims executed notebooks for committing. Each chart output of a live kernel carries our interactive HTML (the
 * static picture inside), the same SVG as image/svg+xml and, for vega-lite / plotly charts, the spec under the
 * ecosystem's MIME type; the notebook also holds the chart libraries (0.1-2 MB). A committed notebook keeps each
 * figure (chart or plain SVG) once, as a PNG in at most 256 colours: the one picture every viewer draws, GitHub,
 * nbviewer, VS Code and an untrusted JupyterLab (which draws no SVG and runs no script) alike. It is rendered at 2x
 * the SVG's size, or 1.5x or 1x where the notebook would otherwise pass MAX_BYTES. Running a cell brings the
 * interactive chart back. Other HTML outputs (tables) stay as they are.
 *
 *   node notebooks/slim.js NAME.ipynb ...        (notebooks:refresh runs it on every notebook it executes)
 */
'use strict';
const fs = require('fs');

const LIBRARIES = 'CausalFusion Lab chart libraries';
/** The ecosystem's chart types (vega-lite, plotly): their specs return when a cell runs. */
const NATIVE_CHART_TYPES = ['application/vnd.vegalite.v5+json', 'application/vnd.plotly.v1+json'];
const text = (v) => (Array.isArray(v) ? v.join('') : (v ?? ''));

/** Whether an output is the chart libraries that `display` sends once per kernel session. */
function isLibraryOutput(o) {
  return text(o.data?.['text/plain']).startsWith(LIBRARIES);
}

/** The committed size limit (tested): figures are drawn smaller until the notebook fits. */
const MAX_BYTES = 500_000;
/** The PNG scales tried, largest first. */
const SCALES = [2, 1.5, 1];

/** Whether an output is one of our charts (its HTML has the chart wrapper). */
function isChartOutput(o) {
  return /class="cf-chart"/.test(text(o.data?.['text/html']));
}

/** Whether an output is a figure: it carries an SVG (our charts, plain SVG figures). */
function isFigure(o) {
  if (o.data?.['image/svg+xml'] !== undefined) return true;
  if (isChartOutput(o)) throw new Error('a chart output without its static SVG');
  return false;
}

/** The notebook object, slimmed in place at PNG `scale`; returns it. */
function slimNotebook(nb, scale = SCALES[0]) {
  // the toolkit's renderer (built by `npm run build`, which every script runs first)
  const { svgToPng } = require('../toolkit/dist/src/viz/node-host');
  for (const cell of nb.cells) {
    if (!cell.outputs) continue;
    cell.outputs = cell.outputs.filter((o) => !isLibraryOutput(o));
    for (const o of cell.outputs) {
      if (!isFigure(o)) continue;
      const png = svgToPng(text(o.data['image/svg+xml']), scale, { palette: true });
      for (const t of ['text/html', 'image/svg+xml', ...NATIVE_CHART_TYPES]) delete o.data[t];
      o.data['image/png'] = Buffer.from(png).toString('base64');
    }
  }
  return nb;
}

/** Slims a notebook file in place at the largest scale that fits MAX_BYTES; returns its size before and after. */
function slimFile(file) {
  const before = fs.statSync(file).size;
  const source = fs.readFileSync(file, 'utf8');
  let out = '';
  for (const scale of SCALES) {
    out = `${JSON.stringify(slimNotebook(JSON.parse(source), scale), null, 1)}\n`;
    if (Buffer.byteLength(out) <= MAX_BYTES) break;
  }
  fs.writeFileSync(file, out);
  return { before, after: fs.statSync(file).size };
}

module.exports = {
  isLibraryOutput,
  isChartOutput,
  slimNotebook,
  slimFile,
  text,
  LIBRARIES,
  NATIVE_CHART_TYPES,
  MAX_BYTES,
};

if (require.main === module) {
  for (const file of process.argv.slice(2)) {
    const { before, after } = slimFile(file);
    console.log(`${file}: ${(before / 1e6).toFixed(2)} MB -> ${(after / 1e6).toFixed(2)} MB`);
  }
}
