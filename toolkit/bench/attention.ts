/**
 * The two kernels of attention over the KV cache (`wgsl/cached-attention.ts`: keys split over threads, or key
 * tiles staged for 64 rows) on the chunks that sampling runs: the 49-token model at S = 1 and 7 and token by
 * token, and the paper's ablation model at S = 1 and 16, with and without CFG's doubled batch. Milliseconds by the
 * wall clock (`wallMsPerCall`: 20 dispatches back to back and one read-back, less a single one), so
 * the pick between the kernels (`cachedAttentionVariant`) follows what the GPU measured.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { cachedAttentionInto, cachedAttentionVariant } from '../src/backend/wgsl/cached-attention';
import { headMajor, tokenMajor } from '../src/backend/kernels';
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
