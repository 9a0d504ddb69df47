/**
 * PNG encoding in plain TypeScript (deflate from fflate), so rasters become PNGs in a browser as in Node: RGBA,
 * 8-bit grey for opaque grey rasters (every MNIST grid: a quarter of the raw bytes, about a third of the file),
 * and indexed colour for rendered charts (`encodePalettePng`: at most 256 colours, a third to a quarter of the
 * RGBA file; committed notebooks store their figures this way, the one picture every viewer draws).
 */
import { zlibSync } from 'fflate';
import type { Raster } from './images';
import { crc32 } from '../util/bytes';

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * Each row prefixed by its filter byte: the filter (none, sub, up, average, Paeth) whose output has the smallest
 * sum of absolute values, the usual heuristic; `bpp` bytes per pixel.
 */
function filterRows(pixels: Uint8Array, width: number, height: number, bpp: number): Uint8Array {
  const stride = width * bpp;
  const out = new Uint8Array((stride + 1) * height);
  const cand = Array.from({ length: 5 }, () => new Uint8Array(stride));
  const paeth = (a: number, b: number, c: number) => {
    const p = a + b - c;
    const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
  };
  for (let y = 0; y < height; y++) {
    const row = pixels.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : null;
    let best = 0;
    let bestSum = Infinity;
    for (let f = 0; f < 5; f++) {
      const c = cand[f];
      let sum = 0;
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? row[i - bpp] : 0;
        const b = up ? up[i] : 0;
        const d = i >= bpp && up ? up[i - bpp] : 0;
        const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : paeth(a, b, d);
        const v = (row[i] - pred) & 255;
        c[i] = v;
        sum += v < 128 ? v : 256 - v;
      }
      if (sum < bestSum) ((bestSum = sum), (best = f));
    }
    out[y * (stride + 1)] = best;
    out.set(cand[best], y * (stride + 1) + 1);
  }
  return out;
}

function png(
  width: number,
  height: number,
  colourType: number,
  rows: Uint8Array,
  extra: Uint8Array[] = [],
): Uint8Array {
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = colourType;
  const parts = [
    Uint8Array.from(SIGNATURE),
    chunk('IHDR', ihdr),
    ...extra,
    chunk('IDAT', zlibSync(rows, { level: 9 })),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

/** Whether every pixel of an RGBA raster is opaque grey (r = g = b, alpha 255). */
function isOpaqueGrey(d: Uint8Array): boolean {
  for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 1] || d[i] !== d[i + 2] || d[i + 3] !== 255) return false;
  return true;
}

/** PNG bytes of a raster: 8-bit grey when it is opaque grey, else RGBA. */
export function encodePng(r: Raster): Uint8Array {
  if (!isOpaqueGrey(r.data)) return png(r.width, r.height, 6, filterRows(r.data, r.width, r.height, 4));
  const grey = new Uint8Array(r.width * r.height);
  for (let i = 0; i < grey.length; i++) grey[i] = r.data[i * 4];
  return png(r.width, r.height, 0, filterRows(grey, r.width, r.height, 1));
}

/**
 * The raster's colours, at most `maxColours` of them: the most frequent ones are kept and every other pixel takes
 * the nearest kept colour (RGBA distance). Charts have few flat colours and blends of them at edges, so the
 * frequent colours include the blends, and edges stay smooth. Returns the palette and one index per pixel.
 */
export function quantiseColours(r: Raster, maxColours = 256): { palette: Uint32Array; indices: Uint8Array } {
  const px = new Uint32Array(r.width * r.height);
  const view = new DataView(r.data.buffer, r.data.byteOffset, r.data.byteLength);
  const count = new Map<number, number>();
  for (let i = 0; i < px.length; i++) {
    px[i] = view.getUint32(i * 4); // RGBA, big-endian: R in the high byte
    count.set(px[i], (count.get(px[i]) ?? 0) + 1);
  }
  const palette = Uint32Array.from(
    [...count.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, maxColours)
      .map(([c]) => c),
  );
  const channels = (c: number) => [c >>> 24, (c >>> 16) & 255, (c >>> 8) & 255, c & 255];
  const kept = Array.from(palette, channels);
  const index = new Map<number, number>(Array.from(palette, (c, i) => [c, i]));
  const indices = new Uint8Array(px.length);
  for (let i = 0; i < px.length; i++) {
    let j = index.get(px[i]);
    if (j === undefined) {
      const c = channels(px[i]);
      let best = Infinity;
      kept.forEach((k, ki) => {
        const d = (k[0] - c[0]) ** 2 + (k[1] - c[1]) ** 2 + (k[2] - c[2]) ** 2 + (k[3] - c[3]) ** 2;
        if (d < best) ((best = d), (j = ki));
      });
      index.set(px[i], j!);
    }
    indices[i] = j!;
  }
  return { palette, indices };
}

/** PNG bytes of a raster in at most 256 colours (`quantiseColours`), as an 8-bit indexed image with transparency. */
export function encodePalettePng(r: Raster, maxColours = 256): Uint8Array {
  if (!(maxColours >= 2 && maxColours <= 256))
    throw new Error(`a PNG palette holds 2 to 256 colours, got ${maxColours}`);
  const { palette, indices } = quantiseColours(r, maxColours);
  const plte = new Uint8Array(palette.length * 3);
  const trns = new Uint8Array(palette.length);
  palette.forEach((c, i) => {
    plte.set([c >>> 24, (c >>> 16) & 255, (c >>> 8) & 255], i * 3);
    trns[i] = c & 255;
  });
  // filter byte 0 (none) per row: palette indices compress well as they are
  const rows = new Uint8Array((r.width + 1) * r.height);
  for (let y = 0; y < r.height; y++) rows.set(indices.subarray(y * r.width, (y + 1) * r.width), y * (r.width + 1) + 1);
  return png(r.width, r.height, 3, rows, [chunk('PLTE', plte), chunk('tRNS', trns)]);
}
