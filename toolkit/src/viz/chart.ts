/**
 * One chart object for every library: a JSON spec that the browser runtime draws interactively (vega-lite,
 * plotly or one of our d3 views) plus a static SVG of the same content, so the chart shows everywhere:
 * interactive in Notebook / JupyterLab / VS Code / HTML exports, static on GitHub or when scripts are blocked,
 * and as .svg / .png / .html files from plain Node.
 *
 * The HTML of an output holds the static SVG, the spec as inert JSON and a two-line loader; the libraries are
 * sent once per page by `vizSetup()` (see runtime.ts), never with every chart.
 */
import * as fs from 'fs';
import * as path from 'path';
import { vizSetupHtml } from './runtime';
import { renderSvg } from './static-svg';
import { escapeXml, svgImageHtml } from './svg-compose';
import { D3_VIEWS, D3Renderer } from './views';
import { writeFileAtomic } from '../util/atomic-write';
import { encodePalettePng } from '../io/png';
import { vizSetup } from './notebook-io';

/** Which renderer of the browser runtime draws the spec. */
export type ChartRenderer = 'vega-lite' | 'plotly' | D3Renderer;

/** The library each renderer uses. */
export const RENDERER_LIBRARY: Record<ChartRenderer, 'vega-lite' | 'plotly' | 'd3'> = {
  'vega-lite': 'vega-lite',
  plotly: 'plotly',
  'd3-mask': 'd3',
  'd3-attention': 'd3',
  'd3-order': 'd3',
  'd3-frames': 'd3',
};

/**
 * The vega-lite type that JupyterLab's built-in renderer (@jupyterlab/vega5-extension 4.x: vega 5, vega-lite 5)
 * and VS Code accept; our specs use no vega-lite 6 feature, so they go out with the v5 schema.
 */
export const VEGALITE_MIME = 'application/vnd.vegalite.v5+json';
const VEGALITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';
/** plotly.py's type ({data, layout}), drawn by JupyterLab's and VS Code's plotly renderers. */
export const PLOTLY_MIME = 'application/vnd.plotly.v1+json';

/** A notebook output's data: text types as strings, JSON types as objects. */
export type MimeBundle = Record<string, string | Record<string, unknown>>;

let counter = 0;

/** JSON that is safe inside a <script> element. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

export class Chart {
  private svgCache: string | null = null;

  constructor(
    readonly renderer: ChartRenderer,
    readonly title: string,
    /** What the renderer draws: a vega-lite spec, plotly {data, layout}, or the d3 view's data. */
    readonly spec: Record<string, unknown>,
    private readonly staticSvg: () => string,
  ) {}

  get library(): 'vega-lite' | 'plotly' | 'd3' {
    return RENDERER_LIBRARY[this.renderer];
  }

  /** The static rendering (what GitHub and other static viewers show). */
  svg(): string {
    return (this.svgCache ??= this.staticSvg());
  }

  /** The static rendering as PNG (resvg), `scale` times the SVG size. */
  png(scale = 2): Uint8Array {
    return svgToPng(this.svg(), scale);
  }

  /**
   * The output's HTML: the static picture first (kept when scripts do not run), the spec, and a loader that hands
   * both to the runtime, which replaces the static picture by the interactive chart.
   */
  html(): string {
    const id = `cf-chart-${process.pid}-${Date.now().toString(36)}-${++counter}`;
    return (
      `<div id="${id}" class="cf-chart" data-renderer="${this.renderer}">` +
      `<div class="cf-static">${svgImageHtml(this.svg(), this.title)}</div><div class="cf-live"></div>` +
      `<script type="application/json" class="cf-spec">${scriptJson({ renderer: this.renderer, title: this.title, spec: this.spec })}</script>` +
      // without the runtime yet, the setup output that brings it draws this chart
      `<script>window.causalfusionViz&&window.causalfusionViz.mount("${id}")</script>` +
      `</div>`
    );
  }

  /** A standalone offline page with the libraries inlined. */
  page(): string {
    return standalonePage(this.title, [this]);
  }

  /** Writes .html (interactive, offline), .svg or .png (static), chosen by the file's extension; atomically. */
  save(file: string): string {
    const ext = path.extname(file).toLowerCase();
    const body = ext === '.html' ? this.page() : ext === '.svg' ? this.svg() : ext === '.png' ? this.png() : null;
    if (body === null) throw new Error(`cannot save a chart as "${ext || file}": use .html, .svg or .png`);
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    writeFileAtomic(file, typeof body === 'string' ? Buffer.from(body) : body);
    return file;
  }

  /**
   * The MIME bundle of a notebook output: our HTML (interactive; classic Notebook and JupyterLab pick it), the
   * static SVG, and for vega-lite and plotly charts the ecosystem's own type, which VS Code and nteract draw
   * natively without our scripts.
   */
  /**
   * What a notebook shows when a chart ends a cell or goes through `display` (Jupyter's display protocol, as in
   * Deno's kernel): its library first, once per kernel session, then `mimeBundle`.
   */
  [Symbol.for('Jupyter.display')](): MimeBundle {
    vizSetup([this.library]);
    return this.mimeBundle();
  }

  mimeBundle(): MimeBundle {
    const bundle: MimeBundle = {
      'text/html': this.html(),
      'image/svg+xml': this.svg(),
      'text/plain': `[${this.library} chart] ${this.title}`,
    };
    if (this.renderer === 'vega-lite') bundle[VEGALITE_MIME] = { ...this.spec, $schema: VEGALITE_SCHEMA };
    if (this.renderer === 'plotly') bundle[PLOTLY_MIME] = this.spec;
    return bundle;
  }
}

/**
 * A chart drawn by one of the d3 views (`views/`): interactively by the browser runtime, and statically by the
 * same drawing code run in Node.
 */
export function d3Chart<R extends D3Renderer>(
  renderer: R,
  title: string,
  spec: Parameters<(typeof D3_VIEWS)[R]>[1],
): Chart {
  const view = D3_VIEWS[renderer] as (el: HTMLElement, s: typeof spec, interactive: boolean) => void;
  return new Chart(renderer, title, spec as unknown as Record<string, unknown>, () => renderSvg(view, spec));
}

/** An offline HTML page with several charts. */
export function standalonePage(title: string, charts: readonly Chart[]): string {
  // charts first, setup last: the setup draws everything already on the page
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeXml(title)}</title></head><body style="font-family:sans-serif">${charts.map((c) => c.html()).join('\n')}${vizSetupHtml(['d3', ...charts.map((c) => c.library)])}</body></html>`;
}

/**
 * Rasterises an SVG document with resvg (system fonts), `scale` times its size; with `palette`, stored in at most
 * 256 colours (`encodePalettePng`: a third to a quarter of the bytes, for committed notebooks).
 */
export function svgToPng(svg: string, scale = 2, opts: { palette?: boolean } = {}): Uint8Array {
  // resvg is a native module: load it only when a PNG is asked for
  const { Resvg } = require('@resvg/resvg-js') as typeof import('@resvg/resvg-js');
  const image = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  }).render();
  if (!opts.palette) return image.asPng();
  return encodePalettePng({ width: image.width, height: image.height, data: new Uint8Array(image.pixels) });
}
