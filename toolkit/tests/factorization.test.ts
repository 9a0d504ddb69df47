import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/rng';
import {
  arStepCountProbs,
  arStepStats,
  blockRasterOrder,
  describeSequence,
  dilatedOrder,
  fromSizes,
  getArWeights,
  getAttnMask,
  invertMask,
  makeOrder,
  rasterOrder,
  getAttnRanges,
  splitEqual,
  splitIntegerExpDecay,
  splitIntegerRandom,
  validateOrder,
  inverseOrder,
  additiveMask,
} from '../src/factorization';
import { maxAbsDiff, reference } from './helpers';

test("the paper's Fig. 7 mask (steps of 2, 2, 3 tokens, 1 cond token), as printed in paper-notes §1.4", () => {
  const fig7 = [
    '.XXXXXXXXXXX',
    '...XXXXXXXXX',
    '...XXXXXXXXX',
    '.....XXXXXXX',
    '.....XXXXXXX',
    '.XXXX..XXXXX',
    '.XXXX..XXXXX',
    '...XXXX..XXX',
    '...XXXX..XXX',
    '.....XXXX...',
    '.....XXXX...',
    '.....XXXX...',
  ];
  const m = getAttnMask(7, 1, [2, 2, 3]);
  assert.equal(m.seqLen, 12);
  const rows = Array.from({ length: 12 }, (_, r) =>
    Array.from(m.maskedOut.subarray(r * 12, r * 12 + 12), (v) => (v ? 'X' : '.')).join(''),
  );
  assert.deepEqual(rows, fig7);
  const inv = invertMask(m);
  assert.ok(inv.maskedOut.every((v, i) => v === 1 - m.maskedOut[i]));
  const add = additiveMask(m);
  assert.equal(add[1], -Infinity);
  assert.equal(add[0], 0);
});

test('masks equal the official get_attn_mask exactly (fixture)', () => {
  for (const ref of reference().masks) {
    const m = getAttnMask(ref.sample_len, ref.cond_len, ref.split_sizes);
    assert.equal(m.seqLen, ref.masked_out.length);
    assert.deepEqual(Array.from(m.maskedOut), ref.masked_out.flat(), `split [${ref.split_sizes}]`);
  }
});

/** The mask that `getAttnRanges` describes, expanded to rows x keys (1 = masked out). */
function expandRanges(ranges: Int32Array, keys: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < ranges.length / 3; r++) {
    const [a, b, c] = ranges.subarray(3 * r, 3 * r + 3);
    for (let j = 0; j < keys; j++) out.push(j < a || (j >= b && j < c) ? 0 : 1);
  }
  return out;
}

test('getAttnRanges describes exactly the mask of get_attn_mask (fixture splits and 300 random ones)', () => {
  for (const ref of reference().masks) {
    const seq = ref.masked_out.length;
    assert.deepEqual(
      expandRanges(getAttnRanges(ref.sample_len, ref.cond_len, ref.split_sizes), seq),
      ref.masked_out.flat(),
    );
  }
  const rng = new Rng(11);
  for (let trial = 0; trial < 300; trial++) {
    const L = [1, 16, 49, 64][trial % 4];
    const cond = trial % 5;
    const { splitSizes } = splitIntegerExpDecay(L, 0.9, rng);
    const m = getAttnMask(L, cond, splitSizes);
    assert.deepEqual(
      expandRanges(getAttnRanges(L, cond, splitSizes), m.seqLen),
      Array.from(m.maskedOut),
      `L ${L}, cond ${cond}, split [${splitSizes}]`,
    );
  }
});

test('S = 1 is plain in-context diffusion: everything sees everything', () => {
  const m = getAttnMask(16, 4, [16]);
  assert.equal(m.seqLen, 20);
  // cond rows see only cond; noisy rows see all
  for (let r = 4; r < 20; r++) for (let c = 0; c < 20; c++) assert.equal(m.maskedOut[r * 20 + c], 0);
});

test('AR weights equal get_ar_weights exactly, linear and cosine (fixture)', () => {
  for (const ref of reference().ar_weights) {
    const w = getArWeights(ref.split_sizes, ref.max, ref.min, ref.schedule);
    const want = typeof ref.weights === 'number' ? new Array(w.length).fill(ref.weights) : ref.weights;
    assert.deepEqual(Array.from(w), want, `${ref.schedule} [${ref.split_sizes}]`);
  }
  assert.deepEqual(Array.from(getArWeights([3, 1], 1, 1)), [1, 1, 1, 1]);
  assert.throws(() => getArWeights([2, 2], 1, 2), /must be >=/);
  assert.throws(() => getArWeights([2, 2], 2, 1, 'exp' as 'linear'), /unknown AR weight schedule/);
});

test('AR-step-count law matches the official probabilities to 1e-12 (fixture)', () => {
  for (const ref of reference().ar_step_count_probs) {
    assert.ok(maxAbsDiff(arStepCountProbs(ref.L, ref.decay), ref.p_num_steps) <= 1e-12);
  }
  const u = arStepCountProbs(8, 1);
  assert.ok(u.every((p) => p === 1 / 8));
  assert.throws(() => arStepCountProbs(8, 1.5), /decay/);
});

test("splitIntegerExpDecay reproduces the notes' statistics (L = 256, gamma 0.9: E[S] ~ 10.0, P(S=1) ~ 0.10)", () => {
  const rng = new Rng(11);
  let sumS = 0;
  let ones = 0;
  const draws = 20000;
  for (let i = 0; i < draws; i++) {
    const s = splitIntegerExpDecay(256, 0.9, rng);
    assert.equal(s.cumsum[s.cumsum.length - 1], 256);
    sumS += s.splitSizes.length;
    if (s.splitSizes.length === 1) ones++;
  }
  assert.ok(Math.abs(sumS / draws - 10.0) < 0.25, `E[S] = ${sumS / draws}`);
  assert.ok(Math.abs(ones / draws - 0.1) < 0.01, `P(S=1) = ${ones / draws}`);
  // uniform law: E[S] = (L + 1) / 2
  let su = 0;
  for (let i = 0; i < 4000; i++) su += splitIntegerExpDecay(64, 1, rng).splitSizes.length;
  assert.ok(Math.abs(su / 4000 - 32.5) < 1);
});

test('splitIntegerRandom cuts L tokens into exactly the asked number of steps', () => {
  const s = splitIntegerRandom(10, 4, new Rng(2));
  assert.equal(s.splitSizes.length, 4);
  assert.equal(
    s.splitSizes.reduce((a, b) => a + b),
    10,
  );
});

test('splitEqual gives the remainder to the first steps; fromSizes builds the cumsum', () => {
  assert.deepEqual(splitEqual(10, 4).splitSizes, [3, 3, 2, 2]);
  assert.deepEqual(fromSizes([2, 3], 5).cumsum, [0, 2, 5]);
});

test('bad splits name the problem', () => {
  assert.throws(() => fromSizes([2, 2], 5), /sum to 4, but the image has L = 5 tokens/);
  assert.throws(() => fromSizes([2, 0, 3], 5), /positive integers/);
  assert.throws(() => splitIntegerRandom(4, 5, new Rng(2)), /number of AR steps/);
  assert.throws(() => getAttnMask(5, 1, [1, 1]), /sum to 2/);
});

test('raster, block-raster and dilated orders visit the grid as drawn in the notes', () => {
  assert.deepEqual(rasterOrder(4), [0, 1, 2, 3]);
  assert.deepEqual(blockRasterOrder(4, 2), [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]);
  assert.deepEqual(dilatedOrder(4, 2), [0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15]);
});

test('a random order is a permutation, and inverseOrder inverts it', () => {
  const r = makeOrder('random', 4, new Rng(3));
  assert.deepEqual(
    validateOrder(r, 16).sort((a, b) => a - b),
    rasterOrder(16),
  );
  const inv = inverseOrder(r);
  r.forEach((v, i) => assert.equal(inv[v], i));
});

test('bad orders name the problem', () => {
  assert.throws(() => validateOrder([0, 1, 1, 2], 4), /repeats token 1/);
  assert.throws(() => validateOrder([0, 1], 4), /expected L = 4/);
  assert.throws(() => blockRasterOrder(4, 3), /divisor/);
  assert.throws(() => makeOrder('spiral' as 'raster', 4, new Rng(1)), /unknown token order/);
});

test('describeSequence labels every position with role, step and raster token', () => {
  const split = fromSizes([2, 3], 5);
  const seq = describeSequence(5, 2, split, [4, 3, 2, 1, 0]);
  assert.equal(seq.length, getAttnMask(5, 2, [2, 3]).seqLen);
  assert.deepEqual(
    seq.slice(0, 4).map((p) => p.role),
    ['cond', 'cond', 'clean', 'clean'],
  );
  assert.deepEqual(seq[2], { role: 'clean', step: 0, token: 4 });
  assert.deepEqual(seq[seq.length - 1], { role: 'noisy', step: 1, token: 0 });
});

test('arStepStats (Fig. 4b): the Monte Carlo law of S agrees with the exact one, and both shares end at 1', () => {
  const L = 16;
  const st = arStepStats(L, 0.9, { draws: 20000 });
  const exact = arStepCountProbs(L, 0.9);
  for (let s = 1; s <= L; s++) {
    const sd = Math.sqrt((exact[s - 1] * (1 - exact[s - 1])) / st.draws);
    assert.ok(Math.abs(st.pS[s] - exact[s - 1]) <= 4 * sd + 1e-9, `P(S = ${s}): ${st.pS[s]} vs ${exact[s - 1]}`);
  }
  assert.ok(Math.abs(st.stepShare[L] - 1) < 1e-12 && Math.abs(st.tokenShare[L] - 1) < 1e-12);
  for (let k = 1; k <= L; k++) assert.ok(st.tokenShare[k] <= st.stepShare[k] + 1e-12, `k = ${k}`);
});
