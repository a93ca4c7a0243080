// Anti-entropy: push-pull comparison of hash trees with one peer per period, shipping only the keys that differ.
//
// The exchange is stateless, so it needs no session timers and survives lost messages
// (the next period simply starts again): each `ae-tree` message carries some nodes of one
// level; the receiver answers with its own hashes of the children of the nodes that
// differ, one level deeper. Whoever compares the leaves lists the differing leaves' keys
// and digests (`ae-leaves`); the other side answers with its states of keys the lister
// lacks or holds differently, plus the keys it wants (`ae-states`), which the lister then
// sends. The cost follows the divergence: equal trees cost one root hash.

import type { ClusterConfig } from "./config.ts";
import { treeFanout, type HashTree } from "./hashtree.ts";
import type { Outbox } from "./outbox.ts";
import type { ReplicaStore } from "./store.ts";
import type { ClusterEvent, Env, NodeId } from "./types.ts";
import type { LeafListing, Message, TreeItem } from "./wire.ts";

/** One request is answered with at most this many chunks of states; the rest waits for the next round. */
export const antiEntropyReplyChunksMax = 8;

export type AeMessage = Extract<Message, { kind: "ae-tree" | "ae-leaves" | "ae-states" }>;

export interface AePeer {
  id: NodeId;
  addr: string;
}

export class AntiEntropy {
  private nextRoundAtMs: number;
  private readonly repair = new Set<NodeId>();

  constructor(
    private readonly config: ClusterConfig,
    private readonly env: Env,
    private readonly tree: HashTree,
    private readonly store: ReplicaStore,
    private readonly outbox: Outbox,
    private readonly events: ClusterEvent[],
  ) {
    this.nextRoundAtMs = env.nowMs() + Math.floor(env.random() * config.antiEntropyIntervalMs);
  }

  /** The peer is exchanged with first in the coming rounds (it may have missed deltas). */
  markForRepair(peer: NodeId): void {
    this.repair.add(peer);
  }

  forget(peer: NodeId): void {
    this.repair.delete(peer);
  }

  nextDeadlineMs(): number {
    return this.nextRoundAtMs;
  }

  tick(livePeers: readonly AePeer[]): void {
    const now = this.env.nowMs();
    if (now < this.nextRoundAtMs) return;
    this.nextRoundAtMs = now + this.config.antiEntropyIntervalMs;
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
    const [lo, hi] = this.tree.hash(0, 0);
    this.outbox.send(peer.id, peer.addr, { kind: "ae-tree", depth: this.tree.depth, level: 0, items: [{ index: 0, lo, hi }] });
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
        this.onStates(from, fromAddr, msg.entries, msg.want);
        return;
    }
  }

  private refuse(from: NodeId, reason: string): void {
    this.events.push({ kind: "message-refused", from, reason: `anti-entropy: ${reason}` });
  }

  private onTree(from: NodeId, fromAddr: string, depth: number, level: number, items: readonly TreeItem[]): void {
    if (depth !== this.tree.depth) return this.refuse(from, `tree depth ${depth}, ours is ${this.tree.depth}`);
    const differing: number[] = [];
    for (const it of items) {
      if (!this.tree.hasNode(level, it.index)) return this.refuse(from, `no tree node ${level}/${it.index}`);
      const [lo, hi] = this.tree.hash(level, it.index);
      if (lo !== it.lo || hi !== it.hi) differing.push(it.index);
    }
    if (differing.length === 0) return;
    if (level === this.tree.depth) {
      this.sendLeaves(from, fromAddr, differing);
      return;
    }
    let children: TreeItem[] = [];
    for (const idx of differing) {
      for (let c = 0; c < treeFanout; c++) {
        const child = idx * treeFanout + c;
        const [lo, hi] = this.tree.hash(level + 1, child);
        children.push({ index: child, lo, hi });
      }
    }
    children = this.slice(children, this.config.antiEntropyTreeItemsMax);
    this.outbox.send(from, fromAddr, { kind: "ae-tree", depth, level: level + 1, items: children });
  }

  /** At most `max` items: a random contiguous (wrapping) slice, so repeated sessions cover all. */
  private slice<T>(xs: T[], max: number): T[] {
    if (xs.length <= max) return xs;
    const start = Math.floor(this.env.random() * xs.length);
    const out = xs.slice(start, start + max);
    if (out.length < max) out.push(...xs.slice(0, max - out.length));
    return out;
  }

  private sendLeaves(to: NodeId, addr: string, leaves: readonly number[]): void {
    const perMsg = this.config.antiEntropyLeavesPerMessageMax;
    for (let i = 0; i < leaves.length; i += perMsg) {
      const listing: LeafListing[] = leaves.slice(i, i + perMsg).map((index) => ({ index, entries: this.tree.leafEntries(index) }));
      this.outbox.send(to, addr, { kind: "ae-leaves", depth: this.tree.depth, leaves: listing });
    }
  }

  private onLeaves(from: NodeId, fromAddr: string, depth: number, leaves: readonly LeafListing[]): void {
    if (depth !== this.tree.depth) return this.refuse(from, `tree depth ${depth}, ours is ${this.tree.depth}`);
    const push: string[] = [];
    const want: string[] = [];
    for (const leaf of leaves) {
      if (!this.tree.hasNode(this.tree.depth, leaf.index)) return this.refuse(from, `no leaf ${leaf.index}`);
      const theirs = new Map<string, bigint>();
      for (const e of leaf.entries) {
        if (this.tree.leafOf(e.key) !== leaf.index) return this.refuse(from, `key listed under the wrong leaf ${leaf.index}`);
        theirs.set(e.key, e.digest);
      }
      const mine = new Map<string, bigint>();
      for (const e of this.tree.leafEntries(leaf.index)) mine.set(e.key, e.digest);
      for (const [k, d] of mine) if (theirs.get(k) !== d) push.push(k);
      for (const [k, d] of theirs) if (mine.get(k) !== d) want.push(k);
    }
    this.sendStates(from, fromAddr, push, want);
  }

  private onStates(from: NodeId, fromAddr: string, entries: ReadonlyArray<readonly [string, Uint8Array]>, want: readonly string[]): void {
    if (entries.length > 0) this.store.mergeStates(entries);
    if (want.length > 0) this.sendStates(from, fromAddr, [...want], []);
    if (entries.length > 0 || want.length > 0) {
      this.events.push({ kind: "anti-entropy-repaired", peer: from, keysSent: want.length, keysReceived: entries.length });
    }
  }

  /** States of `keys` in messages of at most antiEntropyChunkBytesMax each; `want` rides on the first. */
  private sendStates(to: NodeId, addr: string, keys: readonly string[], want: string[]): void {
    const states = keys.length > 0 ? this.store.states(keys) : [];
    let chunk: Array<[string, Uint8Array]> = [];
    let bytes = 0;
    let first = true;
    let total = 0;
    for (const [k, s] of states) {
      total += s.length + k.length;
      if (total > antiEntropyReplyChunksMax * this.config.antiEntropyChunkBytesMax && !(first && chunk.length === 0)) break;
      if (chunk.length > 0 && bytes + s.length + k.length > this.config.antiEntropyChunkBytesMax) {
        this.outbox.send(to, addr, { kind: "ae-states", entries: chunk, want: first ? want : [] });
        first = false;
        chunk = [];
        bytes = 0;
      }
      chunk.push([k, s]);
      bytes += s.length + k.length;
    }
    if (chunk.length > 0 || (first && want.length > 0)) this.outbox.send(to, addr, { kind: "ae-states", entries: chunk, want: first ? want : [] });
  }
}
