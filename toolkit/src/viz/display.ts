/**
 * Showing figures in a notebook. In the CausalFusion (tslab) kernel, `display(svg)` sends one output with two
 * representations of the same SVG: `text/html` (drawn inline by JupyterLab, Notebook, VS Code and HTML exports,
 * which sanitise `image/svg+xml` into bare text) and `image/svg+xml` (what static viewers such as GitHub show).
 * Rasters go out as PNG. `newDisplay()` gives a handle that redraws one output in place (live training charts).
 * Outside a kernel nothing is shown and `display` returns false, so the same code runs in plain Node.
 */
import { encodePng, Raster } from '../io/images';

type Bundle = { data: Record<string, string>; metadata: Record<string, unknown>; transient: { display_id?: string } };
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

function bundleOf(fig: string | Raster): Record<string, string> {
  if (typeof fig === 'string') {
    if (!fig.trimStart().startsWith('<svg')) throw new Error('display expects an SVG document string or a Raster');
    return { 'text/html': fig, 'image/svg+xml': fig };
  }
  return { 'image/png': encodePng(fig).toString('base64') };
}

/** Shows an SVG string or a raster as a new output; false when not inside a notebook kernel. */
export function display(fig: string | Raster): boolean {
  const w = writer();
  if (!w) return false;
  w({ data: bundleOf(fig), metadata: {}, transient: {} }, false);
  return true;
}

let displays = 0;

/** A single output that each `show` replaces (live charts and sample grids during training). */
export function newDisplay(): { show(fig: string | Raster): boolean } {
  const id = `causalfusion-${process.pid}-${++displays}`;
  let shown = false;
  return {
    show(fig) {
      const w = writer();
      if (!w) return false;
      w({ data: bundleOf(fig), metadata: {}, transient: { display_id: id } }, shown);
      shown = true;
      return true;
    },
  };
}
