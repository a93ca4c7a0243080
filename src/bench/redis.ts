// `imdb bench redis` (`npm run bench:redis`): a real node under `imdb bench load`-shaped load,
// side by side in one run with redis-server under redis-benchmark, and the ratios issue 5 asks
// for: Batch path in durability none vs pipelined INCR, sync vs appendfsync always, and the
// p50 of a unary Increment with one client.
import type { Command } from "commander";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initCerts } from "../transport/certs.ts";
import { ImdbClient } from "../transport/client.ts";
import { loadTlsDir } from "../transport/tls.ts";
import { runLoad, type LoadResult } from "./load-workers.ts";
import { redisBenchmark, startRedis, type RedisPersistence } from "./redis-server.ts";
import { spawnNode } from "./spawn-node.ts";
import { verdictWord } from "./report.ts";

export const benchRedisSecondsMax = 600;
/** Distinct keys on both sides (redis-benchmark -r). */
const keyspace = 1000;
/** gRPC connections the loader spreads its callers over. */
const channels = 4;

interface Case {
  name: string;
  ours: { durability: string; callers: number; batch: number };
  redis: { persistence: RedisPersistence; clients: number; pipeline?: number };
  /** What the target compares: throughput ratio (ours/redis >= target) or our p50 (<= target ms). */
  target: { kind: "ratio"; min: number } | { kind: "p50"; maxMs: number };
}

const cases: Case[] = [
  {
    name: "Batch incr, durability none vs Redis -P 16 -c 50",
    ours: { durability: "none", callers: 8, batch: 1000 },
    redis: { persistence: "none", clients: 50, pipeline: 16 },
    target: { kind: "ratio", min: 0.5 },
  },
  {
    name: "Batch incr, durability sync vs Redis appendfsync always -c 50",
    ours: { durability: "sync", callers: 16, batch: 100 },
    redis: { persistence: "appendfsync-always", clients: 50 },
    target: { kind: "ratio", min: 1 },
  },
  {
    name: "unary Increment, 1 client, durability sync vs Redis appendfsync always -c 1",
    ours: { durability: "sync", callers: 1, batch: 1 },
    redis: { persistence: "appendfsync-always", clients: 1 },
    target: { kind: "p50", maxMs: 1 },
  },
  {
    name: "unary Increment, 1 client, durability none vs Redis -c 1",
    ours: { durability: "none", callers: 1, batch: 1 },
    redis: { persistence: "none", clients: 1 },
    target: { kind: "p50", maxMs: 1 },
  },
];

export interface RedisBenchRow {
  case: string;
  ours: Pick<LoadResult, "opsPerSec" | "latencyMs" | "clients" | "batch" | "errors" | "cpu">;
  redis: { rps: number; p50Ms: number | null; version: string } | { skipped: string };
  ratio: number | null;
  target: string;
  met: boolean | null;
}

export async function runRedisBench(opts: { seconds: number; progress: (s: string) => void }): Promise<RedisBenchRow[]> {
  const root = await mkdtemp(join(tmpdir(), "imdb-bench-redis-"));
  const rows: RedisBenchRow[] = [];
  try {
    const certs = join(root, "certs");
    await initCerts({ dir: certs, nodes: ["bench-1"], clients: ["client"], admins: [], hosts: [], days: 1, force: false });
    const tls = await loadTlsDir(certs, "client");
    for (const [i, c] of cases.entries()) {
      opts.progress(`${c.name}: ours (${c.ours.callers} callers x batch ${c.ours.batch}, ${opts.seconds}s)`);
      const node = await spawnNode("bench-1", [
        "--tls-dir", certs, "--data-dir", join(root, `data-${i}`), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0",
        "--durability", c.ours.durability, "--log-level", "warn",
      ]);
      const clients = Array.from({ length: Math.min(channels, c.ours.callers) }, () => new ImdbClient({ server: node.clientAddr, tls }));
      let ours: LoadResult;
      try {
        const plan = { op: "incr" as const, callers: c.ours.callers, batch: c.ours.batch, seconds: opts.seconds, keys: keyspace, value: new Uint8Array(16) };
        ours = await runLoad(clients, plan, node.proc.pid, (line) => opts.progress(`  ${line}`));
      } finally {
        for (const cl of clients) cl.close();
        await node.stop();
      }
      const nodeCpu = ours.cpu.nodePct === null ? "?" : `${Math.round(ours.cpu.nodePct)}%`;
      opts.progress(`  ours: ${ours.opsPerSec} ops/s, p50 ${ours.latencyMs.p50} ms; CPU node ${nodeCpu}, load generator ${Math.round(ours.cpu.loadersPct)}%`);
      opts.progress(`${c.name}: redis-benchmark -c ${c.redis.clients}${c.redis.pipeline ? ` -P ${c.redis.pipeline}` : ""}`);
      const redis = await startRedis(join(root, `redis-${i}`), c.redis.persistence);
      let redisResult: RedisBenchRow["redis"];
      if ("skipped" in redis) redisResult = redis;
      else {
        try {
          // Size the run to about `seconds`: probe briefly, then run the real thing.
          const probe = await redisBenchmark(redis.tool, redis.port, { clients: c.redis.clients, requests: 2000 * (c.redis.pipeline ?? 1), pipeline: c.redis.pipeline, keyspace });
          const requests = Math.max(2000, Math.round(probe.rps * opts.seconds));
          const r = await redisBenchmark(redis.tool, redis.port, { clients: c.redis.clients, requests, pipeline: c.redis.pipeline, keyspace });
          redisResult = { ...r, version: redis.version };
        } finally {
          await redis.stop();
        }
      }
      opts.progress("skipped" in redisResult ? `  redis skipped: ${redisResult.skipped}` : `  redis: ${Math.round(redisResult.rps)} ops/s, p50 ${redisResult.p50Ms} ms`);
      const ratio = "skipped" in redisResult ? null : ours.opsPerSec / redisResult.rps;
      const met = c.target.kind === "ratio" ? (ratio === null ? null : ratio >= c.target.min) : ours.latencyMs.p50 <= c.target.maxMs;
      rows.push({
        case: c.name,
        ours: { opsPerSec: ours.opsPerSec, latencyMs: ours.latencyMs, clients: ours.clients, batch: ours.batch, errors: ours.errors, cpu: ours.cpu },
        redis: redisResult,
        ratio,
        target: c.target.kind === "ratio" ? `ours/redis >= ${c.target.min}` : `our p50 <= ${c.target.maxMs} ms`,
        met,
      });
    }
    return rows;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

export function registerBench(bench: Command): void {
  bench
    .command("redis")
    .description("a real node vs redis-server in the same run: Batch and unary INCR, durability none and sync")
    .option("--seconds <n>", "measuring time per side per case", "5")
    .option("--json", "print exactly one JSON object")
    .action(async (o: { seconds: string; json?: boolean }) => {
      const seconds = Number(o.seconds);
      if (!Number.isInteger(seconds) || seconds < 1 || seconds > benchRedisSecondsMax) {
        console.error(`error: --seconds must be an integer 1..${benchRedisSecondsMax}`);
        process.exit(2);
      }
      const rows = await runRedisBench({ seconds, progress: (s) => process.stderr.write(`bench redis: ${s}\n`) });
      if (o.json) {
        console.log(JSON.stringify({ results: rows }));
        return;
      }
      for (const r of rows) {
        const redis = "skipped" in r.redis ? `redis skipped (${r.redis.skipped})` : `redis ${Math.round(r.redis.rps)} ops/s p50 ${r.redis.p50Ms} ms`;
        const ratio = r.ratio === null ? "" : `  ratio ${r.ratio.toFixed(2)}`;
        console.log(`${r.case}\n  ours ${r.ours.opsPerSec} ops/s p50 ${r.ours.latencyMs.p50} ms p99 ${r.ours.latencyMs.p99} ms | ${redis}${ratio} | target ${r.target}: ${verdictWord(r.met)}`);
      }
    });
}
