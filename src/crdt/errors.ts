// Typed errors a CRDT mutation can refuse with; a refused mutation changes nothing.

export const CrdtErrorCode = {
  /** The result would leave the int64 value range or a u64 per-actor count. */
  OutOfRange: "OUT_OF_RANGE",
  /** An argument is malformed (non-positive amount, oversized value, bad actor id). */
  Invalid: "INVALID",
  /** The key's state would pass a bound of src/limits.ts (too many MV siblings, too large). */
  LimitExceeded: "LIMIT_EXCEEDED",
} as const;
export type CrdtErrorCode = (typeof CrdtErrorCode)[keyof typeof CrdtErrorCode];

export class CrdtError extends Error {
  readonly code: CrdtErrorCode;
  constructor(code: CrdtErrorCode, message: string) {
    super(message);
    this.name = "CrdtError";
    this.code = code;
  }
}

/** Crashes on an impossible state (a programmer error, not bad input). */
export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}
