/**
 * Showing figures in a notebook. A `Chart` goes out as one output carrying its interactive HTML (static SVG
 * inside, replaced by the live chart when scripts run), the SVG itself and a text line; before the first
 * chart of each library in a kernel session, one output loads that library (`vizSetup`), so libraries are
 * never re-sent with every chart. After reloading the page of a running kernel, call `vizSetup(undefined, true)`.
 * In the CausalFusion (tslab) kernel, `display(svg)` sends one output with two
 * representations of the same SVG: `text/html` (an <img> of it, drawn by JupyterLab, Notebook, VS Code and HTML
 * exports, trusted or not) and `image/svg+xml` (what static viewers such as GitHub show).
 * Rasters go out as PNG. `newDisplay()` gives a handle that redraws one output in place (live training charts).
 * Outside a kernel nothing is shown (`inNotebook()` says which), so the same code runs in plain Node.
 */
import { encodePng, Raster } from '../io/images';
import { Chart, MimeBundle } from './chart';
import { VIZ_LIBRARIES, VizLibrary, vizSetupHtml } from './runtime';
import { svgImageHtml } from './svg-compose';

type Bundle = { data: MimeBundle; metadata: Record<string, unknown>; transient: { display_id?: string } };
type Writer = (bundle: Bundle, update: boolean) => void;

/** tslab's writer of display messages for the cell being executed, when running inside tslab. */
function writer(): Writer | null {
  try {
    const jupyter = require('tslab/dist/jupyter') as { lastWriteDisplayData?: Writer | null };
    return jupyter.lastWriteDisplayData ?? null;
  } catch {
    return null;
  }
}

/** Anything `display` shows. */
export type Figure = string | Raster | Chart;

const sent = new Set<VizLibrary>();

/**
 * Sends chart libraries to the page: each at most once per kernel session unless `force` (after reloading
 * the page of a running kernel: `vizSetup(undefined, true)`). `display` calls it before a chart whose library
 * is not there yet. Returns false outside a kernel.
 */
export function vizSetup(
  libs: readonly VizLibrary[] = Object.keys(VIZ_LIBRARIES) as VizLibrary[],
  force = false,
): boolean {
  const w = writer();
  if (!w) return false;
  // d3 and the runtime come with any library
  const todo = [...new Set<VizLibrary>(['d3', ...libs])].filter((l) => force || !sent.has(l));
  if (!todo.length) return true;
  w(
    {
      data: { 'text/html': vizSetupHtml(todo), 'text/plain': `CausalFusion Lab chart libraries: ${todo.join(', ')}` },
      metadata: {},
      transient: {},
    },
    false,
  );
  for (const l of todo) sent.add(l);
  return true;
}

function bundleOf(fig: Figure): MimeBundle {
  if (fig instanceof Chart) {
    vizSetup([fig.library]);
    return fig.mimeBundle();
  }
  if (typeof fig === 'string') {
    if (!fig.trimStart().startsWith('<svg')) throw new Error('display expects an SVG document string or a Raster');
    return { 'text/html': svgImageHtml(fig, 'SVG figure'), 'image/svg+xml': fig, 'text/plain': '[SVG figure]' };
  }
  return { 'image/png': encodePng(fig).toString('base64') };
}

/** Whether this code runs inside a notebook kernel (where `display` shows something). */
export function inNotebook(): boolean {
  return writer() !== null;
}

/**
 * Shows a chart, an SVG string or a raster as a new output; does nothing outside a notebook kernel. Returns
 * nothing, so a `display(...)` at the end of a cell prints no stray value.
 */
export function display(fig: Figure): void {
  writer()?.({ data: bundleOf(fig), metadata: {}, transient: {} }, false);
}

let displays = 0;

/** A single output that each `show` replaces (live charts and sample grids during training). */
export function newDisplay(): { show(fig: Figure): void } {
  const id = `causalfusion-${process.pid}-${++displays}`;
  let shown = false;
  return {
    show(fig) {
      const w = writer();
      if (!w) return;
      w({ data: bundleOf(fig), metadata: {}, transient: { display_id: id } }, shown);
      shown = true;
    },
  };
}
