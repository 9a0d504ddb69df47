/**
 * Small SVG building blocks for static fallbacks: raster images embedded as PNG (compact at any size, unlike
 * one rect per pixel) and side-by-side / stacked composition of whole SVG documents.
 */
import { encodePng, imageGrid, Raster } from '../io/images';
import { escapeXml } from './svg-chart';

const esc = escapeXml;

/** A one-line bold title as its own SVG document, to stack above other pictures. */
export function titleSvg(text: string): string {
  const w = Math.ceil(16 + 7.5 * text.length);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="26" viewBox="0 0 ${w} 26" font-family="sans-serif"><text x="8" y="17" font-size="13" font-weight="bold">${esc(text)}</text></svg>`;
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
  return `data:image/png;base64,${encodePng(r).toString('base64')}`;
}

/** An SVG document showing a grey image [size x size] in [-1, 1], `scale` screen pixels per pixel, with a title. */
export function imageSvg(image: Float32Array, size: number, opts: { title?: string; scale?: number } = {}): string {
  const s = opts.scale ?? 4;
  const top = opts.title ? 26 : 6;
  const W = Math.max(size * s + 20, opts.title ? 16 + 7.5 * opts.title.length : 0);
  const H = top + size * s + 10;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11"><rect width="${W}" height="${H}" fill="white"/>` +
    (opts.title ? `<text x="8" y="16" font-size="13" font-weight="bold">${esc(opts.title)}</text>` : '') +
    `<image x="10" y="${top}" width="${size * s}" height="${size * s}" image-rendering="pixelated" style="image-rendering:pixelated" href="${pngDataUri(image, size)}"/></svg>`
  );
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
  return `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><rect width="${W}" height="${H}" fill="white"/>${parts.join('')}</svg>`;
}
