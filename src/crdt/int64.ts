// The integer ranges of counters: values are signed 64-bit, per-actor counts unsigned 64-bit.

export const int64Max = (1n << 63n) - 1n;
export const int64Min = -(1n << 63n);
export const uint64Max = (1n << 64n) - 1n;

export function isInt64(v: bigint): boolean {
  return v >= int64Min && v <= int64Max;
}
