/**
 * The parts of tfjs-webgpu's backend and of a WebGPU device that the read-back, the buffer pool and the WGSL
 * kernels use (types only: the WGSL kernels run in a browser's WebGPU as on Dawn).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { BufferPool, PooledBuffer } from './webgpu-pool';

/** A GPU buffer as Dawn exposes it (only what the read-back uses). */
export interface GpuBuffer extends PooledBuffer {
  mapState: 'unmapped' | 'pending' | 'mapped';
  mapAsync(mode: number): Promise<void>;
  getMappedRange(): ArrayBuffer;
  unmap(): void;
}

/** The parts of tfjs-webgpu's backend that the read-back and the fused kernels use. */
export interface WebGPUBackendLike extends tf.KernelBackend {
  device: GpuDeviceLike;
  queue: { writeBuffer(b: unknown, offset: number, data: ArrayBuffer, dataOffset?: number, size?: number): void };
  tensorMap: {
    get(id: object): {
      values?: tf.backend_util.BackendValues | null;
      dtype: tf.DataType;
      shape: number[];
      resource: GpuBuffer;
    };
  };
  bufferManager: BufferPool<GpuBuffer> & { releaseBuffer(b: GpuBuffer): void };
  commandEncoder: {
    copyBufferToBuffer(src: GpuBuffer, so: number, dst: GpuBuffer, d: number, size: number): void;
    beginComputePass(d: object): ComputePassLike;
  };
  computePassEncoder: ComputePassLike | null;
  commandQueueOwnedIds: WeakSet<object>;
  uniformPendingDisposal: GpuBuffer[];
  dispatchCountInPass: number;
  activeTimers: { name: string; query: Promise<number> }[] | null;
  supportTimestampQuery: boolean;
  querySet: unknown;
  querySetCount: number;
  getQueryTime(): Promise<number>;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  uploadToGPU(dataId: object): void;
  tensorToBinding(t?: tf.TensorInfo): { buffer: GpuBuffer; offset: number; size: number } | null;
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  convertAndCacheOnCPU(id: object, v: tf.backend_util.BackendValues): tf.backend_util.BackendValues;
}

/** What the fused kernels need of a Dawn device and compute pass. */
export interface GpuDeviceLike {
  createShaderModule(d: { code: string }): unknown;
  createComputePipeline(d: object): { getBindGroupLayout(i: number): unknown };
  createBindGroup(d: object): unknown;
  createQuerySet(d: object): unknown;
  limits: Record<string, number>;
}
export interface ComputePassLike {
  setPipeline(p: unknown): void;
  setBindGroup(i: number, g: unknown): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void;
  end(): void;
}
