/**
 * One chart object for every library: a JSON spec that the browser runtime draws interactively (vega-lite,
 * plotly or one of our d3 views) plus a static SVG of the same content, so the chart shows everywhere:
 * interactive in Notebook / JupyterLab / VS Code / HTML exports, static on GitHub or when scripts are blocked,
 * and as .svg / .png / .html files from plain Node.
 *
 * The HTML of an output holds the static SVG, the spec as inert JSON and a two-line loader; the libraries are
 * sent once per page by `vizSetup()` (see runtime.ts), never with every chart.
 *
 * This file is browser-safe: what needs Node (the static SVG of a view in a server-side DOM, vega's own SVG in a
 * child process, PNG through resvg, files, the notebook's libraries) is a `ChartHost`, installed by
 * viz/node-host.ts (loaded with the package in Node); a page may install its own.
 */
import { svgImageHtml } from './svg-compose';
import { D3_VIEWS, D3Renderer } from './views';
import type { View } from './views/common';

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

/** What the core leaves to its environment (Node: viz/node-host.ts). */
export interface ChartHost {
  /** The SVG document a d3 view draws (non-interactive) for `spec`. */
  viewSvg<S>(view: View<S>, spec: S): string;
  /** vega's own static SVG of a vega-lite spec. */
  vegaLiteSvg(spec: Record<string, unknown>): string;
  /** An SVG document as PNG, `scale` times its size (`palette`: at most 256 colours). */
  png(svg: string, scale: number, opts?: { palette?: boolean }): Uint8Array;
  /** An offline HTML page with the charts and their libraries inlined. */
  page(title: string, charts: readonly Chart[]): string;
  /** Writes a file atomically, creating its folder. */
  write(file: string, body: string | Uint8Array): void;
  /** Before a chart goes to a notebook: its library, once per kernel session. */
  beforeDisplay(chart: Chart): void;
}

let host: ChartHost | null = null;

/** Installs what the environment does for charts (Node: viz/node-host.ts does it when loaded). */
export function setChartHost(h: ChartHost): void {
  host = h;
}

/** The host, or an error naming what needed it. */
function chartHost(what: string): ChartHost {
  if (!host) throw new Error(`${what} needs Node (load "causalfusion", not only the browser core)`);
  return host;
}

/** The SVG document a d3 view draws for `spec` (static pictures composed of several views). */
export function staticViewSvg<S>(view: View<S>, spec: S): string {
  return chartHost('a static chart').viewSvg(view, spec);
}

/** vega's static SVG of a vega-lite spec. */
export function staticVegaLiteSvg(spec: Record<string, unknown>): string {
  return chartHost('a static vega-lite chart').vegaLiteSvg(spec);
}

/** An offline HTML page with several charts. */
export function standalonePage(title: string, charts: readonly Chart[]): string {
  return chartHost('a chart page').page(title, charts);
}

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
    return chartHost('a chart PNG').png(this.svg(), scale);
  }

  /**
   * The output's HTML: the static picture first (kept when scripts do not run), the spec, and a loader that hands
   * both to the runtime, which replaces the static picture by the interactive chart.
   */
  html(): string {
    const id = `cf-chart-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}-${++counter}`;
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
    const ext = (/\.[^./\\]*$/.exec(file)?.[0] ?? '').toLowerCase();
    const body = ext === '.html' ? this.page() : ext === '.svg' ? this.svg() : ext === '.png' ? this.png() : null;
    if (body === null) throw new Error(`cannot save a chart as "${ext || file}": use .html, .svg or .png`);
    chartHost('saving a chart').write(file, body);
    return file;
  }

  /**
   * What a notebook shows when a chart ends a cell or goes through `display` (Jupyter's display protocol, as in
   * Deno's kernel): its library first, once per kernel session, then `mimeBundle`.
   */
  [Symbol.for('Jupyter.display')](): MimeBundle {
    host?.beforeDisplay(this);
    return this.mimeBundle();
  }

  /**
   * The MIME bundle of a notebook output: our HTML (interactive; classic Notebook and JupyterLab pick it), the
   * static SVG, and for vega-lite and plotly charts the ecosystem's own type, which VS Code and nteract draw
   * natively without our scripts.
   */
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
  return new Chart(renderer, title, spec as unknown as Record<string, unknown>, () => staticViewSvg(view, spec));
}
