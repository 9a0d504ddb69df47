/**
 * The core is browser-safe (toolkit/src/core.ts): bundled for the browser by esbuild it imports no Node module
 * (fails naming the file that does) and uses no Node global, and the bundle runs in Debian's Chromium with
 * tfjs's cpu backend: a tiny CausalFusion samples two images in two AR steps and takes a training step (the
 * gradients of the whole model), with no page error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { builtinModules } from 'module';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';
import { tempDir } from './helpers';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CORE = path.join(ROOT, 'toolkit', 'src', 'core.ts');
const CHROMIUM =
  process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

/** Packages that only run in Node: native addons, Dawn, server-side DOM and rendering, the kernel, the test browser. */
const NODE_ONLY_PACKAGES = [
  'webgpu',
  'nblas',
  'deasync',
  '@resvg/resvg-js',
  'linkedom',
  'pngjs',
  'tslab',
  'playwright-core',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
];
/**
 * Node modules that third-party code requires only when it finds itself in Node (a runtime check guards each):
 * tfjs-core's Node platform (`util`), seedrandom's entropy source (`crypto`, in a try), and the emscripten glue of
 * tfjs-backend-wasm (its `ENVIRONMENT_IS_NODE` branches; the package's "browser" field maps them to nothing).
 * Nothing of ours.
 */
const GUARDED = [
  { importer: /node_modules\/@tensorflow\/tfjs-core\/dist\/platforms\/platform_node\.js$/, module: 'util' },
  { importer: /node_modules\/seedrandom\/seedrandom\.js$/, module: 'crypto' },
  ...['fs', 'path', 'worker_threads', 'perf_hooks', 'os'].map((module) => ({
    importer: /node_modules\/@tensorflow\/tfjs-backend-wasm\/wasm-out\/tfjs-backend-wasm(-threaded-simd)?\.js$/,
    module,
  })),
];
const BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/** Bundles `entry` for the browser; returns the bundle and every Node import it met (as "module <- importer"). */
async function bundle(entry: string): Promise<{ code: string; nodeImports: string[]; inputs: string[] }> {
  const nodeImports: string[] = [];
  const r = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'iife',
    metafile: true,
    logLevel: 'silent',
    absWorkingDir: ROOT, // metafile paths relative to the repository
    nodePaths: [path.join(ROOT, 'node_modules')], // entries written to a temporary folder find the packages too
    plugins: [
      {
        name: 'node-imports',
        setup(b) {
          b.onResolve({ filter: /.*/ }, (a) => {
            const pkg = NODE_ONLY_PACKAGES.find((p) => a.path === p || a.path.startsWith(`${p}/`));
            if (!BUILTINS.has(a.path) && !pkg) return undefined;
            const importer = path.relative(ROOT, a.importer);
            if (!GUARDED.some((g) => g.module === a.path && g.importer.test(a.importer)))
              nodeImports.push(`${a.path} <- ${importer}`);
            return { path: a.path, external: true };
          });
        },
      },
    ],
  });
  return { code: r.outputFiles[0].text, nodeImports, inputs: Object.keys(r.metafile.inputs) };
}

test('the core bundles for the browser with no Node module and no Node global of ours', async () => {
  const { nodeImports, inputs } = await bundle(CORE);
  assert.deepEqual(nodeImports, [], `Node imports in the browser core:\n${nodeImports.join('\n')}`);
  const ours = inputs.filter((f) => f.startsWith('toolkit/src/'));
  assert.ok(ours.length > 40, `only ${ours.length} toolkit files in the core`);
  for (const f of ['model/causalfusion.ts', 'sample/sampler.ts', 'io/torch-pickle.ts', 'viz/views/attention.ts'])
    assert.ok(ours.includes(`toolkit/src/${f}`), `${f} is not in the core`);
  for (const f of ours) {
    const globals = fs.readFileSync(path.join(ROOT, f), 'utf8').match(/\b(process\.|Buffer\.|__dirname|require\()/g);
    assert.equal(globals, null, `${f} uses Node's ${[...new Set(globals)].join(', ')}`);
  }
});

test('the explorer page bundles with tfjs and its three browser backends and no Node module', async () => {
  const { nodeImports, inputs } = await bundle(path.join(ROOT, 'toolkit', 'src', 'explorer', 'page.ts'));
  assert.deepEqual(nodeImports, [], `Node imports in the explorer page:\n${nodeImports.join('\n')}`);
  for (const pkg of ['tfjs-backend-webgpu', 'tfjs-backend-webgl', 'tfjs-backend-wasm'])
    assert.ok(
      inputs.some((f) => f.includes(`node_modules/@tensorflow/${pkg}/`)),
      `${pkg} is not in the page`,
    );
  for (const f of inputs.filter((x) => x.startsWith('toolkit/src/'))) {
    const globals = fs.readFileSync(path.join(ROOT, f), 'utf8').match(/\b(process\.|Buffer\.|__dirname|require\()/g);
    assert.equal(globals, null, `${f} uses Node's ${[...new Set(globals)].join(', ')}`);
  }
});

test('the bundle fails the check when the core reaches a Node module (the check can fail)', async () => {
  const dir = tempDir('cf-core-');
  const entry = path.join(dir, 'entry.ts');
  fs.writeFileSync(
    entry,
    `export * from ${JSON.stringify(CORE)};\nexport { loadModel } from ${JSON.stringify(path.join(ROOT, 'toolkit', 'src', 'io', 'checkpoint.ts'))};\n`,
  );
  const { nodeImports } = await bundle(entry);
  assert.ok(
    nodeImports.some((i) => /^fs <- toolkit\/src\/io\/checkpoint\.ts$/.test(i)),
    nodeImports.join('\n'),
  );
});

test(
  'the core runs in Chromium: a tiny model samples two images in two AR steps and differentiates its loss',
  { timeout: 120_000 },
  async () => {
    assert.ok(CHROMIUM, "Chromium not found: install Debian's chromium (npm test's setup does) or set CHROMIUM_PATH");
    const dir = tempDir('cf-core-page-');
    const entry = path.join(dir, 'page.ts');
    fs.writeFileSync(
      entry,
      `import '@tensorflow/tfjs-backend-cpu';\nimport '@tensorflow/tfjs-core/dist/register_all_gradients';\nimport * as cf from ${JSON.stringify(CORE)};\n(window as unknown as { cf: typeof cf }).cf = cf;\n`,
    );
    const { code, nodeImports } = await bundle(entry);
    assert.deepEqual(nodeImports, []);
    fs.writeFileSync(path.join(dir, 'core.js'), code);
    fs.writeFileSync(
      path.join(dir, 'index.html'),
      '<!DOCTYPE html><html><body><script src="core.js"></script></body></html>',
    );
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
      await page.goto(`file://${path.join(dir, 'index.html')}`);
      const out = await page.evaluate(async () => {
        const cf = (window as unknown as { cf: typeof import('../src/core') }).cf;
        await cf.tf.setBackend('cpu');
        const model = new cf.CausalDiffusionModel(cf.makeConfig('tiny'), { seed: 0 });
        const r = cf.sampleImages(model, { labels: [1, 2], arSteps: 2, diffusionSteps: '3', seed: 0 });
        return {
          backend: cf.tf.getBackend(),
          n: r.images.length,
          finite: r.images.every(Number.isFinite),
          steps: r.stepSizes,
        };
      });
      assert.deepEqual(problems, []);
      assert.deepEqual(out, { backend: 'cpu', n: 2 * 4 * 4 * 4, finite: true, steps: out.steps });
      assert.equal(
        out.steps.reduce((a, b) => a + b, 0),
        16,
      );
    } finally {
      await browser.close();
    }
  },
);
