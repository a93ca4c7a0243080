// Typed errors of the persistence layer: what recovery refuses (with file and offset), what
// a caller did wrong, and the fatal state after a failed write or fsync.

export const RecoveryErrorCode = {
  /** A record in the middle of the log is damaged (a good record follows it). */
  CorruptRecord: "CORRUPT_RECORD",
  /** A segment's header is damaged, or its name and contents disagree. */
  CorruptSegment: "CORRUPT_SEGMENT",
  /** LSNs do not continue: a segment is missing or out of place. */
  WalGap: "WAL_GAP",
  /** The WAL starts after LSN 1 and no good snapshot covers what came before. */
  NoSnapshot: "NO_SNAPSHOT",
  /** A file written by a newer format version. */
  UnknownVersion: "UNKNOWN_VERSION",
  /** A file in wal/ or snap/ that this store did not write. */
  ForeignFile: "FOREIGN_FILE",
  /** Too many files, or a file too large to load. */
  TooLarge: "TOO_LARGE",
  /** Reading, copying or truncating a file failed. */
  Io: "IO",
} as const;
export type RecoveryErrorCode = (typeof RecoveryErrorCode)[keyof typeof RecoveryErrorCode];

/** Recovery refused to start; `file` and `offset` say where (offset -1 when not about a byte). */
export class RecoveryError extends Error {
  readonly code: RecoveryErrorCode;
  readonly file: string;
  readonly offset: number;
  constructor(code: RecoveryErrorCode, file: string, offset: number, detail: string) {
    const at = offset >= 0 ? ` at byte offset ${offset}` : "";
    super(`recovery refused (${code}): ${file}${at}: ${detail}`);
    this.name = "RecoveryError";
    this.code = code;
    this.file = file;
    this.offset = offset;
  }
}

export const PersistErrorCode = {
  /** A payload, key or value exceeds its limit, or an argument is out of range. */
  BadInput: "BAD_INPUT",
  /** The store hit a write or fsync error earlier; nothing more is accepted. */
  Fatal: "FATAL",
  Closed: "CLOSED",
  SnapshotInProgress: "SNAPSHOT_IN_PROGRESS",
} as const;
export type PersistErrorCode = (typeof PersistErrorCode)[keyof typeof PersistErrorCode];

export class PersistError extends Error {
  readonly code: PersistErrorCode;
  constructor(code: PersistErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PersistError";
    this.code = code;
  }
}
