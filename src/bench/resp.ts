// `imdb bench resp`: redis-benchmark drives a real node's Redis port and a local redis-server in
// the same run with the same flags, and the command prints both and their ratio for the targets
// of issue 15 (non-pipelined, pipelined, durable, sets and hashes; plaintext and TLS).
import type { Command } from "commander";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initCerts } from "../transport/certs.ts";
import { redisTlsArgs, startRedis, type RedisPersistence, type RedisTlsFiles } from "./redis-server.ts";
import { spawnNode } from "./spawn-node.ts";
import { verdictWord } from "./report.ts";

/** Most requests per redis-benchmark test (-n): a run stays within minutes. */
export const benchRespRequestsMax = 10_000_000;
/** Distinct keys / members / fields on both sides (redis-benchmark -r). */
const keyspace = 100_000;
const clients = 50;

type RespTest = "incr" | "set" | "get" | "sadd" | "hset";

interface RespCase {
  name: string;
  tests: readonly RespTest[];
  pipeline?: number;
  tls: boolean;
  durability: string;
  persistence: RedisPersistence;
  /** ours/redis at least this. */
  target: number;
  /** -n is this many times --requests (pipelined runs are that much faster). */
  requestsScale?: number;
}

const cases: RespCase[] = [
  { name: "-c 50, durability none vs no persistence, plaintext", tests: ["incr", "set", "get"], tls: false, durability: "none", persistence: "none", target: 1 },
  { name: "-c 50, durability none vs no persistence, TLS both sides", tests: ["incr", "set", "get"], tls: true, durability: "none", persistence: "none", target: 1 },
  { name: "-c 50 -P 16, durability none vs no persistence, plaintext", tests: ["incr", "set", "get"], pipeline: 16, tls: false, durability: "none", persistence: "none", target: 0.7, requestsScale: 4 },
  { name: "-c 50, durability sync vs appendfsync always, plaintext", tests: ["incr"], tls: false, durability: "sync", persistence: "appendfsync-always", target: 3 },
  { name: "-c 50, sets and hashes, durability none vs no persistence, plaintext", tests: ["sadd", "hset"], tls: false, durability: "none", persistence: "none", target: 0.8 },
];

export interface RespBenchRow {
  case: string;
  test: string;
  ours: { rps: number; p50Ms: number | null } | { failed: string };
  redis: { rps: number; p50Ms: number | null; version: string } | { skipped: string };
  ratio: number | null;
  target: number;
  met: boolean | null;
}

/** Runs redis-benchmark once for every test of `tests`; requests/s and p50 by test (upper case, as it prints them). */
async function redisBenchmarkTests(port: number, tests: readonly RespTest[], o: { requests: number; pipeline?: number; tls: string[] }): Promise<Map<string, { rps: number; p50Ms: number | null }>> {
  const tool = Bun.which("redis-benchmark");
  if (tool === null) throw new Error("redis-benchmark is not installed (apt-get install redis-tools)");
  const args = [tool, "-h", "127.0.0.1", "-p", String(port), ...o.tls, "-c", String(clients), "-n", String(o.requests), "-r", String(keyspace), "-t", tests.join(","), "--csv"];
  if (o.pipeline !== undefined) args.push("-P", String(o.pipeline));
  const p = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const rows = new Map<string, { rps: number; p50Ms: number | null }>();
  // CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
  for (const line of out.split("\n")) {
    const cells = line.split(",").map((c) => c.replaceAll('"', ""));
    const rps = Number(cells[1]);
    if (cells[0] !== undefined && cells[0] !== "test" && Number.isFinite(rps)) {
      const p50 = Number(cells[4]);
      rows.set(cells[0], { rps, p50Ms: Number.isFinite(p50) ? p50 : null });
    }
  }
  if (rows.size === 0) throw new Error(`could not read redis-benchmark output: ${(out + err).slice(-300)}`);
  return rows;
}

export async function runRespBench(opts: { requests: number; only: string | null; progress: (s: string) => void }): Promise<RespBenchRow[]> {
  const root = await mkdtemp(join(tmpdir(), "imdb-bench-resp-"));
  const rows: RespBenchRow[] = [];
  try {
    const certs = join(root, "certs");
    await initCerts({ dir: certs, nodes: ["bench-1"], clients: ["client"], admins: [], hosts: [], days: 1, force: false });
    const pem = (name: string): RedisTlsFiles => ({ cert: join(certs, `${name}.crt`), key: join(certs, `${name}.key`), ca: join(certs, "ca.crt") });
    const selected = cases.filter((c) => opts.only === null || c.name.includes(opts.only));
    for (const [i, c] of selected.entries()) {
      const requests = opts.requests * (c.requestsScale ?? 1);
      const tlsArgs = c.tls ? redisTlsArgs(pem("client")) : [];
      const flags = `-c ${clients} -n ${requests} -r ${keyspace}${c.pipeline === undefined ? "" : ` -P ${c.pipeline}`} -t ${c.tests.join(",")}${c.tls ? " --tls" : ""}`;
      opts.progress(`${c.name}: ours (redis-benchmark ${flags})`);
      const node = await spawnNode("bench-1", [
        ...(c.tls ? ["--tls-dir", certs] : ["--insecure"]), "--data-dir", join(root, `data-${i}`), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0",
        "--resp-addr", "127.0.0.1:0", "--durability", c.durability, "--log-level", "warn",
      ]);
      let ours: Map<string, { rps: number; p50Ms: number | null }> | { failed: string };
      try {
        const port = Number(node.respAddr?.split(":").at(-1));
        ours = await redisBenchmarkTests(port, c.tests, { requests, pipeline: c.pipeline, tls: tlsArgs });
      } catch (err) {
        ours = { failed: err instanceof Error ? err.message : String(err) };
      } finally {
        await node.stop();
      }
      opts.progress(`${c.name}: redis-server (the same flags)`);
      const redis = await startRedis(join(root, `redis-${i}`), c.persistence, c.tls ? { server: pem("bench-1"), client: pem("client") } : undefined);
      let theirs: Map<string, { rps: number; p50Ms: number | null }> | { skipped: string };
      if ("skipped" in redis) theirs = redis;
      else {
        try {
          theirs = await redisBenchmarkTests(redis.port, c.tests, { requests, pipeline: c.pipeline, tls: tlsArgs });
        } catch (err) {
          theirs = { skipped: err instanceof Error ? err.message : String(err) };
        } finally {
          await redis.stop();
        }
      }
      for (const t of c.tests) {
        const name = t.toUpperCase();
        const o = ours instanceof Map ? ours.get(name) ?? { failed: "no result" } : ours;
        const r = theirs instanceof Map ? theirs.get(name) : undefined;
        const redisRow = "skipped" in redis ? redis : r === undefined ? { skipped: theirs instanceof Map ? "no result" : theirs.skipped } : { ...r, version: redis.version };
        const ratio = "rps" in o && "rps" in redisRow ? o.rps / redisRow.rps : null;
        rows.push({ case: c.name, test: name, ours: o, redis: redisRow, ratio, target: c.target, met: ratio === null ? null : ratio >= c.target });
      }
    }
    return rows;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

export function registerBench(bench: Command): void {
  bench
    .command("resp")
    .description("redis-benchmark against a real node's Redis port and against redis-server, same flags, in one run")
    .option("--requests <n>", "requests per redis-benchmark test (-n; pipelined cases run 4x)", "100000")
    .option("--only <text>", "run only the cases whose name contains this")
    .option("--json", "print exactly one JSON object")
    .action(async (o: { requests: string; only?: string; json?: boolean }) => {
      const requests = Number(o.requests);
      if (!Number.isInteger(requests) || requests < 1000 || requests > benchRespRequestsMax) {
        console.error(`error: --requests must be an integer 1000..${benchRespRequestsMax}`);
        process.exit(2);
      }
      const rows = await runRespBench({ requests, only: o.only ?? null, progress: (s) => process.stderr.write(`bench resp: ${s}\n`) });
      if (o.json) {
        console.log(JSON.stringify({ results: rows }));
        return;
      }
      let last = "";
      for (const r of rows) {
        if (r.case !== last) console.log(r.case);
        last = r.case;
        const ours = "failed" in r.ours ? `ours failed (${r.ours.failed})` : `ours ${Math.round(r.ours.rps)} req/s p50 ${r.ours.p50Ms} ms`;
        const redis = "skipped" in r.redis ? `redis skipped (${r.redis.skipped})` : `redis ${Math.round(r.redis.rps)} req/s p50 ${r.redis.p50Ms} ms`;
        const ratio = r.ratio === null ? "" : `  ratio ${r.ratio.toFixed(2)}`;
        console.log(`  ${r.test.padEnd(5)} ${ours} | ${redis}${ratio} | target >= ${r.target}x: ${verdictWord(r.met)}`);
      }
    });
}
