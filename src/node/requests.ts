// The request-id table: what makes a client's retry of a write safe. It remembers, per client-chosen
// id, the request's fingerprint and its first outcome for a bounded window (time, count, bytes), so a
// retry is answered with the first outcome instead of being applied again, a retry that arrives
// while the first attempt is in flight waits for it, and an id reused for another request is refused.
// It is rebuilt on restart from the WAL's request records and the snapshot's table chunks.
import { encodeRequestChunk, type RequestEntryData } from "./request-record.ts";
import type { OpOutcome } from "../transport/api.ts";

/** How long a request id is remembered after its first attempt was accepted: retries within it are safe. */
export const requestWindowMs = 10 * 60_000;
/** Most request ids remembered; beyond it the oldest are forgotten first (before their window ends). */
export const requestIdsMax = 100_000;
/** Most bytes (ids, fingerprints, outcomes) the table holds; beyond it the oldest are forgotten first. */
export const requestTableBytesMax = 64 * 1024 * 1024;
/** A snapshot chunk of the table is cut once it holds about this many bytes. */
export const requestChunkBytesTarget = 1024 * 1024;
/** Fixed cost counted per entry (map slot, objects) on top of its bytes. */
const entryOverheadBytes = 128;

export interface RequestLimits {
  windowMs: number;
  idsMax: number;
  bytesMax: number;
}

export const requestLimitsDefault: RequestLimits = { windowMs: requestWindowMs, idsMax: requestIdsMax, bytesMax: requestTableBytesMax };

interface Entry {
  data: RequestEntryData;
  bytes: number;
  /** Settles when the first attempt is as durable as the node promises; null once it is. */
  durable: Promise<unknown> | null;
}

/** What a request id means when a request arrives with it. */
export type Lookup =
  /** Not seen (or forgotten): run the request. */
  | { kind: "new" }
  /** Seen with the same request: answer `outcomes` once `durable` (null: now) settles. */
  | { kind: "seen"; outcomes: OpOutcome[]; durable: Promise<unknown> | null }
  /** Seen with a different request: refuse. */
  | { kind: "conflict" };

function keyOf(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString("latin1");
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function entryBytes(d: RequestEntryData): number {
  let n = entryOverheadBytes + d.id.length + d.fingerprint.length;
  for (const o of d.outcomes) {
    n += 32;
    if (!o.ok) n += o.error.message.length * 2;
    else if (o.result.kind === "written" && o.result.context !== null) n += o.result.context.length;
  }
  return n;
}

export class RequestTable {
  /** In insertion order, which is (nearly) accepted-time order: the oldest are first to go. */
  private readonly entries = new Map<string, Entry>();
  private totalBytes = 0;
  private readonly limits: RequestLimits;

  constructor(limits: Partial<RequestLimits> = {}) {
    this.limits = { ...requestLimitsDefault, ...limits };
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  lookup(id: Uint8Array, fingerprint: Uint8Array, nowMs: number): Lookup {
    const k = keyOf(id);
    const e = this.entries.get(k);
    if (e === undefined) return { kind: "new" };
    if (e.durable === null && nowMs - e.data.acceptedAtMs > this.limits.windowMs) {
      this.remove(k, e);
      return { kind: "new" };
    }
    if (!sameBytes(e.data.fingerprint, fingerprint)) return { kind: "conflict" };
    return { kind: "seen", outcomes: e.data.outcomes, durable: e.durable };
  }

  /**
   * Remembers a first attempt in the same synchronous step as its WAL append (so a snapshot that
   * begins later holds it); `durable` is that append. Call settled() or forget() when it settles.
   */
  remember(data: RequestEntryData, durable: Promise<unknown> | null, nowMs: number): void {
    const k = keyOf(data.id);
    const old = this.entries.get(k);
    if (old !== undefined) this.remove(k, old);
    const e: Entry = { data, bytes: entryBytes(data), durable };
    this.entries.set(k, e);
    this.totalBytes += e.bytes;
    this.prune(nowMs);
  }

  /** The first attempt is durable: retries are answered at once from now on. */
  settled(id: Uint8Array): void {
    const e = this.entries.get(keyOf(id));
    if (e !== undefined) e.durable = null;
  }

  /** The first attempt failed before it was durable (nothing acknowledged): a retry runs again. */
  forget(id: Uint8Array): void {
    const k = keyOf(id);
    const e = this.entries.get(k);
    if (e !== undefined) this.remove(k, e);
  }

  /** Recovery: an entry from the WAL or a snapshot (already durable); the first copy of an id wins. */
  load(data: RequestEntryData, nowMs: number): void {
    const k = keyOf(data.id);
    if (this.entries.has(k) || nowMs - data.acceptedAtMs > this.limits.windowMs) return;
    const e: Entry = { data, bytes: entryBytes(data), durable: null };
    this.entries.set(k, e);
    this.totalBytes += e.bytes;
  }

  /** After recovery: drops what fell out of the window or over the bounds. */
  prune(nowMs: number): void {
    for (const [k, e] of this.entries) {
      if (this.entries.size <= 1) return;
      if (e.durable !== null) continue; // in flight: bounded by the admission limits, kept until it settles
      const over = this.entries.size > this.limits.idsMax || this.totalBytes > this.limits.bytesMax;
      if (!over && nowMs - e.data.acceptedAtMs <= this.limits.windowMs) return;
      this.remove(k, e);
    }
  }

  /**
   * The table as snapshot chunks, taken synchronously when a snapshot begins: every entry whose WAL
   * record precedes the snapshot's start LSN is here (in flight ones too: the snapshot is published
   * only after a WAL sync, and a failed sync stops the node).
   */
  exportChunks(): Uint8Array[] {
    const chunks: Uint8Array[] = [];
    let batch: RequestEntryData[] = [];
    let bytes = 0;
    for (const e of this.entries.values()) {
      batch.push(e.data);
      bytes += e.bytes;
      if (bytes >= requestChunkBytesTarget) {
        chunks.push(encodeRequestChunk(batch));
        batch = [];
        bytes = 0;
      }
    }
    if (batch.length > 0) chunks.push(encodeRequestChunk(batch));
    return chunks;
  }

  private remove(k: string, e: Entry): void {
    this.entries.delete(k);
    this.totalBytes -= e.bytes;
  }
}
