/**
 * Pictures of the denoising, from a sampler's recorded trajectories: the AR step x diffusion step grid of
 * predicted x0 images of one sample, what `denoisingGridChart` draws.
 */
import { TrajectoryRecord } from './recorders';
import { unpatchify } from '../model/patchify';

/** A grid of single-channel images [size x size] (null: nothing recorded there) with row and column labels. */
export interface DenoisingFrames {
  size: number;
  rows: string[];
  cols: string[];
  cells: (Float32Array | null)[];
}

/**
 * Row s shows the whole image while AR step s is denoised: earlier steps' tokens final, this step's tokens the
 * current x0 prediction, later steps blank (white). `records` are `SamplingRecorder.trajectories`; `finalTokens`
 * the sampler's output tokens of that sample in raster order [L * d]; `columns` picks diffusion-step indices
 * (default: 6 evenly spaced), `arSteps` the rows (default all: e.g. `[2]` with every column is the full
 * denoising of AR step 3).
 */
export function denoisingFrames(
  records: readonly TrajectoryRecord[],
  finalTokens: Float32Array,
  cfg: { channels: number; size: number; patch: number },
  opts: { sample?: number; columns?: number[]; arSteps?: number[] } = {},
): DenoisingFrames {
  const sample = opts.sample ?? 0;
  const own = records.filter((r) => r.sample === sample);
  if (!own.length) throw new Error(`no trajectories recorded for sample ${sample}`);
  const steps = [...new Set(own.map((r) => r.arStep))].sort((a, b) => a - b);
  const chainLen = Math.max(...own.map((r) => r.diffusionStep)) + 1;
  const columns = opts.columns ?? [
    ...new Set(Array.from({ length: 6 }, (_, k) => Math.round((k * (chainLen - 1)) / 5))),
  ];
  const { channels: C, size, patch } = cfg;
  const d = C * patch * patch;
  const L = finalTokens.length / d;
  const done = new Uint8Array(L);
  const cells: (Float32Array | null)[] = [];
  const rows = steps.filter((s) => !opts.arSteps || opts.arSteps.includes(s));
  if (!rows.length)
    throw new Error(
      `no trajectories of AR steps ${opts.arSteps?.join(', ')} were recorded (recorded: ${steps.join(', ')})`,
    );
  for (const s of steps) {
    const mine = own.filter((r) => r.arStep === s);
    // earlier steps still complete the image of later rows, even when their own row is not drawn
    for (const col of rows.includes(s) ? columns : []) {
      const r = mine.find((x) => x.diffusionStep === col);
      if (!r) {
        cells.push(null);
        continue;
      }
      const tokens = new Float32Array(L * d).fill(1);
      for (let i = 0; i < L; i++) if (done[i]) tokens.set(finalTokens.subarray(i * d, (i + 1) * d), i * d);
      r.positions.forEach((p, k) => tokens.set(r.x0.slice(k * d, (k + 1) * d), p * d));
      cells.push(unpatchify(tokens, 1, C, size, size, patch).subarray(0, size * size));
    }
    mine[0]?.positions.forEach((p) => (done[p] = 1));
  }
  const t = (col: number) => own.find((r) => r.diffusionStep === col)?.t;
  return {
    size,
    rows: rows.map((s) => `AR step ${s + 1}`),
    cols: columns.map((c) => `step ${c} (t=${t(c)})`),
    cells,
  };
}
