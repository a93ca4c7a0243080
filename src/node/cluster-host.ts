// The node's side of the cluster: owns the peer client and the cluster driver, pushes local
// deltas out, and merges remote deltas and anti-entropy states into the engine — logging every
// change to the WAL in the same synchronous step, as the persist contract asks.
import type { NodeConfig } from "../config/config.ts";
import type { ReplicaStore } from "../cluster/store.ts";
import { leaveAnnounceMs, type ClusterOptions } from "../cluster/cluster.ts";
import { asNodeId, type ClusterEvent } from "../cluster/types.ts";
import type { Engine, MergeResult } from "../engine/index.ts";
import type { Store } from "../persist/index.ts";
import type { HandOffEntry, LeaveInfo, MemberState, MemberView, ScanPage, ScanQuery } from "../transport/api.ts";
import type { ScanListing } from "../cluster/cluster.ts";
import { forwardDeadlineMs } from "./forward.ts";
import { HandOffAssembler, handOffCallDeadlineMs, handOffForLeave, leaveHandOffMs, type HandOffPorts } from "./handoff.ts";
import { PeerClient } from "../transport/peer-client.ts";
import type { Route } from "../cluster/cluster.ts";
import type { ClientOp, OpOutcome } from "../transport/api.ts";
import type { TlsMaterial } from "../transport/tls.ts";
import { ClusterDriver, PeerMessageRefused } from "./cluster-driver.ts";
import { OpFailure } from "../transport/api.ts";
import type { Logger } from "./log.ts";
import { MemoryReturn, returnMemoryNow } from "./memory-return.ts";

/** Keys added to the hash tree per event-loop turn while it is built after recovery. */
const treeBuildChunkKeys = 20_000;
/**
 * How long a leaving node waits for its live peers to acknowledge every delta it sent before it
 * announces its departure. Its writes reach them by these deltas only: once it has left, the
 * others stop taking its data, and should it come back its data is discarded (a departed life,
 * gc.ts). Bounded: a peer that never answers does not keep it from leaving.
 */
export const leaveDrainDeltasMs = 10_000;
/** Least time between two log lines about refused far-ahead peer timestamps (each is counted in the metric). */
const clockAheadLogIntervalMs = 10_000;

/**
 * Deadline of a data exchange with a peer (deltas, anti-entropy, collection probes), whose
 * reply carries its answer: a delta ack, a gc-confirm, the states asked for. Such an answer
 * waits for the peer's WAL append of what it merged (Outbound.carriesState) and for the peer
 * to merge the request at all, so under load it takes longer than a ping's 2 s; with the 2 s
 * deadline the answer was thrown away and the sender resent the batch or probed again, so a
 * loaded cluster redid work whose answers it then dropped (likely what `bench collect` showed
 * at 1M keys on a loaded machine: delta backlogs overflowing, collection rounds timing out by
 * the hundred, anti-entropy bytes flowing while nothing was repaired; not yet measured with
 * this deadline). Failure detection keeps its own connection and the short deadline. In-flight
 * sends to a peer that stopped answering stay bounded by the protocols' windows (deltas,
 * probes, one exchange per second), well under driverSendsInflightMax.
 */
export const peerDataDeadlineMs = 30_000;

export interface ClusterHostOptions {
  cfg: NodeConfig;
  engine: Engine;
  store: Store;
  log: Logger;
  /** The node's wall clock (HLC physical time; includes the test-only clock offset). */
  now: () => number;
  tls: TlsMaterial | null;
  /** Another live process holds this node's id and this one yielded: the node must stop. */
  onDuplicateId?: (address: string) => void;
  /** Tombstone collection (src/cluster/gc.ts): life, quarantine, stored state, clocks. */
  gc?: ClusterOptions["gc"];
  /**
   * The cluster found that this replica's data may predate deletes the members collected: the
   * node must discard its data and rejoin as a new, empty replica.
   */
  onReplicaReset?: (reason: string) => void;
  /** True while the full GC after collection should wait (memory-return.ts): the expiry sweep has a backlog. */
  deferFullGc?: () => boolean;
  /**
   * Starts a new replica epoch durably and returns its actor (persist/identity.ts renewEpochSync),
   * for an eviction that drops keys this actor wrote (Engine.evict). Absent: nothing is evicted.
   */
  renewActor?: () => string;
}

export interface ClusterCounters {
  skewEvents: number;
  deltasMerged: number;
  statesMerged: number;
  backlogOverflows: number;
  /** Peer LWW writes refused for a timestamp beyond hlcRemoteAheadMsMax. */
  clockAheadRefused: number;
  /** Keys that came to hold a second (third...) type here: type conflicts, each logged once. */
  typeConflicts: number;
  /** Remote deltas and states this node refused to merge (clock ahead, a bound exceeded). */
  mergesRefused: number;
}

const localRoute: Route = { kind: "local" };
/** How long eviction waits after a failed epoch renewal (ClusterHost.evict). */
const evictRetryMs = 60_000;

export class ClusterHost {
  private driver: ClusterDriver | null = null;
  private readonly peers: PeerClient;
  /** Failure detection's own connections: a ping never waits behind megabytes of deltas. */
  private readonly probes: PeerClient;
  readonly counters: ClusterCounters = {
    skewEvents: 0,
    deltasMerged: 0,
    statesMerged: 0,
    backlogOverflows: 0,
    clockAheadRefused: 0,
    typeConflicts: 0,
    mergesRefused: 0,
  };
  private readonly listeners: Array<(e: ClusterEvent) => void> = [];
  /** Local WAL appends not settled yet (see localAppend). */
  private readonly unsettled = new Set<Promise<unknown>>();

  constructor(private readonly o: ClusterHostOptions) {
    this.peers = new PeerClient({ selfId: o.cfg.id, security: o.tls ? { tls: o.tls } : { insecure: true }, deadlineMs: peerDataDeadlineMs });
    this.probes = new PeerClient({ selfId: o.cfg.id, security: o.tls ? { tls: o.tls } : { insecure: true } });
  }

  /** Joins (through the seeds) once the peer server listens on `peerPort`. */
  start(peerPort: number): void {
    const { cfg, engine } = this.o;
    const [host] = cfg.peerAddr.split(/:(?=\d+$)/);
    const addr = cfg.advertiseAddr !== "" ? cfg.advertiseAddr : `${host}:${peerPort}`;
    const store: ReplicaStore = {
      digest: (key) => engine.digest(key),
      states: (keys) => statesOf(engine, keys),
      mergeStates: (entries) => {
        for (const [key, bytes] of entries) this.logged(engine.mergeState(key, bytes, this.o.now()), bytes, "state");
      },
      mergeDeltas: (batch) => {
        for (const bytes of batch) this.logged(engine.mergeDelta(bytes, this.o.now()), bytes, "delta");
      },
      // A state is a KeyState envelope that names its key: mergeDelta joins it as it is.
      deltasOfStates: (entries) => entries.map(([, state]) => state),
      reportChanges: () => void engine.reportChanges(),
      absentKeys: (cursor, limit) => engine.absentKeys(cursor, limit),
      absentCount: () => engine.deletedKeyCount,
      // Not logged: a restart replays the delete again and the record is collected again.
      collect: (key, digest) => engine.collect(key, digest),
      forgetCollected: (key) => engine.forgetCollected(key),
      refusals: () => this.counters.mergesRefused,
      // Not logged either: a restart may replay dropped keys; they are pushed and dropped again.
      ...(this.o.renewActor !== undefined ? { evict: (entries: ReadonlyArray<{ key: string; digest: bigint }>) => this.evict(entries) } : {}),
    };
    this.driver = new ClusterDriver({
      id: cfg.id,
      addr,
      seeds: cfg.seeds.filter((s) => s !== addr),
      store,
      sender: {
        send: async (to, payload) => {
          try {
            return await (to.failureDetection ? this.probes : this.peers).send(to.addr, payload, { expectedId: to.id });
          } catch {
            return null;
          }
        },
      },
      onEvent: (e) => this.onEvent(e),
      gate: () => this.settled(),
      config: { replicationFactor: cfg.replicationFactor, partitions: cfg.partitions },
      ...(this.o.gc === undefined ? {} : { gc: this.o.gc }),
    });
    // The hash tree learns every change from now on, and every key recovered from disk in
    // bounded chunks between requests, so a node with millions of keys serves clients at once.
    // Only once the tree is complete does the node join: anti-entropy against a half-built tree
    // would pull keys it already has.
    const driver = this.driver;
    engine.setOnChange((key, digest) => driver.keyChanged(key, digest));
    const deferFullGc = this.o.deferFullGc ?? (() => false);
    this.memoryReturn = new MemoryReturn(() => {
      const c = driver.cluster.collection();
      return { compactions: engine.storageSizes().compactions, remembered: c.remembered, echoes: c.echoes };
    }, undefined, deferFullGc);
    this.memoryReturn.start();
    void this.buildTree(driver).then(() => {
      if (!this.stopped) driver.start();
    });
  }

  private stopped = false;
  /** A leaving member's states arriving in pieces (NodeService.HandOff). */
  private readonly assembler = new HandOffAssembler(() => performance.now());
  /** When a settings mismatch with each address was last logged. */
  private readonly mismatchLoggedAt = new Map<string, number>();
  /** Full GCs after tombstone collection freed memory (memory-return.ts). */
  private memoryReturn: MemoryReturn | null = null;

  private async buildTree(driver: ClusterDriver): Promise<void> {
    const { engine, log } = this.o;
    const t0 = performance.now();
    const scan = engine.scan();
    let keys = 0;
    while (!scan.done && !this.stopped) {
      for (const item of scan.next(treeBuildChunkKeys)) {
        driver.keyChanged(item.key, engine.digest(item.key));
        keys++;
      }
      await new Promise<void>((r) => setImmediate(r));
    }
    if (keys > 0) {
      returnMemoryNow(false);
      log.info("anti-entropy hash tree built", { keys, ms: Math.round(performance.now() - t0) });
    }
  }

  /**
   * Appends a remote delta/state that changed something to the WAL. Not awaited here, but
   * tracked with the local appends: until it is durable, read-only requests that could show
   * the value wait (node.ts applyOps awaits settled()), and so do the delta acks and
   * anti-entropy states that could promise or carry it (the driver's gate). In `sync` mode a
   * peer's value is thus neither shown nor acknowledged before it is on this node's disk.
   */
  /** When a new epoch for an eviction last failed to be written (evictions wait evictRetryMs after it). */
  private evictFailedAtMs = Number.NEGATIVE_INFINITY;

  /**
   * Engine.evict with the node's epoch renewal. Should the new identity fail to be written (a
   * full or read-only disk), nothing is dropped (evict renews before it drops anything): the
   * error is logged and eviction waits evictRetryMs, the copies staying where they are.
   */
  private evict(entries: ReadonlyArray<{ key: string; digest: bigint }>): number | null {
    if (performance.now() - this.evictFailedAtMs < evictRetryMs) return null;
    try {
      return this.o.engine.evict(entries, this.o.renewActor!);
    } catch (e) {
      this.evictFailedAtMs = performance.now();
      this.o.log.error("could not start a new replica epoch to drop keys this node no longer owns: they stay here, tried again in a minute", { error: e instanceof Error ? e.message : String(e) });
      return null;
    }
  }

  private logged(r: MergeResult, bytes: Uint8Array, what: "delta" | "state"): void {
    if (!r.ok) {
      this.counters.mergesRefused++;
      if (r.clockAhead !== undefined) this.clockAhead(r.clockAhead.key, r.clockAhead.aheadMs);
      else this.o.log.warn(`refused a remote ${what}`, { error: r.error.message });
      return;
    }
    if (r.skew) {
      this.counters.skewEvents++;
      this.o.log.warn("clock skew: a remote timestamp is ahead of this node's clock", { key: r.key.slice(0, 64), aheadMs: r.skew.aheadMs });
    }
    if (r.typeConflict) {
      this.counters.typeConflicts++;
      const v = this.o.engine.get(r.key);
      this.o.log.warn("type conflict: a key was created with different types; all are kept, the earliest-created is visible", {
        key: r.key.slice(0, 64), visible: v?.type, others: (v?.conflicts ?? []).map((c) => c.type).join(","),
      });
    }
    if (what === "delta") this.counters.deltasMerged++;
    else this.counters.statesMerged++;
    if (!r.changed) return;
    // Same synchronous step as the merge: a snapshot never holds an unlogged change.
    this.track(this.o.store.append([bytes]));
  }

  private clockAheadLoggedMs = -Infinity;
  private clockAheadUnlogged = 0;

  /** Counts a refused far-ahead peer timestamp; logs at most every clockAheadLogIntervalMs (anti-entropy re-offers it every round). */
  private clockAhead(key: string, aheadMs: number): void {
    this.counters.clockAheadRefused++;
    const now = performance.now();
    if (now - this.clockAheadLoggedMs < clockAheadLogIntervalMs) {
      this.clockAheadUnlogged++;
      return;
    }
    this.o.log.warn("refused a peer write stamped too far ahead of this node's clock", {
      key: key.slice(0, 64), aheadMs, limitMs: this.o.cfg.hlcRemoteAheadMsMax, alsoRefusedSinceLastLine: this.clockAheadUnlogged,
    });
    this.clockAheadLoggedMs = now;
    this.clockAheadUnlogged = 0;
  }

  private onEvent(e: ClusterEvent): void {
    const log = this.o.log;
    switch (e.kind) {
      case "member-joined":
        log.info("member joined", { member: e.id, address: e.address, incarnation: e.incarnation });
        break;
      case "member-dead":
        log.warn("member dead", { member: e.id, incarnation: e.incarnation, from: e.from });
        break;
      case "member-left":
        log.info("member left", { member: e.id });
        break;
      case "member-suspect":
        log.info("member suspect", { member: e.id, from: e.from });
        break;
      case "member-alive":
        log.info("member alive", { member: e.id, incarnation: e.incarnation });
        break;
      case "member-updated":
        log.info("member updated", { member: e.id, address: e.address, incarnation: e.incarnation });
        break;
      case "member-reaped":
        log.info("member reaped", { member: e.id });
        break;
      case "self-refuted":
        log.warn("refuted a suspicion of this node", { incarnation: e.incarnation });
        break;
      case "delta-backlog-overflow":
        this.counters.backlogOverflows++;
        log.warn("delta backlog overflowed; anti-entropy will repair the peer", { peer: e.peer });
        break;
      case "anti-entropy-repaired":
        log.debug("anti-entropy repaired", { peer: e.peer, sent: e.keysSent, received: e.keysReceived });
        break;
      case "message-refused":
        log.warn("refused a peer message", { from: e.from, reason: e.reason });
        break;
      case "settings-mismatch": {
        // Asked again every reconnect interval: said once a minute per address.
        const now = Date.now();
        if ((this.mismatchLoggedAt.get(e.address) ?? 0) + 60_000 > now) break;
        if (this.mismatchLoggedAt.size > 1000) this.mismatchLoggedAt.clear();
        this.mismatchLoggedAt.set(e.address, now);
        log.error("a node that places keys differently tried to join or answered a join: it is not a member (every node of a cluster needs the same replicationFactor and partitions)", { address: e.address, theirs: e.theirs, ours: e.ours });
        break;
      }
      case "deltas-acked":
        break;
      case "tombstones-collected":
        log.debug("tombstones collected", { keys: e.keys });
        break;
      case "keys-evicted":
        log.debug("dropped the keys of a partition its owners hold", { partition: e.partition, keys: e.keys });
        break;
      case "gc-quarantine-lifted":
        log.info("every member confirmed this replica's data is not older than their collections: taking writes", { generation: e.generation });
        break;
      case "replica-reset":
        log.error("this replica's data may predate deletes the cluster has collected: discarding it and rejoining as a new, empty replica", { reason: e.reason });
        this.o.onReplicaReset?.(e.reason);
        break;
      case "duplicate-node-id":
        if (e.yielded) {
          log.error("node id already in use: a live process answers for it at another address; this one stops (one process per node id)", { id: this.o.cfg.id, holder: e.address });
          this.o.onDuplicateId?.(e.address);
        } else {
          log.error("refused a second process claiming this node id; it stops (one process per node id)", { id: this.o.cfg.id, claimant: e.address });
        }
        break;
    }
    for (const l of this.listeners) l(e);
  }

  /** Subscribe to cluster events (metrics). */
  onClusterEvent(fn: (e: ClusterEvent) => void): void {
    this.listeners.push(fn);
  }

  /**
   * A local write's WAL append, issued in the same synchronous step as the write. Until it
   * settles, the write is visible in the engine but could still be lost to a SIGKILL, so no
   * state-carrying message leaves for a peer (an anti-entropy state could carry it): a peer holding counts
   * this node lost would swallow the counts it reuses for new acknowledged increments.
   */
  localAppend(append: Promise<unknown>): void {
    this.track(append);
  }

  /** Holds state-carrying messages and read-only answers until `append` settles (a failure stops the node). */
  private track(append: Promise<unknown>): void {
    const p = append.then(() => undefined, () => undefined);
    this.unsettled.add(p);
    void p.then(() => this.unsettled.delete(p));
  }

  /** null when every append (local write or merged peer data) has settled, else a promise for those pending now. */
  settled(): Promise<void> | null {
    if (this.unsettled.size === 0) return null;
    return Promise.all([...this.unsettled]).then(() => undefined);
  }

  /** Local deltas, already applied and appended to the WAL, to push to every live peer. */
  broadcast(deltas: readonly Uint8Array[]): void {
    if (!this.driver) return;
    for (const d of deltas) this.driver.broadcastDelta(d);
  }

  /** A NodeService.Exchange request from an authenticated peer. */
  receive(fromId: string, payload: Uint8Array | undefined): Uint8Array | Promise<Uint8Array> {
    if (payload === undefined || payload.length === 0) throw new OpFailure("INVALID_ARGUMENT", "empty peer message");
    if (!this.driver) throw new OpFailure("UNAVAILABLE", "this node has not joined the cluster yet");
    try {
      // The driver holds a state-carrying reply (a delta ack) until the appends of what it
      // acknowledges are durable; an ack to a ping leaves at once.
      return this.driver.receive(fromId, payload);
    } catch (err) {
      if (err instanceof PeerMessageRefused) throw new OpFailure("INVALID_ARGUMENT", `peer message refused: ${err.message}`);
      throw err;
    }
  }

  /** Partitioned and not joined yet: a forwarded request is refused rather than applied (Cluster.joining). */
  get joining(): boolean {
    return this.driver?.cluster.joining ?? this.o.cfg.replicationFactor > 0;
  }

  /** Where a request for `key` goes (Cluster.route); local until the node has joined. */
  route(key: string, avoid?: ReadonlySet<string>): Route {
    return this.driver?.cluster.route(key, avoid) ?? localRoute;
  }

  /** Forwards a client's ops to the owner `to` (src/node/forward.ts), on the data channel. */
  forward(to: { id: string; addr: string }, ops: readonly ClientOp[], requestId: Uint8Array | null, deadlineMs: number): Promise<OpOutcome[]> {
    return this.peers.forward(to.addr, to.id, ops, requestId, deadlineMs);
  }

  members(): MemberView[] {
    if (!this.driver) {
      return [{ id: this.o.cfg.id, address: this.o.cfg.peerAddr, status: "alive", incarnation: 0 }];
    }
    const placement = this.driver.cluster.placement();
    const owned = new Map<string, number>();
    if (placement !== null) placement.loads().forEach((n, i) => owned.set(placement.members[i]!, n));
    const c = this.driver.cluster;
    return this.driver.members().map((m) => {
      if (placement === null) return { id: m.id, address: m.address, status: m.status, incarnation: Number(m.incarnation) };
      const t = m.id === this.o.cfg.id ? null : c.peerTransfer(m.id);
      // Left members own nothing: they are outside the placement.
      return {
        id: m.id, address: m.address, status: m.status, incarnation: Number(m.incarnation), partitions: owned.get(m.id) ?? 0,
        hintsPending: t?.hintsPending ?? 0, bytesMoving: t?.stateBytesLastMinute ?? 0,
      };
    });
  }

  /** Who lists which partition in a Scan (Cluster.scanListing); null without a replication factor or before the cluster starts. */
  scanListing(): ScanListing | null {
    return this.driver?.cluster.scanListing() ?? null;
  }

  /** A member's status and peer address as this node sees it. */
  member(id: string): { status: MemberState; addr: string } | undefined {
    const m = this.driver?.cluster.members().find((v) => v.id === id);
    return m === undefined ? undefined : { status: m.status, addr: m.address };
  }

  /** One page of a partitioned Scan from member `to` (src/node/scan.ts), on the data channel. */
  scanPart(to: { id: string; addr: string }, q: ScanQuery, segment: number, check: number, partitions: Uint8Array): Promise<ScanPage> {
    return this.peers.scanPart(to.addr, to.id, q, segment, check, partitions, forwardDeadlineMs);
  }

  /** Partition replicas this node owns: every partition when every member holds every key. */
  /** Keys and partitions evicted so far (Cluster.evictions). */
  evictions(): { keys: number; partitions: number } {
    return this.driver?.cluster.evictions() ?? { keys: 0, partitions: 0 };
  }

  partitionsOwned(): number {
    const placement = this.driver?.cluster.placement() ?? null;
    if (placement === null) return this.o.cfg.partitions;
    const i = placement.members.indexOf(asNodeId(this.o.cfg.id));
    return i < 0 ? 0 : placement.loads()[i]!;
  }

  status(): ReturnType<ClusterDriver["status"]> | null {
    return this.driver?.status() ?? null;
  }

  /** Per peer still in the member list: deltas not yet acknowledged, and how long the oldest has waited. */
  peerReplication(): { peer: string; backlog: number; lagSeconds: number; status: string; stateBytesSent: number; stateBytesReceived: number }[] {
    const d = this.driver;
    if (!d) return [];
    return d.members()
      // Every member still listed, dead and left ones included: their series stay (at 0 once the
      // cluster dropped a dead peer's delta stream; imdb_peer_alive says why) until reaped or removed.
      .filter((m) => m.id !== this.o.cfg.id)
      .map((m) => {
        const b = d.cluster.deltaBacklog(m.id);
        const t = d.cluster.peerTransfer(m.id);
        return { peer: m.id, backlog: b.entries, lagSeconds: b.oldestAgeMs / 1000, status: m.status, stateBytesSent: t.stateBytesSent, stateBytesReceived: t.stateBytesReceived };
      });
  }

  /** Anti-entropy totals for metrics (zeros before the cluster starts). */
  /** Tombstone collection: quarantine, generation and totals (before the driver starts: what the node was started with). */
  collection(): ReturnType<ClusterDriver["cluster"]["collection"]> {
    return this.driver?.cluster.collection() ?? { quarantined: this.o.gc?.quarantined ?? false, generation: this.o.gc?.durable?.generation ?? 0, keysCollected: 0, roundsCompleted: 0, roundsAbandoned: 0, statesDroppedAsStale: 0, remembered: 0, forgottenEarly: 0, echoes: 0 };
  }

  antiEntropyTotals(): { rounds: number; bytesSent: number; bytesReceived: number; keysRepaired: number } {
    return this.driver?.cluster.antiEntropyTotals() ?? { rounds: 0, bytesSent: 0, bytesReceived: 0, keysRepaired: 0 };
  }

  /** What the cluster's bounds dropped since start (admin stats): each is repaired by resends or anti-entropy. */
  dropCounters(): { peerSendsDropped: number; heldMessagesDropped: number; relayedProbesDropped: number } {
    const s = this.driver?.status();
    return { peerSendsDropped: s?.sendsDropped ?? 0, heldMessagesDropped: s?.heldDropped ?? 0, relayedProbesDropped: s?.relayedProbesDropped ?? 0 };
  }

  skewEvents(): number {
    return this.counters.skewEvents;
  }

  /**
   * States a leaving member handed over (NodeService.HandOff): merged as anti-entropy merges
   * states, answered once durable; UNAVAILABLE while this node does not take that member's data,
   * FAILED_PRECONDITION when they were read before a collection that relied on it (read again).
   */
  async handOffReceive(fromId: string, entries: readonly HandOffEntry[], stamp: { epoch: number; confirms: number }): Promise<number> {
    const d = this.driver;
    if (d === null) throw new OpFailure("UNAVAILABLE", "this node has not joined the cluster yet");
    const whole = this.assembler.accept(fromId, entries);
    if (whole.length === 0) return 0;
    const r = d.mergeHandOff(fromId, whole, stamp);
    if (r.kind !== "merged") {
      if (r.kind === "not-accepted") throw new OpFailure("UNAVAILABLE", `${this.o.cfg.id} does not take ${fromId}'s data now (their lives have not shaken hands, or this node is rejoining); retry`);
      throw new OpFailure("FAILED_PRECONDITION", "these states were read before a tombstone collection that relied on the sender: read them again");
    }
    await this.settled();
    this.assembler.committed(fromId);
    return r.keys;
  }

  /**
   * Leaves the cluster; `stopWrites` is called when the node must take no more writes (the
   * caller refuses them from then on). Throws, having announced nothing, when a partitioned
   * node's hand-off is refused or fails.
   */
  async leave(stopWrites: () => void = () => {}): Promise<LeaveInfo> {
    const d = this.driver;
    if (d === null) {
      stopWrites();
      return { heardBy: null, peers: 0 };
    }
    // Partitioned: every key this node holds goes to its next owners first, each call durable
    // there (src/cluster/handoff.ts), in two passes: everything while the node still takes
    // writes (a big hand-off takes minutes, and its keys' writes must not wait that long), then,
    // writes stopped, the keys that changed meanwhile. A refusal or a failure throws.
    if (this.o.cfg.replicationFactor > 0) {
      const t0 = performance.now();
      const end = t0 + leaveHandOffMs;
      const ports = (pass: "all" | "changed"): HandOffPorts => ({
        plan: () => d.cluster.handOffPlan(pass),
        states: (keys) => statesOf(this.o.engine, keys),
        stamp: () => d.cluster.readStamp(),
        send: (to, entries, stamp) => this.peers.handOff(to.addr, to.id, entries, stamp, handOffCallDeadlineMs),
        log: this.o.log,
        nowMs: () => performance.now(),
      });
      try {
        const first = await handOffForLeave(ports("all"), leaveHandOffMs);
        stopWrites();
        const second = await handOffForLeave(ports("changed"), Math.max(1, end - performance.now()));
        this.o.log.info("handed this node's keys to their next owners", { keys: first.keys, merged: first.merged + second.merged, bytes: first.bytes + second.bytes, targets: first.targets, changedMeanwhile: second.keys, ms: Math.round(performance.now() - t0) });
      } catch (e) {
        // Not leaving after all: the node goes on, and keeps others' strays again.
        d.cluster.leaveCalledOff();
        throw e;
      } finally {
        d.cluster.handOffEnded();
      }
    } else {
      stopWrites();
    }
    // Deltas first, while the peers still take this node's data; then the announcement.
    const end = performance.now() + leaveDrainDeltasMs;
    const pending = (): boolean => d.members().some((m) => m.id !== this.o.cfg.id && (m.status === "alive" || m.status === "suspect") && d.cluster.deltaBacklog(m.id).entries > 0);
    while (pending() && performance.now() < end) await new Promise((r) => setTimeout(r, 20));
    if (pending()) this.o.log.warn("leaving with deltas some peers have not acknowledged (they reach them only if this node's data is kept)", { waitedMs: leaveDrainDeltasMs });
    // Announced, then offered until one peer is seen holding it (ClusterDriver.leave): a leave
    // nobody heard looks like a crash to the others, and the operator must hear of it.
    const peers = d.members().filter((m) => m.id !== this.o.cfg.id && m.status !== "left").length;
    if (peers === 0) {
      await d.leave(0);
      return { heardBy: null, peers };
    }
    const heardBy = await d.leave(leaveAnnounceMs);
    if (heardBy === null) {
      this.o.log.error("no peer was seen holding this node's departure: the others may see it as dead and place keys over it until it is reaped; once they show it dead, run imdb admin member remove against one of them", { id: this.o.cfg.id, waitedMs: leaveAnnounceMs, peers });
    } else {
      this.o.log.info("departure announced", { heardBy });
    }
    return { heardBy, peers };
  }

  /**
   * `imdb admin member remove ID`: forgets a dead member now instead of deadReapAfterMs after it
   * died, and tells the others it left. Throws OpFailure for an unknown, live or own id.
   */
  removeMember(id: string): void {
    const r = this.driver?.removeMember(asNodeId(id)) ?? { kind: "unknown" as const };
    switch (r.kind) {
      case "removed":
        this.o.log.info("member removed by an operator", { member: id, was: r.was });
        return;
      case "unknown":
        throw new OpFailure("NOT_FOUND", `no member ${JSON.stringify(id)} is known to this node (imdb client members lists them)`);
      case "self":
        throw new OpFailure("FAILED_PRECONDITION", `${id} is this node: to take it out of the cluster, run imdb admin leave against it`);
      case "reachable":
        throw new OpFailure("FAILED_PRECONDITION", `member ${id} is ${r.status}, not dead: stop it first, or run imdb admin leave against it`);
    }
  }

  reloadTls(tls: TlsMaterial): void {
    this.peers.reloadTls(tls);
    this.probes.reloadTls(tls);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.memoryReturn?.stop();
    this.driver?.stop();
    this.peers.close();
    this.probes.close();
  }
}

/** The encoded states of those of `keys` the engine holds. */
function statesOf(engine: Engine, keys: readonly string[]): Array<[string, Uint8Array]> {
  const out: Array<[string, Uint8Array]> = [];
  for (const k of keys) {
    const s = engine.encodeState(k);
    if (s !== undefined) out.push([k, s]);
  }
  return out;
}
