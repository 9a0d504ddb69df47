/**
 * AR loss weights (`get_ar_weights` of the official `train.py`): tokens of a step that starts after x of the
 * L tokens are already visible get a weight that falls from `max` (nothing visible) towards `min`.
 */
import { fromSizes } from './steps';

export type ArWeightSchedule = 'linear' | 'cosine';

/** Per-token weights in shuffled order, rounded to float32 exactly like `torch.tensor(weights)`. */
export function getArWeights(
  splitSizes: readonly number[],
  maxWeight = 2.0,
  minWeight = 1.0,
  schedule: ArWeightSchedule = 'linear',
): Float32Array {
  if (!(maxWeight >= minWeight)) throw new Error(`max AR weight ${maxWeight} must be >= min AR weight ${minWeight}`);
  if (schedule !== 'linear' && schedule !== 'cosine') {
    throw new Error(`unknown AR weight schedule "${schedule}" (use "linear" or "cosine")`);
  }
  const L = splitSizes.reduce((a, b) => a + b, 0);
  const { cumsum } = fromSizes(splitSizes, L);
  const out = new Float32Array(L);
  if (maxWeight === minWeight) return out.fill(minWeight);
  splitSizes.forEach((size, i) => {
    const x = cumsum[i];
    const w =
      schedule === 'cosine'
        ? (Math.cos((Math.PI / L) * x) * (maxWeight - minWeight)) / 2 + (maxWeight + minWeight) / 2
        : maxWeight - ((maxWeight - minWeight) / L) * x;
    out.fill(w, x, x + size);
  });
  return out;
}
