/**
 * Images <-> token sequences, host side. Patchify is the official `nchpwq -> nhwpqc`: tokens in raster
 * order, channels last inside each patch.
 */

/** Calls f(pixelIndex, tokenIndex) for every value: flat [N, C, H, W] index and flat [N, L, p*p*C] index. */
function forEachPatchValue(
  N: number,
  C: number,
  H: number,
  W: number,
  p: number,
  f: (pixel: number, token: number) => void,
): void {
  const w = W / p;
  const L = (H / p) * w;
  const d = p * p * C;
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let y = 0; y < H; y++)
        for (let xx = 0; xx < W; xx++) {
          const token = Math.floor(y / p) * w + Math.floor(xx / p);
          const inner = ((y % p) * p + (xx % p)) * C + c;
          f(((n * C + c) * H + y) * W + xx, (n * L + token) * d + inner);
        }
}

/** [N, C, H, W] -> [N, L, p*p*C] with L = (H/p)(W/p). */
export function patchify(x: Float32Array, N: number, C: number, H: number, W: number, p: number): Float32Array {
  if (H % p !== 0 || W % p !== 0) throw new Error(`image ${H}x${W} is not divisible by the patch size ${p}`);
  if (x.length !== N * C * H * W)
    throw new Error(`expected ${N * C * H * W} values for [${N}, ${C}, ${H}, ${W}], got ${x.length}`);
  const out = new Float32Array(x.length);
  forEachPatchValue(N, C, H, W, p, (pixel, token) => (out[token] = x[pixel]));
  return out;
}

/** Inverse of `patchify`: [N, L, p*p*C] -> [N, C, H, W]. */
export function unpatchify(tokens: Float32Array, N: number, C: number, H: number, W: number, p: number): Float32Array {
  if (tokens.length !== N * C * H * W)
    throw new Error(`expected ${N * C * H * W} token values for [${N}, ${C}, ${H}, ${W}], got ${tokens.length}`);
  const out = new Float32Array(tokens.length);
  forEachPatchValue(N, C, H, W, p, (pixel, token) => (out[pixel] = tokens[token]));
  return out;
}

/**
 * Gathers tokens per sample: out[n, i] = tokens[n, order[n][i]] for i < keep ([N, L, d] -> [N, keep, d]).
 * `order[n]` is that sample's `ids_shuffle`.
 */
export function gatherTokens(
  tokens: Float32Array,
  N: number,
  L: number,
  d: number,
  order: readonly (readonly number[])[],
  keep = L,
): Float32Array {
  if (order.length !== N) throw new Error(`need one token order per sample: got ${order.length} for batch ${N}`);
  const out = new Float32Array(N * keep * d);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < keep; i++) {
      const src = (n * L + order[n][i]) * d;
      out.set(tokens.subarray(src, src + d), (n * keep + i) * d);
    }
  }
  return out;
}

/** Inverse of a full `gatherTokens`: puts shuffled tokens back in raster order. */
export function scatterTokens(
  shuffled: Float32Array,
  N: number,
  L: number,
  d: number,
  order: readonly (readonly number[])[],
): Float32Array {
  const out = new Float32Array(N * L * d);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < L; i++) {
      const dst = (n * L + order[n][i]) * d;
      out.set(shuffled.subarray((n * L + i) * d, (n * L + i + 1) * d), dst);
    }
  }
  return out;
}
