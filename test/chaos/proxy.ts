// A fault-injecting TCP proxy of our own (node:net), placed between real node processes and their
// peers or clients: per-source delay, jitter, blackhole, bandwidth limit and connection resets,
// all switchable while traffic flows, so chaos runs need no root, no iptables and no namespaces.
import * as net from "node:net";

/** Faults applied to the bytes of one link (both directions of every connection from one source). */
export interface LinkFaults {
  /** Added to every chunk's delivery time, ms. */
  delayMs: number;
  /** A uniformly random extra 0..jitterMs per chunk; order within a connection is kept (TCP is ordered). */
  jitterMs: number;
  /** Accept and keep connections open but drop every byte; a connection that lost bytes is reset on heal. */
  blackhole: boolean;
  /** Bytes per second per direction of each connection; 0: unlimited. */
  bandwidthBytesPerSec: number;
  /** New connections are reset at once, and existing ones are reset when this is switched on. */
  refuse: boolean;
}

export const noFaults: Readonly<LinkFaults> = { delayMs: 0, jitterMs: 0, blackhole: false, bandwidthBytesPerSec: 0, refuse: false };

/** Bytes queued in one direction of one connection before its sender is paused (backpressure, not memory). */
export const proxyQueueBytesMax = 4 * 1024 * 1024;
/** Connections one proxy keeps; beyond it new ones are reset. */
export const proxyConnectionsMax = 4096;
/** Extra delay, jitter or bandwidth beyond these is a mistake in a test. */
export const proxyDelayMsMax = 120_000;

/** Names the source of an accepted connection (e.g. which node process dialled); null: unknown. */
export type SourceClassifier = (socket: net.Socket) => Promise<string | null> | string | null;

export interface ProxyStats {
  accepted: number;
  active: number;
  /** Connections this proxy destroyed (reset, refuse, heal of a damaged connection). */
  resets: number;
  bytesForwarded: number;
  bytesDropped: number;
}

export interface ProxyOptions {
  /** Where connections go, HOST:PORT; changeable later with setTarget (e.g. a restarted node's new port). */
  target: string;
  /** HOST:PORT to listen on; default 127.0.0.1:0. */
  listen?: string;
  classify?: SourceClassifier;
  /** Randomness for jitter, in [0, 1); default Math.random (chaos runs pass a seeded one). */
  random?: () => number;
}

function splitAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(":");
  const port = Number(addr.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`"${addr}" is not HOST:PORT`);
  return { host: addr.slice(0, i), port };
}

function checkFaults(f: LinkFaults): void {
  for (const [name, v, max] of [["delayMs", f.delayMs, proxyDelayMsMax], ["jitterMs", f.jitterMs, proxyDelayMsMax], ["bandwidthBytesPerSec", f.bandwidthBytesPerSec, 1e12]] as const) {
    if (!Number.isFinite(v) || v < 0 || v > max) throw new RangeError(`${name} must be within 0..${max}, got ${v}`);
  }
}

/** One direction of one connection: an ordered queue of chunks, each released at its delivery time. */
class Pipe {
  private queued = 0;
  private lastDeliveryMs = 0;
  private paused = false;
  private readonly queue: { at: number; chunk: Buffer }[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private ending = false;

  constructor(
    private readonly from: net.Socket,
    private readonly to: net.Socket,
    private readonly conn: Conn,
  ) {}

  push(chunk: Buffer): void {
    const f = this.conn.faults();
    if (f.blackhole || f.refuse) {
      this.drop(chunk);
      return;
    }
    const now = performance.now();
    let at = now + f.delayMs + (f.jitterMs > 0 ? this.conn.proxy.random() * f.jitterMs : 0);
    if (f.bandwidthBytesPerSec > 0) at = Math.max(at, Math.max(this.lastDeliveryMs, now) + (chunk.length * 1000) / f.bandwidthBytesPerSec);
    // TCP is ordered: a chunk never overtakes the one before it.
    at = Math.max(at, this.lastDeliveryMs);
    this.lastDeliveryMs = at;
    if (at <= now && this.queue.length === 0) {
      this.deliver(chunk);
      return;
    }
    this.queue.push({ at, chunk });
    this.queued += chunk.length;
    if (this.queued > proxyQueueBytesMax && !this.paused) {
      this.paused = true;
      this.from.pause();
    }
    this.arm();
  }

  private drop(chunk: Buffer): void {
    this.conn.proxy.counters.bytesDropped += chunk.length;
    this.conn.damaged = true;
  }

  /** One timer per pipe, for the head of the queue: timers alone do not keep the order of close deadlines. */
  private arm(): void {
    if (this.timer !== null) return;
    const head = this.queue[0];
    if (head === undefined) {
      if (this.ending) this.to.end();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, Math.max(0, head.at - performance.now()));
  }

  private flush(): void {
    const now = performance.now();
    while (this.queue.length > 0 && (this.queue[0] as { at: number }).at <= now + 0.5) {
      const { chunk } = this.queue.shift() as { at: number; chunk: Buffer };
      this.queued -= chunk.length;
      // A blackhole switched on while the chunk waited swallows it too.
      const f = this.conn.faults();
      if (f.blackhole || f.refuse) this.drop(chunk);
      else this.deliver(chunk);
    }
    if (this.paused && this.queued <= proxyQueueBytesMax / 2) {
      this.paused = false;
      this.from.resume();
    }
    this.arm();
  }

  private deliver(chunk: Buffer): void {
    if (this.to.destroyed) return;
    this.conn.proxy.counters.bytesForwarded += chunk.length;
    this.to.write(chunk);
  }

  /** Ends the other side once everything queued has gone out. */
  end(): void {
    this.ending = true;
    if (this.queue.length === 0 && this.timer === null) this.to.end();
  }

  clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
  }
}

class Conn {
  damaged = false;
  private upstream: net.Socket | null = null;
  private closed = false;
  private pipes: Pipe[] = [];

  constructor(
    readonly proxy: FaultProxy,
    readonly client: net.Socket,
    readonly source: string | null,
  ) {}

  faults(): LinkFaults {
    return this.proxy.faultsFor(this.source);
  }

  open(target: string): void {
    const { host, port } = splitAddr(target);
    const up = net.connect({ host, port });
    this.upstream = up;
    up.setNoDelay(true);
    this.client.setNoDelay(true);
    const c2u = new Pipe(this.client, up, this);
    const u2c = new Pipe(up, this.client, this);
    this.pipes = [c2u, u2c];
    this.client.on("data", (b: Buffer) => c2u.push(b));
    up.on("data", (b: Buffer) => u2c.push(b));
    this.client.on("end", () => c2u.end());
    up.on("end", () => u2c.end());
    for (const s of [this.client, up]) {
      s.on("error", () => this.destroy(false));
      s.on("close", () => this.destroy(false));
    }
    this.client.resume();
  }

  /** Tears both sides down; reset=true sends a TCP RST where the runtime supports it. */
  destroy(reset: boolean): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pipes) p.clear();
    for (const s of [this.client, this.upstream]) {
      if (s === null || s.destroyed) continue;
      if (reset && typeof s.resetAndDestroy === "function") s.resetAndDestroy();
      else s.destroy();
    }
    if (reset) this.proxy.counters.resets += 1;
    this.proxy.forget(this);
  }
}

/**
 * The proxy. Faults are set for everything (`set(f)`) or for one source (`set(f, "node-2")`, where
 * the classifier names the source of each connection); a source-specific setting wins over the default.
 */
export class FaultProxy {
  readonly counters: ProxyStats = { accepted: 0, active: 0, resets: 0, bytesForwarded: 0, bytesDropped: 0 };
  readonly random: () => number;
  private defaults: LinkFaults = { ...noFaults };
  private readonly bySource = new Map<string, LinkFaults>();
  private readonly conns = new Set<Conn>();
  private target: string;

  private constructor(
    private readonly server: net.Server,
    readonly addr: string,
    opts: ProxyOptions,
  ) {
    this.target = opts.target;
    this.random = opts.random ?? Math.random;
  }

  static async start(opts: ProxyOptions): Promise<FaultProxy> {
    splitAddr(opts.target);
    const { host, port } = splitAddr(opts.listen ?? "127.0.0.1:0");
    const server = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    const a = server.address();
    if (a === null || typeof a === "string") throw new Error("proxy: no listening address");
    const proxy = new FaultProxy(server, `${host}:${a.port}`, opts);
    server.on("connection", (s: net.Socket) => void proxy.accept(s, opts.classify));
    return proxy;
  }

  get port(): number {
    return splitAddr(this.addr).port;
  }

  private async accept(socket: net.Socket, classify: SourceClassifier | undefined): Promise<void> {
    this.counters.accepted += 1;
    socket.on("error", () => socket.destroy());
    if (this.conns.size >= proxyConnectionsMax) {
      socket.destroy();
      return;
    }
    let source: string | null = null;
    try {
      source = classify === undefined ? null : await classify(socket);
    } catch {
      source = null;
    }
    if (socket.destroyed) return;
    const conn = new Conn(this, socket, source);
    if (this.faultsFor(source).refuse) {
      this.counters.resets += 1;
      if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy();
      else socket.destroy();
      return;
    }
    this.conns.add(conn);
    this.counters.active = this.conns.size;
    conn.open(this.target);
  }

  forget(c: Conn): void {
    this.conns.delete(c);
    this.counters.active = this.conns.size;
  }

  faultsFor(source: string | null): LinkFaults {
    return (source === null ? undefined : this.bySource.get(source)) ?? this.defaults;
  }

  /** Changes faults for every source (source undefined) or one; unnamed fields keep their value. */
  set(faults: Partial<LinkFaults>, source?: string): void {
    const before = source === undefined ? this.defaults : (this.bySource.get(source) ?? this.defaults);
    const next: LinkFaults = { ...before, ...faults };
    checkFaults(next);
    if (source === undefined) this.defaults = next;
    else this.bySource.set(source, next);
    this.settle();
  }

  /** No faults for anyone; connections that lost bytes to a blackhole are reset (their streams are torn). */
  heal(): void {
    this.defaults = { ...noFaults };
    this.bySource.clear();
    this.settle();
  }

  /** Applies the current settings to open connections: refuse resets, leaving a blackhole resets damaged ones. */
  private settle(): void {
    for (const c of [...this.conns]) {
      const f = c.faults();
      if (f.refuse || (c.damaged && !f.blackhole)) c.destroy(true);
    }
  }

  /** Resets every open connection (or those from one source) now; returns how many. */
  reset(source?: string): number {
    let n = 0;
    for (const c of [...this.conns]) {
      if (source !== undefined && c.source !== source) continue;
      c.destroy(true);
      n += 1;
    }
    return n;
  }

  /** Where new connections go from now on (open ones keep their upstream). */
  setTarget(target: string): void {
    splitAddr(target);
    this.target = target;
  }

  stats(): ProxyStats {
    return { ...this.counters };
  }

  sources(): (string | null)[] {
    return [...this.conns].map((c) => c.source);
  }

  async close(): Promise<void> {
    this.reset();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
