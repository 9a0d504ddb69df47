/**
 * Optional native GEMM for the wasm backend: when the `nblas` package (CBLAS bindings built against the
 * system OpenBLAS) is installed, `BatchMatMul` on wasm calls OpenBLAS `sgemm` directly on views of the wasm
 * heap — no copies, transpose flags and batches handled natively, several threads. Measured here: ~105
 * GFLOP/s on one thread and ~205 on two, against ~37 for XNNPACK (tfjs-backends.md §6).
 * Without `nblas` nothing changes: the model then keeps every product 2-D and untransposed for XNNPACK.
 */
import * as tf from '@tensorflow/tfjs-core';

const NO_TRANS = 111;
const TRANS = 112;

type Sgemm = (
  transA: number,
  transB: number,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
) => void;

interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

let active = false;
let original: tf.KernelConfig | undefined;

/** True while wasm's BatchMatMul runs on native sgemm. */
export function nativeGemmActive(): boolean {
  return active;
}

function batchMatMul(sgemm: Sgemm) {
  return ({
    inputs,
    attrs,
    backend,
  }: {
    inputs: Record<string, tf.TensorInfo>;
    attrs?: Record<string, unknown>;
    backend: unknown;
  }): tf.TensorInfo => {
    const { a, b } = inputs;
    const ta = !!attrs?.transposeA;
    const tb = !!attrs?.transposeB;
    if (a.dtype !== 'float32' || b.dtype !== 'float32')
      throw new Error(`native BatchMatMul supports float32 only, got ${a.dtype} x ${b.dtype}`);
    const ra = a.shape.length;
    const rb = b.shape.length;
    const [aRows, aCols] = [a.shape[ra - 2], a.shape[ra - 1]];
    const [bRows, bCols] = [b.shape[rb - 2], b.shape[rb - 1]];
    const M = ta ? aCols : aRows;
    const K = ta ? aRows : aCols;
    const N = tb ? bRows : bCols;
    if ((tb ? bCols : bRows) !== K)
      throw new Error(
        `BatchMatMul inner dimensions differ: [${a.shape}] x [${b.shape}] (transposeA=${ta}, transposeB=${tb})`,
      );
    const batchA = a.shape.slice(0, -2);
    const batchB = b.shape.slice(0, -2);
    const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(batchA, batchB);
    const nA = batchA.reduce((x, y) => x * y, 1);
    const nB = batchB.reduce((x, y) => x * y, 1);
    const nOut = outBatch.reduce((x, y) => x * y, 1);
    if ((nA !== 1 && nA !== nOut) || (nB !== 1 && nB !== nOut)) {
      throw new Error(`native BatchMatMul supports equal or size-1 batches, got [${a.shape}] x [${b.shape}]`);
    }
    const be = backend as WasmBackend;
    const out = be.makeOutput([...outBatch, M, N], 'float32');
    const av = be.typedArrayFromHeap(a);
    const bv = be.typedArrayFromHeap(b);
    const cv = be.typedArrayFromHeap(out);
    const sa = aRows * aCols;
    const sb = bRows * bCols;
    for (let i = 0; i < nOut; i++) {
      const A = nA === 1 ? av : av.subarray(i * sa, (i + 1) * sa);
      const B = nB === 1 ? bv : bv.subarray(i * sb, (i + 1) * sb);
      sgemm(
        ta ? TRANS : NO_TRANS,
        tb ? TRANS : NO_TRANS,
        M,
        N,
        K,
        1,
        A,
        aCols,
        B,
        bCols,
        0,
        cv.subarray(i * M * N, (i + 1) * M * N),
        N,
      );
    }
    return out;
  };
}

/**
 * Routes wasm's BatchMatMul to OpenBLAS when `nblas` loads. Returns a description, or throws with the reason
 * it is unavailable (the caller reports it and keeps XNNPACK).
 */
export function enableNativeGemm(): string {
  if (active) return 'OpenBLAS sgemm (nblas)';
  let sgemm: Sgemm;
  try {
    sgemm = (require('nblas') as { sgemm: Sgemm }).sgemm;
  } catch (e) {
    throw new Error(
      (e as { code?: string }).code === 'MODULE_NOT_FOUND'
        ? 'nblas not installed'
        : `nblas failed to load: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  original = tf.getKernel('BatchMatMul', 'wasm');
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    kernelFunc: batchMatMul(sgemm) as unknown as tf.KernelFunc,
  });
  active = true;
  const threads = process.env.OPENBLAS_NUM_THREADS ?? 'all cores';
  return `OpenBLAS sgemm via nblas (threads: ${threads})`;
}

/** Restores tfjs's own wasm BatchMatMul (XNNPACK). */
export function disableNativeGemm(): void {
  if (!active) return;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  if (original) tf.registerKernel(original);
  active = false;
}
