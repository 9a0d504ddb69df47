/**
 * The WebGPU backend in Node: Dawn (the `webgpu` package) under `@tensorflow/tfjs-backend-webgpu`.
 *
 * - Chosen automatically only on a hardware adapter; a software one (Mesa lavapipe, in CI) only when forced.
 * - Our own device, with the largest buffers and workgroup memory the adapter allows.
 * - Synchronous read-back (`dataSync`, used by the trainer and the sampler): tfjs-webgpu implements it with a
 *   browser `OffscreenCanvas`, which Node lacks. Here it maps a buffer as the asynchronous path does and runs
 *   the event loop (`deasync`) until Dawn has mapped it, so every engine path runs unchanged on the GPU.
 */
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs-core';
import { Attempt, errMsg, tryRequire } from './attempt';
import { bucketBufferPool, trimBufferPool } from './webgpu-pool';
import type { GpuBuffer, WebGPUBackendLike } from './webgpu-types';
import { AdapterLike, deviceRequest, isSoftwareAdapter, submitBatchSize } from './adapter';
import { installTensorCoreMatmul } from './wgsl/matmul';
import { installTensorCoreAttention } from './wgsl/tc-attention';
import { SUBMIT_BATCH_FLAG } from './wgsl/runner';

interface DawnAdapter extends AdapterLike {
  requestDevice(d: object): Promise<unknown>;
}

type DawnModule = {
  create: (flags: string[]) => { requestAdapter: (o?: object) => Promise<DawnAdapter | null> };
  globals: object;
};

/** The device, as far as error reporting goes. */
interface GpuDevice {
  onuncapturederror: ((e: { error: { message: string } }) => void) | null;
}

/**
 * tfjs-webgpu's AddN binds every input as a storage buffer, so summing more gradients than the adapter's
 * per-stage limit (8 on many) makes an invalid pipeline. Sum in chunks of at most `maxInputs` instead.
 */
let addNChunked = false;
function chunkAddN(maxInputs: number): void {
  const original = tf.getKernel('AddN', 'webgpu');
  if (!original || maxInputs < 2 || addNChunked) return;
  addNChunked = true;
  tf.unregisterKernel('AddN', 'webgpu');
  tf.registerKernel({
    kernelName: 'AddN',
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      let terms = inputs as unknown as tf.TensorInfo[];
      const temps: tf.TensorInfo[] = [];
      while (terms.length > maxInputs) {
        const next: tf.TensorInfo[] = [];
        for (let i = 0; i < terms.length; i += maxInputs) {
          const chunk = terms.slice(i, i + maxInputs);
          if (chunk.length === 1) next.push(chunk[0]);
          else {
            const sum = original.kernelFunc({
              inputs: chunk as unknown as tf.NamedTensorInfoMap,
              backend,
              attrs,
            }) as tf.TensorInfo;
            temps.push(sum);
            next.push(sum);
          }
        }
        terms = next;
      }
      const out = original.kernelFunc({
        inputs: terms as unknown as tf.NamedTensorInfoMap,
        backend,
        attrs,
      }) as tf.TensorInfo;
      for (const t of temps) (backend as tf.KernelBackend).disposeData(t.dataId);
      return out;
    },
  });
}

export type { ComputePassLike, GpuBuffer, GpuDeviceLike, WebGPUBackendLike } from './webgpu-types';

function hasGpuDeviceNode(): boolean {
  const dri = fs.existsSync('/dev/dri') && fs.readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
  return dri || fs.existsSync('/dev/nvidia0') || fs.existsSync('/dev/nvidiactl');
}

/** The read-back's sleep between two polls of Dawn's events, ms. */
const POLL_MS = 0.2;
/** One turn of the event loop (Dawn's polls run in it). */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Read-back of exactly the tensor's bytes (pooled buffers can be larger than their tensor), synchronous and
 * asynchronous. The synchronous one (tfjs-webgpu's needs a browser `OffscreenCanvas`) maps a buffer as the
 * asynchronous one does, but waits by polling the buffer's `mapState` while the event loop runs Dawn's
 * event processing. Waiting for the map promise instead would hang whenever the caller itself runs inside
 * a microtask (after any `await`): V8 runs no nested microtask checkpoint, so the promise could never settle.
 * Both sleep POLL_MS between polls: Dawn's Node binding polls from the event loop again at once while anything is
 * pending, so a wait on the GPU spun a core, which lavapipe (the GPU of CPU machines) needs for its own threads.
 */
function installReadBack(
  backend: WebGPUBackendLike,
  runLoopOnce: () => void,
  gpuError: () => string | undefined,
): void {
  const { COPY_DST, MAP_READ } = (globalThis as unknown as { GPUBufferUsage: Record<string, number> }).GPUBufferUsage;
  const READ = (globalThis as unknown as { GPUMapMode: { READ: number } }).GPUMapMode.READ;
  const cached = (dataId: object) => {
    const data = backend.tensorMap.get(dataId);
    if (data.values != null || data.dtype === 'string') return data.values as tf.backend_util.BackendValues;
    if (data.dtype === 'complex64') throw new Error('read-back of complex64 tensors is not supported on webgpu');
    return null;
  };
  const startCopy = (dataId: object) => {
    const data = backend.tensorMap.get(dataId);
    const bytes = tf.util.sizeFromShape(data.shape) * 4;
    const staging = backend.bufferManager.acquireBuffer(bytes, COPY_DST | MAP_READ);
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.commandEncoder.copyBufferToBuffer(data.resource, 0, staging, 0, bytes);
    backend.submitQueue();
    let failure: unknown;
    staging.mapAsync(READ).catch((e) => void (failure = e));
    return { staging, failure: () => failure };
  };
  const finish = (dataId: object, staging: GpuBuffer, failure: unknown) => {
    if (staging.mapState !== 'mapped')
      throw new Error(`GPU read-back failed (${failure instanceof Error ? failure.message : 'device lost?'})`);
    const invalid = gpuError();
    if (invalid?.startsWith('out of memory')) throw new Error(`the GPU ran out of memory (${invalid.split('\n')[0]})`);
    if (invalid) throw new Error(`WebGPU validation error earlier in this computation: ${invalid.split('\n')[0]}`);
    const bytes = staging.getMappedRange().slice(0);
    staging.unmap();
    backend.bufferManager.releaseBuffer(staging);
    trimBufferPool(backend.bufferManager); // the queue is idle here: every submitted use of a free buffer is done
    return backend.convertAndCacheOnCPU(
      dataId,
      tf.util.convertBackendValuesAndArrayBuffer(bytes, backend.tensorMap.get(dataId).dtype),
    );
  };
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const nap = () => Atomics.wait(pause, 0, 0, POLL_MS);
  backend.readSync = (dataId: object) => {
    const hit = cached(dataId);
    if (hit) return hit;
    const { staging, failure } = startCopy(dataId);
    for (runLoopOnce(); staging.mapState === 'pending'; runLoopOnce()) nap();
    return finish(dataId, staging, failure());
  };
  backend.read = async (dataId: object) => {
    const hit = cached(dataId);
    if (hit) return hit;
    const { staging, failure } = startCopy(dataId);
    for (await turn(); staging.mapState === 'pending'; await turn()) nap();
    return finish(dataId, staging, failure());
  };
}

/**
 * Binds each tensor as exactly its own bytes, not the whole pooled buffer: some tfjs kernels read past the
 * end of a tensor and rely on the driver's bounds checks (zero or clamped values) there, which must not see
 * the stale contents of a larger pooled buffer.
 */
function bindExactly(backend: WebGPUBackendLike): void {
  backend.tensorToBinding = (t?: tf.TensorInfo) => {
    if (!t) return null;
    const data = backend.tensorMap.get(t.dataId);
    return { buffer: data.resource, offset: 0, size: Math.max(4, tf.util.sizeFromShape(data.shape) * 4) };
  };
}

/**
 * Activates WebGPU through Dawn. Every failure names what is missing: package, loader, driver, adapter.
 * `forced` allows a software adapter.
 */
let active: { detail: string; software: boolean } | undefined;

export async function activateWebgpu(forced: boolean): Promise<Attempt> {
  // one Dawn device per process: switching back to webgpu reuses it
  if (active && (forced || !active.software) && tf.findBackendFactory('webgpu') && (await tf.setBackend('webgpu')))
    return { ok: true, detail: active.detail };
  // Linux without a GPU device node has no hardware adapter: skip the Dawn probe (and its driver chatter).
  if (!forced && process.platform === 'linux' && !hasGpuDeviceNode())
    return { ok: false, why: 'no GPU device (/dev/dri/renderD*, /dev/nvidia*)' };
  let dawn: DawnModule;
  let tfwebgpu: { WebGPUBackend: new (device: unknown, info?: unknown) => WebGPUBackendLike };
  let deasync: { runLoopOnce: () => void };
  try {
    dawn = tryRequire('webgpu') as DawnModule;
    tfwebgpu = tryRequire('@tensorflow/tfjs-backend-webgpu') as typeof tfwebgpu;
    deasync = tryRequire('deasync') as typeof deasync;
  } catch (e) {
    const missing = (e as { code?: string }).code === 'MODULE_NOT_FOUND';
    return {
      ok: false,
      why: missing
        ? `webgpu packages not installed (${errMsg(e).replace(/^Cannot find module '([^']+)'.*/, '$1')} missing: webgpu, @tensorflow/tfjs-backend-webgpu and deasync come with npm run setup)`
        : `webgpu failed to load: ${errMsg(e)}`,
    };
  }
  Object.assign(globalThis, dawn.globals);
  // fp16 in shaders on NVIDIA's Vulkan driver and the experimental subgroup matrices sit behind Dawn toggles;
  // Dawn rounds GPU timestamps to 65.5 µs (a browser's guard against timing attacks), which would blur the
  // bench's per-kernel times, so Node turns that off
  const gpu = dawn.create([
    'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia',
    'disable-dawn-features=timestamp_quantization',
  ]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    const hint =
      process.platform === 'linux'
        ? ': no Vulkan driver found (install libvulkan1 and a GPU driver, or mesa-vulkan-drivers >= 25 for the CPU one; $VK_DRIVER_FILES / $VK_ICD_FILENAMES select one)'
        : '';
    return { ok: false, why: `webgpu (Dawn) found no GPU adapter${hint}` };
  }
  const info = adapter.info ?? {};
  const name = info.description || [info.vendor, info.architecture].filter(Boolean).join(' ') || 'unknown adapter';
  if (!forced && isSoftwareAdapter(info))
    return { ok: false, why: `only a software adapter (${name}); CAUSALFUSION_BACKEND=webgpu uses it` };
  let gpuError: string | undefined;
  try {
    const { descriptor, tensorCores } = deviceRequest(adapter);
    const device = (await adapter.requestDevice(descriptor)) as GpuDevice;
    // A validation error (an invalid pipeline, say) leaves garbage behind without stopping anything: keep the
    // first one and raise it at the next read-back, so that no wrong number leaves the GPU silently.
    device.onuncapturederror = (e) =>
      void (gpuError ??= `${e.error.constructor?.name === 'GPUOutOfMemoryError' ? 'out of memory: ' : ''}${e.error.message}`);
    // tfjs-webgpu checks navigator.gpu, which Node lacks
    (globalThis as { navigator?: object }).navigator = { ...(globalThis as { navigator?: object }).navigator, gpu };
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    chunkAddN(adapter.limits.maxStorageBuffersPerShaderStage - 1);
    tf.registerBackend('webgpu', () => {
      const backend = new tfwebgpu.WebGPUBackend(device, info);
      bucketBufferPool(
        backend.bufferManager,
        (globalThis as unknown as { GPUBufferUsage: { STORAGE: number } }).GPUBufferUsage.STORAGE,
      );
      bindExactly(backend);
      installReadBack(backend, deasync.runLoopOnce, () => gpuError);
      return backend;
    });
    if (!(await tf.setBackend('webgpu'))) return { ok: false, why: `webgpu backend did not initialise on ${name}` };
    // tfjs submits its commands every 15 programs; on the H100's host a submit costs ~1 ms (a third of a W384
    // step's host time): $CAUSALFUSION_SUBMIT_BATCH submits less often
    const submitBatch = submitBatchSize(process.env.CAUSALFUSION_SUBMIT_BATCH);
    if (submitBatch) tf.env().set(SUBMIT_BATCH_FLAG, submitBatch);
    const backend = tf.backend() as unknown as WebGPUBackendLike;
    const matmul = tensorCores.length
      ? `${await installTensorCoreMatmul(backend)}; ${await installTensorCoreAttention(backend)}`
      : 'fp32 matmul';
    active = {
      detail: `adapter ${name}${isSoftwareAdapter(info) ? ', software' : ''}; ${matmul}`,
      software: isSoftwareAdapter(info),
    };
    return { ok: true, detail: active.detail };
  } catch (e) {
    return { ok: false, why: `webgpu failed on ${name}: ${errMsg(e)}` };
  }
}
