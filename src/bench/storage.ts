// `imdb bench storage`: durable appends/s through the WAL in `sync` mode next to Redis with
// `appendfsync always` on the same disk in the same run, and WAL recovery replay speed.

import { InvalidArgumentError, type Command } from "commander";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { accel, describeAccel } from "../accel/index.ts";
import { redisBenchmark, startRedis } from "./redis-server.ts";
import { openStore, recover, silentLog, type Lsn, type RecoverySink, type Store } from "../persist/index.ts";

export interface StorageBenchResult {
  accel: string;
  append: {
    writers: number;
    payloadBytes: number;
    seconds: number;
    records: number;
    recordsPerSecond: number;
    latencyMsP50: number;
    latencyMsP99: number;
  };
  /** Redis INCR with appendfsync always at 50 clients, or why it was skipped. */
  redis: { clients: number; requests: number; requestsPerSecond: number; version: string } | { skipped: string };
  /** WAL appends/s divided by Redis requests/s (null when Redis was skipped). */
  ratioVsRedis: number | null;
  replay: { records: number; walBytes: number; seconds: number; recordsPerSecond: number };
  /** Writing a snapshot of 1M small entries, and loading it back through recovery. */
  snapshot: { entries: number; fileBytes: number; writeSeconds: number; loadSeconds: number; loadEntriesPerSecond: number };
}

export const benchSecondsMax = 3600;
const writers = 64;
const payloadBytes = 40;
const redisClients = 50;
/** Records the replay case writes and recovers (issue 4: at least 1M). */
const replayRecords = 1_000_000;
const replayBatch = 1000;
/** Entries in the snapshot case (the 1M counter keys) and their value size. */
const snapshotEntries = 1_000_000;
const snapshotValueBytes = 24;
/** The WAL and Redis alternate this many times. */
const slices = 3;
const redisProbeRequests = 5_000;
const redisSliceRequestsMin = 10_000;
/** Latency samples kept (a reservoir of the first ones is enough for p50/p99). */
const latencySamplesMax = 1_000_000;

export async function runStorageBench(opts: { seconds: number; progress: (msg: string) => void }): Promise<StorageBenchResult> {
  const root = await mkdtemp(join(tmpdir(), "imdb-bench-storage-"));
  try {
    opts.progress(`durable appends (${writers} writers x ${payloadBytes} B, sync) and redis appendfsync always ` +
      `(-c ${redisClients} -t incr), alternating in ${slices} slices of ${(opts.seconds / slices).toFixed(1)} s each`);
    const { append, redis } = await benchThroughput(root, opts.seconds, opts.progress);
    opts.progress(`  WAL ${Math.round(append.recordsPerSecond)} records/s (p50 ${append.latencyMsP50.toFixed(2)} ms, p99 ${append.latencyMsP99.toFixed(2)} ms)`);
    opts.progress("skipped" in redis ? `  redis skipped: ${redis.skipped}` : `  redis ${Math.round(redis.requestsPerSecond)} INCR/s`);
    opts.progress(`recovery replay: writing ${replayRecords} records`);
    const replay = await benchReplay(join(root, "replay"), opts.progress);
    opts.progress(`  ${Math.round(replay.recordsPerSecond)} records/s`);
    opts.progress(`snapshot: writing and loading ${snapshotEntries} entries`);
    const snapshot = await benchSnapshot(join(root, "snapshot"));
    opts.progress(`  write ${snapshot.writeSeconds.toFixed(3)} s, load ${snapshot.loadSeconds.toFixed(3)} s`);
    const ratioVsRedis = "skipped" in redis ? null : append.recordsPerSecond / redis.requestsPerSecond;
    return { accel: describeAccel(accel()), append, redis, ratioVsRedis, replay, snapshot };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const noSink: RecoverySink = { snapshotEntry: () => undefined, walRecord: () => undefined };

async function open(dataDir: string, kind: "sync" | "none"): Promise<Store> {
  const a = accel();
  return openStore({
    dataDir, durability: { kind }, repair: false, accel: { checksums: a.checksums, appender: a.appender },
    log: silentLog, onFatal: (e) => { throw e; }, sink: noSink,
  });
}

/**
 * The WAL and Redis take turns on the same disk, `slices` times each, so that noise from
 * other work on the machine falls on both alike; rates are totals over all slices.
 */
async function benchThroughput(root: string, seconds: number, progress: (m: string) => void): Promise<Pick<StorageBenchResult, "append" | "redis">> {
  const store = await open(join(root, "append"), "sync");
  const redis = await startRedis(join(root, "redis"), "appendfsync-always");
  try {
    const latencies: number[] = [];
    let records = 0;
    let walSeconds = 0;
    let requests = 0;
    let redisSeconds = 0;
    let redisRate = 0;
    const sliceSeconds = seconds / slices;
    for (let s = 0; s < slices; s++) {
      const w = await appendSlice(store, sliceSeconds, latencies);
      records += w.records;
      walSeconds += w.seconds;
      if ("port" in redis) {
        // Size each Redis slice from the previous rate so it lasts about as long.
        redisRate = redisRate > 0 ? redisRate : await redisIncrRate(redis.tool, redis.port, redisProbeRequests);
        const n = Math.max(redisSliceRequestsMin, Math.round(redisRate * sliceSeconds));
        redisRate = await redisIncrRate(redis.tool, redis.port, n);
        requests += n;
        redisSeconds += n / redisRate;
      }
      progress(`  slice ${s + 1}/${slices}: WAL ${Math.round(w.records / w.seconds)}/s` + ("port" in redis ? `, redis ${Math.round(redisRate)}/s` : ""));
    }
    latencies.sort((x, y) => x - y);
    const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
    const append = { writers, payloadBytes, seconds: walSeconds, records, recordsPerSecond: records / walSeconds, latencyMsP50: pct(0.5), latencyMsP99: pct(0.99) };
    const redisResult: StorageBenchResult["redis"] = "port" in redis
      ? { clients: redisClients, requests, requestsPerSecond: requests / redisSeconds, version: redis.version }
      : redis;
    return { append, redis: redisResult };
  } finally {
    await store.close();
    if ("port" in redis) await redis.stop();
  }
}

async function appendSlice(store: Store, seconds: number, latencies: number[]): Promise<{ records: number; seconds: number }> {
  const body = new Uint8Array(payloadBytes).fill(7);
  let records = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  async function writer(): Promise<void> {
    while (performance.now() < end) {
      const t0 = performance.now();
      await store.append([body]);
      if (latencies.length < latencySamplesMax) latencies.push(performance.now() - t0);
      records++;
    }
  }
  await Promise.all(Array.from({ length: writers }, writer));
  return { records, seconds: (performance.now() - start) / 1000 };
}

async function redisIncrRate(tool: string, port: number, requests: number): Promise<number> {
  return (await redisBenchmark(tool, port, { clients: redisClients, requests })).rps;
}

async function benchReplay(dataDir: string, progress: (m: string) => void): Promise<StorageBenchResult["replay"]> {
  const store = await open(dataDir, "none");
  const body = new Uint8Array(payloadBytes).fill(9);
  const batch = Array.from({ length: replayBatch }, () => body);
  let pending: Promise<Lsn>[] = [];
  for (let done = 0; done < replayRecords; done += replayBatch) {
    pending.push(store.append(batch));
    if (pending.length >= 64) { await Promise.all(pending); pending = []; }
  }
  await Promise.all(pending);
  await store.sync();
  await store.close();
  progress("  replaying");
  let records = 0;
  let bytes = 0;
  const sink: RecoverySink = {
    snapshotEntry: () => undefined,
    walRecord: (_lsn, b) => { records++; bytes += b.byteLength; },
  };
  const t0 = performance.now();
  await recover({ dataDir, repair: false, sums: accel().checksums, log: silentLog, sink });
  const seconds = (performance.now() - t0) / 1000;
  if (records !== replayRecords) throw new Error(`replay saw ${records} records, wrote ${replayRecords}`);
  return { records, walBytes: bytes, seconds, recordsPerSecond: records / seconds };
}

async function benchSnapshot(dataDir: string): Promise<StorageBenchResult["snapshot"]> {
  const store = await open(dataDir, "sync");
  const value = new Uint8Array(snapshotValueBytes).fill(3);
  function* entries(): Generator<readonly [string, Uint8Array]> {
    for (let i = 0; i < snapshotEntries; i++) yield [`counter:${i}`, value];
  }
  const t0 = performance.now();
  const written = await store.snapshot(entries());
  const writeSeconds = (performance.now() - t0) / 1000;
  await store.close();
  let loaded = 0;
  let keyChars = 0;
  const sink: RecoverySink = {
    snapshotEntry: (k) => { loaded++; keyChars += k.length; },
    walRecord: () => undefined,
  };
  const t1 = performance.now();
  await recover({ dataDir, repair: false, sums: accel().checksums, log: silentLog, sink });
  const loadSeconds = (performance.now() - t1) / 1000;
  if (loaded !== snapshotEntries || keyChars === 0) throw new Error(`snapshot load saw ${loaded} entries, wrote ${snapshotEntries}`);
  return { entries: loaded, fileBytes: written.bytes, writeSeconds, loadSeconds, loadEntriesPerSecond: loaded / loadSeconds };
}

function parseSeconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > benchSecondsMax) throw new InvalidArgumentError(`seconds must be in (0, ${benchSecondsMax}]`);
  return n;
}

function table(r: StorageBenchResult): string {
  const lines = [
    `accel: ${r.accel}`,
    `durable appends (sync, ${r.append.writers} writers, ${r.append.payloadBytes} B): ${Math.round(r.append.recordsPerSecond)} records/s` +
      `  p50 ${r.append.latencyMsP50.toFixed(2)} ms  p99 ${r.append.latencyMsP99.toFixed(2)} ms`,
    "skipped" in r.redis
      ? `redis appendfsync always: skipped (${r.redis.skipped})`
      : `redis ${r.redis.version} appendfsync always (INCR, ${r.redis.clients} clients): ${Math.round(r.redis.requestsPerSecond)} requests/s`,
    `ratio WAL / redis: ${r.ratioVsRedis === null ? "n/a" : r.ratioVsRedis.toFixed(2)}`,
    `recovery replay: ${r.replay.records} records (${(r.replay.walBytes / 1e6).toFixed(1)} MB payload) in ${r.replay.seconds.toFixed(3)} s = ${Math.round(r.replay.recordsPerSecond)} records/s`,
    `snapshot: ${r.snapshot.entries} entries (${(r.snapshot.fileBytes / 1e6).toFixed(1)} MB) written in ${r.snapshot.writeSeconds.toFixed(3)} s, ` +
      `loaded in ${r.snapshot.loadSeconds.toFixed(3)} s = ${Math.round(r.snapshot.loadEntriesPerSecond)} entries/s`,
  ];
  return lines.join("\n");
}

export function registerBench(bench: Command): void {
  bench
    .command("storage")
    .description("durable WAL appends/s (sync, 64 writers) beside Redis appendfsync always, and recovery replay speed")
    .option("--json", "print one JSON object on stdout")
    .option("--seconds <n>", "measuring time per throughput case in seconds", parseSeconds, 5)
    .action(async (o: { json?: boolean; seconds: number }) => {
      const progress = (s: string): void => void process.stderr.write(`bench storage: ${s}\n`);
      const r = await runStorageBench({ seconds: o.seconds, progress });
      if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else process.stdout.write(`${table(r)}\n`);
    });
}
