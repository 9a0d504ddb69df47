/**
 * Attention kernels on the GPU, milliseconds by the wall clock (`wallMsPerCall`: calls back to back and one
 * read-back, less a single one):
 * - the two kernels of attention over the KV cache (`wgsl/cached-attention.ts`: keys split over threads, or key
 *   tiles staged for 64 rows) on the chunks that sampling runs: the 49-token model at S = 1 and 7 and token by
 *   token, and the paper's ablation model at S = 1 and 16, with and without CFG's doubled batch, so that the pick
 *   between them (`cachedAttentionVariant`) follows what the GPU measured;
 * - training's flash attention under the generalized mask, forward and forward + backward, in fp32
 *   (`wgsl/attention.ts`) and on tensor cores (`wgsl/tc-attention.ts`), at the GPU table's model sizes.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { cachedAttentionInto, cachedAttentionVariant } from '../src/backend/wgsl/cached-attention';
import { fusedQkvPart, headMajor, selfAttentionShape, tokenMajor } from '../src/backend/kernels';
import { flashAttentionBackward, flashAttentionForward, rangesTensor } from '../src/backend/wgsl/attention';
import { tensorCoreAttentionBackward, tensorCoreAttentionForward } from '../src/backend/wgsl/tc-attention';
import { withMatmulPrecision } from '../src/backend/wgsl/matmul';
import { getAttnRanges, sequenceLength } from '../src/factorization/mask';
import type { WebGPUBackendLike } from '../src/backend/webgpu-types';
import { asTensor, emptyTensor } from '../src/backend/wgsl/runner';
import { wallMsPerCall } from './wall-clock';

/** [name, images (CFG doubled), heads, chunk rows, cached keys, head size] */
const CASES: [string, number, number, number, number, number][] = [
  ['mnist-base 80 img, S = 1', 80, 4, 49, 53, 64],
  ['mnist-base 80 img, S = 1, CFG', 160, 4, 49, 53, 64],
  ['mnist-base 80 img, S = 7 (last chunk)', 80, 4, 7, 53, 64],
  ['mnist-base 80 img, S = 49', 80, 4, 1, 53, 64],
  ['ablation 8 img, S = 1', 8, 16, 256, 260, 64],
  ['ablation 8 img, S = 1, CFG', 16, 16, 256, 260, 64],
  ['ablation 8 img, S = 16 (last chunk)', 8, 16, 16, 260, 64],
];

export async function benchGpuCachedAttention(repeats = 3): Promise<Record<string, unknown>[]> {
  await initBackend({ backend: 'webgpu', quiet: true });
  const gpu = tf.backend() as unknown as WebGPUBackendLike;
  const rows: Record<string, unknown>[] = [];
  console.log('\ncached attention, ms per dispatch (wall clock) | split | staged | picked');
  for (const [name, N, H, Lq, Lk, hd] of CASES) {
    const q = tf.randomNormal([N, Lq, H * hd]);
    const k = tf.randomNormal([N, H, Lk, hd]);
    const v = tf.randomNormal([N, H, Lk, hd]);
    const o = emptyTensor(gpu, [N, Lq, H * hd]);
    const out = asTensor<tf.Tensor3D>(o);
    const s = { N, H, Lq, Lk, hd, scale: 1 / Math.sqrt(hd), q: tokenMajor(H, Lq, hd), k: headMajor(H, Lk, hd) };
    const ms: Record<string, number> = {};
    for (const variant of ['split', 'staged'] as const) {
      ms[variant] = await wallMsPerCall(
        async (calls) => {
          for (let i = 0; i < calls; i++) cachedAttentionInto(gpu, { ...s, v: s.k }, { q, k, v, o }, variant);
          const probe = tf.slice(out, [0, 0, 0], [1, 1, 1]);
          await probe.data();
          probe.dispose();
        },
        20,
        repeats,
      );
    }
    const picked = cachedAttentionVariant(Lq);
    console.log(`${name.padEnd(47)}| ${ms.split.toFixed(3)} | ${ms.staged.toFixed(3)} | ${picked}`);
    rows.push({ case: `cached attention ${name}`, shape: { N, H, Lq, Lk, hd }, ms, picked });
    tf.dispose([q, k, v, out]);
  }
  return rows;
}

/** [name, batch, heads, tokens L, head size]: the GPU table's cases, cut into 4 AR steps of L/4 tokens. */
const TRAINING_CASES: [string, number, number, number, number][] = [
  ['W384 D6 B64, 64 tokens', 64, 6, 64, 64],
  ['W768 D12 B64, 256 tokens', 64, 12, 256, 64],
  ['ablation W1024 B16, 256 tokens', 16, 16, 256, 64],
];

/**
 * One layer's flash attention as training runs it (q, k token-major, v read in place from qkv), forward and
 * forward + backward, fp32 and tensor cores, with the forward's TFLOP/s over the visible (query, key) pairs.
 */
export async function benchGpuTrainingAttention(repeats = 3): Promise<Record<string, unknown>[]> {
  await initBackend({ backend: 'webgpu', quiet: true });
  const gpu = tf.backend() as unknown as WebGPUBackendLike;
  const rows: Record<string, unknown>[] = [];
  console.log(
    '\ntraining attention, ms a layer (wall clock) | fp32 fwd | fp32 fwd+bwd | TC fwd | TC fwd+bwd | TFLOP/s fwd fp32 / TC',
  );
  for (const [name, N, H, L, hd] of TRAINING_CASES) {
    const sizes = [L / 4, L / 4, L / 4, L / 4];
    const seq = sequenceLength(L, 4, sizes);
    const host = getAttnRanges(L, 4, sizes);
    let pairs = 0;
    for (let i = 0; i < seq; i++) pairs += host[3 * i] + Math.max(0, host[3 * i + 2] - host[3 * i + 1]);
    const s = selfAttentionShape(N, H, seq, hd, fusedQkvPart(H, seq, hd, 2));
    const [q, k, dO] = [0, 1, 2].map(() => tf.randomNormal([N, seq, H * hd]));
    const qkv = tf.randomNormal([N, seq, 3 * H * hd]);
    const ranges = rangesTensor(host, hd);
    const ms: Record<string, number> = {};
    const kernels = {
      fp32: [flashAttentionForward, flashAttentionBackward],
      tc: [tensorCoreAttentionForward, tensorCoreAttentionBackward],
    } as const;
    for (const [precision, [fwd, bwd]] of Object.entries(kernels)) {
      for (const withBackward of [false, true]) {
        const once = () => {
          const [o, lse] = fwd(gpu, s, q, k, qkv, ranges) ?? [];
          if (!o || !lse) return false;
          const grads = withBackward ? (bwd(gpu, s, q, k, qkv, ranges, o, lse, dO) ?? []) : [];
          tf.dispose([o, lse, ...grads]);
          return true;
        };
        const key = `${precision}${withBackward ? ' fwd+bwd' : ' fwd'}`;
        ms[key] = await withMatmulPrecision(precision === 'tc' ? 'f16' : 'f32', async () =>
          once()
            ? wallMsPerCall(
                async (calls) => {
                  for (let i = 0; i < calls; i++) once();
                  const probe = tf.slice(q, [0, 0, 0], [1, 1, 1]);
                  await probe.data();
                  probe.dispose();
                },
                10,
                repeats,
              )
            : NaN,
        );
      }
    }
    const tflops = (m: number) => (4 * N * H * hd * pairs) / m / 1e9;
    const f = (v: number, p = 2) => (Number.isFinite(v) ? v.toFixed(p) : 'n/a');
    console.log(
      `${name.padEnd(45)}| ${f(ms['fp32 fwd'])} | ${f(ms['fp32 fwd+bwd'])} | ${f(ms['tc fwd'])} | ${f(ms['tc fwd+bwd'])} | ${f(tflops(ms['fp32 fwd']), 1)} / ${f(tflops(ms['tc fwd']), 1)}`,
    );
    rows.push({ case: `training attention ${name}`, shape: { N, H, L, seq, hd, pairs }, ms });
    tf.dispose([q, k, dO, qkv, ranges]);
  }
  return rows;
}
