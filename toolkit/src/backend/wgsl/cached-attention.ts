/**
 * Attention of a sampling chunk over its layer's KV cache: o = softmax(q·kᵀ·scale)·v where every query sees
 * every cached key (condition tokens, finished AR steps and its own step), so there is no mask to test.
 *
 * The training kernel (attention.ts) gives each query row one thread, which leaves a large GPU mostly idle
 * at sampling's few rows (a 256-token chunk of 8 images is 36k threads). Here a row's keys are split over
 * `splits` threads (the split-K of flash decoding): each keeps the online-softmax state (max, sum, o) of its
 * share, read straight from the cache (the 32 rows of a subgroup read the same key at once), and the shares
 * are merged through workgroup memory. Rows and splits per workgroup follow the chunk: many rows, few splits;
 * a chunk of one token (token-by-token AR), all 128 threads on its keys.
 *
 * A long chunk (the paper-size model's 256 tokens at S = 1) has rows enough to fill the GPU without splitting
 * keys, and there the split kernel's loads bound it (every thread reads every key of its share from the cache
 * for one row). The staged kernel gives each of 64 rows a thread and stages tiles of keys and values in
 * workgroup memory once for all of them, as the training kernel does, with one rescale of the output per tile.
 * On an H100 (`BENCH_GPU_SECTIONS=attention`) it takes 0.95 ms where the split one takes 1.71 for 8 images of
 * 256 tokens over 260 keys (0.35 / 1.22 with CFG's 16), 0.22 / 0.36 for 80 images of 49 tokens, and loses on
 * chunks of 7 and 16 rows (0.20 / 0.14, 0.12 / 0.10): hence the pick at 32 rows.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackendLike } from '../webgpu-types';
import { FlashShape, tokenMajor } from '../kernels';
import { uniformBlock, WgslKernel } from './runner';
import { MAX_HEAD_DIM } from './attention';

const THREADS = 128;
const KEYS_PER_BLOCK = 4; // scores computed together before one rescale of the running output

/** Query rows per workgroup for `Lq` queries of head size `hd`: a power of two in [1, 32] (16 at hd > 64). */
export function rowsPerGroup(Lq: number, hd: number): number {
  const most = hd <= 64 ? 32 : 16; // the merge buffer (rows x hd floats) stays within 8 KiB
  let r = 1;
  while (r < Lq && r < most) r *= 2;
  return r;
}

/** Chunks of at least this many rows take the staged kernel. */
export const STAGED_MIN_ROWS = 32;
const STAGED_ROWS = 64;
const STAGED_KEYS = 16; // keys per staged tile: K and V tiles of 16 x hd floats, 16 KiB at hd = 128

/** The kernel for `Lq` rows: 'staged' for long chunks, else 'split' (keys split over threads). */
export function cachedAttentionVariant(Lq: number): 'split' | 'staged' {
  return Lq >= STAGED_MIN_ROWS ? 'staged' : 'split';
}

const UNIFORMS = /* wgsl */ `
struct U { H: u32, Lq: u32, Lk: u32, scale: f32, qN: u32, qH: u32, qL: u32, kN: u32, kH: u32, kL: u32, oN: u32, oH: u32, oL: u32, qO: u32, kO: u32 }`;

const BINDINGS = /* wgsl */ `
@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> o: array<vec4<f32>>;
${UNIFORMS}
@group(0) @binding(4) var<uniform> u: U; // strides in float4s`;

/** WGSL: a workgroup's (image, head) and this thread's query row `i` (row `r` of the group), q scaled, acc zero. */
const rowStart = (rows: number, hd4: number, r: string) => /* wgsl */ `
  let n = wg.y / u.H;
  let h = wg.y % u.H;
  let i = min(wg.x * ${rows}u + ${r}, u.Lq - 1u); // rows past the end redo the last row and write nothing
  let qo = u.qO + n * u.qN + h * u.qH + i * u.qL;
  var qv: array<vec4<f32>, ${hd4}>;
  var acc: array<vec4<f32>, ${hd4}>;
  for (var d = 0u; d < ${hd4}u; d = d + 1u) { qv[d] = q[qo + d] * u.scale; acc[d] = vec4<f32>(); }
  let kv = u.kO + n * u.kN + h * u.kH;
  var m = -1e30;
  var l = 0.0;`;

/** WGSL: the online softmax's step to a block of scores with maximum `blockMax` (defines mNew). */
const rescale = (hd4: number, blockMax: string) => /* wgsl */ `
    let mNew = max(m, ${blockMax});
    let corr = exp(m - mNew);
    l = l * corr;
    for (var d = 0u; d < ${hd4}u; d = d + 1u) { acc[d] = acc[d] * corr; }`;

/** WGSL: row `i`'s output, acc / l, when row `r` of the group exists and `also` holds. */
const writeRow = (rows: number, hd4: number, r: string, also = '') => /* wgsl */ `
  if (${also}wg.x * ${rows}u + ${r} < u.Lq) {
    let oo = n * u.oN + h * u.oH + i * u.oL;
    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var d = 0u; d < ${hd4}u; d = d + 1u) { o[oo + d] = acc[d] * inv; }
  }`;

const stagedCode = (hd: number) => {
  const hd4 = hd / 4;
  const T = STAGED_KEYS;
  return /* wgsl */ `${BINDINGS}
var<workgroup> kt: array<vec4<f32>, ${T * hd4}>;
var<workgroup> vt: array<vec4<f32>, ${T * hd4}>;
@compute @workgroup_size(${STAGED_ROWS})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
${rowStart(STAGED_ROWS, hd4, 'li')}
  for (var j0 = 0u; j0 < u.Lk; j0 = j0 + ${T}u) {
    workgroupBarrier();
    for (var e = li; e < ${T * hd4}u; e = e + ${STAGED_ROWS}u) {
      let src = kv + min(j0 + e / ${hd4}u, u.Lk - 1u) * u.kL + e % ${hd4}u;
      kt[e] = k[src];
      vt[e] = v[src];
    }
    workgroupBarrier();
    let keys = min(${T}u, u.Lk - j0);
    var sc: array<f32, ${T}>;
    var tmax = -1e30;
    for (var r = 0u; r < keys; r = r + 1u) {
      var s = 0.0;
      for (var d = 0u; d < ${hd4}u; d = d + 1u) { s = s + dot(qv[d], kt[r * ${hd4}u + d]); }
      sc[r] = s;
      tmax = max(tmax, s);
    }
${rescale(hd4, 'tmax')}
    for (var r = 0u; r < keys; r = r + 1u) {
      let p = exp(sc[r] - mNew);
      l = l + p;
      for (var d = 0u; d < ${hd4}u; d = d + 1u) { acc[d] = acc[d] + p * vt[r * ${hd4}u + d]; }
    }
    m = mNew;
  }
${writeRow(STAGED_ROWS, hd4, 'li')}
}`;
};

const splitCode = (hd: number, rows: number) => {
  const hd4 = hd / 4;
  const splits = THREADS / rows;
  return /* wgsl */ `${BINDINGS}
var<workgroup> shareO: array<vec4<f32>, ${rows * hd4}>;
var<workgroup> shareML: array<vec2<f32>, ${rows}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let r = li % ${rows}u;
  let split = li / ${rows}u;
${rowStart(rows, hd4, 'r')}
  let share = (u.Lk + ${splits - 1}u) / ${splits}u;
  let j1 = min(u.Lk, (split + 1u) * share);
  for (var j0 = split * share; j0 < j1; j0 = j0 + ${KEYS_PER_BLOCK}u) {
    var sc: array<f32, ${KEYS_PER_BLOCK}>;
    var bmax = -1e30;
    for (var e = 0u; e < ${KEYS_PER_BLOCK}u; e = e + 1u) {
      sc[e] = -1e30;
      if (j0 + e < j1) {
        let ko = kv + (j0 + e) * u.kL;
        var s = 0.0;
        for (var d = 0u; d < ${hd4}u; d = d + 1u) { s = s + dot(qv[d], k[ko + d]); }
        sc[e] = s;
        bmax = max(bmax, s);
      }
    }
${rescale(hd4, 'bmax')}
    for (var e = 0u; e < ${KEYS_PER_BLOCK}u; e = e + 1u) {
      if (j0 + e < j1) {
        let p = exp(sc[e] - mNew);
        l = l + p;
        let vo = kv + (j0 + e) * u.kL;
        for (var d = 0u; d < ${hd4}u; d = d + 1u) { acc[d] = acc[d] + p * v[vo + d]; }
      }
    }
    m = mNew;
  }
  // split 0 takes in the other splits' shares one at a time (max, sum and output rescaled to a common max)
  for (var giver = 1u; giver < ${splits}u; giver = giver + 1u) {
    workgroupBarrier();
    if (split == giver) {
      shareML[r] = vec2<f32>(m, l);
      for (var d = 0u; d < ${hd4}u; d = d + 1u) { shareO[r * ${hd4}u + d] = acc[d]; }
    }
    workgroupBarrier();
    if (split == 0u) {
      let other = shareML[r];
      let mNew = max(m, other.x);
      let a = exp(m - mNew);
      let b = exp(other.x - mNew);
      l = l * a + other.y * b;
      for (var d = 0u; d < ${hd4}u; d = d + 1u) { acc[d] = acc[d] * a + shareO[r * ${hd4}u + d] * b; }
      m = mNew;
    }
  }
${writeRow(rows, hd4, 'r', 'split == 0u && ')}
}`;
};

const kernels = new Map<string, WgslKernel>();

/**
 * o [N, Lq, H·hd] (token-major) = attention of q (token-major) over the first s.Lk keys of the caches k and v
 * (one layout, in `s`), all of them visible. Head size a multiple of 4 up to MAX_HEAD_DIM (so every stride is
 * a whole number of float4s). `variant` overrides the kernel `cachedAttentionVariant` picks (the bench compares).
 */
export function cachedAttentionInto(
  backend: WebGPUBackendLike,
  s: FlashShape,
  t: { q: tf.TensorInfo; k: tf.TensorInfo; v: tf.TensorInfo; o: tf.TensorInfo },
  variant = cachedAttentionVariant(s.Lq),
): void {
  if (s.hd % 4 !== 0 || s.hd > MAX_HEAD_DIM)
    throw new Error(`cachedAttentionInto: head size ${s.hd} is not a multiple of 4 up to ${MAX_HEAD_DIM}`);
  if (s.k.sN !== s.v.sN || s.k.sH !== s.v.sH || s.k.sL !== s.v.sL || s.k.offset !== s.v.offset)
    throw new Error('cachedAttentionInto: the key and value caches must share one layout');
  if ((s.q.offset | s.k.offset) % 4 !== 0)
    throw new Error('cachedAttentionInto: q, k and v must start at a multiple of 4 floats');
  const rows = variant === 'staged' ? STAGED_ROWS : rowsPerGroup(s.Lq, s.hd);
  const key = `${variant} ${s.hd}/${rows}`;
  let kern = kernels.get(key);
  if (!kern) {
    const code = variant === 'staged' ? stagedCode(s.hd) : splitCode(s.hd, rows);
    kernels.set(key, (kern = new WgslKernel(`cachedAttention ${key}`, code)));
  }
  const o = tokenMajor(s.H, s.Lq, s.hd);
  const u32 = (v: number) => ['u32', v / 4] as const; // strides in float4s
  const u = uniformBlock([
    ['u32', s.H],
    ['u32', s.Lq],
    ['u32', s.Lk],
    ['f32', s.scale],
    ...[s.q, s.k, o].flatMap((l) => [u32(l.sN), u32(l.sH), u32(l.sL)]),
    u32(s.q.offset),
    u32(s.k.offset),
  ]);
  kern.dispatch(backend, [t.q, t.k, t.v, t.o], u, [Math.ceil(s.Lq / rows), s.N * s.H], [t.o]);
}
