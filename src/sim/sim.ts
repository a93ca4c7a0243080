// A whole cluster in one process: N nodes on virtual time, a faulty simulated network, and invariants checked after every step.
//
// Everything random comes from one seed, so the same seed replays the same run exactly
// (same trace hash). Time only advances from one queued event to the next.

import { Cluster } from "../cluster/cluster.ts";
import type { ClusterConfig } from "../cluster/config.ts";
import type { ClusterEvent, MemberView, NodeId, Outbound } from "../cluster/types.ts";
import { EventHeap } from "./heap.ts";
import { Rng } from "./rng.ts";
import type { SimStore } from "./engine-store.ts";
import { CounterStore } from "./store.ts";
import { decideIdentity, epochFromRandom, epochRandomBytes, gcStartState, parseReplicaActor, replicaActor, type Epoch, type IdentityDecision } from "../persist/replica.ts";
import type { GcDurableState } from "../cluster/gc.ts";

/** Messages queued for a stalled node; beyond it they are dropped (a full socket buffer). */
export const stallInboxMax = 10_000;

export interface NetworkParams {
  /** Probability that a message is lost. */
  lossRate: number;
  /** Probability that a message is delivered twice. */
  duplicateRate: number;
  /** One-way delay is uniform in [delayMinMs, delayMaxMs]: overlapping delays reorder. */
  delayMinMs: number;
  delayMaxMs: number;
}

export const lanNetwork: NetworkParams = { lossRate: 0, duplicateRate: 0, delayMinMs: 0.1, delayMaxMs: 2 };

export interface SimOptions {
  seed: number;
  nodes: number;
  config?: Partial<ClusterConfig>;
  network?: Partial<NetworkParams>;
  /** How many of the first nodes serve as seed addresses for the others (default 2). */
  seedNodes?: number;
  /** Makes a node's replica (default: the minimal CounterStore). `nowMs` reads virtual time. */
  /** hashSeed: the engine's table-hash key, drawn from the simulation's rng (as the node draws it from crypto). */
  storeFactory?: (actor: string, nowMs: () => number, hashSeed: readonly [number, number]) => SimStore;
  /** Hash every message into the trace (default true; off for large benchmarks). */
  traceMessages?: boolean;
  /** Called for every cluster event with the observing node's index and the virtual time. */
  onEvent?: (node: number, event: ClusterEvent, atMs: number) => void;
  /** Called for every message that leaves a node (before loss). */
  onSend?: (node: number, out: Outbound) => void;
  /**
   * Check that counters equal the acknowledged increments made through increment() (default
   * true). Off when a workload of its own (src/sim/workload.ts) writes and checks the data.
   */
  counterInvariant?: boolean;
  /** Called for every message a running, unstalled node is about to step. */
  onDeliver?: (node: number, from: NodeId, payload: Uint8Array) => void;
  /** Nodes not started with the others: each joins (through the seeds) at its first restart(i). */
  startStopped?: readonly number[];
}

/**
 * What a simulated node's data folder remembers about its identity, decided by the same rules
 * as the node's (persist/replica.ts). The simulated disk is `sync`: a kill loses nothing.
 */
interface SimDisk {
  identity: { nodeId: string; epoch: Epoch; folderIno: string } | null;
  folderIno: string;
  cleanStop: boolean;
  /** The gc-state file (src/persist/gc-state.ts): tombstone collection's stored state. */
  gc: GcDurableState;
}

/** A copy of a node's data folder taken while it runs (see backup/restart). */
export interface SimBackup {
  readonly nodeIndex: number;
  readonly disk: SimDisk;
  readonly states: ReadonlyArray<readonly [string, Uint8Array]>;
}

interface SimNode {
  index: number;
  id: NodeId;
  addr: string;
  boot: number;
  running: boolean;
  stalledUntilMs: number;
  inbox: Array<{ from: NodeId; payload: Uint8Array }>;
  cluster: Cluster | null;
  store: SimStore;
  disk: SimDisk;
  rng: Rng;
  tickAtMs: number;
  tickVersion: number;
  /** Last incarnation this process saw per member (for the never-decreases invariant). */
  seenIncarnation: Map<NodeId, number>;
}

type SimEvent =
  | { at: number; seq: number; kind: "tick"; node: number; version: number }
  | { at: number; seq: number; kind: "wake"; node: number }
  | { at: number; seq: number; kind: "deliver"; from: NodeId; fromIndex: number; toAddr: string; payload: Uint8Array }
  | { at: number; seq: number; kind: "call"; fn: () => void };

/** 64-bit FNV-1a over everything observable, as two 32-bit lanes. */
class TraceHash {
  private a = 0x811c9dc5;
  private b = 0x050c5d1f;

  bytes(x: Uint8Array): void {
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < x.length; i++) {
      const c = x[i] as number;
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x01000197) ^ (a >>> 13);
    }
    this.a = a;
    this.b = b;
  }

  text(s: string): void {
    this.bytes(new TextEncoder().encode(s));
  }

  hex(): string {
    return (this.b >>> 0).toString(16).padStart(8, "0") + (this.a >>> 0).toString(16).padStart(8, "0");
  }
}

export class Simulation {
  nowMs = 0;
  readonly violations: string[] = [];
  readonly network: NetworkParams;
  private readonly rng: Rng;
  private readonly nodes: SimNode[] = [];
  private readonly byAddr = new Map<string, number>();
  private readonly queue = new EventHeap<SimEvent>();
  private seq = 0;
  private partition: Map<NodeId, number> | null = null;
  private readonly trace = new TraceHash();
  /** Acknowledged increments per key and actor: what each counter must hold in the end. */
  private readonly acked = new Map<string, Map<string, number>>();
  /**
   * For an actor whose disk was wiped (key\0actor): the least count that must survive,
   * i.e. what other replicas held when the last copy-holding disk was lost. Deltas still
   * in flight or in a stalled node's inbox may bring back more, up to the acked count.
   */
  private readonly survivingAtLeast = new Map<string, number>();
  private readonly seeds: string[];
  /** Epoch randomness (the node uses crypto; both go through epochFromRandom). */
  private readonly identityRng: Rng;
  private nextFolderIno = 1;
  /** The identity decision of the node identified last (boot reads it for tombstone collection). */
  private lastDecision: IdentityDecision = { kind: "new", reason: "empty" };
  messagesSent = 0;
  messagesDelivered = 0;
  steps = 0;

  constructor(private readonly opts: SimOptions) {
    this.rng = new Rng(opts.seed);
    this.identityRng = this.rng.fork();
    this.network = { ...lanNetwork, ...opts.network };
    const seedNodes = Math.min(opts.seedNodes ?? 2, opts.nodes);
    this.seeds = [];
    for (let i = 0; i < seedNodes; i++) this.seeds.push(`n${i}@0`);
    for (let i = 0; i < opts.nodes; i++) {
      const id = `n${i}` as NodeId;
      const disk = this.emptyDisk();
      const node: SimNode = {
        index: i, id, addr: `${id}@0`, boot: 0, running: false, stalledUntilMs: 0, inbox: [], cluster: null,
        store: this.newStore(this.identify(id, disk)), disk, rng: this.rng.fork(), tickAtMs: 0, tickVersion: 0, seenIncarnation: new Map(),
      };
      this.nodes.push(node);
      if (opts.startStopped?.includes(i) !== true) this.boot(node);
    }
  }

  private newStore(actor: string): SimStore {
    const factory = this.opts.storeFactory;
    if (factory === undefined) return new CounterStore(actor);
    return factory(actor, () => this.nowMs, [this.rng.nextU32(), this.rng.nextU32()]);
  }

  private emptyDisk(): SimDisk {
    return { identity: null, folderIno: String(this.nextFolderIno++), cleanStop: false, gc: { generation: 0, ownGeneration: 0, departed: [], members: [], lives: [] } };
  }

  /** The actor a node starting on `disk` writes as, exactly as the node decides it (persist/replica.ts). */
  private identify(nodeId: string, disk: SimDisk, repair = false): string {
    const facts = { stored: disk.identity, folderIno: disk.folderIno, cleanStop: disk.cleanStop, repair, durability: { kind: "sync" } as const };
    const decision = decideIdentity(facts, nodeId);
    disk.cleanStop = false;
    this.lastDecision = decision;
    if (decision.kind === "keep") return replicaActor(nodeId, decision.epoch);
    const bytes = new Uint8Array(epochRandomBytes);
    for (let i = 0; i < bytes.length; i++) bytes[i] = this.identityRng.int(256);
    const epoch = epochFromRandom(bytes);
    disk.identity = { nodeId, epoch, folderIno: disk.folderIno };
    return replicaActor(nodeId, epoch);
  }

  get size(): number {
    return this.nodes.length;
  }

  // ------------------------------------------------------------ running

  /** Processes every event up to and including `tMs`, then sets the clock to `tMs`. */
  runUntil(tMs: number): void {
    for (;;) {
      const ev = this.queue.peek();
      if (ev === undefined || ev.at > tMs) break;
      this.queue.pop();
      this.nowMs = Math.max(this.nowMs, ev.at);
      this.process(ev);
      this.steps++;
    }
    this.nowMs = Math.max(this.nowMs, tMs);
  }

  runFor(ms: number): void {
    this.runUntil(this.nowMs + ms);
  }

  /** Runs in steps of `stepMs` until `pred()` holds or `deadlineMs` passes; true if it held. */
  runUntilTrue(pred: () => boolean, deadlineMs: number, stepMs = 100): boolean {
    while (this.nowMs < deadlineMs) {
      if (pred()) return true;
      this.runUntil(Math.min(deadlineMs, this.nowMs + stepMs));
    }
    return pred();
  }

  /** Schedules `fn` at virtual time `atMs` (scripted faults and workloads). */
  at(atMs: number, fn: () => void): void {
    this.push({ at: atMs, seq: 0, kind: "call", fn });
  }

  private push(ev: SimEvent): void {
    ev.seq = this.seq++;
    this.queue.push(ev);
  }

  private process(ev: SimEvent): void {
    switch (ev.kind) {
      case "call":
        ev.fn();
        return;
      case "tick": {
        const n = this.nodes[ev.node] as SimNode;
        if (!n.running || ev.version !== n.tickVersion || this.nowMs < n.stalledUntilMs || n.cluster === null) return;
        n.cluster.tick();
        this.afterStep(n);
        return;
      }
      case "wake": {
        const n = this.nodes[ev.node] as SimNode;
        if (!n.running || n.cluster === null || this.nowMs < n.stalledUntilMs) return;
        const inbox = n.inbox;
        n.inbox = [];
        for (const m of inbox) n.cluster.step(m.from, m.payload);
        n.cluster.tick();
        this.afterStep(n);
        return;
      }
      case "deliver": {
        const idx = this.byAddr.get(ev.toAddr);
        if (idx === undefined) return;
        const n = this.nodes[idx] as SimNode;
        if (!n.running || n.cluster === null) return;
        if (this.nowMs < n.stalledUntilMs) {
          if (n.inbox.length < stallInboxMax) n.inbox.push({ from: ev.from, payload: ev.payload });
          return;
        }
        this.messagesDelivered++;
        this.opts.onDeliver?.(idx, ev.from, ev.payload);
        if (this.opts.traceMessages !== false) {
          this.trace.text(`d${this.nowMs}:${ev.from}>${n.id}:`);
          this.trace.bytes(ev.payload);
        }
        n.cluster.step(ev.from, ev.payload);
        this.afterStep(n);
        return;
      }
    }
  }

  private afterStep(n: SimNode): void {
    const c = n.cluster;
    if (c === null) return;
    for (const out of c.drainOutbound()) this.send(n, out);
    for (const e of c.drainEvents()) this.observe(n, e);
    let t = c.nextDeadlineMs();
    if (t <= this.nowMs) t = this.nowMs + 1;
    if (n.tickAtMs <= this.nowMs || t < n.tickAtMs) {
      n.tickAtMs = t;
      n.tickVersion++;
      this.push({ at: t, seq: 0, kind: "tick", node: n.index, version: n.tickVersion });
    }
  }

  private send(n: SimNode, out: Outbound): void {
    this.messagesSent++;
    this.opts.onSend?.(n.index, out);
    const dest = this.byAddr.get(out.addr);
    if (dest === undefined) return;
    const destId = (this.nodes[dest] as SimNode).id;
    if (this.splitBetween(n.id, destId)) return;
    if (this.rng.chance(this.network.lossRate)) return;
    const copies = this.rng.chance(this.network.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.rng.range(this.network.delayMinMs, this.network.delayMaxMs);
      this.push({ at: this.nowMs + delay, seq: 0, kind: "deliver", from: n.id, fromIndex: n.index, toAddr: out.addr, payload: out.payload });
    }
  }

  private observe(n: SimNode, e: ClusterEvent): void {
    if (this.opts.traceMessages !== false) this.trace.text(`e${this.nowMs}:${n.id}:${JSON.stringify(e)}`);
    this.opts.onEvent?.(n.index, e, this.nowMs);
    switch (e.kind) {
      case "member-dead":
      case "member-suspect":
        if (e.id === n.id) this.violation(`${n.id} declared itself ${e.kind === "member-dead" ? "dead" : "suspect"}`);
        this.checkIncarnation(n, e.id, e.incarnation);
        return;
      case "member-joined":
      case "member-alive":
      case "member-left":
      case "member-updated":
        this.checkIncarnation(n, e.id, e.incarnation);
        return;
      case "self-refuted":
        this.checkIncarnation(n, n.id, e.incarnation);
        return;
      case "member-reaped":
        n.seenIncarnation.delete(e.id);
        return;
      case "replica-reset":
        // As node.ts does: stop, move the data aside, start again empty (a wiped disk).
        this.push({ at: this.nowMs, seq: 0, kind: "call", fn: () => {
          if (!n.running) return;
          this.kill(n.index);
          this.restart(n.index, { wipe: true });
        } });
        return;
      default:
        return;
    }
  }

  private checkIncarnation(n: SimNode, id: NodeId, inc: number): void {
    const last = n.seenIncarnation.get(id);
    if (last !== undefined && inc < last) this.violation(`${n.id} saw the incarnation of ${id} decrease ${last} -> ${inc}`);
    n.seenIncarnation.set(id, Math.max(inc, last ?? 0));
  }

  private violation(msg: string): void {
    if (this.violations.length < 100) this.violations.push(`t=${this.nowMs.toFixed(1)}ms ${msg}`);
  }

  /** Full scan of every running node's view: self never dead or suspect, incarnations never lower. */
  checkViews(): void {
    for (const n of this.nodes) {
      if (!n.running || n.cluster === null) continue;
      for (const m of n.cluster.members()) {
        if (m.id === n.id && (m.status === "dead" || m.status === "suspect")) this.violation(`${n.id} holds itself ${m.status}`);
        this.checkIncarnation(n, m.id, m.incarnation);
      }
    }
  }

  // ------------------------------------------------------------ faults

  private boot(n: SimNode): void {
    n.running = true;
    n.stalledUntilMs = 0;
    n.inbox = [];
    n.seenIncarnation = new Map();
    // Tombstone collection starts as the node's does (persist/replica.ts gcStartState).
    const { durable, quarantined } = gcStartState({ decision: this.lastDecision, stored: n.disk.gc, actor: n.store.actor, hasData: n.store.keys().length > 0, durability: { kind: "sync" } });
    n.disk.gc = durable;
    const disk = n.disk;
    const cluster = new Cluster({
      id: n.id,
      addr: n.addr,
      seeds: this.seeds,
      config: this.opts.config,
      env: { nowMs: () => this.nowMs, random: () => n.rng.next() },
      store: n.store,
      gc: { life: n.store.actor, quarantined, durable, persist: (st) => (disk.gc = st) },
    });
    n.cluster = cluster;
    n.store.setOnChange((k, d) => cluster.keyChanged(k, d));
    // An eviction that drops keys this actor wrote starts a new epoch on the disk first, as the
    // node's renewEpochSync does: a restart then continues as the new actor.
    n.store.setRenewActor?.(() => {
      const bytes = new Uint8Array(epochRandomBytes);
      for (let i = 0; i < bytes.length; i++) bytes[i] = this.identityRng.int(256);
      const epoch = epochFromRandom(bytes);
      disk.identity = { nodeId: n.id, epoch, folderIno: disk.folderIno };
      return replicaActor(n.id, epoch);
    });
    n.store.reportAll();
    this.byAddr.set(n.addr, n.index);
    n.tickAtMs = 0;
    this.afterStep(n);
  }

  /** Stops a node at once (kill -9): its in-flight messages to it are lost, its store is kept as on disk. */
  kill(i: number): void {
    const n = this.node(i);
    if (!n.running) return;
    n.running = false;
    n.cluster = null;
    n.inbox = [];
    this.byAddr.delete(n.addr);
    if (this.opts.traceMessages !== false) this.trace.text(`kill${this.nowMs}:${n.id}`);
  }

  /**
   * Stops a node cleanly (SIGTERM: drain, final fsync, the clean-stop marker written): its next
   * start keeps its actor, where a start after kill() begins a new epoch (persist/replica.ts).
   */
  stop(i: number): void {
    const n = this.node(i);
    if (!n.running) return;
    this.kill(i);
    n.disk.cleanStop = true;
  }

  /** A copy of node i's data folder as it is now (restore it later with restart(i, { restoreFrom })). */
  backup(i: number): SimBackup {
    const n = this.node(i);
    const gc = n.disk.gc;
    return { nodeIndex: i, disk: { ...n.disk, identity: n.disk.identity === null ? null : { ...n.disk.identity }, gc: { generation: gc.generation, ownGeneration: gc.ownGeneration, departed: [...gc.departed], members: [...gc.members], lives: [...gc.lives] } }, states: n.store.states(n.store.keys()) };
  }

  /**
   * Starts a killed node again under its id, with the actor the node would choose
   * (persist/replica.ts): the same after a plain restart, a new epoch after `wipe` (an empty
   * disk), `restoreFrom` (an older copy of its folder, put in a new folder) or `repairTo`
   * (--repair cut its damaged WAL back to this older state, in the same folder). Increments
   * only the lost disk had may be lost (see survivingAtLeast); every increment of the new
   * epoch must survive. `newAddress` makes it listen elsewhere.
   */
  restart(i: number, opts: { wipe?: boolean; restoreFrom?: SimBackup; repairTo?: SimBackup; newAddress?: boolean } = {}): void {
    const n = this.node(i);
    if (n.running) return;
    n.boot++;
    if (opts.newAddress === true) n.addr = `${n.id}@${n.boot}`;
    const restore = opts.restoreFrom;
    const repair = opts.repairTo;
    for (const b of [restore, repair]) if (b !== undefined && b.nodeIndex !== i) throw new RangeError(`backup of node ${b.nodeIndex} used on node ${i}`);
    const older = restore ?? repair;
    if (opts.wipe === true || older !== undefined) {
      const kept = older === undefined ? null : this.newStore(n.store.actor);
      kept?.mergeStates(older?.states ?? []);
      this.accountLostDisk(n, kept);
      // A restore is a copy in another folder (another inode), as cp or tar makes it; a
      // repair keeps the folder and its identity file.
      if (restore !== undefined) n.disk = { ...restore.disk, folderIno: String(this.nextFolderIno++) };
      else if (repair === undefined) n.disk = this.emptyDisk();
    }
    const actor = this.identify(n.id, n.disk, repair !== undefined);
    // What the new process recovers: nothing, the older state, or its own disk (under a new actor if the rules say so).
    const recovered = opts.wipe === true ? [] : older !== undefined ? older.states : actor !== n.store.actor ? n.store.states(n.store.keys()) : null;
    if (recovered !== null) {
      n.store = this.newStore(actor);
      n.store.mergeStates(recovered);
    }
    if (this.opts.traceMessages !== false) this.trace.text(`restart${this.nowMs}:${n.id}:${n.addr}:${opts.wipe === true}:${restore !== undefined}:${repair !== undefined}`);
    this.boot(n);
  }

  /**
   * n's disk is lost (replaced by nothing or by `kept`, an older copy): for its own actor and
   * for actors whose origin lost them earlier, what still surely exists is the most any other
   * replica (or the copy) holds.
   */
  private accountLostDisk(n: SimNode, kept: SimStore | null): void {
    if (this.opts.counterInvariant === false) return;
    const count = (st: SimStore, key: string, actor: string): number => {
      if (st.actorCount === undefined) throw new Error("wipe and restore need a store that reports per-actor counts");
      return st.actorCount(key, actor);
    };
    for (const key of n.store.keys()) {
      for (const actor of n.store.actors?.(key) ?? []) {
        const k = `${key}\u0000${actor}`;
        // Rows of this node's earlier epochs (a crash starts a new one) had this disk as origin too.
        const ownNode = actor === n.store.actor || parseReplicaActor(actor)?.nodeId === n.id;
        if (!ownNode && !this.survivingAtLeast.has(k)) continue; // its origin still has it
        let elsewhere = kept === null ? 0 : count(kept, key, actor);
        for (const o of this.nodes) if (o !== n) elsewhere = Math.max(elsewhere, count(o.store, key, actor));
        this.survivingAtLeast.set(k, Math.min(this.survivingAtLeast.get(k) ?? Number.POSITIVE_INFINITY, elsewhere));
      }
    }
  }

  /** The node neither ticks nor reads messages for `ms` (a GC pause); messages wait in its inbox. */
  stall(i: number, ms: number): void {
    const n = this.node(i);
    if (!n.running) return;
    n.stalledUntilMs = Math.max(n.stalledUntilMs, this.nowMs + ms);
    this.push({ at: n.stalledUntilMs, seq: 0, kind: "wake", node: i });
  }

  /** Splits the network: messages only flow within a group. Nodes in no group form one more group. */
  partitionInto(groups: ReadonlyArray<readonly number[]>): void {
    const p = new Map<NodeId, number>();
    for (const n of this.nodes) p.set(n.id, groups.length);
    groups.forEach((g, gi) => {
      for (const i of g) p.set(this.node(i).id, gi);
    });
    this.partition = p;
  }

  /** The network is split between the two: no message, and no call, goes from one to the other. */
  private splitBetween(a: NodeId, b: NodeId): boolean {
    return this.partition !== null && this.partition.get(a) !== this.partition.get(b);
  }

  heal(): void {
    this.partition = null;
  }

  leave(i: number): void {
    const n = this.node(i);
    n.cluster?.leave();
    this.afterStep(n);
  }

  /** `imdb admin member remove ID` against node i (ClusterDriver.removeMember): its news goes out with the next messages. */
  removeMember(i: number, id: NodeId): string {
    const n = this.node(i);
    if (n.cluster === null) return "not running";
    const r = n.cluster.removeMember(id);
    this.afterStep(n);
    return r.kind;
  }

  /**
   * Node i hands every key it holds to the owners they will have once it is gone, as
   * `imdb admin leave` does before announcing (Cluster.handOffPlan, mergeHandOff; the node's
   * HandOff calls are direct merges here, each target's answer immediate). null when every
   * target merged everything; else why not (a refused plan, a target cut off or refusing).
   */
  handOff(i: number): string | null {
    const n = this.node(i);
    if (n.cluster === null) return "not running";
    const c = n.cluster;
    // As ClusterHost.leave: a hand-off that fails calls the leave off (the node goes on).
    const calledOff = (why: string): string => (c.leaveCalledOff(), why);
    const plan = c.handOffPlan();
    if (plan.kind === "refused") return calledOff(plan.reason);
    for (const t of plan.targets) {
      const target = this.nodes.find((m) => m.id === t.id);
      if (target === undefined || target.cluster === null || !this.connected(i, target.index)) return calledOff(`${t.id} cannot be reached`);
      const stamp = c.readStamp();
      const r = target.cluster.mergeHandOff(n.id, n.store.states(t.keys), stamp);
      this.afterStep(target);
      if (r.kind !== "merged") return calledOff(`${t.id} refused the hand-off (${r.kind})`);
    }
    return null;
  }

  // ------------------------------------------------------------ workload and views

  /** A client increment acknowledged by node i; false if the node cannot take it (down or stalled). */
  increment(i: number, key: string, by: number): boolean {
    const n = this.node(i);
    if (!n.running || n.cluster === null || this.nowMs < n.stalledUntilMs) return false;
    // A lost disk's actor never writes again: its new writes would hide under its old counts.
    if (this.survivingAtLeast.has(`${key}\u0000${n.store.actor}`)) this.violation(`${n.id} increments ${key} as ${n.store.actor}, an actor whose disk was lost`);
    const delta = n.store.increment(key, by);
    n.cluster.broadcastDelta(delta);
    let perActor = this.acked.get(key);
    if (perActor === undefined) {
      perActor = new Map();
      this.acked.set(key, perActor);
    }
    perActor.set(n.store.actor, (perActor.get(n.store.actor) ?? 0) + by);
    this.afterStep(n);
    return true;
  }

  /**
   * Nodes i and j can call each other now (the network is not split between them: a forward or a
   * hand-off call across a split fails on real nodes, however alive each still lists the other),
   * list each other alive and each merges the other's data (see ProductHost.connected).
   */
  connected(i: number, j: number): boolean {
    const a = this.node(i);
    const b = this.node(j);
    if (a.cluster === null || b.cluster === null) return false;
    if (this.splitBetween(a.id, b.id)) return false;
    const alive = (x: SimNode, y: SimNode): boolean => x.cluster!.members().some((m) => m.id === y.id && m.status === "alive") && x.cluster!.acceptsDataFrom(y.id);
    return alive(a, b) && alive(b, a);
  }

  /** Node i is up and not stalled: it can answer a client now. */
  canServe(i: number): boolean {
    const n = this.node(i);
    // A quarantined replica (data of doubtful age) takes no client op, as node.ts refuses writes.
    return n.running && n.cluster !== null && this.nowMs >= n.stalledUntilMs && !n.cluster.collection().quarantined;
  }

  /** Sends the delta of a client op node i just applied to its store to its peers. */
  publish(i: number, delta: Uint8Array): void {
    const n = this.node(i);
    if (n.cluster === null) return;
    n.cluster.broadcastDelta(delta);
    this.afterStep(n);
  }

  node(i: number): SimNode {
    const n = this.nodes[i];
    if (n === undefined) throw new RangeError(`no node ${i}`);
    return n;
  }

  isRunning(i: number): boolean {
    return this.node(i).running;
  }

  idOf(i: number): NodeId {
    return this.node(i).id;
  }

  cluster(i: number): Cluster | null {
    return this.node(i).cluster;
  }

  store(i: number): SimStore {
    return this.node(i).store;
  }

  view(i: number): MemberView[] {
    return this.node(i).cluster?.members() ?? [];
  }

  runningIndexes(): number[] {
    return this.nodes.filter((n) => n.running).map((n) => n.index);
  }

  /** Why the running nodes have not converged yet, or null if they have (membership and data). */
  divergence(): string | null {
    const running = this.nodes.filter((n) => n.running && n.cluster !== null);
    for (const a of running) {
      const view = new Map((a.cluster as Cluster).members().map((m) => [m.id, m]));
      for (const b of running) {
        const m = view.get(b.id);
        if (m === undefined || m.status !== "alive" || m.address !== b.addr) {
          return `${a.id} sees ${b.id} as ${m === undefined ? "unknown" : `${m.status} at ${m.address}`}`;
        }
      }
    }
    const first = running[0];
    if (first === undefined) return null;
    for (const n of running) {
      if (n.cluster?.rootHash() !== first.cluster?.rootHash()) {
        const differ = first.store.keys().find((k) => n.store.digest(k) !== first.store.digest(k)) ?? n.store.keys().find((k) => first.store.digest(k) === undefined);
        return `${n.id} and ${first.id} hold different data${differ === undefined ? "" : ` (first differing key: ${differ})`}`;
      }
    }
    if (this.opts.counterInvariant === false) return null;
    for (const n of running) {
      const bad = this.counterMismatch(n.store);
      if (bad !== null) return `${n.id}: ${bad}`;
    }
    return null;
  }

  /**
   * Counters equal the acknowledged increments: per key the sum over actors, and where a
   * wiped disk may have lost some, per actor between what surely survived and what was acked.
   */
  private counterMismatch(st: SimStore): string | null {
    for (const key of st.keys()) {
      const perActor = this.acked.get(key);
      if (perActor === undefined) return `${key} exists but was never incremented`;
      for (const actor of st.actors?.(key) ?? []) if (!perActor.has(actor)) return `${key} holds counts of ${actor}, which never incremented it`;
    }
    for (const [key, perActor] of this.acked) {
      let sum = 0;
      let wiped = false;
      for (const [actor, acked] of perActor) {
        sum += acked;
        const least = this.survivingAtLeast.get(`${key}\u0000${actor}`);
        if (least === undefined) continue;
        wiped = true;
        const has = st.actorCount?.(key, actor) ?? 0;
        if (has < least || has > acked) return `${key} holds ${has} from wiped ${actor}, expected ${least}..${acked}`;
      }
      if (!wiped && st.value(key) !== sum) return `${key} = ${st.value(key)}, acknowledged increments sum to ${sum}`;
      if (wiped && st.actorCount !== undefined) {
        for (const [actor, acked] of perActor) {
          if (this.survivingAtLeast.has(`${key}\u0000${actor}`)) continue;
          if (st.actorCount(key, actor) !== acked) return `${key} holds ${st.actorCount(key, actor)} from ${actor}, acknowledged ${acked}`;
        }
      }
    }
    return null;
  }

  traceHash(): string {
    return this.trace.hex();
  }
}
