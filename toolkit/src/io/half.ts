/** 16-bit floats (IEEE half and bfloat16) to and from numbers, for checkpoints stored in reduced precision. */

/** IEEE 754 half precision. */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const bfBits = new Uint32Array(1);
const bfFloat = new Float32Array(bfBits.buffer);

/** bfloat16: the upper half of a float32. */
export function bf16ToF32(h: number): number {
  bfBits[0] = h << 16;
  return bfFloat[0];
}

const f32Bits = new Uint32Array(1);
const f32Float = new Float32Array(f32Bits.buffer);

/** A float32 as IEEE half, rounded to nearest even; overflow goes to ±Infinity, NaN stays NaN. */
export function f32ToF16(x: number): number {
  f32Float[0] = x;
  const b = f32Bits[0];
  const sign = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  const m = b & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  const he = e - 127 + 15;
  if (he >= 0x1f) return sign | 0x7c00;
  if (he <= 0) {
    // subnormal half (or zero): shift the implicit 1 in, then round the dropped bits to nearest even
    if (he < -10) return sign;
    const mm = m | 0x800000;
    const shift = 14 - he;
    const half = mm >>> shift;
    const rest = mm & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const h = sign | (he << 10) | (m >>> 13);
  const rest = m & 0x1fff;
  // a carry out of the mantissa correctly bumps the exponent (up to Infinity)
  return h + (rest > 0x1000 || (rest === 0x1000 && h & 1) ? 1 : 0);
}
