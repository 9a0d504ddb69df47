/**
 * The paper's ablation numbers (ImageNet 256, 240 epochs, FID-10k; lower is better), quoted exactly from
 * arXiv 2412.12095 Tables 2 and 3, so notebooks can print them beside the small-scale results.
 */

/** Evaluation AR-step counts of Tables 2 and 3(a). */
export const PAPER_S_EVAL = [1, 2, 4, 8] as const;

/** Table 2: rows S_train (fixed, or "random" = uniform S), columns S_eval 1/2/4/8. */
export const PAPER_TABLE2: Record<string, number[]> = {
  '1': [13.78, 356.69, 404.67, 390.18],
  '2': [16.69, 14.77, 47.49, 136.04],
  '4': [24.14, 15.37, 18.13, 33.14],
  '8': [54.08, 24.49, 22.66, 20.01],
  '256': [313.28, 321.62, 261.26, 192.25],
  random: [21.31, 22.17, 23.54, 25.05],
};

/** Table 3(a): AR-step decay gamma, columns S_eval 1/2/4/8. */
export const PAPER_TABLE3A: Record<string, number[]> = {
  '1.0': [21.31, 22.17, 23.54, 25.05],
  '0.95': [14.49, 17.78, 19.79, 23.93],
  '0.9': [12.89, 15.57, 18.83, 22.72],
  '0.85': [12.94, 15.54, 19.12, 23.46],
  '0.8': [12.78, 15.42, 19.38, 23.78],
};

/** Table 3(b): token order at gamma 0.9, S_eval 1. */
export const PAPER_TABLE3B: Record<string, number> = {
  raster: 14.46,
  'block-wise raster (8x8)': 14.76,
  'block-wise raster (4x4)': 14.62,
  dilated: 15.54,
  random: 12.89,
};

/** Table 3(c): AR loss weight max -> min (linear), columns S_eval 1/2/4. */
export const PAPER_TABLE3C: Record<string, number[]> = {
  '1 -> 1': [12.89, 15.57, 18.83],
  '1.5 -> 1': [12.61, 15.49, 18.32],
  '2 -> 1': [12.13, 15.15, 18.09],
  '2.5 -> 1': [12.32, 15.22, 17.99],
  '3 -> 1': [12.5, 15.28, 17.92],
};
