/** What a GPU adapter says of itself, and whether it is a software one. Browser-safe. */

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
