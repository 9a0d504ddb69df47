/**
 * What the d3 views share. A view draws one chart into a container from its spec (plain JSON built in Node).
 * The same code runs in the browser, interactive (tooltips, pickers, sliders), and in Node against a server-side
 * DOM, static (the <svg> alone, see `static-svg.ts`), so the interactive and the static picture cannot drift.
 * Nothing here may use Node: the browser bundle (`views/browser.ts`) includes it.
 */
import { pointer, select, Selection } from 'd3-selection';

/** A selection of an SVG element of the view. */
export type Sel = Selection<any, any, any, any>;

/** A view: draws `spec` into `el`; `interactive` adds the browser-only parts (tooltips, controls, events). */
export type View<S> = (el: HTMLElement, spec: S, interactive: boolean) => void;

/** Width a label needs at `px` font size (server-side DOMs cannot measure text: about 0.6 em per character). */
export const textWidth = (text: string, px = 11): number => Math.ceil(0.6 * px * text.length);

/** The chart's <svg>, at least as wide as its title: white background, bold title on the first line. */
export function svgRoot(el: HTMLElement, width: number, height: number, title: string): Sel {
  const w = Math.ceil(Math.max(width, 16 + textWidth(title, 13)));
  const h = Math.ceil(height);
  const svg = select(el)
    .append('svg')
    .attr('width', w)
    .attr('height', h)
    .attr('viewBox', `0 0 ${w} ${h}`)
    .attr('font-family', 'sans-serif')
    .attr('font-size', 11);
  svg.append('rect').attr('width', w).attr('height', h).attr('fill', 'white');
  svg
    .append('text')
    .attr('class', 'cf-title')
    .attr('x', 8)
    .attr('y', 16)
    .attr('font-size', 13)
    .attr('font-weight', 'bold')
    .text(title);
  return svg;
}

/** A raster (PNG data URI) drawn without smoothing, one image pixel per `w / width` screen pixels. */
export function pixelImage(parent: Sel, href: string, x: number, y: number, w: number, h: number): Sel {
  return (
    parent
      .append('image')
      .attr('x', x)
      .attr('y', y)
      .attr('width', w)
      .attr('height', h)
      .attr('preserveAspectRatio', 'none')
      // nearest-neighbour scaling in browsers and in resvg (which ignores CSS `pixelated`)
      .attr('image-rendering', 'optimizeSpeed')
      .attr('href', href)
  );
}

/** Colour swatches with labels, one per row, from (x, y). */
export function legend(parent: Sel, items: readonly { color: string; label: string }[], x: number, y: number): void {
  const rows = parent
    .append('g')
    .attr('class', 'cf-legend')
    .selectAll('g')
    .data(items)
    .join('g')
    .attr('transform', (_, i) => `translate(${x},${y + 16 * i})`);
  rows
    .append('rect')
    .attr('width', 10)
    .attr('height', 10)
    .attr('fill', (d) => d.color)
    .attr('stroke', '#999')
    .attr('stroke-width', 0.5);
  rows
    .append('text')
    .attr('x', 14)
    .attr('y', 9)
    .text((d) => d.label);
}

/** Width of a legend's widest row. */
export const legendWidth = (items: readonly { label: string }[]): number =>
  14 + Math.max(0, ...items.map((d) => textWidth(d.label)));

/** A floating tooltip (browser only). */
export interface Tip {
  show(ev: MouseEvent, text: string): void;
  hide(): void;
}

export function tooltip(el: HTMLElement): Tip {
  const tip = select(el)
    .style('position', 'relative')
    .append('div')
    .attr('class', 'cf-tooltip')
    .attr(
      'style',
      'position:absolute;pointer-events:none;background:rgba(255,255,255,0.95);border:1px solid #999;padding:3px 6px;font:11px sans-serif;white-space:pre;display:none',
    );
  return {
    show(ev, text) {
      const [x, y] = pointer(ev, el);
      tip
        .style('display', 'block')
        .style('left', `${x + 14}px`)
        .style('top', `${y + 10}px`)
        .text(text);
    },
    hide() {
      tip.style('display', 'none');
    },
  };
}

/**
 * Hover (and optional click) over a grid of cells drawn as one element of `rows x cols` cells of `cell` px:
 * `text(r, c)` is the tooltip of the cell under the pointer.
 */
export function onCells(
  target: Sel,
  tip: Tip,
  cell: number,
  text: (r: number, c: number) => string | null,
  click?: (r: number, c: number) => void,
): void {
  const at = (ev: MouseEvent) => {
    const [x, y] = pointer(ev, target.node());
    return [Math.floor((y - +target.attr('y')) / cell), Math.floor((x - +target.attr('x')) / cell)];
  };
  target
    .style('cursor', click ? 'pointer' : 'crosshair')
    .on('mousemove', (ev: MouseEvent) => {
      const [r, c] = at(ev);
      const t = text(r, c);
      if (t === null) tip.hide();
      else tip.show(ev, t);
    })
    .on('mouseleave', () => tip.hide());
  if (click)
    target.on('click', (ev: MouseEvent) => {
      const [r, c] = at(ev);
      click(r, c);
    });
}

/** The bytes of a base64 string (atob exists in browsers and in Node >= 16). */
export const bytes = (b64: string): Uint8Array => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));

/** Reader of a bit set packed 8 per byte, least significant bit first (`packBits` writes it), base64. */
export function bits(b64: string): (i: number) => boolean {
  const b = bytes(b64);
  return (i) => ((b[i >> 3] >> (i & 7)) & 1) === 1;
}
