/**
 * Matmul on tensor cores through WebGPU subgroup matrices (`chromium-experimental-subgroup-matrix`): fp32
 * tensors are rounded to fp16 while staged in workgroup memory, multiplied in 16x16x16 tiles and accumulated
 * in fp32, like PyTorch's fp16 autocast. It replaces tfjs's `BatchMatMul` on webgpu when the adapter offers
 * fp16 subgroup matrices with 32-wide subgroups (NVIDIA) and passes a self-test; tfjs's fp32 kernel stays
 * the path everywhere else and with `setMatmulPrecision('f32')` / $CAUSALFUSION_MATMUL=f32.
 *
 * A workgroup of 4 subgroups computes a 64x64 block of C; each subgroup a 32x32 quarter as 2x2 result tiles,
 * over K in steps of 32. Ragged edges are zero-padded when staged and written through a per-subgroup staging
 * tile, so any M, N, K work; transposed operands are read in their stored order (coalesced).
 *
 * Precision: each product of fp16-rounded inputs is within 2^-10 |a||b| of the exact one (two roundings of
 * 2^-11 each), and fp32 accumulation adds far less, so |C16 - C| <= 2^-10 (|A||B|) elementwise (tested).
 * fp16 flushes magnitudes below 6e-8 and saturates above 65504, so training scales the loss
 * (`lossScaleFor`) to keep the backward's operands near 1.
 */
import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackendLike } from '../webgpu';
import { emptyTensor, uniformBlock, WgslKernel } from './runner';

/** Matmul precision on webgpu: 'f16' = fp16 inputs, fp32 accumulation on tensor cores (when offered). */
export type MatmulPrecision = 'f16' | 'f32';

let precision: MatmulPrecision = process.env.CAUSALFUSION_MATMUL === 'f32' ? 'f32' : 'f16';
const ready = new WeakSet<object>(); // devices whose tensor-core kernel passed the self-test

/** Chooses the webgpu matmul; 'f16' takes effect only where the adapter supports it (see `tensorCoreMatmul`). */
export function setMatmulPrecision(p: MatmulPrecision): void {
  precision = p;
}

/** True when the active webgpu device has a tensor-core matmul that passed its self-test. */
export function tensorCoresAvailable(): boolean {
  return tf.getBackend() === 'webgpu' && ready.has((tf.backend() as WebGPUBackendLike).device);
}

/** True when webgpu matmuls run on tensor cores now. */
export function tensorCoreMatmul(): boolean {
  return precision === 'f16' && tensorCoresAvailable();
}

/** The precision chosen (fp16 applies only where tensor cores are available). */
export function matmulPrecision(): MatmulPrecision {
  return precision;
}

/**
 * The static loss scale of a training step whose loss is a mean over `elements` values: a power of two near
 * `elements`, which brings the backward's per-element gradients (2·w·err / elements) back to order 1 for fp16;
 * 1 when the matmuls are fp32. Exact: scaling and unscaling by powers of two change no bit.
 */
export function lossScaleFor(elements: number): number {
  return tensorCoreMatmul() ? Math.pow(2, Math.floor(Math.log2(Math.max(1, elements)))) : 1;
}

/** WGSL of a subgroup-matrix load/store in the syntax this Dawn accepts (the majorness moved into the template). */
interface MatrixSyntax {
  load(type: string, ptr: string, offset: string, stride: string): string;
  store(ptr: string, offset: string, value: string, stride: string): string;
}
const SYNTAXES: MatrixSyntax[] = [
  { load: (t, p, o, s) => `subgroupMatrixLoad<${t}>(${p}, ${o}, false, ${s})`, store: (p, o, v, s) => `subgroupMatrixStore(${p}, ${o}, ${v}, false, ${s})` },
  { load: (t, p, o, s) => `subgroupMatrixLoad<${t}, row_major>(${p}, ${o}, ${s})`, store: (p, o, v, s) => `subgroupMatrixStore<row_major>(${p}, ${o}, ${v}, ${s})` },
];

const BM = 64; // block rows
const BN = 64; // block columns
const BK = 32; // K per stage
const SA = BK + 8; // padded row strides of the staged tiles (fewer bank conflicts)
const SB = BN + 8;

const code = (x: MatrixSyntax) => {
  const left = 'subgroup_matrix_left<f16, 16, 16>';
  const right = 'subgroup_matrix_right<f16, 16, 16>';
  const tiles = [0, 1].flatMap((i) => [0, 1].map((j) => [i, j] as const));
  return /* wgsl */ `
enable f16;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
struct U { M: u32, N: u32, K: u32, tA: u32, tB: u32, strideA: u32, strideB: u32, pad: u32 }
@group(0) @binding(3) var<uniform> u: U;
var<workgroup> at: array<f16, ${BM * SA}>;
var<workgroup> bt: array<f16, ${BK * SB}>;
var<workgroup> stage: array<f32, ${4 * 256}>;
@compute @workgroup_size(128)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let row0 = wg.y * ${BM}u;
  let col0 = wg.x * ${BN}u;
  let aOff = wg.z * u.strideA;
  let bOff = wg.z * u.strideB;
  let cOff = wg.z * u.M * u.N;
  let sg = li / 32u;
  let sr = (sg / 2u) * 32u;
  let sc = (sg % 2u) * 32u;
  ${tiles.map(([i, j]) => `var c${i}${j} = subgroup_matrix_result<f32, 16, 16>();`).join('\n  ')}
  for (var k0 = 0u; k0 < u.K; k0 = k0 + ${BK}u) {
    workgroupBarrier();
    for (var e = li; e < ${BM * BK}u; e = e + 128u) {
      // stored [M, K] (or [K, M] when transposed): consecutive threads read consecutive addresses
      var m = e / ${BK}u;
      var k = e % ${BK}u;
      if (u.tA == 1u) { m = e % ${BM}u; k = e / ${BM}u; }
      let gm = row0 + m;
      let gk = k0 + k;
      var v = 0.0;
      if (gm < u.M && gk < u.K) { v = a[aOff + select(gm * u.K + gk, gk * u.M + gm, u.tA == 1u)]; }
      at[m * ${SA}u + k] = f16(v);
    }
    for (var e = li; e < ${BK * BN}u; e = e + 128u) {
      var k = e / ${BN}u;
      var n = e % ${BN}u;
      if (u.tB == 1u) { n = e / ${BK}u; k = e % ${BK}u; }
      let gk = k0 + k;
      let gn = col0 + n;
      var v = 0.0;
      if (gk < u.K && gn < u.N) { v = b[bOff + select(gk * u.N + gn, gn * u.K + gk, u.tB == 1u)]; }
      bt[k * ${SB}u + n] = f16(v);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk = kk + 16u) {
      let l0 = ${x.load(left, '&at', `sr * ${SA}u + kk`, `${SA}u`)};
      let l1 = ${x.load(left, '&at', `(sr + 16u) * ${SA}u + kk`, `${SA}u`)};
      let r0 = ${x.load(right, '&bt', `kk * ${SB}u + sc`, `${SB}u`)};
      let r1 = ${x.load(right, '&bt', `kk * ${SB}u + sc + 16u`, `${SB}u`)};
      ${tiles.map(([i, j]) => `c${i}${j} = subgroupMatrixMultiplyAccumulate(l${i}, r${j}, c${i}${j});`).join('\n      ')}
    }
  }
  if (row0 + ${BM}u <= u.M && col0 + ${BN}u <= u.N) {
    ${tiles.map(([i, j]) => x.store('&c', `cOff + (row0 + sr + ${16 * i}u) * u.N + col0 + sc + ${16 * j}u`, `c${i}${j}`, 'u.N') + ';').join('\n    ')}
    return;
  }
  // a ragged block: each tile goes through this subgroup's staging area, then element by element
  let lane = li % 32u;
  ${tiles
    .map(
      ([i, j]) => `workgroupBarrier();
  ${x.store('&stage', 'sg * 256u', `c${i}${j}`, '16u')};
  workgroupBarrier();
  for (var e = lane; e < 256u; e = e + 32u) {
    let gm = row0 + sr + ${16 * i}u + e / 16u;
    let gn = col0 + sc + ${16 * j}u + e % 16u;
    if (gm < u.M && gn < u.N) { c[cOff + gm * u.N + gn] = stage[sg * 256u + e]; }
  }`,
    )
    .join('\n  ')}
}`;
};

type ErrorScopes = { pushErrorScope(f: string): void; popErrorScope(): Promise<{ message: string } | null> };

interface BatchMatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

const kernels = new WeakMap<object, WgslKernel>();

/** C = op(A)·op(B) on tensor cores for rank >= 2 inputs whose batches agree or one is 1; null if it does not apply. */
function tensorCoreBatchMatMul(backend: WebGPUBackendLike, a: tf.TensorInfo, b: tf.TensorInfo, attrs: BatchMatMulAttrs): tf.TensorInfo | null {
  const kern = kernels.get(backend.device);
  if (!kern || precision !== 'f16' || a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const batchOf = (s: number[]) => s.slice(0, -2).reduce((p, q) => p * q, 1);
  const [ba, bb] = [batchOf(a.shape), batchOf(b.shape)];
  if (ba !== bb && ba !== 1 && bb !== 1) return null;
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [M, K] = attrs.transposeA ? [ac, ar] : [ar, ac];
  const N = attrs.transposeB ? br : bc;
  if ((attrs.transposeB ? bc : br) !== K) throw new Error(`matMul: inner dimensions ${K} and ${attrs.transposeB ? bc : br} differ`);
  const batch = Math.max(ba, bb);
  const batchShape = (ba >= bb ? a.shape : b.shape).slice(0, -2);
  const c = emptyTensor(backend, [...batchShape, M, N]);
  const u = uniformBlock([['u32', M], ['u32', N], ['u32', K], ['u32', +attrs.transposeA], ['u32', +attrs.transposeB], ['u32', ba > 1 ? M * K : 0], ['u32', bb > 1 ? K * N : 0], ['u32', 0]]);
  kern.dispatch(backend, [a, b, c], u, [Math.ceil(N / BN), Math.ceil(M / BM), batch], [c]);
  return c;
}

let registered = false;

/** Routes tfjs's BatchMatMul on webgpu through the tensor-core kernel when it applies. */
function overrideBatchMatMul(): void {
  const original = tf.getKernel('BatchMatMul', 'webgpu');
  if (!original || registered) return;
  registered = true;
  tf.unregisterKernel('BatchMatMul', 'webgpu');
  tf.registerKernel({
    ...original,
    kernelFunc: (args) => {
      const { a, b } = args.inputs as unknown as { a: tf.TensorInfo; b: tf.TensorInfo };
      return tensorCoreBatchMatMul(args.backend as unknown as WebGPUBackendLike, a, b, args.attrs as unknown as BatchMatMulAttrs) ?? original.kernelFunc(args);
    },
  });
}

/** Features to request on a device for the tensor-core path, if the adapter has them all. */
export function tensorCoreFeatures(features: Set<string>, subgroupSizes: [number?, number?]): string[] {
  const wanted = ['shader-f16', 'chromium-experimental-subgroup-matrix'];
  const size32 = subgroupSizes.every((s) => s === undefined || s === 32); // the self-test catches what info leaves out
  return wanted.every((f) => features.has(f)) && size32 ? wanted : [];
}

/**
 * Compiles the kernel in the syntax this Dawn accepts, checks it against a float64 product on shapes with
 * ragged edges, both transposes and a batch, and installs it. Returns what happened, for the backend report.
 */
export async function installTensorCoreMatmul(backend: WebGPUBackendLike): Promise<string> {
  const device = backend.device as unknown as ErrorScopes;
  let kern: WgslKernel | null = null;
  let why = '';
  for (const syntax of SYNTAXES) {
    device.pushErrorScope('validation');
    const candidate = new WgslKernel('tensorCoreMatmul', code(syntax));
    candidate.compile(backend);
    const err = await device.popErrorScope();
    if (!err) {
      kern = candidate;
      break;
    }
    why = err.message.split('\n')[0];
  }
  if (!kern) return `fp32 matmul (tensor-core kernel did not compile: ${why})`;
  kernels.set(backend.device, kern);
  overrideBatchMatMul();
  const wanted = precision;
  precision = 'f16'; // the self-test must reach the kernel even when the user chose fp32
  const worst = await selfTest();
  precision = wanted;
  if (!(worst <= 1)) {
    kernels.delete(backend.device);
    return `fp32 matmul (tensor-core kernel failed its self-test: error ${worst.toFixed(2)} x the fp16 bound)`;
  }
  ready.add(backend.device);
  return precision === 'f16' ? 'matmul on tensor cores (fp16 inputs, fp32 accumulation)' : 'fp32 matmul (tensor cores available; CAUSALFUSION_MATMUL=f32 keeps them off)';
}

/** Largest |C16 - C| / (2^-10 (|A||B|) + 1e-30) over a few awkward shapes (<= 1 passes). */
export async function selfTest(cases: [number, number, number, boolean, boolean, number][] = SELF_TEST): Promise<number> {
  let worst = 0;
  for (const [M, N, K, tA, tB, batch] of cases) {
    const rand = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 2);
    const ha = rand(batch * M * K, 1);
    const hb = rand(batch * K * N, 2);
    const [at, bt] = [tf.tensor(ha, tA ? [batch, K, M] : [batch, M, K]), tf.tensor(hb, tB ? [batch, N, K] : [batch, K, N])];
    const ct = tf.matMul(at, bt, tA, tB);
    const hc = (await ct.data()) as Float32Array;
    tf.dispose([at, bt, ct]);
    worst = Math.max(worst, matmulErrorRatio(ha, hb, hc, M, N, K, tA, tB, batch));
  }
  return worst;
}

const SELF_TEST: [number, number, number, boolean, boolean, number][] = [
  [70, 33, 45, false, false, 1],
  [64, 128, 96, false, true, 2],
  [129, 64, 17, true, false, 1],
  [16, 80, 200, true, true, 3],
];

/** max over elements of |c - exact| / (2^-10 Σ|a||b|): the fp16-input bound the kernel must meet. */
export function matmulErrorRatio(a: Float32Array, b: Float32Array, c: Float32Array, M: number, N: number, K: number, tA: boolean, tB: boolean, batch: number): number {
  let worst = 0;
  for (let z = 0; z < batch; z++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let exact = 0;
        let bound = 0;
        for (let k = 0; k < K; k++) {
          const x = a[z * M * K + (tA ? k * M + i : i * K + k)];
          const y = b[z * K * N + (tB ? j * K + k : k * N + j)];
          exact += x * y;
          bound += Math.abs(x * y);
        }
        worst = Math.max(worst, Math.abs(c[z * M * N + i * N + j] - exact) / (Math.pow(2, -10) * bound + 1e-30));
      }
    }
  }
  return worst;
}
