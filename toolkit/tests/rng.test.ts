import { test } from 'node:test';
import assert from 'node:assert/strict';
import { counterNormals, lowbias32, Rng } from '../src/rng';

test('same seed, same stream; different seeds differ', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const sa = Array.from({ length: 20 }, () => a.nextU32());
  assert.deepEqual(
    sa,
    Array.from({ length: 20 }, () => b.nextU32()),
  );
  assert.notDeepEqual(
    sa,
    Array.from({ length: 20 }, () => c.nextU32()),
  );
});

test('state round-trips: a restored generator continues the same stream', () => {
  const a = new Rng(7);
  for (let i = 0; i < 5; i++) a.random();
  const st = a.getState();
  const next = [a.random(), a.normal(), a.randint(0, 9)];
  const b = new Rng(st);
  assert.deepEqual([b.random(), b.normal(), b.randint(0, 9)], next);
  assert.throws(() => new Rng([0, 0, 0, 0]), /all zeros/);
  assert.throws(() => a.setState([1, 2, 3] as unknown as [number, number, number, number]), /four unsigned/);
});

test('distributions: uniform mean, normal moments, randint range, permutation, sample without replacement', () => {
  const r = new Rng(1);
  const n = 200000;
  let su = 0;
  for (let i = 0; i < n; i++) su += r.random();
  assert.ok(Math.abs(su / n - 0.5) < 0.005);
  const z = r.normalArray(n);
  const mean = z.reduce((a, b) => a + b, 0) / n;
  const v = z.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
  assert.ok(Math.abs(mean) < 0.01 && Math.abs(v - 1) < 0.02, `mean ${mean} var ${v}`);
  for (let i = 0; i < 1000; i++) {
    const k = r.randint(3, 5);
    assert.ok(k >= 3 && k <= 5 && Number.isInteger(k));
  }
  assert.deepEqual(
    r.permutation(50).sort((a, b) => a - b),
    Array.from({ length: 50 }, (_, i) => i),
  );
  const s = r.sample([1, 2, 3, 4, 5, 6], 4);
  assert.equal(new Set(s).size, 4);
  assert.throws(() => r.sample([1, 2], 3), /outside/);
});

test('fork gives an independent stream without advancing the parent', () => {
  const a = new Rng(9);
  const st = a.getState();
  const f1 = a.fork('noise');
  const f2 = a.fork('order');
  assert.deepEqual(a.getState(), st);
  assert.notEqual(f1.nextU32(), f2.nextU32());
  assert.equal(new Rng(9).fork('noise').nextU32(), new Rng(9).fork('noise').nextU32());
});

test('counter-based normals: a function of (key, index) alone, standard normal moments and tails, streams and neighbours uncorrelated', () => {
  const n = 200000;
  const z = counterNormals([12345, 678], n);
  assert.deepEqual(counterNormals([12345, 678], 1000), z.subarray(0, 1000), 'a prefix is the same stream');
  const mean = z.reduce((a, b) => a + b, 0) / n;
  const v = z.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
  assert.ok(Math.abs(mean) < 0.01 && Math.abs(v - 1) < 0.02, `mean ${mean} var ${v}`);
  const within = (k: number) => z.filter((x) => Math.abs(x) < k).length / n;
  assert.ok(Math.abs(within(1) - 0.6827) < 0.005 && Math.abs(within(2) - 0.9545) < 0.003, 'Gaussian tails');
  assert.ok(Math.abs(within(1.959964) - 0.95) < 0.002 && Math.abs(within(3.290527) - 0.999) < 2e-4, 'quantiles');
  assert.ok(z.every(Number.isFinite));
  const corr = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i], 0) / a.length;
  assert.ok(Math.abs(corr(z.subarray(0, n - 1), z.subarray(1))) < 0.01, 'neighbours correlated');
  for (const other of [counterNormals([12346, 678], n), counterNormals([12345, 679], n)])
    assert.ok(Math.abs(corr(z, other)) < 0.01, 'streams of neighbouring keys correlated');
  // the hash is a bijection of u32 (spot check: distinct inputs, distinct outputs) and ends in u32 range
  const seen = new Set(Array.from({ length: 1 << 16 }, (_, i) => lowbias32(i * 65537)));
  assert.equal(seen.size, 1 << 16);
  assert.ok(lowbias32(0xffffffff) >= 0 && lowbias32(0xffffffff) <= 0xffffffff);
});
