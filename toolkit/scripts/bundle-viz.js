#!/usr/bin/env node
/**
 * Bundles the browser chart runtime (toolkit/src/viz/views/browser.ts and the d3 modules it imports) into one
 * offline script, toolkit/dist/viz-runtime/causalfusion-viz.js, which `vizSetup` sends once per page.
 * Run by `npm run build` after tsc.
 */
'use strict';
const path = require('path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
esbuild.buildSync({
  entryPoints: [path.join(root, 'src', 'viz', 'views', 'browser.ts')],
  outfile: path.join(root, 'dist', 'viz-runtime', 'causalfusion-viz.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2019',
  minify: true,
  legalComments: 'eof',
  logLevel: 'warning',
});
