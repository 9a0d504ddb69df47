/**
 * Picks the fastest tfjs backend this machine can run, in the order
 *   tensorflow (@tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node) > webgpu (Dawn via the `webgpu`
 *   package, only with an adapter) > wasm (XNNPACK, SIMD) > cpu,
 * with an override through `initBackend({backend})` or the CAUSALFUSION_BACKEND environment variable, and a
 * one-line report of what was chosen and why the others were skipped.
 */
import * as tf from '@tensorflow/tfjs';
import { patchWasmKernels } from './wasm-kernels';
import { disableNativeGemm, enableNativeGemm, nativeGemmActive } from './native-gemm';

export { nativeGemmActive } from './native-gemm';

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

type Attempt = { ok: true; detail: string } | { ok: false; why: string };

function tryRequire(id: string): unknown {
  // Optional packages: resolved at run time so that a missing one is a skip, not a crash.
  return require(id);
}

/** What a WebGPU adapter says of itself (Dawn fills these; other implementations may leave some out). */
interface AdapterInfo {
  vendor?: string;
  architecture?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

/** Software rasterisers (Mesa lavapipe / llvmpipe, SwiftShader, WARP) are for tests, never an automatic choice. */
export function isSoftwareAdapter(info: AdapterInfo): boolean {
  return !!info.isFallbackAdapter || info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader|warp|basic render/i.test(`${info.description ?? ''} ${info.vendor ?? ''}`);
}

/**
 * WebGPU through Dawn (the `webgpu` package). Automatic choice only on a hardware adapter; a software one
 * (lavapipe in CI) only when forced. Every failure names what is missing: package, loader, driver.
 */
async function activateWebgpu(forced: boolean): Promise<Attempt> {
  // Linux without a GPU device node has no hardware adapter: skip the Dawn probe (and its driver chatter).
  if (!forced && process.platform === 'linux' && !hasGpuDeviceNode()) return { ok: false, why: 'no GPU device (/dev/dri/renderD*, /dev/nvidia*)' };
  let dawn: DawnModule;
  let tfwebgpu: { WebGPUBackend: new (device: unknown, info?: unknown) => tf.KernelBackend };
  try {
    dawn = tryRequire('webgpu') as DawnModule;
    tfwebgpu = tryRequire('@tensorflow/tfjs-backend-webgpu') as typeof tfwebgpu;
  } catch (e) {
    const missing = (e as { code?: string }).code === 'MODULE_NOT_FOUND';
    return { ok: false, why: missing ? 'webgpu packages not installed (npm packages webgpu and @tensorflow/tfjs-backend-webgpu: run npm run setup)' : `webgpu failed to load: ${errMsg(e)}` };
  }
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    const hint = process.platform === 'linux' ? ': no Vulkan driver found (install libvulkan1 and a GPU driver, or mesa-vulkan-drivers >= 25 for the CPU one; $VK_DRIVER_FILES / $VK_ICD_FILENAMES select one)' : '';
    return { ok: false, why: `webgpu (Dawn) found no GPU adapter${hint}` };
  }
  const info = adapter.info ?? {};
  const name = info.description || [info.vendor, info.architecture].filter(Boolean).join(' ') || 'unknown adapter';
  if (!forced && isSoftwareAdapter(info)) return { ok: false, why: `only a software adapter (${name}); CAUSALFUSION_BACKEND=webgpu uses it` };
  try {
    // our own device: the largest buffers and workgroup memory the adapter allows
    const want = ['timestamp-query', 'bgra8unorm-storage'].filter((f) => adapter.features.has(f));
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures: want,
      requiredLimits: {
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      },
    });
    // tfjs-webgpu checks navigator.gpu, which Node lacks
    (globalThis as { navigator?: object }).navigator = { ...(globalThis as { navigator?: object }).navigator, gpu };
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', () => new tfwebgpu.WebGPUBackend(device, info));
    if (await tf.setBackend('webgpu')) return { ok: true, detail: `adapter ${name}${isSoftwareAdapter(info) ? ', software' : ''}` };
    return { ok: false, why: `webgpu backend did not initialise on ${name}` };
  } catch (e) {
    return { ok: false, why: `webgpu failed on ${name}: ${errMsg(e)}` };
  }
}

interface DawnAdapter {
  info?: AdapterInfo;
  features: Set<string>;
  limits: Record<string, number>;
  requestDevice(d: object): Promise<unknown>;
}
type DawnModule = { create: (flags: string[]) => { requestAdapter: (o?: object) => Promise<DawnAdapter | null> }; globals: object };

function hasGpuDeviceNode(): boolean {
  const fs = require('fs') as typeof import('fs');
  const dri = fs.existsSync('/dev/dri') ? fs.readdirSync('/dev/dri').some((f) => f.startsWith('renderD')) : false;
  return dri || fs.existsSync('/dev/nvidia0') || fs.existsSync('/dev/nvidiactl');
}

function errMsg(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0].slice(0, 160);
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
        errs.push(`${pkg} ${(e as { code?: string }).code === 'MODULE_NOT_FOUND' ? 'not installed' : `failed: ${errMsg(e)}`}`);
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
      return { ok: true, detail: `SIMD ${simd ? 'on' : 'off'}, patched kernels, ${gemm}` };
    } catch (e) {
      return { ok: false, why: `wasm failed: ${errMsg(e)}` };
    }
  }
  require('@tensorflow/tfjs-backend-cpu');
  return (await tf.setBackend('cpu')) ? { ok: true, detail: 'plain JS kernels (slow)' } : { ok: false, why: 'cpu failed' };
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

/** True when matmuls must avoid transpose flags and batching to reach XNNPACK (wasm without native GEMM). */
export function prefersPlain2dMatmul(): boolean {
  return tf.getBackend() === 'wasm' && !nativeGemmActive();
}

/**
 * The backend chosen at start-up by the CausalFusion Jupyter kernel (kernels/startup.js), or a fresh
 * `initBackend()` anywhere else: what a notebook awaits before its first tensor.
 */
export function backendReady(): Promise<BackendReport> {
  const pending = (globalThis as { causalfusionBackend?: Promise<BackendReport> }).causalfusionBackend;
  return pending ?? initBackend();
}
