// `imdb bench expiry`: one real node (mutual TLS) holds K keys that all share one deadline while a
// separate client keeps writing other keys; measures that client's latency before and during the
// expiry, the time until every expired key is gone, and the node's memory before, loaded and
// after collection (issue 14).
//
// All K keys get the same absolute deadline T. They are written with Batch Sets whose ttl_ms is
// T - now, the way an application writes session keys (one write carries the deadline); but T
// must be fixed before the last key is written, and it should be the load's end plus the TTL. So
// the first chunks (calibrationShare of the keys) go with a far-off "parking" TTL while their rate
// is measured, T is then set from that rate, and at the end those first keys get T exactly with a
// Batch Expire at_unix_ms = T: a tenth of a second pass instead of a whole one. A relative TTL
// becomes a deadline when the node reads its clock for the batch, so queueing puts the ttl_ms
// keys' deadlines a little after T: the run reads back a sample of deadlines and reports the spread.
import type { Command } from "commander";
import { Option } from "commander";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { batchOpsMax } from "../limits.ts";
import { initCerts } from "../transport/certs.ts";
import { decodeBatchResponse } from "../transport/batch-codec.ts";
import { encodeBatchRequest, ImdbClient, RpcError, type RequestOp } from "../transport/client.ts";
import { loadTlsDir } from "../transport/tls.ts";
import { metricValue, rssBytes } from "./collect.ts";
import { runWriter, startWriter, type TimelinePoint, type WindowSpec, type WriterHandle } from "./expiry-writer.ts";
import { LatencyHistogram } from "./histogram.ts";
import { processCpuSeconds } from "./proc-cpu.ts";
import { cpuPercent, intervalRate, targetMet, targetVerdict, type Target } from "./report.ts";
import { spawnNode, type SpawnedNode } from "./spawn-node.ts";

export const expiryKeysDefault = 1_000_000;
export const expiryKeysMax = 10_000_000;
export const expiryTtlSecondsDefault = 5;
export const expiryStreamsDefault = 4;
export const expiryWriterInFlightDefault = 8;
export const expiryOtherKeysDefault = 1000;
/** The window before the deadline whose latency is the baseline (s). */
export const expiryBeforeSecondsDefault = 5;
/**
 * Wait after collection before the last RSS reading (s): a node remembers the keys it collected
 * for 60 s (cluster/gc.ts collectedGraceMs) and gives their memory back within 5 s after
 * (node/memory-return.ts).
 */
export const expirySettleSecondsDefault = 75;
/** Longest the whole run may take once the node started (s). */
export const expirySecondsMaxDefault = 1800;
/** The issue's target: the writer's p99 during the expiry at most this times its p99 before. */
export const expiryP99Target: Target = { bound: "<=", target: 2, unit: "x" };

/** Share of the keys written with the parking TTL while the load rate is measured. */
const calibrationShare = 0.1;
/** The parking TTL of the calibration keys (ms), replaced by T at the end of the load. */
const parkingTtlMs = 3_600_000;
/** T is set this much later than the measured rate predicts, so the load ends before T - TTL. */
const loadEstimateMargin = 1.25;
/** Keys read back at the end of the load for their deadlines, and at T for whether reads miss them. */
const spotKeys = 32;
/**
 * The load must end at least this long before T (ms), so the keys can be read present before it.
 * (They are read at the start of the "before" window: 500 ms before T was too close on a busy
 * node, whose Gets were answered after T and so, rightly, missed.)
 */
const presentCheckBeforeMs = 500;
/** One Batch RPC's deadline (ms). */
const batchDeadlineMs = 120_000;
const idleBeforeMs = 3_000;
/**
 * How often the node's /metrics is read in every window (the same in each, so they carry the
 * same extra load). Not more often: a scrape costs the node a few ms on a large heap (the JS heap
 * gauges; 5.7% of the node's CPU at 300,000 keys when read every 100 ms, bun --cpu-prof-md).
 */
const pollMs = 500;
const progressEveryMs = 5_000;
const valueBytes = 16;

export type ExpiryDurability = "sync" | "none";

export interface ExpiryBenchOptions {
  keys: number;
  ttlSeconds: number;
  durability: ExpiryDurability;
  streams: number;
  writerInFlight: number;
  otherKeys: number;
  beforeSeconds: number;
  settleSeconds: number;
  secondsMax: number;
  progress: (line: string) => void;
}

/**
 * The writer in one window: "unloaded" (before the load, the node holding only the writer's
 * keys), "before" (the last --before-seconds before the deadline), "during" (the deadline until
 * every expired key is gone), "collection" (until their records are collected), "after" (the
 * last --before-seconds of the settling wait).
 */
export interface WindowLatency {
  name: string;
  /** Wall-clock span (s from the deadline; negative before it). */
  fromS: number;
  toS: number;
  calls: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The node's CPU over the window (% of one core). */
  nodeCpuPct: number | null;
}

export interface ExpiryBenchResult {
  bench: "expiry";
  keys: number;
  ttlSeconds: number;
  durability: ExpiryDurability;
  tls: true;
  loadAverage: { start: number[]; end: number[] };
  load: {
    streams: number;
    seconds: number;
    keysPerSec: number;
    /** CPU over the load (% of one core): the node, and this process (the load generator). */
    nodeCpuPct: number | null;
    loaderCpuPct: number;
    /** Keys first written with the parking TTL, then given T with Batch Expire. */
    calibrationKeys: number;
    /** Seconds from the load's end to the deadline (the TTL the keys had left). */
    endToDeadlineSeconds: number;
  };
  /** Deadlines of spotKeys keys read back after the load, ms after T: earliest and latest. */
  deadlineSpreadMs: { min: number; max: number; sampled: number };
  writer: { inFlight: number; keys: number; calls: number; errors: number };
  windows: WindowLatency[];
  /** p99 during / p99 before. */
  p99Ratio: number;
  target: Target;
  met: boolean;
  /**
   * Sampled keys found by a Get sent at the start of the "before" window and answered before T
   * (readBeforeDeadlineMs: how long before T the last of those answers came); missing when read
   * at their own deadline; the latest of those answers, ms after its key's deadline.
   */
  reads: { sampled: number; presentBeforeDeadline: number; readBeforeDeadlineMs: number; missingAtDeadline: number; answeredMsAfterDeadline: number };
  /** Seconds from T until the node showed no key with a deadline and only the writer's keys. */
  goneSeconds: number;
  /** Seconds from T until the expired keys' records were collected (imdb_tombstones 0). */
  collectedSeconds: number;
  sweep: { ticks: number; seconds: number; tickMaxSeconds: number; expired: number };
  rss: { startBytes: number; beforeBytes: number; loadedBytes: number; collectedBytes: number; afterBytes: number; ratio: number };
  heapLiveBytes: { before: number; loaded: number; after: number };
  /** The writer per second from 10 s before T to the end of collection. */
  timeline: TimelinePoint[];
}

interface Metrics {
  keys: number;
  withDeadline: number;
  tombstones: number;
  deleted: number;
  expired: number;
  sweepTicks: number;
  sweepSeconds: number;
  sweepTickMax: number;
  heapLive: number;
}

async function readMetrics(n: SpawnedNode): Promise<Metrics> {
  const res = await fetch(`http://${n.metricsAddr}/metrics`);
  if (!res.ok) throw new Error(`${n.id} /metrics: HTTP ${res.status}`);
  const t = await res.text();
  return {
    keys: metricValue(t, "imdb_keys"), withDeadline: metricValue(t, "imdb_keys_with_deadline"), tombstones: metricValue(t, "imdb_tombstones"),
    deleted: metricValue(t, "imdb_keys_deleted"), expired: metricValue(t, "imdb_keys_expired_total"), sweepTicks: metricValue(t, "imdb_expiry_sweep_ticks_total"),
    sweepSeconds: metricValue(t, "imdb_expiry_sweep_seconds_total"), sweepTickMax: metricValue(t, "imdb_expiry_sweep_tick_seconds_max"),
    heapLive: metricValue(t, "imdb_js_heap_live_bytes_at_last_gc"),
  };
}

const loadKey = (i: number): string => `ex:${i}`;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const cpuSelfSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function sleepUntil(wallMs: number): Promise<void> {
  const ms = wallMs - Date.now();
  if (ms > 0) await Bun.sleep(ms);
}

interface LoadOutcome {
  deadlineMs: number;
  startedAt: number;
  endedAt: number;
  calibrationKeys: number;
  nodeCpuPct: number | null;
  loaderCpuPct: number;
}

/**
 * Writes keys [0, keys) in Batch chunks over `streams` concurrent callers. The first chunks get
 * the parking TTL until calibrationShare of the keys are acknowledged; then T is fixed from the
 * measured rate and later chunks get ttl_ms = T - now; last, the calibration chunks get T with
 * Batch Expire at_unix_ms.
 */
async function loadKeys(c: ImdbClient, o: ExpiryBenchOptions, nodePid: number, say: (s: string) => void): Promise<LoadOutcome> {
  const value = new Uint8Array(valueBytes).fill(0x65);
  const ttlMs = o.ttlSeconds * 1000;
  const chunks = Math.ceil(o.keys / batchOpsMax);
  const chunkKeys = (chunk: number): number => Math.min(o.keys, (chunk + 1) * batchOpsMax) - chunk * batchOpsMax;
  const calibrationChunks = Math.max(1, Math.ceil(chunks * calibrationShare));
  const parked: number[] = [];
  // In a holder: TypeScript does not see the callers set it, and would narrow a plain `let` to null.
  const fixed: { deadline: number | null } = { deadline: null };
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const wall0 = Date.now();
  const node0 = processCpuSeconds(nodePid);
  const self0 = cpuSelfSeconds();
  let reportedAt = t0;
  let reportedDone = 0;
  const send = async (ops: RequestOp[], what: string): Promise<void> => {
    const items = decodeBatchResponse(await c.batchRaw(encodeBatchRequest(ops)));
    const bad = items.find((it) => !it.ok);
    if (bad !== undefined && !bad.ok) throw new Error(`${what}: ${bad.code}: ${bad.message}`);
  };
  const fix = (): void => {
    // Keys still to write, plus the calibration keys' Expire pass (about as costly per key).
    const rate = done / Math.max(1, performance.now() - t0);
    const left = o.keys - done + parked.reduce((a, ch) => a + chunkKeys(ch), 0);
    const d = Date.now() + Math.ceil((left / rate) * loadEstimateMargin) + ttlMs;
    fixed.deadline = d;
    say(`  ${done.toLocaleString("en-US")} keys at ${Math.round(rate * 1000).toLocaleString("en-US")} keys/s: deadline set ${((d - Date.now()) / 1000).toFixed(1)} s from now`);
  };
  const caller = async (): Promise<void> => {
    for (;;) {
      const chunk = next++;
      if (chunk >= chunks) return;
      const keyTtlMs = fixed.deadline === null ? parkingTtlMs : fixed.deadline - Date.now();
      if (fixed.deadline === null) parked.push(chunk);
      // Keys must still be present for the check before the deadline: a load this late has no baseline window left.
      else if (keyTtlMs <= presentCheckBeforeMs) {
        throw new Error(`the load fell behind its estimate and reached the deadline at ${done.toLocaleString("en-US")} keys (the machine got busier than during calibration): run again`);
      }
      const ops: RequestOp[] = [];
      for (let i = chunk * batchOpsMax; i < chunk * batchOpsMax + chunkKeys(chunk); i++) ops.push({ kind: "set", key: loadKey(i), value, ttlMs: keyTtlMs });
      await send(ops, "set");
      done += ops.length;
      const now = performance.now();
      if (fixed.deadline === null && done >= calibrationChunks * batchOpsMax) fix();
      if (now - reportedAt >= progressEveryMs) {
        say(`  load: ${done.toLocaleString("en-US")} keys, ${Math.round(intervalRate(reportedDone, done, now - reportedAt)).toLocaleString("en-US")} keys/s in the last ${((now - reportedAt) / 1000).toFixed(1)} s`);
        reportedAt = now;
        reportedDone = done;
      }
    }
  };
  await Promise.all(Array.from({ length: o.streams }, caller));
  if (fixed.deadline === null) fix(); // every chunk was parked (a small --keys)
  const at = fixed.deadline ?? 0;
  let nextParked = 0;
  const fixer = async (): Promise<void> => {
    for (;;) {
      const chunk = parked[nextParked++];
      if (chunk === undefined) return;
      const ops: RequestOp[] = [];
      for (let i = chunk * batchOpsMax; i < chunk * batchOpsMax + chunkKeys(chunk); i++) ops.push({ kind: "expire", key: loadKey(i), atMs: at });
      await send(ops, "expire");
    }
  };
  await Promise.all(Array.from({ length: o.streams }, fixer));
  const ms = performance.now() - t0;
  const node1 = processCpuSeconds(nodePid);
  return {
    deadlineMs: at, startedAt: wall0, endedAt: Date.now(), calibrationKeys: parked.reduce((a, ch) => a + chunkKeys(ch), 0),
    nodeCpuPct: node0 === null || node1 === null ? null : round3(cpuPercent(node0, node1, ms)), loaderCpuPct: round3(cpuPercent(self0, cpuSelfSeconds(), ms)),
  };
}

/** Indexes of the spot-checked keys: spread evenly over [0, keys), the first and the last included. */
function spotIndexes(keys: number): number[] {
  const n = Math.min(spotKeys, keys);
  const out = new Set<number>();
  for (let k = 0; k < n; k++) out.add(n === 1 ? 0 : Math.round((k * (keys - 1)) / (n - 1)));
  return [...out];
}

/** How many of the keys a Get finds. */
async function present(c: ImdbClient, idx: readonly number[]): Promise<number> {
  const found = await Promise.all(idx.map(async (i) => {
    try {
      await c.get(loadKey(i));
      return 1;
    } catch (err) {
      if (err instanceof RpcError && err.codeName === "NOT_FOUND") return 0;
      throw err;
    }
  }));
  return found.reduce((a: number, b) => a + b, 0);
}

/** Polls the node's metrics every pollMs until `done` holds; throws at `deadline` (performance.now()). */
async function until(n: SpawnedNode, what: string, deadline: number, done: (m: Metrics) => boolean, tick: (m: Metrics) => void = () => {}): Promise<{ at: number; m: Metrics }> {
  for (;;) {
    const m = await readMetrics(n);
    const at = Date.now();
    tick(m);
    if (done(m)) return { at, m };
    if (performance.now() > deadline) throw new Error(`${what}: not reached within --seconds-max (keys ${m.keys}, with a deadline ${m.withDeadline}, tombstones ${m.tombstones})`);
    await Bun.sleep(pollMs);
  }
}

function windowOf(name: string, fromMs: number, toMs: number, t: number, h: LatencyHistogram, nodeCpuPct: number | null): WindowLatency {
  return {
    name, fromS: round3((fromMs - t) / 1000), toS: round3((toMs - t) / 1000), calls: h.count, callsPerSec: Math.round(intervalRate(0, h.count, toMs - fromMs)),
    p50Ms: round3(h.percentileMs(0.5)), p99Ms: round3(h.percentileMs(0.99)), maxMs: round3(h.maxUs / 1000), nodeCpuPct,
  };
}

export async function runExpiryBench(o: ExpiryBenchOptions): Promise<ExpiryBenchResult> {
  const say = o.progress;
  const loadStart = loadavg();
  const root = await mkdtemp(join(tmpdir(), "imdb-bench-expiry-"));
  let node: SpawnedNode | null = null;
  let client: ImdbClient | null = null;
  let writer: WriterHandle | null = null;
  try {
    const certs = join(root, "certs");
    await initCerts({ dir: certs, nodes: ["node-1"], clients: ["client"], admins: [], hosts: [], days: 1, force: false });
    say(`starting one node (mutual TLS, durability ${o.durability}); load average ${loadStart.map((x) => x.toFixed(2)).join(" ")}`);
    node = await spawnNode("node-1", [
      "--tls-dir", certs, "--data-dir", join(root, "node-1"), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0",
      "--metrics-addr", "127.0.0.1:0", "--durability", o.durability, "--log-level", "warn",
    ]);
    const n = node;
    const pid = n.proc.pid;
    const deadlineAll = performance.now() + o.secondsMax * 1000;
    const cpuAt = (): number | null => processCpuSeconds(pid);
    client = new ImdbClient({ server: n.clientAddr, tls: await loadTlsDir(certs, "client"), deadlineMs: batchDeadlineMs });
    const c = client;
    await Bun.sleep(idleBeforeMs);
    const startBytes = rssBytes(pid);
    writer = startWriter(n.clientAddr, certs, { inFlight: o.writerInFlight, keys: o.otherKeys });
    await writer.ready;
    writer.go();
    say(`RSS at start ${mib(startBytes)} MiB; the writer sets ${o.otherKeys.toLocaleString("en-US")} other keys, ${o.writerInFlight} calls in flight`);
    await Bun.sleep(idleBeforeMs);
    await until(n, "the writer's keys", deadlineAll, (m) => m.keys === o.otherKeys);
    // The writer on a node holding only its keys: what the loaded keys themselves cost it shows against this.
    const unloadedFrom = Date.now();
    const cpuUnloaded0 = cpuAt();
    await until(n, "the window before loading", deadlineAll, () => Date.now() >= unloadedFrom + o.beforeSeconds * 1000);
    const unloadedTo = Date.now();
    const cpuUnloaded1 = cpuAt();
    const beforeBytes = rssBytes(pid);
    const heapBefore = (await readMetrics(n)).heapLive;
    say(`RSS before loading ${mib(beforeBytes)} MiB; loading ${o.keys.toLocaleString("en-US")} keys, ${o.streams} Batch streams`);

    const load = await loadKeys(c, o, pid, say);
    const t = load.deadlineMs;
    const loadedBytes = rssBytes(pid);
    const loaded = await until(n, "every key loaded with its deadline", deadlineAll, (m) => m.withDeadline === o.keys && m.keys === o.keys + o.otherKeys);
    const spot = spotIndexes(o.keys);
    const views = await Promise.all(spot.map((i) => c.get(loadKey(i))));
    const offsets = views.map((v) => (v.expiresAtMs ?? Number.NaN) - t);
    if (offsets.some((x) => !Number.isFinite(x))) throw new Error("a loaded key has no deadline");
    const loadSeconds = (load.endedAt - load.startedAt) / 1000;
    say(`loaded in ${loadSeconds.toFixed(1)} s (${Math.round(o.keys / loadSeconds).toLocaleString("en-US")} keys/s; CPU node ${load.nodeCpuPct?.toFixed(0) ?? "?"}%, load generator ${load.loaderCpuPct.toFixed(0)}%); ` +
      `RSS ${mib(loadedBytes)} MiB; deadline in ${((t - Date.now()) / 1000).toFixed(1)} s; sampled deadlines T+${Math.min(...offsets)}..T+${Math.max(...offsets)} ms`);

    // The baseline window: the metrics are polled as often as during the expiry, so both windows carry the same extra load.
    const beforeFrom = Math.max(load.endedAt, loaded.at, t - o.beforeSeconds * 1000);
    await sleepUntil(beforeFrom);
    const cpuBefore0 = cpuAt();
    const m0 = await readMetrics(n);
    // A Get answered after T would rightly miss, so only answers that came before T count.
    const presentCheck = present(c, spot).then((found) => ({ found: Date.now() < t ? found : 0, msBefore: t - Date.now() }));
    // Each sampled key is read at its own deadline (T, or a few ms later for a ttl_ms key: see above).
    const missCheck = Promise.all(spot.map(async (i, k) => {
      const at = t + (offsets[k] as number);
      while (Date.now() < at) await Bun.sleep(at - Date.now());
      const found = await present(c, [i]);
      return { missing: 1 - found, msAfter: Date.now() - at };
    })).then((rs) => ({ missing: rs.reduce((a, r) => a + r.missing, 0), msAfter: Math.max(...rs.map((r) => r.msAfter)) }));
    await until(n, "the deadline", deadlineAll, () => Date.now() >= t);
    const cpuT = cpuAt();
    let lastSaid = Date.now();
    const gone = await until(n, "every expired key gone", deadlineAll, (m) => m.withDeadline === 0 && m.keys === o.otherKeys, (m) => {
      if (Date.now() - lastSaid >= progressEveryMs) {
        lastSaid = Date.now();
        say(`  ${((lastSaid - t) / 1000).toFixed(1)} s after the deadline: ${m.withDeadline.toLocaleString("en-US")} keys with a deadline left, ${m.tombstones.toLocaleString("en-US")} records to collect; writer ${writer?.latest.calls.toLocaleString("en-US")} calls`);
      }
    });
    const cpuGone = cpuAt();
    say(`every expired key gone ${((gone.at - t) / 1000).toFixed(2)} s after the deadline; waiting for collection`);
    const collected = await until(n, "every expired record collected", deadlineAll, (m) => m.tombstones === 0 && m.deleted === 0);
    const cpuCollected = cpuAt();
    const collectedBytes = rssBytes(pid);
    say(`collected ${((collected.at - t) / 1000).toFixed(2)} s after the deadline; RSS ${mib(collectedBytes)} MiB; settling ${o.settleSeconds} s`);
    const settleEnd = collected.at + o.settleSeconds * 1000;
    const afterFrom = Math.max(collected.at, settleEnd - o.beforeSeconds * 1000);
    await sleepUntil(afterFrom);
    const cpuAfter0 = cpuAt();
    await until(n, "the settling wait", deadlineAll, () => Date.now() >= settleEnd);
    const cpuAfter1 = cpuAt();
    const afterBytes = rssBytes(pid);
    const end = await readMetrics(n);
    const specs: WindowSpec[] = [
      { name: "unloaded", fromMs: unloadedFrom, toMs: unloadedTo },
      { name: "before", fromMs: beforeFrom, toMs: t },
      { name: "during", fromMs: t, toMs: gone.at },
      { name: "collection", fromMs: gone.at, toMs: collected.at },
      { name: "after", fromMs: afterFrom, toMs: settleEnd },
    ];
    const w = await writer.finish(specs, { fromMs: t - 10_000, toMs: collected.at, stepMs: 1000 });
    const cpus: Array<[number | null, number | null]> = [[cpuUnloaded0, cpuUnloaded1], [cpuBefore0, cpuT], [cpuT, cpuGone], [cpuGone, cpuCollected], [cpuAfter0, cpuAfter1]];
    const windows = specs.map((s, i) => {
      const [a, b] = cpus[i] as [number | null, number | null];
      const h = LatencyHistogram.fromJSON((w.windows[i] as { histogram: Parameters<typeof LatencyHistogram.fromJSON>[0] }).histogram);
      return windowOf(s.name, s.fromMs, s.toMs, t, h, a === null || b === null ? null : round3(cpuPercent(a, b, s.toMs - s.fromMs)));
    });
    const [, before, during] = windows as [WindowLatency, WindowLatency, WindowLatency];
    const p99Ratio = round3(during.p99Ms / Math.max(before.p99Ms, 0.001));
    const miss = await missCheck;
    const pre = await presentCheck;
    const reads = { sampled: spot.length, presentBeforeDeadline: pre.found, readBeforeDeadlineMs: pre.msBefore, missingAtDeadline: miss.missing, answeredMsAfterDeadline: miss.msAfter };
    return {
      bench: "expiry", keys: o.keys, ttlSeconds: o.ttlSeconds, durability: o.durability, tls: true,
      loadAverage: { start: loadStart.map(round3), end: loadavg().map(round3) },
      load: {
        streams: o.streams, seconds: round3(loadSeconds), keysPerSec: Math.round(o.keys / loadSeconds), nodeCpuPct: load.nodeCpuPct, loaderCpuPct: load.loaderCpuPct,
        calibrationKeys: load.calibrationKeys, endToDeadlineSeconds: round3((t - load.endedAt) / 1000),
      },
      deadlineSpreadMs: { min: Math.min(...offsets), max: Math.max(...offsets), sampled: offsets.length },
      writer: { inFlight: o.writerInFlight, keys: o.otherKeys, calls: w.calls, errors: w.errors },
      windows, p99Ratio, target: expiryP99Target, met: targetMet(expiryP99Target, p99Ratio), reads,
      goneSeconds: round3((gone.at - t) / 1000), collectedSeconds: round3((collected.at - t) / 1000),
      sweep: { ticks: end.sweepTicks - m0.sweepTicks, seconds: round3(end.sweepSeconds - m0.sweepSeconds), tickMaxSeconds: end.sweepTickMax, expired: end.expired - m0.expired },
      rss: { startBytes, beforeBytes, loadedBytes, collectedBytes, afterBytes, ratio: round3(afterBytes / beforeBytes) },
      heapLiveBytes: { before: heapBefore, loaded: loaded.m.heapLive, after: end.heapLive },
      timeline: w.timeline,
    };
  } catch (err) {
    if (node !== null) process.stderr.write(`--- ${node.id} log (tail)\n${node.log().split("\n").slice(-10).join("\n")}\n`);
    throw err;
  } finally {
    if (writer !== null) await writer.kill();
    client?.close();
    if (node !== null) await node.stop();
    await rm(root, { recursive: true, force: true });
  }
}

const mib = (b: number): string => (b / 2 ** 20).toFixed(1);

/** The human report: the writer's windows, then the expiry's times and the node's memory. */
export function expiryTable(r: ExpiryBenchResult): string {
  const l = r.load;
  const lines = [
    `one node (mutual TLS, durability ${r.durability}), ${r.keys.toLocaleString("en-US")} keys sharing one deadline ${r.ttlSeconds} s after the load; ` +
      `a writer sets ${r.writer.keys.toLocaleString("en-US")} other keys, ${r.writer.inFlight} calls in flight`,
    `load: ${l.seconds} s, ${l.keysPerSec.toLocaleString("en-US")} keys/s over ${l.streams} Batch streams (CPU node ${l.nodeCpuPct === null ? "?" : Math.round(l.nodeCpuPct)}%, ` +
      `load generator ${Math.round(l.loaderCpuPct)}%); ended ${l.endToDeadlineSeconds} s before the deadline; sampled deadlines T+${r.deadlineSpreadMs.min}..T+${r.deadlineSpreadMs.max} ms`,
    `${"writer window".padEnd(14)} ${"from..to s".padStart(14)} ${"calls".padStart(8)} ${"calls/s".padStart(8)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"max ms".padStart(8)} ${"node CPU".padStart(9)}`,
  ];
  for (const w of r.windows) {
    lines.push(`${w.name.padEnd(14)} ${`${w.fromS.toFixed(1)}..${w.toS.toFixed(1)}`.padStart(14)} ${String(w.calls).padStart(8)} ${String(w.callsPerSec).padStart(8)} ` +
      `${w.p50Ms.toFixed(2).padStart(8)} ${w.p99Ms.toFixed(2).padStart(8)} ${w.maxMs.toFixed(2).padStart(8)} ${(w.nodeCpuPct === null ? "?" : `${Math.round(w.nodeCpuPct)}%`).padStart(9)}`);
  }
  lines.push(
    `reads: ${r.reads.presentBeforeDeadline}/${r.reads.sampled} sampled keys found before the deadline (answered ${r.reads.readBeforeDeadlineMs} ms before it), ${r.reads.missingAtDeadline}/${r.reads.sampled} missing when read at their own deadline (answers within ${r.reads.answeredMsAfterDeadline} ms)`,
    `gone: no key with a deadline, only the writer's keys, ${r.goneSeconds} s after the deadline (sweep: ${r.sweep.expired.toLocaleString("en-US")} expired, ${r.sweep.seconds} s in ${r.sweep.ticks} ticks, longest tick ${(r.sweep.tickMaxSeconds * 1000).toFixed(1)} ms)`,
    `collected: every expired record collected ${r.collectedSeconds} s after the deadline`,
    `RSS MiB: start ${mib(r.rss.startBytes)}, before loading ${mib(r.rss.beforeBytes)}, loaded ${mib(r.rss.loadedBytes)}, collected ${mib(r.rss.collectedBytes)}, after settling ${mib(r.rss.afterBytes)}; after/before ${r.rss.ratio.toFixed(3)}`,
    `writer: ${r.writer.calls.toLocaleString("en-US")} calls, ${r.writer.errors} errors; load average ${r.loadAverage.start.join(" ")} at start, ${r.loadAverage.end.join(" ")} at end`,
    `p99 during / before: ${r.p99Ratio.toFixed(2)}x, ${targetVerdict(r.target, r.p99Ratio)}`,
  );
  return `${lines.join("\n")}\n`;
}

function intIn(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    console.error(`error: ${name} must be an integer in ${min.toLocaleString("en-US")}..${max.toLocaleString("en-US")}, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
}

interface ExpiryFlags {
  keys: string; ttlSeconds: string; durability: string; streams: string; writerInFlight: string; otherKeys: string;
  beforeSeconds: string; settleSeconds: string; secondsMax: string; json?: boolean;
  writer?: boolean; server?: string; tlsDir?: string;
}

export function registerBench(bench: Command): void {
  bench
    .command("expiry")
    .description("one node: K keys share one deadline while a client writes other keys; the client's p99 before vs during the expiry, the time until all are gone, RSS")
    .option("--keys <n>", "keys that expire together", String(expiryKeysDefault))
    .option("--ttl-seconds <s>", "their deadline: this long after the load ends", String(expiryTtlSecondsDefault))
    .option("--durability <mode>", "sync | none", "sync")
    .option("--streams <n>", "concurrent Batch streams loading the keys", String(expiryStreamsDefault))
    .option("--writer-in-flight <n>", "the writer's unary Sets in flight", String(expiryWriterInFlightDefault))
    .option("--other-keys <n>", "keys the writer sets, in turn", String(expiryOtherKeysDefault))
    .option("--before-seconds <s>", "the baseline window before the deadline (and the window after settling)", String(expiryBeforeSecondsDefault))
    .option("--settle-seconds <s>", "wait after collection before the last RSS reading", String(expirySettleSecondsDefault))
    .option("--seconds-max <s>", "longest the run may take once the node started", String(expirySecondsMaxDefault))
    .option("--json", "print exactly one JSON object")
    .addOption(new Option("--writer", "internal: run as the bench's writer process").hideHelp())
    .addOption(new Option("--server <addr>", "internal: the writer's node").hideHelp())
    .addOption(new Option("--tls-dir <dir>", "internal: the writer's certificates").hideHelp())
    .action(async (f: ExpiryFlags) => {
      const writerInFlight = intIn("--writer-in-flight", f.writerInFlight, 1, 256);
      const otherKeys = intIn("--other-keys", f.otherKeys, 1, 1_000_000);
      if (f.writer === true) {
        const c = new ImdbClient({ server: f.server ?? "", tls: await loadTlsDir(f.tlsDir ?? "", "client") });
        try {
          process.exitCode = await runWriter(c, { inFlight: writerInFlight, keys: otherKeys });
        } finally {
          c.close();
        }
        return;
      }
      const keys = intIn("--keys", f.keys, 1, expiryKeysMax);
      const ttlSeconds = intIn("--ttl-seconds", f.ttlSeconds, 1, 3600);
      const streams = intIn("--streams", f.streams, 1, 64);
      const beforeSeconds = intIn("--before-seconds", f.beforeSeconds, 1, 3600);
      const settleSeconds = intIn("--settle-seconds", f.settleSeconds, 0, 86_400);
      const secondsMax = intIn("--seconds-max", f.secondsMax, 1, 86_400);
      if (f.durability !== "sync" && f.durability !== "none") {
        console.error(`error: --durability must be sync or none, got ${JSON.stringify(f.durability)}`);
        process.exit(2);
      }
      const r = await runExpiryBench({
        keys, ttlSeconds, durability: f.durability, streams, writerInFlight, otherKeys, beforeSeconds, settleSeconds, secondsMax,
        progress: (s) => process.stderr.write(`bench expiry: ${s}\n`),
      });
      process.stdout.write(f.json === true ? `${JSON.stringify(r)}\n` : expiryTable(r));
      if (!r.met) process.exitCode = 1;
    });
}
