// Anti-entropy: push-pull comparison of hash trees with one peer per period, shipping only the keys that differ.
//
// The exchange is stateless, so it needs no session timers and survives lost messages
// (the next period simply starts again): each `ae-tree` message carries some nodes of one
// level; the receiver answers with its own hashes of the children of the nodes that
// differ, one level deeper. Whoever compares the leaves lists the differing leaves' keys
// and digests (`ae-leaves`); the other side answers with its states of keys the lister
// lacks or holds differently, plus the keys it wants (`ae-states`), which the lister then
// sends. The cost follows the divergence: equal trees cost one root hash.
//
// Sizes: a reply carries at most aeReplyBytesMax of states, small states first; a state above
// one message (stateBytesMax) goes as `ae-piece`s that the receiver reassembles, at most a
// few such keys per reply, so one big key neither blocks the small ones nor waits behind them.

import type { ClusterConfig } from "./config.ts";
import { treeFanout, type HashTree, type TreeHash } from "./hashtree.ts";
import type { Outbox } from "./outbox.ts";
import type { ReplicaStore } from "./store.ts";
import type { ClusterEvent, Env, NodeId } from "./types.ts";
import { stateBytesMax, type AeStamp, type LeafListing, type Message, type TreeItem } from "./wire.ts";
import { aeReassemblyBytesMax, aeReplyBytesMax, peerEnvelopeTargetBytesMax } from "../limits.ts";

/** An ae-leaves message is closed once its listing may hold this many bytes (keys at 3 UTF-8 bytes per unit). */
const listingBytesTarget = peerEnvelopeTargetBytesMax / 2;
/** Keys whose states are read from the store at once while a reply is filled. */
const statesReadKeysMax = 256;
/** A partly received state is dropped after this many anti-entropy intervals without completing. */
const reassemblyIntervalsMax = 10;
/** The least bytes a key's state and name take when shipped: how many keys a state budget may carry at most. */
const pushKeyBytesMin = 32;
/** Transfers remembered as complete, so that a late duplicate piece does not start a new one. */
const completedTransfersMax = 64;

export type AeMessage = Extract<Message, { kind: "ae-tree" | "ae-leaves" | "ae-states" | "ae-piece" }>;

/** A state arriving in pieces. */
interface Reassembly {
  from: NodeId;
  key: string;
  transfer: number;
  buf: Uint8Array;
  /** Offsets of the pieces received (a duplicate piece is ignored). */
  offsets: Set<number>;
  received: number;
  startedMs: number;
  stamp: AeStamp | undefined;
}

/**
 * What tombstone collection (src/cluster/gc.ts) asks of anti-entropy: stamp the states read
 * here, drop states a peer read before a collection relied on it, and do not re-create a key
 * collected here from a peer's copy of its record.
 */
export interface AeGate {
  stamp(): AeStamp;
  acceptsStates(from: NodeId, stamp: AeStamp | undefined): boolean;
  skipsKey(key: string, state: Uint8Array): boolean;
}

const openGate: AeGate = { stamp: () => ({ epoch: 0, confirms: 0 }), acceptsStates: () => true, skipsKey: () => false };

export interface AePeer {
  id: NodeId;
  addr: string;
}

/** The window `recentBytes` reports over: what an operator reads as "bytes moving now". */
export const movingWindowMs = 60_000;
const movingBuckets = 6;

/** State bytes shipped with one peer, both ways: totals since start and the last movingWindowMs. */
class PeerTraffic {
  sent = 0;
  received = 0;
  /** Bytes per movingWindowMs / movingBuckets slice, by slice number (at most movingBuckets kept). */
  private readonly slices = new Map<number, number>();

  add(nowMs: number, bytes: number): void {
    const slice = Math.floor(nowMs / (movingWindowMs / movingBuckets));
    this.slices.set(slice, (this.slices.get(slice) ?? 0) + bytes);
    for (const s of this.slices.keys()) if (s <= slice - movingBuckets) this.slices.delete(s);
  }

  recent(nowMs: number): number {
    const slice = Math.floor(nowMs / (movingWindowMs / movingBuckets));
    let n = 0;
    for (const [s, b] of this.slices) if (s > slice - movingBuckets) n += b;
    return n;
  }
}

export class AntiEntropy {
  private nextRoundAtMs: number;
  /** State bytes shipped per peer (members' "bytes moving", metrics); forgotten with the peer. */
  private readonly traffic = new Map<NodeId, PeerTraffic>();
  private readonly repair = new Set<NodeId>();
  /** States arriving in pieces, oldest first, by `${from}\u0000${transfer}\u0000${key}`. */
  private readonly reassemblies = new Map<string, Reassembly>();
  private reassemblyBytes = 0;
  private readonly completed = new Set<string>();
  /**
   * Tells the pieces of one outgoing big state from those of another (u32, wraps); starts at
   * random on first use (a restarted node must not reuse its old numbers; drawn lazily so
   * nodes that never send a big state draw nothing from env.random).
   */
  private transferSeq = -1;
  /**
   * Keys this node may still list in the current interval (see antiEntropyListedKeysMax): exchanges
   * start every interval whether or not the last one finished, so a budget per exchange would not
   * bound the work of a node that repairs more slowly than exchanges arrive.
   */
  private listedKeysLeft = 0;
  /** Bytes of states this node may still send in the current interval (see antiEntropyStateBytesMax). */
  private stateBytesLeft = 0;
  private budgetWindowStartMs = Number.NEGATIVE_INFINITY;

  /** A new interval: the listing and state budgets start over (what was not used is not carried). */
  private refillBudgets(): void {
    const now = this.env.nowMs();
    if (now - this.budgetWindowStartMs < this.config.antiEntropyIntervalMs) return;
    this.budgetWindowStartMs = now;
    this.listedKeysLeft = this.config.antiEntropyListedKeysMax;
    this.stateBytesLeft = this.config.antiEntropyStateBytesMax;
  }

  constructor(
    private readonly config: ClusterConfig,
    private readonly env: Env,
    private readonly tree: HashTree,
    private readonly store: ReplicaStore,
    private readonly outbox: Outbox,
    private readonly events: ClusterEvent[],
    private readonly gate: AeGate = openGate,
    /**
     * The leaves this node compares with `peer` (one byte per leaf, non-zero = compared), or null
     * for all of them. In a partitioned cluster: the leaves of the partitions both own (the tree
     * is partition-major), so two owners compare exactly what they share and nothing else moves.
     */
    private readonly masks: (peer: NodeId) => Uint8Array | null = () => null,
    /**
     * The leaves of the partitions a node owns now (null: this node; null result: all leaves).
     * A partition compared only because one side owned it in a former placement (a hand-off)
     * flows one way: keys are pushed to a current owner and wanted only by one, so a former
     * owner hands its copy over without taking in the writes made since.
     */
    private readonly owned: (node: NodeId | null) => Uint8Array | null = () => null,
  ) {
    this.nextRoundAtMs = env.nowMs() + Math.floor(env.random() * config.antiEntropyIntervalMs);
  }

  /** The peer is exchanged with first in the coming rounds (it may have missed deltas). */
  markForRepair(peer: NodeId): void {
    this.repair.add(peer);
  }

  forget(peer: NodeId): void {
    this.repair.delete(peer);
    this.traffic.delete(peer);
  }

  /** State bytes shipped to and from `peer`: totals since start, and both ways in the last movingWindowMs. */
  peerTraffic(peer: NodeId): { sent: number; received: number; recent: number } {
    const t = this.traffic.get(peer);
    return t === undefined ? { sent: 0, received: 0, recent: 0 } : { sent: t.sent, received: t.received, recent: t.recent(this.env.nowMs()) };
  }

  private count(peer: NodeId, bytes: number, way: "sent" | "received"): void {
    if (bytes === 0) return;
    let t = this.traffic.get(peer);
    if (t === undefined) {
      // Bounded like every per-peer table: a peer beyond membersMax is not counted.
      if (this.traffic.size >= this.config.membersMax) return;
      t = new PeerTraffic();
      this.traffic.set(peer, t);
    }
    t[way] += bytes;
    t.add(this.env.nowMs(), bytes);
  }

  nextDeadlineMs(): number {
    return this.nextRoundAtMs;
  }

  tick(livePeers: readonly AePeer[]): void {
    const now = this.env.nowMs();
    if (now < this.nextRoundAtMs) return;
    this.nextRoundAtMs = now + this.config.antiEntropyIntervalMs;
    this.dropStaleReassemblies(now);
    if (livePeers.length === 0) return;
    let peer: AePeer | undefined;
    for (const p of livePeers) {
      if (this.repair.has(p.id)) {
        peer = p;
        this.repair.delete(p.id);
        break;
      }
    }
    peer ??= livePeers[Math.floor(this.env.random() * livePeers.length)];
    if (peer !== undefined) this.start(peer);
  }

  /** Exchanges this node opened. */
  roundsStarted = 0;

  /** Opens an exchange with `peer` by sending our root hash. */
  start(peer: AePeer): void {
    this.roundsStarted++;
    this.store.reportChanges?.(); // the root hash below must cover every change so far
    this.outbox.send(peer.id, peer.addr, { kind: "ae-tree", depth: this.tree.depth, level: 0, items: [{ index: 0, hash: this.hashFor(this.masks(peer.id), 0, 0) }] });
  }

  /** A node's hash as compared with a peer: over the leaves of `mask` only, or whole. */
  private hashFor(mask: Uint8Array | null, level: number, index: number): TreeHash {
    return mask === null ? this.tree.hash(level, index) : this.tree.maskedHash(level, index, mask);
  }

  handle(from: NodeId, fromAddr: string, msg: AeMessage): void {
    switch (msg.kind) {
      case "ae-tree":
        this.onTree(from, fromAddr, msg.depth, msg.level, msg.items);
        return;
      case "ae-leaves":
        this.onLeaves(from, fromAddr, msg.depth, msg.leaves);
        return;
      case "ae-states":
        this.onStates(from, fromAddr, msg.entries, msg.want, msg.stamp);
        return;
      case "ae-piece":
        this.onPiece(from, msg);
        return;
    }
  }

  private refuse(from: NodeId, reason: string): void {
    this.events.push({ kind: "message-refused", from, reason: `anti-entropy: ${reason}` });
  }

  private onTree(from: NodeId, fromAddr: string, depth: number, level: number, items: readonly TreeItem[]): void {
    if (depth !== this.tree.depth) return this.refuse(from, `tree depth ${depth}, ours is ${this.tree.depth}`);
    const mask = this.masks(from);
    const differing: number[] = [];
    for (const it of items) {
      if (!this.tree.hasNode(level, it.index)) return this.refuse(from, `no tree node ${level}/${it.index}`);
      const h = this.hashFor(mask, level, it.index);
      if (h[0] !== it.hash[0] || h[1] !== it.hash[1] || h[2] !== it.hash[2] || h[3] !== it.hash[3]) differing.push(it.index);
    }
    if (differing.length === 0) return;
    if (level === this.tree.depth) {
      // A leaf outside what we share is not listed (the peer's view of the owners differs: it is
      // compared once both views agree).
      this.sendLeaves(from, fromAddr, mask === null ? differing : differing.filter((leaf) => mask[leaf] !== 0));
      return;
    }
    let children: TreeItem[] = [];
    for (const idx of differing) {
      for (let c = 0; c < treeFanout; c++) {
        const child = idx * treeFanout + c;
        children.push({ index: child, hash: this.hashFor(mask, level + 1, child) });
      }
    }
    // Every child up to the exchange's budget, in messages of antiEntropyTreeItemsMax: a slice
    // of one message's worth (1/16 of a depth-4 tree's leaves) would find only that share of
    // the differing keys per exchange, so a replica missing a few keys everywhere would need
    // dozens of exchanges per peer to converge.
    children = this.slice(children, this.config.antiEntropyExchangeTreeItemsMax);
    const perMsg = this.config.antiEntropyTreeItemsMax;
    for (let i = 0; i < children.length; i += perMsg) {
      this.outbox.send(from, fromAddr, { kind: "ae-tree", depth, level: level + 1, items: children.slice(i, i + perMsg) });
    }
  }

  /** At most `max` items: a random contiguous (wrapping) slice, so repeated sessions cover all. */
  private slice<T>(xs: T[], max: number): T[] {
    if (xs.length <= max) return xs;
    const start = Math.floor(this.env.random() * xs.length);
    const out = xs.slice(start, start + max);
    if (out.length < max) out.push(...xs.slice(0, max - out.length));
    return out;
  }

  /**
   * Lists differing leaves, at most antiEntropyLeavesPerMessageMax and about
   * listingBytesTarget per message (a leaf is listed whole: the receiver reads a missing key
   * as one to send), within what is left of antiEntropyListedKeysMax for this interval, from a
   * random leaf on so that the leaves left out are listed by a later exchange.
   */
  private sendLeaves(to: NodeId, addr: string, differing: readonly number[]): void {
    const perMsg = this.config.antiEntropyLeavesPerMessageMax;
    let listing: LeafListing[] = [];
    let bytes = 0;
    this.refillBudgets();
    let all = 0;
    for (const index of differing) all += this.tree.leafKeyCount(index);
    // Over the budget: start at a random differing leaf (wrapping), so that every one is listed in time.
    const start = all > this.listedKeysLeft ? Math.floor(this.env.random() * differing.length) : 0;
    for (let n = 0; n < differing.length; n++) {
      const index = differing[(start + n) % differing.length] as number;
      if (this.listedKeysLeft <= 0) break;
      const entries = this.tree.leafEntries(index);
      this.listedKeysLeft -= entries.length;
      let leafBytes = 8;
      for (const e of entries) leafBytes += 3 * e.key.length + 18;
      if (listing.length > 0 && (listing.length >= perMsg || bytes + leafBytes > listingBytesTarget)) {
        this.outbox.send(to, addr, { kind: "ae-leaves", depth: this.tree.depth, leaves: listing });
        listing = [];
        bytes = 0;
      }
      listing.push({ index, entries });
      bytes += leafBytes;
    }
    if (listing.length > 0) this.outbox.send(to, addr, { kind: "ae-leaves", depth: this.tree.depth, leaves: listing });
  }

  private onLeaves(from: NodeId, fromAddr: string, depth: number, leaves: readonly LeafListing[]): void {
    if (depth !== this.tree.depth) return this.refuse(from, `tree depth ${depth}, ours is ${this.tree.depth}`);
    const mask = this.masks(from);
    // Leaves of partitions we do not share with the peer (our view): neither pushed nor wanted.
    if (mask !== null) leaves = leaves.filter((leaf) => mask[leaf.index] !== 0);
    const push: string[] = [];
    const want: string[] = [];
    for (const leaf of leaves) {
      if (!this.tree.hasNode(this.tree.depth, leaf.index)) return this.refuse(from, `no leaf ${leaf.index}`);
      for (const e of leaf.entries) {
        if (this.tree.leafOf(e.key) !== leaf.index) return this.refuse(from, `key listed under the wrong leaf ${leaf.index}`);
      }
    }
    this.refillBudgets();
    // Keys worth reading for a push: no more than this interval's state budget can carry. Past
    // it only the keys the peer listed are looked up (for what to ask it for): a peer that
    // lists little (an empty one lists every leaf, empty) must not make this node turn its whole
    // keyspace into strings on every exchange, only to send none of them.
    let pushKeysRoom = Math.floor(this.stateBytesLeft / pushKeyBytesMin);
    const mineNow = this.owned(null);
    const theirsNow = this.owned(from);
    for (const leaf of leaves) {
      const pushing = theirsNow === null || theirsNow[leaf.index] !== 0;
      const wanting = mineNow === null || mineNow[leaf.index] !== 0;
      if (pushKeysRoom <= 0 || !pushing) {
        if (wanting) for (const e of leaf.entries) if (this.tree.digestOf(e.key) !== e.digest) want.push(e.key);
        continue;
      }
      const theirs = new Map<string, bigint>();
      for (const e of leaf.entries) theirs.set(e.key, e.digest);
      const mine = new Map<string, bigint>();
      for (const e of this.tree.leafEntries(leaf.index)) mine.set(e.key, e.digest);
      for (const [k, d] of mine) {
        if (theirs.get(k) === d) continue;
        push.push(k);
        pushKeysRoom--;
      }
      if (wanting) for (const [k, d] of theirs) if (mine.get(k) !== d) want.push(k);
    }
    this.sendStates(from, fromAddr, push, want);
  }

  private onStates(from: NodeId, fromAddr: string, all: ReadonlyArray<readonly [string, Uint8Array]>, want: readonly string[], stamp: AeStamp | undefined): void {
    const entries = all.length > 0 && this.gate.acceptsStates(from, stamp) ? all.filter(([k, st]) => !this.gate.skipsKey(k, st)) : [];
    if (entries.length > 0) {
      this.store.mergeStates(entries);
      let bytes = 0;
      for (const [k, st] of entries) bytes += k.length + st.length;
      this.count(from, bytes, "received");
    }
    if (want.length > 0) this.sendStates(from, fromAddr, [...want], []);
    if (entries.length > 0 || want.length > 0) {
      this.events.push({ kind: "anti-entropy-repaired", peer: from, keysSent: want.length, keysReceived: entries.length });
    }
  }

  /**
   * States of `keys`, at most aeReplyBytesMax in all and within what is left of
   * antiEntropyStateBytesMax for this interval (the rest waits for a later round): states
   * of up to stateBytesMax bytes in ae-states messages of about antiEntropyChunkBytesMax each,
   * then larger ones in pieces - always at least one of them, starting at a random one, so that
   * every big key is shipped in time and none delays the small ones. `want` rides on the first
   * message.
   */
  private sendStates(to: NodeId, addr: string, keys: readonly string[], want: string[]): void {
    /** Keys of states above stateBytesMax (read again when sent: holding many big states would cost their size). */
    const big: string[] = [];
    let chunk: Array<[string, Uint8Array]> = [];
    let chunkBytes = 0;
    let sent = 0;
    this.refillBudgets();
    const cap = Math.min(aeReplyBytesMax, this.stateBytesLeft);
    let wantSent = false;
    // Every state below is read now, in this call: one stamp covers them all.
    const stamp = this.gate.stamp();
    const flush = (): void => {
      if (chunk.length === 0 && (wantSent || want.length === 0)) return;
      this.outbox.send(to, addr, { kind: "ae-states", entries: chunk, want: wantSent ? [] : want, stamp });
      wantSent = true;
      chunk = [];
      chunkBytes = 0;
    };
    for (let i = 0; i < keys.length && sent < cap; i += statesReadKeysMax) {
      for (const [k, s] of this.store.states(keys.slice(i, i + statesReadKeysMax))) {
        if (s.length > stateBytesMax) {
          big.push(k);
          continue;
        }
        const bytes = s.length + k.length;
        if (sent + bytes > cap) break;
        if (chunk.length > 0 && chunkBytes + bytes > this.config.antiEntropyChunkBytesMax) flush();
        chunk.push([k, s]);
        chunkBytes += bytes;
        sent += bytes;
      }
    }
    flush();
    const first = big.length > 0 ? Math.floor(this.env.random() * big.length) : 0;
    for (let n = 0; n < big.length; n++) {
      const [entry] = this.store.states([big[(first + n) % big.length] as string]);
      if (entry === undefined) continue;
      const [k, s] = entry;
      if (n > 0 && sent + s.length > cap) break;
      if (s.length > stateBytesMax) this.sendPieces(to, addr, k, s, stamp);
      else this.outbox.send(to, addr, { kind: "ae-states", entries: [[k, s]], want: [], stamp });
      sent += s.length;
    }
    this.stateBytesLeft -= sent;
    this.count(to, sent, "sent");
  }

  /** One state of more than stateBytesMax bytes, as ae-pieces of at most stateBytesMax. */
  private sendPieces(to: NodeId, addr: string, key: string, state: Uint8Array, stamp: AeStamp): void {
    if (this.transferSeq < 0) this.transferSeq = Math.floor(this.env.random() * 0x1_0000_0000) >>> 0;
    const transfer = this.transferSeq;
    this.transferSeq = (this.transferSeq + 1) >>> 0;
    for (let offset = 0; offset < state.length; offset += stateBytesMax) {
      const bytes = state.subarray(offset, Math.min(state.length, offset + stateBytesMax));
      this.outbox.send(to, addr, { kind: "ae-piece", key, transfer, totalBytes: state.length, offset, bytes, stamp });
    }
  }

  /** Bytes held for states arriving in pieces (for tests and metrics). */
  get reassemblyBytesHeld(): number {
    return this.reassemblyBytes;
  }

  private onPiece(from: NodeId, msg: Extract<AeMessage, { kind: "ae-piece" }>): void {
    // Pieces are cut at multiples of stateBytesMax, full size but the last: they cannot overlap.
    if (msg.offset % stateBytesMax !== 0 || msg.bytes.length !== Math.min(stateBytesMax, msg.totalBytes - msg.offset)) {
      return this.refuse(from, `piece [${msg.offset}, +${msg.bytes.length}) of ${msg.key.slice(0, 64)} is not cut at a multiple of ${stateBytesMax}`);
    }
    const id = `${from}\u0000${msg.transfer}\u0000${msg.key}`;
    if (this.completed.has(id)) return;
    let r = this.reassemblies.get(id);
    if (r !== undefined && r.buf.length !== msg.totalBytes) return this.refuse(from, `piece of ${msg.key.slice(0, 64)} disagrees on its state's size`);
    if (r === undefined) {
      // Room first: the oldest partial states go (a later round sends them again).
      for (const [oldId, old] of this.reassemblies) {
        if (this.reassemblyBytes + msg.totalBytes <= aeReassemblyBytesMax) break;
        this.dropReassembly(oldId, old);
      }
      r = { from, key: msg.key, transfer: msg.transfer, buf: new Uint8Array(msg.totalBytes), offsets: new Set(), received: 0, startedMs: this.env.nowMs(), stamp: msg.stamp };
      this.reassemblies.set(id, r);
      this.reassemblyBytes += msg.totalBytes;
    }
    if (r.offsets.has(msg.offset)) return;
    r.offsets.add(msg.offset);
    r.buf.set(msg.bytes, msg.offset);
    r.received += msg.bytes.length;
    if (r.received < r.buf.length) return;
    this.dropReassembly(id, r);
    this.completed.add(id);
    if (this.completed.size > completedTransfersMax) this.completed.delete(this.completed.values().next().value as string);
    if (!this.gate.acceptsStates(from, r.stamp) || this.gate.skipsKey(r.key, r.buf)) return;
    this.store.mergeStates([[r.key, r.buf]]);
    this.count(from, r.key.length + r.buf.length, "received");
    this.events.push({ kind: "anti-entropy-repaired", peer: from, keysSent: 0, keysReceived: 1 });
  }

  private dropReassembly(id: string, r: Reassembly): void {
    if (!this.reassemblies.delete(id)) return;
    this.reassemblyBytes -= r.buf.length;
  }

  private dropStaleReassemblies(now: number): void {
    const ageMsMax = reassemblyIntervalsMax * this.config.antiEntropyIntervalMs;
    for (const [id, r] of this.reassemblies) if (now - r.startedMs > ageMsMax) this.dropReassembly(id, r);
  }
}
