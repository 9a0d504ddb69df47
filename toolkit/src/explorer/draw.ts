/**
 * Canvas drawing of the explorer: images in model range, the patch grid over them (AR step colours and numbers,
 * picked and painted tokens), and token hits from pointer positions. Browser only (canvas), no tfjs.
 */
import { stepColor } from '../viz/palette';
import { toByte } from '../io/images';

/** Pixels per image pixel for an image of `size` drawn about `target` px wide. */
export const scaleFor = (size: number, target: number): number => Math.max(1, Math.floor(target / size));

/**
 * Draws image [C, H, W] (model range; 1 channel grey, 3 RGB, others their first three channels stretched) into
 * `canvas`, `scale` px per pixel, nearest neighbour.
 */
export function drawImage(
  canvas: HTMLCanvasElement,
  image: Float32Array,
  C: number,
  H: number,
  W: number,
  scale: number,
): void {
  canvas.width = W * scale;
  canvas.height = H * scale;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(W, H);
  const stretch = C !== 1 && C !== 3;
  let lo = -1;
  let hi = 1;
  if (stretch) {
    lo = Math.min(...image);
    hi = Math.max(...image);
  }
  for (let i = 0; i < H * W; i++)
    for (let k = 0; k < 3; k++) {
      const c = C === 1 ? 0 : Math.min(k, C - 1);
      const v = image[c * H * W + i];
      img.data[4 * i + k] = toByte(stretch ? (2 * (v - lo)) / Math.max(1e-6, hi - lo) - 1 : v);
      img.data[4 * i + 3] = 255;
    }
  const tmp = document.createElement('canvas');
  tmp.width = W;
  tmp.height = H;
  tmp.getContext('2d')!.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, W * scale, H * scale);
}

/** What the grid overlay marks per token. */
export interface GridMarks {
  /** AR step of each token (-1: not generated yet, -2: kept), and the number of steps. */
  stepOf?: readonly number[];
  steps?: number;
  /** Tokens outlined with a number (a typed order: 1, 2, ...). */
  numbered?: readonly number[];
  /** Tokens shaded (editing: to regenerate). */
  shaded?: readonly boolean[];
  /** The picked token. */
  picked?: number | null;
}

/** Draws the patch grid over the canvas's image. */
export function drawGrid(canvas: HTMLCanvasElement, grid: number, m: GridMarks): void {
  const ctx = canvas.getContext('2d')!;
  const cell = canvas.width / grid;
  ctx.save();
  ctx.lineWidth = 1;
  ctx.strokeStyle = 'rgba(255,255,255,0.35)';
  for (let i = 1; i < grid; i++) {
    ctx.beginPath();
    ctx.moveTo(i * cell, 0);
    ctx.lineTo(i * cell, canvas.height);
    ctx.moveTo(0, i * cell);
    ctx.lineTo(canvas.width, i * cell);
    ctx.stroke();
  }
  for (let t = 0; t < grid * grid; t++) {
    const [x, y] = [(t % grid) * cell, Math.floor(t / grid) * cell];
    if (m.shaded?.[t]) {
      ctx.fillStyle = 'rgba(214,39,40,0.45)';
      ctx.fillRect(x, y, cell, cell);
    }
    const s = m.stepOf?.[t];
    if (s !== undefined && s >= 0 && m.steps) {
      ctx.strokeStyle = stepColor(s, m.steps);
      ctx.lineWidth = 2;
      ctx.strokeRect(x + 1, y + 1, cell - 2, cell - 2);
      if (cell >= 32) label(ctx, String(s + 1), x, y, cell, '#222');
    }
    const n = m.numbered?.indexOf(t) ?? -1;
    if (n >= 0) label(ctx, String(n + 1), x, y, cell, '#d62728');
  }
  if (m.picked != null) {
    ctx.strokeStyle = '#d62728';
    ctx.lineWidth = 3;
    ctx.strokeRect((m.picked % grid) * cell + 1.5, Math.floor(m.picked / grid) * cell + 1.5, cell - 3, cell - 3);
  }
  ctx.restore();
}

/** A small number in the cell's top-left corner, on white, so the image stays visible. */
function label(ctx: CanvasRenderingContext2D, text: string, x: number, y: number, cell: number, color: string): void {
  const size = Math.max(9, Math.min(12, Math.floor(cell / 5)));
  ctx.font = `bold ${size}px sans-serif`;
  const w = ctx.measureText(text).width + 4;
  ctx.fillStyle = 'rgba(255,255,255,0.7)';
  ctx.fillRect(x + 3, y + 3, w, size + 3);
  ctx.fillStyle = color;
  ctx.textAlign = 'left';
  ctx.textBaseline = 'top';
  ctx.fillText(text, x + 5, y + 4);
}

/** A grid heat map [grid²] (attention over the patch grid) over the image, oranges by share of the maximum. */
export function drawHeat(canvas: HTMLCanvasElement, grid: number, weights: ArrayLike<number>): void {
  const ctx = canvas.getContext('2d')!;
  const cell = canvas.width / grid;
  let max = 1e-12;
  for (let i = 0; i < weights.length; i++) max = Math.max(max, weights[i]);
  for (let t = 0; t < grid * grid; t++) {
    ctx.fillStyle = `rgba(230,85,13,${(0.85 * weights[t]) / max})`;
    ctx.fillRect((t % grid) * cell, Math.floor(t / grid) * cell, cell, cell);
  }
}

/** The raster token under a pointer event on a canvas showing a `grid` x `grid` token map. */
export function tokenAt(canvas: HTMLCanvasElement, ev: MouseEvent, grid: number): number | null {
  const r = canvas.getBoundingClientRect();
  const col = Math.floor(((ev.clientX - r.left) / r.width) * grid);
  const row = Math.floor(((ev.clientY - r.top) / r.height) * grid);
  return col >= 0 && row >= 0 && col < grid && row < grid ? row * grid + col : null;
}
