/**
 * The fused CPU kernels of `toolkit/native/cfkernels.c` for the wasm backend in Node: LayerNorm, GELU and masked
 * attention forward and backward, the bias gradient, and clip + AdamW + EMA in place, on views of the wasm heap
 * (heap-kernels.ts calls them). The addon is optional: `npm run setup` builds it where a C compiler, Node's headers
 * and OpenBLAS are present; without it (or with $CAUSALFUSION_FUSED=0) the model runs tfjs ops, the reference the
 * kernels are tested against.
 */
import * as path from 'path';
import type { HeapKernels } from './heap-kernels';

/** What `cfkernels.node` exports. */
export type NativeKernels = HeapKernels;

const ADDON = path.resolve(__dirname, '..', '..', '..', 'native', 'build', 'cfkernels.node');

let binding: NativeKernels | null | undefined;
let why = '';

/** Loads the addon once; null (and `nativeKernelsStatus` says why) when it is not built or fails to load. */
export function loadNativeKernels(): NativeKernels | null {
  if (binding !== undefined) return binding;
  try {
    binding = require(ADDON) as NativeKernels;
  } catch (e) {
    binding = null;
    why =
      (e as { code?: string }).code === 'MODULE_NOT_FOUND'
        ? 'not built (npm run setup builds toolkit/native)'
        : `failed to load: ${(e as Error).message.split('\n')[0]}`;
  }
  return binding;
}

/** One line for the backend report: the fused CPU kernels in use, or why not. */
export function nativeKernelsStatus(): string {
  return loadNativeKernels() ? 'fused CPU kernels' : `fused CPU kernels ${why}`;
}
