// The node's half of a leave's hand-off (the plan and the merge are src/cluster/handoff.ts and
// Cluster.mergeHandOff): the sender streams each target's states in calls of about
// handOffCallBytes (a bigger state alone, in pieces), one call in flight per target, so the rate
// follows what the receivers make durable; the receiver puts pieces back together.

import type { HandOffPlan } from "../cluster/handoff.ts";
import { OpFailure, type HandOffEntry } from "../transport/api.ts";
import { RpcError } from "../transport/client.ts";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "./log.ts";

/** States per HandOff call: small enough that a receiver's WAL append and fsync of one stay short. */
export const handOffCallBytes = 1024 * 1024;
/** A state above handOffCallBytes goes in pieces of this (below peerMessageBytesMax, 16 MiB). */
export const handOffPieceBytes = 4 * 1024 * 1024;
/**
 * Keys whose states are read at once (then sent as calls of up to handOffCallBytes): counters'
 * states are ~50 bytes, so 256 at a time made calls of 12 KB, each waiting a round trip and a
 * durable append (4,080 keys/s in `imdb bench partition`); 4096 fill ~200 KB.
 */
const readKeys = 4096;
/**
 * How long a leave may hand off before it gives up (the leave fails, the node takes writes
 * again): at the 1 MiB per call pace a receiver fsyncs, minutes move gigabytes.
 */
export const leaveHandOffMs = 10 * 60_000;
/** Deadline of one HandOff call. */
export const handOffCallDeadlineMs = 30_000;
const retryAfterMs = 250;
const progressEveryMs = 5_000;

export interface HandOffPorts {
  plan(): HandOffPlan;
  /** Current states of keys this node holds (those gone since the plan are left out). */
  states(keys: readonly string[]): Array<[string, Uint8Array]>;
  /** The collection stamp to read states under (Cluster.readStamp). */
  stamp(): { epoch: number; confirms: number };
  send(to: { id: string; addr: string }, entries: readonly HandOffEntry[], stamp: { epoch: number; confirms: number }): Promise<number>;
  log: Logger;
  nowMs(): number;
}

export interface HandOffDone {
  targets: number;
  keys: number;
  /** Whole states merged by the targets, summed over targets (a key goes to each of its next owners). */
  merged: number;
  bytes: number;
}

/**
 * Hands every key this node holds to its next owners, each call confirmed durable; throws
 * OpFailure when the plan is refused (FAILED_PRECONDITION) or it cannot finish by the deadline
 * (UNAVAILABLE): then nothing is announced and the node should take writes again.
 */
export async function handOffForLeave(p: HandOffPorts, deadlineMs = leaveHandOffMs): Promise<HandOffDone> {
  const plan = p.plan();
  if (plan.kind === "refused") throw new OpFailure("FAILED_PRECONDITION", `not leaving: ${plan.reason}`);
  const end = p.nowMs() + deadlineMs;
  const done: HandOffDone = { targets: plan.targets.length, keys: plan.keys, merged: 0, bytes: 0 };
  let lastLogMs = p.nowMs();
  const progress = (): void => {
    if (p.nowMs() - lastLogMs < progressEveryMs) return;
    lastLogMs = p.nowMs();
    p.log.info("handing keys to their next owners before leaving", { merged: done.merged, bytes: done.bytes, keys: plan.keys, targets: plan.targets.length });
  };
  const call = async (to: { id: string; addr: string }, entries: HandOffEntry[], stamp: { epoch: number; confirms: number }): Promise<"ok" | "stale"> => {
    for (;;) {
      try {
        // Not `done.merged += await ...`: targets run at once, and that would read the sum before waiting.
        const merged = await p.send(to, entries, stamp);
        done.merged += merged;
        for (const e of entries) done.bytes += e.state.length;
        progress();
        return "ok";
      } catch (err) {
        if (!(err instanceof RpcError)) throw err;
        if (err.code === grpc.status.FAILED_PRECONDITION) return "stale";
        const transient = err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED || err.code === grpc.status.RESOURCE_EXHAUSTED;
        if (!transient || p.nowMs() + retryAfterMs >= end) {
          throw new OpFailure("UNAVAILABLE", `not leaving: handing keys to ${to.id} failed (${grpc.status[err.code] ?? err.code}: ${err.details}); this node takes writes again`);
        }
        await new Promise((r) => setTimeout(r, retryAfterMs));
      }
    }
  };
  await Promise.all(plan.targets.map(async (t) => {
    const to = { id: t.id, addr: t.addr };
    for (let i = 0; i < t.keys.length; i += readKeys) {
      const chunk = t.keys.slice(i, i + readKeys);
      // Read, send; read again if a call comes back stale (a collection relied on this node since).
      for (let attempt = 0; ; attempt++) {
        if (p.nowMs() >= end) throw new OpFailure("UNAVAILABLE", `not leaving: the hand-off did not finish within ${deadlineMs / 1000} s; this node takes writes again`);
        const stamp = p.stamp();
        if (await sendChunk(p.states(chunk), (entries) => call(to, entries, stamp)) === "ok") break;
      }
    }
  }));
  return done;
}

/** States as calls of about handOffCallBytes; a bigger state alone, in pieces. */
async function sendChunk(states: Array<[string, Uint8Array]>, send: (entries: HandOffEntry[]) => Promise<"ok" | "stale">): Promise<"ok" | "stale"> {
  let batch: HandOffEntry[] = [];
  let bytes = 0;
  const flush = async (): Promise<"ok" | "stale"> => {
    if (batch.length === 0) return "ok";
    const r = await send(batch);
    batch = [];
    bytes = 0;
    return r;
  };
  for (const [key, state] of states) {
    if (state.length > handOffCallBytes) {
      if (await flush() === "stale") return "stale";
      for (let offset = 0; offset < state.length; offset += handOffPieceBytes) {
        const piece = state.subarray(offset, Math.min(state.length, offset + handOffPieceBytes));
        if (await send([{ key, state: piece, offset, total: state.length }]) === "stale") return "stale";
      }
      continue;
    }
    if (bytes + state.length > handOffCallBytes && (await flush()) === "stale") return "stale";
    batch.push({ key, state, offset: 0, total: 0 });
    bytes += state.length;
  }
  return flush();
}

/**
 * States arriving in pieces, put back together per sender (whose pieces come in order: one call
 * at a time). A piece sent again (its call failed after the piece was taken: the merge was
 * refused, or the answer was lost or late) is taken again without harm: a piece this node has is
 * ignored, and a complete state is kept, and handed out again, until `committed` says it was
 * merged and made durable.
 */
export class HandOffAssembler {
  /** Senders with a state in pieces at once; each holds at most keyEnvelopeBytesMax. */
  static readonly partialMax = 4;
  /** A partial state untouched this long is dropped when room is needed (its sender went away). */
  static readonly partialIdleMs = 60_000;
  private readonly partial = new Map<string, { key: string; total: number; buf: Uint8Array; received: number; touchedMs: number }>();

  constructor(private readonly nowMs: () => number) {}

  /** The whole states among `entries` from `from`: whole ones as they are, pieces once their state is complete. */
  accept(from: string, entries: readonly HandOffEntry[]): Array<[string, Uint8Array]> {
    const out: Array<[string, Uint8Array]> = [];
    for (const e of entries) {
      if (e.total === 0) {
        out.push([e.key, e.state]);
        continue;
      }
      let p = this.partial.get(from);
      // A piece of the state in progress this node already has (sent again): nothing new, but
      // a complete state goes out again (its merge may be what failed). Not a first piece: a
      // sender that reads a state again (its merge was refused as stale, or a leave is tried
      // again) starts it over from offset 0, and what it reads may differ.
      if (p !== undefined && e.offset > 0 && p.key === e.key && p.total === e.total && e.offset + e.state.length <= p.received) {
        p.touchedMs = this.nowMs();
        if (p.received === p.total) out.push([p.key, p.buf]);
        continue;
      }
      // A piece of the state last committed, sent again (the answer to its call was lost): done.
      const last = this.lastCommitted.get(from);
      if (p === undefined && e.offset > 0 && last !== undefined && last.key === e.key && last.total === e.total) continue;
      if (e.offset === 0) {
        this.partial.delete(from);
        this.makeRoom();
        if (this.partial.size >= HandOffAssembler.partialMax) throw new OpFailure("RESOURCE_EXHAUSTED", `${HandOffAssembler.partialMax} members are handing over big states already; retry`);
        p = { key: e.key, total: e.total, buf: new Uint8Array(e.total), received: 0, touchedMs: 0 };
        this.partial.set(from, p);
      }
      if (p === undefined || p.key !== e.key || p.total !== e.total || e.offset !== p.received) {
        this.partial.delete(from);
        throw new OpFailure("INVALID_ARGUMENT", `piece at ${e.offset} of ${JSON.stringify(e.key.slice(0, 64))} does not continue a state this node is putting together`);
      }
      p.buf.set(e.state, e.offset);
      p.received += e.state.length;
      p.touchedMs = this.nowMs();
      if (p.received === p.total) out.push([p.key, p.buf]);
    }
    return out;
  }

  /** What accept handed out for `from` is merged and durable: a complete state in pieces is let go. */
  committed(from: string): void {
    const p = this.partial.get(from);
    if (p === undefined || p.received !== p.total) return;
    this.partial.delete(from);
    if (this.lastCommitted.size >= 1024) this.lastCommitted.clear();
    this.lastCommitted.set(from, { key: p.key, total: p.total });
  }

  /** Per sender, the last state in pieces committed (a late copy of its pieces is ignored). */
  private readonly lastCommitted = new Map<string, { key: string; total: number }>();

  /** Bytes held for states in pieces. */
  get bytesHeld(): number {
    let n = 0;
    for (const p of this.partial.values()) n += p.total;
    return n;
  }

  private makeRoom(): void {
    const now = this.nowMs();
    for (const [from, p] of this.partial) if (now - p.touchedMs >= HandOffAssembler.partialIdleMs) this.partial.delete(from);
  }
}
