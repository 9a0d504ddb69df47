import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend, nativeGemmActive, parseBackendName, setNativeGemm } from '../src/backend';
import { submitBatchSize } from '../src/backend/adapter';
import { SUBMIT_BATCH_FLAG } from '../src/backend/wgsl/runner';
import { neededKeyTiles, ROWS_PER_GROUP, withBlockBounds } from '../src/backend/wgsl/attention';
import { getAttnRanges, splitIntegerExpDecay } from '../src/factorization';
import { Rng } from '../src/rng';
import { maxAbsDiff, useBackend } from './helpers';

test('backend names are validated; an unknown one is a clear error', async () => {
  assert.equal(parseBackendName(' WASM '), 'wasm');
  assert.throws(() => parseBackendName('gpu'), /unknown backend "gpu": use one of auto, tensorflow, webgpu, wasm, cpu/);
  await assert.rejects(
    initBackend({ backend: 'tensorflow', quiet: true }),
    /backend tensorflow is not available: .*tfjs-node/,
  );
});

test("CAUSALFUSION_SUBMIT_BATCH: unset keeps tfjs-webgpu's default, a whole number >= 1 is taken, anything else is a named error", async () => {
  assert.equal(submitBatchSize(undefined), null);
  assert.equal(submitBatchSize(''), null);
  assert.equal(submitBatchSize('64'), 64);
  for (const bad of ['0', '-3', '2.5', 'many'])
    assert.throws(() => submitBatchSize(bad), new RegExp(`CAUSALFUSION_SUBMIT_BATCH must be .* got "${bad}"`));
  // the flag it sets is one tfjs-webgpu reads (a renamed flag would leave the variable without effect)
  await useBackend('webgpu');
  assert.equal(typeof tf.env().getNumber(SUBMIT_BATCH_FLAG), 'number');
});

test('auto picks the fastest available backend and reports why the others were skipped', async () => {
  const r = await initBackend({ quiet: true });
  assert.equal(r.chosen, tf.getBackend());
  assert.match(r.line, /^\[causalfusion\] backend \w+ \(auto; /);
  for (const s of r.skipped) assert.ok(s.why.length > 0);
  if (r.chosen === 'wasm')
    assert.deepEqual(
      r.skipped.map((s) => s.name),
      ['tensorflow', 'webgpu'],
    );
});

/** Runs `f` on cpu and on wasm (both matmul paths) and returns the flat results. */
async function onEveryPath(f: () => tf.Tensor | tf.Tensor[]): Promise<number[][][]> {
  const out: number[][][] = [];
  for (const [b, g] of [
    ['cpu', false],
    ['wasm', false],
    ['wasm', true],
  ] as const) {
    await useBackend(b, g);
    const r = tf.tidy(() => [f()].flat().map((t) => Array.from(t.dataSync())));
    out.push(r);
  }
  return out;
}

test('patched wasm kernels agree with cpu: gather (batchDims) and its gradient, slices, splits, unstack, cast', async () => {
  const x = Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 0.5 - 3);
  const idx = [
    [2, 0, 1],
    [1, 2, 0],
  ];
  const [cpu, ...wasm] = await onEveryPath(() => {
    const t = tf.tensor3d(x, [2, 3, 4]);
    const i = tf.tensor2d(idx, [2, 3], 'int32');
    const g = tf.grad((a: tf.Tensor) =>
      tf.sum(tf.mul(tf.gather(a, tf.tensor1d([2, 0, 2], 'int32'), 1), tf.range(0, 24).reshape([2, 3, 4]))),
    );
    return [
      tf.gather(t, i, 1, 1),
      tf.gather(t, tf.tensor1d([1, 1, 0], 'int32'), 2),
      g(t),
      tf.slice(t, [1, 1, 1], [1, 2, 2]),
      ...tf.split(t, [1, 3], 2),
      ...tf.unstack(t, 1),
      tf.cast(tf.tensor1d([1.7, -1.7, 0]), 'int32'),
      tf.cast(t, 'float32'),
    ];
  });
  for (const w of wasm) {
    assert.equal(w.length, cpu.length);
    w.forEach((v, k) => assert.deepEqual(v, cpu[k], `output ${k}`));
  }
  // batch 1 picks rows [1, 2, 0] of its own slice (tfjs#8658 made wasm read the wrong indices)
  assert.deepEqual(cpu[0].slice(12, 16), [5, 5.5, 6, 6.5]); // x[1, idx[1][0] = 1, :]
});

test('matmul paths agree: native GEMM vs XNNPACK vs cpu, with transposes and batches', async () => {
  const a = Array.from({ length: 3 * 5 * 4 }, (_, i) => Math.sin(i));
  const b = Array.from({ length: 3 * 4 * 6 }, (_, i) => Math.cos(i));
  const [cpu, ...wasm] = await onEveryPath(() => {
    const A = tf.tensor3d(a, [3, 5, 4]);
    const B = tf.tensor3d(b, [3, 4, 6]);
    const A2 = tf.reshape(A, [15, 4]) as tf.Tensor2D;
    return [
      tf.matMul(A, B),
      tf.matMul(tf.transpose(A, [0, 2, 1]), B, true, false),
      tf.matMul(A, tf.transpose(B, [0, 2, 1]), false, true),
      tf.matMul(A2, tf.reshape(B, [12, 6]).slice([0, 0], [4, 6]) as tf.Tensor2D),
      tf.matMul(A, tf.reshape(tf.slice(B, [0, 0, 0], [1, 4, 6]), [4, 6]).expandDims(0)),
    ];
  });
  for (const w of wasm) w.forEach((v, k) => assert.ok(maxAbsDiff(v, cpu[k]) < 1e-5, `product ${k}`));
});

test('native GEMM can be switched off and on at run time', async () => {
  await useBackend('wasm', true);
  const desc = setNativeGemm(true);
  if (!nativeGemmActive()) assert.match(desc, /native GEMM unavailable: nblas/);
  setNativeGemm(false);
  assert.equal(nativeGemmActive(), false);
});

test("the webgpu buffer pool allocates in size classes and is freed only once it outgrows a step's peak (sizes change with every AR split)", () => {
  const { bucketBufferPool, bucketSize, poolCounters, trimBufferPool } =
    require('../src/backend/webgpu-pool') as typeof import('../src/backend/webgpu-pool');
  const MB = 1 << 20;
  // size classes: 256-byte steps up to 4 KiB, then eight per octave, never smaller than asked, at most 12.5 % larger
  assert.deepEqual(
    [1, 256, 257, 4096, 4097, 5000, 8192, 8193].map(bucketSize),
    [256, 256, 512, 4096, 4608, 5120, 8192, 9216],
  );
  for (const n of [4097, 123457, 7424 * 384 * 4, 3 * MB + 4])
    assert.ok(bucketSize(n) >= n && bucketSize(n) <= n * 1.125, `${n}`);
  const destroyed: number[] = [];
  const buf = (size: number) => ({ size, usage: 128, destroy: () => void destroyed.push(size) });
  const pool = {
    freeBuffers: new Map<string, ReturnType<typeof buf>[]>(),
    numFreeBuffers: 0,
    numBytesUsed: 100 * MB,
    numBytesAllocated: 100 * MB,
    acquireBuffer(size: number, usage: number) {
      const free = this.freeBuffers.get(`${size}_${usage}`)?.pop();
      if (free) return free;
      this.numBytesUsed += size;
      this.numBytesAllocated += size;
      return buf(size);
    },
  };
  bucketBufferPool(pool, 128);
  assert.equal(pool.acquireBuffer(5000, 128).size, 5120, 'storage buffers come in size classes');
  assert.equal(pool.acquireBuffer(5000, 1).size, 5000, 'other buffers keep their size');
  // an idle buffer of a larger class (up to twice) serves the request; beyond twice, a new one is made
  pool.freeBuffers.set('9216_128', [buf(9216)]);
  assert.equal(pool.acquireBuffer(4200, 128).size, 9216);
  pool.freeBuffers.set('10240_128', [buf(10240)]);
  assert.equal(pool.acquireBuffer(4200, 128).size, 4608);
  pool.freeBuffers.clear();
  // a step used 1000 MB at its peak and released it: that much stays pooled for the next step
  pool.numBytesUsed += 1000 * MB;
  pool.acquireBuffer(0, 1);
  pool.numBytesUsed -= 1000 * MB;
  pool.freeBuffers.set('a', [buf(600 * MB), buf(400 * MB)]);
  pool.numFreeBuffers = 2;
  pool.numBytesAllocated += 1000 * MB;
  trimBufferPool(pool);
  assert.equal(destroyed.length, 0);
  // the pool grew to 1.8 GB of idle buffers, more than 1.5x the peak's 1000 MB (+256 MB): freed
  pool.freeBuffers.get('a')!.push(buf(800 * MB));
  pool.numBytesAllocated += 800 * MB;
  trimBufferPool(pool);
  assert.deepEqual(
    destroyed.sort((x, y) => x - y),
    [400 * MB, 600 * MB, 800 * MB],
  );
  assert.equal(pool.numFreeBuffers, 0);
  assert.equal(pool.numBytesAllocated, pool.numBytesUsed);
  // its counters: the two storage buffers it had to create (not the other usage, not the reused one), one trim
  assert.deepEqual(poolCounters(pool), { created: 2, createdBytes: 5120 + 4608, trims: 1 });
});

test('flash attention tile skipping: every visible (query, key) pair lies in a tile its workgroup loads, and a typical step layout skips over a quarter of the tiles', () => {
  const G = ROWS_PER_GROUP;
  const rng = new Rng(4);
  let loaded = 0;
  let total = 0;
  for (let trial = 0; trial < 60; trial++) {
    const L = [16, 49, 64][trial % 3];
    const cond = [1, 4][trial % 2];
    const ranges = getAttnRanges(L, cond, splitIntegerExpDecay(L, 0.9, rng).splitSizes);
    const rows = ranges.length / 3;
    for (const tile of [8, 16]) {
      const bounds = withBlockBounds(ranges, tile);
      // the forward and dq kernels: a workgroup of G query rows = G / tile blocks
      for (let first = 0; first * tile < rows; first += G / tile) {
        const tiles = new Set(neededKeyTiles(bounds, rows, rows, tile, first, G / tile));
        for (let i = first * tile; i < Math.min(rows, (first + G / tile) * tile); i++) {
          const [a, b, c] = ranges.subarray(3 * i, 3 * i + 3);
          for (let j = 0; j < rows; j++) {
            if (j < a || (j >= b && j < c))
              assert.ok(tiles.has(j - (j % tile)), `L ${L}: row ${i} sees key ${j} in a skipped tile`);
          }
        }
        if (L === 64 && tile === 16) {
          loaded += tiles.size;
          total += Math.ceil(rows / tile);
        }
      }
    }
  }
  assert.ok(loaded / total < 0.75, `loaded ${loaded} of ${total} key tiles`);
});
