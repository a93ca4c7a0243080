// Every size the persistence layer accepts from callers or from disk has a named bound here,
// checked where the data enters (before any allocation sized by it).

import { snapshotKeyBytesMax, snapshotValueBytesMax, walAppendBytesMax, walRecordBytesMax } from "../limits.ts";

/**
 * Largest WAL record payload (u64 LSN + a delta or merged state); most payload bytes one
 * append() call may carry; longest snapshot key; largest snapshot value. Defined with every
 * other size bound in src/limits.ts, so that any state the engine holds can be logged and
 * snapshotted.
 */
export { snapshotKeyBytesMax, snapshotValueBytesMax, walAppendBytesMax, walRecordBytesMax };
/** Default size at which the WAL starts a new segment. */
export const walSegmentBytesDefault = 64 * 1024 * 1024;
/** Bounds on the configurable segment size (tests use small segments to exercise rollover). */
export const walSegmentBytesMin = 4 * 1024;
export const walSegmentBytesMax = 1024 * 1024 * 1024;
/** Most payloads one append() call may carry. */
export const walAppendRecordsMax = 16_384;
/** Most files a wal/ or snap/ folder may list before recovery refuses (bounds every scan). */
export const dirEntriesMax = 1_000_000;
/** A snapshot chunk is flushed once it holds this many bytes. */
export const snapshotChunkBytesTarget = 1024 * 1024;
/** Largest chunk a reader accepts (one maximal entry plus framing). */
export const snapshotChunkBytesMax = snapshotValueBytesMax + snapshotKeyBytesMax + 1024 * 1024;
/** Largest snapshot file recovery loads (checksummed with 32-bit offsets). */
export const snapshotFileBytesMax = 3 * 1024 * 1024 * 1024;
/** Snapshots kept on disk: the newest and one fallback. */
export const snapshotsKept = 2;
/** Copies aside of the same file (`.broken`, `.broken.1`, ...) before recovery refuses. */
export const brokenCopiesMax = 100;
/** Bounds for the `interval` durability timer. */
export const syncIntervalMsMin = 1;
export const syncIntervalMsMax = 60_000;
/** Largest segment file recovery loads: a full segment plus the batch that crossed the limit. */
export const walSegmentFileBytesMax = walSegmentBytesMax + walAppendBytesMax + 1024 * 1024;
