/**
 * Parity with the official PyTorch code on every CPU path: wasm with native GEMM (when nblas is installed) or
 * XNNPACK, each with the fused native kernels (toolkit/native) and with tfjs ops only, and the plain cpu backend.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { backendReport, nativeGemmActive, nativeKernels, setFusedKernels } from '../src/backend';
import { TOLERANCES, fixtureInputs } from '../src/parity';
import { configFromOfficial } from '../src/model/config';
import { CausalDiffusionModel } from '../src/model/causalfusion';
import { getAttnMask } from '../src/factorization';
import { assertFullParity, reference, useBackend } from './helpers';

const PATHS: { label: string; backend: 'wasm' | 'cpu'; gemm: boolean; fused: boolean }[] = [
  {
    label: 'wasm + native GEMM (or XNNPACK when nblas is absent) + fused native kernels',
    backend: 'wasm',
    gemm: true,
    fused: true,
  },
  {
    label: 'wasm + native GEMM (or XNNPACK when nblas is absent), tfjs ops',
    backend: 'wasm',
    gemm: true,
    fused: false,
  },
  { label: 'wasm + XNNPACK + fused native kernels', backend: 'wasm', gemm: false, fused: true },
  { label: 'wasm + XNNPACK, tfjs ops', backend: 'wasm', gemm: false, fused: false },
  { label: 'cpu', backend: 'cpu', gemm: false, fused: false },
];

for (const { label, backend, gemm, fused } of PATHS) {
  test(`every fixture comparison within tolerance on ${label}`, async () => {
    await useBackend(backend, gemm);
    setFusedKernels(fused);
    try {
      if (backend === 'wasm' && !gemm) assert.equal(nativeGemmActive(), false);
      if (backend === 'wasm') assert.equal(!!nativeKernels(), fused, `native kernels: ${backendReport()?.detail}`);
      const rows = assertFullParity();
      const grads = rows.filter((r) => r.section === 'grads');
      // only the key-LayerNorm biases have a true gradient of ~0 (a shift of all keys does not change softmax)
      assert.deepEqual(
        grads.filter((r) => r.note).map((r) => r.item),
        ['blocks.0.attn.k_norm.bias', 'blocks.1.attn.k_norm.bias'],
      );
      const fwd = rows.filter((r) => r.section === 'forward' && r.metric === 'rel');
      assert.ok(fwd.every((r) => r.maxRel <= TOLERANCES.forward));
    } finally {
      setFusedKernels(true);
    }
  });
}

test('recorded attention is exactly zero where the generalized causal mask forbids it', async () => {
  await useBackend('wasm');
  const ref = reference();
  const f = ref.forward;
  const model = new CausalDiffusionModel(configFromOfficial(ref.model_config), { stateDict: ref.state_dict });
  const probs: Float32Array[] = [];
  const mse = model.forward(fixtureInputs(ref), { attention: (_l, p) => probs.push(p.dataSync() as Float32Array) });
  const mask = getAttnMask(16, ref.model_config.num_cond_tokens as number, f.split_sizes);
  const S = mask.seqLen;
  assert.equal(probs.length, 2);
  for (const p of probs) {
    assert.equal(p.length, 2 * 4 * S * S);
    for (let i = 0; i < p.length; i++) {
      const cell = i % (S * S);
      if (mask.maskedOut[cell]) assert.equal(p[i], 0);
    }
  }
  tf.dispose(mse);
  model.dispose();
});
