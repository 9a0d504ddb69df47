/**
 * A folder of PNG images with one sub-folder per class (`root/<class>/*.png`), like torchvision's
 * ImageFolder: classes sorted by name, images converted to grey (1 channel) or RGB (3) and resized
 * bilinearly to size x size when they differ.
 */
import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import { ImageDataset } from './datasets';

export interface FolderOptions {
  /** 1 = grey (luma), 3 = RGB; alpha is composited on black. */
  channels: 1 | 3;
  /** Output side; default: the size of the first image (then every image must be square and that size or resized). */
  size?: number;
}

function resizeBilinear(src: Float32Array, w: number, h: number, size: number): Float32Array {
  const out = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    const fy = Math.min(h - 1, Math.max(0, ((y + 0.5) * h) / size - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(h - 1, y0 + 1);
    const ty = fy - y0;
    for (let x = 0; x < size; x++) {
      const fx = Math.min(w - 1, Math.max(0, ((x + 0.5) * w) / size - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(w - 1, x0 + 1);
      const tx = fx - x0;
      const top = src[y0 * w + x0] * (1 - tx) + src[y0 * w + x1] * tx;
      const bot = src[y1 * w + x0] * (1 - tx) + src[y1 * w + x1] * tx;
      out[y * size + x] = top * (1 - ty) + bot * ty;
    }
  }
  return out;
}

/** The largest side this loader decodes: bigger files are refused before decoding (a 100000 x 100000 header
 * would ask for 40 GB); datasets of this toolkit are 28-64 px and any user image is resized down anyway. */
export const MAX_IMAGE_SIDE = 4096;

/** Width and height from a PNG's IHDR chunk, read before decoding. */
function pngSize(bytes: Buffer, file: string): [number, number] {
  const SIGNATURE = '89504e470d0a1a0a';
  if (
    bytes.length < 24 ||
    bytes.subarray(0, 8).toString('hex') !== SIGNATURE ||
    bytes.toString('latin1', 12, 16) !== 'IHDR'
  )
    throw new Error(`${file}: not a readable PNG (no PNG signature and IHDR header)`);
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

/** Loads every `.png` under `root/<class>/`; errors name the offending file. */
export function loadImageFolder(root: string, opts: Partial<FolderOptions> = {}): ImageDataset {
  const channels = opts.channels ?? 1;
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new Error(`image folder not found: ${root}`);
  const classNames = fs
    .readdirSync(root)
    .filter((d) => fs.statSync(path.join(root, d)).isDirectory())
    .sort();
  if (!classNames.length) throw new Error(`${root} has no class sub-folders (expected ${root}/<class>/*.png)`);
  const files: [string, number][] = [];
  classNames.forEach((c, label) => {
    for (const f of fs.readdirSync(path.join(root, c)).sort())
      if (f.toLowerCase().endsWith('.png')) files.push([path.join(root, c, f), label]);
  });
  if (!files.length) throw new Error(`${root}: no .png images in its class folders`);
  let size = opts.size;
  const planes: Float32Array[] = [];
  for (const [file] of files) {
    let png: PNG;
    const bytes = fs.readFileSync(file);
    const [pw, ph] = pngSize(bytes, file);
    if (pw < 1 || ph < 1 || pw > MAX_IMAGE_SIDE || ph > MAX_IMAGE_SIDE)
      throw new Error(`${file}: ${pw} x ${ph} pixels; this loader takes 1 to ${MAX_IMAGE_SIDE} pixels a side`);
    try {
      png = PNG.sync.read(bytes);
    } catch (e) {
      throw new Error(`${file}: not a readable PNG (${(e as Error).message})`);
    }
    size ??= png.width;
    const { width: w, height: h, data } = png;
    for (let c = 0; c < channels; c++) {
      const plane = new Float32Array(w * h);
      for (let i = 0; i < w * h; i++) {
        const a = data[4 * i + 3] / 255;
        const [r, g, b] = [data[4 * i], data[4 * i + 1], data[4 * i + 2]];
        plane[i] = a * (channels === 1 ? 0.299 * r + 0.587 * g + 0.114 * b : [r, g, b][c]);
      }
      planes.push(w === size && h === size ? plane : resizeBilinear(plane, w, h, size));
    }
  }
  const per = channels * size! * size!;
  const images = new Uint8Array(files.length * per);
  planes.forEach((p, i) =>
    images.set(
      Uint8Array.from(p, (v) => Math.max(0, Math.min(255, Math.round(v)))),
      i * size! * size!,
    ),
  );
  return {
    name: `folder ${path.basename(path.resolve(root))}`,
    images,
    labels: Uint8Array.from(files, ([, l]) => l),
    count: files.length,
    channels,
    height: size!,
    width: size!,
    classNames,
  };
}
