#!/usr/bin/env node
/**
 * Installs (or removes) the "CausalFusion (TypeScript)" Jupyter kernel: tslab started with the toolkit on
 * NODE_PATH (so `import * as cf from 'causalfusion'` works from any notebook folder), a larger V8 heap, and a
 * start-up module that picks the tfjs backend once and reports it.
 *
 *   node kernels/install.js [--user | --prefix DIR]      install (default: per-user, ~/.local/share/jupyter)
 *   node kernels/install.js --uninstall [--user | --prefix DIR]
 */
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

const NAME = 'causalfusion';
const ROOT = path.resolve(__dirname, '..');

function parse(argv) {
  const opts = { uninstall: false, prefix: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--uninstall') opts.uninstall = true;
    else if (a === '--user') opts.prefix = null;
    else if (a === '--prefix') {
      if (!argv[i + 1]) throw new Error('--prefix needs a directory');
      opts.prefix = path.resolve(argv[++i]);
    } else if (a === '--help' || a === '-h') opts.help = true;
    else throw new Error(`unknown option "${a}" (use --user, --prefix DIR, --uninstall)`);
  }
  return opts;
}

/** Where Jupyter looks for kernel specs: {prefix}/share/jupyter/kernels or the per-user data dir. */
function kernelsDir(prefix) {
  if (prefix) return path.join(prefix, 'share', 'jupyter', 'kernels');
  const data =
    process.env.JUPYTER_DATA_DIR ||
    path.join(process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share'), 'jupyter');
  return path.join(data, 'kernels');
}

function kernelSpec() {
  const tslab = path.join(ROOT, 'node_modules', 'tslab', 'bin', 'tslab');
  if (!fs.existsSync(tslab))
    throw new Error(`tslab is not installed (${tslab} missing): run "npm install" at the repository root first`);
  const toolkit = path.join(ROOT, 'toolkit', 'dist', 'src', 'index.js');
  if (!fs.existsSync(toolkit))
    throw new Error(`the toolkit is not built (${toolkit} missing): run "npm run build" first`);
  return {
    argv: [
      process.execPath,
      '--max-old-space-size=8192',
      '--require',
      path.join(__dirname, 'startup.js'),
      tslab,
      'kernel',
      '--config-path',
      '{connection_file}',
    ],
    display_name: 'CausalFusion (TypeScript)',
    language: 'typescript',
    env: { NODE_PATH: path.join(ROOT, 'node_modules'), CAUSALFUSION_KERNEL: '1' },
    metadata: { causalfusion_root: ROOT },
  };
}

function main() {
  const opts = parse(process.argv.slice(2));
  if (opts.help) {
    console.log('usage: node kernels/install.js [--uninstall] [--user | --prefix DIR]');
    return;
  }
  const dir = path.join(kernelsDir(opts.prefix), NAME);
  if (opts.uninstall) {
    if (!fs.existsSync(dir)) {
      console.log(`kernel "${NAME}" is not installed in ${path.dirname(dir)}`);
      return;
    }
    fs.rmSync(dir, { recursive: true, force: true });
    console.log(`removed kernel "${NAME}" from ${dir}`);
    return;
  }
  const spec = kernelSpec();
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.kernel.json.${process.pid}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(spec, null, 1));
  fs.renameSync(tmp, path.join(dir, 'kernel.json'));
  for (const icon of ['logo-32x32.png', 'logo-64x64.png']) {
    const src = path.join(__dirname, icon);
    if (fs.existsSync(src)) fs.copyFileSync(src, path.join(dir, icon));
  }
  console.log(`installed kernel "${NAME}" (CausalFusion (TypeScript)) in ${dir}`);
}

try {
  main();
} catch (e) {
  console.error(`kernels/install.js: ${e.message}`);
  process.exit(2);
}
