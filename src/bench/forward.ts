// The forwarded-request overhead of issue 17 (`imdb bench partition --forward-writes N`): two real
// nodes (mutual TLS, replicationFactor 1, so each key has exactly one owner) and one client
// connected to node-1. Unary Increments alternate between a key node-1 owns (answered there) and
// a key node-2 owns (node-1 forwards it over the peer channel and relays the answer), so both
// series see the same moments of a shared machine; p50 / p99 of each and their ratio.
// Durability `none` on both nodes: the figure is the hop, not the disk (with `sync` both series
// add the owner's fdatasync).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Placement, partitionsDefault } from "../cluster/placement.ts";
import { asNodeId } from "../cluster/types.ts";
import { initCerts } from "../transport/certs.ts";
import { ImdbClient } from "../transport/client.ts";
import { loadTlsDir } from "../transport/tls.ts";
import { spawnNode, type SpawnedNode } from "./spawn-node.ts";

const formDeadlineMs = 30_000;
/** Keys per Batch in the capacity run. */
const capacityBatch = 1000;
/** How long the capacity run waits for every copy to land after the last write. */
const capacitySettleMs = 60_000;
/** Writes of each kind before measuring (connections, JIT). */
const warmupWrites = 200;

export interface ForwardBenchResult {
  writes: number;
  owner: { p50Ms: number; p99Ms: number };
  forwarded: { p50Ms: number; p99Ms: number };
  /** forwarded / owner, per percentile. */
  ratioP50: number;
  ratioP99: number;
}

function percentiles(samples: number[]): { p50Ms: number; p99Ms: number } {
  samples.sort((a, b) => a - b);
  const at = (p: number): number => Math.round((samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] ?? 0) * 1000) / 1000;
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

/** n real nodes (mutual TLS, durability none) with a replication factor, and a client per node, ready. */
async function startPartitioned(root: string, n: number, replicationFactor: number, progress: (s: string) => void, spareIds: readonly string[] = []): Promise<{ nodes: SpawnedNode[]; clients: ImdbClient[]; ids: string[]; args: (id: string, seed: string | null) => string[] }> {
  const ids = Array.from({ length: n }, (_, i) => `node-${i + 1}`);
  const certs = join(root, "certs");
  await initCerts({ dir: certs, nodes: [...ids, ...spareIds], clients: ["client"], admins: ["admin"], hosts: [], days: 1, force: false });
  const args = (id: string, seed: string | null): string[] => [
    "--tls-dir", certs, "--data-dir", join(root, id), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", "--log-level", "warn",
    "--durability", "none", "--replication-factor", String(replicationFactor), "--partitions", String(partitionsDefault), ...(seed ? ["--seeds", seed] : []),
  ];
  progress(`bench partition: starting ${n} nodes (replication factor ${replicationFactor})`);
  const nodes: SpawnedNode[] = [];
  const clients: ImdbClient[] = [];
  try {
    const first = await spawnNode(ids[0]!, args(ids[0]!, null));
    nodes.push(first);
    nodes.push(...(await Promise.all(ids.slice(1).map((id) => spawnNode(id, args(id, first.peerAddr))))));
    const tls = await loadTlsDir(certs, "client");
    for (const node of nodes) clients.push(new ImdbClient({ server: node.clientAddr, tls }));
    const formEnd = performance.now() + formDeadlineMs;
    for (const c of clients) {
      while ((await c.members()).filter((m) => m.status === "alive").length < n) {
        if (performance.now() > formEnd) throw new Error(`the ${n} nodes did not form a cluster in time`);
        await Bun.sleep(50);
      }
    }
    return { nodes, clients, ids, args };
  } catch (err) {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((x) => x.stop()));
    throw err;
  }
}

export async function runForwardBench(o: { writes: number; progress: (s: string) => void }): Promise<ForwardBenchResult> {
  const root = await mkdtemp(join(tmpdir(), "imdb-bench-forward-"));
  let nodes: SpawnedNode[] = [];
  let client: ImdbClient | null = null;
  try {
    const started = await startPartitioned(root, 2, 1, o.progress);
    nodes = started.nodes;
    const ids = started.ids;
    client = started.clients[0]!;
    started.clients[1]!.close();
    // The same placement the nodes compute: keys node-1 owns and keys node-2 owns.
    const placement = new Placement(ids.map(asNodeId), { partitions: partitionsDefault, replicationFactor: 1 });
    const local: string[] = [];
    const remote: string[] = [];
    for (let i = 0; local.length < 1000 || remote.length < 1000; i++) {
      const key = `fwd:${i}`;
      (placement.ownersOfKey(key)[0] === "node-1" ? local : remote).push(key);
    }
    const owner: number[] = [];
    const forwarded: number[] = [];
    o.progress(`bench partition: ${o.writes} unary Increments each to an owned and a forwarded key, alternating`);
    for (let i = 0; i < warmupWrites + o.writes; i++) {
      for (const [keys, samples] of [[local, owner], [remote, forwarded]] as const) {
        const t0 = performance.now();
        await client.increment(keys[i % keys.length]!, 1n);
        if (i >= warmupWrites) samples.push(performance.now() - t0);
      }
    }
    const a = percentiles(owner);
    const b = percentiles(forwarded);
    const ratio = (x: number, y: number): number => (y === 0 ? 0 : Math.round((x / y) * 100) / 100);
    return { writes: o.writes, owner: a, forwarded: b, ratioP50: ratio(b.p50Ms, a.p50Ms), ratioP99: ratio(b.p99Ms, a.p99Ms) };
  } finally {
    client?.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(root, { recursive: true, force: true });
  }
}

export interface CapacityBenchResult {
  nodes: number;
  replicationFactor: number;
  keys: number;
  /** Keys each node stores (status), and that as a share of all keys written. */
  perNode: number[];
  shares: number[];
  /** replicationFactor / nodes: what each node would hold with a perfect spread. */
  idealShare: number;
  /** keys / the most any node stores: keys this cluster stores per one node's worth of memory. */
  capacity: number;
  /**
   * Then the last node leaves (`imdb admin leave`): the keys it held, how long the leave took
   * (its hand-off of every key to the next owners, each call durable there, then the drain),
   * and that as keys per second.
   */
  leave: { keysHeld: number; seconds: number; keysPerSecond: number };
  /**
   * Then a new node joins the rest: how long until it held its share and the former owners had
   * dropped what moved to it (Cluster.evictStrays: the nodes' key counts sum to keys x RF again),
   * the keys each node stores then (the joiner last), and keys / the most any node stores.
   */
  join: { id: string; seconds: number; perNode: number[]; capacity: number };
}

/**
 * Issue 17's real-node capacity figure: `nodes` real nodes with replicationFactor 3 (mutual
 * TLS, durability none), `keys` counters written through node-1 in Batches of 1000 (forwarded
 * to their owners); once every copy has landed (the nodes' key counts sum to keys x RF), the
 * keys each node stores.
 */
export async function runCapacityBench(o: { keys: number; nodes: number; replicationFactor: number; progress: (s: string) => void }): Promise<CapacityBenchResult> {
  const root = await mkdtemp(join(tmpdir(), "imdb-bench-capacity-"));
  let started: Awaited<ReturnType<typeof startPartitioned>> | null = null;
  try {
    const joiner = `node-${o.nodes + 1}`;
    started = await startPartitioned(root, o.nodes, o.replicationFactor, o.progress, [joiner]);
    const c = started.clients[0]!;
    o.progress(`bench partition: writing ${o.keys.toLocaleString("en-US")} keys through node-1`);
    for (let start = 0; start < o.keys; start += capacityBatch) {
      const ops = [];
      for (let i = start; i < Math.min(o.keys, start + capacityBatch); i++) ops.push({ kind: "increment" as const, key: `cap:${i}`, amount: 1n });
      const items = await c.batch(ops);
      const failed = items.find((it) => !it.ok);
      if (failed !== undefined && !failed.ok) throw new Error(`a write failed: ${failed.code} ${failed.message}`);
    }
    const want = o.keys * Math.min(o.replicationFactor, o.nodes);
    const end = performance.now() + capacitySettleMs;
    let perNode: number[] = [];
    for (;;) {
      perNode = await Promise.all(started.clients.map(async (x) => (await x.status()).keys));
      if (perNode.reduce((a, b) => a + b, 0) >= want) break;
      if (performance.now() > end) throw new Error(`the copies did not all land within ${capacitySettleMs} ms: ${perNode.join(", ")} of ${want} in all`);
      await Bun.sleep(200);
    }
    const round3 = (x: number): number => Math.round(x * 1000) / 1000;
    // The last node leaves: every key it holds goes to its next owners before it answers.
    const last = started.nodes.length - 1;
    o.progress(`bench partition: ${started.ids[last]} leaves, handing its ${perNode[last]!.toLocaleString("en-US")} keys to their next owners`);
    const admin = new ImdbClient({ server: started.nodes[last]!.clientAddr, tls: await loadTlsDir(join(root, "certs"), "admin") });
    const t0 = performance.now();
    try {
      await admin.leave();
    } finally {
      admin.close();
    }
    const seconds = (performance.now() - t0) / 1000;
    // A new node joins the ones left: filled with its share, and the former owners of what moved
    // to it drop their copies once it holds them; capacity is back where the placement puts it.
    const rest = started.clients.slice(0, last);
    started.clients[last]!.close();
    o.progress(`bench partition: ${joiner} joins the ${rest.length} nodes left`);
    const t1 = performance.now();
    const joined = await spawnNode(joiner, started.args(joiner, started.nodes[0]!.peerAddr));
    started.nodes.push(joined);
    const cj = new ImdbClient({ server: joined.clientAddr, tls: await loadTlsDir(join(root, "certs"), "client") });
    started.clients.splice(last, 1, cj);
    const members = [...rest, cj];
    const moveEnd = performance.now() + capacitySettleMs * 5;
    let after: number[] = [];
    for (;;) {
      after = await Promise.all(members.map(async (x) => (await x.status()).keys));
      const alive = (await cj.members()).filter((m) => m.status === "alive").length;
      if (alive === members.length && after[after.length - 1]! > 0 && after.reduce((a, b) => a + b, 0) === want) break;
      if (performance.now() > moveEnd) throw new Error(`${joiner} was not filled, or the former owners did not drop what moved, within ${capacitySettleMs * 5} ms: ${after.join(", ")} of ${want} in all`);
      await Bun.sleep(200);
    }
    const joinSeconds = (performance.now() - t1) / 1000;
    return {
      nodes: o.nodes, replicationFactor: o.replicationFactor, keys: o.keys, perNode,
      shares: perNode.map((k) => round3(k / o.keys)), idealShare: round3(Math.min(o.replicationFactor, o.nodes) / o.nodes),
      capacity: round3(o.keys / Math.max(...perNode)),
      leave: { keysHeld: perNode[last]!, seconds: round3(seconds), keysPerSecond: Math.round(perNode[last]! / seconds) },
      join: { id: joiner, seconds: round3(joinSeconds), perNode: after, capacity: round3(o.keys / Math.max(...after)) },
    };
  } finally {
    for (const x of started?.clients ?? []) x.close();
    await Promise.all((started?.nodes ?? []).map((n) => n.stop()));
    await rm(root, { recursive: true, force: true });
  }
}
