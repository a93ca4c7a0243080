// Tombstone collection: a deleted key's record is dropped once every member holds it and nothing older can reach this node again.
//
// A delete leaves the key's emptied states behind (its *record*, docs/architecture.md "Delete"),
// so that a write it removed, arriving late, meets the record and stays removed. Dropping the
// record is safe only when no such write can arrive any more. The rule here, per record:
//
// 1. Every member holds it, durably. This node sends the records it would drop to every
//    member (`gc-probe`, one *round*); each member joins them into its own state, like any
//    anti-entropy state, and answers `gc-confirm` once that is durable (the confirmation is
//    held by the WAL gate as a delta ack is). Members are everyone in the membership view that
//    has not left: a member that is down holds collection back until it is declared dead and
//    reaped (deadReapAfterMs), exactly as the issue asks. Who confirmed which round is a
//    version vector over members; a round is stable when that vector covers the round's
//    requirement vector, compared in batch through the accel clock-compare primitive.
// 2. Nothing older is still on its way. Each confirmation names the last delta its sender had
//    queued for this node (`sigma`): the round waits until that stream has delivered everything
//    up to it (deltas at or below the contiguous mark are never merged twice, deltas.ts). It
//    also carries how many confirmations the sender had sent (`confirms`); anti-entropy states
//    carry the same counter from when they were read (AeStamp), and once a round is collected,
//    states a member read before its confirmation are dropped.
// 3. The record did not change meanwhile: the engine collects a key only if its digest is still
//    the one probed.
//
// A record collected here may still sit on a member that has not collected it yet; its
// anti-entropy would send it back. Keys collected recently are remembered for a while
// (collectedGraceMs) with a hash of the record, so that a copy of that very record, or a probe
// for it, is acknowledged without re-creating the key; any other state of the key (a write
// made after the delete) is merged as usual.
//
// Lives that may hold data older than a collection. A member removed from the view (left or
// reaped) no longer holds collection back, so if that life returns with its data it could
// bring back what was collected without it: every node remembers the lives it saw depart,
// exchanges a `gc-hello` (with its life) with each member before accepting any replica data
// from it, and tells a departed life so; that life then discards its data and rejoins as a
// new, empty replica (event `replica-reset`). A life that starts from data of doubtful age (a
// restored copy, a repaired log, an unclean stop in a non-sync mode: persist/replica.ts)
// starts *quarantined*: it takes no writes and exchanges no data until every member has told
// it its collection generation; if any member collected since the generation stored with the
// data, the data may hold collected deletes' victims and the life resets, otherwise it goes on.
// The generation counts collections: a collection raises it above every confirming member's,
// so a copy made before a member's confirmation always carries a lower one.

import type { Clocks, PackedClocks } from "../accel/api.ts";
import { ClockOrder } from "../accel/api.ts";
import type { ClusterConfig } from "./config.ts";
import type { DeltaPush } from "./deltas.ts";
import type { Outbox } from "./outbox.ts";
import type { ReplicaStore } from "./store.ts";
import type { ClusterEvent, Env, MemberStatus, NodeId } from "./types.ts";
import { formerLivesMax, type AeStamp, type GcHelloMsg, type Message } from "./wire.ts";
import { aeReplyBytesMax, collectedRememberedMax } from "../limits.ts";

/** Records one probe carries at most (and bytes: aeReplyBytesMax), so a probe fits one envelope. */
export const gcProbeKeysMax = 4096;
/** Rounds in flight at once. */
export const gcRoundsInflightMax = 4;
/** A round not confirmed by every member after this long is dropped; its keys are probed again later (ms). */
export const gcRoundTimeoutMs = 15_000;
/**
 * A round every member confirmed waits this long for their delta streams to deliver what they
 * had queued (condition 2) before it is dropped (ms). Probing again would not help: the new
 * round's confirmations name the streams' tails then, further on; under a backlog that takes
 * longer than gcRoundTimeoutMs to drain, every round timed out and none was ever collected until
 * the backlog was gone. A stream that overflows raises its floor and so delivers at once, and a
 * member that leaves drops the round anyway, so this bound only matters for a stream that stalls.
 */
export const gcConfirmedRoundTimeoutMs = 10 * gcRoundTimeoutMs;
/**
 * How long a node that forgot collected keys (collectedGraceMs) still recognises their records
 * when members send them back (ms), measured from the last time one came back (or a key was
 * forgotten). Members collect the same key in their own rounds, up to minutes apart after a mass
 * delete; without this, a member's probe or anti-entropy copy of a record this node had
 * forgotten re-created it here, to be collected again (a 1M-key delete on 3 nodes collected
 * ~250k keys twice and its tombstone count rose again: `imdb bench collect`). While members
 * still hold such records they send them every few seconds, which keeps the set; once none has
 * come for this long, and every member answers (see tick: one that is suspect or dead keeps
 * it), it is dropped (should one come later, it is merged and collected again: work, never a
 * resurrection).
 */
export const collectedEchoGraceMs = 20_000;
/** Most forgotten keys recognised that way (8 bytes each, twice that in table room; further ones may be collected twice). */
export const collectedEchoKeysMax = 2_000_000;

/**
 * A set of 52-bit fingerprints in one open-addressing Float64Array: 16 bytes per entry at most
 * (a Map of numbers took ~56 bytes, and JS heap a node keeps after a mass delete).
 */
class FingerprintSet {
  private t = new Float64Array(1024);
  size = 0;

  add(fp: number): void {
    if ((this.size + 1) * 2 > this.t.length) this.grow();
    if (this.place(this.t, fp + 1)) this.size++;
  }

  has(fp: number): boolean {
    const t = this.t;
    const mask = t.length - 1;
    const v = fp + 1; // 0 marks an empty slot
    for (let i = (v >>> 0) & mask; ; i = (i + 1) & mask) {
      const x = t[i] as number;
      if (x === v) return true;
      if (x === 0) return false;
    }
  }

  /** Puts v (non-zero) into t; false if it was there. */
  private place(t: Float64Array, v: number): boolean {
    const mask = t.length - 1;
    for (let i = (v >>> 0) & mask; ; i = (i + 1) & mask) {
      const x = t[i] as number;
      if (x === v) return false;
      if (x === 0) {
        t[i] = v;
        return true;
      }
    }
  }

  private grow(): void {
    const next = new Float64Array(this.t.length * 2);
    for (const v of this.t) if (v !== 0) this.place(next, v);
    this.t = next;
  }
}

/** The fingerprint of a forgotten key's record: the key's UTF-16 code units hashed from the record's hash. */
function echoPrint(key: string, record: number): number {
  let h1 = (0x811c9dc5 ^ record) >>> 0;
  let h2 = (0x01000193 ^ Math.floor(record / 0x100000000) ^ key.length) >>> 0;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x01000197) ^ (h1 >>> 15);
  }
  return (h1 >>> 0) * 0x100000 + ((h2 >>> 0) & 0xfffff);
}

/** A member's hello is re-sent this often until it answers (ms). */
export const gcHelloIntervalMs = 1_000;
/** Collected keys remembered so that a peer's copy of the record does not re-create them (ms). */
export const collectedGraceMs = 60_000;
/** Most collected keys remembered at once (limits.ts; oldest forgotten first: a forgotten one only costs a re-collection). */
export { collectedRememberedMax };
/** Departed lives remembered (oldest forgotten first). */
export const departedLivesMax = 4096;
/** How often rounds in flight are looked at for stability (ms). */
export const gcSettleCheckMs = 10;
/** Time between two scans for records to probe while there are none (ms). */
export const gcIdleScanIntervalMs = 1_000;

/** A 52-bit hash of a record's bytes (two FNV-1a lanes): tells the record collected here from any other state of the key. */
export function recordHash(b: Uint8Array): number {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ b.length;
  for (let i = 0; i < b.length; i++) {
    const c = b[i] as number;
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x01000197) ^ (h1 >>> 15);
  }
  return (h1 >>> 0) * 0x100000 + ((h2 >>> 0) & 0xfffff);
}

export type GcMessage = Extract<Message, { kind: "gc-hello" | "gc-probe" | "gc-confirm" }>;

/** What survives a restart (the node persists it; see GcOptions.persist). */
export interface GcDurableState {
  /** Collection generation (see the top of this file). */
  generation: number;
  /**
   * The generation this node's own last collection set (0: none yet). A departure is recorded
   * with it, so that a life that comes back is refused only if this node collected anything
   * without it since.
   */
  ownGeneration: number;
  /**
   * Lives seen departing, `${nodeId}/${life}@${ownGeneration then}` (a life is the replica
   * actor's epoch).
   */
  departed: string[];
  /**
   * Members this replica has exchanged data with and not seen depart. The membership view is
   * not stored, so after a restart a member may be missing from it for a while: it still
   * holds collection back until it is back in the view, or until deadReapAfterMs passed
   * without it (then it counts as reaped, as it would have been had it been in the view).
   */
  members: string[];
  /**
   * The lives this folder's data comes from, oldest first, the current one last: a life that
   * starts over data an earlier life wrote (a restart under a new epoch) still holds what that
   * life held, so a member that saw any of them depart must not take its data.
   */
  lives: string[];
}

export interface GcOptions {
  self: NodeId;
  /** This replica's life (its actor, persist/replica.ts): departures are remembered per life. */
  life: string;
  /** Data of doubtful age: hold back until every member has answered (see the top of this file). */
  quarantined: boolean;
  durable: GcDurableState;
  /**
   * Called with the new durable state before a collection relies on it (synchronously: the
   * node writes and syncs a small file). The simulator keeps it in memory across restarts.
   */
  persist: (s: GcDurableState) => void;
  clocks: Clocks;
  /** Seeds configured: with none and no member known, this node is alone and collects by itself. */
  seeds: number;
  /** Collected keys remembered at most (default collectedRememberedMax; tests lower it). */
  rememberedMax?: number;
}

interface Member {
  id: NodeId;
  addr: string;
  status: MemberStatus;
}

interface Confirm {
  streamEpoch: number;
  sigma: number;
  confirms: number;
}

interface Round {
  id: number;
  sentAtMs: number;
  /** record: a hash of the record's bytes as probed (see skipsKey). */
  entries: Array<{ key: string; digest: bigint; record: number }>;
  required: NodeId[];
  confirms: Map<NodeId, Confirm>;
}

/** Per member: the handshake and what this node knows of it. */
interface Peer {
  /** Its hello was accepted: replica data from it is merged. */
  accepted: boolean;
  life: string | null;
  /** When this node last sent it a (non-reply) hello. */
  helloSentMs: number;
  /** Quarantine: the generation it answered with (null: not answered yet). */
  generation: number | null;
}

export class TombstoneCollector {
  private durable: GcDurableState;
  private quarantined: boolean;
  private readonly peers = new Map<NodeId, Peer>();
  private nextRound = 1;
  private readonly rounds = new Map<number, Round>();
  /** Keys in a round in flight (not probed twice at once). */
  private readonly inflight = new Set<string>();
  private cursor = 0;
  private nextScanAtMs = 0;
  /** Confirmations this node has sent (see AeStamp). */
  private confirmsSent = 0;
  /** Per member: anti-entropy states read before this confirmation count are dropped. */
  private readonly aeFloors = new Map<NodeId, AeStamp>();
  /** Collected keys -> until when they are remembered (insertion order = expiry order). */
  private readonly collected = new Map<string, { until: number; record: number }>();
  /** Member index for the stability vectors (stable within a process). */
  private readonly memberIndex = new Map<NodeId, number>();
  /** Per member index: highest round up to which every round requiring it is confirmed or settled. */
  private seen: number[] = [];
  /** Totals, for metrics. */
  keysCollected = 0;
  roundsCompleted = 0;
  roundsAbandoned = 0;
  statesDroppedAsStale = 0;
  /** Collected keys forgotten before collectedGraceMs because too many were remembered (should stay 0: see startRounds). */
  forgottenEarly = 0;
  private resetAsked = false;

  constructor(
    private readonly config: ClusterConfig,
    private readonly env: Env,
    private readonly store: ReplicaStore,
    private readonly outbox: Outbox,
    private readonly events: ClusterEvent[],
    private readonly deltas: DeltaPush,
    private readonly opts: GcOptions,
    /** Called with each collected key once it is no longer remembered. */
    private readonly forgotten: (key: string) => void = () => {},
  ) {
    this.durable = { ...opts.durable, departed: [...opts.durable.departed], members: [...opts.durable.members], lives: [...opts.durable.lives] };
    this.quarantined = opts.quarantined;
    this.startedMs = env.nowMs();
    this.rememberedMax = opts.rememberedMax ?? collectedRememberedMax;
  }

  private readonly startedMs: number;
  private readonly rememberedMax: number;

  get generation(): number {
    return this.durable.generation;
  }

  /** A life of doubtful data that has not heard from every member yet: it takes no writes. */
  get isQuarantined(): boolean {
    return this.quarantined;
  }

  /** Collected keys still remembered. */
  get rememberedCollected(): number {
    return this.collected.size;
  }

  /** Forgotten collected keys' records (echoPrint) recognised until echoUntilMs (see collectedEchoGraceMs). */
  private echoes = new FingerprintSet();
  private echoUntilMs = 0;

  /** Forgotten collected keys still recognised (a test and metrics figure). */
  get echoesRemembered(): number {
    return this.echoes.size;
  }

  /** Is `key` a key collected here recently (still remembered)? */
  remembers(key: string): boolean {
    return this.collected.has(key);
  }

  /** May replica data (deltas, anti-entropy states, probes) from `from` be merged? */
  accepts(from: NodeId): boolean {
    return !this.quarantined && this.peers.get(from)?.accepted === true;
  }

  /** Anti-entropy states from `from` read at `stamp`: false when they predate a collection that relied on `from`. */
  acceptsStates(from: NodeId, stamp: AeStamp | undefined): boolean {
    const floor = this.aeFloors.get(from);
    if (floor === undefined) return true;
    if (stamp === undefined || (stamp.epoch === floor.epoch && stamp.confirms < floor.confirms)) {
      this.statesDroppedAsStale++;
      return false;
    }
    return true;
  }

  /** The stamp this node puts on the anti-entropy states it reads now. */
  stamp(): AeStamp {
    return { epoch: this.deltas.streamEpoch, confirms: this.confirmsSent };
  }

  /**
   * Keys collected recently that this node lacks: an incoming copy of their record (from a
   * member that has not collected them yet) is not merged. A key this node holds again is
   * not skipped.
   */
  skipsKey(key: string, state: Uint8Array): boolean {
    const c = this.collected.get(key);
    // Only the very record collected here: a state holding anything more (a write made after
    // the delete, which a node that was away must still receive) is merged like any other.
    if (c !== undefined) return c.record === recordHash(state) && this.store.digest(key) === undefined;
    // A key forgotten since: its record is recognised, not merged, while members still send it
    // (collectedEchoGraceMs). Safe as the remembered case is: this node collected that record
    // itself, after every member held it and their streams to it had delivered what they had
    // queued before, so nothing older than the record can still reach it; re-creating the
    // record would only protect against what the collection already ruled out.
    if (this.echoes.size === 0 || !this.echoes.has(echoPrint(key, recordHash(state))) || this.store.digest(key) !== undefined) return false;
    this.echoUntilMs = this.env.nowMs() + collectedEchoGraceMs;
    return true;
  }

  /** A collected key is forgotten: its record is still recognised a while (see skipsKey). */
  private echo(key: string, record: number, now: number): void {
    if (this.echoes.size >= collectedEchoKeysMax) return;
    this.echoes.add(echoPrint(key, record));
    this.echoUntilMs = Math.max(this.echoUntilMs, now + collectedEchoGraceMs);
  }

  /** A member left the view (left and reaped, or reaped dead): remember its life as departed. */
  memberGone(id: NodeId): void {
    this.dirty = true;
    const p = this.peers.get(id);
    this.peers.delete(id);
    this.aeFloors.delete(id);
    let changed = false;
    const at = this.durable.members.indexOf(id);
    if (at >= 0) {
      this.durable.members.splice(at, 1);
      this.membersVersion++;
      changed = true;
    }
    if (p?.life != null && this.departedAt(`${id}/${p.life}`) === undefined) {
      this.durable.departed.push(`${id}/${p.life}@${this.durable.ownGeneration}`);
      if (this.durable.departed.length > departedLivesMax) this.durable.departed.shift();
      changed = true;
    }
    if (changed) this.opts.persist(this.snapshot());
  }

  /**
   * Members this replica has exchanged data with and not seen depart (stored: they outlive a
   * restart, which the membership view does not). A partitioned cluster places partitions over
   * them too (cluster.ts), so a restarted node does not place keys over the few members it has
   * heard from again so far.
   */
  get knownMembers(): readonly string[] {
    return this.durable.members;
  }

  /** Raised whenever knownMembers changes. */
  membersVersion = 0;

  /** The member was declared dead and came back, or restarted: it says hello again. */
  memberRevived(id: NodeId): void {
    const p = this.peers.get(id);
    if (p !== undefined) p.helloSentMs = Number.NEGATIVE_INFINITY;
    this.nextHelloAtMs = Number.NEGATIVE_INFINITY;
    this.dirty = true;
  }

  /** When tick() next has work: a hello to repeat, a scan for records, rounds to settle. */
  nextDeadlineMs(): number {
    if (this.dirty) return this.env.nowMs();
    const settle = this.rounds.size > 0 ? this.lastTickMs + gcSettleCheckMs : Number.POSITIVE_INFINITY;
    return Math.min(settle, this.nextHelloAtMs, this.quarantined ? this.lastTickMs + gcHelloIntervalMs : this.nextScanAtMs);
  }

  /** Membership changed, or a message asks for an answer at the next tick. */
  private dirty = true;
  private lastTickMs = Number.NEGATIVE_INFINITY;

  /** Does tick() have anything to do now? (It is cheap to ask; tick reads the whole view.) */
  due(): boolean {
    if (this.dirty) return true;
    const t = this.nextDeadlineMs();
    return this.env.nowMs() >= t;
  }

  private nextHelloAtMs = Number.NEGATIVE_INFINITY;

  tick(view: readonly Member[]): void {
    const now = this.env.nowMs();
    this.dirty = false;
    this.lastTickMs = now;
    const others = view.filter((m) => m.id !== this.opts.self && m.status !== "left");
    this.viewIds = others.filter((m) => m.status === "alive" || m.status === "suspect").map((m) => m.id);
    // Known members missing from the view (after a restart) hold collection back like dead ones.
    const listed = new Set<string>(others.map((m) => m.id));
    for (const id of [...this.durable.members]) {
      if (listed.has(id)) continue;
      // Not let go of here when the view lists it as left: that may be a member rejoining under
      // a new life whose alive has not arrived yet, and recording that life as departed made it
      // discard the writes it took meanwhile (chaos "rebalance"). Placement leaves it out
      // (Cluster.placementMembers); collection waits for it as before.
      if (now - this.startedMs >= this.config.deadReapAfterMs) this.memberGone(id as NodeId);
      else others.push({ id: id as NodeId, addr: "", status: "dead" });
    }
    let nextHello = Number.POSITIVE_INFINITY;
    for (const m of others) {
      let p = this.peers.get(m.id);
      if (p === undefined) {
        p = { accepted: false, life: null, helloSentMs: Number.NEGATIVE_INFINITY, generation: null };
        this.peers.set(m.id, p);
      }
      const waiting = !p.accepted || (this.quarantined && p.generation === null);
      if (!waiting || (m.status !== "alive" && m.status !== "suspect")) continue;
      if (now - p.helloSentMs >= gcHelloIntervalMs) {
        p.helloSentMs = now;
        this.outbox.send(m.id, m.addr, this.hello(false, false));
      }
      nextHello = Math.min(nextHello, p.helloSentMs + gcHelloIntervalMs);
    }
    this.nextHelloAtMs = nextHello;
    if (this.quarantined) {
      this.checkQuarantine(others);
      return;
    }
    // A member that is not answering (suspect, or dead and not yet reaped) may come back still
    // holding records this node collected and forgot meanwhile, and send them as soon as it is
    // back: their fingerprints are kept while it is away, however long (a paused process sends
    // no echo; measured in `imdb bench collect` with forced GC pauses, records forgotten here
    // came back and were collected twice). A reaped member returns as a new replica, refilled
    // by anti-entropy, so nothing it held is merged.
    if (this.echoes.size > 0 && others.some((m) => m.status !== "alive")) this.echoUntilMs = Math.max(this.echoUntilMs, now + collectedEchoGraceMs);
    this.expireCollected(now);
    this.settleRounds(others, now);
    this.startRounds(others, now);
  }

  handle(from: NodeId, fromAddr: string, msg: GcMessage): void {
    switch (msg.kind) {
      case "gc-hello":
        this.onHello(from, fromAddr, msg);
        return;
      case "gc-probe":
        this.onProbe(from, fromAddr, msg);
        return;
      case "gc-confirm":
        this.onConfirm(from, msg);
        return;
    }
  }

  // ------------------------------------------------------------ handshake and quarantine

  private hello(reply: boolean, departed: boolean): GcHelloMsg {
    const formerLives = this.durable.lives.filter((l) => l !== this.opts.life).slice(-formerLivesMax);
    return { kind: "gc-hello", reply, life: this.opts.life, formerLives, generation: this.durable.generation, quarantined: this.quarantined, departed, rejoined: this.rejoinedCount() };
  }

  /** The own generation when `tag` (`${id}/${life}`) departed, or undefined if it did not. */
  private departedAt(tag: string): number | undefined {
    const prefix = `${tag}@`;
    for (const d of this.durable.departed) if (d.startsWith(prefix)) return Number(d.slice(prefix.length));
    return undefined;
  }

  /**
   * Did any of these lives of `from` depart while this node collected since (so its data may
   * hold what those collections dropped)? Lives that departed with nothing collected since are
   * forgotten: nothing stands between them and this node's data.
   */
  private departedSinceCollection(from: NodeId, lives: readonly string[]): boolean {
    let hit = false;
    let forgot = false;
    for (const l of lives) {
      const tag = `${from}/${l}`;
      const at = this.departedAt(tag);
      if (at === undefined) continue;
      if (this.durable.ownGeneration > at) hit = true;
      else {
        this.durable.departed = this.durable.departed.filter((d) => !d.startsWith(`${tag}@`));
        forgot = true;
      }
    }
    // One synced write for all the lives forgotten, not one per life.
    if (forgot) this.opts.persist(this.snapshot());
    return hit;
  }

  /** Members back in the view that this node saw depart (by node id): how much of the cluster it was cut off from. */
  private rejoinedCount(): number {
    const gone = new Set(this.durable.departed.map((t) => t.slice(0, t.indexOf("/"))));
    let n = 0;
    for (const id of this.viewIds) if (gone.has(id)) n++;
    return n;
  }

  /** Ids of the members alive or suspect at the last tick. */
  private viewIds: NodeId[] = [];

  private onHello(from: NodeId, fromAddr: string, msg: GcHelloMsg): void {
    this.dirty = true;
    let p = this.peers.get(from);
    if (p === undefined) {
      p = { accepted: false, life: null, helloSentMs: Number.NEGATIVE_INFINITY, generation: null };
      this.peers.set(from, p);
    }
    // A quarantined life (doubtful data) claims nothing against others: its own records of who
    // departed may be as old as its data.
    const departed = !this.quarantined && this.departedSinceCollection(from, [msg.life, ...msg.formerLives]);
    if (msg.departed && msg.reply) {
      // We are a life that member saw depart and collected without since: what we hold may
      // predate its collections. When we saw it depart and collected without it too (a partition
      // longer than the reap timeout, each side collecting on its own), one side must yield, the
      // same one on both: the side that sees more of the members it reaped back (the smaller side
      // of the partition), then the larger id.
      const mine = this.rejoinedCount();
      const yields = !departed || mine > msg.rejoined || (mine === msg.rejoined && this.opts.self > from);
      if (yields) {
        this.askReset(`member ${from} saw this replica (${this.opts.life}) leave or be reaped${departed ? " while this replica saw it go too (a partition longer than the reap timeout); this side yields" : ""}`);
        return;
      }
    }
    if (p.life !== null && p.life !== msg.life) {
      // A new life of that member: what its old life confirmed says nothing about this one.
      this.aeFloors.delete(from);
    }
    p.life = msg.life;
    p.accepted = !departed && !msg.quarantined;
    if (p.accepted && !this.durable.members.includes(from)) {
      this.durable.members.push(from);
      this.membersVersion++;
      this.opts.persist(this.snapshot());
    }
    if (msg.reply) p.generation = msg.generation;
    this.raiseGeneration(msg.generation, false);
    // A departed life is told so whatever it sent (it may think it knows us already and never ask).
    if (!msg.reply || departed) this.outbox.send(from, fromAddr, this.hello(true, departed));
  }

  private checkQuarantine(others: readonly Member[]): void {
    if (others.length === 0) {
      // No member known, now or before: a single node goes on (one with seeds has none either
      // until it has joined, but a member it had is in durable.members).
      if (this.opts.seeds === 0) this.liftQuarantine();
      return;
    }
    for (const m of others) if (this.peers.get(m.id)?.generation == null) return;
    let newest = 0;
    for (const m of others) newest = Math.max(newest, this.peers.get(m.id)?.generation ?? 0);
    if (newest > this.opts.durable.generation) {
      this.askReset(`members collected deletes (generation ${newest}) after this data was stored (generation ${this.opts.durable.generation})`);
      return;
    }
    this.liftQuarantine();
  }

  private liftQuarantine(): void {
    this.quarantined = false;
    this.events.push({ kind: "gc-quarantine-lifted", generation: this.durable.generation });
    // Members that answered while we were quarantined did not accept us: say hello again.
    for (const p of this.peers.values()) {
      p.helloSentMs = Number.NEGATIVE_INFINITY;
      p.accepted = false;
    }
    this.nextHelloAtMs = Number.NEGATIVE_INFINITY;
  }

  private askReset(reason: string): void {
    if (this.resetAsked) return;
    this.resetAsked = true;
    this.quarantined = true; // take nothing more in until the node has reset
    this.events.push({ kind: "replica-reset", reason });
  }

  private raiseGeneration(g: number, persist: boolean): void {
    if (g <= this.durable.generation) return;
    this.durable.generation = g;
    if (persist) this.opts.persist(this.snapshot());
  }

  private snapshot(): GcDurableState {
    return { ...this.durable, departed: [...this.durable.departed], members: [...this.durable.members], lives: [...this.durable.lives] };
  }

  // ------------------------------------------------------------ probing a member's records

  private onProbe(from: NodeId, fromAddr: string, msg: Extract<GcMessage, { kind: "gc-probe" }>): void {
    this.raiseGeneration(msg.generation, false);
    const entries = msg.entries.filter(([key, state]) => !this.skipsKey(key, state));
    if (entries.length > 0) this.store.mergeStates(entries);
    this.confirmsSent++;
    this.outbox.send(from, fromAddr, {
      kind: "gc-confirm",
      round: msg.round,
      streamEpoch: this.deltas.streamEpoch,
      sigma: this.deltas.outstandingUpTo(from),
      confirms: this.confirmsSent,
      generation: this.durable.generation,
    });
  }

  private onConfirm(from: NodeId, msg: Extract<GcMessage, { kind: "gc-confirm" }>): void {
    this.raiseGeneration(msg.generation, false);
    const r = this.rounds.get(msg.round);
    if (r === undefined || !r.required.includes(from)) return;
    r.confirms.set(from, { streamEpoch: msg.streamEpoch, sigma: msg.sigma, confirms: msg.confirms });
    if (r.confirms.size === r.required.length) this.dirty = true;
  }

  private startRounds(others: readonly Member[], now: number): void {
    if (this.rounds.size >= gcRoundsInflightMax || now < this.nextScanAtMs) return;
    if (this.store.absentKeys === undefined || this.store.collect === undefined) return this.idle(now);
    if (this.store.absentCount !== undefined && this.store.absentCount() <= this.inflight.size) return this.idle(now);
    // Every member must be reachable and have shaken hands: a round one of them cannot
    // confirm would only time out.
    for (const m of others) {
      if (m.status !== "alive" && m.status !== "suspect") return this.idle(now);
      if (this.peers.get(m.id)?.accepted !== true) return this.idle(now);
    }
    if (others.length === 0 && this.opts.seeds > 0) return this.idle(now);
    while (this.rounds.size < gcRoundsInflightMax) {
      // Back-pressure: a round collects up to gcProbeKeysMax keys, each remembered for
      // collectedGraceMs. Starting rounds past the bound would force the oldest remembered
      // keys out before their grace is over, and a peer's copy of such a record re-creates it,
      // to be collected again (issue 13: a 1M-key delete churned that way for minutes). So
      // collection waits for remembered keys to expire instead: at most rememberedMax keys
      // per collectedGraceMs.
      if (this.collected.size + this.inflight.size + gcProbeKeysMax > this.rememberedMax) return this.idle(now);
      const entries: Array<{ key: string; digest: bigint; record: number }> = [];
      const records: Array<[string, Uint8Array]> = [];
      let bytes = 0;
      const startCursor = this.cursor;
      do {
        const page = this.store.absentKeys(this.cursor, gcProbeKeysMax - entries.length);
        for (const it of page.items) {
          if (this.inflight.has(it.key)) continue;
          entries.push({ key: it.key, digest: it.digest, record: recordHash(it.state) });
          records.push([it.key, it.state]);
          bytes += it.key.length * 3 + it.state.length + 8;
        }
        this.cursor = page.cursor;
      } while (this.cursor !== 0 && this.cursor !== startCursor && entries.length < gcProbeKeysMax && bytes < aeReplyBytesMax);
      if (entries.length === 0) return this.idle(now);
      const round: Round = { id: this.nextRound++, sentAtMs: now, entries, required: others.map((m) => m.id), confirms: new Map() };
      for (const e of entries) this.inflight.add(e.key);
      this.rounds.set(round.id, round);
      for (const m of others) this.outbox.send(m.id, m.addr, { kind: "gc-probe", round: round.id, generation: this.durable.generation, entries: records });
      if (others.length === 0) this.settleRounds(others, now);
      if (this.cursor === 0) return this.idle(now);
    }
  }

  /** Nothing to probe now (or members missing): look again after gcIdleScanIntervalMs. */
  private idle(now: number): void {
    this.nextScanAtMs = now + gcIdleScanIntervalMs;
  }

  /**
   * Collects every round whose members all confirmed (stability: the confirmation vector covers
   * the round's requirement, compared in one batch) and whose members' streams have delivered
   * what they had queued before confirming; drops rounds that timed out or whose membership changed.
   */
  private settleRounds(others: readonly Member[], now: number): void {
    if (this.rounds.size === 0) return;
    const members = new Set(others.map((m) => m.id));
    const candidates: Round[] = [];
    for (const r of [...this.rounds.values()]) {
      // A member that joined since the round was sent never saw it: the round cannot settle.
      let joined = false;
      for (const id of members) if (!r.required.includes(id)) joined = true;
      const timeoutMs = r.confirms.size === r.required.length ? gcConfirmedRoundTimeoutMs : gcRoundTimeoutMs;
      if (joined || now - r.sentAtMs > timeoutMs) {
        this.dropRound(r, false);
        continue;
      }
      candidates.push(r);
    }
    if (candidates.length === 0) return;
    // Per member, the highest round up to which every round it was asked to confirm is
    // confirmed and delivered (or dropped): the member's "seen" vector entry.
    const ids = [...members];
    for (const id of ids) if (!this.memberIndex.has(id)) this.memberIndex.set(id, this.memberIndex.size);
    const seen = new Map<NodeId, number>();
    const sorted = [...this.rounds.values()].sort((a, b) => a.id - b.id);
    for (const id of ids) {
      let upTo = 0;
      for (const r of sorted) {
        if (!r.required.includes(id)) { upTo = r.id; continue; }
        const c = r.confirms.get(id);
        if (c === undefined || !this.deltas.receivedUpTo(id, c.streamEpoch, c.sigma)) break;
        upTo = r.id;
      }
      seen.set(id, upTo === 0 ? (sorted[0]?.id ?? 1) - 1 : upTo);
    }
    const stable = this.stableRounds(candidates, ids, seen);
    if (stable.length > 0) this.collectRounds(stable, members);
  }

  /** The rounds whose requirement vector (round id for each member still required) the seen vector covers: one compareMany call. */
  private stableRounds(rounds: readonly Round[], ids: readonly NodeId[], seen: ReadonlyMap<NodeId, number>): Round[] {
    const order = [...ids].sort((a, b) => (this.memberIndex.get(a) as number) - (this.memberIndex.get(b) as number));
    const n = rounds.length;
    const width = order.length;
    const a: PackedClocks = { offsets: new Uint32Array(n + 1), actors: new Uint32Array(n * width), counters: new Float64Array(n * width) };
    const b: PackedClocks = { offsets: new Uint32Array(n + 1), actors: new Uint32Array(n * width), counters: new Float64Array(n * width) };
    let at = 0;
    for (let i = 0; i < n; i++) {
      const r = rounds[i] as Round;
      for (const id of order) {
        const idx = this.memberIndex.get(id) as number;
        a.actors[at] = idx;
        a.counters[at] = r.required.includes(id) ? r.id : 0;
        b.actors[at] = idx;
        b.counters[at] = seen.get(id) ?? 0;
        at++;
      }
      a.offsets[i + 1] = at;
      b.offsets[i + 1] = at;
    }
    const orders = this.opts.clocks.compareMany(a, b);
    const out: Round[] = [];
    for (let i = 0; i < n; i++) if (orders[i] === ClockOrder.Equal || orders[i] === ClockOrder.Before) out.push(rounds[i] as Round);
    return out;
  }

  private collectRounds(rounds: readonly Round[], members: ReadonlySet<NodeId>): void {
    // Past this point states a member read before its confirmation are stale (see AeStamp).
    for (const r of rounds) {
      for (const [id, c] of r.confirms) {
        if (!members.has(id)) continue;
        const floor = this.aeFloors.get(id);
        if (floor === undefined || floor.epoch !== c.streamEpoch || floor.confirms < c.confirms) this.aeFloors.set(id, { epoch: c.streamEpoch, confirms: c.confirms });
      }
    }
    // The generation goes above every confirming member's (each confirmation raised ours to
    // its sender's) before anything is dropped, and is stored first: a copy of a member's data
    // made before its confirmation carries less. One raise covers every round settled now.
    this.durable.ownGeneration = this.durable.generation + 1;
    this.raiseGeneration(this.durable.generation + 1, true);
    const now = this.env.nowMs();
    const store = this.store as Required<Pick<ReplicaStore, "collect">>;
    let n = 0;
    for (const r of rounds) {
      for (const e of r.entries) {
        // Remembered before the store drops it: a store that reports the removal at once finds
        // the key remembered (see remembers).
        const before = this.collected.get(e.key);
        this.collected.delete(e.key);
        this.collected.set(e.key, { until: now + collectedGraceMs, record: e.record });
        if (store.collect(e.key, e.digest)) {
          n++;
          continue;
        }
        this.collected.delete(e.key);
        if (before !== undefined) this.collected.set(e.key, before);
      }
      this.roundsCompleted++;
      this.dropRound(r, true);
    }
    while (this.collected.size > this.rememberedMax) {
      this.forgottenEarly++;
      const first = this.collected.keys().next().value as string;
      this.echo(first, (this.collected.get(first) as { record: number }).record, now);
      this.collected.delete(first);
      this.store.forgetCollected?.(first);
      this.forgotten(first);
    }
    this.keysCollected += n;
    if (n > 0) this.events.push({ kind: "tombstones-collected", keys: n });
  }

  private dropRound(r: Round, done: boolean): void {
    this.rounds.delete(r.id);
    for (const e of r.entries) this.inflight.delete(e.key);
    if (!done) this.roundsAbandoned++;
  }

  private expireCollected(now: number): void {
    if (this.echoes.size > 0 && now >= this.echoUntilMs) this.echoes = new FingerprintSet();
    for (const [k, { until, record }] of this.collected) {
      if (until > now) break;
      this.echo(k, record, now);
      this.collected.delete(k);
      this.store.forgetCollected?.(k);
      this.forgotten(k);
    }
  }
}
