#!/usr/bin/env node
/**
 * Executes every notebook headless with the CausalFusion kernel (nbconvert), each under a time limit, fails on
 * any cell error, and writes the executed notebooks and their HTML exports to runs/notebooks/. `--inplace` instead
 * refreshes the committed notebooks' outputs, slimmed (slim.js: static charts, no chart libraries). Notebook 7 (the
 * claims study) runs its reduced setting here and its full setting (the committed, cached study) with `--inplace`,
 * unless CAUSALFUSION_CLAIMS_SETTING says otherwise.
 *
 *   node notebooks/execute.js [--inplace] [NAME.ipynb ...]
 */
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { withTempKernel } = require('../kernels/temp-kernel');
const { slimFile } = require('./slim');

const LIMIT_S = Number(process.env.NOTEBOOK_TIMEOUT_S || 600);
const args = process.argv.slice(2);
const inplace = args.includes('--inplace');
const chosen = args.filter((a) => a !== '--inplace');
const notebooks = (
  chosen.length
    ? chosen
    : fs
        .readdirSync(__dirname)
        .filter((f) => f.endsWith('.ipynb'))
        .sort()
).map((f) => path.basename(f));
const outDir = path.resolve(__dirname, '..', 'runs', 'notebooks');

const failed = withTempKernel((kernelEnv) => {
  const env = {
    ...kernelEnv,
    CAUSALFUSION_CLAIMS_SETTING: process.env.CAUSALFUSION_CLAIMS_SETTING || (inplace ? 'full' : 'reduced'),
  };
  const bad = [];
  for (const nb of notebooks) {
    const t0 = Date.now();
    const to = inplace ? ['--inplace'] : ['--output-dir', outDir];
    const r = spawnSync(
      'jupyter',
      [
        'nbconvert',
        '--execute',
        '--to',
        'notebook',
        ...to,
        `--ExecutePreprocessor.timeout=${LIMIT_S}`,
        '--ExecutePreprocessor.kernel_name=causalfusion',
        nb,
      ],
      {
        cwd: __dirname,
        env,
        encoding: 'utf8',
        timeout: LIMIT_S * 1000,
      },
    );
    const sec = ((Date.now() - t0) / 1000).toFixed(1);
    if (r.status === 0 && inplace) {
      const { before, after } = slimFile(path.join(__dirname, nb));
      console.log(
        `ok   ${nb} (${sec} s; committed outputs ${(before / 1e6).toFixed(2)} -> ${(after / 1e6).toFixed(2)} MB without the chart libraries)`,
      );
    } else if (r.status === 0) {
      // the HTML export of the executed notebook, for check-exports.js (check-lab.js reads the notebook itself)
      const html = spawnSync('jupyter', ['nbconvert', '--to', 'html', path.join(outDir, nb)], { encoding: 'utf8' });
      if (html.status !== 0) throw new Error(`nbconvert could not export ${nb} to HTML: ${html.stderr.slice(-500)}`);
      console.log(`ok   ${nb} (${sec} s)`);
    } else {
      bad.push(nb);
      console.log(
        `FAIL ${nb} (${sec} s${r.error ? `, ${r.error.message}` : ''})\n${(r.stderr || '')
          .split('\n')
          .filter((l) => !l.startsWith('[causalfusion kernel]'))
          .slice(-30)
          .join('\n')}`,
      );
    }
  }
  return bad;
});
if (failed.length) {
  console.error(`${failed.length} notebook(s) failed: ${failed.join(', ')}`);
  process.exit(1);
}
console.log(inplace ? 'notebooks refreshed in place' : `HTML exports in ${outDir}`);
