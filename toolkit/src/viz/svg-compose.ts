/**
 * Small building blocks for static pictures and chart specs: raster images embedded as PNG data URIs (compact at
 * any size, unlike one rect per pixel), packed bit sets, SVG as HTML, and side-by-side / stacked composition of
 * whole SVG documents.
 */
import { imageGrid, Raster } from '../io/images';
import { encodePng } from '../io/png';
import { toBase64, utf8 } from '../util/bytes';
import { escapeXml } from '../util/markup';
import { rgbBytes } from './palette';

/** A bit set, 8 flags per byte, least significant bit first, base64 (what the views' `bits` reads). */
export function packBits(n: number, flag: (i: number) => boolean): string {
  const out = new Uint8Array(Math.ceil(n / 8));
  for (let i = 0; i < n; i++) if (flag(i)) out[i >> 3] |= 1 << (i & 7);
  return toBase64(out);
}

/** Width and height of an SVG document from its root element. */
function sizeOf(svg: string): [number, number] {
  const m = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg);
  if (!m) throw new Error('SVG without width / height on its root element');
  return [Number(m[1]), Number(m[2])];
}

/** A PNG data URI of a grey image [h x w] in [-1, 1] or of a raster. */
export function pngDataUri(image: Float32Array | Raster, size = 0): string {
  const r = image instanceof Float32Array ? imageGrid(image, 1, 1, image.length / size, size, { pad: 0 }) : image;
  return `data:image/png;base64,${toBase64(encodePng(r))}`;
}

export { escapeXml };

/**
 * HTML showing an SVG document as an image. Sanitizers (JupyterLab's, for untrusted outputs) keep an <img> with a
 * data URI but strip inline <svg>, so this shows everywhere HTML does.
 */
export function svgImageHtml(svg: string, alt: string): string {
  return `<img alt="${escapeXml(alt)}" src="data:image/svg+xml;base64,${toBase64(utf8(svg))}">`;
}

/** SVG documents side by side (`gap` px apart), or stacked when `vertical`. */
export function hstackSvg(svgs: readonly string[], opts: { gap?: number; vertical?: boolean } = {}): string {
  const gap = opts.gap ?? 12;
  const sizes = svgs.map(sizeOf);
  const W = opts.vertical
    ? Math.max(...sizes.map((s) => s[0]))
    : sizes.reduce((a, s) => a + s[0], 0) + gap * (svgs.length - 1);
  const H = opts.vertical
    ? sizes.reduce((a, s) => a + s[1], 0) + gap * (svgs.length - 1)
    : Math.max(...sizes.map((s) => s[1]));
  let at = 0;
  const parts = svgs.map((svg, i) => {
    const [x, y] = opts.vertical ? [0, at] : [at, 0];
    at += (opts.vertical ? sizes[i][1] : sizes[i][0]) + gap;
    return svg.replace(/^\s*(<\?xml[^>]*>)?\s*<svg/, `<svg x="${x}" y="${y}"`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><rect width="${W}" height="${H}" fill="white"/>${parts.join('')}</svg>`;
}

/** An RGBA raster [h x w] whose pixel (r, c) has colour `color(r, c)` (white where null). */
export function colorRaster(h: number, w: number, color: (r: number, c: number) => string | null): Raster {
  const data = new Uint8Array(4 * h * w).fill(255);
  // a chart uses few distinct colours: parse each once, not once per pixel
  const parsed = new Map<string, [number, number, number]>();
  for (let r = 0; r < h; r++)
    for (let c = 0; c < w; c++) {
      const col = color(r, c);
      if (!col) continue;
      let rgb = parsed.get(col);
      if (!rgb) parsed.set(col, (rgb = rgbBytes(col)));
      data.set(rgb, 4 * (r * w + c));
    }
  return { width: w, height: h, data };
}
