/**
 * tfjs-webgpu's buffer pool, made to hold across training steps.
 *
 * The pool reuses a released buffer only for a request of exactly its size. Training draws a new AR split
 * every step, so sequence lengths and buffer sizes change every step: exact-size reuse misses, the pool grows
 * until the device runs out of memory (seen on the H200 at W768 D12 B64), and freeing it each step makes
 * every step allocate its ~3000 buffers anew (measured: 1.4 s of host time per step at W384 D6 B64).
 * Instead, storage buffers are allocated in size classes (eight per power of two, at most 12.5 % larger
 * than asked) and a request takes the smallest idle buffer of up to twice its class, so steps of different
 * lengths share buffers; the pool is freed only when it holds well more than the busiest moment since the
 * last trim needed.
 */

/** A GPU buffer as the pool sees it. */
export interface PooledBuffer {
  size: number;
  usage: number;
  destroy(): void;
}

/** The fields of tfjs-webgpu's `BufferManager` that this module reads and patches. */
export interface BufferPool<B extends PooledBuffer = PooledBuffer> {
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): B;
  freeBuffers: Map<string, B[]>;
  numFreeBuffers: number;
  numBytesUsed: number;
  numBytesAllocated: number;
}

/** The size class of a storage buffer of `bytes`: multiples of 256 up to 4 KiB, then eight classes per octave. */
export function bucketSize(bytes: number): number {
  if (bytes <= 4096) return Math.max(256, Math.ceil(bytes / 256) * 256);
  const step = 2 ** (Math.ceil(Math.log2(bytes)) - 4);
  return Math.ceil(bytes / step) * step;
}

/**
 * The size to ask tfjs's pool for: the smallest idle buffer of a class up to twice the request's class, so
 * that a step of a new length reuses what an earlier step left; the request's own class when none is idle.
 * (tfjs keys buffers by `${size}_${usage}` and books them by size, so the class is asked for exactly.)
 */
function bestFit(pool: BufferPool, size: number, usage: number): number {
  const cls = bucketSize(size);
  for (let c = cls; c <= 2 * cls; c = bucketSize(c + 1)) if (pool.freeBuffers.get(`${c}_${usage}`)?.length) return c;
  return cls;
}

const peaks = new WeakMap<object, number>();
const allocatedPeaks = new WeakMap<object, number>();
/**
 * What a pool did since it was patched: storage buffers it had to create (misses: a driver allocation and a
 * clear on first use each, where a hit costs neither) and their bytes, and the trims that freed its idle buffers.
 * (tfjs's upload staging buffers are new by design, and uniform buffers tiny: not counted.)
 */
export interface PoolCounters {
  created: number;
  createdBytes: number;
  trims: number;
}
const counters = new WeakMap<object, PoolCounters>();

/** Makes `pool` allocate storage buffers by size class and remember its peak use. Idempotent. */
export function bucketBufferPool<B extends PooledBuffer>(pool: BufferPool<B>, storageUsage: number): void {
  if (peaks.has(pool)) return;
  peaks.set(pool, pool.numBytesUsed);
  const count: PoolCounters = { created: 0, createdBytes: 0, trims: 0 };
  counters.set(pool, count);
  const acquire = pool.acquireBuffer.bind(pool);
  pool.acquireBuffer = (size, usage, mappedAtCreation, reuse) => {
    const allocated = pool.numBytesAllocated;
    const storage = (usage & storageUsage) !== 0;
    const b = acquire(storage ? bestFit(pool, size, usage) : size, usage, mappedAtCreation, reuse);
    if (storage && pool.numBytesAllocated > allocated) {
      count.created++;
      count.createdBytes += b.size;
    }
    if (pool.numBytesUsed > peaks.get(pool)!) peaks.set(pool, pool.numBytesUsed);
    if (pool.numBytesAllocated > (allocatedPeaks.get(pool) ?? 0)) allocatedPeaks.set(pool, pool.numBytesAllocated);
    return b;
  };
}

/**
 * Frees the pool's idle buffers when they exceed 1.5x what the busiest moment since the last trim needed
 * beyond the buffers in use now (plus 256 MiB): steps of most lengths then find their buffers, and the pool
 * cannot creep towards the device's memory. Call only while the queue is idle.
 */
export function trimBufferPool(pool: BufferPool): void {
  const free = pool.numBytesAllocated - pool.numBytesUsed;
  const peak = peaks.get(pool) ?? pool.numBytesUsed;
  if (free <= 1.5 * Math.max(peak - pool.numBytesUsed, 0) + (256 << 20)) return;
  for (const list of pool.freeBuffers.values()) {
    for (const b of list) {
      pool.numBytesAllocated -= b.size;
      b.destroy();
    }
    list.length = 0;
  }
  pool.numFreeBuffers = 0;
  peaks.set(pool, pool.numBytesUsed);
  const count = counters.get(pool);
  if (count) count.trims++;
}

/** The most bytes `pool` held on the device at once since it was patched (in use and idle buffers). */
export function peakAllocatedBytes(pool: BufferPool): number {
  return allocatedPeaks.get(pool) ?? pool.numBytesAllocated;
}

/** A copy of `pool`'s counters (zeros for a pool that was never patched). */
export function poolCounters(pool: BufferPool): PoolCounters {
  return { ...(counters.get(pool) ?? { created: 0, createdBytes: 0, trims: 0 }) };
}
