#!/usr/bin/env node
/**
 * Runs the kernel tests: installs the kernel spec into a throw-away prefix, then Jupyter's kernel test suite
 * (kernels/test_kernel.py) with Debian's Python, which has jupyter_kernel_test.
 */
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'causalfusion-kernel-'));
const run = (cmd, args, env = {}) => spawnSync(cmd, args, { stdio: 'inherit', cwd: __dirname, env: { ...process.env, ...env } });
try {
  let r = run(process.execPath, [path.join(__dirname, 'install.js'), '--prefix', prefix]);
  if (r.status !== 0) process.exit(r.status ?? 1);
  const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  r = run(python, ['-m', 'unittest', '-v', 'test_kernel'], { JUPYTER_PATH: path.join(prefix, 'share', 'jupyter') });
  process.exitCode = r.status ?? 1;
} finally {
  fs.rmSync(prefix, { recursive: true, force: true });
}
