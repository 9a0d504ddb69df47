/**
 * Vega-Lite charts: the spec is drawn by vega-embed in the browser and, for the static fallback, by the real
 * vega in a short-lived Node process (vega 6 is ESM with top-level await, which this CommonJS build cannot
 * require, and a synchronous child keeps `display(chart)` synchronous in notebooks).
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { Chart } from './chart';
import { roundGeometry } from './static-svg';

const RENDER_SCRIPT = path.resolve(__dirname, '..', '..', '..', 'viz-runtime', 'vega-svg.mjs');

/** The static SVG of a vega-lite spec, rendered by vega itself. */
export function vegaLiteSvg(spec: Record<string, unknown>): string {
  const r = spawnSync(process.execPath, [RENDER_SCRIPT], {
    // no ARIA labels in the static picture: viewers show it as an image, where they are unreachable bytes
    input: JSON.stringify({ ...spec, config: { ...(spec.config as object | undefined), aria: false } }),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0)
    throw new Error(
      `vega could not render the chart: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' ')}`,
    );
  // vega's SVG has no background; static viewers with dark themes need one
  return roundGeometry(r.stdout).replace(/<svg([^>]*)>/, '<svg$1><rect width="100%" height="100%" fill="white"/>');
}

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
  return new Chart('vega-lite', title, full, () => vegaLiteSvg(full));
}
