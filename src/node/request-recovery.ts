// Recovery and snapshots for the request-id table: WAL replay that tells bare deltas from request
// records (applying a request's deltas and remembering its id together), and the snapshot entries
// that carry the table past the WAL segments a snapshot lets the store delete.
import type { Lsn } from "../persist/index.ts";
import { keyBytesMax } from "../transport/api.ts";
import { decodeRequestChunk, decodeRequestPart, nodeRecordMarker, type RequestPart } from "./request-record.ts";
import type { RequestTable } from "./requests.ts";

/**
 * Snapshot keys of the table's chunks. Longer than any client key (keyBytesMax), so no key a client
 * can write collides with them; within the snapshot's own key bound.
 */
export const requestTableKeyPrefix = `${"\u0000".repeat(keyBytesMax + 1)}imdb/request-table/`;

export function isRequestTableKey(key: string): boolean {
  return key.length > keyBytesMax && key.startsWith(requestTableKeyPrefix);
}

/** The snapshot source: the engine's entries, then the table chunks taken when the snapshot began. */
export async function* withRequestTable(
  entries: AsyncIterable<readonly [string, Uint8Array]>,
  chunks: readonly Uint8Array[],
): AsyncGenerator<readonly [string, Uint8Array]> {
  yield* entries;
  for (let i = 0; i < chunks.length; i++) yield [`${requestTableKeyPrefix}${i}`, chunks[i] as Uint8Array] as const;
}

export interface ReplayOptions {
  table: RequestTable;
  /** Joins one KeyDelta, bytes[start, end), into the engine; throws (recovery refuses) when it cannot. */
  mergeDelta: (lsn: Lsn, bytes: Uint8Array, start: number, end: number) => void;
  nowMs: () => number;
  warn: (message: string, fields: Record<string, unknown>) => void;
}

/** Receives what recovery hands the node: snapshot entries, then WAL records in LSN order. */
export class RequestReplay {
  /** The parts of a request group read so far (its records are consecutive). */
  private group: { parts: RequestPart[]; firstLsn: Lsn } | null = null;
  requestsReplayed = 0;
  groupsDropped = 0;

  constructor(private readonly o: ReplayOptions) {}

  /** A snapshot entry: true when it was a table chunk (taken here), false for an engine key. */
  snapshotEntry(key: string, state: Uint8Array): boolean {
    if (!isRequestTableKey(key)) return false;
    const now = this.o.nowMs();
    for (const e of decodeRequestChunk(state)) this.o.table.load(e, now);
    return true;
  }

  walRecord(lsn: Lsn, body: Uint8Array): void {
    this.walRecordAt(lsn, body, 0, body.length);
  }

  /** A WAL record as segment[start, end) (see RecoverySink.walRecordAt). */
  walRecordAt(lsn: Lsn, segment: Uint8Array, start: number, end: number): void {
    if (end <= start || segment[start] !== nodeRecordMarker) {
      this.dropIncomplete(lsn);
      this.o.mergeDelta(lsn, segment, start, end);
      return;
    }
    const body = segment.subarray(start, end);
    const part = decodeRequestPart(body);
    if (part.index === 0) {
      this.dropIncomplete(lsn);
      this.group = { parts: [], firstLsn: lsn };
    } else if (this.group === null || this.group.parts.length !== part.index || !sameId(this.group.parts[0]?.id, part.id)) {
      // A later part without its start: the start lies before the snapshot's start LSN, which a
      // group never straddles (it is one append), or the log is damaged.
      throw new Error(`WAL record ${lsn}: part ${part.index} of a request group whose earlier parts are missing`);
    }
    this.group.parts.push(part);
    if (part.entry === null) return;
    // The last part: the whole write and its id, together. Errors name the group's first record.
    const { parts, firstLsn } = this.group;
    this.group = null;
    for (const p of parts) for (const d of p.deltas) this.o.mergeDelta(firstLsn, d, 0, d.length);
    this.o.table.load(part.entry, this.o.nowMs());
    this.requestsReplayed++;
  }

  /** End of the WAL: a group still open was torn off by a crash before it was acknowledged. */
  finish(): void {
    this.dropIncomplete(null);
  }

  private dropIncomplete(at: Lsn | null): void {
    if (this.group === null) return;
    this.groupsDropped++;
    this.o.warn("dropping an incomplete request group from the WAL (torn by a crash, never acknowledged)", {
      firstLsn: this.group.firstLsn, parts: this.group.parts.length, of: this.group.parts[0]?.count, before: at,
    });
    this.group = null;
  }
}

function sameId(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
