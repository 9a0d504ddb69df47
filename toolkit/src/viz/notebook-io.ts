/**
 * The kernel's side of showing things: tslab's writer of display messages for the cell being executed, the
 * IOPub publisher the CausalFusion kernel's start-up module adds (for `clear_output`), and the chart libraries
 * sent once per kernel session. Outside a kernel every function here does nothing and says so.
 */
import type { MimeBundle } from './chart';
import { VIZ_LIBRARIES, VizLibrary, vizSetupHtml } from './runtime';

type Bundle = { data: MimeBundle; metadata: Record<string, unknown>; transient: { display_id?: string } };
export type Writer = (bundle: Bundle, update: boolean) => void;

/** tslab's writer of display messages for the cell being executed, when running inside tslab. */
export function writer(): Writer | null {
  try {
    const jupyter = require('tslab/dist/jupyter') as { lastWriteDisplayData?: Writer | null };
    return jupyter.lastWriteDisplayData ?? null;
  } catch {
    return null;
  }
}

/** The start-up module's publisher of IOPub messages (kernels/startup.js), in the CausalFusion kernel only. */
type Publisher = (msgType: string, content: Record<string, unknown>) => void;
const KERNEL = Symbol.for('causalfusion.kernel');

/**
 * Clears the cell's output, now or (`wait`) when the next output arrives, so a redraw does not flicker:
 * IPython's `clear_output(wait=True)`. Returns false where no kernel can do it (plain Node, another kernel).
 */
export function clearOutput(wait = false): boolean {
  const publish = (globalThis as { [KERNEL]?: { publish?: Publisher } })[KERNEL]?.publish;
  if (!publish) return false;
  publish('clear_output', { wait });
  return true;
}

const sent = new Set<VizLibrary>();

/**
 * Sends chart libraries to the page: each at most once per kernel session unless `force` (after reloading
 * the page of a running kernel: `vizSetup(undefined, true)`). Charts call it before they are shown, when
 * their library is not there yet. Returns false outside a kernel.
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
