/**
 * Image grids. Images are model-range float arrays [N, C, H, W] in [-1, 1] (1 = grey, 3 = RGB); a grid lays them
 * out row by row with a gap, upscaled by an integer factor so 28-pixel digits are visible. PNG bytes: io/png.ts.
 */
import { toBase64 } from '../util/bytes';

/** An RGBA raster. */
export interface Raster {
  width: number;
  height: number;
  /** RGBA bytes, row major. */
  data: Uint8Array;
}

export interface GridOptions {
  /** Images per row (default: ceil(sqrt(N))). */
  cols?: number;
  /** Gap between images, in output pixels. */
  pad?: number;
  /** Integer upscaling (nearest neighbour). */
  scale?: number;
  /** Gap colour, 0..255 grey. */
  background?: number;
}

/** Model range [-1, 1] to a byte, as the official `clamp(127.5 * x + 128, 0, 255)`. */
export const toByte = (v: number): number => Math.max(0, Math.min(255, Math.floor(127.5 * v + 128)));

/** Grey bytes of values in model range, base64: the compact form charts and the claims cache store images in. */
export const greyBase64 = (image: ArrayLike<number>): string => toBase64(Uint8Array.from(image, toByte));

/** Lays out N images [N, C, H, W] (C = 1 or 3) in a grid. */
export function imageGrid(
  images: Float32Array,
  N: number,
  C: number,
  H: number,
  W: number,
  opts: GridOptions = {},
): Raster {
  if (C !== 1 && C !== 3) throw new Error(`a grid needs 1 or 3 channels, got ${C}`);
  if (images.length !== N * C * H * W)
    throw new Error(`expected ${N * C * H * W} values for [${N}, ${C}, ${H}, ${W}], got ${images.length}`);
  const cols = opts.cols ?? Math.ceil(Math.sqrt(N));
  const rows = Math.ceil(N / cols);
  const pad = opts.pad ?? 2;
  const s = opts.scale ?? 1;
  if (!Number.isInteger(s) || s < 1) throw new Error(`grid scale must be a positive integer, got ${s}`);
  const width = cols * W * s + (cols + 1) * pad;
  const height = rows * H * s + (rows + 1) * pad;
  const data = new Uint8Array(width * height * 4).fill(opts.background ?? 255);
  for (let n = 0; n < N; n++) {
    const ox = pad + (n % cols) * (W * s + pad);
    const oy = pad + Math.floor(n / cols) * (H * s + pad);
    for (let y = 0; y < H * s; y++)
      for (let x = 0; x < W * s; x++) {
        const o = ((oy + y) * width + ox + x) * 4;
        const src = (yy: number, c: number) => images[((n * C + c) * H + yy) * W + Math.floor(x / s)];
        for (let k = 0; k < 3; k++) data[o + k] = toByte(src(Math.floor(y / s), C === 1 ? 0 : k));
        data[o + 3] = 255;
      }
  }
  return { width, height, data };
}
