// Real node processes for chaos runs, each behind two fault proxies (peer and client) so addresses
// stay stable across restarts and every link can be delayed, cut or reset: kill -9 and restart,
// SIGSTOP/SIGCONT stalls, clock skew, and partitions between named groups of nodes.
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { ImdbClient } from "../../src/transport/client.ts";
import { loadTlsDir, type TlsMaterial } from "../../src/transport/tls.ts";
import { run, startNode, type NodeProc } from "../integration/harness.ts";
import { FaultProxy, type LinkFaults } from "./proxy.ts";
import { processClassifier } from "./source.ts";
import type { Target } from "./workload.ts";

/** Deadline for a node to print its ready line after (re)start. */
export const nodeStartMsMax = 20_000;
/** Client deadline in chaos runs: short, so a stalled or cut node turns ops indeterminate quickly. */
export const chaosClientDeadlineMs = 1500;

export interface ChaosNodeOptions {
  id: string;
  /** sync | interval:MS | none */
  durability: string;
  clockOffsetMs: number;
  /** More `imdb node` flags (e.g. --metrics-addr). */
  extraArgs?: readonly string[];
}

export interface ChaosClusterOptions {
  /** Working directory: certs/ and one data dir per node. */
  dir: string;
  nodes: readonly ChaosNodeOptions[];
  /** Join the nodes into one cluster (--seeds through the proxies); false: independent nodes. */
  join: boolean;
  random: () => number;
}

export class ChaosNode {
  proc: NodeProc | null = null;
  /** SIGSTOPped and not yet continued. */
  stopped = false;
  restarts = 0;
  /** Bumped at every start: clients made for an older process are replaced (no waiting out a reconnect backoff). */
  epoch = 0;
  /**
   * Bumped when a scenario makes the node lose its data (wiped or restored folder). The history
   * names each life apart (`node-2~life1`): the checkers hold a node to what it acknowledged, and
   * a lost disk legitimately forgets what it alone held before the loss.
   */
  dataLife = 0;

  constructor(
    readonly opts: ChaosNodeOptions,
    readonly peerProxy: FaultProxy,
    readonly clientProxy: FaultProxy,
    private readonly args: () => string[],
  ) {}

  get id(): string {
    return this.opts.id;
  }

  get pid(): number | null {
    return this.proc === null || this.proc.proc.exitCode !== null || this.proc.proc.signalCode !== null ? null : this.proc.proc.pid;
  }

  async start(): Promise<void> {
    this.proc = await startNode(this.id, this.args(), nodeStartMsMax);
    this.epoch += 1;
    this.peerProxy.setTarget(this.proc.peerAddr);
    this.clientProxy.setTarget(this.proc.clientAddr);
  }

  /** SIGKILL, wait for the exit, and cut the connections that led to it. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (p === null) return;
    if (this.stopped) this.cont();
    p.proc.kill("SIGKILL");
    await p.proc.exited;
    this.peerProxy.reset();
    this.clientProxy.reset();
  }

  async restart(): Promise<void> {
    await this.kill();
    this.restarts += 1;
    await this.start();
  }

  stop(): void {
    if (this.proc === null || this.stopped) return;
    this.proc.proc.kill("SIGSTOP");
    this.stopped = true;
  }

  cont(): void {
    if (this.proc === null || !this.stopped) return;
    this.proc.proc.kill("SIGCONT");
    this.stopped = false;
  }

  /** Resident memory in bytes (Linux /proc), or null when not running. */
  rssBytes(): number | null {
    const pid = this.pid;
    if (pid === null) return null;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      return m ? Number(m[1]) * 1024 : null;
    } catch {
      return null;
    }
  }

  async terminate(): Promise<number | null> {
    const p = this.proc;
    if (p === null) return null;
    if (this.stopped) this.cont();
    p.proc.kill("SIGTERM");
    const timer = setTimeout(() => p.proc.kill("SIGKILL"), 10_000);
    const code = await p.proc.exited;
    clearTimeout(timer);
    return code;
  }
}

export class ChaosCluster {
  readonly nodes: ChaosNode[] = [];
  private clients = new Map<string, { epoch: number; client: ImdbClient }>();
  private adminClients = new Map<string, { epoch: number; client: ImdbClient }>();

  private constructor(
    readonly dir: string,
    readonly clientTls: TlsMaterial,
    readonly adminTls: TlsMaterial,
  ) {}

  /** Makes certificates, proxies and nodes, and starts every node (in order, the first one being the seed). */
  static async start(o: ChaosClusterOptions): Promise<ChaosCluster> {
    const certs = join(o.dir, "certs");
    const made = await run(["certs", "init", "--dir", certs, "--nodes", o.nodes.map((n) => n.id).join(","), "--clients", "client", "--admins", "admin"]);
    if (made.code !== 0) throw new Error(`certs init failed: ${made.stderr}`);
    const c = new ChaosCluster(o.dir, await loadTlsDir(certs, "client"), await loadTlsDir(certs, "admin"));
    const pids = (): ReadonlyMap<string, number> => {
      const m = new Map<string, number>();
      for (const n of c.nodes) if (n.pid !== null) m.set(n.id, n.pid);
      return m;
    };
    const classify = processClassifier(pids);
    for (const spec of o.nodes) {
      const peerProxy = await FaultProxy.start({ target: "127.0.0.1:1", classify, random: o.random });
      const clientProxy = await FaultProxy.start({ target: "127.0.0.1:1", random: o.random });
      const node = new ChaosNode(spec, peerProxy, clientProxy, () => {
        const args = [
          "--tls-dir", certs, "--data-dir", join(o.dir, "data", spec.id), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0",
          "--advertise-addr", peerProxy.addr, "--durability", spec.durability,
        ];
        if (spec.clockOffsetMs !== 0) args.push("--clock-offset-ms", String(spec.clockOffsetMs));
        if (spec.extraArgs !== undefined) args.push(...spec.extraArgs);
        // Metrics on a fresh port, so a scenario can see a node's replication backlog.
        if (!args.includes("--metrics-addr")) args.push("--metrics-addr", "127.0.0.1:0");
        if (o.join) {
          const seeds = c.nodes.filter((n) => n !== node).map((n) => n.peerProxy.addr);
          if (seeds.length > 0) args.push("--seeds", seeds.join(","));
        }
        return args;
      });
      c.nodes.push(node);
    }
    for (const n of c.nodes) await n.start();
    return c;
  }

  node(id: string): ChaosNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** A client per node through its client proxy (the address survives restarts; the channel is renewed). */
  client(id: string): ImdbClient {
    return this.cached(this.clients, id, this.clientTls, chaosClientDeadlineMs);
  }

  admin(id: string): ImdbClient {
    return this.cached(this.adminClients, id, this.adminTls, 5000);
  }

  private cached(m: Map<string, { epoch: number; client: ImdbClient }>, id: string, tls: TlsMaterial, deadlineMs: number): ImdbClient {
    const node = this.node(id);
    const have = m.get(id);
    if (have !== undefined && have.epoch === node.epoch) return have.client;
    have?.client.close();
    const client = new ImdbClient({ server: node.clientProxy.addr, tls, deadlineMs });
    m.set(id, { epoch: node.epoch, client });
    return client;
  }

  /** Nodes the workload is kept away from (see drain). */
  private readonly drained = new Set<string>();

  targets(): Target[] {
    return this.nodes
      .filter((n) => !this.drained.has(n.id))
      .map((n) => ({ node: n.dataLife === 0 ? n.id : `${n.id}~life${n.dataLife}`, client: this.client(n.id), incarnation: () => n.epoch }));
  }

  /** Sends no more workload ops to `id` (targets() leaves it out) until undrain(id). */
  drain(id: string): void {
    this.node(id);
    this.drained.add(id);
  }

  undrain(id: string): void {
    this.drained.delete(id);
  }

  /**
   * Waits until `id` has no delta unacknowledged by any peer (its /metrics backlog is 0 for every
   * peer, twice in a row): everything it acknowledged is then held by its peers too. False at the deadline.
   */
  async awaitOutboundSettled(id: string, deadlineMs: number): Promise<boolean> {
    const addr = this.node(id).proc?.metricsAddr ?? null;
    if (addr === null) throw new Error(`${id} serves no metrics`);
    const end = performance.now() + deadlineMs;
    let clean = 0;
    for (;;) {
      const text = await fetch(`http://${addr}/metrics`).then((r) => r.text(), () => "");
      const backlog = text.split("\n").filter((l) => l.startsWith("imdb_peer_delta_backlog{")).map((l) => Number(l.split(" ").pop()));
      clean = backlog.length > 0 && backlog.every((b) => b === 0) ? clean + 1 : 0;
      if (clean >= 2) return true;
      if (performance.now() > end) return false;
      await Bun.sleep(100);
    }
  }

  /** Cuts every link between nodes of different groups, both ways (bytes dropped, as a silent network would). */
  partition(groups: readonly (readonly string[])[]): void {
    const groupOf = new Map<string, number>();
    groups.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)));
    for (const to of this.nodes) {
      for (const from of this.nodes) {
        if (from === to) continue;
        if (groupOf.get(from.id) !== groupOf.get(to.id)) to.peerProxy.set({ blackhole: true }, from.id);
      }
    }
  }

  /** Cuts the listed directed links only (from -> to), e.g. a ring where each node hears only its neighbours. */
  cutLinks(links: readonly (readonly [string, string])[]): void {
    for (const [from, to] of links) this.node(to).peerProxy.set({ blackhole: true }, from);
  }

  /** The same faults on every peer link. */
  setPeerFaults(f: Partial<LinkFaults>): void {
    for (const n of this.nodes) n.peerProxy.set(f);
  }

  heal(): void {
    for (const n of this.nodes) {
      n.cont();
      n.peerProxy.heal();
      n.clientProxy.heal();
    }
  }

  /** Members each node sees alive (by id); a node that does not answer maps to null. */
  async aliveViews(): Promise<Map<string, string[] | null>> {
    const out = new Map<string, string[] | null>();
    for (const n of this.nodes) {
      try {
        out.set(n.id, (await this.client(n.id).members()).filter((m) => m.status === "alive").map((m) => m.id).sort());
      } catch {
        out.set(n.id, null);
      }
    }
    return out;
  }

  /** Waits until every node sees every node alive; false at the deadline. */
  async awaitMembership(deadlineMs: number): Promise<boolean> {
    const end = performance.now() + deadlineMs;
    const want = this.nodes.map((n) => n.id).sort().join(",");
    for (;;) {
      const views = await this.aliveViews();
      if ([...views.values()].every((v) => v !== null && v.join(",") === want)) return true;
      if (performance.now() > end) return false;
      await Bun.sleep(100);
    }
  }

  async close(): Promise<void> {
    for (const c of [...this.clients.values(), ...this.adminClients.values()]) c.client.close();
    this.clients.clear();
    this.adminClients.clear();
    await Promise.all(this.nodes.map((n) => n.terminate().catch(() => null)));
    for (const n of this.nodes) {
      await n.peerProxy.close();
      await n.clientProxy.close();
    }
  }
}

/** A port free right now on 127.0.0.1 (for flags that need a fixed port, e.g. --metrics-addr). */
export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const a = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  if (a === null || typeof a === "string") throw new Error("no free port");
  return a.port;
}
