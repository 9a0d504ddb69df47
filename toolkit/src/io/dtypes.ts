/**
 * Element types the checkpoint readers decode (safetensors and PyTorch files), by their PyTorch names: one table
 * of widths and one decoder, so both formats read every type the same way.
 */
import { bf16ToF32, f16ToF32 } from './half';

/** Width in bytes of each decodable element type. */
export const DTYPE_BYTES = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
} as const;

export type Dtype = keyof typeof DTYPE_BYTES;

export function isDtype(x: unknown): x is Dtype {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, x);
}

/** `count` little-endian values of `dtype` from byte `at` of `view`, as float32 (the caller checks the bounds). */
export function decodeToFloat32(view: DataView, at: number, count: number, dtype: Dtype): Float32Array {
  const out = new Float32Array(count);
  const s = DTYPE_BYTES[dtype];
  const read: (o: number) => number =
    dtype === 'float32'
      ? (o) => view.getFloat32(o, true)
      : dtype === 'float64'
        ? (o) => view.getFloat64(o, true)
        : dtype === 'float16'
          ? (o) => f16ToF32(view.getUint16(o, true))
          : dtype === 'bfloat16'
            ? (o) => bf16ToF32(view.getUint16(o, true))
            : dtype === 'int64'
              ? (o) => Number(view.getBigInt64(o, true))
              : dtype === 'int32'
                ? (o) => view.getInt32(o, true)
                : dtype === 'int16'
                  ? (o) => view.getInt16(o, true)
                  : dtype === 'int8'
                    ? (o) => view.getInt8(o)
                    : (o) => view.getUint8(o);
  for (let i = 0; i < count; i++) out[i] = read(at + i * s);
  return out;
}
