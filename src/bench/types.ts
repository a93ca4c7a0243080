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
import { processCpuSeconds, redisBenchmark, startRedis } from "./redis-server.ts";
import { targetVerdict } from "./report.ts";
import { percentile } from "../sim/measure.ts";

export const benchTypesSecondsMax = 600;
export const benchTypesItemsMax = 10_000_000;
const writers = 64;
/**
 * Keys the writers spread over (Redis's -t sadd / -t hset write one key). Redis's cost per add
 * does not depend on the key count (a hash table either way); ours does: a set or hash keeps
 * its members sorted in arrays, so an add into a key of n members moves O(n) of them. Measured
 * (engine only, 60k random adds, same process): 12 us per SADD or HSET over 1000 keys; into
 * one key 120 us per SADD and 33 us per HSET. The figures are for keys of tens to hundreds of
 * members, as the memory case's 1000 per key; docs/benchmarks.md says so beside them.
 */
const writeKeys = 1000;
/** Members (fields) per key in the memory case: big enough for Redis's hashtable encodings. */
const itemsPerKey = 1000;
const fillBatch = 1000;
/** Seconds each durable case runs unmeasured first, on its own engine and WAL, so the measured run is JIT-compiled. */
const warmupSeconds = 1;

type Kind = "set" | "hash";

/** Ours-then-Redis pairs per kind by default: one pair's ratio moved 1.5-2.3x between runs on a quiet machine (the disk's fdatasync time moves both sides). */
export const benchTypesPairsDefault = 3;
export const benchTypesPairsMax = 20;

/** The median (nearest rank: the lower middle one of an even count). */
const median = (xs: readonly number[]): number => percentile(xs, 50);

export interface TypeBenchRow {
  kind: Kind;
  durable: {
    /** Medians over the pairs (the ratio is the median of the pairs' ratios). */
    opsPerSec: number; redisOpsPerSec: number | null; ratio: number | null; target: number;
    /** Each pair, in run order: ours, then Redis right after. */
    pairs: { opsPerSec: number; redisOpsPerSec: number | null; ratio: number | null }[];
    /** Shares of one core over each measured run: ours (engine, WAL, writers), redis-benchmark, redis-server. */
    cpuShare: { ours: number; redisBenchmark: number | null; redisServer: number | null };
  };
  memory: { items: number; nodeBytesPerItem: number; redisBytesPerItem: number | null; ratio: number | null; target: number };
  redis: string;
}

const enc = new TextEncoder();

/** The memory case's hash value (its Redis fill writes the same). */
const value = enc.encode("v");

/**
 * The durable cases write what redis-benchmark -t sadd / -t hset writes (redis-benchmark.c:
 * "SADD myset element:__rand_int__", "HSET myhash element:__rand_int__ <data>"): members and
 * fields "element:" + a random integer below -r as 12 digits (20 bytes), values its default
 * -d 3 ("xxx"). Before, ours were "m:<i>" (8 bytes, sequential) and "v": smaller records than
 * Redis's, and sequential names. A repeated random member is, on both sides, an op that logs
 * nothing (SADD) or an update (HSET).
 */
const redisKeyspace = 1_000_000;
const redisElementDigits = 12;
const durableValue = enc.encode("xxx");

/** xorshift32 from a non-zero seed: the same members every run, and no Math.random in the writers' loop. */
function randomBelow(seed: number, bound: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % bound;
  };
}

/** One add of `item` to `key` through the engine, as the node applies a client's SAdd / HSet: its delta, or null. */
function add(engine: Engine, kind: Kind, key: string, item: string, fieldValue: Uint8Array): Uint8Array | null {
  const r = kind === "set"
    ? engine.apply({ kind: "sadd", key, members: [enc.encode(item)] }, Date.now())
    : engine.applyHash({ kind: "hset", key, pairs: [{ field: enc.encode(item), value: fieldValue }] }, Date.now());
  if (!r.ok) throw new Error(r.error.message);
  return r.delta;
}

/**
 * 64 writers, each: apply one add, append its delta, await durability; as the node does.
 * Returns adds/s and the share of one core this process used meanwhile (engine, WAL and the
 * writers that stand in for clients, which cost 0.3-0.4 us of it per add: build the name, encode it, measured alone).
 */
async function durableAdds(kind: Kind, dir: string, seconds: number, seed: number): Promise<{ rate: number; cpuShare: number }> {
  const next = randomBelow(seed, redisKeyspace);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const rate = await durableWriters(dir, seconds, writers, (engine, i) =>
    add(engine, kind, `k:${i % writeKeys}`, `element:${String(next()).padStart(redisElementDigits, "0")}`, durableValue));
  const cpu = process.cpuUsage(c0);
  return { rate, cpuShare: (cpu.user + cpu.system) / ((performance.now() - t0) * 1000) };
}

/** `items` members (fields) over items / itemsPerKey keys, written the way the node does, then snapshotted. */
async function fill(kind: Kind, dir: string, items: number): Promise<void> {
  const engine = new Engine({ actor: "bench-1" });
  const store = await openFor(dir, engine, "none");
  for (let start = 0; start < items; start += fillBatch) {
    const deltas: Uint8Array[] = [];
    for (let i = start; i < Math.min(items, start + fillBatch); i++) {
      const delta = add(engine, kind, `k:${Math.floor(i / itemsPerKey)}`, `m:${i}`, value);
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

type RedisDurable = { rps: number; version: string; toolCpuShare: number; serverCpuShare: number };

/**
 * Redis SADD (HSET) with appendfsync always, 64 clients, for about `seconds`: requests/s, and
 * the share of a core redis-benchmark and redis-server each used over the measured run.
 */
async function redisDurable(kind: Kind, root: string, seconds: number): Promise<RedisDurable | { skipped: string }> {
  const aof = await startRedis(join(root, `redis-aof-${kind}`), "appendfsync-always");
  if ("skipped" in aof) return aof;
  try {
    const test = kind === "set" ? "sadd" : "hset";
    const probe = await redisBenchmark(aof.tool, aof.port, { clients: writers, requests: 5000, keyspace: redisKeyspace, test });
    const s0 = processCpuSeconds(aof.pid);
    const t0 = performance.now();
    const run = await redisBenchmark(aof.tool, aof.port, { clients: writers, requests: Math.max(5000, Math.round(probe.rps * seconds)), keyspace: redisKeyspace, test });
    const serverCpuShare = (processCpuSeconds(aof.pid) - s0) / ((performance.now() - t0) / 1000);
    return { rps: run.rps, version: aof.version, toolCpuShare: run.toolCpuShare, serverCpuShare };
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

export async function runTypesBench(opts: { seconds: number; items: number; pairs: number; kinds: Kind[]; progress: (s: string) => void }): Promise<TypeBenchRow[]> {
  const root = await mkdtemp(join(tmpdir(), "imdb-bench-types-"));
  const rows: TypeBenchRow[] = [];
  try {
    const certs = join(root, "certs");
    await initCerts({ dir: certs, nodes: ["bench-1"], clients: [], admins: [], hosts: [], days: 1, force: false });
    // Throughput first, ours then Redis's right after (a pair measured under the same load),
    // on a heap the 1M-item memory fills have not filled with garbage yet.
    // Pairs alternate the kinds (set, hash, set, hash, ...) so that a slow minute of the disk
    // falls on both sides of some pair rather than on one kind's every run.
    type Pair = { ours: { rate: number; cpuShare: number }; redis: RedisDurable | { skipped: string } };
    const durable = new Map<Kind, Pair[]>();
    for (let pair = 0; pair < opts.pairs; pair++) {
      for (const kind of opts.kinds) {
        const what = kind === "set" ? "set adds" : "hash sets";
        opts.progress(`${what} (pair ${pair + 1} of ${opts.pairs}): engine + WAL, sync, ${writers} writers, ${opts.seconds}s (after ${warmupSeconds}s unmeasured)`);
        // A node serves long after the JIT compiled its write path; the first second of a fresh
        // process runs it before it is compiled (measured: up to 3x the CPU per op), and Redis needs no warm-up.
        await durableAdds(kind, join(root, `warmup-${kind}-${pair}`), warmupSeconds, 1);
        const ours = await durableAdds(kind, join(root, `durable-${kind}-${pair}`), opts.seconds, 2 + pair);
        opts.progress(`  ${Math.round(ours.rate)}/s (this process used ${Math.round(100 * ours.cpuShare)}% of a core)`);
        opts.progress(`redis: ${kind === "set" ? "SADD" : "HSET"} appendfsync always -c ${writers}`);
        const redis = await redisDurable(kind, join(root, `redis-${pair}`), opts.seconds);
        opts.progress("skipped" in redis ? `  redis skipped: ${redis.skipped}`
          : `  ${Math.round(redis.rps)}/s (redis-benchmark used ${Math.round(100 * redis.toolCpuShare)}% of a core, redis-server ${Math.round(100 * redis.serverCpuShare)}%)`);
        durable.set(kind, [...(durable.get(kind) ?? []), { ours, redis }]);
      }
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
      const ps = durable.get(kind) as Pair[];
      const redisRuns = ps.flatMap((p) => ("skipped" in p.redis ? [] : [p.redis]));
      const skipped = ps.find((p) => "skipped" in p.redis)?.redis as { skipped: string } | undefined;
      const r = skipped === undefined && redisRuns.length > 0 ? redisRuns : null;
      const m = "skipped" in redisMem ? null : redisMem;
      const pairs = ps.map((p) => ("skipped" in p.redis
        ? { opsPerSec: Math.round(p.ours.rate), redisOpsPerSec: null, ratio: null }
        : { opsPerSec: Math.round(p.ours.rate), redisOpsPerSec: Math.round(p.redis.rps), ratio: p.ours.rate / p.redis.rps }));
      rows.push({
        kind,
        durable: {
          opsPerSec: Math.round(median(ps.map((p) => p.ours.rate))),
          redisOpsPerSec: r === null ? null : Math.round(median(r.map((x) => x.rps))),
          ratio: r === null ? null : median(pairs.map((p) => p.ratio as number)),
          target: 2,
          pairs,
          cpuShare: {
            ours: median(ps.map((p) => p.ours.cpuShare)),
            redisBenchmark: r === null ? null : median(r.map((x) => x.toolCpuShare)),
            redisServer: r === null ? null : median(r.map((x) => x.serverCpuShare)),
          },
        },
        memory: { items: opts.items, nodeBytesPerItem: Math.round(nodeBytesPerItem), redisBytesPerItem: m === null ? null : Math.round(m.bytesPerItem), ratio: m === null ? null : nodeBytesPerItem / m.bytesPerItem, target: 3 },
        redis: skipped !== undefined ? skipped.skipped : `redis ${(redisRuns[0] as RedisDurable).version}`,
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
    .option("--pairs <n>", "ours-then-Redis pairs per kind for the durable cases (the ratio is their median)", String(benchTypesPairsDefault))
    .option("--json", "print exactly one JSON object")
    .action(async (o: { seconds: string; items: string; pairs: string; json?: boolean }) => {
      const seconds = Number(o.seconds);
      const items = Number(o.items);
      const pairs = Number(o.pairs);
      if (!Number.isInteger(seconds) || seconds < 1 || seconds > benchTypesSecondsMax || !Number.isInteger(items) || items < itemsPerKey || items > benchTypesItemsMax
        || !Number.isInteger(pairs) || pairs < 1 || pairs > benchTypesPairsMax) {
        console.error(`error: --seconds must be 1..${benchTypesSecondsMax}, --items ${itemsPerKey}..${benchTypesItemsMax} and --pairs 1..${benchTypesPairsMax}`);
        process.exit(2);
      }
      const rows = await runTypesBench({ seconds, items, pairs, kinds: ["set", "hash"], progress: (s) => process.stderr.write(`bench types: ${s}\n`) });
      if (o.json) {
        console.log(JSON.stringify({ results: rows }));
        return;
      }
      for (const r of rows) {
        const d = r.durable;
        const m = r.memory;
        const name = r.kind === "set" ? "set add" : "hash set";
        console.log(`${name} (engine + WAL, sync, ${writers} writers, median of ${d.pairs.length}): ${d.opsPerSec}/s` +
          (d.redisOpsPerSec === null ? `  (redis skipped: ${r.redis})` : `  vs ${r.redis} appendfsync always ${d.redisOpsPerSec}/s  ratio ${d.ratio?.toFixed(2)}  ${targetVerdict({ bound: ">=", target: d.target, unit: "x" }, d.ratio)}`));
        if (d.pairs.length > 1) console.log(`  pairs (ours / redis = ratio): ${d.pairs.map((p) => `${p.opsPerSec} / ${p.redisOpsPerSec ?? "-"} = ${p.ratio?.toFixed(2) ?? "-"}`).join(", ")}`);
        console.log(`  memory: node ${m.nodeBytesPerItem} B per ${r.kind === "set" ? "member" : "field"} at ${m.items}` +
          (m.redisBytesPerItem === null ? "" : ` vs redis used_memory ${m.redisBytesPerItem} B  ratio ${m.ratio?.toFixed(2)}  ${targetVerdict({ bound: "<=", target: m.target, unit: "x" }, m.ratio)}`));
      }
    });
}
