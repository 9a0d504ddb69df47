/**
 * Token orders: which raster position is generated (or made visible) first. An order is a permutation of
 * 0..L-1, `order[i]` = raster index of the i-th token, the same convention as the official `ids_shuffle`.
 */
import { Rng } from '../rng';

export type OrderKind = 'random' | 'raster' | 'block-raster' | 'dilated';

/** A fresh uniformly random order (what training uses, per sample and per iteration). */
export function randomOrder(L: number, rng: Rng): number[] {
  return rng.permutation(L);
}

/** Row by row, left to right. */
export function rasterOrder(L: number): number[] {
  return Array.from({ length: L }, (_, i) => i);
}

/** Blocks of `block` x `block` tokens in raster order, raster order inside each block (Table 3b). */
export function blockRasterOrder(gridSize: number, block: number): number[] {
  checkGrid(gridSize);
  if (!Number.isInteger(block) || block < 1 || gridSize % block !== 0) {
    throw new Error(`block size ${block} must be a positive divisor of the grid size ${gridSize}`);
  }
  const out: number[] = [];
  for (let bi = 0; bi < gridSize; bi += block)
    for (let bj = 0; bj < gridSize; bj += block)
      for (let i = bi; i < bi + block; i++) for (let j = bj; j < bj + block; j++) out.push(i * gridSize + j);
  return out;
}

/**
 * Dilated order: first every `dilation`-th token on both axes (a coarse sub-grid), then the sub-grids shifted
 * by each offset in raster order, so early tokens are spread over the whole image (Table 3b).
 */
export function dilatedOrder(gridSize: number, dilation = 2): number[] {
  checkGrid(gridSize);
  if (!Number.isInteger(dilation) || dilation < 1 || dilation > gridSize) {
    throw new Error(`dilation ${dilation} must be an integer in [1, grid size ${gridSize}]`);
  }
  const out: number[] = [];
  for (let oi = 0; oi < dilation; oi++)
    for (let oj = 0; oj < dilation; oj++)
      for (let i = oi; i < gridSize; i += dilation)
        for (let j = oj; j < gridSize; j += dilation) out.push(i * gridSize + j);
  return out;
}

/** Checks that a user-given order is a permutation of 0..L-1. */
export function validateOrder(order: readonly number[], L: number): number[] {
  if (order.length !== L) throw new Error(`order has ${order.length} entries, expected L = ${L}`);
  const seen = new Uint8Array(L);
  for (const v of order) {
    if (!Number.isInteger(v) || v < 0 || v >= L) throw new Error(`order entry ${v} is not a token index in [0, ${L})`);
    if (seen[v]) throw new Error(`order repeats token ${v}: it must be a permutation of 0..${L - 1}`);
    seen[v] = 1;
  }
  return order.slice();
}

/** Inverse permutation: `inv[order[i]] = i`. */
export function inverseOrder(order: readonly number[]): number[] {
  const inv = new Array<number>(order.length);
  order.forEach((v, i) => (inv[v] = i));
  return inv;
}

/** Builds an order of a named kind for a square grid of `gridSize`^2 tokens. */
export function makeOrder(
  kind: OrderKind,
  gridSize: number,
  rng: Rng,
  opts: { block?: number; dilation?: number } = {},
): number[] {
  const L = gridSize * gridSize;
  switch (kind) {
    case 'random':
      return randomOrder(L, rng);
    case 'raster':
      return rasterOrder(L);
    case 'block-raster':
      return blockRasterOrder(gridSize, opts.block ?? Math.max(1, gridSize >> 1));
    case 'dilated':
      return dilatedOrder(gridSize, opts.dilation ?? 2);
    default:
      throw new Error(`unknown token order "${kind as string}" (use random, raster, block-raster or dilated)`);
  }
}

function checkGrid(gridSize: number): void {
  if (!Number.isInteger(gridSize) || gridSize < 1)
    throw new Error(`grid size must be a positive integer, got ${gridSize}`);
}
