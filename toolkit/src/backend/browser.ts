/**
 * Picks a tfjs backend in a web page: WebGPU (with the project's WGSL kernels, and the tensor-core matmul where
 * the adapter offers subgroup matrices), else WebGL2, else wasm; or the one asked for. Browser-safe:
 * the page bundles the three tfjs backends; `wasmFiles` maps tfjs's wasm file names to URLs the page can load
 * (blob URLs from a static folder, since `file://` pages cannot fetch their neighbours).
 */
import * as tf from '@tensorflow/tfjs-core';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import '@tensorflow/tfjs-backend-webgl';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { setKernelTable, setPlain2dMatmul } from './kernels';
import { wgslKernels } from './kernels-wgsl';
import { patchWasmKernels } from './wasm-kernels';
import { heapKernelTable } from './kernels-heap';
import { jsHeapKernels } from './js-kernels';
import type { WebGPUBackendLike } from './webgpu-types';
import { AdapterLike, deviceRequest, isSoftwareAdapter } from './adapter';
import { installTensorCoreMatmul } from './wgsl/matmul';
import { installTensorCoreAttention } from './wgsl/tc-attention';

/**
 * Attention calls of at most this many queries run in the JS kernels on wasm (measured on the explorer's models:
 * the 49-token model at S = 49 samples 1.5x faster; at S = 1 XNNPACK's per-head products win).
 */
const JS_ATTENTION_QUERIES = 4;

export const PAGE_BACKENDS = ['webgpu', 'webgl', 'wasm'] as const;
export type PageBackend = (typeof PAGE_BACKENDS)[number];

export interface PageBackendReport {
  chosen: PageBackend;
  /** Adapter, kernels and precision, in words. */
  detail: string;
  /** Backends tried first, and why each was passed over. */
  skipped: { name: PageBackend; why: string }[];
}

interface PageAdapter extends AdapterLike {
  requestDevice(d: object): Promise<{ lost?: Promise<unknown> }>;
}

const gpuOf = () =>
  (globalThis as { navigator?: { gpu?: { requestAdapter(o?: object): Promise<PageAdapter | null> } } }).navigator?.gpu;

async function startWebgpu(forced: boolean): Promise<string> {
  const gpu = gpuOf();
  if (!gpu) throw new Error('this browser has no WebGPU (navigator.gpu is missing)');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('WebGPU offered no adapter');
  const info = adapter.info ?? {};
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'adapter';
  if (!forced && isSoftwareAdapter(info)) throw new Error(`only a software adapter (${name}); ?backend=webgpu uses it`);
  const { descriptor, tensorCores } = deviceRequest(adapter);
  const device = await adapter.requestDevice(descriptor);
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new WebGPUBackend(device as never, info as never));
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not start');
  const backend = tf.backend() as unknown as WebGPUBackendLike;
  const matmul = tensorCores.length
    ? `${await installTensorCoreMatmul(backend)}; ${await installTensorCoreAttention(backend)}`
    : 'fp32 matmul';
  setKernelTable('webgpu', wgslKernels(backend));
  return `${name}; WGSL flash attention, LayerNorm, GELU; ${matmul}`;
}

/** tfjs wasm file name -> URL, fetched only when the wasm backend is tried. */
export type WasmFiles = () => Promise<Record<string, string> | undefined>;

/** The renderer of a WebGL2 context, where the browser tells it. */
function webglRenderer(): string {
  const gl = document.createElement('canvas').getContext('webgl2');
  const ext = gl?.getExtension('WEBGL_debug_renderer_info');
  return ext && gl ? String(gl.getParameter(ext.UNMASKED_RENDERER_WEBGL)) : '';
}

async function start(name: PageBackend, wasmFiles: WasmFiles | undefined, forced: boolean): Promise<string> {
  if (name === 'webgpu') return startWebgpu(forced);
  if (name === 'wasm') {
    const files = await wasmFiles?.();
    // tfjs wants an entry for the threaded build too, which it never loads once threads are off
    if (files) setWasmPaths({ 'tfjs-backend-wasm-threaded-simd.wasm': files['tfjs-backend-wasm-simd.wasm'], ...files });
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false); // threads need cross-origin isolation; one file less
    if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not start');
    patchWasmKernels();
    setKernelTable('wasm', heapKernelTable(jsHeapKernels, 'js', { maxAttentionQueries: JS_ATTENTION_QUERIES }));
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    return `XNNPACK${simd ? ' with SIMD' : ''}, patched kernels, JS LayerNorm and KV-cache attention`;
  }
  const renderer = webglRenderer();
  if (!forced && isSoftwareAdapter({ description: renderer }))
    throw new Error(`only a software renderer (${renderer}); ?backend=webgl uses it`);
  if (!(await tf.setBackend(name))) throw new Error(`the ${name} backend did not start`);
  const gl = tf.env().getNumber('WEBGL_VERSION');
  return `WebGL ${gl}, ${tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED') ? 'float32' : 'float16'} textures`;
}

/**
 * Starts the backend `wanted` (a forced one that fails is an error), or the first of webgpu, webgl, wasm
 * that starts on real hardware (a software GPU, SwiftShader say, is tens of times slower than wasm), with its device
 * table: the WGSL kernels on webgpu, the JS heap kernels on wasm, none on webgl.
 */
export async function initPageBackend(
  wanted: PageBackend | 'auto' = 'auto',
  opts: { wasmFiles?: WasmFiles } = {},
): Promise<PageBackendReport> {
  if (wanted !== 'auto' && !PAGE_BACKENDS.includes(wanted))
    throw new Error(`unknown backend "${wanted as string}": use one of auto, ${PAGE_BACKENDS.join(', ')}`);
  setKernelTable('', null);
  setPlain2dMatmul(() => tf.getBackend() === 'wasm'); // XNNPACK wants plain 2-D products
  const order = wanted === 'auto' ? [...PAGE_BACKENDS] : [wanted];
  const skipped: { name: PageBackend; why: string }[] = [];
  for (const name of order) {
    try {
      return { chosen: name, detail: await start(name, opts.wasmFiles, wanted !== 'auto'), skipped };
    } catch (e) {
      skipped.push({ name, why: (e as Error).message.split('\n')[0] });
    }
  }
  throw new Error(`no backend started: ${skipped.map((s) => `${s.name}: ${s.why}`).join('; ')}`);
}
