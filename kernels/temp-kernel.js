/**
 * Installs the kernel spec into a throw-away prefix for the duration of `fn(env)`, where `env` points Jupyter
 * at it (JUPYTER_PATH). Used by the kernel tests and the notebook runner, so neither touches the user's kernels.
 */
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

function withTempKernel(fn) {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'causalfusion-kernel-'));
  try {
    const r = spawnSync(process.execPath, [path.join(__dirname, 'install.js'), '--prefix', prefix], {
      stdio: 'inherit',
    });
    if (r.status !== 0) throw new Error('kernel install failed');
    return fn({ ...process.env, JUPYTER_PATH: path.join(prefix, 'share', 'jupyter') });
  } finally {
    fs.rmSync(prefix, { recursive: true, force: true });
  }
}

/** Debian's Python (which has Jupyter), else whatever python3 is on PATH. */
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

module.exports = { withTempKernel, PYTHON };
