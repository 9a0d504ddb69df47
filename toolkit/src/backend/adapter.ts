/**
 * What a GPU adapter says of itself, whether it is a software one, and the device the project asks of it (Dawn in
 * Node and a browser's WebGPU alike). Browser-safe.
 */
import { tensorCoreFeatures } from './wgsl/matmul';

/** What a WebGPU adapter says of itself (Dawn fills these; other implementations may leave some out). */
export interface AdapterInfo {
  vendor?: string;
  architecture?: string;
  description?: string;
  isFallbackAdapter?: boolean;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

/**
 * Software rasterisers (Mesa lavapipe / llvmpipe, SwiftShader, WARP) are for tests, never an automatic choice:
 * they emulate a GPU on the CPU, slower than the wasm backend there (tens of times, measured for the explorer).
 */
export function isSoftwareAdapter(info: AdapterInfo): boolean {
  return (
    !!info.isFallbackAdapter ||
    info.architecture === 'software' ||
    /llvmpipe|lavapipe|swiftshader|warp|basic render/i.test(
      `${info.description ?? ''} ${info.vendor ?? ''} ${info.architecture ?? ''}`,
    )
  );
}

/** The part of a WebGPU adapter the device request reads. */
export interface AdapterLike {
  info?: AdapterInfo;
  features: Set<string>;
  limits: Record<string, number>;
}

/**
 * The device descriptor for `adapter`: the largest buffers, workgroup memory and storage bindings it allows (the
 * kernels size their tiles and batches to them), timestamps and fp16 where offered, and the tensor-core
 * features when it has all of them (`tensorCores`, empty otherwise).
 */
export function deviceRequest(adapter: AdapterLike): { descriptor: object; tensorCores: string[] } {
  const info = adapter.info ?? {};
  const l = adapter.limits;
  const tensorCores = tensorCoreFeatures(adapter.features, [info.subgroupMinSize, info.subgroupMaxSize]);
  const descriptor = {
    // shader-f16 wherever offered: the tensor-core kernels' tests emulate them on adapters without subgroup
    // matrices (lavapipe) with the same fp16 staging
    requiredFeatures: [
      ...new Set([
        ...['timestamp-query', 'bgra8unorm-storage', 'shader-f16'].filter((f) => adapter.features.has(f)),
        ...tensorCores,
      ]),
    ],
    requiredLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  };
  return { descriptor, tensorCores };
}

/**
 * `$CAUSALFUSION_SUBMIT_BATCH` read as programs per queue submit: null when unset (tfjs's default), else a whole
 * number >= 1; anything else is an error that names the variable.
 */
export function submitBatchSize(value: string | undefined): number | null {
  if (value === undefined || value === '') return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`CAUSALFUSION_SUBMIT_BATCH must be a whole number >= 1 (programs per submit), got "${value}"`);
  return n;
}
