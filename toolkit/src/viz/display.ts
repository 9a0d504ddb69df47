/**
 * Showing things in a notebook. `display(value)` shows any value as its MIME bundle (`mimeBundleOf`: charts as
 * their interactive chart, models as their card, recorders, trainers and sample batches as themselves, any
 * object with a `Symbol.for('Jupyter.display')` method as what it returns); the CausalFusion kernel shows the
 * last expression of a cell the same way. A `Chart` goes out as one output carrying its interactive HTML (static
 * SVG inside, replaced by the live chart when scripts run), the SVG itself and a text line; before the first
 * chart of each library in a kernel session, one output loads that library (`vizSetup`), so libraries are
 * never re-sent with every chart. After reloading the page of a running kernel, call `vizSetup(undefined, true)`.
 * `display(svg)` sends one output with two representations of the same SVG: `text/html` (an <img> of it, drawn
 * by JupyterLab, Notebook, VS Code and HTML exports, trusted or not) and `image/svg+xml` (what static viewers such
 * as GitHub show). Rasters go out as PNG. `newDisplay()` gives a handle that redraws one output in place (live
 * training charts); `clearOutput(wait)` clears the cell's output. Outside a kernel nothing is shown (`inNotebook()`
 * says which), so the same code runs in plain Node.
 */
import { MimeBundle } from './chart';
import { mimeBundleOf } from './mime';
import { writer } from './notebook-io';
import { svgImageHtml } from './svg-compose';

export { clearOutput, vizSetup } from './notebook-io';

function bundleOf(value: unknown): MimeBundle {
  if (typeof value === 'string' && value.trimStart().startsWith('<svg'))
    return { 'text/html': svgImageHtml(value, 'SVG figure'), 'image/svg+xml': value, 'text/plain': '[SVG figure]' };
  return mimeBundleOf(value);
}

/** Whether this code runs inside a notebook kernel (where `display` shows something). */
export function inNotebook(): boolean {
  return writer() !== null;
}

/**
 * Shows a value (a chart, a model, an SVG string, a raster, anything) as a new output; does nothing outside a
 * notebook kernel. Returns nothing, so a `display(...)` at the end of a cell prints no stray value.
 */
export function display(fig: unknown): void {
  writer()?.({ data: bundleOf(fig), metadata: {}, transient: {} }, false);
}

let displays = 0;

/** A single output that each `show` replaces (live charts and sample grids during training). */
export function newDisplay(): { show(fig: unknown): void } {
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
