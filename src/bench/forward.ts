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

export async function runForwardBench(o: { writes: number; progress: (s: string) => void }): Promise<ForwardBenchResult> {
  const root = await mkdtemp(join(tmpdir(), "imdb-bench-forward-"));
  const nodes: SpawnedNode[] = [];
  let client: ImdbClient | null = null;
  try {
    const ids = ["node-1", "node-2"];
    const certs = join(root, "certs");
    await initCerts({ dir: certs, nodes: ids, clients: ["client"], admins: [], hosts: [], days: 1, force: false });
    const args = (id: string, seed: string | null): string[] => [
      "--tls-dir", certs, "--data-dir", join(root, id), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", "--log-level", "warn",
      "--durability", "none", "--replication-factor", "1", "--partitions", String(partitionsDefault), ...(seed ? ["--seeds", seed] : []),
    ];
    o.progress("bench partition: starting 2 nodes (replication factor 1) for the forwarding overhead");
    const first = await spawnNode(ids[0]!, args(ids[0]!, null));
    nodes.push(first);
    nodes.push(await spawnNode(ids[1]!, args(ids[1]!, first.peerAddr)));
    client = new ImdbClient({ server: first.clientAddr, tls: await loadTlsDir(certs, "client") });
    const formEnd = performance.now() + formDeadlineMs;
    while ((await client.members()).filter((m) => m.status === "alive").length < 2) {
      if (performance.now() > formEnd) throw new Error("the two nodes did not form a cluster in time");
      await Bun.sleep(50);
    }
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
