// SWIM membership with Lifeguard: probing, suspicion, refutation, leave, join, reconnect and reaping, as a state machine.

import { Awareness } from "./awareness.ts";
import { BroadcastQueue, retransmitLimit } from "./broadcast.ts";
import type { ClusterConfig } from "./config.ts";
import type { Outbox } from "./outbox.ts";
import { Suspicion, suspicionConfirmationsExpected, suspicionMinTimeoutMs } from "./suspicion.ts";
import type { ClusterEvent, Env, Incarnation, MemberStatus, MemberView, NodeId } from "./types.ts";
import { sameSettings, type AliveMsg, type DeadMsg, type LeftMsg, type MemberState, type Message, type PlacementSettings, type SuspectMsg, type UpdateMsg } from "./wire.ts";

function describeSettings(s: PlacementSettings): string {
  return s.replicationFactor === 0 ? "replicationFactor 0 (every node holds every key)" : `replicationFactor ${s.replicationFactor}, partitions ${s.partitions}`;
}

export interface Member {
  id: NodeId;
  addr: string;
  incarnation: Incarnation;
  status: MemberStatus;
  /** When the status last changed (ms), for reaping and gossip to the dead. */
  sinceMs: number;
}

/** What the rest of the cluster layer wants to know about peers. */
export interface MembershipListener {
  /** A peer is new, or alive again after being dead or gone: its data may be stale. */
  peerRevived(id: NodeId): void;
  /** A peer is dead, left or reaped: stop pushing to it. */
  peerGone(id: NodeId): void;
}

interface Probe {
  target: NodeId;
  seq: number;
  directDeadlineMs: number;
  finalDeadlineMs: number;
  indirectSent: boolean;
  expectedNacks: number;
  nacks: number;
}

/**
 * A claim of our own id at another address, being checked before we refute it: a ping for our
 * id to that address. An ack means another live process holds the id (we yield); silence means
 * the claim is a stale record of an earlier life of this node (we refute and take the id).
 */
interface DuplicateCheck {
  seq: number;
  addr: string;
  incarnation: Incarnation;
  deadlineMs: number;
}

/** A ping we send on behalf of another member's ping-req. */
interface Relay {
  requester: NodeId;
  requesterAddr: string;
  origSeq: number;
  deadlineMs: number;
}

/** What `Membership.remove` did (the operator's `imdb admin member remove`). */
export type MemberRemoval =
  | { kind: "removed"; was: "dead" | "left" }
  | { kind: "unknown" }
  | { kind: "self" }
  | { kind: "reachable"; status: "alive" | "suspect" };

export class Membership {
  private readonly members = new Map<NodeId, Member>();
  private readonly me: Member;
  private readonly awareness: Awareness;
  private readonly queue: BroadcastQueue;
  private readonly suspicions = new Map<NodeId, Suspicion>();
  private readonly relays = new Map<number, Relay>();
  private probe: Probe | null = null;
  private probeList: NodeId[] = [];
  private probeIndex = 0;
  private seq = 0;
  private leaving = false;
  /**
   * The first peer seen to hold this node's departure (its push-pull lists us as left, or it
   * relayed our leave back), or null. A leave's gossip is fire and forget: made while every
   * peer it picks is cut off, it reaches nobody and the cluster sees a crash (placed over until
   * reaped). Until one peer is seen to hold it, a leaving node offers its state by push-pull
   * every gossip interval (tick), and the leave waits for this (ClusterDriver.leave).
   */
  leaveHeardBy: NodeId | null = null;
  private nextLeaveOfferAtMs = 0;
  private duplicateCheck: DuplicateCheck | null = null;
  /** Another live process holds our id: this one takes no further part (see DuplicateCheck). */
  private yielded = false;
  /** Ping-reqs not relayed because relayedProbesMax were in flight. */
  relayedProbesDropped = 0;
  /**
   * Raised at every change of a member's presence or status: views derived from the member list
   * (the placement of partitions, src/cluster/cluster.ts) are rebuilt only when it moved.
   */
  version = 0;
  /**
   * The member list is the cluster's, not only what this process knew at start: it has merged a
   * push-pull, a peer's whole list (the answer to its join, a joiner's, or any exchange since).
   * A partitioned cluster places keys by the list only once this holds: a node that has just
   * (re)started, seeds or not, would otherwise place every partition on itself alone and take
   * writes that belong to others. A node that never hears a peer (a cluster of one) stays unsynced.
   */
  synced = false;
  private nextProbeAtMs: number;
  private nextGossipAtMs: number;
  private nextPushPullAtMs: number;
  private nextReconnectAtMs: number;
  private nextJoinAtMs: number;
  /** How this node places keys, sent with every push-pull. */
  private readonly settings: PlacementSettings;

  constructor(
    private readonly config: ClusterConfig,
    private readonly env: Env,
    self: { id: NodeId; addr: string },
    private readonly seeds: readonly string[],
    private readonly outbox: Outbox,
    private readonly events: ClusterEvent[],
    private readonly listener: MembershipListener,
  ) {
    const now = env.nowMs();
    this.me = { id: self.id, addr: self.addr, incarnation: 0 as Incarnation, status: "alive", sinceMs: now };
    this.members.set(self.id, this.me);
    this.awareness = new Awareness(config.awarenessMaxMultiplier);
    this.queue = new BroadcastQueue(config.broadcastQueueMax);
    // Random phases, so that nodes started together do not probe in lockstep.
    this.nextProbeAtMs = now + Math.floor(env.random() * config.probeIntervalMs);
    this.nextGossipAtMs = now + Math.floor(env.random() * config.gossipIntervalMs);
    this.nextPushPullAtMs = now + config.pushPullIntervalMs;
    this.nextReconnectAtMs = now + config.reconnectIntervalMs;
    this.nextJoinAtMs = now;
    this.settings = { replicationFactor: config.replicationFactor, partitions: config.partitions };
    this.queue.push(this.aliveOfSelf());
  }

  // ------------------------------------------------------------ views

  selfId(): NodeId {
    return this.me.id;
  }

  selfIncarnation(): Incarnation {
    return this.me.incarnation;
  }

  awarenessScore(): number {
    return this.awareness.getScore();
  }

  get(id: NodeId): Member | undefined {
    return this.members.get(id);
  }

  view(): MemberView[] {
    return [...this.members.values()]
      .map((m) => ({ id: m.id, address: m.addr, status: m.status, incarnation: m.incarnation }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Calls `fn` with every member, self included, in no particular order (view() without copies or sorting). */
  forEachMember(fn: (m: Readonly<Member>) => void): void {
    for (const m of this.members.values()) fn(m);
  }

  /** Other members that are alive or suspect: the ones we push to and exchange with. */
  livePeers(): readonly Member[] {
    // Asked several times per message (liveCount in the protocol's formulas) and per tick: kept
    // until the version moves, which every change of a member's presence or status bumps.
    const c = this.liveCache;
    if (c !== null && c.version === this.version && c.yielded === this.yielded) return c.peers;
    const out: Member[] = [];
    // Nothing more is pushed or exchanged from a yielded process.
    if (!this.yielded) for (const m of this.members.values()) if (m !== this.me && (m.status === "alive" || m.status === "suspect")) out.push(m);
    this.liveCache = { version: this.version, yielded: this.yielded, peers: out };
    return out;
  }
  private liveCache: { version: number; yielded: boolean; peers: readonly Member[] } | null = null;

  /** Live members including self: the N of the protocol's formulas. */
  liveCount(): number {
    return this.livePeers().length + 1;
  }

  pendingBroadcasts(): number {
    return this.queue.size();
  }

  /** Updates for one outgoing failure-detector message. */
  piggyback(): UpdateMsg[] {
    return this.queue.take(this.config.piggybackBytesMax, retransmitLimit(this.config.retransmitMult, this.liveCount()));
  }

  /** Announces a graceful leave; keep ticking a little so that it spreads. */
  leave(): void {
    if (this.leaving) return;
    this.leaving = true;
    this.nextLeaveOfferAtMs = this.env.nowMs();
    this.me.status = "left";
    this.version++;
    this.me.sinceMs = this.env.nowMs();
    const msg: LeftMsg = { kind: "left", id: this.me.id, incarnation: this.me.incarnation };
    this.queue.push(msg);
    this.events.push({ kind: "member-left", id: this.me.id, incarnation: this.me.incarnation });
  }

  /**
   * An operator removes a member known to be gone for good, before deadReapAfterMs would: a dead
   * member is declared left (gossiped as a leave on its behalf, which every version understands,
   * so the others stop retrying it), and this node forgets it at once. A member that is alive or
   * suspect is refused: it may be running, and would refute the leave.
   */
  remove(id: NodeId): MemberRemoval {
    const m = this.members.get(id);
    if (m === undefined) return { kind: "unknown" };
    if (m === this.me) return { kind: "self" };
    if (m.status === "alive" || m.status === "suspect") return { kind: "reachable", status: m.status };
    const was = m.status;
    if (was === "dead") this.leftNode({ kind: "left", id, incarnation: m.incarnation });
    // As reap() does, now rather than deadReapAfterMs or leftReapAfterMs after it went.
    this.members.delete(id);
    this.version++;
    this.events.push({ kind: "member-reaped", id });
    this.listener.peerGone(id);
    return { kind: "removed", was };
  }

  // ------------------------------------------------------------ time

  /**
   * This node could not run for `ms` (its event loop was blocked; the driver measures it).
   * Its probes and relays in flight get that time back: an ack that arrived meanwhile is still
   * unread, and judging the probe before reading it would accuse a healthy peer of this
   * node's own stall (as Lifeguard's local health does for a slow prober, but at once).
   */
  stalled(ms: number): void {
    if (!Number.isFinite(ms) || ms <= 0) return;
    const p = this.probe;
    if (p !== null) {
      if (!p.indirectSent) p.directDeadlineMs += ms;
      p.finalDeadlineMs += ms;
    }
    for (const r of this.relays.values()) r.deadlineMs += ms;
  }

  tick(): void {
    if (this.yielded) return;
    const now = this.env.nowMs();
    const check = this.duplicateCheck;
    if (check !== null && now >= check.deadlineMs) {
      // Nobody answers for our id there: a stale record of an earlier life. Take the id back.
      this.duplicateCheck = null;
      this.refute(check.incarnation);
    }
    this.tickProbe(now);
    this.tickRelays(now);
    this.tickSuspicions(now);
    if (now >= this.nextGossipAtMs) {
      this.nextGossipAtMs = Math.max(this.nextGossipAtMs + this.config.gossipIntervalMs, now + 1);
      this.gossip(now);
    }
    if (this.leaving && this.leaveHeardBy === null && now >= this.nextLeaveOfferAtMs) {
      this.nextLeaveOfferAtMs = now + this.config.gossipIntervalMs;
      this.offerLeave();
    }
    if (now >= this.nextPushPullAtMs) {
      this.nextPushPullAtMs = now + this.pushPullIntervalMs();
      const peers = this.livePeers();
      const peer = this.randomOf(peers);
      if (peer !== undefined) this.sendPushPull(peer.id, peer.addr, false, false);
      // Also a seed we are not in touch with: two halves that formed apart (say, after a
      // partition during which a node restarted and forgot the others) find each other.
      const known = new Set(peers.map((p) => p.addr));
      const seed = this.randomOf(this.seeds.filter((a) => a !== this.me.addr && !known.has(a)));
      if (seed !== undefined && !this.leaving) this.sendPushPull(null, seed, true, false);
    }
    if (now >= this.nextReconnectAtMs) {
      this.nextReconnectAtMs = now + this.config.reconnectIntervalMs;
      // A partitioned cluster's node takes no writes until it has a peer's member list (synced):
      // ask for one every reconnect interval rather than at the next push-pull (30 s or more)
      // when the answer to its join was lost.
      if (!this.synced && this.config.replicationFactor > 0) {
        const peer = this.randomOf(this.livePeers());
        if (peer !== undefined) this.sendPushPull(peer.id, peer.addr, false, false);
      }
      const dead = [...this.members.values()].filter((m) => m.status === "dead");
      const peer = this.randomOf(dead);
      if (peer !== undefined) this.sendPushPull(peer.id, peer.addr, false, false);
    }
    if (now >= this.nextJoinAtMs && !this.leaving) {
      this.nextJoinAtMs = now + this.config.joinRetryIntervalMs;
      if (this.livePeers().length === 0) {
        for (const addr of this.seeds) if (addr !== this.me.addr) this.sendPushPull(null, addr, true, false);
      }
    }
    this.reap(now);
  }

  /** The earliest time at which tick() has something to do. */
  nextDeadlineMs(): number {
    // Gossip rounds stay on their own period even while there is nothing to send, so that
    // an update waits for the next round as it would with a real ticker.
    let t = Math.min(this.nextProbeAtMs, this.nextPushPullAtMs, this.nextReconnectAtMs, this.nextGossipAtMs);
    if (this.yielded) return Number.MAX_SAFE_INTEGER;
    if (this.probe !== null) t = Math.min(t, this.probe.indirectSent ? this.probe.finalDeadlineMs : this.probe.directDeadlineMs);
    if (this.duplicateCheck !== null) t = Math.min(t, this.duplicateCheck.deadlineMs);
    for (const r of this.relays.values()) t = Math.min(t, r.deadlineMs);
    for (const s of this.suspicions.values()) t = Math.min(t, s.deadlineMs());
    if (this.seeds.length > 0 && !this.leaving && this.livePeers().length === 0) t = Math.min(t, this.nextJoinAtMs);
    if (this.leaving && this.leaveHeardBy === null) t = Math.min(t, this.nextLeaveOfferAtMs);
    return Math.min(t, this.reapDeadlineMs());
  }

  /** When the next dead or left member is due to be reaped: asked after every message, so kept until the version moves. */
  private reapDeadlineMs(): number {
    const c = this.reapCache;
    if (c !== null && c.version === this.version) return c.atMs;
    let t = Number.POSITIVE_INFINITY;
    for (const m of this.members.values()) {
      if (m.status === "dead") t = Math.min(t, m.sinceMs + this.config.deadReapAfterMs);
      else if (m.status === "left" && m !== this.me) t = Math.min(t, m.sinceMs + this.config.leftReapAfterMs);
    }
    this.reapCache = { version: this.version, atMs: t };
    return t;
  }
  private reapCache: { version: number; atMs: number } | null = null;

  private tickProbe(now: number): void {
    const p = this.probe;
    if (p !== null && !p.indirectSent && now >= p.directDeadlineMs) this.sendIndirect(p);
    if (p !== null && now >= p.finalDeadlineMs) this.probeFailed(p);
    if (this.probe === null && now >= this.nextProbeAtMs) {
      this.nextProbeAtMs = now + this.awareness.scaleMs(this.config.probeIntervalMs);
      if (!this.leaving) this.startProbe(now);
    }
  }

  private nextProbeTarget(): Member | undefined {
    for (let tries = 0; tries < 2; tries++) {
      while (this.probeIndex < this.probeList.length) {
        const m = this.members.get(this.probeList[this.probeIndex++] as NodeId);
        if (m !== undefined && m !== this.me && (m.status === "alive" || m.status === "suspect")) return m;
      }
      this.probeList = this.shuffle([...this.members.keys()].filter((id) => id !== this.me.id));
      this.probeIndex = 0;
    }
    return undefined;
  }

  private startProbe(now: number): void {
    const target = this.nextProbeTarget();
    if (target === undefined) return;
    const seq = ++this.seq;
    this.probe = {
      target: target.id,
      seq,
      directDeadlineMs: now + this.awareness.scaleMs(this.config.probeTimeoutMs),
      finalDeadlineMs: now + this.awareness.scaleMs(this.config.probeIntervalMs),
      indirectSent: false,
      expectedNacks: 0,
      nacks: 0,
    };
    this.outbox.send(target.id, target.addr, { kind: "ping", seq, target: target.id });
    if (target.status === "suspect") {
      // Lifeguard's buddy system: tell a suspect directly, so that it can refute at once.
      this.outbox.send(target.id, target.addr, { kind: "suspect", id: target.id, incarnation: target.incarnation, from: this.me.id });
    }
  }

  private sendIndirect(p: Probe): void {
    p.indirectSent = true;
    const target = this.members.get(p.target);
    if (target === undefined) return;
    const helpers = this.shuffle(this.livePeers().filter((m) => m.status === "alive" && m.id !== p.target)).slice(0, this.config.indirectChecks);
    for (const h of helpers) this.outbox.send(h.id, h.addr, { kind: "ping-req", seq: p.seq, target: target.id, targetAddr: target.addr });
    p.expectedNacks = helpers.length;
  }

  private probeFailed(p: Probe): void {
    this.probe = null;
    if (p.expectedNacks > 0) {
      if (p.nacks < p.expectedNacks) this.awareness.applyDelta(p.expectedNacks - p.nacks);
    } else {
      this.awareness.applyDelta(1);
    }
    const target = this.members.get(p.target);
    if (target === undefined || (target.status !== "alive" && target.status !== "suspect")) return;
    this.suspectNode({ kind: "suspect", id: target.id, incarnation: target.incarnation, from: this.me.id });
  }

  private probeSucceeded(): void {
    this.probe = null;
    this.awareness.applyDelta(-1);
  }

  private tickRelays(now: number): void {
    for (const [seq, r] of this.relays) {
      if (now < r.deadlineMs) continue;
      this.relays.delete(seq);
      this.outbox.send(r.requester, r.requesterAddr, { kind: "nack", seq: r.origSeq });
    }
  }

  private tickSuspicions(now: number): void {
    for (const [id, s] of this.suspicions) {
      if (now < s.deadlineMs()) continue;
      this.suspicions.delete(id);
      const m = this.members.get(id);
      if (m === undefined || m.status !== "suspect") continue;
      this.deadNode({ kind: "dead", id, incarnation: m.incarnation, from: this.me.id });
    }
  }

  private gossip(now: number): void {
    if (this.queue.size() === 0) return;
    const candidates: Member[] = [];
    for (const m of this.members.values()) {
      if (m === this.me) continue;
      if (m.status === "alive" || m.status === "suspect") candidates.push(m);
      else if (m.status === "dead" && now - m.sinceMs <= this.config.gossipToTheDeadMs) candidates.push(m);
    }
    const limit = retransmitLimit(this.config.retransmitMult, this.liveCount());
    for (const m of this.shuffle(candidates).slice(0, this.config.gossipNodes)) {
      const updates = this.queue.take(this.config.piggybackBytesMax, limit);
      if (updates.length === 0) return;
      for (const u of updates) this.outbox.send(m.id, m.addr, u);
    }
  }

  private pushPullIntervalMs(): number {
    const n = this.liveCount();
    if (n <= 32) return this.config.pushPullIntervalMs;
    return this.config.pushPullIntervalMs * (Math.ceil(Math.log2(n) - Math.log2(32)) + 1);
  }

  private sendPushPull(to: NodeId | null, addr: string, join: boolean, reply: boolean): void {
    const members: MemberState[] = [];
    for (const m of this.members.values()) members.push({ id: m.id, addr: m.addr, incarnation: m.incarnation, status: m.status });
    this.outbox.send(to, addr, { kind: "push-pull", join, reply, members, settings: this.settings });
  }

  /**
   * A leaving node's state to one peer it may still reach (alive or suspect), picked at random
   * each time: the peer merges our departure and answers with its list, which shows whether it
   * holds it (heardLeaveIn).
   */
  private offerLeave(): void {
    const peers: Member[] = [];
    for (const m of this.members.values()) if (m !== this.me && (m.status === "alive" || m.status === "suspect")) peers.push(m);
    const peer = this.randomOf(peers);
    if (peer !== undefined) this.sendPushPull(peer.id, peer.addr, false, false);
  }

  /** While leaving: does a peer's list show our departure (this life's incarnation or later)? */
  private heardLeaveIn(from: NodeId, members: readonly MemberState[]): void {
    if (!this.leaving || this.leaveHeardBy !== null || from === this.me.id) return;
    for (const m of members) {
      if (m.id === this.me.id && m.status === "left" && m.incarnation >= this.me.incarnation) {
        this.leaveHeardBy = from;
        return;
      }
    }
  }

  private reap(now: number): void {
    for (const m of this.members.values()) {
      if (m === this.me) continue;
      const after = m.status === "dead" ? this.config.deadReapAfterMs : m.status === "left" ? this.config.leftReapAfterMs : undefined;
      if (after === undefined || now - m.sinceMs < after) continue;
      this.members.delete(m.id);
      this.version++;
      this.events.push({ kind: "member-reaped", id: m.id });
      this.listener.peerGone(m.id);
    }
  }

  // ------------------------------------------------------------ messages

  /** Handles one membership message from `from` (authenticated by the transport). */
  handle(from: NodeId, fromAddr: string, msg: Message): void {
    if (this.yielded) return;
    switch (msg.kind) {
      case "ping":
        if (msg.target !== this.me.id) {
          this.events.push({ kind: "message-refused", from, reason: `ping for ${msg.target}` });
          return;
        }
        // A process with our id checking whether we are alive: we are, and we keep the id.
        if (from === this.me.id && fromAddr !== this.me.addr) this.events.push({ kind: "duplicate-node-id", address: fromAddr, yielded: false });
        this.outbox.send(from, fromAddr, { kind: "ack", seq: msg.seq });
        return;
      case "ping-req": {
        if (msg.target === this.me.id) {
          this.outbox.send(from, fromAddr, { kind: "ack", seq: msg.seq });
          return;
        }
        if (this.relays.size >= this.config.relayedProbesMax) {
          // Unanswered, as if lost: the requester asked other helpers too. No nack, which
          // would claim we reached out to the target.
          this.relayedProbesDropped++;
          return;
        }
        const seq = ++this.seq;
        this.relays.set(seq, { requester: from, requesterAddr: fromAddr, origSeq: msg.seq, deadlineMs: this.env.nowMs() + this.config.probeTimeoutMs });
        this.outbox.send(msg.target, msg.targetAddr, { kind: "ping", seq, target: msg.target });
        return;
      }
      case "ack": {
        const check = this.duplicateCheck;
        if (check !== null && check.seq === msg.seq) {
          this.duplicateCheck = null;
          this.yielded = true;
          this.events.push({ kind: "duplicate-node-id", address: check.addr, yielded: true });
          return;
        }
        const p = this.probe;
        if (p !== null && p.seq === msg.seq) {
          this.probeSucceeded();
          return;
        }
        const r = this.relays.get(msg.seq);
        if (r !== undefined) {
          this.relays.delete(msg.seq);
          this.outbox.send(r.requester, r.requesterAddr, { kind: "ack", seq: r.origSeq });
        }
        return;
      }
      case "nack":
        if (this.probe !== null && this.probe.seq === msg.seq) this.probe.nacks++;
        return;
      case "alive":
        this.aliveNode(msg);
        return;
      case "suspect":
        this.suspectNode(msg);
        return;
      case "dead":
        this.deadNode(msg);
        return;
      case "left":
        // Our own departure relayed back: that peer holds it.
        if (this.leaving && this.leaveHeardBy === null && msg.id === this.me.id && from !== this.me.id && msg.incarnation >= this.me.incarnation) this.leaveHeardBy = from;
        this.leftNode(msg);
        return;
      case "push-pull":
        // A node that places keys differently must not become a member: the two would disagree
        // on every key's owners. Not merged; a join is answered (with this node's settings) so
        // that the joiner sees the mismatch too and says so.
        if (msg.settings !== undefined && !sameSettings(msg.settings, this.settings)) {
          this.events.push({ kind: "settings-mismatch", address: fromAddr, theirs: describeSettings(msg.settings), ours: describeSettings(this.settings) });
          if (!msg.reply) this.sendPushPull(from, fromAddr, false, true);
          return;
        }
        this.heardLeaveIn(from, msg.members);
        this.mergeRemoteState(msg.members);
        if (!this.synced) {
          this.synced = true;
          this.version++;
        }
        if (!msg.reply) this.sendPushPull(from, fromAddr, false, true);
        return;
      default:
        return;
    }
  }

  private mergeRemoteState(remote: readonly MemberState[]): void {
    for (const r of remote) {
      switch (r.status) {
        case "alive":
          this.aliveNode({ kind: "alive", id: r.id, incarnation: r.incarnation, addr: r.addr });
          break;
        case "left":
          // A member unknown here that left: not listed (as memberlist, or a reaped member would
          // circulate between push-pulls forever), but its departure is passed on, so that a node
          // that restarted since lets go of it (gc.ts knownMembers). Ignored, a restarted node
          // of a partitioned cluster placed keys over a member that left while it was down, for
          // deadReapAfterMs, while every other member placed them without it
          // (test/sim/handoff.test.ts).
          if (!this.members.has(r.id)) {
            this.listener.peerGone(r.id);
            break;
          }
          this.leftNode({ kind: "left", id: r.id, incarnation: r.incarnation });
          break;
        case "dead":
        case "suspect":
          // In a partitioned cluster a member that is down still owns its partitions until it is
          // reaped (cluster.ts placement): a node that (re)joins while one is down must list it
          // too, or it would place partitions over fewer members than everyone else. It is
          // learnt as dead (it will be probed by the reconnect loop like any dead member).
          if (this.config.replicationFactor > 0 && !this.members.has(r.id) && this.members.size < this.config.membersMax) {
            this.members.set(r.id, { id: r.id, addr: r.addr, incarnation: r.incarnation, status: "dead", sinceMs: this.env.nowMs() });
            this.version++;
            this.events.push({ kind: "member-dead", id: r.id, incarnation: r.incarnation, from: this.me.id });
            break;
          }
          // As memberlist: a remote "dead" only makes us suspect, and we do the accusing.
          this.suspectNode({ kind: "suspect", id: r.id, incarnation: r.incarnation, from: this.me.id });
          break;
      }
    }
  }

  private aliveOfSelf(): AliveMsg {
    return { kind: "alive", id: this.me.id, incarnation: this.me.incarnation, addr: this.me.addr };
  }

  /** Someone holds an equal or newer claim about us than we do: out-bid it. */
  private refute(incarnation: Incarnation): void {
    this.me.incarnation = (Math.max(this.me.incarnation, incarnation) + 1) as Incarnation;
    this.awareness.applyDelta(1);
    this.queue.push(this.aliveOfSelf());
    this.events.push({ kind: "self-refuted", incarnation: this.me.incarnation });
  }

  private aliveNode(a: AliveMsg): void {
    if (a.id === this.me.id) {
      if (this.leaving || a.incarnation < this.me.incarnation) return;
      if (a.incarnation === this.me.incarnation && a.addr === this.me.addr) return;
      if (a.addr !== this.me.addr) {
        this.checkDuplicate(a);
        return;
      }
      this.refute(a.incarnation);
      return;
    }
    const m = this.members.get(a.id);
    const now = this.env.nowMs();
    if (m === undefined) {
      if (this.members.size >= this.config.membersMax) {
        this.events.push({ kind: "message-refused", from: a.id, reason: `members at membersMax ${this.config.membersMax}` });
        return;
      }
      this.members.set(a.id, { id: a.id, addr: a.addr, incarnation: a.incarnation, status: "alive", sinceMs: now });
      this.version++;
      this.queue.push(a);
      this.events.push({ kind: "member-joined", id: a.id, address: a.addr, incarnation: a.incarnation });
      this.listener.peerRevived(a.id);
      return;
    }
    if (a.incarnation <= m.incarnation) return;
    const prev = m.status;
    const addrChanged = m.addr !== a.addr;
    m.incarnation = a.incarnation;
    m.addr = a.addr;
    if (prev !== "alive") {
      m.status = "alive";
      this.version++;
      m.sinceMs = now;
    }
    this.suspicions.delete(a.id);
    this.queue.push(a);
    if (prev === "dead" || prev === "left") {
      this.events.push({ kind: "member-joined", id: a.id, address: a.addr, incarnation: a.incarnation });
      this.listener.peerRevived(a.id);
    } else if (prev === "suspect") {
      this.events.push({ kind: "member-alive", id: a.id, incarnation: a.incarnation });
    }
    if (addrChanged) {
      this.events.push({ kind: "member-updated", id: a.id, address: a.addr, incarnation: a.incarnation });
      if (prev !== "dead" && prev !== "left") this.listener.peerRevived(a.id);
    }
  }

  /**
   * Someone says we live at another address. Before out-bidding the claim (which is how a node
   * restarted at a new address takes its id back), ask that address whether a process there
   * answers for our id. The ping goes bare: our own claim piggybacked on it would make a live
   * holder start the same check against us.
   */
  private checkDuplicate(a: AliveMsg): void {
    const pending = this.duplicateCheck;
    if (pending !== null) {
      if (pending.addr === a.addr) pending.incarnation = Math.max(pending.incarnation, a.incarnation) as Incarnation;
      return; // another address is checked once this one is settled
    }
    const seq = ++this.seq;
    this.duplicateCheck = { seq, addr: a.addr, incarnation: a.incarnation, deadlineMs: this.env.nowMs() + this.config.probeTimeoutMs };
    this.outbox.send(this.me.id, a.addr, { kind: "ping", seq, target: this.me.id }, true);
  }

  private suspectNode(s: SuspectMsg): void {
    const m = this.members.get(s.id);
    if (m === undefined || s.incarnation < m.incarnation) return;
    if (m === this.me) {
      if (!this.leaving) this.refute(s.incarnation);
      return;
    }
    if (m.status === "dead" || m.status === "left") return;
    if (m.status === "suspect") {
      const sus = this.suspicions.get(m.id);
      if (s.incarnation > m.incarnation) m.incarnation = s.incarnation;
      if (sus !== undefined && sus.confirm(s.from)) this.queue.push(s);
      return;
    }
    const now = this.env.nowMs();
    m.incarnation = s.incarnation;
    m.status = "suspect";
    this.version++;
    m.sinceMs = now;
    const n = this.liveCount();
    const minMs = suspicionMinTimeoutMs(this.config.suspicionMult, n, this.config.probeIntervalMs);
    const k = suspicionConfirmationsExpected(this.config.suspicionMult, n);
    this.suspicions.set(m.id, new Suspicion(now, k, minMs, minMs * this.config.suspicionMaxTimeoutMult, s.from));
    this.queue.push(s);
    this.events.push({ kind: "member-suspect", id: m.id, incarnation: m.incarnation, from: s.from });
  }

  private deadNode(d: DeadMsg): void {
    const m = this.members.get(d.id);
    if (m === undefined || d.incarnation < m.incarnation) return;
    if (m === this.me) {
      if (!this.leaving) this.refute(d.incarnation);
      return;
    }
    if (m.status === "dead" || m.status === "left") return;
    m.incarnation = d.incarnation;
    m.status = "dead";
    this.version++;
    m.sinceMs = this.env.nowMs();
    this.suspicions.delete(m.id);
    this.queue.push(d);
    this.events.push({ kind: "member-dead", id: m.id, incarnation: m.incarnation, from: d.from });
    this.listener.peerGone(m.id);
  }

  private leftNode(l: LeftMsg): void {
    const m = this.members.get(l.id);
    if (m === undefined || l.incarnation < m.incarnation) return;
    if (m === this.me) {
      if (!this.leaving) this.refute(l.incarnation);
      return;
    }
    if (m.status === "left") return;
    m.incarnation = l.incarnation;
    m.status = "left";
    this.version++;
    m.sinceMs = this.env.nowMs();
    this.suspicions.delete(m.id);
    this.queue.push(l);
    this.events.push({ kind: "member-left", id: m.id, incarnation: m.incarnation });
    this.listener.peerGone(m.id);
  }

  // ------------------------------------------------------------ randomness

  private shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(this.env.random() * (i + 1));
      const t = xs[i] as T;
      xs[i] = xs[j] as T;
      xs[j] = t;
    }
    return xs;
  }

  private randomOf<T>(xs: readonly T[]): T | undefined {
    if (xs.length === 0) return undefined;
    return xs[Math.floor(this.env.random() * xs.length)];
  }
}
