/**
 * What only the WGSL kernels have: uniform-buffer and bind-group reuse, the tensor-core (fp16 subgroup
 * matrix) matmul, and the fused sampling kernels' linear layer. Their results against tfjs are in fused-kernels.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { backendReport } from '../src/backend';
import { layerNorm } from '../src/model/ops';
import { bindGroupReuses, cachedUniforms, WgslKernel } from '../src/backend/wgsl/runner';
import { sampleImages } from '../src/sample/sampler';
import type { WebGPUBackendLike } from '../src/backend/webgpu';
import {
  lossScaleFor,
  emulateTensorCoreMatmul,
  MATMUL_TILES,
  matmulTile,
  selfTest,
  tensorCoresAvailable,
  splitsFor,
  tileFor,
  withMatmulPrecision,
} from '../src/backend/wgsl/matmul';
import { CausalDiffusionModel } from '../src/model/causalfusion';
import { makeConfig } from '../src/model/config';
import { Trainer } from '../src/train/trainer';
import { forceLinearPlan, linearEpilogue, linearInto, linearPlan } from '../src/backend/wgsl/inference';
import { FusedInference } from '../src/model/gpu-inference';
import { cachedAttentionInto, cachedAttentionVariant, rowsPerGroup } from '../src/backend/wgsl/cached-attention';
import { fusedQkvPart, headMajor, selfAttentionShape, tokenMajor } from '../src/backend/kernels';
import {
  ATTENTION_TOLERANCE,
  installTensorCoreAttention,
  tensorCoreAttention,
  tensorCoreAttentionErrors,
} from '../src/backend/wgsl/tc-attention';
import { getAttnRanges, sequenceLength } from '../src/factorization/mask';
import { asTensor, emptyTensor } from '../src/backend/wgsl/runner';
import { createDiffusion } from '../src/diffusion';
import { syntheticDataset, useBackend, valueAndGrads } from './helpers';

test('WGSL kernels reuse uniform buffers (a repeated LayerNorm adds none) and, while sampling, bind groups', async () => {
  await useBackend('webgpu');
  const gpu = tf.backend() as unknown as WebGPUBackendLike;
  const [x, w, b, dy] = [tf.randomNormal([5, 3, 48]), tf.ones([48]), tf.zeros([48]), tf.randomNormal([5, 3, 48])];
  const once = () => valueAndGrads((xs, ws, bs) => layerNorm(xs, ws, bs), [x, w, b], dy);
  const first = once();
  const cached = cachedUniforms(gpu);
  const again = once();
  assert.equal(cachedUniforms(gpu), cached);
  first.forEach((f, i) => assert.deepEqual(again[i], f));
  tf.dispose([x, w, b, dy]);
  // every diffusion step of a sampler repeats the same kernels on buffers the pool hands out again
  const model = new CausalDiffusionModel(makeConfig('tiny'), { seed: 1 });
  const sample = () => sampleImages(model, { labels: [1, 2], diffusionSteps: 10, arSteps: 2, seed: 1 });
  sample(); // a first run fills the buffer pool
  let dispatches = 0;
  const dispatch = WgslKernel.prototype.dispatch;
  WgslKernel.prototype.dispatch = function (...args) {
    dispatches++;
    return dispatch.apply(this, args);
  };
  const reused = bindGroupReuses();
  try {
    sample();
  } finally {
    WgslKernel.prototype.dispatch = dispatch;
    model.dispose();
  }
  assert.ok(
    bindGroupReuses() - reused > 0.1 * dispatches,
    `${bindGroupReuses() - reused} of ${dispatches} dispatches reused a bind group`,
  );
});

// Tensor cores exist only on real GPUs (lavapipe has no subgroup matrices): there these run, here they say why not.
const noTensorCores = () => `no fp16 subgroup matrices on this adapter (${backendReport()?.detail})`;

test('tensor-core matmul: within 2^-10 (|A||B|) of the exact product on model shapes, every transpose, batched, on every block shape', async (t) => {
  await useBackend('webgpu');
  if (!tensorCoresAvailable()) return t.skip(noTensorCores());
  const cases: [number, number, number, boolean, boolean, number][] = [
    [264, 1152, 384, false, true, 1], // x·Wᵀ (qkv)
    [264, 384, 1536, false, false, 1], // dy·W (fc2 backward)
    [384, 96, 264, true, false, 1], // dyᵀ·x (weight gradient)
    [132, 132, 64, false, true, 6], // batched q·kᵀ
  ];
  for (const tile of MATMUL_TILES) {
    const worst = await selfTest(tile, cases);
    assert.ok(worst <= 1, `${tile.name}: error is ${worst} x the fp16 bound`);
  }
});

/**
 * A subgroup-matrix kernel's WGSL with each matrix emulated by every thread of its subgroup: a matrix is a
 * private array<f32, 256>, a load reads all 256 elements (row- or column-major), a multiply-accumulate is the
 * 16x16x16 product in f32 and a store writes all 256 (each thread the same values). So an adapter with fp16
 * but without subgroup matrices runs the real kernels' staging, edges, transposes, split K and (attention) the
 * score tiles' round trip through workgroup memory.
 */
function emulateMatrices(wgsl: string): string {
  const bound = wgsl.includes('struct U { M:') ? 'M' : 'H'; // a uniform the matmul's or attention's kernels have
  const arrays = (re: RegExp) => [...new Set([...wgsl.matchAll(re)].map((m) => m[1]))];
  const loads = arrays(/subgroupMatrixLoad<[^(]*>\(&(\w+)/g).map(
    (arr) => `
fn smLoad_${arr}(off: u32, stride: u32, col: bool) -> array<f32, 256> {
  var m: array<f32, 256>;
  for (var r = 0u; r < n16; r = r + 1u) {
    for (var j = 0u; j < n16; j = j + 1u) { m[r * 16u + j] = f32(${arr}[select(off + r * stride + j, off + j * stride + r, col)]); }
  }
  return m;
}`,
  );
  const stores = arrays(/subgroupMatrixStore<row_major>\(&(\w+)/g).map(
    (arr) => `
fn smStore_${arr}(off: u32, m: ptr<function, array<f32, 256>>, stride: u32) {
  for (var r = 0u; r < n16; r = r + 1u) {
    for (var j = 0u; j < n16; j = j + 1u) { ${arr}[off + r * stride + j] = (*m)[r * 16u + j]; }
  }
}`,
  );
  const mma = `
fn smMma(l: ptr<function, array<f32, 256>>, r: ptr<function, array<f32, 256>>, acc: ptr<function, array<f32, 256>>) {
  for (var i = 0u; i < n16; i = i + 1u) {
    for (var j = 0u; j < n16; j = j + 1u) {
      var s = (*acc)[i * 16u + j];
      for (var k = 0u; k < n16; k = k + 1u) { s = s + (*l)[i * 16u + k] * (*r)[k * 16u + j]; }
      (*acc)[i * 16u + j] = s;
    }
  }
}`;
  const body = wgsl
    .replace(/\/\/.*$/gm, '')
    .replace(/^(enable chromium_experimental_subgroup_matrix|diagnostic\(off, chromium.*\));$/gm, '')
    .replace(/subgroup_matrix_result<f32, 16, 16>\(\)/g, 'array<f32, 256>()')
    .replace(
      /subgroupMatrixLoad<[^;]*?, (row|col)_major>\(&(\w+), (.*), (\w+)\);$/gm,
      (_, major: string, arr: string, off: string, stride: string) =>
        `smLoad_${arr}(${off}, ${stride}, ${major === 'col'});`,
    )
    .replace(/let (\w+) = smLoad/g, 'var $1 = smLoad')
    .replace(/(\w+) = subgroupMatrixMultiplyAccumulate\((\w+), (\w+), \w+\);/g, 'smMma(&$2, &$3, &$1);')
    .replace(/subgroupMatrixStore<row_major>\(&(\w+), (.*), (\w+), ([\w.]+)\);$/gm, 'smStore_$1($2, &$3, $4);');
  // the helpers read module-scope arrays, so they follow the declarations (before the first function); their
  // loop bound comes from a uniform, so that the shader compiler does not unroll them (minutes per kernel)
  const at = body.indexOf('\nfn ');
  const withBound = body.replace(/(fn main\([^{]*\{)/, `$1\n  n16 = select(16u, 17u, u.${bound} == 0xffffffffu);`);
  return withBound.slice(0, at) + ['var<private> n16: u32;', ...loads, ...stores, mma].join('\n') + withBound.slice(at);
}

test('tensor-core kernels, emulated: each staging within 2^-10 (|A||B|) on ragged, transposed, batched and split-K products', async () => {
  await useBackend('webgpu');
  const gpu = tf.backend() as unknown as WebGPUBackendLike;
  if (tensorCoresAvailable()) return; // a real tensor-core device runs the real kernels in the tests above
  // the smallest block shape (the emulated kernels take ~10 s each to compile on lavapipe), as shipped (stored
  // order, K stages of 64) and double-buffered with fp16 operands
  const small = MATMUL_TILES[MATMUL_TILES.length - 1];
  const variants = [small, matmulTile({ ...small, bk: 32, double: true, half: true })];
  // each at least 2^20 multiply-adds (smaller products stay on tfjs)
  const cases: [number, number, number, boolean, boolean, number][] = [
    [72, 136, 120, false, false, 1], // ragged M and N, K not a multiple of the stage
    [68, 136, 120, false, true, 2], // x·Wᵀ, batched
    [36, 40, 1100, true, false, 1], // a weight gradient: K split over workgroups
    [52, 148, 140, true, true, 1],
  ];
  const restore = emulateTensorCoreMatmul(gpu, emulateMatrices);
  try {
    for (const v of variants) {
      const worst = await selfTest(v, cases);
      assert.ok(worst <= 1, `${v.name}: error is ${worst} x the fp16 bound`);
    }
  } finally {
    restore();
  }
  assert.equal(tensorCoresAvailable(), false);
});

test('tensor-core flash attention (emulated on lavapipe): installed after its self-test, forward and every gradient follow the fp32 kernels under the generalized mask, with ragged blocks and v read in place from qkv', async () => {
  await useBackend('webgpu');
  const gpu = tf.backend() as unknown as WebGPUBackendLike;
  const [N, H, hd, L, cond, sizes] = [2, 2, 48, 40, 4, [9, 15, 16]]; // 68 rows: a ragged block of 64 and tile of 32
  const seq = sequenceLength(L, cond, sizes);
  const s = selfAttentionShape(N, H, seq, hd, fusedQkvPart(H, seq, hd, 2));
  const inputs = [
    [N, seq, H * hd],
    [N, seq, H * hd],
    [N, seq, 3 * H * hd],
    [N, seq, H * hd],
  ].map((shape, i) => tf.randomNormal(shape, 0, 1, 'float32', 5 + i));
  // on a real tensor-core device the backend installed every head size when it started
  const real = tensorCoresAvailable();
  const restore = real ? () => {} : emulateTensorCoreMatmul(gpu, emulateMatrices);
  try {
    if (!real) assert.equal(await installTensorCoreAttention(gpu, [hd]), 'attention on tensor cores');
    withMatmulPrecision('f16', () => assert.ok(tensorCoreAttention(s)));
    withMatmulPrecision('f32', () => assert.ok(!tensorCoreAttention(s)));
    const errors = await tensorCoreAttentionErrors(gpu, s, inputs, getAttnRanges(L, cond, sizes));
    // fp16 operands: scores off by ~2^-10 of Σ|q||k|·scale (~4 here), so p by up to ~0.5 %
    for (const [name, e] of Object.entries(errors))
      assert.ok(e <= ATTENTION_TOLERANCE, `${name}: off by ${e} of its largest value`);
  } finally {
    restore();
    tf.dispose(inputs);
  }
});

test('tensor-core attention that the device rejects is not installed, says why, and leaves the backend working', async () => {
  await useBackend('webgpu');
  const gpu = tf.backend() as unknown as WebGPUBackendLike;
  if (tensorCoresAvailable()) return; // the real kernels are installed on a tensor-core device
  // an attention kernel that does not compile (as a Dawn without some builtin would do)
  const broken = (wgsl: string) => (wgsl.includes('fn visible') ? wgsl.replace('fn main(', 'fn main(oops') : wgsl);
  const restore = emulateTensorCoreMatmul(gpu, (w) => emulateMatrices(broken(w)));
  try {
    assert.match(
      await installTensorCoreAttention(gpu, [16]),
      /^fp32 attention \(tensor-core attention did not compile: .+\)$/,
    );
  } finally {
    restore();
  }
  const x = tf.range(0, 8);
  assert.deepEqual(Array.from(await tf.mul(x, 2).data()), [0, 2, 4, 6, 8, 10, 12, 14]);
  x.dispose();
});

test('tensor-core block shapes: the largest block that, with the K splits it may use, still fills the GPU; K split only below half of it', () => {
  const smallest = MATMUL_TILES[MATMUL_TILES.length - 1];
  assert.equal(tileFor(28864, 3072, 768, 1), MATMUL_TILES[0]); // W768 B64 fc1: thousands of the largest blocks
  assert.equal(tileFor(3072, 768, 28864, 1), MATMUL_TILES[0]); // its weight gradient: 72 blocks, K split
  assert.equal(tileFor(2048, 1536, 384, 1), MATMUL_TILES[2]); // 96 or 192 larger blocks would leave SMs idle
  assert.equal(tileFor(128, 128, 64, 4), smallest); // never enough (a batch is not split): the smallest
  assert.equal(tileFor(128, 128, 64, 300), MATMUL_TILES[0]); // a batch counts
  assert.equal(tileFor(28864, 3072, 768, 1, [smallest]), smallest); // a device where only the smallest fits
  // K is split only where the blocks fill at most half the GPU
  assert.equal(splitsFor(MATMUL_TILES[0], 3072, 768, 28864, 1), 4); // 72 blocks
  assert.equal(splitsFor(MATMUL_TILES[0], 7424, 1024, 4096, 1), 1); // the ablation model's fc2: 232 blocks
  assert.equal(tileFor(7424, 1024, 4096, 1), MATMUL_TILES[1]); // so it takes 464 smaller ones, whole
  assert.equal(splitsFor(MATMUL_TILES[0], 7424, 384, 1536, 1), 3); // W384's fc2: 116 blocks
  assert.equal(splitsFor(MATMUL_TILES[0], 2048, 2048, 4096, 2), 1); // a batch is never split
});

test('tensor-core matmul: 6 training steps follow the fp32 matmul (loss within 1 %, loss scale on)', async (t) => {
  await useBackend('webgpu');
  if (!tensorCoresAvailable()) return t.skip(noTensorCores());
  const run = () => {
    const tr = new Trainer(syntheticDataset(), { model: 'tiny', batchSize: 8, lr: 1e-3, seed: 3 });
    const losses = [0, 1, 2, 3, 4, 5].map(() => tr.trainOne().loss);
    tr.dispose();
    return losses;
  };
  const f32 = await withMatmulPrecision('f32', run);
  const f16 = await withMatmulPrecision('f16', () => {
    assert.ok(lossScaleFor(8 * 16 * 4) > 1, 'fp16 matmuls must scale the loss');
    return run();
  });
  f16.forEach((l, i) => assert.ok(Math.abs(l - f32[i]) <= 0.01 * f32[i], `step ${i + 1}: ${l} vs ${f32[i]}`));
});

test('GPU kernel times are not rounded to Dawn`s 65.5 µs timestamp quantum (the bench reads them)', async (t) => {
  await useBackend('webgpu');
  const a = tf.randomNormal([64, 64]);
  const ms: number[] = [];
  for (let i = 0; i < 8; i++) {
    let c: tf.Tensor | null = null;
    const info = await tf.time(() => {
      c = tf.matMul(a, a);
    });
    c!.dispose();
    if (typeof info.kernelMs !== 'number')
      return t.skip(`no timestamp queries on this adapter: ${JSON.stringify(info.kernelMs)}`);
    ms.push(info.kernelMs);
  }
  a.dispose();
  const quantum = 65536e-6; // ms
  const onGrid = ms.filter((v) => Math.abs(v / quantum - Math.round(v / quantum)) < 1e-3);
  assert.ok(onGrid.length < ms.length, `every time is a multiple of 65.5 µs: ${ms.join(', ')}`);
});

test('cached attention, both kernels (keys split over threads; key tiles staged for 64 rows): softmax(q·kᵀ/√hd)·v over the cache`s first Lk keys, for one query to a 256-token chunk, head sizes 16-128', async () => {
  await useBackend('webgpu');
  const gpu = tf.backend() as unknown as WebGPUBackendLike;
  // [N, H, Lq, Lk, hd]: one token (128 splits, most with no key), a short chunk, a long one, ragged rows
  const cases = [
    [2, 3, 1, 2, 16],
    [2, 2, 1, 300, 64],
    [1, 4, 20, 45, 32],
    [3, 2, 70, 81, 64],
    [1, 2, 256, 260, 64],
    [2, 1, 33, 40, 128],
    [1, 2, 64, 100, 128],
  ];
  for (const [N, H, Lq, Lk, hd] of cases) {
    const Lmax = Lk + 5; // cache rows beyond Lk hold stale values the kernel must not read
    const q = tf.randomNormal([N, Lq, H * hd]);
    const k = tf.randomNormal([N, H, Lmax, hd]);
    const v = tf.randomNormal([N, H, Lmax, hd]);
    const s = { N, H, Lq, Lk, hd, scale: 1 / Math.sqrt(hd), q: tokenMajor(H, Lq, hd), k: headMajor(H, Lmax, hd) };
    const want = tf.tidy(() => {
      const qh = tf.transpose(tf.reshape(q, [N, Lq, H, hd]), [0, 2, 1, 3]);
      const [kk, vv] = [k, v].map((t) => tf.slice(t, [0, 0, 0, 0], [N, H, Lk, hd]));
      const p = tf.softmax(tf.mul(tf.matMul(qh, kk, false, true), s.scale));
      return tf.reshape(tf.transpose(tf.matMul(p, vv), [0, 2, 1, 3]), [N, Lq, H * hd]);
    });
    assert.equal(cachedAttentionVariant(Lq), Lq >= 32 ? 'staged' : 'split');
    for (const variant of ['split', 'staged'] as const) {
      const o = emptyTensor(gpu, [N, Lq, H * hd]);
      cachedAttentionInto(gpu, { ...s, v: s.k }, { q, k, v, o }, variant);
      const got = asTensor(o);
      const err = tf.tidy(() => tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]);
      const rows = variant === 'split' ? `${rowsPerGroup(Lq, hd)} rows per group` : 'staged';
      assert.ok(err < 2e-5, `N ${N} H ${H} Lq ${Lq} Lk ${Lk} hd ${hd} (${rows}): error ${err}`);
      got.dispose();
    }
    tf.dispose([q, k, v, want]);
  }
  assert.throws(
    () =>
      cachedAttentionInto(
        gpu,
        {
          N: 1,
          H: 1,
          Lq: 1,
          Lk: 1,
          hd: 18,
          scale: 1,
          q: tokenMajor(1, 1, 18),
          k: headMajor(1, 1, 18),
          v: headMajor(1, 1, 18),
        },
        {} as never,
      ),
    /head size 18 is not a multiple of 4/,
  );
});

test('fused sampling linear kernel: every epilogue (bias, GELU, residual add) equals tfjs ops on ragged shapes, on both tile sizes and with K split; the epilogue alone after a product equals the fused kernel', async () => {
  await useBackend('webgpu');
  const gpu = tf.backend() as unknown as WebGPUBackendLike;
  const [M, N, K] = [70, 200, 260];
  const [x, w, b, r] = [
    tf.randomNormal([M, K]),
    tf.randomNormal([N, K]),
    tf.randomNormal([N]),
    tf.randomNormal([M, N]),
  ];
  const gelu = (v: tf.Tensor) =>
    tf.mul(v, tf.sigmoid(tf.mul(tf.add(v, tf.mul(tf.pow(v, 3), 0.044715)), 2 * Math.sqrt(2 / Math.PI))));
  const product = tf.matMul(x, w, false, true);
  const epilogues = [
    { bias: false, gelu: false, accumulate: false },
    { bias: true, gelu: true, accumulate: false },
    { bias: true, gelu: false, accumulate: true },
  ];
  // 64 x 64 tiles, 128 x 128 ones, K split over 3 and over 13 workgroups (a 4-float last chunk), and the plan
  // the kernel picks itself (this product is small, so it splits K)
  const plans = [{ g: 1, splits: 1 }, { g: 2, splits: 1 }, { g: 1, splits: 3 }, { g: 1, splits: 13 }, null] as const;
  const scratch = tf.zeros([13 * M * N]);
  assert.ok(linearPlan(M, N, K, 13 * M * N).splits > 1, 'a 70-row product splits K');
  for (const [plan, e] of plans.flatMap((p) => epilogues.map((ep) => [p, ep] as const))) {
    forceLinearPlan(plan && { ...plan });
    let want = tf.add(product, e.bias ? b : 0);
    if (e.gelu) want = gelu(want);
    if (e.accumulate) want = tf.add(r, want);
    const fused = tf.add(r, 0); // a buffer of its own, written in place
    linearInto(gpu, x, w, b, fused, M, e, scratch);
    const split = tf.add(r, 0);
    const c = tf.zeros([M, N]);
    linearInto(gpu, x, w, b, c, M, { bias: false, gelu: false, accumulate: false });
    linearEpilogue(gpu, c, b, split, M, N, e);
    const scale = tf.max(tf.abs(want)).dataSync()[0];
    const err = (t: tf.Tensor) => tf.max(tf.abs(tf.sub(t, want))).dataSync()[0] / scale;
    const what = `${JSON.stringify(e)}, plan ${JSON.stringify(plan ?? 'picked')}`;
    assert.ok(err(fused) < 1e-5, `${what}: linearInto off by ${err(fused)}`);
    assert.ok(err(split) < 1e-5, `${what}: product + epilogue off by ${err(split)}`);
    tf.dispose([fused, split, c, want]);
  }
  forceLinearPlan(null);
  scratch.dispose();
  tf.dispose([x, w, b, r, product]);
});

test('fused sampling on tensor cores: one denoising step within 1 % of the fp32 kernels (49-token model, 16 images; with CFG 4 within the 7x that 4c - 3u can amplify it)', async (t) => {
  await useBackend('webgpu');
  if (!tensorCoresAvailable()) return t.skip(noTensorCores());
  const model = new CausalDiffusionModel(makeConfig('mnist-base'), { seed: 2 });
  // the initial final projection is zero (eps = 0 whatever the kernels do): give it weights
  const head = model.params['final_layer.1.weight'];
  head.assign(tf.randomNormal(head.shape, 0, 0.05, 'float32', 3));
  const diffusion = createDiffusion('50');
  const positions = Array.from({ length: 16 }, () => Array.from({ length: 49 }, (_, i) => i));
  const z = Float32Array.from({ length: 16 * 49 * 16 }, (_, i) => Math.sin(i * 0.37));
  const eps = (p: 'f16' | 'f32', cfg: number | null) =>
    withMatmulPrecision(p, () => {
      const f = new FusedInference(model, 16, true, 49, [500]);
      f.appendCondition([...positions.map((_, i) => i % 10), ...positions.map(() => 10)]);
      f.startChain(positions, z);
      const out = f.step(0, diffusion, 25, cfg, [1, 2], { ddim: false, eta: 0, clip: false }).eps.dataSync();
      f.dispose();
      return out;
    });
  for (const [cfg, bound] of [
    [null, 1e-2],
    [4, 7e-2],
  ] as const) {
    const [e16, e32] = [await eps('f16', cfg), await eps('f32', cfg)];
    const scale = Math.max(...Array.from(e32, Math.abs));
    assert.ok(scale > 0.01, `eps scale ${scale}: the step computed nothing`);
    const err = Math.max(...Array.from(e16, (v, i) => Math.abs(v - e32[i]))) / scale;
    assert.ok(err < bound, `tensor-core eps (CFG ${cfg}) off by ${err} of its scale`);
    console.log(`tensor-core eps, CFG ${cfg}: max error ${err.toExponential(2)} of its scale`);
  }
  model.dispose();
});
