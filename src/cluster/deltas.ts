// Pushes the engine's deltas to every live peer in small acknowledged batches, with a bounded backlog per peer.
//
// Each (sender epoch, receiver) pair is a sequence-numbered stream. The receiver merges
// every batch it gets (deltas are joins, so order and duplicates do not matter) and acks
// the highest sequence up to which it has everything, counting from the sender's floor (the
// lowest sequence the sender can still resend, carried in every batch), so it never
// acknowledges a delta it did not receive; the sender resends from there after
// deltaRetransmitMs without progress (go-back-N). A peer whose backlog overflows loses its
// backlog and is handed to anti-entropy, which repairs whatever it missed.

import type { ClusterConfig } from "./config.ts";
import type { Outbox } from "./outbox.ts";
import type { ReplicaStore } from "./store.ts";
import type { ClusterEvent, Env, NodeId } from "./types.ts";
import type { Message } from "./wire.ts";

interface PeerOut {
  /** Sequence number of entries[start]. */
  headSeq: number;
  entries: Uint8Array[];
  /** When each entry was queued (env ms), parallel to entries: the replication lag. */
  enqueuedAtMs: number[];
  start: number;
  bytes: number;
  /** Sequence number the next enqueued delta gets. */
  nextSeq: number;
  sentUpTo: number;
  acked: number;
  lastProgressMs: number;
  /** Bytes of the deltas in (acked, sentUpTo]: bounded by deltaInflightBytesMax. */
  inflightBytes: number;
  /** The current resend timeout: deltaRetransmitMs, doubled per resend without progress. */
  retransmitMs: number;
}

interface PeerIn {
  epoch: number;
  contiguous: number;
  /** contiguous when this process began the record: seqs at or below it did not arrive here (see receivedWhole). */
  startFloor: number;
}

export interface PeerAddress {
  id: NodeId;
  addr: string;
}

export class DeltaPush {
  private readonly out = new Map<NodeId, PeerOut>();
  private readonly inbound = new Map<NodeId, PeerIn>();
  /** Where a peer's stream resumes after a reset (peerGone): its next seq then. */
  private readonly resumeAt = new Map<NodeId, number>();
  private nextPushAtMs = 0;

  constructor(
    private readonly config: ClusterConfig,
    private readonly env: Env,
    private readonly store: ReplicaStore,
    private readonly outbox: Outbox,
    private readonly events: ClusterEvent[],
    /** Random per process start, so receivers can tell a restarted sender's new stream. */
    private readonly epoch: number,
    private readonly needsRepair: (peer: NodeId) => void,
  ) {}

  /** Queues one locally produced delta for every live peer. */
  enqueue(delta: Uint8Array, livePeers: readonly PeerAddress[]): void {
    const now = livePeers.length > 0 ? this.env.nowMs() : 0;
    for (const p of livePeers) {
      const o = this.peerOut(p.id);
      o.entries.push(delta);
      o.enqueuedAtMs.push(now);
      o.bytes += delta.length;
      o.nextSeq++;
      if (o.entries.length - o.start > this.config.deltaBacklogEntriesMax || o.bytes > this.config.deltaBacklogBytesMax) this.overflow(p.id, o);
    }
  }

  /** Peers with deltas not yet acknowledged. */
  backlog(peer: NodeId): { entries: number; bytes: number; oldestAgeMs: number } {
    const o = this.out.get(peer);
    if (o === undefined) return { entries: 0, bytes: 0, oldestAgeMs: 0 };
    const entries = o.entries.length - o.start;
    // Replication lag: how long the oldest unacknowledged delta has waited for this peer.
    const oldest = entries === 0 ? 0 : (o.enqueuedAtMs[o.start] ?? this.env.nowMs());
    return { entries, bytes: o.bytes, oldestAgeMs: entries === 0 ? 0 : Math.max(0, this.env.nowMs() - oldest) };
  }

  /**
   * Where `peer`'s stream stands, for a caller that must know its deltas arrived (a stray push,
   * Cluster.pushStrays): the seq of the last delta queued, the last one acknowledged, and how
   * often the stream was cut (an overflow or the peer gone: what was queued then may never
   * arrive, though `acked` moves past it).
   */
  streamOf(peer: NodeId): { queued: number; acked: number; cuts: number } {
    const o = this.out.get(peer);
    const cuts = this.cuts.get(peer) ?? 0;
    return o === undefined ? { queued: 0, acked: 0, cuts } : { queued: o.nextSeq - 1, acked: o.acked, cuts };
  }

  /** Per peer, how often its stream was cut (overflow, peer gone); see streamOf. */
  private readonly cuts = new Map<NodeId, number>();

  private cut(peer: NodeId): void {
    if (this.cuts.size >= this.config.membersMax && !this.cuts.has(peer)) this.cuts.clear();
    this.cuts.set(peer, (this.cuts.get(peer) ?? 0) + 1);
  }

  /** This process's stream epoch (receivers tell a restarted sender's new stream by it). */
  get streamEpoch(): number {
    return this.epoch;
  }

  /**
   * The seq of the last delta queued for `peer` that it has not acknowledged yet, or 0 when it
   * acknowledged everything queued (it holds them all: nothing of this stream is still to come).
   */
  outstandingUpTo(peer: NodeId): number {
    const o = this.out.get(peer);
    return o === undefined || o.acked >= o.nextSeq - 1 ? 0 : o.nextSeq - 1;
  }

  /**
   * Has everything `peer`'s stream `epoch` queued up to `seq` arrived here (or been handed to
   * anti-entropy by the sender)? seq 0 asks for nothing.
   */
  receivedUpTo(peer: NodeId, epoch: number, seq: number): boolean {
    if (seq === 0) return true;
    const rec = this.inbound.get(peer);
    return rec !== undefined && rec.epoch === epoch && rec.contiguous >= seq;
  }

  /**
   * Did this process itself receive and merge every delta `peer`'s stream `epoch` numbered from
   * `first` to `last`? Not if the record began above `first` (this process started, or the
   * peer's stream restarted, after they were sent: an acknowledgement of them may have come from
   * an earlier process that lost them) - the stray push's keep ask relies on it (Cluster).
   */
  receivedWhole(peer: NodeId, epoch: number, first: number, last: number): boolean {
    const rec = this.inbound.get(peer);
    return rec !== undefined && rec.epoch === epoch && rec.startFloor < first && rec.contiguous >= last;
  }

  /** Forgets a dead, left or reaped peer's stream (its backlog would never drain). */
  peerGone(peer: NodeId): void {
    const o = this.out.get(peer);
    // A stream never numbers two deltas alike within one epoch, even across a reset: the
    // receiver skips seqs at or below what it already has (see handle), so a stream restarting
    // at 1 would have its new deltas dropped there. The dropped backlog goes to anti-entropy
    // (the peer is marked for repair when it comes back).
    if (o !== undefined) this.resumeAt.set(peer, o.nextSeq);
    this.out.delete(peer);
    this.cut(peer);
    // The inbound record stays (a few numbers): it is what keeps a late duplicate of a delta
    // already merged from being merged again once the peer is back (tombstone collection relies
    // on it), and a restarted peer's new stream replaces it anyway.
  }

  hasUnsent(): boolean {
    for (const o of this.out.values()) if (o.sentUpTo + 1 < o.nextSeq || o.acked < o.sentUpTo) return true;
    return false;
  }

  nextDeadlineMs(): number {
    let t = Number.POSITIVE_INFINITY;
    for (const o of this.out.values()) {
      if (this.canSendMore(o)) return this.nextPushAtMs;
      if (o.acked < o.sentUpTo) t = Math.min(t, Math.max(this.nextPushAtMs, o.lastProgressMs + o.retransmitMs));
    }
    return t;
  }

  tick(livePeers: readonly PeerAddress[]): void {
    const now = this.env.nowMs();
    if (now < this.nextPushAtMs) return;
    this.nextPushAtMs = now + this.config.deltaPushIntervalMs;
    for (const p of livePeers) {
      const o = this.out.get(p.id);
      if (o === undefined) continue;
      if (o.acked < o.sentUpTo && now - o.lastProgressMs >= o.retransmitMs) {
        o.sentUpTo = o.acked; // go back N
        o.inflightBytes = 0;
        o.lastProgressMs = now;
        o.retransmitMs = Math.min(o.retransmitMs * 2, this.config.deltaRetransmitMaxMs);
      }
      // As many batches as the in-flight window admits, not one per tick: a tick that comes
      // late (a busy event loop) would otherwise cap the stream at deltaBatchEntriesMax per
      // tick, below the rate writes arrive at, and the backlog would overflow into
      // anti-entropy, which repairs far more slowly. The window bounds what one tick sends.
      while (this.sendBatch(p, o, now));
    }
  }

  /** Sends the next batch the window admits; false when there is none. */
  private sendBatch(p: PeerAddress, o: PeerOut, now: number): boolean {
    let seq = Math.max(o.sentUpTo + 1, o.headSeq);
    const first = seq;
    const deltas: Uint8Array[] = [];
    let bytes = 0;
    while (seq < o.nextSeq && deltas.length < this.config.deltaBatchEntriesMax && seq - o.acked <= this.config.deltaInflightEntriesMax) {
      const d = o.entries[o.start + (seq - o.headSeq)] as Uint8Array;
      if (deltas.length > 0 && bytes + d.length > this.config.deltaBatchBytesMax) break;
      if (o.inflightBytes > 0 && o.inflightBytes + d.length > this.config.deltaInflightBytesMax) break;
      deltas.push(d);
      bytes += d.length;
      o.inflightBytes += d.length;
      seq++;
    }
    if (deltas.length === 0) return false;
    if (o.acked >= o.sentUpTo) o.lastProgressMs = now;
    o.sentUpTo = seq - 1;
    this.outbox.send(p.id, p.addr, { kind: "delta-batch", epoch: this.epoch, floorSeq: o.headSeq, firstSeq: first, deltas });
    return true;
  }

  handle(from: NodeId, fromAddr: string, msg: Extract<Message, { kind: "delta-batch" | "delta-ack" }>): void {
    if (msg.kind === "delta-batch") {
      let rec = this.inbound.get(from);
      if (rec === undefined || rec.epoch !== msg.epoch) {
        // A new stream (first contact, or the sender restarted). Everything below the sender's
        // floor it no longer holds (acknowledged before, or handed to anti-entropy); everything
        // from the floor on must arrive here before it is acknowledged. Starting at this batch's
        // firstSeq instead would acknowledge the lost batches before it.
        rec = { epoch: msg.epoch, contiguous: msg.floorSeq - 1, startFloor: msg.floorSeq - 1 };
        this.inbound.set(from, rec);
      }
      // The floor only rises when the sender stops holding deltas: nothing left to wait for.
      rec.contiguous = Math.max(rec.contiguous, msg.floorSeq - 1);
      // Deltas at or below `contiguous` are here already (or were handed to anti-entropy): a late
      // duplicate of them is not merged again. Tombstone collection relies on it: once this node
      // has everything up to the seq a peer named in its confirmation, nothing older from that
      // peer's stream may bring a collected key back (src/cluster/gc.ts).
      const skip = Math.max(0, Math.min(msg.deltas.length, rec.contiguous - msg.firstSeq + 1));
      this.store.mergeDeltas(skip === 0 ? msg.deltas : msg.deltas.slice(skip));
      const last = msg.firstSeq + msg.deltas.length - 1;
      if (msg.firstSeq <= rec.contiguous + 1) rec.contiguous = Math.max(rec.contiguous, last);
      this.outbox.send(from, fromAddr, { kind: "delta-ack", epoch: msg.epoch, seq: rec.contiguous });
      return;
    }
    if (msg.epoch !== this.epoch) return;
    const o = this.out.get(from);
    if (o === undefined || msg.seq <= o.acked) return;
    const seq = Math.min(msg.seq, o.sentUpTo, o.nextSeq - 1);
    if (seq <= o.acked) return;
    o.acked = seq;
    o.lastProgressMs = this.env.nowMs();
    o.retransmitMs = this.config.deltaRetransmitMs;
    while (o.headSeq <= seq && o.start < o.entries.length) {
      const len = (o.entries[o.start] as Uint8Array).length;
      o.bytes -= len;
      // Every acknowledged seq was sent (seq <= sentUpTo), so it was in flight.
      o.inflightBytes = Math.max(0, o.inflightBytes - len);
      o.start++;
      o.headSeq++;
    }
    if (o.start > 1024 && o.start * 2 > o.entries.length) {
      o.entries = o.entries.slice(o.start);
      o.enqueuedAtMs = o.enqueuedAtMs.slice(o.start);
      o.start = 0;
    }
    this.events.push({ kind: "deltas-acked", peer: from, seq });
  }

  /** Unsent deltas exist and the in-flight window (entries and bytes) admits the next one. */
  private canSendMore(o: PeerOut): boolean {
    const next = Math.max(o.sentUpTo + 1, o.headSeq);
    if (next >= o.nextSeq || next - o.acked > this.config.deltaInflightEntriesMax) return false;
    const d = o.entries[o.start + (next - o.headSeq)] as Uint8Array;
    return o.inflightBytes === 0 || o.inflightBytes + d.length <= this.config.deltaInflightBytesMax;
  }

  private peerOut(id: NodeId): PeerOut {
    let o = this.out.get(id);
    if (o === undefined) {
      const first = this.resumeAt.get(id) ?? 1;
      o = { headSeq: first, entries: [], enqueuedAtMs: [], start: 0, bytes: 0, nextSeq: first, sentUpTo: first - 1, acked: first - 1, lastProgressMs: 0, inflightBytes: 0, retransmitMs: this.config.deltaRetransmitMs };
      this.out.set(id, o);
    }
    return o;
  }

  private overflow(peer: NodeId, o: PeerOut): void {
    o.entries = [];
    o.enqueuedAtMs = [];
    o.start = 0;
    o.bytes = 0;
    o.inflightBytes = 0;
    o.headSeq = o.nextSeq;
    o.sentUpTo = Math.max(o.sentUpTo, o.nextSeq - 1);
    o.acked = Math.max(o.acked, o.nextSeq - 1);
    this.events.push({ kind: "delta-backlog-overflow", peer });
    this.cut(peer);
    this.needsRepair(peer);
  }
}
