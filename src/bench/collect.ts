// `imdb bench collect`: a real N-node mutual-TLS cluster on loopback writes K keys, deletes them
// all, and measures how long the deletes' records take to be collected on every node and whether
// each node's resident memory comes back to within 15% of what it was before the writes (issue 13).
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { collectedEchoGraceMs, collectedGraceMs } from "../cluster/gc.ts";
import { memoryReturnCheckMs } from "../node/memory-return.ts";
import { batchOpsMax } from "../limits.ts";
import { initCerts } from "../transport/certs.ts";
import { encodeBatchRequest, ImdbClient, type RequestOp } from "../transport/client.ts";
import { decodeBatchResponse } from "../transport/batch-codec.ts";
import { loadTlsDir } from "../transport/tls.ts";
import { targetMet, targetVerdict, type Target } from "./report.ts";
import { spawnNode, type SpawnedNode } from "./spawn-node.ts";

export const collectNodesMax = 9;
export const collectKeysMax = 10_000_000;
export const collectKeysDefault = 1_000_000;
/** Longest the whole run may take once the cluster formed (s): writes, replication, deletes, collection, settling. */
export const collectSecondsMaxDefault = 3_600;
/**
 * Longest wait for resident memory to come down once everything is collected (s). It covers the
 * 60 s for which a node remembers the keys it collected (cluster/gc.ts collectedGraceMs), since
 * that memory only goes back after it.
 */
export const collectSettleSecondsDefault = 120;
/**
 * Keys written, deleted and collected before "before" is read: the first writes and deletes
 * compile code, open connections and size buffers once, whatever the number of keys; the
 * resident size right after start is reported too.
 */
export const collectWarmupKeysDefault = 10_000;
/** The issue's target: each node's resident memory after collection at most this times before the writes. */
export const collectRssTarget: Target = { bound: "<=", target: 1.15, unit: "x" };

const formDeadlineMs = 30_000;
/** Concurrent Batch callers per node, each with one batch in flight. */
const callersPerNode = 2;
/** One Batch RPC's deadline: a 1000-op batch in sync mode on a busy machine takes far less. */
const batchDeadlineMs = 120_000;
/** Idle time after the cluster formed, before the "before" reading (gossip settles, start-up garbage goes). */
const idleBeforeMs = 3_000;
/**
 * After the warm-up: the time collected keys are remembered, then the time their fingerprints
 * are kept, then two checks of node/memory-return.ts and 5 s, so "before" is read after the
 * warm-up's last memory return (its GC and shrink), not between two of them: read between,
 * the 1M run's "before" was 15 MiB higher than read after.
 */
const warmupQuietMs = collectedGraceMs + collectedEchoGraceMs + 2 * memoryReturnCheckMs + 5_000;
const pollMs = 500;
const progressEveryMs = 5_000;

export type CollectDurability = "sync" | "none";

export interface CollectBenchOptions {
  keys: number;
  nodes: number;
  secondsMax: number;
  settleSecondsMax: number;
  /** Keys written, deleted and collected before the "before" reading (0: none), so one-time costs are not counted as retained. */
  warmupKeys: number;
  durability: CollectDurability;
  progress: (line: string) => void;
}

export interface CollectNodeRow {
  id: string;
  pid: number;
  /** Resident set size (VmRSS) idle after the cluster formed, before any write. */
  beforeBytes: number;
  /** Once this node held every key. */
  loadedBytes: number;
  /** Once everything was collected and memory settled (or the settling wait ended). */
  afterBytes: number;
  /** afterBytes / beforeBytes, 3 decimals. */
  ratio: number;
  met: boolean;
  /** imdb_tombstones, imdb_keys_deleted and imdb_keys at the end (all 0 once collected). */
  tombstonesAfter: number;
  keysDeletedAfter: number;
  keysAfter: number;
  tombstonesCollected: number;
  /** Resident set size idle right after the cluster formed, before the warm-up. */
  startBytes: number;
  /** JS heap live at the node's last GC (imdb_js_heap_live_bytes_at_last_gc) at before / loaded / after. */
  heapBytes: [number, number, number];
}

export interface CollectBenchResult {
  bench: "collect";
  nodes: number;
  keys: number;
  durability: CollectDurability;
  warmupKeys: number;
  tls: true;
  /** Seconds from the first write to the last write's acknowledgement, and keys/s over it. */
  writeSeconds: number;
  writeKeysPerSec: number;
  /** Seconds from the last write's acknowledgement until every node held every key. */
  replicateSeconds: number;
  deleteSeconds: number;
  /** Seconds from the last delete's acknowledgement until every node held no key and no record. */
  collectionSeconds: number;
  /** Seconds from the end of collection until every node met the target, or until the settling wait ended. */
  settleSeconds: number;
  target: Target;
  rows: CollectNodeRow[];
  met: boolean;
}

/** Resident set size of a process from /proc (Linux), in bytes. */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** The value of one unlabelled metric in a Prometheus text exposition. */
export function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  if (m === null) throw new Error(`no ${name} in /metrics`);
  return Number(m[1]);
}

/** Per node: JS heap live bytes at its last GC (JavaScriptCore measures it only then). */
async function heapLive(nodes: readonly SpawnedNode[]): Promise<number[]> {
  const texts = await Promise.all(nodes.map(metrics));
  return texts.map((t) => metricValue(t, "imdb_js_heap_live_bytes_at_last_gc"));
}

async function metrics(n: SpawnedNode): Promise<string> {
  const res = await fetch(`http://${n.metricsAddr}/metrics`);
  if (!res.ok) throw new Error(`${n.id} /metrics: HTTP ${res.status}`);
  return res.text();
}

const valueBytes = (i: number): Uint8Array => new TextEncoder().encode(`v${i}`);

/** Even keys are counters, odd ones registers: both storage paths of the engine (columns, objects). */
function writeOp(key: string, i: number): RequestOp {
  return i % 2 === 0 ? { kind: "increment", key, amount: 1n } : { kind: "set", key, value: valueBytes(i) };
}

interface RoundTimes {
  w0: number;
  writtenAt: number;
  replicatedAt: number;
  d0: number;
  deletedAt: number;
  collectedAt: number;
}

/**
 * Writes keys `${prefix}0..` over the nodes, waits until every node holds them all, calls
 * `loaded`, deletes them all, and waits until every node holds no key and no record.
 */
async function writeDeleteCollect(nodes: readonly SpawnedNode[], clients: readonly ImdbClient[], prefix: string, keys: number, deadline: number, say: (s: string) => void, loaded: () => Promise<void>): Promise<RoundTimes> {
  const w0 = performance.now();
  const writtenAt = await sendAll(clients, keys, (i) => writeOp(`${prefix}${i}`, i), "write", say);
  const replicatedAt = await untilAll(nodes, "every node holding every key", deadline, (t) => metricValue(t, "imdb_keys") === keys);
  await loaded();
  const d0 = performance.now();
  const deletedAt = await sendAll(clients, keys, (i) => ({ kind: "delete", key: `${prefix}${i}` }), "delete", say);
  say(`deletes acknowledged in ${secondsSince(d0, deletedAt)} s; waiting for collection`);
  const collectedAt = await untilAll(nodes, "every record collected", deadline, (t) =>
    metricValue(t, "imdb_tombstones") === 0 && metricValue(t, "imdb_keys_deleted") === 0 && metricValue(t, "imdb_keys") === 0);
  say(`collected on every node ${secondsSince(deletedAt, collectedAt)} s after the last delete's acknowledgement`);
  return { w0, writtenAt, replicatedAt, d0, deletedAt, collectedAt };
}

/**
 * Sends keys [0, keys) in Batch chunks of batchOpsMax over every client, callersPerNode callers
 * per client, each taking the next chunk; every op must succeed. Resolves with the time the last
 * acknowledgement arrived.
 */
async function sendAll(clients: readonly ImdbClient[], keys: number, op: (i: number) => RequestOp, what: string, progress: (s: string) => void): Promise<number> {
  const chunks = Math.ceil(keys / batchOpsMax);
  let next = 0;
  let done = 0;
  let lastAckMs = performance.now();
  const t0 = performance.now();
  let reportedAt = t0;
  let reportedDone = 0;
  const caller = async (c: ImdbClient): Promise<void> => {
    for (;;) {
      const chunk = next++;
      if (chunk >= chunks) return;
      const ops: RequestOp[] = [];
      for (let i = chunk * batchOpsMax; i < Math.min(keys, (chunk + 1) * batchOpsMax); i++) ops.push(op(i));
      const items = decodeBatchResponse(await c.batchRaw(encodeBatchRequest(ops)));
      lastAckMs = performance.now();
      const bad = items.find((it) => !it.ok);
      if (bad !== undefined && !bad.ok) throw new Error(`${what}: ${bad.code}: ${bad.message}`);
      done += ops.length;
      if (lastAckMs - reportedAt >= progressEveryMs) {
        progress(`  ${what}: ${done.toLocaleString("en-US")} keys, ${Math.round(((done - reportedDone) * 1000) / (lastAckMs - reportedAt))} keys/s in the last ${((lastAckMs - reportedAt) / 1000).toFixed(1)} s`);
        reportedAt = lastAckMs;
        reportedDone = done;
      }
    }
  };
  await Promise.all(clients.flatMap((c) => Array.from({ length: callersPerNode }, () => caller(c))));
  return lastAckMs;
}

/** Polls until `check` holds on every node; returns when it did. Throws at the deadline. */
async function untilAll(nodes: readonly SpawnedNode[], what: string, deadlineMs: number, check: (text: string) => boolean): Promise<number> {
  for (;;) {
    const texts = await Promise.all(nodes.map(metrics));
    const now = performance.now();
    if (texts.every(check)) return now;
    if (now > deadlineMs) {
      const state = nodes.map((n, i) => `${n.id}: keys ${metricValue(texts[i]!, "imdb_keys")}, deleted ${metricValue(texts[i]!, "imdb_keys_deleted")}, tombstones ${metricValue(texts[i]!, "imdb_tombstones")}`);
      throw new Error(`${what}: not reached within --seconds-max (${state.join("; ")})`);
    }
    await Bun.sleep(pollMs);
  }
}

const secondsSince = (from: number, to: number): number => Math.round(to - from) / 1000;

export async function runCollectBench(opts: CollectBenchOptions): Promise<CollectBenchResult> {
  const say = opts.progress;
  const root = await mkdtemp(join(tmpdir(), "imdb-bench-collect-"));
  const nodes: SpawnedNode[] = [];
  const clients: ImdbClient[] = [];
  try {
    const ids = Array.from({ length: opts.nodes }, (_, i) => `node-${i + 1}`);
    const certs = join(root, "certs");
    await initCerts({ dir: certs, nodes: ids, clients: ["client"], admins: [], hosts: [], days: 1, force: false });
    const args = (id: string, seed: string | null): string[] => [
      "--tls-dir", certs, "--data-dir", join(root, id), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0",
      "--metrics-addr", "127.0.0.1:0", "--durability", opts.durability, "--log-level", "warn", ...(seed ? ["--seeds", seed] : []),
    ];
    say(`starting ${opts.nodes} nodes (mutual TLS, durability ${opts.durability})`);
    const first = await spawnNode(ids[0]!, args(ids[0]!, null));
    nodes.push(first);
    nodes.push(...(await Promise.all(ids.slice(1).map((id) => spawnNode(id, args(id, first.peerAddr))))));
    const tls = await loadTlsDir(certs, "client");
    for (const n of nodes) clients.push(new ImdbClient({ server: n.clientAddr, tls, deadlineMs: batchDeadlineMs }));
    const formEnd = performance.now() + formDeadlineMs;
    for (const c of clients) {
      for (;;) {
        const ms = await c.members();
        if (ms.filter((m) => m.status === "alive").length === opts.nodes) break;
        if (performance.now() > formEnd) throw new Error("the cluster did not form in time");
        await Bun.sleep(50);
      }
    }
    const deadline = performance.now() + opts.secondsMax * 1000;
    await Bun.sleep(idleBeforeMs);
    const start = nodes.map((n) => rssBytes(n.proc.pid));
    say(`cluster formed; RSS at start: ${start.map(mib).join(", ")} MiB`);
    if (opts.warmupKeys > 0) {
      say(`warm-up: ${opts.warmupKeys.toLocaleString("en-US")} keys written, deleted and collected`);
      await writeDeleteCollect(nodes, clients, "bw:", opts.warmupKeys, deadline, say, async () => {});
      // Until the nodes forgot the warm-up's collected keys and ran their GC for it (memory-return.ts):
      // read earlier, "before" would count the warm-up's garbage.
      say(`waiting ${(warmupQuietMs / 1000).toFixed(0)} s for the nodes to forget the warm-up's collected keys`);
      await Bun.sleep(warmupQuietMs);
    }
    const before = nodes.map((n) => rssBytes(n.proc.pid));
    const heapBefore = await heapLive(nodes);
    say(`RSS before: ${before.map(mib).join(", ")} MiB; writing ${opts.keys.toLocaleString("en-US")} keys (half counters, half registers)`);
    let loaded: number[] = [];
    let heapLoaded: number[] = [];
    const times = await writeDeleteCollect(nodes, clients, "bc:", opts.keys, deadline, say, async () => {
      loaded = nodes.map((n) => rssBytes(n.proc.pid));
      heapLoaded = await heapLive(nodes);
      say(`every node holds every key; RSS loaded: ${loaded.map(mib).join(", ")} MiB; deleting them all`);
    });
    const { w0, writtenAt, replicatedAt, d0, deletedAt, collectedAt } = times;
    say("waiting for memory to settle");

    const settleEnd = Math.min(deadline, collectedAt + opts.settleSecondsMax * 1000);
    let after = nodes.map((n) => rssBytes(n.proc.pid));
    const allMet = (): boolean => after.every((a, i) => targetMet(collectRssTarget, a / before[i]!));
    let lastSaid = performance.now();
    while (!allMet() && performance.now() < settleEnd) {
      await Bun.sleep(pollMs);
      after = nodes.map((n) => rssBytes(n.proc.pid));
      if (performance.now() - lastSaid >= progressEveryMs) {
        say(`  RSS: ${after.map(mib).join(", ")} MiB`);
        lastSaid = performance.now();
      }
    }
    const settledAt = performance.now();
    const finals = await Promise.all(nodes.map(metrics));
    const heapAfter = await heapLive(nodes);
    const rows = nodes.map((n, i): CollectNodeRow => {
      const ratio = Math.round((after[i]! / before[i]!) * 1000) / 1000;
      return {
        id: n.id, pid: n.proc.pid, beforeBytes: before[i]!, loadedBytes: loaded[i]!, afterBytes: after[i]!, ratio, met: targetMet(collectRssTarget, ratio),
        tombstonesAfter: metricValue(finals[i]!, "imdb_tombstones"), keysDeletedAfter: metricValue(finals[i]!, "imdb_keys_deleted"),
        keysAfter: metricValue(finals[i]!, "imdb_keys"), tombstonesCollected: metricValue(finals[i]!, "imdb_tombstones_collected_total"),
        startBytes: start[i]!, heapBytes: [heapBefore[i]!, heapLoaded[i]!, heapAfter[i]!],
      };
    });
    return {
      bench: "collect", nodes: opts.nodes, keys: opts.keys, durability: opts.durability, warmupKeys: opts.warmupKeys, tls: true,
      writeSeconds: secondsSince(w0, writtenAt), writeKeysPerSec: Math.round((opts.keys * 1000) / Math.max(1, writtenAt - w0)),
      replicateSeconds: secondsSince(writtenAt, replicatedAt), deleteSeconds: secondsSince(d0, deletedAt),
      collectionSeconds: secondsSince(deletedAt, collectedAt), settleSeconds: secondsSince(collectedAt, settledAt),
      target: collectRssTarget, rows, met: rows.every((r) => r.met),
    };
  } catch (err) {
    for (const n of nodes) process.stderr.write(`--- ${n.id} log (tail)\n${n.log().split("\n").slice(-10).join("\n")}\n`);
    throw err;
  } finally {
    for (const c of clients) c.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await rm(root, { recursive: true, force: true });
  }
}

const mib = (b: number): string => (b / 2 ** 20).toFixed(1);

/** The human report: one row per node, then the times. */
export function collectTable(r: CollectBenchResult): string {
  const lines = [
    `${r.nodes} nodes (mutual TLS, durability ${r.durability}), ${r.keys.toLocaleString("en-US")} keys written, then all deleted (${r.warmupKeys > 0 ? `after a ${r.warmupKeys.toLocaleString("en-US")}-key warm-up` : "no warm-up"})`,
    `${"node".padEnd(8)} ${"before MiB".padStart(11)} ${"loaded MiB".padStart(11)} ${"after MiB".padStart(10)} ${"after/before".padStart(13)}  verdict`,
  ];
  for (const n of r.rows) {
    lines.push(`${n.id.padEnd(8)} ${mib(n.beforeBytes).padStart(11)} ${mib(n.loadedBytes).padStart(11)} ${mib(n.afterBytes).padStart(10)} ${n.ratio.toFixed(3).padStart(13)}  ` +
      `${targetVerdict(r.target, n.ratio)} (tombstones ${n.tombstonesAfter}, deleted keys ${n.keysDeletedAfter})`);
  }
  lines.push(`RSS right after start${r.warmupKeys > 0 ? " (before the warm-up)" : ""}, and JS heap live at the last GC (before / loaded / after), MiB:`);
  for (const n of r.rows) {
    lines.push(`  ${n.id}: start ${mib(n.startBytes)} (after/start ${(n.afterBytes / n.startBytes).toFixed(3)}); heap ${n.heapBytes.map(mib).join(" / ")}`);
  }
  lines.push(
    `writes: ${r.writeSeconds} s (${r.writeKeysPerSec.toLocaleString("en-US")} keys/s), on every node ${r.replicateSeconds} s later; deletes: ${r.deleteSeconds} s`,
    `collection: every record gone on every node ${r.collectionSeconds} s after the last delete's acknowledgement`,
    `memory: ${r.met ? "every node within the target" : "not every node within the target"} ${r.settleSeconds} s after collection`,
    `target after <= 1.15 x before: ${r.met ? "met" : "not met"}`,
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

export function registerBench(bench: Command): void {
  bench
    .command("collect")
    .description("a real N-node cluster: write K keys, delete them all, time their collection and compare each node's RSS with before the writes")
    .option("--keys <n>", "keys written then deleted, spread over the nodes", String(collectKeysDefault))
    .option("--nodes <n>", "cluster size", "3")
    .option("--seconds-max <s>", "longest the run may take once the cluster formed", String(collectSecondsMaxDefault))
    .option("--settle-seconds <s>", "longest wait for memory to come back once everything is collected", String(collectSettleSecondsDefault))
    .option("--durability <mode>", "sync | none", "sync")
    .option("--warmup-keys <n>", "keys written, deleted and collected before the 'before' reading (0: none)", String(collectWarmupKeysDefault))
    .option("--json", "print exactly one JSON object")
    .action(async (o: { keys: string; nodes: string; secondsMax: string; settleSeconds: string; durability: string; warmupKeys: string; json?: boolean }) => {
      const keys = intIn("--keys", o.keys, 1, collectKeysMax);
      const nodes = intIn("--nodes", o.nodes, 1, collectNodesMax);
      const secondsMax = intIn("--seconds-max", o.secondsMax, 1, 86_400);
      const settleSecondsMax = intIn("--settle-seconds", o.settleSeconds, 0, 86_400);
      const warmupKeys = intIn("--warmup-keys", o.warmupKeys, 0, collectKeysMax);
      if (o.durability !== "sync" && o.durability !== "none") {
        console.error(`error: --durability must be sync or none, got ${JSON.stringify(o.durability)}`);
        process.exit(2);
      }
      const r = await runCollectBench({ keys, nodes, secondsMax, settleSecondsMax, warmupKeys, durability: o.durability, progress: (s) => process.stderr.write(`bench collect: ${s}\n`) });
      process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : collectTable(r));
      if (!r.met) process.exitCode = 1;
    });
}
