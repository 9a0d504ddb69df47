/**
 * The explorer as a notebook output (`cf.explorer(model)`): the whole page, self-contained (bundle, wasm, float16
 * weights inline), in an iframe, live in classic Notebook and JupyterLab alike; beside it a static preview (the
 * same seed at S = 1, a few AR steps and S = L, drawn in Node), which is what a committed notebook keeps
 * (notebooks/slim.js turns figures into small PNGs and drops the page). `.save(dir)` writes the static folder.
 */
import { CausalDiffusionModel } from '../model/causalfusion';
import { loadModel } from '../io/checkpoint';
import { writeFileAtomic } from '../util/atomic-write';
import { utf8 } from '../util/bytes';
import { escapeXml } from '../util/markup';
import { sampleImages } from '../sample/sampler';
import { imageGridChart } from '../viz/charts-diffusion';
import { MimeBundle } from '../viz/chart';
import { svgImageHtml } from '../viz/svg-compose';
import { checkpointStem } from './session';
import {
  buildExplorer,
  ExplorerBuild,
  ExplorerFolder,
  explorerHtml,
  ExplorerModelSource,
  writeExplorerFolder,
} from './folder';

export interface ExplorerOutputOptions {
  /** The page title. */
  title?: string;
  /** Height of the notebook's frame in px. Default 1150. */
  height?: number;
  /** Draw the preview from this many denoising steps (0: no preview samples). Default 25. */
  previewSteps?: number;
  /** Names of the models in the page's list (default: from their checkpoint files). */
  names?: readonly string[];
}

/** "mnist-small" for a model loaded from ".../mnist-small.safetensors" (or shipped as mnist-small). */
const modelName = (m: CausalDiffusionModel): string => checkpointStem(m.source.split(' (')[0]) || 'model';

/** A live explorer: show it in a notebook (it is displayable), save it as a folder or a single page. */
export class ExplorerOutput {
  constructor(
    readonly build: ExplorerBuild,
    private readonly preview: string,
    private readonly height: number,
  ) {}

  /** The self-contained page (one HTML file, no other file needed). */
  html(): string {
    return explorerHtml(this.build, true);
  }

  /** Writes the static folder (`causalfusion explorer` writes the same). */
  save(dir: string): ExplorerFolder {
    return writeExplorerFolder(dir, this.build);
  }

  /** Writes the self-contained page to `file`, atomically. */
  savePage(file: string): string {
    writeFileAtomic(file, utf8(this.html()));
    return file;
  }

  mimeBundle(): MimeBundle {
    const models = this.build.manifest.models.map((m) => m.name).join(', ');
    return {
      // Untrusted, Jupyter strips the frame and its handler and shows the preview; trusted, the frame replaces it.
      'text/html':
        `<div class="cf-explorer-output">${svgImageHtml(this.preview, 'CausalFusion explorer (static preview)')}` +
        `<iframe class="cf-explorer" title="CausalFusion explorer" style="width:100%;height:${this.height}px;border:1px solid #ddd;border-radius:4px" ` +
        `onload="this.previousElementSibling.style.display='none'" srcdoc="${escapeXml(this.html())}"></iframe></div>`,
      'image/svg+xml': this.preview,
      'text/plain': `[CausalFusion explorer] ${models}: live when this output is shown by Jupyter; .save(dir) writes it as a static folder`,
    };
  }

  [Symbol.for('Jupyter.display')](): MimeBundle {
    return this.mimeBundle();
  }
}

/** The preview: one seed at S = 1, a few steps and S = L, for the first classes (the first channel for colour). */
function previewSvg(model: CausalDiffusionModel, name: string, steps: number): string {
  const c = model.config;
  const L = model.numPatches;
  const S = [1, Math.min(4, L), L];
  const classes = [0, 1, 2].filter((k) => k < c.numClasses);
  const side = c.inputSize;
  const cells: Float32Array[] = [];
  for (const y of classes)
    for (const s of S) {
      const r = steps > 0 ? sampleImages(model, { labels: [y], arSteps: s, diffusionSteps: steps, seed: 0 }) : null;
      cells.push(r ? r.images.slice(0, side * side) : new Float32Array(side * side));
    }
  return imageGridChart(
    cells,
    side,
    classes.map((y) => `class ${y}`),
    S.map((s) => `S = ${s}`),
    {
      title: `CausalFusion explorer: ${name}. The live page runs when this cell runs in Jupyter.`,
      rowTitle: 'class',
      colTitle: 'AR steps, same seed',
      cellPx: 84,
    },
  ).svg();
}

/**
 * The explorer of one model or several (models in memory, checkpoint files or shipped names such as
 * 'mnist-small'), for a notebook output or to save.
 */
export function explorer(
  models: CausalDiffusionModel | string | readonly (CausalDiffusionModel | string)[],
  opts: ExplorerOutputOptions = {},
): ExplorerOutput {
  const list = Array.isArray(models) ? models : [models as CausalDiffusionModel | string];
  const sources: ExplorerModelSource[] = list.map((m, i) =>
    typeof m === 'string' ? { checkpoint: m } : { model: m, name: opts.names?.[i] ?? modelName(m) },
  );
  const build = buildExplorer(sources, opts.title);
  const first = list[0];
  const model = typeof first === 'string' ? loadModel(first) : first;
  try {
    const preview = previewSvg(model, build.manifest.models[0].name, opts.previewSteps ?? 25);
    return new ExplorerOutput(build, preview, opts.height ?? 1150);
  } finally {
    if (model !== first) model.dispose();
  }
}
