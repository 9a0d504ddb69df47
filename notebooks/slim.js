#!/usr/bin/env node
/**
 * Slims executed notebooks for committing: drops the chart-library outputs (d3, vega, plotly: 0.3-2.3 MB per
 * notebook), the scripts of each chart's HTML (its spec and mount call) and the specs under the vega-lite / plotly
 * MIME types, keeping every chart's static SVG. A
 * committed notebook then shows the same pictures on GitHub, in nbviewer and in an untrusted Notebook (which runs no
 * script anyway); running a cell sends the libraries again and its charts become interactive.
 *
 *   node notebooks/slim.js NAME.ipynb ...        (notebooks:refresh runs it on every notebook it executes)
 */
'use strict';
const fs = require('fs');

const LIBRARIES = 'CausalFusion Lab chart libraries';
/** The ecosystem's chart types (vega-lite, plotly): their specs return when a cell runs; stored, the SVG shows. */
const NATIVE_CHART_TYPES = ['application/vnd.vegalite.v5+json', 'application/vnd.plotly.v1+json'];
const text = (v) => (Array.isArray(v) ? v.join('') : (v ?? ''));

/** Whether an output is the chart libraries that `display` sends once per kernel session. */
function isLibraryOutput(o) {
  return text(o.data?.['text/plain']).startsWith(LIBRARIES);
}

/** A chart's HTML without its scripts: the static SVG inside stays. */
function withoutScripts(html) {
  return html.replace(/<script\b[^>]*>[\s\S]*?<\/script>/g, '');
}

/** The notebook object, slimmed in place; returns it. */
function slimNotebook(nb) {
  for (const cell of nb.cells) {
    if (!cell.outputs) continue;
    cell.outputs = cell.outputs.filter((o) => !isLibraryOutput(o));
    for (const o of cell.outputs) {
      const html = o.data?.['text/html'];
      if (html !== undefined && /class="cf-chart"/.test(text(html))) o.data['text/html'] = withoutScripts(text(html));
      for (const t of NATIVE_CHART_TYPES) if (o.data) delete o.data[t];
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

module.exports = { isLibraryOutput, slimNotebook, slimFile, LIBRARIES };

if (require.main === module) {
  for (const file of process.argv.slice(2)) {
    const { before, after } = slimFile(file);
    console.log(`${file}: ${(before / 1e6).toFixed(2)} MB -> ${(after / 1e6).toFixed(2)} MB`);
  }
}
