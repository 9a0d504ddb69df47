/**
 * Picks the fastest tfjs backend this machine can run, in the order
 *   tensorflow (@tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node) > webgpu (Dawn via the `webgpu`
 *   package, only on a hardware adapter unless forced) > wasm (XNNPACK, SIMD) > cpu,
 * with an override through `initBackend({backend})` or the CAUSALFUSION_BACKEND environment variable, and a
 * one-line report of what was chosen and why the others were skipped.
 */
import * as tf from '@tensorflow/tfjs-core';
import { patchWasmKernels } from './wasm-kernels';
import { activateWebgpu, WebGPUBackendLike } from './webgpu';
import { activeWebgpu } from './wgsl/runner';
import { Attempt, errMsg, tryRequire } from './attempt';
import { disableNativeGemm, enableNativeGemm, nativeGemmActive } from './native-gemm';
import { loadNativeKernels, NativeKernels, nativeKernelsStatus } from './native-kernels';
import { FusedKernels, kernels, setKernelsEnabled, setKernelTable, setPlain2dMatmul } from './kernels';
import { wgslKernels } from './kernels-wgsl';
import { setMatmulPrecision } from './wgsl/matmul';
import { heapKernelTable } from './kernels-heap';

export { nativeGemmActive } from './native-gemm';
export { nativeKernelsStatus } from './native-kernels';
export type { NativeKernels } from './native-kernels';
export { isSoftwareAdapter } from './adapter';
export { matmulPrecision, setMatmulPrecision, tensorCoreMatmul, tensorCoresAvailable } from './wgsl/matmul';
export type { MatmulPrecision } from './wgsl/matmul';

export const BACKENDS = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendReport {
  chosen: BackendName;
  /** Backends tried before the chosen one, and why each was skipped. */
  skipped: { name: BackendName; why: string }[];
  /** Details of the chosen backend (package, SIMD, adapter...). */
  detail: string;
  /** One line for logs and notebook banners. */
  line: string;
}

let current: BackendReport | null = null;

/** The report of the last `initBackend` call, or null before the first. */
export function backendReport(): BackendReport | null {
  return current;
}

/** Parses a backend name from user input, with an error naming the valid choices. */
export function parseBackendName(name: string): BackendName | 'auto' {
  const n = name.trim().toLowerCase();
  if (n === 'auto' || (BACKENDS as readonly string[]).includes(n)) return n as BackendName | 'auto';
  throw new Error(`unknown backend "${name}": use one of auto, ${BACKENDS.join(', ')}`);
}

/** Options of `initBackend`. */
export interface BackendOptions {
  /** Force a backend; 'auto' (default) tries them fastest first. Default from $CAUSALFUSION_BACKEND. */
  backend?: BackendName | 'auto';
  /** On wasm, run matmuls on OpenBLAS through `nblas` when installed. Default true unless
   *  $CAUSALFUSION_NATIVE_GEMM=0. */
  nativeGemm?: boolean;
  /** Do not print the one-line report. */
  quiet?: boolean;
}

/** Switches wasm's matmul between native OpenBLAS and XNNPACK; returns a description of the result. */
export function setNativeGemm(on: boolean): string {
  if (!on) {
    disableNativeGemm();
    return 'XNNPACK matmul (native GEMM off)';
  }
  try {
    return enableNativeGemm();
  } catch (e) {
    return `XNNPACK matmul (native GEMM unavailable: ${(e as Error).message})`;
  }
}

async function activate(name: BackendName, nativeGemm: boolean, forced: boolean): Promise<Attempt> {
  if (name === 'tensorflow') {
    const errs: string[] = [];
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      try {
        tryRequire(pkg);
        if (await tf.setBackend('tensorflow')) return { ok: true, detail: pkg };
        errs.push(`${pkg}: backend did not initialise`);
      } catch (e) {
        errs.push(
          `${pkg} ${(e as { code?: string }).code === 'MODULE_NOT_FOUND' ? 'not installed' : `failed: ${errMsg(e)}`}`,
        );
      }
    }
    return { ok: false, why: errs.join('; ') };
  }
  if (name === 'webgpu') return activateWebgpu(forced);
  if (name === 'wasm') {
    try {
      tryRequire('@tensorflow/tfjs-backend-wasm');
      if (!(await tf.setBackend('wasm'))) return { ok: false, why: 'wasm backend did not initialise' };
      patchWasmKernels();
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      const gemm = setNativeGemm(nativeGemm);
      return { ok: true, detail: `SIMD ${simd ? 'on' : 'off'}, patched kernels, ${gemm}, ${nativeKernelsStatus()}` };
    } catch (e) {
      return { ok: false, why: `wasm failed: ${errMsg(e)}` };
    }
  }
  require('@tensorflow/tfjs-backend-cpu');
  return (await tf.setBackend('cpu'))
    ? { ok: true, detail: 'plain JS kernels (slow)' }
    : { ok: false, why: 'cpu failed' };
}

/**
 * Chooses and activates a backend. `backend` (or CAUSALFUSION_BACKEND) forces one; a forced backend that
 * cannot start is an error, never a silent fallback.
 */
export async function initBackend(opts: BackendOptions = {}): Promise<BackendReport> {
  const wanted = opts.backend ?? parseBackendName(process.env.CAUSALFUSION_BACKEND ?? 'auto');
  const nativeGemm = opts.nativeGemm ?? process.env.CAUSALFUSION_NATIVE_GEMM !== '0';
  const order: BackendName[] = wanted === 'auto' ? [...BACKENDS] : [wanted];
  const skipped: { name: BackendName; why: string }[] = [];
  for (const name of order) {
    const r = await activate(name, nativeGemm, wanted !== 'auto');
    if (r.ok) {
      setKernelTable(name, kernelTable(name));
      const how = wanted === 'auto' ? 'auto' : 'forced';
      const skips = skipped.map((s) => `${s.name}: ${s.why}`).join('; ');
      const line = `[causalfusion] backend ${name} (${how}; ${r.detail})${skips ? ` — skipped ${skips}` : ''}`;
      current = { chosen: name, skipped, detail: r.detail, line };
      if (!opts.quiet) console.log(line);
      return current;
    }
    skipped.push({ name, why: r.why });
  }
  throw new Error(`backend ${wanted} is not available: ${skipped.map((s) => s.why).join('; ')}`);
}

/** The device table of a backend that just started: its fused kernels, chosen once (backend/kernels.ts). */
function kernelTable(name: BackendName): FusedKernels | null {
  if (name === 'webgpu') {
    const gpu = activeWebgpu();
    return gpu ? wgslKernels(gpu) : null;
  }
  const cpu = name === 'wasm' ? loadNativeKernels() : null;
  return cpu ? heapKernelTable(cpu, 'native') : null;
}

setKernelsEnabled(process.env.CAUSALFUSION_FUSED !== '0');
if (process.env.CAUSALFUSION_MATMUL === 'f32') setMatmulPrecision('f32');
setPlain2dMatmul(() => tf.getBackend() === 'wasm' && !nativeGemmActive());

/**
 * Turns the hand-written kernels (fused optimizer, LayerNorm, GELU, attention: WGSL on webgpu, toolkit/native
 * on wasm) on or off; on by default, off with $CAUSALFUSION_FUSED=0. Off, the model runs tfjs's own kernels
 * only: the reference they are tested against.
 */
export function setFusedKernels(on: boolean): void {
  setKernelsEnabled(on);
}

/** The webgpu backend when its WGSL kernel table is in use, else null (for the low-level kernels and tests). */
export function fusedKernels(): WebGPUBackendLike | null {
  return kernels()?.name === 'wgsl' ? activeWebgpu() : null;
}

/** The native addon when its kernel table is in use (wasm, built, fused kernels on), else null. */
export function nativeKernels(): NativeKernels | null {
  return kernels()?.name === 'native' ? loadNativeKernels() : null;
}

export { kernels, prefersPlain2dMatmul } from './kernels';
export type { FusedKernels } from './kernels';

/**
 * The backend chosen at start-up by the CausalFusion Jupyter kernel (kernels/startup.js), or a fresh
 * `initBackend()` anywhere else: what a notebook awaits before its first tensor.
 */
export function backendReady(): Promise<BackendReport> {
  const pending = (globalThis as { causalfusionBackend?: Promise<BackendReport> }).causalfusionBackend;
  return pending ?? initBackend();
}
