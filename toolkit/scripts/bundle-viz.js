#!/usr/bin/env node
/**
 * Bundles the two browser scripts, run by `npm run build` after tsc:
 *  - the chart runtime (toolkit/src/viz/views/browser.ts and its d3 modules) into
 *    toolkit/dist/viz-runtime/causalfusion-viz.js, which `vizSetup` sends once per page;
 *  - the explorer page (toolkit/src/explorer/page.ts: the core, tfjs and its WebGPU, WebGL and wasm backends)
 *    into toolkit/dist/explorer/explorer.js, which `causalfusion explorer` and `cf.explorer` ship.
 */
'use strict';
const path = require('path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
const scripts = [
  [path.join('viz', 'views', 'browser.ts'), path.join('viz-runtime', 'causalfusion-viz.js')],
  [path.join('explorer', 'page.ts'), path.join('explorer', 'explorer.js')],
];
for (const [entry, out] of scripts)
  esbuild.buildSync({
    entryPoints: [path.join(root, 'src', entry)],
    outfile: path.join(root, 'dist', out),
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    legalComments: 'eof',
    logLevel: 'warning',
  });
