/**
 * What an explorer folder (or single page) carries besides the bundle, shared by the Node writer (folder.ts)
 * and the page (page.ts). `file://` pages cannot fetch their neighbours, so everything arrives by <script>:
 * the manifest as a global, the weights as base64 chunks that call `causalfusionChunk`, tfjs's wasm files as
 * base64 that the page turns into blob URLs. Browser-safe.
 */
import { fromBase64 } from '../util/bytes';

/** One model the page offers. */
export interface ManifestModel {
  /** Shown in the model list; also the folder of its chunks (`models/<name>/<i>.js`). */
  name: string;
  /** The checkpoint's file name (its extension tells the format). */
  file: string;
  /** Bytes of the checkpoint (float16 weights). */
  bytes: number;
  /** Number of chunk scripts. */
  chunks: number;
}

/** A few real test images for editing, [n, C, H, W] grey bytes (x / 127.5 - 1 is the model range). */
export interface ManifestImages {
  dataset: string;
  shape: [number, number, number, number];
  /** base64 of the bytes. */
  pixels: string;
  labels: number[];
  /** Class names, when the dataset has words for them. */
  classNames?: string[];
}

export interface ExplorerManifest {
  title: string;
  models: ManifestModel[];
  /** Test images by model name (absent: the model's shape has none; editing uses generated images). */
  images: Record<string, ManifestImages>;
  /** Written by `causalfusion explorer` at this toolkit version. */
  version: string;
}

/** The globals the page reads. */
export interface ExplorerGlobals {
  CAUSALFUSION_EXPLORER?: ExplorerManifest;
  /** tfjs wasm file name -> base64. */
  CAUSALFUSION_WASM?: Record<string, string>;
  /** A single-file page puts the chunks here instead of in scripts: model name -> base64 chunks. */
  CAUSALFUSION_INLINE_WEIGHTS?: Record<string, string[]>;
  causalfusionChunk?: (model: string, index: number, base64: string) => void;
}

/** Bytes per weight chunk before base64 (a chunk is one script, one step of the progress bar). */
export const CHUNK_BYTES = 256 * 1024;

/** The images of a manifest entry in model range, [C, H, W] each. */
export function decodeImages(m: ManifestImages): Float32Array[] {
  const bytes = fromBase64(m.pixels);
  const [n, C, H, W] = m.shape;
  const size = C * H * W;
  if (bytes.length !== n * size) throw new Error(`test images: ${bytes.length} bytes for [${m.shape}]`);
  return Array.from({ length: n }, (_, i) =>
    Float32Array.from(bytes.subarray(i * size, (i + 1) * size), (b) => b / 127.5 - 1),
  );
}

/** The chunk script of `model` holding `base64`. */
export const chunkScript = (model: string, index: number, base64: string): string =>
  `causalfusionChunk(${JSON.stringify(model)},${index},"${base64}");\n`;
