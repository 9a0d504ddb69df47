/**
 * The chart host of Node (see `ChartHost` in chart.ts), installed when this module loads (the package's entry
 * loads it): static SVG of the d3 views in linkedom's DOM, vega's own SVG in a short-lived Node process (vega 6 is
 * ESM with top-level await, which this CommonJS build cannot require, and a synchronous child keeps
 * `display(chart)` synchronous in notebooks), PNG through resvg, files written atomically, and the chart
 * libraries sent to a notebook once per kernel session.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Chart, setChartHost } from './chart';
import { vizSetup } from './notebook-io';
import { vizSetupHtml } from './runtime';
import { renderSvg, roundGeometry } from './static-svg';
import { escapeXml } from '../util/markup';
import { encodePalettePng } from '../io/png';
import { writeFileAtomic } from '../util/atomic-write';
import { utf8 } from '../util/bytes';

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

/** An offline HTML page with several charts, their libraries inlined. */
function page(title: string, charts: readonly Chart[]): string {
  // charts first, setup last: the setup draws everything already on the page
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeXml(title)}</title></head><body style="font-family:sans-serif">${charts.map((c) => c.html()).join('\n')}${vizSetupHtml(['d3', ...charts.map((c) => c.library)])}</body></html>`;
}

setChartHost({
  viewSvg: renderSvg,
  vegaLiteSvg,
  png: svgToPng,
  page,
  write(file, body) {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    writeFileAtomic(file, typeof body === 'string' ? utf8(body) : body);
  },
  beforeDisplay: (chart) => void vizSetup([chart.library]),
});
