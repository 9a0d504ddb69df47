/**
 * The tensor-core matmul on the products of a real training step, against `torch.matmul` on the same GPU.
 *
 * For each GPU training case (W384 B64, W768 B32 and B64, the paper-size ablation model at B16) it takes the
 * linear layers' products at a typical sequence length (condition + clean + noised tokens, the clean part
 * shortened by the mean last AR step under the gamma = 0.9 law): the forward x·Wᵀ of qkv, fc1 and fc2, the
 * backward's dy·W of fc2 and dyᵀ·x (the weight gradient, split over K) of fc1. Each runs on every block shape
 * (`MATMUL_TILES`), on the shape `tileFor` picks, and on tfjs's fp32 kernel, timed by the GPU's timestamps
 * (median of `repeats`); the twin times torch.matmul in bf16 and in fp32 (TF32 off) with CUDA events.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { arStepCountProbs } from '../src/factorization/steps';
import {
  compileMatmulTile,
  MATMUL_TILES,
  MatmulTile,
  matmulTile,
  selfTest,
  tensorCoresAvailable,
  tileFor,
  withMatmulPrecision,
  withMatmulTile,
} from '../src/backend/wgsl/matmul';
import type { WebGPUBackendLike } from '../src/backend/webgpu-types';
import { median } from '../src/util/median';
import { runJson, TWIN } from './torch';
import { wallMsPerCall } from './wall-clock';

/** One product: C[M, N] = op(A)·op(B) over K. */
interface Product {
  model: string;
  op: string;
  M: number;
  N: number;
  K: number;
  tA: boolean;
  tB: boolean;
}

const MODELS = [
  { name: 'W384 B64', W: 384, L: 64, batch: 64 },
  { name: 'W768 B32', W: 768, L: 256, batch: 32 },
  { name: 'W768 B64', W: 768, L: 256, batch: 64 },
  { name: 'ablation W1024 B16', W: 1024, L: 256, batch: 16 },
];
const COND_TOKENS = 4;

/** Tokens of a typical training sequence: condition, clean (all but the last AR step's), noised. */
function typicalSequence(L: number): number {
  const p = arStepCountProbs(L, 0.9);
  const meanLast = p.reduce((s, pS, i) => s + (pS * L) / (i + 1), 0);
  return COND_TOKENS + 2 * L - Math.round(meanLast);
}

function products(): Product[] {
  return MODELS.flatMap(({ name, W, L, batch }) => {
    const M = batch * typicalSequence(L);
    const p = (op: string, m: number, n: number, k: number, tA: boolean, tB: boolean): Product => ({
      model: name,
      op,
      M: m,
      N: n,
      K: k,
      tA,
      tB,
    });
    return [
      p('qkv x·Wᵀ', M, 3 * W, W, false, true),
      p('fc1 x·Wᵀ', M, 4 * W, W, false, true),
      p('fc2 x·Wᵀ', M, W, 4 * W, false, true),
      p('fc2 dy·W', M, 4 * W, W, false, false),
      p('fc1 dyᵀ·x', 4 * W, W, M, true, false),
    ];
  });
}

/** GPU milliseconds of one product (kernels only, split-K sum included), median of `repeats`. */
async function gpuMs(a: tf.Tensor, b: tf.Tensor, p: Product, repeats: number): Promise<number> {
  const once = async () => {
    let c: tf.Tensor | null = null;
    const info = await tf.time(() => {
      c = tf.matMul(a, b, p.tA, p.tB);
    });
    c!.dispose();
    return info.kernelMs as number;
  };
  await once(); // compiles / warms up
  const ms: number[] = [];
  for (let r = 0; r < repeats; r++) ms.push(await once());
  return median(ms);
}

/** Milliseconds of one product by the wall clock (`wallMsPerCall`: `repeats` products back to back). */
function wallMs(a: tf.Tensor, b: tf.Tensor, p: Product, repeats: number): Promise<number> {
  return wallMsPerCall(async (k) => {
    const outs: tf.Tensor[] = [];
    for (let i = 0; i < k; i++) outs.push(tf.matMul(a, b, p.tA, p.tB));
    const probe = tf.slice(outs[k - 1], [0, 0], [1, 1]);
    await probe.data();
    tf.dispose([probe, ...outs]);
  }, repeats);
}

/**
 * Block shapes to sweep (BENCH_MATMUL_SWEEP=1): six block shapes (four of them `MATMUL_TILES`' and two of 256
 * threads with 4x4 tiles per subgroup) in six stagings: as before, natural, natural double-buffered, natural
 * with K stages of 64, and the last two with operands cast to fp16 first.
 */
function sweepTiles(): MatmulTile[] {
  const shapes = [
    [2, 2, 4, 4],
    [4, 2, 2, 4],
    [2, 2, 2, 4],
    [2, 2, 2, 2],
    [2, 4, 4, 4],
    [4, 2, 4, 4],
  ];
  const stagings = [
    { bk: 32, natural: false, double: false, half: false },
    { bk: 32, natural: true, double: false, half: false },
    { bk: 32, natural: true, double: true, half: false },
    { bk: 64, natural: true, double: false, half: false },
    { bk: 32, natural: true, double: true, half: true },
    { bk: 64, natural: true, double: false, half: true },
  ] as const;
  return shapes.flatMap(([sgM, sgN, tm, tn]) => stagings.map((st) => matmulTile({ sgM, sgN, tm, tn, ...st })));
}

/**
 * The sweep: every candidate block shape on every product, TFLOP/s by the wall clock, after compiling it and
 * checking it against float64 (a candidate that fails either is reported and left out).
 */
async function sweep(all: Product[], repeats: number): Promise<Record<string, unknown>[]> {
  const backend = tf.backend() as unknown as WebGPUBackendLike;
  const tiles: MatmulTile[] = [];
  for (const t of sweepTiles()) {
    const err =
      (await compileMatmulTile(backend, t)) ??
      (await selfTest(t)
        .then((e) => (e <= 1 ? null : `self-test error ${e.toFixed(2)} x the fp16 bound`))
        .catch((e: Error) => e.message));
    if (err) console.log(`sweep: ${t.name} left out: ${err}`);
    else tiles.push(t);
  }
  const tflops = (p: Product, ms: number) => (2 * p.M * p.N * p.K) / ms / 1e9;
  const table: Record<string, number[]> = Object.fromEntries(tiles.map((t) => [t.name, []]));
  for (const p of all) {
    const a = tf.randomNormal(p.tA ? [p.K, p.M] : [p.M, p.K]);
    const b = tf.randomNormal(p.tB ? [p.N, p.K] : [p.K, p.N]);
    for (const t of tiles) table[t.name].push(tflops(p, await withMatmulTile(t, () => wallMs(a, b, p, repeats))));
    tf.dispose([a, b]);
  }
  console.log(`\nmatmul block-shape sweep, TFLOP/s by the wall clock (products as columns)`);
  all.forEach((p, i) => console.log(`  [${i}] ${p.model} ${p.op} ${p.M} x ${p.N} x ${p.K}`));
  console.log(`block shape / staging      | ${all.map((_, i) => `[${i}]`.padStart(6)).join(' | ')}`);
  for (const t of tiles)
    console.log(`${t.name.padEnd(27)}| ${table[t.name].map((v) => v.toFixed(1).padStart(6)).join(' | ')}`);
  return tiles.map((t) => ({
    case: `matmul sweep ${t.name}`,
    tile: t,
    tflops: Object.fromEntries(all.map((p, i) => [`${p.model} ${p.op}`, table[t.name][i]])),
  }));
}

export async function benchGpuMatmul(python: string | null, repeats = 10): Promise<Record<string, unknown>[]> {
  await initBackend({ backend: 'webgpu', quiet: true });
  if (!tensorCoresAvailable()) {
    console.log('matmul bench: this adapter has no tensor-core matmul (subgroup matrices); nothing to measure');
    return [];
  }
  const all = products();
  if (process.env.BENCH_MATMUL_SWEEP) return sweep(all, repeats);
  const twin = python
    ? (runJson(
        python,
        [TWIN],
        {},
        JSON.stringify({
          mode: 'matmul',
          device: 'cuda',
          repeats,
          shapes: all.map((p) => [p.M, p.N, p.K, p.tA, p.tB]),
        }),
      ).ms as { bf16: number; fp32: number }[])
    : null;
  const tflops = (p: Product, ms: number) => (2 * p.M * p.N * p.K) / ms / 1e9;
  const rows: Record<string, unknown>[] = [];
  console.log(
    `\ntensor-core matmul on a step's products, TFLOP/s (GPU timestamps; torch.matmul with CUDA events)\n` +
      `model / product            | M x N x K            | ${MATMUL_TILES.map((t) => t.name.padStart(11)).join(' | ')} | picked        | tfjs fp32 | torch bf16 | torch fp32 | picked / torch bf16`,
  );
  for (const [i, p] of all.entries()) {
    const a = tf.randomNormal(p.tA ? [p.K, p.M] : [p.M, p.K]);
    const b = tf.randomNormal(p.tB ? [p.N, p.K] : [p.K, p.N]);
    const perTile: Record<string, number> = {};
    for (const tile of MATMUL_TILES) {
      perTile[tile.name] = tflops(p, await withMatmulTile(tile, () => gpuMs(a, b, p, repeats)));
    }
    const picked: MatmulTile = tileFor(p.M, p.N, p.K, 1);
    const fp32 = tflops(p, await withMatmulPrecision('f32', () => gpuMs(a, b, p, repeats)));
    tf.dispose([a, b]);
    const torchBf16 = twin ? tflops(p, twin[i].bf16) : NaN;
    const torchFp32 = twin ? tflops(p, twin[i].fp32) : NaN;
    const row = {
      case: `matmul ${p.model} ${p.op}`,
      shape: [p.M, p.N, p.K],
      transposes: [p.tA, p.tB],
      tflops: { ...perTile, picked: perTile[picked.name], tfjsFp32: fp32, torchBf16, torchFp32 },
      picked: picked.name,
      ratioPickedToTorchBf16: perTile[picked.name] / torchBf16,
    };
    rows.push(row);
    const f = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
    console.log(
      `${`${p.model} ${p.op}`.padEnd(27)}| ${`${p.M} x ${p.N} x ${p.K}`.padEnd(21)}| ${MATMUL_TILES.map((t) => f(perTile[t.name]).padStart(11)).join(' | ')} | ${picked.name.padEnd(13)} | ${f(fp32).padStart(9)} | ${f(torchBf16).padStart(10)} | ${f(torchFp32).padStart(10)} | ${f(row.ratioPickedToTorchBf16)}`,
    );
  }
  return rows;
}
