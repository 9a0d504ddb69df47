/**
 * The chart runtime of the browser (bundled by `toolkit/scripts/bundle-viz.js` into one script with the d3
 * modules it uses). Sent once per page after vega-embed / plotly where those are needed; draws every
 * `.cf-chart` output: reads its JSON spec, draws it interactively into the live container, and hides the static
 * SVG fallback only once the interactive chart is drawn.
 */
import { D3_VIEWS } from './index';

interface ChartSpec {
  renderer: string;
  title: string;
  spec: Record<string, unknown>;
}

type Renderer = (el: HTMLElement, spec: never) => unknown;

declare global {
  interface Window {
    vegaEmbed?: (el: HTMLElement, spec: unknown, opts: unknown) => Promise<unknown>;
    Plotly?: { newPlot(el: HTMLElement, data: unknown, layout: unknown, config: unknown): Promise<unknown> };
    causalfusionViz?: typeof api;
  }
}

const renderers: Record<string, Renderer> = {
  'vega-lite': (el, s) =>
    window.vegaEmbed!(el, s, {
      renderer: 'svg',
      actions: { export: true, source: false, compiled: false, editor: false },
    }),
  plotly: (el, s: { data: unknown; layout: unknown }) =>
    window.Plotly!.newPlot(el, s.data, s.layout, { displaylogo: false, responsive: true }),
  ...Object.fromEntries(
    Object.entries(D3_VIEWS).map(([name, view]) => [name, (el: HTMLElement, s: never) => view(el, s, true)]),
  ),
};

/** The global each renderer needs besides our bundle (sent with the first chart that uses it). */
const NEEDS: Record<string, 'vegaEmbed' | 'Plotly'> = { 'vega-lite': 'vegaEmbed', plotly: 'Plotly' };

function mount(id: string): void {
  const host = document.getElementById(id);
  if (!host || host.getAttribute('data-mounted')) return;
  const c = JSON.parse(host.querySelector('script.cf-spec')!.textContent!) as ChartSpec;
  // its library is not on the page yet: the setup output that brings it calls mountAll
  if (NEEDS[c.renderer] && !window[NEEDS[c.renderer]]) return;
  host.setAttribute('data-mounted', 'true');
  const live = host.querySelector<HTMLElement>('.cf-live')!;
  const done = () => {
    host.querySelector<HTMLElement>('.cf-static')!.style.display = 'none';
    host.setAttribute('data-rendered', 'true');
  };
  const fail = (e: Error) => {
    live.textContent = `interactive chart failed (${e.message}); the static picture above is shown instead`;
    console.error(`[causalfusion viz] ${c.title}: ${e.message}`);
  };
  try {
    const r = renderers[c.renderer](live, c.spec as never);
    if (r instanceof Promise) r.then(done, fail);
    else done();
  } catch (e) {
    fail(e as Error);
  }
}

/** Draws every chart on the page that is not drawn yet (outputs restored from a saved notebook included). */
function mountAll(): void {
  document.querySelectorAll<HTMLElement>('.cf-chart').forEach((n) => mount(n.id));
}

/**
 * What each chart on the page drew (for tests and debugging): renderer, whether it rendered, how many marks it
 * has (SVG shapes, text and images), its size, and whether the static fallback is hidden.
 */
function report() {
  return Array.from(document.querySelectorAll<HTMLElement>('.cf-chart'), (c) => {
    const live = c.querySelector('.cf-live')!;
    const box = live.getBoundingClientRect();
    return {
      renderer: c.getAttribute('data-renderer'),
      rendered: c.getAttribute('data-rendered') === 'true',
      marks: live.querySelectorAll('svg path, svg rect, svg line, svg text, svg image').length,
      w: box.width,
      h: box.height,
      staticHidden: c.querySelector<HTMLElement>('.cf-static')!.style.display === 'none',
    };
  });
}

const api = { mount, mountAll, renderers, report };
window.causalfusionViz = api;
