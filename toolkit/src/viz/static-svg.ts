/**
 * The static pictures of the d3 views: the view's own drawing code run in Node against linkedom's DOM, and the
 * <svg> it drew serialised as a standalone document (what GitHub, reports and PNG exports show).
 */
import { parseHTML } from 'linkedom';
import { View } from './views/common';
import { BarChartSpec, drawBarChart, drawLineChart, LineChartSpec } from './views/plots';
import { escapeXml } from '../util/markup';

/**
 * XML markup of a node of linkedom's DOM. linkedom lists attributes newest first: they are written in the order
 * the view set them (the snapshot tests pin this), so the SVG reads like the code that drew it.
 */
function markup(node: Node, rootAttrs = ''): string {
  if (node.nodeType === 3) return escapeXml(node.textContent ?? '');
  if (node.nodeType !== 1) return '';
  const el = node as Element;
  const attrs = [...el.attributes]
    .reverse()
    .map((a) => ` ${a.name}="${escapeXml(a.value)}"`)
    .join('');
  const kids = [...el.childNodes].map((k) => markup(k)).join('');
  const open = `<${el.localName}${rootAttrs}${attrs}`;
  return kids ? `${open}>${kids}</${el.localName}>` : `${open}/>`;
}

/**
 * Geometry attributes rounded to 1/100 px: vega and d3 write 14 decimals (30.46774193548389), a third of a large
 * chart's bytes, invisible at any zoom. Text and aria labels keep their numbers.
 */
export function roundGeometry(svg: string): string {
  return svg.replace(
    / (d|transform|x|y|x1|x2|y1|y2|width|height|cx|cy|r|points)="([^"]*)"/g,
    (_m, k: string, v: string) => ` ${k}="${v.replace(/(\.\d\d)\d+/g, '$1')}"`,
  );
}

/** Runs `view` (non-interactive) on `spec` in a server-side DOM and returns the SVG document it drew. */
export function renderSvg<S>(view: View<S>, spec: S): string {
  const { document } = parseHTML('<!DOCTYPE html><html><body><div></div></body></html>');
  const el = document.querySelector('div') as unknown as HTMLElement;
  view(el, spec, false);
  const svg = el.querySelector('svg');
  if (!svg) throw new Error('the view drew no <svg>');
  return roundGeometry(markup(svg, ' xmlns="http://www.w3.org/2000/svg"'));
}

/** A line chart as an SVG document (d3 scales and axes; `logY` for a log y axis; null y values leave gaps). */
export const lineChartSvg = (spec: LineChartSpec): string => renderSvg(drawLineChart, spec);

/** A bar chart of labelled values as an SVG document. */
export const barChartSvg = (spec: BarChartSpec): string => renderSvg(drawBarChart, spec);
