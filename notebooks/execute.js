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
const os = require('os');
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

/** Runs nbconvert on `nb` (a path) in `cwd`, in place or into `outDir`; returns spawnSync's result and the seconds. */
function nbconvert(nb, cwd, env, outDir) {
  const t0 = Date.now();
  const to = outDir ? ['--output-dir', outDir] : ['--inplace'];
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
    { cwd, env, encoding: 'utf8', timeout: LIMIT_S * 1000 },
  );
  return { r, sec: ((Date.now() - t0) / 1000).toFixed(1) };
}

function failure(nb, sec, r) {
  return `FAIL ${nb} (${sec} s${r.error ? `, ${r.error.message}` : ''})\n${(r.stderr || '')
    .split('\n')
    .filter((l) => !l.startsWith('[causalfusion kernel]'))
    .slice(-30)
    .join('\n')}`;
}

// A notebook must run from any folder (shipped models and data are found by name, not by relative path):
// this one is also executed from a copy outside the repository.
const COPIED = '04-attention-maps.ipynb';

const failed = withTempKernel((kernelEnv) => {
  const env = {
    ...kernelEnv,
    CAUSALFUSION_CLAIMS_SETTING: process.env.CAUSALFUSION_CLAIMS_SETTING || (inplace ? 'full' : 'reduced'),
  };
  const bad = [];
  for (const nb of notebooks) {
    const { r, sec } = nbconvert(nb, __dirname, env, inplace ? null : outDir);
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
      console.log(failure(nb, sec, r));
    }
  }
  if (!inplace && notebooks.includes(COPIED)) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cf-copied-notebook-'));
    try {
      fs.copyFileSync(path.join(__dirname, COPIED), path.join(dir, COPIED));
      const { r, sec } = nbconvert(COPIED, dir, env, dir);
      if (r.status === 0) console.log(`ok   ${COPIED} copied to ${dir} and run there (${sec} s)`);
      else (bad.push(`${COPIED} (copied)`), console.log(failure(`${COPIED} copied to ${dir}`, sec, r)));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return bad;
});
if (failed.length) {
  console.error(`${failed.length} notebook(s) failed: ${failed.join(', ')}`);
  process.exit(1);
}
console.log(inplace ? 'notebooks refreshed in place' : `HTML exports in ${outDir}`);
