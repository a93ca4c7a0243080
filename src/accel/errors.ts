// Typed errors for bad input reaching the accel primitives, shared by the native and TS paths
// so both refuse the same inputs with the same code.

export const AccelErrorCode = {
  BadOffsets: "BAD_OFFSETS",
  BadClock: "BAD_CLOCK",
  TooLarge: "TOO_LARGE",
  Closed: "CLOSED",
  NativeUnavailable: "NATIVE_UNAVAILABLE",
  BadMode: "BAD_MODE",
  BadRecord: "BAD_RECORD",
} as const;
export type AccelErrorCode = (typeof AccelErrorCode)[keyof typeof AccelErrorCode];

export class AccelError extends Error {
  readonly code: AccelErrorCode;
  constructor(code: AccelErrorCode, message: string) {
    super(message);
    this.name = "AccelError";
    this.code = code;
  }
}

/** Most records one append call may carry (one iovec each in the worst case). */
export const appendRecordsPerCallMax = 65_536;
/** Most bytes one append call may carry. */
export const appendBytesPerCallMax = 256 * 1024 * 1024;

/** Checks the n+1 offsets of a record set against the buffer length; throws BadOffsets. */
export function checkOffsets(offsets: Uint32Array, bufLength: number, what: string): void {
  if (offsets.length === 0) throw new AccelError(AccelErrorCode.BadOffsets, `${what}: offsets must have n+1 >= 1 entries`);
  if (offsets[0] !== 0) throw new AccelError(AccelErrorCode.BadOffsets, `${what}: offsets[0] must be 0`);
  let prev = 0;
  for (let i = 1; i < offsets.length; i++) {
    const o = offsets[i] as number;
    if (o < prev) throw new AccelError(AccelErrorCode.BadOffsets, `${what}: offsets must be non-decreasing (index ${i})`);
    prev = o;
  }
  if (prev > bufLength) throw new AccelError(AccelErrorCode.BadOffsets, `${what}: last offset ${prev} is past the end (${bufLength})`);
}

/** Checks an append call's records and size limits; throws BadRecord or TooLarge. Returns the byte count. */
export function checkAppendRecords(records: readonly Uint8Array[]): number {
  if (records.length > appendRecordsPerCallMax) {
    throw new AccelError(AccelErrorCode.TooLarge, `append: ${records.length} records exceed appendRecordsPerCallMax=${appendRecordsPerCallMax}`);
  }
  let bytes = 0;
  for (const r of records) {
    if (!(r instanceof Uint8Array)) throw new AccelError(AccelErrorCode.BadRecord, "append: every record must be a Uint8Array");
    bytes += r.byteLength;
  }
  if (bytes > appendBytesPerCallMax) {
    throw new AccelError(AccelErrorCode.TooLarge, `append: ${bytes} bytes exceed appendBytesPerCallMax=${appendBytesPerCallMax}`);
  }
  return bytes;
}
