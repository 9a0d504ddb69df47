/**
 * Zero-shot editing (paper §4.4, Fig. 8): the tokens to keep go into the clean context, the rest is generated
 * by the AR x diffusion sampler, with the image's own class or a new one. No retraining: the model learned
 * to complete any visible subset because training shows it random subsets in random orders.
 */
import { CausalDiffusionModel } from '../model/causalfusion';
import { CausalFusionConfig } from '../model/config';
import { sampleImages, SampleOptions, SampleResult } from './sampler';

/** Named edits: which region is regenerated. */
export type EditMode = 'inpaint' | 'outpaint' | 'top' | 'bottom' | 'left' | 'right';

export const EDIT_MODES: readonly EditMode[] = ['inpaint', 'outpaint', 'top', 'bottom', 'left', 'right'];

/**
 * keep[raster index] that regenerates exactly `tokens` (raster indices) of an L-token image and keeps the rest.
 * Out-of-range, repeated or all-token lists are refused: each would edit something else than was asked for.
 */
export function keepAllBut(tokens: readonly number[], L: number): boolean[] {
  const keep = new Array<boolean>(L).fill(true);
  for (const i of tokens) {
    if (!Number.isInteger(i) || i < 0 || i >= L)
      throw new Error(`token ${i} is outside the ${L} tokens of this model (0..${L - 1})`);
    if (!keep[i]) throw new Error(`token ${i} is listed twice`);
    keep[i] = false;
  }
  if (tokens.length === 0) throw new Error('no token to regenerate');
  return keep;
}

/**
 * keep[raster index] for a named edit on a grid x grid token map: 'inpaint' regenerates the centre
 * (half the side), 'outpaint' everything but the centre, 'top' / 'bottom' / 'left' / 'right' that half.
 */
export function editMask(mode: EditMode, grid: number): boolean[] {
  if (!Number.isInteger(grid) || grid < 2) throw new Error(`edit grid must be an integer >= 2, got ${grid}`);
  const lo = Math.floor(grid / 4);
  const hi = grid - lo;
  const half = Math.floor(grid / 2);
  const regenerate = (r: number, c: number): boolean => {
    switch (mode) {
      case 'inpaint':
        return r >= lo && r < hi && c >= lo && c < hi;
      case 'outpaint':
        return !(r >= lo && r < hi && c >= lo && c < hi);
      case 'top':
        return r < half;
      case 'bottom':
        return r >= half;
      case 'left':
        return c < half;
      case 'right':
        return c >= half;
      default:
        throw new Error(`unknown edit mode "${mode as string}" (use ${EDIT_MODES.join(', ')})`);
    }
  };
  return Array.from({ length: grid * grid }, (_, i) => !regenerate(Math.floor(i / grid), i % grid));
}

/** Pixel mask [H, W] (1 = kept) of a token mask, to draw the masked input. */
export function keepToPixels(keep: readonly boolean[], grid: number, patch: number): Uint8Array {
  const side = grid * patch;
  const out = new Uint8Array(side * side);
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++)
      out[y * side + x] = keep[Math.floor(y / patch) * grid + Math.floor(x / patch)] ? 1 : 0;
  return out;
}

/**
 * Edits images [N, C, H, W] (model range): keeps the tokens where `keep` (or the named mode) says so and
 * generates the others for `labels` (the images' own classes, or new ones for a class swap).
 */
export function editImages(
  model: CausalDiffusionModel,
  images: Float32Array,
  labels: readonly number[],
  region: EditMode | readonly boolean[],
  opts: Omit<SampleOptions, 'labels' | 'context'> = {},
): SampleResult {
  const grid = model.config.inputSize / model.config.patchSize;
  const keep = typeof region === 'string' ? editMask(region, grid) : region;
  return sampleImages(model, { ...opts, labels, context: { images, keep } });
}

/**
 * What the model was given of each image [N, C, H, W]: the kept tokens' pixels, the regenerated region set to 0
 * (mid-grey in the model's [-1, 1] range), for the "kept" row of an edit figure.
 */
export function keptPixels(images: Float32Array, keep: readonly boolean[], config: CausalFusionConfig): Float32Array {
  const side = config.inputSize;
  const pix = keepToPixels(keep, side / config.patchSize, config.patchSize);
  return images.map((x, i) => (pix[i % (side * side)] ? x : 0));
}
