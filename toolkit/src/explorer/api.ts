/**
 * The explorer page's scripting interface, `window.causalfusion` (what a user calls from the browser console and
 * what the tests drive), its plain-array results, and the options a page address carries. Browser-safe.
 */
import type { PageBackendReport } from '../backend/browser';
import type { EditMode } from '../sample/edit';
import type { ExplorerOptions, ExplorerRun, ModelCard } from './session';

/** A run as plain arrays (what `window.causalfusion` returns; structured-clone and JSON friendly). */
export interface RunSummary {
  images: number[][];
  imageShape: number[];
  labels: number[];
  orders: number[][];
  stepSizes: number[];
  timesteps: number[];
  kept: number[];
  ms: number;
}

/** The page's scripting interface, `window.causalfusion`. */
export interface ExplorerApi {
  /** Settles when the first model is loaded and its first image drawn. */
  ready: Promise<ModelCard>;
  backend(): PageBackendReport | null;
  card(): ModelCard | null;
  /** The shipped models in this folder. */
  models(): string[];
  /** Switches to a shipped model. */
  selectModel(name: string): Promise<ModelCard>;
  /** Loads a checkpoint from its bytes (a .safetensors of this toolkit or an official .pt); on error the page shows it and keeps its model. */
  loadModel(bytes: Uint8Array | ArrayBuffer | number[], name: string): Promise<ModelCard>;
  /** Generates with the given options (the controls follow), animates, and returns the images and the order. */
  generate(opts?: ExplorerOptions): Promise<RunSummary>;
  /** Shows the attention of a generated token of image 0 and returns what is shown. */
  clickToken(token: number): ShownAttention;
  /** What the attention panel shows now, or null. */
  shownAttention(): ShownAttention | null;
  /** Edits a test image (index) or given pixels, keeping the tokens where `keep` is true (or a named region). */
  edit(opts: EditRequest): Promise<RunSummary & { input: number[] }>;
  /** The same seed and options at S = 1, a few steps and S = L (or `arSteps`). */
  compare(opts?: ExplorerOptions, arSteps?: number[]): Promise<RunSummary[]>;
  /** The test images of the current model, [C, H, W] in model range each. */
  testImages(): { images: number[][]; labels: number[] };
  /** Milliseconds from navigation start: backend up, weights loaded, first image drawn. */
  timings(): Record<string, number>;
}

export interface EditRequest extends ExplorerOptions {
  /** A test image's index, or [C, H, W] pixels in model range. Default test image 0. */
  image?: number | number[];
  /** Tokens to keep (true) or a named region to regenerate. Default 'bottom'. */
  keep?: boolean[] | EditMode;
}

/** The attention panel's content: the token, where it was generated, and per layer the head-mean map. */
export interface ShownAttention {
  token: number;
  arStep: number;
  diffusionStep: number;
  t: number;
  /** Per layer: head-mean weight per raster token [grid²], and the share on the condition tokens. */
  layers: { layer: number; mean: number[]; heads: number[][]; cond: number }[];
  rollout: number[];
  /** The query row highlighted in the mask. */
  maskRow: number;
}

/** A run's images, orders and sizes as plain arrays. */
export const runSummary = (r: ExplorerRun): RunSummary => {
  const [N, C, H, W] = r.imageShape;
  return {
    images: Array.from({ length: N }, (_, n) => Array.from(r.images.subarray(n * C * H * W, (n + 1) * C * H * W))),
    imageShape: [...r.imageShape],
    labels: r.labels,
    orders: r.orders,
    stepSizes: r.stepSizes,
    timesteps: r.timesteps,
    kept: r.kept,
    ms: r.ms,
  };
};

/**
 * Options from the page's address (`?label=3&S=4&steps=25&seed=7&order=raster&sizes=law&cfg=2&count=4`), so a
 * link can open the explorer on a given setting; `backend` and `model` are read at start-up.
 */
export function optionsFromQuery(search: string): ExplorerOptions {
  const q = new URLSearchParams(search);
  const num = (k: string) => (q.has(k) ? Number(q.get(k)) : undefined);
  const list = (v: string) => v.split(',').map(Number);
  const o: ExplorerOptions = {};
  if (q.has('label')) o.label = q.get('label') === 'null' ? null : num('label');
  o.cfgScale = num('cfg');
  o.arSteps = num('S');
  o.diffusionSteps = num('steps');
  o.seed = num('seed');
  o.count = num('count');
  const sizes = q.get('sizes');
  if (sizes) o.stepSizes = sizes === 'law' || sizes === 'equal' ? sizes : list(sizes);
  const order = q.get('order');
  if (order) o.order = order === 'random' || order === 'raster' ? order : list(order);
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as ExplorerOptions;
}
