// `imdb bench engine`: issue 4's figures through the engine and the WAL together — durable
// writes/s in sync mode with 64 writers beside Redis appendfsync always, the restart time of a
// real node holding 1M counter keys, and memory per key beside Redis used_memory.
import type { Command } from "commander";
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { accel } from "../accel/index.ts";
import { Engine } from "../engine/index.ts";
import { openStore, silentLog, type Store } from "../persist/index.ts";
import { initCerts } from "../transport/certs.ts";
import { redisBenchmark, startRedis } from "./redis-server.ts";
import { spawnNode } from "./spawn-node.ts";
import { targetVerdict } from "./report.ts";

export const benchEngineSecondsMax = 600;
export const benchEngineKeysMax = 10_000_000;
const writers = 64;
const writeKeys = 10_000;
const redisClients = 50;
const loadBatch = 1000;

export interface EngineBenchResult {
  durable: { writers: number; opsPerSec: number; redisOpsPerSec: number | null; ratio: number | null; redis: string };
  restart: { keys: number; walOnlyMs: number; withSnapshotMs: number; targetMs: number };
  memory: { keys: number; nodeBytesPerKey: number; redisBytesPerKey: number | null; ratio: number | null };
}

export function openFor(dataDir: string, engine: Engine, durability: "sync" | "none"): Promise<Store> {
  return openStore({
    dataDir,
    durability: { kind: durability },
    repair: false,
    accel: accel(),
    log: silentLog,
    onFatal: (err) => {
      throw err;
    },
    sink: {
      snapshotEntry: (key, state) => void engine.loadState(key, state.slice()),
      walRecord: (_lsn, body) => void engine.mergeDelta(body, Date.now()),
    },
  });
}

/**
 * `writerCount` writers on one engine and a sync store, each: write op i (its delta, or null
 * when nothing changed), append it, await durability - as the node does; returns writes/s.
 */
export async function durableWriters(dir: string, seconds: number, writerCount: number, write: (engine: Engine, i: number) => Uint8Array | null): Promise<number> {
  const engine = new Engine({ actor: "bench-1" });
  const store = await openFor(dir, engine, "sync");
  let ops = 0;
  const end = performance.now() + seconds * 1000;
  const writer = async (w: number): Promise<void> => {
    for (let i = w; performance.now() < end; i += writerCount) {
      const delta = write(engine, i);
      if (delta !== null) await store.append([delta]);
      ops++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: writerCount }, (_, w) => writer(w)));
  const rate = ops / ((performance.now() - t0) / 1000);
  await store.close();
  return rate;
}

/** 64 writers, each: apply an increment, append its delta, await durability. */
function durableWrites(dir: string, seconds: number): Promise<number> {
  return durableWriters(dir, seconds, writers, (engine, i) => {
    const r = engine.apply({ kind: "incr", key: `k:${i % writeKeys}`, amount: 1n }, Date.now());
    if (!r.ok) throw new Error(r.error.message);
    return r.delta;
  });
}

/** Writes `keys` counter keys the way the node does (engine delta -> WAL), optionally snapshotting. */
async function fill(dir: string, keys: number, snapshot: boolean): Promise<void> {
  const engine = new Engine({ actor: "bench-1" });
  const store = await openFor(dir, engine, "none");
  for (let start = 0; start < keys; start += loadBatch) {
    const deltas: Uint8Array[] = [];
    for (let i = start; i < Math.min(keys, start + loadBatch); i++) {
      const r = engine.apply({ kind: "incr", key: `key:${i}`, amount: 1n }, Date.now());
      if (r.ok) deltas.push(r.delta);
    }
    await store.append(deltas);
  }
  if (snapshot) {
    const scan = engine.scan();
    await store.snapshot(
      (function* () {
        while (!scan.done) for (const it of scan.next()) yield [it.key, it.state] as const;
      })(),
    );
  }
  await store.sync();
  await store.close();
}

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m?.[1] === undefined ? 0 : Number(m[1]) * 1024;
}

/** Starts a real node on `dataDir`; returns ms until ready and its RSS once ready. */
export async function timeNodeStart(certs: string, dataDir: string): Promise<{ ms: number; rss: number }> {
  const t0 = performance.now();
  const node = await spawnNode("bench-1", [
    "--tls-dir", certs, "--data-dir", dataDir, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", "--log-level", "warn",
  ]);
  const ms = performance.now() - t0;
  // Memory is read once the node also holds its anti-entropy hash tree (built after ready).
  const treeDeadline = performance.now() + 60_000;
  while (!node.log().includes("hash tree built") && performance.now() < treeDeadline && !dataDir.endsWith("empty")) await Bun.sleep(50);
  const rss = rssBytes(node.proc.pid);
  await node.stop();
  return { ms, rss };
}

async function redisMemoryPerKey(dir: string, keys: number): Promise<number | { skipped: string }> {
  const redis = await startRedis(dir, "none");
  if ("skipped" in redis) return redis;
  try {
    const used = (): number => Number(/used_memory:(\d+)/.exec(Bun.spawnSync([redis.cli, "-p", String(redis.port), "info", "memory"]).stdout.toString())?.[1] ?? NaN);
    const before = used();
    // redis-cli --pipe with 1M INCR commands: the same keys and the same op as our node's fill.
    const lines: string[] = [];
    for (let i = 0; i < keys; i++) lines.push(`INCR key:${i}`);
    const p = Bun.spawn([redis.cli, "-p", String(redis.port), "--pipe"], { stdin: new TextEncoder().encode(lines.join("\r\n") + "\r\n"), stdout: "ignore", stderr: "ignore" });
    await p.exited;
    return (used() - before) / keys;
  } finally {
    await redis.stop();
  }
}

export async function runEngineBench(opts: { seconds: number; keys: number; progress: (s: string) => void }): Promise<EngineBenchResult> {
  const root = await mkdtemp(join(tmpdir(), "imdb-bench-engine-"));
  try {
    opts.progress(`durable writes: engine + WAL, sync, ${writers} writers, ${opts.seconds}s`);
    const ours = await durableWrites(join(root, "durable"), opts.seconds);
    opts.progress(`  ${Math.round(ours)} writes/s`);
    opts.progress(`redis appendfsync always, redis-benchmark -c ${redisClients} -t incr`);
    const redis = await startRedis(join(root, "redis-aof"), "appendfsync-always");
    let redisRate: number | null = null;
    let redisNote = "";
    if ("skipped" in redis) redisNote = redis.skipped;
    else {
      try {
        const probe = await redisBenchmark(redis.tool, redis.port, { clients: redisClients, requests: 5000 });
        redisRate = (await redisBenchmark(redis.tool, redis.port, { clients: redisClients, requests: Math.max(5000, Math.round(probe.rps * opts.seconds)) })).rps;
        redisNote = `redis ${redis.version}`;
      } finally {
        await redis.stop();
      }
    }
    opts.progress(redisRate === null ? `  redis skipped: ${redisNote}` : `  ${Math.round(redisRate)} INCR/s`);

    const certs = join(root, "certs");
    await initCerts({ dir: certs, nodes: ["bench-1"], clients: [], admins: [], hosts: [], days: 1, force: false });
    opts.progress(`restart: writing ${opts.keys} counter keys to the WAL`);
    await fill(join(root, "wal-only"), opts.keys, false);
    const walOnly = await timeNodeStart(certs, join(root, "wal-only"));
    opts.progress(`  node ready after WAL replay in ${Math.round(walOnly.ms)} ms`);
    opts.progress(`restart: ${opts.keys} counter keys in a snapshot`);
    await fill(join(root, "snap"), opts.keys, true);
    const withSnap = await timeNodeStart(certs, join(root, "snap"));
    opts.progress(`  node ready from the snapshot in ${Math.round(withSnap.ms)} ms`);
    const empty = await timeNodeStart(certs, join(root, "empty"));
    const nodeBytesPerKey = (withSnap.rss - empty.rss) / opts.keys;
    opts.progress(`memory: node RSS ${Math.round(withSnap.rss / 1e6)} MB with ${opts.keys} keys vs ${Math.round(empty.rss / 1e6)} MB empty`);
    const redisMem = await redisMemoryPerKey(join(root, "redis-mem"), opts.keys);
    const redisBytesPerKey = typeof redisMem === "number" ? redisMem : null;
    opts.progress(redisBytesPerKey === null ? "  redis skipped" : `  redis used_memory ${redisBytesPerKey.toFixed(1)} B/key`);
    return {
      durable: { writers, opsPerSec: Math.round(ours), redisOpsPerSec: redisRate === null ? null : Math.round(redisRate), ratio: redisRate === null ? null : ours / redisRate, redis: redisNote },
      restart: { keys: opts.keys, walOnlyMs: Math.round(walOnly.ms), withSnapshotMs: Math.round(withSnap.ms), targetMs: 3000 },
      memory: { keys: opts.keys, nodeBytesPerKey: Math.round(nodeBytesPerKey), redisBytesPerKey: redisBytesPerKey === null ? null : Math.round(redisBytesPerKey), ratio: redisBytesPerKey === null ? null : nodeBytesPerKey / redisBytesPerKey },
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

export function registerBench(bench: Command): void {
  bench
    .command("engine")
    .description("engine + WAL: durable writes/s vs Redis appendfsync always, node restart with 1M keys, memory per key vs Redis")
    .option("--seconds <n>", "measuring time of the durable-writes case", "3")
    .option("--keys <n>", "counter keys for the restart and memory cases", "1000000")
    .option("--json", "print exactly one JSON object")
    .action(async (o: { seconds: string; keys: string; json?: boolean }) => {
      const seconds = Number(o.seconds);
      const keys = Number(o.keys);
      if (!Number.isInteger(seconds) || seconds < 1 || seconds > benchEngineSecondsMax || !Number.isInteger(keys) || keys < 1000 || keys > benchEngineKeysMax) {
        console.error(`error: --seconds must be 1..${benchEngineSecondsMax} and --keys 1000..${benchEngineKeysMax}`);
        process.exit(2);
      }
      const r = await runEngineBench({ seconds, keys, progress: (s) => process.stderr.write(`bench engine: ${s}\n`) });
      if (o.json) {
        console.log(JSON.stringify(r));
        return;
      }
      const d = r.durable;
      console.log(`durable writes (engine + WAL, sync, ${d.writers} writers): ${d.opsPerSec}/s  ${targetVerdict({ bound: ">=", target: 100_000, unit: "writes/s" }, d.opsPerSec)}` +
        (d.redisOpsPerSec === null ? `  (redis skipped: ${d.redis})` : `  vs ${d.redis} appendfsync always ${d.redisOpsPerSec}/s  ratio ${d.ratio?.toFixed(2)}`));
      // The target holds for both ways of starting: the slower one decides.
      const restartMs = Math.max(r.restart.walOnlyMs, r.restart.withSnapshotMs);
      console.log(`node restart with ${r.restart.keys} counter keys: ${r.restart.walOnlyMs} ms from the WAL alone, ${r.restart.withSnapshotMs} ms from a snapshot  ` +
        targetVerdict({ bound: "<=", target: r.restart.targetMs, unit: "ms" }, restartMs));
      const m = r.memory;
      console.log(`memory: node ${m.nodeBytesPerKey} B/key (RSS growth, engine + cluster hash tree)` +
        (m.redisBytesPerKey === null ? "" : ` vs redis used_memory ${m.redisBytesPerKey} B/key  ratio ${m.ratio?.toFixed(2)}  ${targetVerdict({ bound: "<=", target: 3, unit: "x" }, m.ratio)}`));
    });
}
