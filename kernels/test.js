#!/usr/bin/env node
/** Runs Jupyter's kernel test suite (kernels/test_kernel.py) against a throw-away install of the kernel. */
'use strict';
const { spawnSync } = require('child_process');
const { withTempKernel, PYTHON } = require('./temp-kernel');

process.exitCode = withTempKernel(
  (env) =>
    spawnSync(PYTHON, ['-m', 'unittest', '-v', 'test_kernel'], { stdio: 'inherit', cwd: __dirname, env }).status ?? 1,
);
