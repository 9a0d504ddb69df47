/** 16-bit floats (IEEE half and bfloat16) to numbers, for reading checkpoints written in reduced precision. */

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
