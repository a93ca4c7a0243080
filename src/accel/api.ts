// The contract of the three fast paths. The native addon and the pure-TS fallback both
// implement exactly this, and one conformance suite (test/accel) runs against both.

/** Result of comparing vector clock A with vector clock B. Values are wire-stable. */
export const ClockOrder = {
  Equal: 0,
  Before: 1, // A < B: every entry of A <= B's, at least one strictly less
  After: 2, // A > B
  Concurrent: 3,
} as const;
export type ClockOrder = (typeof ClockOrder)[keyof typeof ClockOrder];

/**
 * Packed vector clocks, used directly by src/crdt. A set of clocks shares three arrays:
 * clock i occupies entries offsets[i] .. offsets[i+1]-1 of `actors` and `counters`.
 * Within one clock, actor indices are strictly ascending; a missing actor means 0.
 * Actor indices are interned per process (src/crdt decides how); counters are
 * non-negative integers <= Number.MAX_SAFE_INTEGER; entries with counter 0 may be present.
 */
export interface PackedClocks {
  offsets: Uint32Array; // length n+1, offsets[0] = 0, non-decreasing
  actors: Uint32Array;
  counters: Float64Array;
}

export interface Checksums {
  /** CRC32C (Castagnoli, reflected, init/xorout 0xFFFFFFFF) of `data`. "123456789" -> 0xE3069283. */
  crc32c(data: Uint8Array): number;
  /**
   * CRC32C of many records in one call: record i is buf[offsets[i] .. offsets[i+1]).
   * offsets has n+1 entries; returns n checksums.
   */
  crc32cMany(buf: Uint8Array, offsets: Uint32Array): Uint32Array;
}

export interface Clocks {
  /** Order of clock a vs clock b, each given as (actors, counters) with ascending actors. */
  compare(aActors: Uint32Array, aCounters: Float64Array, bActors: Uint32Array, bCounters: Float64Array): ClockOrder;
  /** Compares a[i] with b[i] for every i; a and b hold the same number of clocks. */
  compareMany(a: PackedClocks, b: PackedClocks): Uint8Array;
}

/** A file opened for appending. Appends from concurrent callers are group-committed. */
export interface DurableFile {
  /**
   * Appends the records (in order, contiguous, after everything appended before) with
   * writev. With sync=true it resolves only once the bytes are on disk (fdatasync); callers
   * arriving while an fdatasync runs share the next one. Rejects with the OS error if a write
   * or fdatasync fails; after a failure every later call rejects too (the file is poisoned).
   * The records must not be modified until the promise settles (the TS path writes them in
   * place; the native path copies them at the call).
   */
  append(records: readonly Uint8Array[], sync: boolean): Promise<void>;
  /** fdatasync everything appended so far (for durability `interval`). */
  sync(): Promise<void>;
  /**
   * True when nothing appended before is waiting for or inside a write round: an append made
   * now starts one at once. A hint for callers that gather records (the WAL): the native path
   * reads its worker's count, so it turns true as soon as an fdatasync returns, before the
   * completion reaches JS; the TS path turns true once its round's completion has run.
   */
  idle(): boolean;
  /** Bytes appended so far (counted when append is called), including the size the file had when opened. */
  readonly size: number;
  /** Waits for pending work, then closes. */
  close(): Promise<void>;
}

export interface Appender {
  /** Opens (creating if absent, mode 0o644) `path` for appending at its current end. */
  open(path: string): Promise<DurableFile>;
}

export type AccelPath = "native" | "ts";
export type AccelMode = "auto" | AccelPath;

export interface AccelChoice {
  checksum: AccelPath;
  clocks: AccelPath;
  append: AccelPath;
}
