/**
 * Indexed-colour PNG: a rendered chart (flat fills, anti-aliased text and lines) reduced to at most 256 colours
 * and stored one byte per pixel, a third to a quarter of the RGBA file. Committed notebooks store their figures
 * this way (notebooks/slim.js): every viewer draws a PNG, including an untrusted JupyterLab, which draws no SVG.
 */
import * as zlib from 'zlib';
import { Raster } from './images';

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

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), data])) >>> 0);
  return Buffer.concat([head, data, crc]);
}

/** PNG bytes of a raster in at most 256 colours (`quantiseColours`), as an 8-bit indexed image with transparency. */
export function encodePalettePng(r: Raster, maxColours = 256): Buffer {
  if (!(maxColours >= 2 && maxColours <= 256))
    throw new Error(`a PNG palette holds 2 to 256 colours, got ${maxColours}`);
  const { palette, indices } = quantiseColours(r, maxColours);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(r.width, 0);
  ihdr.writeUInt32BE(r.height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 3; // indexed colour
  const plte = Buffer.alloc(palette.length * 3);
  const trns = Buffer.alloc(palette.length);
  palette.forEach((c, i) => {
    plte[i * 3] = c >>> 24;
    plte[i * 3 + 1] = (c >>> 16) & 255;
    plte[i * 3 + 2] = (c >>> 8) & 255;
    trns[i] = c & 255;
  });
  const rows = Buffer.alloc((r.width + 1) * r.height); // filter byte 0 (none) per row: indices compress well as they are
  for (let y = 0; y < r.height; y++) rows.set(indices.subarray(y * r.width, (y + 1) * r.width), y * (r.width + 1) + 1);
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('PLTE', plte),
    chunk('tRNS', trns),
    chunk('IDAT', zlib.deflateSync(rows, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
