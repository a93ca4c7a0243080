// `imdb bench replication`: a real N-node mutual-TLS cluster on loopback; how long after a write
// is acknowledged on one node it is readable on every other node (issue 6: p99 <= 50 ms).
import type { Command } from "commander";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initCerts } from "../transport/certs.ts";
import { ImdbClient, RpcError } from "../transport/client.ts";
import { loadTlsDir } from "../transport/tls.ts";
import { spawnNode, type SpawnedNode } from "./spawn-node.ts";

export const replicationNodesMax = 9;
export const replicationWritesMax = 100_000;
const formDeadlineMs = 30_000;
/** A write not visible everywhere after this long counts as lost for the benchmark (and fails it). */
const visibleDeadlineMs = 10_000;

export interface ReplicationResult {
  nodes: number;
  writes: number;
  observations: number;
  msP50: number;
  msP99: number;
  msMax: number;
  notVisible: number;
  targetP99Ms: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function waitVisible(c: ImdbClient, key: string, value: string, t0: number): Promise<number | null> {
  while (performance.now() - t0 < visibleDeadlineMs) {
    try {
      const v = await c.get(key);
      if (v.type === "lww" && decoder.decode(v.value) === value) return performance.now() - t0;
    } catch (err) {
      if (!(err instanceof RpcError) || err.codeName !== "NOT_FOUND") throw err;
    }
  }
  return null;
}

export async function runReplicationBench(opts: { nodes: number; writes: number; progress: (s: string) => void }): Promise<ReplicationResult> {
  const root = await mkdtemp(join(tmpdir(), "imdb-bench-replication-"));
  const nodes: SpawnedNode[] = [];
  const clients: ImdbClient[] = [];
  try {
    const ids = Array.from({ length: opts.nodes }, (_, i) => `node-${i + 1}`);
    const certs = join(root, "certs");
    await initCerts({ dir: certs, nodes: ids, clients: ["client"], admins: [], hosts: [], days: 1, force: false });
    const args = (id: string, seed: string | null): string[] => [
      "--tls-dir", certs, "--data-dir", join(root, id), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", "--log-level", "warn",
      ...(seed ? ["--seeds", seed] : []),
    ];
    opts.progress(`starting ${opts.nodes} nodes`);
    const first = await spawnNode(ids[0]!, args(ids[0]!, null));
    nodes.push(first);
    nodes.push(...(await Promise.all(ids.slice(1).map((id) => spawnNode(id, args(id, first.peerAddr))))));
    const tls = await loadTlsDir(certs, "client");
    for (const n of nodes) clients.push(new ImdbClient({ server: n.clientAddr, tls }));
    const formEnd = performance.now() + formDeadlineMs;
    for (const c of clients) {
      for (;;) {
        const ms = await c.members();
        if (ms.filter((m) => m.status === "alive").length === opts.nodes) break;
        if (performance.now() > formEnd) throw new Error("the cluster did not form in time");
        await Bun.sleep(50);
      }
    }
    opts.progress(`cluster formed; ${opts.writes} writes, each read back on the ${opts.nodes - 1} other nodes`);
    const samples: number[] = [];
    let notVisible = 0;
    for (let w = 0; w < opts.writes; w++) {
      const writer = w % opts.nodes;
      const key = `rep:${w}`;
      const value = `v${w}`;
      await clients[writer]!.set(key, encoder.encode(value));
      const t0 = performance.now();
      const seen = await Promise.all(clients.filter((_, i) => i !== writer).map((c) => waitVisible(c, key, value, t0)));
      for (const s of seen) {
        if (s === null) notVisible++;
        else samples.push(s);
      }
      if (w % 100 === 99) opts.progress(`  ${w + 1} writes`);
    }
    samples.sort((a, b) => a - b);
    const pct = (p: number): number => Math.round((samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] ?? 0) * 100) / 100;
    return {
      nodes: opts.nodes, writes: opts.writes, observations: samples.length, msP50: pct(0.5), msP99: pct(0.99),
      msMax: Math.round((samples[samples.length - 1] ?? 0) * 100) / 100, notVisible, targetP99Ms: 50,
    };
  } finally {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(root, { recursive: true, force: true });
  }
}

export function registerBench(bench: Command): void {
  bench
    .command("replication")
    .description("a real N-node cluster on loopback: time from a write's ack on one node to its visibility on every other")
    .option("--nodes <n>", "cluster size", "5")
    .option("--writes <n>", "writes, spread over the nodes", "300")
    .option("--json", "print exactly one JSON object")
    .action(async (o: { nodes: string; writes: string; json?: boolean }) => {
      const nodes = Number(o.nodes);
      const writes = Number(o.writes);
      if (!Number.isInteger(nodes) || nodes < 2 || nodes > replicationNodesMax || !Number.isInteger(writes) || writes < 1 || writes > replicationWritesMax) {
        console.error(`error: --nodes must be 2..${replicationNodesMax} and --writes 1..${replicationWritesMax}`);
        process.exit(2);
      }
      const r = await runReplicationBench({ nodes, writes, progress: (s) => process.stderr.write(`bench replication: ${s}\n`) });
      if (o.json) console.log(JSON.stringify(r));
      else {
        console.log(`${r.nodes} nodes, ${r.writes} writes, ${r.observations} reads on other nodes: visible after p50 ${r.msP50} ms, p99 ${r.msP99} ms, max ${r.msMax} ms` +
          ` (target p99 <= ${r.targetP99Ms} ms)${r.notVisible > 0 ? `; ${r.notVisible} NOT visible within ${visibleDeadlineMs} ms` : ""}`);
      }
      if (r.notVisible > 0) process.exitCode = 1;
    });
}
