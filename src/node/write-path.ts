// A client request's way through the node: admission (bounded in-flight ops and WAL queue), the
// request-id table (a retry is answered with the first outcome, applied once), the engine, the WAL
// append (the request's id and outcome in the same record as its deltas), and the peers.
import type { Engine, ManyResult } from "../engine/index.ts";
import { persistLimits } from "../persist/index.ts";
import { isRead, OpFailure, type ClientOp, type OpOutcome } from "../transport/api.ts";
import { checkWritesOnly } from "../transport/validate.ts";
import { outcomeOf, toManyOp } from "./ops.ts";
import { encodeRequestRecords, fingerprintOf } from "./request-record.ts";
import type { RequestTable } from "./requests.ts";

/**
 * Most ops of client requests the node serves at once (admitted and not yet answered, retries
 * waiting for their first attempt included). Beyond it a request is refused with
 * RESOURCE_EXHAUSTED before it changes anything, instead of queueing without bound behind the WAL.
 */
export const clientOpsInFlightMax = 200_000;
/**
 * Most WAL bytes appended and not yet settled (written, and synced in `sync` mode). A write that
 * arrives above it is refused with RESOURCE_EXHAUSTED before it changes anything: a disk slower
 * than the clients then pushes back on them instead of growing the queue in memory.
 */
export const walQueueBytesMax = 256 * 1024 * 1024;
/** A request's WAL records are cut at about this size, below the WAL's record bound. */
export const requestPartBytesMax = persistLimits.walRecordBytesMax - 64 * 1024;

export interface AdmissionLimits {
  opsInFlightMax: number;
  walQueueBytesMax: number;
}

export interface WritePathOptions {
  engine: Engine;
  store: {
    append(bodies: readonly Uint8Array[]): Promise<unknown>;
    /** WAL bytes appended and not yet settled. */
    readonly walQueuedBytes: number;
  };
  cluster: {
    localAppend(append: Promise<unknown>): void;
    broadcast(deltas: readonly Uint8Array[]): void;
    settled(): Promise<void> | null;
  };
  requests: RequestTable;
  /** Wall clock, ms: engine time and the request window. */
  now: () => number;
  limits?: Partial<AdmissionLimits>;
}

/** Counters for metrics and tests. */
export interface WritePathStats {
  /** Requests answered from the request-id table (retries). */
  retriesAnswered: number;
  /** Requests refused because an id came back with a different request. */
  idConflicts: number;
  /** Requests refused by admission (RESOURCE_EXHAUSTED). */
  overloaded: number;
}

export class WritePath {
  private inFlight = 0;
  private readonly limits: AdmissionLimits;
  readonly stats: WritePathStats = { retriesAnswered: 0, idConflicts: 0, overloaded: 0 };

  constructor(private readonly o: WritePathOptions) {
    this.limits = { opsInFlightMax: clientOpsInFlightMax, walQueueBytesMax, ...o.limits };
  }

  /** Ops of requests being served now. */
  get opsInFlight(): number {
    return this.inFlight;
  }

  /** Applies a request's ops and answers once they are durable (or once the first attempt's are, for a retry). */
  async apply(ops: readonly ClientOp[], requestId: Uint8Array | null): Promise<OpOutcome[]> {
    this.admit(ops);
    this.inFlight += ops.length;
    try {
      return requestId === null ? await this.run(ops) : await this.runWithId(ops, requestId);
    } finally {
      this.inFlight -= ops.length;
    }
  }

  /** Refuses at once, changing nothing, when the node is at a bound. */
  private admit(ops: readonly ClientOp[]): void {
    if (this.inFlight > 0 && this.inFlight + ops.length > this.limits.opsInFlightMax) {
      this.stats.overloaded++;
      throw new OpFailure("RESOURCE_EXHAUSTED", `the node is serving ${this.inFlight} ops (limit ${this.limits.opsInFlightMax}); retry later`);
    }
    const queued = this.o.store.walQueuedBytes;
    if (queued > this.limits.walQueueBytesMax && ops.some((op) => !isRead(op))) {
      this.stats.overloaded++;
      throw new OpFailure("RESOURCE_EXHAUSTED", `the WAL has ${queued} bytes waiting for the disk (limit ${this.limits.walQueueBytesMax}); retry later`);
    }
  }

  private async run(ops: readonly ClientOp[]): Promise<OpOutcome[]> {
    const { outcomes, deltas } = this.applyToEngine(ops);
    if (deltas.length > 0) {
      await this.settle(this.o.store.append(deltas), deltas);
    } else {
      // A read-only request may show other requests' writes that are not yet in the WAL. As
      // Redis flushes replies only after its AOF write, answer once those appends settled
      // (at most one WAL round), so a value a client saw cannot vanish in a SIGKILL.
      const pending = this.o.cluster.settled();
      if (pending !== null) await pending;
    }
    return outcomes;
  }

  private async runWithId(ops: readonly ClientOp[], id: Uint8Array): Promise<OpOutcome[]> {
    checkWritesOnly(ops);
    const fingerprint = fingerprintOf(ops);
    const nowMs = this.o.now();
    const seen = this.o.requests.lookup(id, fingerprint, nowMs);
    switch (seen.kind) {
      case "conflict":
        this.stats.idConflicts++;
        throw new OpFailure("FAILED_PRECONDITION", "request_id was already used for a different request (a retry must repeat the request exactly)");
      case "seen":
        this.stats.retriesAnswered++;
        if (seen.durable !== null) {
          try {
            await seen.durable;
          } catch (err) {
            throw notDurable(err);
          }
        }
        return seen.outcomes;
      case "new":
        break;
    }
    const { outcomes, deltas } = this.applyToEngine(ops);
    const entry = { id, fingerprint, acceptedAtMs: nowMs, outcomes };
    if (deltas.length === 0) {
      // Nothing changed, nothing to replay: remembered here only (a retry after a restart runs
      // again, which is safe because the first attempt applied nothing).
      this.o.requests.remember(entry, null, nowMs);
      return outcomes;
    }
    // The id and outcome go into the same WAL records as the deltas, remembered in the same
    // synchronous step: replay (and a snapshot) sees both or neither.
    const appended = this.o.store.append(encodeRequestRecords(entry, deltas, requestPartBytesMax));
    this.o.requests.remember(entry, appended, nowMs);
    try {
      await this.settle(appended, deltas);
    } catch (err) {
      this.o.requests.forget(id);
      throw err;
    }
    this.o.requests.settled(id);
    return outcomes;
  }

  private applyToEngine(ops: readonly ClientOp[]): { outcomes: OpOutcome[]; deltas: Uint8Array[] } {
    // One clock reading per request: a relative TTL becomes a deadline from it (once, here, at the
    // node that received the request), and the engine and a Get's ms left see the same instant.
    // A TTL reaching past the latest deadline throws before the engine sees anything.
    const nowMs = this.o.now();
    const manyOps = ops.map((op) => toManyOp(op, nowMs));
    const { results, deltas } = this.o.engine.applyMany(manyOps, nowMs);
    const outcomes = new Array<OpOutcome>(ops.length);
    for (let k = 0; k < ops.length; k++) outcomes[k] = outcomeOf(ops[k] as ClientOp, results[k] as ManyResult, nowMs);
    return { outcomes, deltas };
  }

  /**
   * Logs and sends deltas this node made on its own (the expiry sweep), the same way as a
   * client's: appended in the step that made them, sent once durable.
   */
  async commitOwn(deltas: readonly Uint8Array[]): Promise<void> {
    // In appends the WAL takes (records and bytes per append), all issued now, in order.
    const settling: Promise<void>[] = [];
    let from = 0;
    while (from < deltas.length) {
      let to = from;
      let bytes = 0;
      while (to < deltas.length && to - from < persistLimits.walAppendRecordsMax && bytes + (deltas[to] as Uint8Array).length + 64 <= persistLimits.walAppendBytesMax) {
        bytes += (deltas[to] as Uint8Array).length + 64;
        to++;
      }
      if (to === from) to++; // one record alone always fits (walAppendBytesMax >= walRecordBytesMax)
      const part = deltas.slice(from, to);
      settling.push(this.settle(this.o.store.append(part), part));
      from = to;
    }
    await Promise.all(settling);
  }

  /** Waits until a local append (issued with its engine change) is durable, then lets peers hear of `deltas`. */
  private async settle(appended: Promise<unknown>, deltas: readonly Uint8Array[]): Promise<void> {
    this.o.cluster.localAppend(appended);
    try {
      await appended;
    } catch (err) {
      // The WAL failed: these writes are not acknowledged (onFatal stops the node).
      throw notDurable(err);
    }
    // Peers hear of a write only once it is as durable as the node promises. A delta sent
    // earlier could outlive a SIGKILL that lost it here: this node would restart with its
    // own row behind what peers hold, reuse those counts for new acknowledged increments,
    // and the join (a max per row) would swallow them.
    this.o.cluster.broadcast(deltas);
  }
}

function notDurable(err: unknown): OpFailure {
  return new OpFailure("UNAVAILABLE", `write not durable: ${err instanceof Error ? err.message : String(err)}`);
}
