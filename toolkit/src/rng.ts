/**
 * Seeded random numbers used everywhere in the toolkit, so that a run is reproducible from one integer.
 *
 * xoshiro128** (Blackman & Vigna) seeded through splitmix32: fast, 128 bits of state that fit a checkpoint
 * as four integers, and independent streams through `fork(label)`.
 */

/** Serialisable RNG state: four unsigned 32-bit words. */
export type RngState = [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export class Rng {
  private s: Uint32Array;

  /** @param seed any integer (or a state saved by `getState`). */
  constructor(seed: number | RngState = 0) {
    this.s = new Uint32Array(4);
    if (Array.isArray(seed)) {
      this.setState(seed);
    } else {
      if (!Number.isFinite(seed)) throw new Error(`Rng seed must be a finite number, got ${seed}`);
      const sm = splitmix32((Math.floor(seed) >>> 0) ^ Math.floor(seed / 2 ** 32));
      for (let i = 0; i < 4; i++) this.s[i] = sm();
      if (this.s.every((v) => v === 0)) this.s[0] = 1;
    }
  }

  /** A new generator whose stream depends on this one's state and on `label`; does not advance this one. */
  fork(label: string): Rng {
    const h = hashString(label);
    const st = this.getState();
    const sm = splitmix32((st[0] ^ h ^ Math.imul(st[1], 31) ^ Math.imul(st[2], 17) ^ st[3]) >>> 0);
    return new Rng([sm(), sm(), sm(), (sm() | 1) >>> 0]);
  }

  getState(): RngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }

  setState(state: RngState): void {
    if (state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw new Error(`Rng state must be four unsigned 32-bit integers, got ${JSON.stringify(state)}`);
    }
    if (state.every((v) => v === 0)) throw new Error('Rng state must not be all zeros');
    this.s.set(state);
  }

  /** Next unsigned 32-bit integer. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [lo, hi] inclusive (Python's `random.randint`). */
  randint(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) {
      throw new Error(`randint needs integers lo <= hi, got ${lo}, ${hi}`);
    }
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  /** Standard normal sample (Box-Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.random();
    const v = this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fills a new Float32Array with standard normal samples. */
  normalArray(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      let u = 0;
      while (u === 0) u = this.random();
      const r = Math.sqrt(-2 * Math.log(u));
      const a = 2 * Math.PI * this.random();
      out[i] = r * Math.cos(a);
      if (i + 1 < n) out[i + 1] = r * Math.sin(a);
    }
    return out;
  }

  /** Index drawn with probability proportional to `weights` (Python's `random.choices(k=1)`). */
  choice(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) total += weights[i];
    let r = this.random() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i];
      if (r < 0) return i;
    }
    return weights.length - 1;
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      const tmp = p[i];
      p[i] = p[j];
      p[j] = tmp;
    }
    return p;
  }

  /** k distinct values of `population`, uniformly without replacement (Python's `random.sample`). */
  sample<T>(population: readonly T[], k: number): T[] {
    if (k < 0 || k > population.length) {
      throw new Error(`sample size ${k} is outside [0, ${population.length}]`);
    }
    const pool = population.slice();
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(this.random() * (pool.length - i));
      const tmp = pool[i];
      pool[i] = pool[j];
      pool[j] = tmp;
    }
    return pool.slice(0, k);
  }
}

/** Chris Wellons' lowbias32 integer hash: a bijection of u32 with low bias (the same in WGSL: backend/wgsl/inference). */
export function lowbias32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Counter-based standard normals: element e of the stream `key` is a function of (key, e) alone, so a GPU
 * kernel computes the same values where it needs them (the fused sampler's noise: no host work, no upload).
 * A hashed counter gives u = (m + 1/2) / 2^24 (24 bits); z = sqrt(2) erfinv(2u - 1) by Giles' single-precision
 * erfinv, whose only transcendentals are a log and a sqrt (GPUs' cos may be off by 2^-11; their log is tight).
 */
export function counterNormals(key: readonly [number, number], n: number): Float32Array {
  const out = new Float32Array(n);
  const [k0, k1] = key;
  for (let e = 0; e < n; e++) {
    const m = lowbias32((lowbias32((e ^ k0) >>> 0) + k1) >>> 0) >>> 8;
    const x = (2 * m + 1 - 16777216) / 16777216; // 2u - 1, exact in float32
    out[e] = Math.SQRT2 * erfinv(x);
  }
  return out;
}

/** Giles' erfinv for float32 ("Approximating the erfinv function", GPU Computing Gems, 2011). */
function erfinv(x: number): number {
  let w = -Math.log((1 - x) * (1 + x));
  let p: number;
  if (w < 5) {
    w -= 2.5;
    p = 2.81022636e-8;
    for (const c of ERFINV_CENTRAL) p = c + p * w;
  } else {
    w = Math.sqrt(w) - 3;
    p = -0.000200214257;
    for (const c of ERFINV_TAIL) p = c + p * w;
  }
  return p * x;
}

/** Coefficients of Giles' erfinv, central and tail branch, highest order after the leading one (WGSL reuses them). */
export const ERFINV_CENTRAL = [
  3.43273939e-7, -3.5233877e-6, -4.39150654e-6, 0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941,
];
export const ERFINV_TAIL = [
  0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682,
];

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
