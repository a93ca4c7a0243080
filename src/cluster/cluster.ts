// The cluster layer's single entry point: membership, delta push and anti-entropy behind tick/step in, outbound/events out.

import { AntiEntropy } from "./antientropy.ts";
import { defaultLanConfig, validateClusterConfig, type ClusterConfig } from "./config.ts";
import { DeltaPush } from "./deltas.ts";
import { HashTree } from "./hashtree.ts";
import { Membership, type MemberRemoval } from "./membership.ts";
import { Outbox } from "./outbox.ts";
import type { ReplicaStore } from "./store.ts";
import { asNodeId, type ClusterEvent, type Env, type Incarnation, type MemberStatus, type MemberView, type NodeId, type Outbound } from "./types.ts";
import { decodeEnvelope, deltaBytesMax, WireError, type AeStamp, type Envelope, type StrayAnswer } from "./wire.ts";
import { TombstoneCollector, type GcDurableState, type GcOptions } from "./gc.ts";
import { tsClocks } from "../accel/clocks-ts.ts";
import { Placement, partitionOf, partitionOfUtf8 } from "./placement.ts";
import { envelopeKeyBytes } from "../codec/envelope.ts";
import { planHandOff, type HandOffPlan } from "./handoff.ts";

export interface ClusterOptions {
  id: NodeId;
  /** The peer address others reach this node at ("host:port"). */
  addr: string;
  /** Peer addresses contacted to join (push-pull) while no other member is alive. */
  seeds?: readonly string[];
  config?: Partial<ClusterConfig>;
  env: Env;
  store: ReplicaStore;
  /**
   * Secret key of the hash tree's key table (keys are chosen by clients): random per process in
   * the node. Default [0, 0] (tests, simulator: nothing adversarial). Trees still compare
   * equal across nodes: the seed only places keys in this node's table.
   */
  hashSeed?: readonly [number, number];
  /**
   * Tombstone collection (src/cluster/gc.ts): this replica's life, whether its data is of
   * doubtful age, its stored collection state and where to store it, and the clock-compare
   * primitive. Default: the id as life, nothing stored, the TS clocks.
   */
  gc?: Partial<Omit<GcOptions, "self" | "seeds">>;
}

/**
 * Where a request for a key goes: this node (it owns the key, or every member owns every key),
 * another owner (reachable as far as this node knows), or nowhere (every owner is dead).
 */
export type Route =
  | { kind: "local" }
  | { kind: "forward"; to: NodeId; addr: string }
  | { kind: "unavailable"; owners: readonly NodeId[] }
  /** Partitioned, and this node has not heard the cluster's member list yet: it cannot place keys. */
  | { kind: "joining" };

const localRoute: Route = { kind: "local" };
/**
 * How long a replaced placement's owners keep being compared with the current ones by
 * anti-entropy (Cluster.sharedLeaves): the time a membership change leaves for its hand-off.
 * At anti-entropy's default budget (1 MiB of states per second per node) 30 minutes move ~1.8
 * GB into a node; a partition not filled by then is filled only from its current owners.
 */
export const formerOwnersCompareMs = 30 * 60_000;
/**
 * How long a graceful leave waits, after its announcement, for one peer to be seen holding it
 * (Membership.leaveHeardBy), offering it by push-pull every gossip interval meanwhile. Beyond,
 * the node leaves unconfirmed: nobody may have heard, and the cluster then sees a crash (the
 * operator's remedy: `imdb admin member remove` once it is seen dead; docs/operations.md).
 */
export const leaveAnnounceMs = 15_000;
/** Replaced placements kept for that at most (older ones are dropped first). */
export const formerPlacementsMax = 8;
const joiningRoute: Route = { kind: "joining" };
/** How often stray keys are pushed to their owners (Cluster.pushStrays), and how much at most each time. */
export const strayPushIntervalMs = 1_000;
export const strayPushBytesMax = 1024 * 1024;
/** How often a former owner asks an owner again whether it keeps its strays (no answer yet, or no). */
export const strayKeepAskMs = 5_000;
/**
 * How long an owner's yes counts: evictStrays drops only on a yes this recent (asked again
 * otherwise), so that an owner that started leaving or lost data since is asked again first
 * (a yes left unused while a pass's key budget ran out was acted on after the owner's hand-off
 * gave the keys back: a review's test lost 7,514 of 60,000).
 */
export const strayKeepFreshMs = 2_000;
/** Keys evictStrays drops per pass at most (whole partitions: the last one may take it past). */
export const evictKeysPerPass = 16_384;
/** Stray keys whose states are read at once. */
const strayReadKeys = 256;

/** Index of the first of the sorted `xs` greater than x. */
/** What an owner did with this node's stray push of a partition (Cluster.strayPushed). */
interface StrayServed {
  hash: string | null;
  keep: "asking" | "yes" | "no";
  token: number;
  askedAtMs: number;
  /** When the last yes came (a yes counts for strayKeepFreshMs). */
  answeredAtMs: number;
  /** The push, as the keep ask names it: this process's stream epoch and the push's seqs. */
  epoch: number;
  firstSeq: number;
  lastSeq: number;
}

function upperBound(xs: readonly string[], x: string): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const noDurableGc: GcDurableState = { generation: 0, ownGeneration: 0, departed: [], members: [], lives: [] };

/** Which member lists each partition in a Scan (Cluster.scanListing). */
export interface ScanListing {
  /** The placement's members, sorted by id: a scan's segments, in order. */
  members: readonly NodeId[];
  partitions: number;
  /** Per partition, the index in members of the member that lists it. */
  listerOf: Int32Array;
  /** 5 bits of a hash of members and listerOf: which listing a scan's cursor was made under. */
  check: number;
}

/**
 * The scan listing of `placement` while the `former` placements' hand-off windows are open:
 * each partition listed by its first owner that owned it in every former placement, else by
 * its first owner; owners `down` (dead, or not in this node's view) are passed over while
 * another owner is up (see Cluster.scanListing).
 */
export function buildScanListing(placement: Placement, former: readonly Placement[], down: (id: NodeId) => boolean = () => false): ScanListing {
  const index = new Map(placement.members.map((m, i) => [m as string, i]));
  const listerOf = new Int32Array(placement.partitions);
  let h = 0x811c9dc5;
  for (const m of placement.members) for (let i = 0; i < m.length; i++) h = Math.imul(h ^ m.charCodeAt(i), 0x01000193) >>> 0;
  for (let p = 0; p < placement.partitions; p++) {
    const owners = placement.owners(p);
    const isStable = (o: NodeId): boolean => former.every((f) => f.owns(o, p));
    const up = owners.filter((o) => !down(o));
    const stable = up.find(isStable) ?? up[0] ?? owners.find(isStable) ?? owners[0]!;
    listerOf[p] = index.get(stable)!;
    h = Math.imul(h ^ listerOf[p]!, 0x01000193) >>> 0;
  }
  return { members: placement.members, partitions: placement.partitions, listerOf, check: (h ^ (h >>> 5) ^ (h >>> 10) ^ (h >>> 15) ^ (h >>> 20) ^ (h >>> 25) ^ (h >>> 30)) & 31 };
}

export interface ClusterStatus {
  id: NodeId;
  addr: string;
  incarnation: Incarnation;
  alive: number;
  suspect: number;
  dead: number;
  left: number;
  /** Lifeguard local health score, 0 = healthy. */
  healthScore: number;
  /** Keys in the anti-entropy hash tree. */
  keys: number;
  /** Ping-reqs dropped because relayedProbesMax relays were in flight. */
  relayedProbesDropped: number;
}

/**
 * One node's cluster protocol. Feed it `tick()` (often enough: see nextDeadlineMs) and
 * `step(from, payload)` for every payload received, with `from` the id the transport
 * authenticated; then drain `drainOutbound()` into the network and `drainEvents()` into
 * logs and metrics. Local writes enter with `broadcastDelta` and `keyChanged`.
 */
export class Cluster {
  readonly config: ClusterConfig;
  private readonly env: Env;
  private readonly outbox = new Outbox();
  private readonly events: ClusterEvent[] = [];
  private readonly membership: Membership;
  private readonly deltas: DeltaPush;
  private readonly ae: AntiEntropy;
  private readonly tree: HashTree;
  private readonly gc: TombstoneCollector;
  private readonly addr: string;
  private readonly store: ReplicaStore;
  private antiEntropyBytesReceived = 0;
  private antiEntropyKeysRepaired = 0;
  /** The placement for the membership version it was built at (null until first asked). */
  private placed: { membershipVersion: number; gcVersion: number; members: string; placement: Placement; synced: boolean } | null = null;

  constructor(opts: ClusterOptions) {
    this.config = { ...defaultLanConfig(), ...opts.config };
    validateClusterConfig(this.config);
    this.env = opts.env;
    this.addr = opts.addr;
    this.store = opts.store;
    // Partition-major leaves in a partitioned cluster, so owners compare only what they share.
    this.tree = new HashTree(this.config.hashTreeDepth, opts.hashSeed, this.config.replicationFactor > 0 ? this.config.partitions : 0);
    const epoch = Math.floor(this.env.random() * 0x1_0000_0000) >>> 0;
    this.deltas = new DeltaPush(this.config, this.env, opts.store, this.outbox, this.events, epoch, (p) => this.ae.markForRepair(p));
    const g = opts.gc ?? {};
    this.gc = new TombstoneCollector(this.config, this.env, opts.store, this.outbox, this.events, this.deltas, {
      self: opts.id,
      life: g.life ?? opts.id,
      quarantined: g.quarantined ?? false,
      durable: g.durable ?? noDurableGc,
      persist: g.persist ?? (() => {}),
      clocks: g.clocks ?? tsClocks,
      seeds: (opts.seeds ?? []).filter((s) => s !== opts.addr).length,
      ...(g.rememberedMax !== undefined ? { rememberedMax: g.rememberedMax } : {}),
    }, (key) => {
      // The grace period is over: the tree lets go of the record's digest (unless the key is back).
      if (opts.store.digest(key) === undefined) this.tree.set(key, undefined);
    });
    this.ae = new AntiEntropy(this.config, this.env, this.tree, opts.store, this.outbox, this.events, this.gc, (peer) => this.sharedLeaves(peer), (node) => this.ownedLeaves(node ?? this.membership.selfId()));
    this.membership = new Membership(this.config, this.env, { id: opts.id, addr: opts.addr }, opts.seeds ?? [], this.outbox, this.events, {
      peerRevived: (id) => {
        this.deltas.peerGone(id);
        this.ae.markForRepair(id);
        this.gc.memberRevived(id);
        this.strayForget(id);
      },
      peerGone: (id) => {
        this.deltas.peerGone(id);
        this.ae.forget(id);
        this.strayForget(id);
        // Left, reaped or removed, not merely dead: its life departed. Collection goes on
        // without it from now on, so should that life come back with its data, it must start
        // over empty (gc.ts); a dead member still holds collection back until it is reaped.
        const m = this.membership.get(id);
        if (m === undefined || m.status === "left") this.gc.memberGone(id);
      },
    });
  }

  // ------------------------------------------------------------ inputs

  /** Runs every timer due at env.nowMs(). */
  tick(): void {
    this.membership.tick();
    const peers = this.membership.livePeers();
    this.deltas.tick(peers);
    if (this.gc.due()) {
      // The members as the collector reads them, in id order (as view() gives them), without
      // view()'s copies: this runs at every change of any member.
      const members: { id: NodeId; addr: string; status: MemberStatus }[] = [];
      this.membership.forEachMember((m) => members.push({ id: m.id, addr: m.addr, status: m.status }));
      members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      this.gc.tick(members);
    }
    // No syncTree here: the tree is brought up to date only where it is read (an exchange
    // starting, an anti-entropy message, status, rootHash), so a hot key costs one digest
    // per anti-entropy round, not one per tick. A quarantined life exchanges no data.
    if (!this.gc.isQuarantined) {
      this.ae.tick(peers);
      this.pushStrays(peers);
    }
  }

  /**
   * Per partition, the owners that acknowledged this node's stray keys of it (see pushStrays),
   * each with the partition's hash (HashTree.partitionHashKey) when its push began (null when the
   * push passed a key over, left to anti-entropy: such a partition is not evicted) and what the
   * owner answered when asked whether it keeps them (evictStrays): `asking` until it answers
   * (asked again every strayKeepAskMs), `yes` or `no` (asked again later too: views converge).
   */
  private readonly strayPushed = new Map<number, Map<NodeId, StrayServed>>();
  /** Tokens of keep asks (stray-keep), so that a late answer to an earlier ask is not taken for this one. */
  private strayKeepToken = 0;
  /**
   * Partitions evicted down to what this node may not drop (deleted keys' records: the
   * collector's to drop), with the partition's hash then: not evicted again until it changes.
   */
  private readonly straySettled = new Map<number, string>();
  /**
   * Per peer, the delta stream epoch (one per process of the peer) some of whose deltas this node
   * refused to merge: it keeps none of that stream's strays (a restarted peer pushes anew).
   */
  private readonly refusedFrom = new Map<NodeId, number>();
  /** Set from a leave's first hand-off to its end (or until it is called off): this node keeps no stray. */
  private leaving = false;
  /**
   * Pushes under way, by `${partition} ${owner}`: the last key queued (keys go in sorted order,
   * a slice at a time), the stream's seq and cut count after it, whether it was the last, and
   * the partition's hash when the push began (null once a key was passed over).
   */
  private readonly strayProgress = new Map<string, { p: number; to: NodeId; lastKey: string; firstSeq: number; seq: number; cuts: number; complete: boolean; hash: string | null }>();
  /** Keys and partitions dropped by eviction (evictStrays), and evictions that renewed nothing. */
  private readonly evicted = { keys: 0, partitions: 0 };
  private nextStrayAtMs = 0;
  /** Where the next pass over the partitions starts (a pass stops at its byte budget). */
  private strayCursor = 0;

  /**
   * Keys this node holds of partitions it does not own now (a former owner's copy after a
   * membership change, or a forwarded write it applied while views differed) go to the
   * partition's current owners, queued as deltas on the acknowledged, resent delta stream, in
   * key order, a slice at a time, at most strayPushBytesMax per strayPushIntervalMs. A slice is
   * queued for an owner only while its backlog stays under half its bounds (a push never
   * overflows it), the next one once the stream acknowledged it with no cut in between (an
   * overflow or the owner's death drops what was queued: then its push starts over), and the
   * owner counts as served once the last one is acknowledged. Anti-entropy alone could not be
   * trusted with it: it compares a partition between two nodes only when both see it as shared,
   * and a former owner's view of what it owned comes from placements it saw (a node that joined
   * or restarted since has not seen them), so the new owners of a partition that moved could stay
   * empty while every copy was on former owners (test/sim/partitioned-scale.test.ts seed 1024).
   * Left to anti-entropy: a state above one delta's bound (it travels there in pieces); keys
   * that arrive after an owner was served wait for the next change of that owner.
   */
  private pushStrays(peers: readonly { id: NodeId; addr: string; status: string }[]): void {
    const asDeltas = this.store.deltasOfStates;
    if (this.config.replicationFactor === 0 || !this.membership.synced || asDeltas === undefined) return;
    const now = this.env.nowMs();
    if (now < this.nextStrayAtMs) return;
    this.nextStrayAtMs = now + strayPushIntervalMs;
    const served = (p: number, to: NodeId, hash: string | null, firstSeq: number, lastSeq: number): void => {
      let set = this.strayPushed.get(p);
      if (set === undefined) this.strayPushed.set(p, (set = new Map()));
      set.set(to, { hash, keep: "asking", token: 0, askedAtMs: Number.NEGATIVE_INFINITY, answeredAtMs: Number.NEGATIVE_INFINITY, epoch: this.deltas.streamEpoch, firstSeq, lastSeq });
    };
    // What the streams acknowledged: a finished push serves its owner; a cut one starts over.
    for (const [k, x] of this.strayProgress) {
      const s = this.deltas.streamOf(x.to);
      if (s.cuts !== x.cuts) this.strayProgress.delete(k);
      else if (s.acked >= x.seq && x.complete) {
        this.strayProgress.delete(k);
        served(x.p, x.to, x.hash, x.firstSeq, x.seq);
      }
    }
    const placement = this.placement();
    if (placement === null) return;
    const alive = new Map<NodeId, { id: NodeId; addr: string }>();
    for (const m of peers) if (m.status === "alive") alive.set(m.id, { id: m.id, addr: m.addr });
    if (alive.size === 0) return;
    this.syncTree();
    const self = this.membership.selfId();
    const entriesCap = Math.floor(this.config.deltaBacklogEntriesMax / 2);
    const bytesCap = Math.floor(this.config.deltaBacklogBytesMax / 2);
    let budget = strayPushBytesMax;
    const n = placement.partitions;
    const mine = placement.ownedMask(self);
    for (let step = 0; step < n && budget > 0; step++) {
      const p = (this.strayCursor + step) % n;
      if (mine[p] === 1) {
        // Owned again: should it stop owning it later, what it holds then goes out afresh.
        this.strayPushed.delete(p);
        this.straySettled.delete(p);
        continue;
      }
      if (this.tree.partitionKeyCount(p) === 0) continue; // nothing of it here (most partitions: O(1))
      const done = this.strayPushed.get(p);
      // An owner not served, with no slice of this partition waiting for its acknowledgement.
      const ready = placement.owners(p).filter((o) => {
        if ((done !== undefined && done.has(o)) || !alive.has(o)) return false;
        const x = this.strayProgress.get(`${p} ${o}`);
        return x === undefined || (!x.complete && this.deltas.streamOf(o).acked >= x.seq);
      });
      if (ready.length === 0) continue;
      const [start, end] = this.tree.partitionLeaves(p);
      const keys: string[] = [];
      for (let leaf = start; leaf < end; leaf++) for (const e of this.tree.leafEntries(leaf)) keys.push(e.key);
      keys.sort();
      this.strayCursor = (p + 1) % n;
      for (const t of ready) {
        const x = this.strayProgress.get(`${p} ${t}`);
        const from = x === undefined ? 0 : upperBound(keys, x.lastKey);
        let hash = x === undefined ? this.tree.partitionHashKey(p) : x.hash;
        // The stream's first seq of this push (the keep ask names the push by its seqs).
        const firstSeq = x === undefined ? this.deltas.streamOf(t).queued + 1 : x.firstSeq;
        const b = this.deltas.backlog(t);
        let entriesRoom = entriesCap - b.entries;
        let bytesRoom = bytesCap - b.bytes;
        const to = [alive.get(t)!];
        let i = from;
        let last: string | null = null;
        // A slice: keys in order while the owner's backlog has room (states read a few at a time).
        while (i < keys.length && entriesRoom > 0 && bytesRoom > 0 && budget > 0) {
          const chunk = keys.slice(i, i + strayReadKeys);
          const states = this.store.states(chunk);
          const ds = asDeltas.call(this.store, states);
          const byKey = new Map(states.map(([k], j) => [k, ds[j]!]));
          let stop = false;
          for (const k of chunk) {
            const d = byKey.get(k);
            // Gone since listed, or above one delta's bound (left to anti-entropy): passed over.
            if (d !== undefined && d.length > deltaBytesMax) hash = null;
            if (d !== undefined && d.length <= deltaBytesMax) {
              if (d.length > bytesRoom || entriesRoom <= 0) {
                stop = true;
                break;
              }
              this.deltas.enqueue(d, to);
              entriesRoom--;
              bytesRoom -= d.length;
              budget -= d.length;
            }
            last = k;
            i++;
          }
          if (stop) break;
        }
        if (last === null) continue; // no room for even one: later
        const s = this.deltas.streamOf(t);
        this.strayProgress.set(`${p} ${t}`, { p, to: t, lastKey: last, firstSeq, seq: s.queued, cuts: s.cuts, complete: i >= keys.length, hash });
      }
    }
    this.evictStrays(placement, mine, alive);
  }

  /**
   * Drops the keys of partitions this node does not own (`mine` 0) once every owner in the
   * current placement acknowledged their stray push (durably: a delta is acknowledged after its
   * WAL append), the partition did not change here since that push began, and each owner, asked
   * afterwards (`stray-keep`), answered that it keeps them (keepsStraysOf: it owns the partition
   * in its own placement, is not leaving, takes this node's data and refused none of it). An
   * acknowledgement alone says a delta arrived, not that it is kept: a leaving node, or one whose
   * placement gives the partition back to this node, acknowledges too (both lost writes). A
   * partition that changed since its push is pushed again first; one with a key the push passed
   * over (above one delta's bound), or an owner that is not alive (dead, not yet reaped: it is
   * in the placement but cannot answer), is kept. The store drops the keys with no delta and no
   * record, and not deleted keys' records, which only the collector may drop (it waits for
   * every stream to this node to deliver what is queued, so that an older write cannot arrive
   * after the record: gc.ts); a new actor first if this one wrote any (ReplicaStore.evict). Not
   * logged in the WAL: a restart may replay dropped keys back; they are strays again, pushed
   * (the owners change nothing) and dropped again. At most evictKeysPerPass keys per pass.
   */
  private evictStrays(placement: Placement, mine: Uint8Array, alive: ReadonlyMap<NodeId, { id: NodeId; addr: string }>): void {
    const evict = this.store.evict;
    if (evict === undefined) return;
    const now = this.env.nowMs();
    let budget = evictKeysPerPass;
    for (const [p, served] of this.strayPushed) {
      if (budget <= 0) return;
      if (mine[p] === 1) continue;
      if (this.tree.partitionKeyCount(p) === 0) {
        this.strayPushed.delete(p);
        this.straySettled.delete(p);
        continue;
      }
      const hash = this.tree.partitionHashKey(p);
      if (this.straySettled.get(p) === hash) continue;
      const ask = (o: NodeId, h: StrayServed): void => {
        const to = alive.get(o);
        if (to === undefined) return;
        h.keep = "asking";
        h.token = (this.strayKeepToken = (this.strayKeepToken + 1) >>> 0);
        h.askedAtMs = now;
        this.outbox.send(to.id, to.addr, { kind: "stray-keep", partition: p, token: h.token, epoch: h.epoch, firstSeq: h.firstSeq, lastSeq: h.lastSeq });
      };
      const owners = placement.owners(p);
      let allYes = true;
      let allFresh = true;
      for (const o of owners) {
        const h = served.get(o);
        if (h === undefined || h.hash === null) {
          allYes = false;
          continue;
        }
        if (h.hash !== hash) {
          // Changed here since that push began: it goes to that owner again.
          served.delete(o);
          allYes = false;
          continue;
        }
        if (h.keep !== "yes") {
          allYes = false;
          if (now - h.askedAtMs >= strayKeepAskMs) ask(o, h);
          // A yes counts while it is fresh: an owner may start leaving, or lose what it held, after it.
        } else if (now - h.answeredAtMs > strayKeepFreshMs) allFresh = false;
      }
      if (!allYes) continue;
      if (!allFresh) {
        // Every owner said yes, some too long ago: all are asked again at once, so that their
        // answers are fresh together (asked one by one, one was always stale: seed 1682742).
        for (const o of owners) ask(o, served.get(o)!);
        continue;
      }
      const [start, end] = this.tree.partitionLeaves(p);
      const entries: Array<{ key: string; digest: bigint }> = [];
      for (let leaf = start; leaf < end; leaf++) for (const e of this.tree.leafEntries(leaf)) entries.push(e);
      budget -= entries.length;
      const dropped = evict.call(this.store, entries);
      if (dropped === null) return; // the store cannot now (ClusterHost.evict): later
      // The engine reports the dropped keys gone (lazily under deferChanges): the tree follows now.
      this.syncTree();
      // What is left (records, remembered collected keys) waits for its own change.
      const left = this.tree.partitionKeyCount(p) === 0 ? null : this.tree.partitionHashKey(p);
      if (left === null) {
        this.strayPushed.delete(p);
        this.straySettled.delete(p);
      } else {
        this.straySettled.set(p, left);
        for (const h of served.values()) if (h.hash !== null) h.hash = left;
      }
      if (dropped === 0) continue;
      this.evicted.keys += dropped;
      this.evicted.partitions++;
      this.events.push({ kind: "keys-evicted", partition: p, keys: dropped });
    }
  }

  /**
   * Does this node keep the strays `from` pushed of partition `p` (see evictStrays)? Only if it
   * owns p in its own placement, has the cluster's member list, is not leaving or quarantined,
   * takes `from`'s data, and refused none of it since `from` was last seen coming back.
   */
  private keepsStraysOf(from: NodeId, ask: { partition: number; epoch: number; firstSeq: number; lastSeq: number }): StrayAnswer {
    const p = ask.partition;
    const placement = this.placement();
    if (placement === null || !this.membership.synced || this.leaving || this.gc.isQuarantined) return "no";
    if (!Number.isSafeInteger(p) || p < 0 || p >= placement.partitions) return "no";
    if (!placement.owns(this.membership.selfId(), p) || !this.gc.accepts(from) || this.refusedFrom.get(from) === ask.epoch) return "no";
    // Merged by this very process: an acknowledgement from an earlier one (a restart since, under
    // interval or none durability) may stand for deltas it lost. Then the push is made again.
    return this.deltas.receivedWhole(from, ask.epoch, ask.firstSeq, ask.lastSeq) ? "yes" : "again";
  }

  /** The answer of `from` to a keep ask of this node (stray-keep). */
  private onStrayKept(from: NodeId, msg: { partition: number; token: number; answer: StrayAnswer }): void {
    const served = this.strayPushed.get(msg.partition);
    const h = served?.get(from);
    if (h === undefined || h.keep !== "asking" || h.token !== msg.token) return;
    if (msg.answer === "again") {
      served!.delete(from); // pushed to it again from the start
      return;
    }
    h.keep = msg.answer;
    h.answeredAtMs = this.env.nowMs();
  }

  /** A leave hands off (handOffPlan) or is announced: from now on this node keeps no stray (see keepsStraysOf). */
  private beginLeave(): void {
    this.leaving = true;
  }

  /** The leave failed or was refused: the node goes on as a member and keeps strays again. */
  leaveCalledOff(): void {
    this.leaving = false;
  }

  /** Keys and partitions this node dropped because their owners hold them (evictStrays). */
  evictions(): { keys: number; partitions: number } {
    return { ...this.evicted };
  }

  /** `id` died, came back or left: stray keys are pushed to it again where it owns their partition. */
  private strayForget(id: NodeId): void {
    for (const set of this.strayPushed.values()) set.delete(id);
    for (const [k, x] of this.strayProgress) if (x.to === id) this.strayProgress.delete(k);
  }

  /**
   * The caller could not tick or step for `ms` beyond its usual tick interval (a blocked event
   * loop, a GC pause): probes in flight get that time back before the next tick judges them.
   * Call it before tick(). The simulator never stalls, so it never calls it.
   */
  stalled(ms: number): void {
    this.membership.stalled(ms);
  }

  /**
   * Handles one payload from `from`. A payload that does not decode changes nothing, yields a
   * message-refused event, and its reason is returned (the transport answers INVALID_ARGUMENT);
   * null when it was accepted.
   */
  step(from: NodeId, payload: Uint8Array): string | null {
    let env: Envelope;
    try {
      env = decodeEnvelope(payload);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      this.events.push({ kind: "message-refused", from, reason: e.message });
      return e.message;
    }
    if (env.retired !== undefined) {
      this.events.push({ kind: "message-refused", from, reason: `${env.retired} anti-entropy message(s) with 64-bit hashes ignored: the sender runs an older version` });
    }
    if (env.messages.some((m) => m.kind === "ae-tree" || m.kind === "ae-leaves" || m.kind === "ae-states" || m.kind === "ae-piece")) {
      this.antiEntropyBytesReceived += payload.length;
    }
    for (const m of env.messages) {
      switch (m.kind) {
        case "delta-batch": {
          // Replica data only from a member whose life shook hands (gc.ts): unacknowledged,
          // the batch is sent again once it has.
          if (!this.gc.accepts(from)) break;
          // A merge refused (acknowledged all the same: the stream must go on) means this node
          // may lack what `from` holds: it keeps none of its strays (keepsStraysOf).
          const refused = this.store.refusals?.() ?? 0;
          if (!this.guardStore(from, () => this.deltas.handle(from, env.fromAddr, m)) || (this.store.refusals?.() ?? 0) !== refused) this.refusedFrom.set(from, m.epoch);
          break;
        }
        case "stray-keep":
          this.outbox.send(from, env.fromAddr, { kind: "stray-kept", partition: m.partition, token: m.token, answer: this.keepsStraysOf(from, m) });
          break;
        case "stray-kept":
          this.onStrayKept(from, m);
          break;
        case "delta-ack":
          this.guardStore(from, () => this.deltas.handle(from, env.fromAddr, m));
          break;
        case "ae-tree":
        case "ae-leaves":
        case "ae-states":
        case "ae-piece":
          if (!this.gc.accepts(from)) break;
          this.syncTree();
          this.guardStore(from, () => this.ae.handle(from, env.fromAddr, m));
          break;
        case "gc-probe":
        case "gc-confirm":
          if (!this.gc.accepts(from)) break;
          this.guardStore(from, () => this.gc.handle(from, env.fromAddr, m));
          break;
        case "gc-hello":
          this.gc.handle(from, env.fromAddr, m);
          break;
        default:
          this.membership.handle(from, env.fromAddr, m);
      }
    }
    return null;
  }

  /**
   * The store port throws only for bytes it cannot decode (a peer's bad delta or state):
   * that refuses the message instead of stopping the node.
   */
  /** Runs a store step for a message from `from`; false (and an event) if the store refused it. */
  private guardStore(from: NodeId, f: () => void): boolean {
    try {
      f();
      return true;
    } catch (e) {
      this.events.push({ kind: "message-refused", from, reason: `store: ${e instanceof Error ? e.message : String(e)}` });
      return false;
    }
  }

  /**
   * A locally produced delta (engine-encoded) to push to every live peer that holds its key: all
   * of them, or in a partitioned cluster the key's other owners. A delta for a key this node does
   * not own (a forwarded write applied while its view of the owners differed from the sender's)
   * goes to every live peer, so that the owners in anyone's view hear of it.
   */
  broadcastDelta(delta: Uint8Array): void {
    const peers = this.membership.livePeers();
    const placement = this.placement();
    if (placement === null || peers.length === 0) {
      this.deltas.enqueue(delta, peers);
      return;
    }
    const keyBytes = envelopeKeyBytes(delta);
    if (keyBytes === null || !this.membership.synced) {
      this.deltas.enqueue(delta, peers);
      return;
    }
    const p = partitionOfUtf8(keyBytes, placement.partitions);
    if (!placement.owns(this.membership.selfId(), p)) {
      this.deltas.enqueue(delta, peers);
      return;
    }
    this.deltas.enqueue(delta, peers.filter((m) => placement.owns(m.id, p)));
  }

  private noLeaves: Uint8Array | null = null;
  /** Per peer: the placements its leaf mask was made for, and the mask (see sharedLeaves). */
  private readonly leafMasks = new Map<NodeId, { placement: Placement; historyVersion: number; mask: Uint8Array }>();
  /**
   * Placements this node used before the current one, each compared until untilMs (see
   * sharedLeaves), newest last; historyVersion is raised whenever the list changes.
   */
  private readonly formerPlacements: Array<{ placement: Placement; untilMs: number }> = [];
  private historyVersion = 0;

  /** Forgets the former placements whose hand-off window has passed. */
  private dropExpiredPlacements(): void {
    const now = this.env.nowMs();
    while (this.formerPlacements.length > 0 && this.formerPlacements[0]!.untilMs <= now) {
      this.formerPlacements.shift();
      this.historyVersion++;
    }
  }

  /**
   * The hash-tree leaves anti-entropy compares with `peer`: null (all) unless the cluster is
   * partitioned; then those of the partitions both this node and the peer own, now or in a
   * placement this node used within formerOwnersCompareMs. A membership change can move every
   * replica of a partition at once (with RF 2, a join sometimes does: placement.ts bounds loads,
   * so one move can push another): its new owners then share it with no current owner holding
   * its data, and only its former owners can fill them. Comparing former and current owners for
   * a while is that hand-off: the data flows by anti-entropy, at its rate bounds, one way (a
   * former owner pushes what it holds and wants nothing back, AntiEntropy `owned`; it drops its
   * copy only once the owners acknowledged its stray push: evictStrays).
   */
  private sharedLeaves(peer: NodeId): Uint8Array | null {
    const placement = this.placement();
    if (placement === null) return null;
    // Until this node has the cluster's member list it shares nothing it could be sure of.
    if (!this.membership.synced) return this.noLeaves ??= new Uint8Array(this.tree.leafCount);
    this.dropExpiredPlacements();
    // A mask depends on the placements only: a member turning suspect and back rebuilds none.
    const cached = this.leafMasks.get(peer);
    if (cached !== undefined && cached.placement === placement && cached.historyVersion === this.historyVersion) return cached.mask;
    if (cached !== undefined || this.leafMasks.size >= this.config.membersMax) this.leafMasks.clear();
    const mask = new Uint8Array(this.tree.leafCount);
    const self = this.membership.selfId();
    const all = [placement, ...this.formerPlacements.map((f) => f.placement)];
    // Owned by each side in any of those placements (a byte per partition).
    const either = (id: NodeId): Uint8Array => {
      if (all.length === 1) return placement.ownedMask(id);
      const out = new Uint8Array(placement.partitions);
      for (const pl of all) {
        const m = pl.ownedMask(id);
        for (let p = 0; p < out.length; p++) out[p] = (out[p] as number) | (m[p] as number);
      }
      return out;
    };
    const mine = either(self);
    const theirs = either(peer);
    for (let p = 0; p < placement.partitions; p++) {
      if (mine[p] === 0 || theirs[p] === 0) continue;
      const [start, end] = this.tree.partitionLeaves(p);
      mask.fill(1, start, end);
    }
    this.leafMasks.set(peer, { placement, historyVersion: this.historyVersion, mask });
    return mask;
  }

  /** Per node: the leaves of the partitions it owns in the placement named by key (see ownedLeaves). */
  private readonly ownedMasks = new Map<NodeId, { placement: Placement; mask: Uint8Array }>();

  /** The leaves of the partitions `node` owns in the current placement; null (all) unless partitioned. */
  private ownedLeaves(node: NodeId): Uint8Array | null {
    const placement = this.placement();
    if (placement === null) return null;
    const cached = this.ownedMasks.get(node);
    if (cached !== undefined && cached.placement === placement) return cached.mask;
    if (cached !== undefined || this.ownedMasks.size >= this.config.membersMax) this.ownedMasks.clear();
    const mask = new Uint8Array(this.tree.leafCount);
    const owned = placement.ownedMask(node);
    for (let p = 0; p < placement.partitions; p++) if (owned[p] === 1) mask.fill(1, ...this.tree.partitionLeaves(p));
    this.ownedMasks.set(node, { placement, mask });
    return mask;
  }

  /** Brings the hash tree up to date with a store that reports changes lazily. */
  private syncTree(): void {
    this.store.reportChanges?.();
  }

  /**
   * The engine reports a key's new digest (undefined = key gone) after any change, local or merged.
   * A key collected here keeps its record's digest in the hash tree while the collector remembers
   * it (collectedGraceMs): a member that holds the same record and has not collected it yet then
   * compares equal, instead of every anti-entropy exchange with it shipping every such record
   * here (and wanting them from it) only for this node to drop them as collected (gc.ts skipsKey),
   * which after a mass delete meant shipping every key collected here, exchange after exchange.
   */
  keyChanged(key: string, digest: bigint | undefined): void {
    this.changedDuringHandOff?.add(key);
    if (digest === undefined && this.gc.remembers(key)) return;
    this.tree.set(key, digest);
  }

  /** Keys changed since handOffPlan("all") while a leave hands off (its second pass sends them). */
  private changedDuringHandOff: Set<string> | null = null;

  /**
   * The driver dropped state-carrying messages to `peer` (over its held bounds): what they
   * carried reaches the peer through the next anti-entropy exchange, which goes to it first.
   */
  repairPeer(peer: NodeId): void {
    this.ae.markForRepair(peer);
  }

  /** Removes a dead (or left) member now, declaring it left to the others; see Membership.remove. */
  removeMember(id: NodeId): MemberRemoval {
    return this.membership.remove(id);
  }

  /**
   * Starts a graceful leave; keep ticking until a peer holds it (leaveHeardBy) and
   * pendingBroadcasts() is 0, or leaveAnnounceMs passed (ClusterDriver.leave).
   */
  leave(): void {
    this.beginLeave();
    this.membership.leave();
  }

  // ------------------------------------------------------------ outputs

  drainOutbound(): Outbound[] {
    return this.outbox.drain(this.addr, () => this.membership.piggyback());
  }

  drainEvents(): ClusterEvent[] {
    // The sub-machines hold this array: hand out a copy and empty it in place.
    const copy = this.events.slice();
    this.events.length = 0;
    for (const e of copy) if (e.kind === "anti-entropy-repaired") this.antiEntropyKeysRepaired += e.keysSent + e.keysReceived;
    return copy;
  }

  /** The earliest time tick() has work; ticking more often is harmless. */
  nextDeadlineMs(): number {
    return Math.min(this.membership.nextDeadlineMs(), this.deltas.nextDeadlineMs(), this.ae.nextDeadlineMs(), this.gc.nextDeadlineMs());
  }

  hasOutbound(): boolean {
    return !this.outbox.isEmpty();
  }

  // ------------------------------------------------------------ placement

  /**
   * The placement of partitions over the current membership, or null when every member holds
   * every key (replicationFactor 0). Its members: every member not left, so alive, suspect and
   * dead-but-not-reaped ones (a dead member keeps its partitions until it is reaped or removed:
   * a restart must not move data twice). Rebuilt only when that set changed (~25 ms at 10
   * members, placement.ts), checked against the membership's version.
   */
  placement(): Placement | null {
    if (this.config.replicationFactor === 0) return null;
    // Asked per request (route): two number comparisons when nothing changed.
    const membershipVersion = this.membership.version;
    const gcVersion = this.gc.membersVersion;
    if (this.placed !== null && this.placed.membershipVersion === membershipVersion && this.placed.gcVersion === gcVersion) return this.placed.placement;
    const ids = this.placementMembers();
    const members = ids.join("\n");
    const placement = this.placed !== null && this.placed.members === members
      ? this.placed.placement
      : Placement.of(ids.length > 0 ? ids : [this.membership.selfId()], { partitions: this.config.partitions, replicationFactor: this.config.replicationFactor });
    // The placement replaced is compared for a while (sharedLeaves), if it was the cluster's
    // (made from a synced member list), not a start-up guess.
    if (this.placed !== null && this.placed.placement !== placement && this.placed.synced) {
      this.formerPlacements.push({ placement: this.placed.placement, untilMs: this.env.nowMs() + formerOwnersCompareMs });
      if (this.formerPlacements.length > formerPlacementsMax) this.formerPlacements.shift();
      this.historyVersion++;
    }
    this.placed = { membershipVersion, gcVersion, members, placement, synced: this.membership.synced };
    return placement;
  }

  /**
   * The members keys are placed over: the view's members not left, and those this replica
   * exchanged data with before a restart (gc.ts knownMembers) until they are seen departing: a
   * restarted node must not place keys over the few members it has heard from again so far.
   */
  private placementMembers(): NodeId[] {
    const set = new Set<string>();
    const left = new Set<string>();
    this.membership.forEachMember((m) => (m.status === "left" ? left : set).add(m.id));
    // Not one the view lists as left (the collector may have taken a late hello of it after its
    // departure: gc.tick lets go of it then).
    for (const id of this.gc.knownMembers) if (!left.has(id)) set.add(id);
    return [...set].sort().map(asNodeId);
  }

  /**
   * What this node must hand over before it leaves (handoff.ts): every key it holds, to the
   * alive owners of its partition in the placement without this node; refused when some key
   * would have none. Only for a partitioned cluster that has joined (otherwise every member
   * already holds every key, or this node holds nothing it may hand out).
   */
  handOffPlan(pass: "all" | "changed" = "all"): HandOffPlan {
    if (this.config.replicationFactor === 0) return { kind: "plan", targets: [], keys: 0 };
    if (!this.membership.synced) return { kind: "refused", reason: "this node has not joined the cluster yet" };
    this.syncTree();
    const self = this.membership.selfId();
    const alive = new Map<NodeId, string>();
    for (const m of this.membership.view()) if (m.id !== self && m.status === "alive" && this.gc.accepts(m.id)) alive.set(m.id, m.address);
    const tree = this.tree;
    function* all(): Generator<string> {
      for (let leaf = 0; leaf < tree.leafCount; leaf++) for (const e of tree.leafEntries(leaf)) yield e.key;
    }
    // A leave hands off in two passes (src/node/handoff.ts): everything while the node still
    // takes writes, then, writes stopped, what changed meanwhile.
    let keys: Iterable<string>;
    if (pass === "all") {
      this.beginLeave();
      // Kept if a hand-off is already collecting (a second leave at once: the node runs one).
      this.changedDuringHandOff ??= new Set();
      keys = all();
    } else {
      keys = this.changedDuringHandOff ?? all();
      this.changedDuringHandOff = null;
    }
    return planHandOff({ self, members: this.placementMembers(), partitions: this.config.partitions, replicationFactor: this.config.replicationFactor, alive, keys });
  }

  /** A leave's hand-off ended (done or called off): changes are no longer collected for it. */
  handOffEnded(): void {
    this.changedDuringHandOff = null;
  }

  /** The stamp a hand-off's states are read under (the receiver's collection gate checks it, as anti-entropy's). */
  readStamp(): AeStamp {
    return this.gc.stamp();
  }

  /**
   * Merges the states a leaving member `from` handed over (NodeService.HandOff), read at
   * `stamp`, as anti-entropy merges states: refused whole ("stale": read again) when they
   * predate a collection that relied on `from`, or ("not-accepted") while this node does not
   * take `from`'s data; a key collected here is not re-created from its old record.
   */
  mergeHandOff(from: NodeId, entries: ReadonlyArray<readonly [string, Uint8Array]>, stamp: AeStamp): { kind: "merged"; keys: number } | { kind: "not-accepted" | "stale" } {
    if (!this.gc.accepts(from)) return { kind: "not-accepted" };
    if (!this.gc.acceptsStates(from, stamp)) return { kind: "stale" };
    // `from` is leaving: whatever it said it keeps of this node's strays no longer holds.
    this.strayForget(from);
    const kept = entries.filter(([k, st]) => !this.gc.skipsKey(k, st));
    if (kept.length > 0) this.store.mergeStates(kept);
    return { kind: "merged", keys: kept.length };
  }

  /** The scan listing for the placement, former placements and members down it was made for (scanListing). */
  private listing: { placement: Placement; historyVersion: number; down: string; listing: ScanListing } | null = null;

  /**
   * Who lists which partition in a Scan (src/node/scan.ts): each partition's first owner that
   * has owned it through every placement of the hand-off window (it holds the partition's data,
   * as route() prefers it), else its first owner. Outside a window: the first owner. An owner
   * this node sees as dead (or has not heard of since its restart) lists nothing while another
   * owner of the partition is up: a dead member keeps its partitions until it is reaped, and a
   * scan that had to wait for it would fail for that long although two other replicas hold
   * every key (issue 17: with one node killed, every key stays readable). A suspect owner still
   * lists (it may only be slow; as route()). check: 5 bits of a hash of the whole assignment,
   * carried in the scan's cursor, so a scan that spans a member's death or return is told to
   * restart rather than miss or repeat its partitions.
   */
  scanListing(): ScanListing | null {
    const placement = this.placement();
    if (placement === null) return null;
    this.dropExpiredPlacements();
    const self = this.membership.selfId();
    const isDown = (id: NodeId): boolean => {
      if (id === self) return false;
      const m = this.membership.get(id);
      return m === undefined || m.status === "dead" || m.status === "left";
    };
    const down = placement.members.filter(isDown).join("\n");
    const cached = this.listing;
    if (cached !== null && cached.placement === placement && cached.historyVersion === this.historyVersion && cached.down === down) return cached.listing;
    const listing = buildScanListing(placement, this.formerPlacements.map((f) => f.placement), isDown);
    this.listing = { placement, historyVersion: this.historyVersion, down, listing };
    return listing;
  }

  /** Partitioned and without the cluster's member list yet (Membership.synced): it takes no writes. */
  get joining(): boolean {
    return this.config.replicationFactor > 0 && !this.membership.synced;
  }

  /**
   * Where a request for `key` goes. Local when this node owns it (or every member owns every
   * key); otherwise the first of its owners, in placement order, that is alive, else the first
   * suspect one (it may only be slow), else unavailable: every owner is dead. Owners in `avoid`
   * (a read's call to them just failed: src/node/forward.ts) are passed over as if dead.
   */
  route(key: string, avoid?: ReadonlySet<string>): Route {
    const placement = this.placement();
    if (placement === null) return localRoute;
    if (!this.membership.synced) return joiningRoute;
    const p = partitionOf(key, placement.partitions);
    const owners = placement.owners(p);
    const self = this.membership.selfId();
    // While partitions are being handed off (formerOwnersCompareMs after a membership change),
    // an owner that also owned the partition in every placement since holds its data; a new
    // owner may not be filled yet, and a read there would miss acknowledged writes (a node that
    // rejoined empty answered a counter below what its router had acknowledged: chaos ci,
    // "partitioned ... leaves and rejoins empty"). Such an owner is preferred, this node first.
    this.dropExpiredPlacements();
    if (this.formerPlacements.length > 0) {
      const stable = (id: NodeId): boolean => this.formerPlacements.every((f) => f.placement.owns(id, p));
      if (owners.includes(self) && stable(self)) return localRoute;
      for (const id of owners) {
        const m = this.membership.get(id);
        if (id !== self && m !== undefined && m.status === "alive" && stable(id) && avoid?.has(id) !== true) return { kind: "forward", to: id, addr: m.addr };
      }
    }
    if (owners.includes(self)) return localRoute;
    let suspect: Route | null = null;
    for (const id of owners) {
      const m = this.membership.get(id);
      if (m === undefined || avoid?.has(id) === true) continue;
      if (m.status === "alive") return { kind: "forward", to: id, addr: m.addr };
      if (m.status === "suspect" && suspect === null) suspect = { kind: "forward", to: id, addr: m.addr };
    }
    return suspect ?? { kind: "unavailable", owners };
  }

  // ------------------------------------------------------------ views

  members(): MemberView[] {
    return this.membership.view();
  }

  /** Does this node merge replica data from `id` now (its life shook hands, neither side quarantined)? */
  acceptsDataFrom(id: NodeId): boolean {
    return this.gc.accepts(id);
  }

  /** Tombstone collection: quarantine, generation and totals (metrics, tests). */
  collection(): { quarantined: boolean; generation: number; keysCollected: number; roundsCompleted: number; roundsAbandoned: number; statesDroppedAsStale: number; remembered: number; forgottenEarly: number; echoes: number } {
    const g = this.gc;
    return { quarantined: g.isQuarantined, generation: g.generation, keysCollected: g.keysCollected, roundsCompleted: g.roundsCompleted, roundsAbandoned: g.roundsAbandoned, statesDroppedAsStale: g.statesDroppedAsStale, remembered: g.rememberedCollected, forgottenEarly: g.forgottenEarly, echoes: g.echoesRemembered };
  }

  pendingBroadcasts(): number {
    return this.membership.pendingBroadcasts();
  }

  /** After leave(): the first peer seen to hold the departure, or null (Membership.leaveHeardBy). */
  leaveHeardBy(): NodeId | null {
    return this.membership.leaveHeardBy;
  }

  /** Outstanding (unacknowledged) deltas for one peer. */
  deltaBacklog(peer: NodeId): { entries: number; bytes: number; oldestAgeMs: number } {
    return this.deltas.backlog(peer);
  }

  /**
   * What is on its way between this node and `peer`: hints (deltas held for it, not yet
   * acknowledged: it gets them when it answers; dropped if it is declared dead, when anti-entropy
   * repairs it instead) and state bytes anti-entropy shipped with it (a hand-off or a repair),
   * both ways, in total and in the last minute.
   */
  peerTransfer(peer: NodeId): { hintsPending: number; hintBytes: number; stateBytesSent: number; stateBytesReceived: number; stateBytesLastMinute: number } {
    const b = this.deltas.backlog(peer);
    const t = this.ae.peerTraffic(peer);
    return { hintsPending: b.entries, hintBytes: b.bytes, stateBytesSent: t.sent, stateBytesReceived: t.received, stateBytesLastMinute: t.recent };
  }

  /** Anti-entropy totals since start: exchanges opened, envelope bytes each way, keys repaired. */
  antiEntropyTotals(): { rounds: number; bytesSent: number; bytesReceived: number; keysRepaired: number } {
    return {
      rounds: this.ae.roundsStarted,
      bytesSent: this.outbox.antiEntropyBytesSent,
      bytesReceived: this.antiEntropyBytesReceived,
      keysRepaired: this.antiEntropyKeysRepaired,
    };
  }

  status(): ClusterStatus {
    this.syncTree();
    const counts = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const m of this.membership.view()) counts[m.status]++;
    return {
      id: this.membership.selfId(),
      addr: this.addr,
      incarnation: this.membership.selfIncarnation(),
      ...counts,
      healthScore: this.membership.awarenessScore(),
      keys: this.tree.keyCount,
      relayedProbesDropped: this.membership.relayedProbesDropped,
    };
  }

  /** Root hash of the anti-entropy tree: equal roots mean equal replicas (with high probability). */
  rootHash(): string {
    this.syncTree();
    return this.tree.hash(0, 0).map((w) => w.toString(16).padStart(8, "0")).reverse().join("");
  }
}
