// Pumps the pure cluster state machines with real time and a real transport: ticks, sends, replies, events.
//
// The cluster layer does no I/O; this driver is the only place its outbound messages
// become network calls. Each message goes out as one NodeService.Exchange request; the
// peer's reply payload (possibly empty) is stepped back in as a message from that peer.
// When a request arrives, whatever the cluster answers to that same peer rides back in
// the reply, and everything else is sent as new requests.
//
// Durability contract (raft's Ready/Advance in small): the node's WAL says, through `gate`,
// which appends are not durable yet; the cluster marks which envelopes carry state
// (Outbound.carriesState). Only those wait, and only for the appends pending when they were
// produced (the ones they could carry), within the config's heldOutbound bounds. Pings, acks,
// indirect probes and gossip leave at once, so an fsync stall never starts a suspicion.

import { Cluster, leaveAnnounceMs, type ClusterOptions } from "../cluster/cluster.ts";
import type { ClusterConfig } from "../cluster/config.ts";
import type { ReplicaStore } from "../cluster/store.ts";
import type { ClusterEvent, MemberView, NodeId, Outbound } from "../cluster/types.ts";
import type { AeStamp } from "../cluster/wire.ts";
import type { ClusterStatus } from "../cluster/cluster.ts";
import type { MemberRemoval } from "../cluster/membership.ts";

/** A peer's payload that does not decode as a cluster message: the transport answers INVALID_ARGUMENT. */
export class PeerMessageRefused extends Error {
  override readonly name = "PeerMessageRefused";
}

/** Sends in flight at once; beyond it messages are dropped like lost datagrams (the protocol retries). */
export const driverSendsInflightMax = 1024;
/** How often the state machines are ticked (ms): the resolution of every protocol timer. */
export const driverTickIntervalMsDefault = 5;

/**
 * The transport port. Resolves with the peer's reply, or null if the peer could not be reached.
 * `failureDetection` envelopes (Outbound.failureDetection) should go on a connection of their
 * own, so that a ping is never queued behind megabytes of deltas to the same peer.
 */
export interface PeerSender {
  send(to: { id: NodeId | null; addr: string; failureDetection: boolean }, payload: Uint8Array): Promise<{ fromId: string; payload: Uint8Array } | null>;
}

/** A repeating timer; returns a function that cancels it. Injected so tests can drive time by hand. */
export type Every = (ms: number, fn: () => void) => () => void;

export interface ClusterDriverOptions {
  id: string;
  /** The peer address others reach this node at. */
  addr: string;
  seeds: readonly string[];
  config?: Partial<ClusterConfig>;
  store: ReplicaStore;
  sender: PeerSender;
  onEvent?: (e: ClusterEvent) => void;
  tickIntervalMs?: number;
  /** Monotonic milliseconds; default performance.now. */
  now?: () => number;
  random?: () => number;
  every?: Every;
  /**
   * Asked before a state-carrying envelope leaves: null sends it now, a promise holds it until
   * the promise resolves (a rejection drops it: the node is stopping). The node answers with
   * its WAL appends not durable yet (local writes and merged peer data), so no peer is shown a
   * value, or told a delta is stored, that a SIGKILL could still take back.
   */
  gate?: () => Promise<void> | null;
  /** Tombstone collection's life, quarantine, stored state and clock-compare primitive (Cluster's `gc` option). */
  gc?: ClusterOptions["gc"];
}

const empty = new Uint8Array(0);
/** A secret per process for the hash tree's key table (clients choose the keys). */
function randomHashSeed(): [number, number] {
  const [a, b] = crypto.getRandomValues(new Uint32Array(2));
  return [a ?? 0, b ?? 0];
}

const realEvery: Every = (ms, fn) => {
  const h = setInterval(fn, ms);
  return () => clearInterval(h);
};

export class ClusterDriver {
  readonly cluster: Cluster;
  private cancelTimer: (() => void) | null = null;
  private inflight = 0;
  private dropped = 0;
  /** State-carrying envelopes held for the gate, and their bytes (bounded by heldOutbound*Max). */
  private heldEnvelopes = 0;
  private heldBytes = 0;
  /** State-carrying envelopes dropped because the held bounds were reached. */
  private heldDropped = 0;
  private readonly every: Every;

  constructor(private readonly opts: ClusterDriverOptions) {
    this.every = opts.every ?? realEvery;
    this.cluster = new Cluster({
      id: opts.id as NodeId,
      addr: opts.addr,
      seeds: opts.seeds,
      config: opts.config,
      env: { nowMs: opts.now ?? (() => performance.now()), random: opts.random ?? Math.random },
      store: opts.store,
      hashSeed: randomHashSeed(),
      ...(opts.gc === undefined ? {} : { gc: opts.gc }),
    });
  }

  /** Starts ticking (and so joining through the seeds). */
  start(): void {
    if (this.cancelTimer !== null) return;
    const intervalMs = this.opts.tickIntervalMs ?? driverTickIntervalMsDefault;
    const now = this.opts.now ?? (() => performance.now());
    let lastMs = now();
    this.cancelTimer = this.every(intervalMs, () => {
      // A timer late by more than its interval means this process could not run: replies
      // that came in meanwhile are still unread, so in-flight probes get the time back.
      const t = now();
      const lateMs = t - lastMs - intervalMs;
      lastMs = t;
      if (lateMs > 0) this.cluster.stalled(lateMs);
      this.pump();
    });
    this.pump();
  }

  /** Ticks the state machines and flushes what they produced. */
  pump(): void {
    this.cluster.tick();
    this.flush(this.cluster.drainOutbound());
  }

  /**
   * A peer's NodeService.Exchange request (`fromId` authenticated by the transport). Returns
   * the reply payload: the cluster's answer to that peer, or empty.
   */
  receive(fromId: string, payload: Uint8Array): Uint8Array | Promise<Uint8Array> {
    const refused = this.cluster.step(fromId as NodeId, payload);
    if (refused !== null) {
      this.emitEvents();
      throw new PeerMessageRefused(refused);
    }
    const outs = this.cluster.drainOutbound();
    // The reply carries an answer that need not wait when there is one (an ack to a ping);
    // a state-carrying answer (a delta ack) rides in it otherwise, held as long as the gate says.
    const reply = outs.find((o) => o.to === fromId && !o.carriesState) ?? outs.find((o) => o.to === fromId);
    this.flush(outs.filter((o) => o !== reply));
    if (reply === undefined) return empty;
    const gate = reply.carriesState ? this.gate() : null;
    if (gate === null) return reply.payload;
    if (!this.admitHeld(reply)) return empty;
    return gate.then(
      () => {
        this.releaseHeld(reply);
        return reply.payload;
      },
      () => {
        this.releaseHeld(reply);
        return empty;
      },
    );
  }

  /** States a leaving member handed over (Cluster.mergeHandOff), then whatever the merge produced goes out. */
  mergeHandOff(fromId: string, entries: ReadonlyArray<readonly [string, Uint8Array]>, stamp: AeStamp): ReturnType<Cluster["mergeHandOff"]> {
    const r = this.cluster.mergeHandOff(fromId as NodeId, entries, stamp);
    this.flush(this.cluster.drainOutbound());
    this.emitEvents();
    return r;
  }

  /** A delta the engine produced locally (already durable): push it to every live peer. */
  broadcastDelta(delta: Uint8Array): void {
    this.cluster.broadcastDelta(delta);
  }

  /** The engine reports a key's new digest after any change (also for every key after recovery). */
  keyChanged(key: string, digest: bigint | undefined): void {
    this.cluster.keyChanged(key, digest);
  }

  members(): MemberView[] {
    return this.cluster.members();
  }

  status(): ClusterStatus & { sendsDropped: number; heldDropped: number; heldEnvelopes: number; heldBytes: number } {
    return { ...this.cluster.status(), sendsDropped: this.dropped, heldDropped: this.heldDropped, heldEnvelopes: this.heldEnvelopes, heldBytes: this.heldBytes };
  }

  /** An operator's removal of a dead member (see Membership.remove); its leave news goes out with the next messages. */
  removeMember(id: NodeId): MemberRemoval {
    const r = this.cluster.removeMember(id);
    this.pump();
    return r;
  }

  /**
   * Announces a graceful leave and keeps ticking until a peer is seen holding it and the news
   * was handed out (the broadcast queue is empty), or `timeoutMs` passed. Returns that peer, or
   * null when none was seen: the cluster may then see a crash (leaveAnnounceMs).
   */
  async leave(timeoutMs = leaveAnnounceMs): Promise<NodeId | null> {
    this.cluster.leave();
    this.pump();
    const now = this.opts.now ?? (() => performance.now());
    const deadline = now() + timeoutMs;
    const done = (): boolean => this.cluster.leaveHeardBy() !== null && this.cluster.pendingBroadcasts() === 0;
    while (!done() && now() < deadline && this.cancelTimer !== null) {
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.cluster.leaveHeardBy();
  }

  stop(): void {
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  private gate(): Promise<void> | null {
    return this.opts.gate?.() ?? null;
  }

  /** Sends what carries no state now; holds the rest until the appends pending now are durable. */
  private flush(outs: readonly Outbound[]): void {
    if (outs.length === 0) return;
    const held = outs.filter((o) => o.carriesState);
    const gate = held.length === 0 ? null : this.gate();
    if (gate === null) {
      this.send(outs);
      return;
    }
    this.send(outs.filter((o) => !o.carriesState));
    const admitted = held.filter((o) => this.admitHeld(o));
    if (admitted.length === 0) return;
    const release = (): void => {
      for (const o of admitted) this.releaseHeld(o);
    };
    void gate.then(
      () => {
        release();
        this.send(admitted);
      },
      release,
    );
  }

  /** Counts an envelope in the held bounds, or drops it (counted, peer handed to anti-entropy). */
  private admitHeld(out: Outbound): boolean {
    const c = this.cluster.config;
    if (this.heldEnvelopes + 1 > c.heldOutboundEnvelopesMax || this.heldBytes + out.payload.length > c.heldOutboundBytesMax) {
      this.heldDropped++;
      if (out.to !== null) this.cluster.repairPeer(out.to);
      return false;
    }
    this.heldEnvelopes++;
    this.heldBytes += out.payload.length;
    return true;
  }

  private releaseHeld(out: Outbound): void {
    this.heldEnvelopes--;
    this.heldBytes -= out.payload.length;
  }

  private send(outs: readonly Outbound[]): void {
    for (const out of outs) {
      if (this.inflight >= driverSendsInflightMax) {
        this.dropped++;
        continue;
      }
      this.inflight++;
      this.opts.sender
        .send({ id: out.to, addr: out.addr, failureDetection: out.failureDetection }, out.payload)
        .catch(() => null)
        .then((reply) => {
          this.inflight--;
          if (reply !== null && reply.payload.length > 0) {
            this.cluster.step(reply.fromId as NodeId, reply.payload);
            this.flush(this.cluster.drainOutbound());
          }
          this.emitEvents();
        });
    }
    this.emitEvents();
  }

  private emitEvents(): void {
    const events = this.cluster.drainEvents();
    if (this.opts.onEvent !== undefined) for (const e of events) this.opts.onEvent(e);
  }
}
