#!/usr/bin/env node
/**
 * Slims executed notebooks for committing. Each chart output of a live kernel carries our interactive HTML (the
 * static picture inside), the same SVG as image/svg+xml and, for vega-lite / plotly charts, the spec under the
 * ecosystem's MIME type; the notebook also holds the chart libraries (0.1-2 MB). A committed notebook keeps only the
 * static SVG of each chart (image/svg+xml, what GitHub and nbviewer draw; an HTML copy would double the file) and
 * no libraries; plain SVG figures keep their SVG alone too. JupyterLab does not draw SVG from an untrusted notebook,
 * so the text line of each figure says how to see it there. Running a cell brings everything back. Other HTML
 * outputs (tables) stay as they are.
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

/** What an untrusted JupyterLab shows instead of a figure's SVG. */
const UNTRUSTED_HINT = ' (JupyterLab: trust the notebook to see the picture, or run the cell)';

/** Whether an output is one of our charts (its HTML has the chart wrapper). */
function isChartOutput(o) {
  return /class="cf-chart"/.test(text(o.data?.['text/html']));
}

/** The notebook object, slimmed in place; returns it. */
function slimNotebook(nb) {
  for (const cell of nb.cells) {
    if (!cell.outputs) continue;
    cell.outputs = cell.outputs.filter((o) => !isLibraryOutput(o));
    for (const o of cell.outputs) {
      if (!o.data || o.data['image/svg+xml'] === undefined) {
        if (isChartOutput(o)) throw new Error('a chart output without its static SVG');
        continue;
      }
      // a plain SVG figure goes out as an <img> of its SVG and the SVG itself: keep the SVG
      if (isChartOutput(o) || /^<img [^>]*src="data:image\/svg\+xml;/.test(text(o.data['text/html'])))
        for (const t of ['text/html', ...NATIVE_CHART_TYPES]) delete o.data[t];
      const line = text(o.data['text/plain']);
      if (!line.endsWith(UNTRUSTED_HINT)) o.data['text/plain'] = line + UNTRUSTED_HINT;
    }
  }
  return nb;
}

/** Slims a notebook file in place; returns its size before and after in bytes. */
function slimFile(file) {
  const before = fs.statSync(file).size;
  const nb = slimNotebook(JSON.parse(fs.readFileSync(file, 'utf8')));
  fs.writeFileSync(file, `${JSON.stringify(nb, null, 1)}\n`);
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
  UNTRUSTED_HINT,
};

if (require.main === module) {
  for (const file of process.argv.slice(2)) {
    const { before, after } = slimFile(file);
    console.log(`${file}: ${(before / 1e6).toFixed(2)} MB -> ${(after / 1e6).toFixed(2)} MB`);
  }
}
