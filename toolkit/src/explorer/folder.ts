/**
 * Writes the explorer as a static folder that works from `file://` and from any static host, with no network
 * (`causalfusion explorer --checkpoint FILE --out DIR`), or as one self-contained HTML page (the notebook's
 * `cf.explorer(model)`). The folder:
 *   index.html          the page (manifest inline)
 *   explorer.js         the bundle: toolkit core, tfjs with its WebGPU, WebGL and wasm backends, the d3 views
 *   wasm.js             tfjs's wasm binaries as base64 (loaded only when the wasm backend is used)
 *   models/NAME/i.js    each model's float16 weights in 256 KiB chunks (one progress-bar step each)
 * and a few real test images of each model's dataset inside the manifest, for editing.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CausalDiffusionModel } from '../model/causalfusion';
import { CausalFusionConfig } from '../model/config';
import { readCheckpoint } from '../io/checkpoint';
import { pickWeights, serializeCheckpoint } from '../io/checkpoint-format';
import { existingAsset } from '../data/assets';
import { DatasetName, ImageDataset, loadDataset } from '../data/datasets';
import { toBase64 } from '../util/bytes';
import { chunkScript, CHUNK_BYTES, ExplorerManifest, ManifestImages } from './manifest';

/** toolkit/dist/explorer/explorer.js, written by `npm run build` (this file compiles to toolkit/dist/src/explorer/). */
export const EXPLORER_BUNDLE = path.resolve(__dirname, '..', '..', 'explorer', 'explorer.js');

/** The tfjs wasm binaries the page may need (threads need cross-origin isolation, which file:// never has). */
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm'];

/** A model to put in the explorer: a checkpoint (path or shipped name) or a model in memory. */
export interface ExplorerModelSource {
  /** Shown in the page's model list. Default: the file's base name, or 'model'. */
  name?: string;
  checkpoint?: string;
  model?: CausalDiffusionModel;
  /** The dataset of its test images; default from the checkpoint's metadata, else MNIST when the shape fits. */
  dataset?: DatasetName;
}

export interface ExplorerBuild {
  manifest: ExplorerManifest;
  /** Float16 weights-only checkpoint bytes per model name. */
  weights: Map<string, Uint8Array>;
}

const TEST_IMAGES = 10;

/** One test image of each of the first classes of the dataset's test split, if its shape is the model's. */
function testImages(config: CausalFusionConfig, dataset: DatasetName | undefined): ManifestImages | undefined {
  const name = dataset ?? (config.latentChannels === 1 && config.inputSize === 28 ? 'mnist' : undefined);
  if (!name) return undefined;
  let ds: ImageDataset;
  try {
    ds = loadDataset(name, 'test');
  } catch {
    return undefined; // the dataset is not installed here: editing uses generated images
  }
  if (ds.channels !== config.latentChannels || ds.height !== config.inputSize || ds.width !== config.inputSize)
    return undefined;
  const labels = Array.from(ds.labels);
  const picks = Array.from({ length: Math.min(TEST_IMAGES, config.numClasses) }, (_, c) => labels.indexOf(c)).filter(
    (j) => j >= 0,
  );
  const size = ds.channels * ds.height * ds.width;
  const pixels = new Uint8Array(picks.length * size);
  picks.forEach((p, k) => pixels.set(ds.images.subarray(p * size, (p + 1) * size), k * size));
  return {
    dataset: ds.name,
    shape: [picks.length, ds.channels, ds.height, ds.width],
    pixels: toBase64(pixels),
    labels: picks.map((p) => ds.labels[p]),
    classNames: ds.classNames,
  };
}

const datasetOfMeta = (meta: Record<string, unknown>): DatasetName | undefined => {
  const d = meta.dataset;
  const name = typeof d === 'string' ? d : typeof d === 'object' && d ? (d as { name?: string }).name : undefined;
  return name === undefined
    ? undefined
    : /fashion/i.test(name)
      ? 'fashion-mnist'
      : /mnist/i.test(name)
        ? 'mnist'
        : undefined;
};

/** Weights (float16), manifest and test images of the given models. */
export function buildExplorer(sources: readonly ExplorerModelSource[], title = 'CausalFusion explorer'): ExplorerBuild {
  if (!sources.length) throw new Error('the explorer needs at least one model');
  const weights = new Map<string, Uint8Array>();
  const manifest: ExplorerManifest = { title, models: [], images: {}, version: '1' };
  for (const src of sources) {
    let config: CausalFusionConfig;
    let bytes: Uint8Array;
    let dataset = src.dataset;
    let name = src.name;
    if (src.model) {
      config = src.model.config;
      bytes = serializeCheckpoint({ config, model: src.model.stateDict(), meta: { source: src.model.source } }, 'F16');
      name ??= 'model';
    } else if (src.checkpoint) {
      const file = existingAsset(src.checkpoint, ['mnist-small', 'mnist-base'], 'checkpoint');
      const ck = readCheckpoint(file);
      config = ck.config;
      dataset ??= datasetOfMeta(ck.meta);
      const meta = { source: path.basename(file), dataset: dataset ?? null };
      bytes = serializeCheckpoint({ config, model: pickWeights(ck, 'ema', file), meta }, 'F16');
      name ??= src.checkpoint === file ? path.basename(file).replace(/\.[^.]+$/, '') : src.checkpoint;
    } else throw new Error('each explorer model needs a checkpoint or a model');
    if (weights.has(name)) throw new Error(`two explorer models are named "${name}"`);
    weights.set(name, bytes);
    manifest.models.push({
      name,
      file: `${name}.safetensors`,
      bytes: bytes.length,
      chunks: Math.ceil(bytes.length / CHUNK_BYTES),
    });
    const images = testImages(config, dataset);
    if (images) manifest.images[name] = images;
  }
  return { manifest, weights };
}

/** The manifest as the script that sets the page's global (manifest.js, or inline in a single page). */
const manifestScript = (b: ExplorerBuild) => `window.CAUSALFUSION_EXPLORER=${JSON.stringify(b.manifest)};`;

/** `<script>` that is safe to inline (no closing tag inside). */
const inlineScript = (code: string) => `<script>${code.replace(/<\/script/gi, '<\\/script')}</script>`;

/** The page; `inline` puts bundle, wasm and weights inside it (one self-contained file), else it loads them as scripts. */
export function explorerHtml(b: ExplorerBuild, inline: boolean): string {
  const head =
    `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${b.manifest.title.replace(/</g, '&lt;')}</title></head><body>\n`;
  if (!inline)
    return `${head}<script src="manifest.js"></script>\n<script src="explorer.js"></script>\n</body></html>\n`;
  const weights = Object.fromEntries([...b.weights].map(([name, bytes]) => [name, chunks(bytes)]));
  return (
    head +
    inlineScript(manifestScript(b)) +
    inlineScript(`window.CAUSALFUSION_WASM=${JSON.stringify(wasmFiles())};`) +
    inlineScript(`window.CAUSALFUSION_INLINE_WEIGHTS=${JSON.stringify(weights)};`) +
    inlineScript(bundle()) +
    `\n</body></html>\n`
  );
}

function chunks(bytes: Uint8Array): string[] {
  return Array.from({ length: Math.ceil(bytes.length / CHUNK_BYTES) }, (_, i) =>
    toBase64(bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES)),
  );
}

function bundle(): string {
  if (!fs.existsSync(EXPLORER_BUNDLE))
    throw new Error(`the explorer bundle is missing (${EXPLORER_BUNDLE}): run \`npm run build\``);
  return fs.readFileSync(EXPLORER_BUNDLE, 'utf8');
}

function wasmFiles(): Record<string, string> {
  const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  return Object.fromEntries(WASM_FILES.map((f) => [f, toBase64(fs.readFileSync(path.join(dir, 'dist', f)))]));
}

/** What `writeExplorerFolder` wrote. */
export interface ExplorerFolder {
  dir: string;
  files: string[];
  /** Bytes of every file, and of what a first visit loads on WebGPU / WebGL (the page, the bundle, the first model). */
  bytes: number;
  firstLoadBytes: number;
}

/**
 * Writes the explorer folder `out`. An existing folder is replaced only if it is an explorer folder (it has
 * manifest.js) or empty: anything else in it is the user's and is never overwritten. The folder is written
 * beside `out` and renamed into place, so a failure leaves the previous one whole.
 */
export function writeExplorerFolder(out: string, b: ExplorerBuild): ExplorerFolder {
  const dir = path.resolve(out);
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory()) throw new Error(`${out} exists and is not a folder`);
    const entries = fs.readdirSync(dir);
    if (entries.length && !entries.includes('manifest.js'))
      throw new Error(`${out} is not empty and is not an explorer folder (no manifest.js): choose another --out`);
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const files: Record<string, string | Uint8Array> = {
    'index.html': explorerHtml(b, false),
    'manifest.js': `${manifestScript(b)}\n`,
    'explorer.js': bundle(),
    'wasm.js': `window.CAUSALFUSION_WASM=${JSON.stringify(wasmFiles())};\n`,
  };
  for (const [name, bytes] of b.weights)
    chunks(bytes).forEach((c, i) => (files[path.join('models', name, `${i}.js`)] = chunkScript(name, i, c)));
  let bytes = 0;
  for (const [rel, body] of Object.entries(files)) {
    const f = path.join(tmp, rel);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, body);
    bytes += fs.statSync(f).size;
  }
  const old = `${dir}.old-${process.pid}`;
  if (fs.existsSync(dir)) fs.renameSync(dir, old);
  fs.renameSync(tmp, dir);
  fs.rmSync(old, { recursive: true, force: true });
  const first = b.manifest.models[0].name;
  const firstLoadBytes = Object.keys(files)
    .filter(
      (f) => ['index.html', 'manifest.js', 'explorer.js'].includes(f) || f.startsWith(path.join('models', first, '')),
    )
    .reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
  return { dir, files: Object.keys(files).sort(), bytes, firstLoadBytes };
}
