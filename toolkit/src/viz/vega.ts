/**
 * Vega-Lite charts: the spec is drawn by vega-embed in the browser and, for the static fallback, by the real
 * vega (in Node: a short-lived process, viz/node-host.ts).
 */
import { Chart, staticVegaLiteSvg } from './chart';

/** Shared look: one font, one title style, and the project's colour scheme for roles and AR steps. */
export const VEGA_CONFIG = {
  font: 'sans-serif',
  title: { fontSize: 13, anchor: 'start' },
  axis: { labelFontSize: 11, titleFontSize: 11 },
  legend: { labelFontSize: 11, titleFontSize: 11 },
  view: { stroke: null },
};

/** A vega-lite chart with the shared config; its static SVG is rendered on first use. */
export function vegaLiteChart(title: string, spec: Record<string, unknown>): Chart {
  const full = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, config: VEGA_CONFIG, ...spec };
  return new Chart('vega-lite', title, full, () => staticVegaLiteSvg(full));
}
