/**
 * Runs hand-written WGSL kernels inside tfjs-webgpu's own command stream, so they order correctly with its
 * kernels and share its buffer pool. Unlike a tfjs program, a kernel here may write several outputs and update
 * tensors in place (the optimizer's parameters and moments), and its WGSL is the whole shader, as written.
 *
 * Bindings are the tensors in the order given (`@binding(0)`, `@binding(1)`, ...), then the uniform block.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GpuBuffer, WebGPUBackendLike } from '../webgpu-types';
import { toBase64 } from '../../util/bytes';
import { peakAllocatedBytes, PoolCounters, poolCounters } from '../webgpu-pool';

/** The most device memory the active webgpu backend's buffer pool held at once, MiB (null on other backends). */
export function webgpuPeakMb(): number | null {
  const gpu = activeWebgpu();
  return gpu ? peakAllocatedBytes(gpu.bufferManager) / 2 ** 20 : null;
}

/** The active webgpu backend's buffer-pool counters so far (null on other backends). */
export function webgpuPoolCounters(): PoolCounters | null {
  const gpu = activeWebgpu();
  return gpu ? poolCounters(gpu.bufferManager) : null;
}

/** The webgpu backend when it is the active one, else null. */
export function activeWebgpu(): WebGPUBackendLike | null {
  return tf.getBackend() === 'webgpu' ? (tf.backend() as WebGPUBackendLike) : null;
}

/** A uniform block of u32 / f32 fields in declaration order (all 4 bytes), padded to 16 bytes. */
export function uniformBlock(fields: readonly (readonly ['u32' | 'f32', number])[]): ArrayBuffer {
  const buf = new ArrayBuffer(Math.ceil(Math.max(fields.length, 1) / 4) * 16);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  fields.forEach(([kind, v], i) => (kind === 'u32' ? (u[i] = v) : (f[i] = v)));
  return buf;
}

/**
 * WGSL of `wgSum(li, v)` (or `name`): the sum of `v`, an f32 or a vector `type`, over a workgroup of `size`
 * threads (a power of two), by tree reduction in workgroup memory. Every thread calls it and gets the total;
 * calls may follow one another.
 */
export function workgroupSum(size: number, type = 'f32', name = 'wgSum'): string {
  return /* wgsl */ `
var<workgroup> red: array<${type}, ${size}>;
fn ${name}(li: u32, v: ${type}) -> ${type} {
  workgroupBarrier();
  red[li] = v;
  workgroupBarrier();
  for (var k = ${size / 2}u; k > 0u; k = k >> 1u) {
    if (li < k) { red[li] = red[li] + red[li + k]; }
    workgroupBarrier();
  }
  return red[0];
}`;
}

/** Workgroups that keep a large GPU busy (H100: 132 SMs, two each): below it, kernels split work finer. */
export const FILL_WORKGROUPS = 256;

/** Workgroups of `size` threads for a grid-stride loop over `n` elements (enough to fill the GPU, no more). */
export function gridStrideGroups(n: number, size: number): number {
  return Math.max(1, Math.min(Math.ceil(n / size), 8192));
}

type Pipeline = { getBindGroupLayout(i: number): unknown };

/** A WGSL compute shader with entry point `main`, compiled once per device. */
export class WgslKernel {
  private readonly pipelines = new WeakMap<object, Pipeline>();

  constructor(
    readonly name: string,
    readonly code: string,
  ) {}

  /** The compute pipeline on this backend's device, created on first use (or now, to surface compile errors). */
  compile(backend: WebGPUBackendLike): Pipeline {
    let p = this.pipelines.get(backend.device);
    if (!p) {
      const module = backend.device.createShaderModule({ code: this.code });
      p = backend.device.createComputePipeline({
        label: this.name,
        layout: 'auto',
        compute: { module, entryPoint: 'main' },
      });
      this.pipelines.set(backend.device, p);
    }
    return p;
  }

  private readonly bindGroups = new WeakMap<object, Map<string, unknown>>();

  /**
   * The bind group of `entries`, made once per distinct set of (buffer, size): the pool hands the same buffers
   * out again, so repeated work (every diffusion step of a sampler; the persistent weights, moments and EMA of
   * the optimizer) binds without creating anything.
   */
  private bindGroup(
    backend: WebGPUBackendLike,
    pipeline: Pipeline,
    entries: { binding: number; resource: { buffer: GpuBuffer; offset: number; size: number } }[],
  ): unknown {
    let cache = this.bindGroups.get(pipeline);
    if (!cache) this.bindGroups.set(pipeline, (cache = new Map()));
    const key = entries.map((e) => `${bufferId(e.resource.buffer)}:${e.resource.size}`).join(',');
    let group = cache.get(key);
    if (group) {
      bindGroupHits++;
      return group;
    }
    if (cache.size >= BIND_GROUP_CACHE_SIZE) cache.clear(); // entries of destroyed (trimmed) buffers go too
    group = backend.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    cache.set(key, group);
    return group;
  }

  /**
   * Records one dispatch of `grid` workgroups over `tensors` (read or written in place) and `uniforms`.
   * Tensors written by the kernel lose any copy tfjs cached on the CPU.
   */
  dispatch(
    backend: WebGPUBackendLike,
    tensors: readonly tf.TensorInfo[],
    uniforms: ArrayBuffer,
    grid: readonly [number, number?, number?],
    written: readonly tf.TensorInfo[] = [],
  ): void {
    dispatches++;
    const G = (globalThis as unknown as { GPUBufferUsage: Record<string, number> }).GPUBufferUsage;
    const entries = tensors.map((t, i) => {
      backend.uploadToGPU(t.dataId);
      backend.commandQueueOwnedIds.add(t.dataId); // tfjs defers freeing a buffer the queue still uses
      return { binding: i, resource: backend.tensorToBinding(t)! };
    });
    const ub = uniformBuffer(backend, uniforms, G.UNIFORM | G.COPY_DST);
    entries.push({ binding: tensors.length, resource: { buffer: ub, offset: 0, size: uniforms.byteLength } });
    const pipeline = this.compile(backend);
    const bindGroup = this.bindGroup(backend, pipeline, entries);
    for (const t of written) backend.tensorMap.get(t.dataId).values = null;
    if (recording) {
      recording.calls.push({ name: this.name, pipeline, bindGroup, grid });
      for (const t of written) recording.written.add(t.dataId);
    }
    if (!encode(backend, this.name, pipeline, bindGroup, grid) && ++backend.dispatchCountInPass >= submitBatch())
      flushQueue(backend);
  }
}

/** tfjs-webgpu's flag: how many programs it records before it submits them to the queue (default 15). */
export const SUBMIT_BATCH_FLAG = 'WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE';
const submitBatch = () => tf.env().getNumber(SUBMIT_BATCH_FLAG);

/**
 * Encodes one dispatch into tfjs-webgpu's command stream; under tf.time / tf.profile in a timed pass of its own
 * (then true).
 */
function encode(
  backend: WebGPUBackendLike,
  name: string,
  pipeline: Pipeline,
  bindGroup: unknown,
  grid: readonly [number, number?, number?],
): boolean {
  backend.ensureCommandEncoderReady();
  // under tf.time / tf.profile each kernel gets its own timed pass, as tfjs-webgpu does for its programs
  const timed = backend.activeTimers != null && backend.supportTimestampQuery;
  if (timed) {
    backend.endComputePassEncoder();
    backend.querySet ??= backend.device.createQuerySet({ type: 'timestamp', count: backend.querySetCount });
    backend.computePassEncoder = backend.commandEncoder.beginComputePass({
      timestampWrites: { querySet: backend.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    });
  }
  backend.computePassEncoder ??= backend.commandEncoder.beginComputePass({});
  backend.computePassEncoder.setPipeline(pipeline);
  backend.computePassEncoder.setBindGroup(0, bindGroup);
  backend.computePassEncoder.dispatchWorkgroups(grid[0], grid[1] ?? 1, grid[2] ?? 1);
  if (timed) {
    backend.endComputePassEncoder();
    backend.activeTimers!.push({ name, query: backend.getQueryTime() });
  }
  return timed;
}

/** Dispatches of one kernel name under a `tf.time` and their summed GPU ms. */
export interface KernelTime {
  name: string;
  dispatches: number;
  ms: number;
}

/**
 * The GPU times of a `tf.time` on webgpu by kernel name, most time first: each dispatch ran in a timed pass of
 * its own (tfjs's programs and, through `encode`, this toolkit's kernels), listed by `getExtraProfileInfo`.
 */
export function kernelTimes(info: tf.TimingInfo): KernelTime[] {
  const byName = new Map<string, KernelTime>();
  const listed = (info as { getExtraProfileInfo?: () => string }).getExtraProfileInfo?.() ?? '';
  for (const part of listed.split(', ')) {
    const [name, ms] = part.split(': ');
    if (!name) continue;
    const k = byName.get(name) ?? { name, dispatches: 0, ms: 0 };
    k.dispatches++;
    k.ms += Number(ms);
    byName.set(name, k);
  }
  return [...byName.values()].sort((a, b) => b.ms - a.ms);
}

/**
 * A sequence of dispatches as recorded (pipelines, bind groups, grids): encoding it again costs three calls
 * into the WebGPU implementation per dispatch and nothing else (no bindings, keys or uniforms to look up).
 * Valid while every buffer it binds keeps its contents' meaning: the recorder's own tensors stay allocated, and
 * the uniform buffers stay cached (`replayDispatches` checks that).
 */
export interface DispatchRecording {
  readonly calls: { name: string; pipeline: Pipeline; bindGroup: unknown; grid: readonly [number, number?, number?] }[];
  /** Tensors the dispatches write: a replay drops any CPU copy tfjs cached of them. */
  readonly written: Set<tf.DataId>;
  readonly device: object;
  readonly generation: number;
}

let recording: { calls: DispatchRecording['calls']; written: Set<tf.DataId> } | null = null;

/** Runs `f`, dispatching as usual, and returns its dispatches as a recording for `replayDispatches`. */
export function recordDispatches(backend: WebGPUBackendLike, f: () => void): DispatchRecording {
  if (recording) throw new Error('recordDispatches: already recording');
  const rec = { calls: [], written: new Set<tf.DataId>() };
  recording = rec;
  try {
    f();
  } finally {
    recording = null;
  }
  return { ...rec, device: backend.device, generation: uniformGeneration(backend) };
}

/**
 * Encodes a recording's dispatches again and submits them. False (nothing encoded) when a uniform buffer it
 * binds may have been recycled since: record again.
 */
export function replayDispatches(backend: WebGPUBackendLike, rec: DispatchRecording): boolean {
  if (rec.device !== backend.device || rec.generation !== uniformGeneration(backend)) return false;
  for (const id of rec.written) backend.tensorMap.get(id).values = null;
  for (const c of rec.calls) encode(backend, c.name, c.pipeline, c.bindGroup, c.grid);
  dispatches += rec.calls.length;
  replayed += rec.calls.length;
  flushQueue(backend);
  return true;
}

/**
 * Submits what tfjs-webgpu has encoded so far, if anything: needed before `queue.writeBuffer` into a buffer that
 * encoded but unsubmitted work still reads (the queue orders writes before later submits only).
 */
export function flushQueue(backend: WebGPUBackendLike): void {
  if (!backend.commandEncoder) return;
  backend.endComputePassEncoder();
  backend.submitQueue();
}

/** Writes `data` over the start of a GPU-resident tensor's buffer, in queue order after all encoded work. */
export function writeTensor(backend: WebGPUBackendLike, t: tf.TensorInfo, data: Float32Array): void {
  backend.uploadToGPU(t.dataId);
  flushQueue(backend);
  const info = backend.tensorMap.get(t.dataId);
  info.values = null;
  backend.queue.writeBuffer(info.resource, 0, data.buffer, data.byteOffset, data.byteLength);
}

const BIND_GROUP_CACHE_SIZE = 4096;
let bindGroupHits = 0;
let dispatches = 0;
let replayed = 0;
const bufferIds = new WeakMap<object, number>();
let nextBufferId = 0;
function bufferId(b: object): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, (id = nextBufferId++));
  return id;
}

/** Dispatches of the project's WGSL kernels so far (the bench's dispatches per step). */
export function wgslDispatches(): number {
  return dispatches;
}

/** Dispatches so far that were encoded by `replayDispatches` (included in `wgslDispatches`). */
export function replayedDispatches(): number {
  return replayed;
}

/** Dispatches so far that reused a bind group (for tests). */
export function bindGroupReuses(): number {
  return bindGroupHits;
}

/** Uniform buffers by content, per device: a step repeats the same few hundred blocks (sizes, constants). */
const uniformCaches = new WeakMap<object, Map<string, GpuBuffer>>();
const UNIFORM_CACHE_SIZE = 2048;

/**
 * A uniform buffer holding `data`, written once and reused by every later dispatch with the same bytes (no
 * allocation and no queue write: part of the host cost of a dispatch). A full cache is handed to tfjs's
 * pending-disposal list, which returns the buffers to its pool after the next submit.
 */
function uniformBuffer(backend: WebGPUBackendLike, data: ArrayBuffer, usage: number): GpuBuffer {
  let cache = uniformCaches.get(backend.device);
  if (!cache) uniformCaches.set(backend.device, (cache = new Map()));
  const key = toBase64(new Uint8Array(data));
  let ub = cache.get(key);
  if (!ub) {
    if (cache.size >= UNIFORM_CACHE_SIZE) {
      backend.uniformPendingDisposal.push(...cache.values());
      cache.clear();
      uniformGenerations.set(backend.device, uniformGeneration(backend) + 1);
    }
    ub = backend.bufferManager.acquireBuffer(data.byteLength, usage);
    backend.queue.writeBuffer(ub, 0, data);
    cache.set(key, ub);
  }
  return ub;
}

/** Counts the clears of a device's uniform cache: a recording made before a clear may bind recycled buffers. */
const uniformGenerations = new WeakMap<object, number>();
const uniformGeneration = (backend: WebGPUBackendLike) => uniformGenerations.get(backend.device) ?? 0;

/** How many uniform blocks are cached on this device (for tests). */
export function cachedUniforms(backend: WebGPUBackendLike): number {
  return uniformCaches.get(backend.device)?.size ?? 0;
}

/** A new float32 tensor on the GPU, uninitialised, for a kernel to fill. */
export function emptyTensor(backend: WebGPUBackendLike, shape: number[]): tf.TensorInfo {
  const info = backend.makeTensorInfo(shape, 'float32');
  backend.uploadToGPU(info.dataId);
  return info;
}

/** Wraps a kernel's output as an engine tensor (tracked by tidy like any other). */
export function asTensor<T extends tf.Tensor>(info: tf.TensorInfo): T {
  return tf.engine().makeTensorFromTensorInfo(info) as T;
}

/** Gives a variable a buffer of its own (clone() and tf.variable share buffers), so it can be updated in place. */
export function ownBuffer(backend: WebGPUBackendLike, v: tf.Variable): void {
  if (backend.refCount(v.dataId) <= 1) return;
  const copy = tf.tidy(() => tf.add(v, 0));
  v.assign(copy);
  copy.dispose();
}
