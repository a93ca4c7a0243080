// `imdb bench types`: issue 13's figures for the data types, side by side with Redis in one run -
// set adds (and hash sets) through the engine and the WAL in sync mode with 64 writers beside
// SADD (HSET) with appendfsync always, and memory per set member (hash field) at 1M beside Redis
// used_memory.
import type { Command } from "commander";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Engine } from "../engine/index.ts";
import { initCerts } from "../transport/certs.ts";
import { durableWriters, openFor, timeNodeStart } from "./engine.ts";
import { redisBenchmark, startRedis } from "./redis-server.ts";
import { targetVerdict } from "./report.ts";

export const benchTypesSecondsMax = 600;
export const benchTypesItemsMax = 10_000_000;
const writers = 64;
/** Keys the writers spread over (the node takes a write per key at a time per writer). */
const writeKeys = 1000;
/** Members (fields) per key in the memory case: big enough for Redis's hashtable encodings. */
const itemsPerKey = 1000;
const fillBatch = 1000;
/** Seconds each durable case runs unmeasured first, on its own engine and WAL, so the measured run is JIT-compiled. */
const warmupSeconds = 1;

type Kind = "set" | "hash";

export interface TypeBenchRow {
  kind: Kind;
  durable: { opsPerSec: number; redisOpsPerSec: number | null; ratio: number | null; target: number };
  memory: { items: number; nodeBytesPerItem: number; redisBytesPerItem: number | null; ratio: number | null; target: number };
  redis: string;
}

const enc = new TextEncoder();

const value = enc.encode("v");

/** One add of `item` to `key` through the engine, as the node applies a client's SAdd / HSet: its delta, or null. */
function add(engine: Engine, kind: Kind, key: string, item: string): Uint8Array | null {
  const r = kind === "set"
    ? engine.apply({ kind: "sadd", key, members: [enc.encode(item)] }, Date.now())
    : engine.applyHash({ kind: "hset", key, pairs: [{ field: enc.encode(item), value }] }, Date.now());
  if (!r.ok) throw new Error(r.error.message);
  return r.delta;
}

/** 64 writers, each: apply one add, append its delta, await durability; as the node does. */
function durableAdds(kind: Kind, dir: string, seconds: number): Promise<number> {
  return durableWriters(dir, seconds, writers, (engine, i) => add(engine, kind, `k:${i % writeKeys}`, `m:${i}`));
}

/** `items` members (fields) over items / itemsPerKey keys, written the way the node does, then snapshotted. */
async function fill(kind: Kind, dir: string, items: number): Promise<void> {
  const engine = new Engine({ actor: "bench-1" });
  const store = await openFor(dir, engine, "none");
  for (let start = 0; start < items; start += fillBatch) {
    const deltas: Uint8Array[] = [];
    for (let i = start; i < Math.min(items, start + fillBatch); i++) {
      const delta = add(engine, kind, `k:${Math.floor(i / itemsPerKey)}`, `m:${i}`);
      if (delta !== null) deltas.push(delta);
    }
    await store.append(deltas);
  }
  const scan = engine.scan();
  await store.snapshot(
    (function* () {
      while (!scan.done) for (const it of scan.next()) yield [it.key, it.state] as const;
    })(),
  );
  await store.sync();
  await store.close();
}

/** Redis SADD (HSET) with appendfsync always, 64 clients, for about `seconds`: requests/s. */
async function redisDurable(kind: Kind, root: string, seconds: number): Promise<{ rps: number; version: string } | { skipped: string }> {
  const aof = await startRedis(join(root, `redis-aof-${kind}`), "appendfsync-always");
  if ("skipped" in aof) return aof;
  try {
    const test = kind === "set" ? "sadd" : "hset";
    const probe = await redisBenchmark(aof.tool, aof.port, { clients: writers, requests: 5000, keyspace: 1_000_000, test });
    const rps = (await redisBenchmark(aof.tool, aof.port, { clients: writers, requests: Math.max(5000, Math.round(probe.rps * seconds)), keyspace: 1_000_000, test })).rps;
    return { rps, version: aof.version };
  } finally {
    await aof.stop();
  }
}

/** Redis used_memory per item after the same items as our fill, through redis-cli --pipe. */
async function redisMemory(kind: Kind, root: string, items: number): Promise<{ bytesPerItem: number } | { skipped: string }> {
  const mem = await startRedis(join(root, `redis-mem-${kind}`), "none");
  if ("skipped" in mem) return mem;
  try {
    const used = (): number => Number(/used_memory:(\d+)/.exec(Bun.spawnSync([mem.cli, "-p", String(mem.port), "info", "memory"]).stdout.toString())?.[1] ?? NaN);
    const before = used();
    const lines: string[] = [];
    for (let i = 0; i < items; i++) lines.push(kind === "set" ? `SADD k:${Math.floor(i / itemsPerKey)} m:${i}` : `HSET k:${Math.floor(i / itemsPerKey)} m:${i} v`);
    const p = Bun.spawn([mem.cli, "-p", String(mem.port), "--pipe"], { stdin: enc.encode(lines.join("\r\n") + "\r\n"), stdout: "ignore", stderr: "ignore" });
    await p.exited;
    return { bytesPerItem: (used() - before) / items };
  } finally {
    await mem.stop();
  }
}

export async function runTypesBench(opts: { seconds: number; items: number; kinds: Kind[]; progress: (s: string) => void }): Promise<TypeBenchRow[]> {
  const root = await mkdtemp(join(tmpdir(), "imdb-bench-types-"));
  const rows: TypeBenchRow[] = [];
  try {
    const certs = join(root, "certs");
    await initCerts({ dir: certs, nodes: ["bench-1"], clients: [], admins: [], hosts: [], days: 1, force: false });
    // Throughput first, ours then Redis's right after (a pair measured under the same load),
    // on a heap the 1M-item memory fills have not filled with garbage yet.
    const durable = new Map<Kind, { ours: number; redis: { rps: number; version: string } | { skipped: string } }>();
    for (const kind of opts.kinds) {
      const what = kind === "set" ? "set adds" : "hash sets";
      opts.progress(`${what}: engine + WAL, sync, ${writers} writers, ${opts.seconds}s (after ${warmupSeconds}s unmeasured)`);
      // A node serves long after the JIT compiled its write path; the first second of a fresh
      // process runs it before it is compiled (measured: up to 3x the CPU per op), and Redis needs no warm-up.
      await durableAdds(kind, join(root, `warmup-${kind}`), warmupSeconds);
      const ours = await durableAdds(kind, join(root, `durable-${kind}`), opts.seconds);
      opts.progress(`  ${Math.round(ours)}/s`);
      opts.progress(`redis: ${kind === "set" ? "SADD" : "HSET"} appendfsync always -c ${writers}`);
      const redis = await redisDurable(kind, root, opts.seconds);
      opts.progress("skipped" in redis ? `  redis skipped: ${redis.skipped}` : `  ${Math.round(redis.rps)}/s`);
      durable.set(kind, { ours, redis });
    }
    const empty = await timeNodeStart(certs, join(root, "empty"));
    for (const kind of opts.kinds) {
      opts.progress(`memory: ${opts.items} ${kind === "set" ? "members" : "fields"} in ${Math.ceil(opts.items / itemsPerKey)} keys, snapshot, node restart`);
      await fill(kind, join(root, `mem-${kind}`), opts.items);
      const full = await timeNodeStart(certs, join(root, `mem-${kind}`));
      const nodeBytesPerItem = (full.rss - empty.rss) / opts.items;
      opts.progress(`  node RSS ${Math.round(full.rss / 1e6)} MB vs ${Math.round(empty.rss / 1e6)} MB empty: ${nodeBytesPerItem.toFixed(1)} B per item`);
      opts.progress(`redis: used_memory at ${opts.items} items`);
      const redisMem = await redisMemory(kind, root, opts.items);
      opts.progress("skipped" in redisMem ? `  redis skipped: ${redisMem.skipped}` : `  ${redisMem.bytesPerItem.toFixed(1)} B per item`);
      const d = durable.get(kind) as { ours: number; redis: { rps: number; version: string } | { skipped: string } };
      const r = "skipped" in d.redis ? null : d.redis;
      const m = "skipped" in redisMem ? null : redisMem;
      rows.push({
        kind,
        durable: { opsPerSec: Math.round(d.ours), redisOpsPerSec: r === null ? null : Math.round(r.rps), ratio: r === null ? null : d.ours / r.rps, target: 2 },
        memory: { items: opts.items, nodeBytesPerItem: Math.round(nodeBytesPerItem), redisBytesPerItem: m === null ? null : Math.round(m.bytesPerItem), ratio: m === null ? null : nodeBytesPerItem / m.bytesPerItem, target: 3 },
        redis: "skipped" in d.redis ? d.redis.skipped : `redis ${d.redis.version}`,
      });
    }
    return rows;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

export function registerBench(bench: Command): void {
  bench
    .command("types")
    .description("sets and hashes: durable adds/s through engine + WAL vs Redis appendfsync always, memory per member / field vs Redis")
    .option("--seconds <n>", "measuring time of each durable case", "3")
    .option("--items <n>", "set members (hash fields) for the memory case", "1000000")
    .option("--json", "print exactly one JSON object")
    .action(async (o: { seconds: string; items: string; json?: boolean }) => {
      const seconds = Number(o.seconds);
      const items = Number(o.items);
      if (!Number.isInteger(seconds) || seconds < 1 || seconds > benchTypesSecondsMax || !Number.isInteger(items) || items < itemsPerKey || items > benchTypesItemsMax) {
        console.error(`error: --seconds must be 1..${benchTypesSecondsMax} and --items ${itemsPerKey}..${benchTypesItemsMax}`);
        process.exit(2);
      }
      const rows = await runTypesBench({ seconds, items, kinds: ["set", "hash"], progress: (s) => process.stderr.write(`bench types: ${s}\n`) });
      if (o.json) {
        console.log(JSON.stringify({ results: rows }));
        return;
      }
      for (const r of rows) {
        const d = r.durable;
        const m = r.memory;
        const name = r.kind === "set" ? "set add" : "hash set";
        console.log(`${name} (engine + WAL, sync, ${writers} writers): ${d.opsPerSec}/s` +
          (d.redisOpsPerSec === null ? `  (redis skipped: ${r.redis})` : `  vs ${r.redis} appendfsync always ${d.redisOpsPerSec}/s  ratio ${d.ratio?.toFixed(2)}  ${targetVerdict({ bound: ">=", target: d.target, unit: "x" }, d.ratio)}`));
        console.log(`  memory: node ${m.nodeBytesPerItem} B per ${r.kind === "set" ? "member" : "field"} at ${m.items}` +
          (m.redisBytesPerItem === null ? "" : ` vs redis used_memory ${m.redisBytesPerItem} B  ratio ${m.ratio?.toFixed(2)}  ${targetVerdict({ bound: "<=", target: m.target, unit: "x" }, m.ratio)}`));
      }
    });
}
