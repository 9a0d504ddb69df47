/**
 * A synthetic attention record: random weights where the mask allows attention, 0 where it does not. It sizes and
 * stress-tests the attention views at any scale without a model (the chart bench and the chart tests).
 */
import { AttnMask, SequencePosition } from '../factorization/mask';
import { Rng } from '../rng';
import { AttentionRecord } from './recorders';

/** One layer of `heads` heads over the full sequence of `mask` (queries = keys = `positions`), seeded. */
export function randomAttentionRecord(
  mask: AttnMask,
  positions: SequencePosition[],
  heads: number,
  seed = 1,
): AttentionRecord {
  const n = mask.seqLen;
  const rng = new Rng(seed);
  const data = new Array<number>(heads * n * n);
  for (let i = 0; i < data.length; i++) data[i] = mask.maskedOut[i % (n * n)] ? 0 : rng.random() / n;
  return {
    arStep: -1,
    diffusionStep: -1,
    t: 0,
    layer: 0,
    sample: 0,
    unconditional: false,
    heads: Array.from({ length: heads }, (_, h) => h),
    shape: [heads, n, n],
    data,
    queries: positions,
    keys: positions,
  };
}
