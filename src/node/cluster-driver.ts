// Pumps the pure cluster state machines with real time and a real transport: ticks, sends, replies, events.
//
// The cluster layer does no I/O; this driver is the only place its outbound messages
// become network calls. Each message goes out as one NodeService.Exchange request; the
// peer's reply payload (possibly empty) is stepped back in as a message from that peer.
// When a request arrives, whatever the cluster answers to that same peer rides back in
// the reply, and everything else is sent as new requests.

import { Cluster } from "../cluster/cluster.ts";
import type { ClusterConfig } from "../cluster/config.ts";
import type { ReplicaStore } from "../cluster/store.ts";
import type { ClusterEvent, MemberView, NodeId, Outbound } from "../cluster/types.ts";
import type { ClusterStatus } from "../cluster/cluster.ts";

/** A peer's payload that does not decode as a cluster message: the transport answers INVALID_ARGUMENT. */
export class PeerMessageRefused extends Error {
  override readonly name = "PeerMessageRefused";
}

/** Sends in flight at once; beyond it messages are dropped like lost datagrams (the protocol retries). */
export const driverSendsInflightMax = 1024;
/** How often the state machines are ticked (ms): the resolution of every protocol timer. */
export const driverTickIntervalMsDefault = 5;

/** The transport port. Resolves with the peer's reply, or null if the peer could not be reached. */
export interface PeerSender {
  send(to: { id: NodeId | null; addr: string }, payload: Uint8Array): Promise<{ fromId: string; payload: Uint8Array } | null>;
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
   * Asked before messages leave: null sends them now, a promise holds them until it settles.
   * The node gates on its unsettled WAL appends, so no peer is shown a local write (in an
   * anti-entropy state) that a SIGKILL could still take back.
   */
  gate?: () => Promise<void> | null;
}

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
    });
  }

  /** Starts ticking (and so joining through the seeds). */
  start(): void {
    if (this.cancelTimer !== null) return;
    this.cancelTimer = this.every(this.opts.tickIntervalMs ?? driverTickIntervalMsDefault, () => this.pump());
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
  receive(fromId: string, payload: Uint8Array): Uint8Array {
    const refused = this.cluster.step(fromId as NodeId, payload);
    if (refused !== null) {
      this.emitEvents();
      throw new PeerMessageRefused(refused);
    }
    let reply: Uint8Array = new Uint8Array(0);
    const rest: Outbound[] = [];
    for (const out of this.cluster.drainOutbound()) {
      if (reply.length === 0 && out.to === fromId) reply = out.payload;
      else rest.push(out);
    }
    this.flush(rest);
    return reply;
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

  status(): ClusterStatus & { sendsDropped: number } {
    return { ...this.cluster.status(), sendsDropped: this.dropped };
  }

  /**
   * Announces a graceful leave and keeps ticking until the news was handed out (the
   * broadcast queue is empty) or `timeoutMs` passed.
   */
  async leave(timeoutMs = 2_000): Promise<void> {
    this.cluster.leave();
    this.pump();
    const now = this.opts.now ?? (() => performance.now());
    const deadline = now() + timeoutMs;
    while (this.cluster.pendingBroadcasts() > 0 && now() < deadline && this.cancelTimer !== null) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  stop(): void {
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  private flush(outs: readonly Outbound[]): void {
    const gate = outs.length === 0 ? null : (this.opts.gate?.() ?? null);
    if (gate === null) this.send(outs);
    else void gate.then(() => this.send(outs));
  }

  private send(outs: readonly Outbound[]): void {
    for (const out of outs) {
      if (this.inflight >= driverSendsInflightMax) {
        this.dropped++;
        continue;
      }
      this.inflight++;
      this.opts.sender
        .send({ id: out.to, addr: out.addr }, out.payload)
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
