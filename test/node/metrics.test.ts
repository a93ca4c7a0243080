// The node's metrics registry and /metrics server: every imdb_* family is exposed, hot-path
// counters count what the node reports, scrape-time collectors are read, and the WAL appender
// wrapper reports real fdatasyncs from a real store.

import { afterAll, describe, expect, test } from "bun:test";
import { Gauge } from "prom-client";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tsAccel, type AppendStats, type CountedAppender, type CountedDurableFile } from "../../src/accel/index.ts";
import { encodeFileHeader, encodeRecords, walMagic } from "../../src/persist/format.ts";
import { asLsn } from "../../src/persist/lsn.ts";
import { openStore, silentLog } from "../../src/persist/index.ts";
import { createNodeMetrics, opLabelPairsMax, walRecordsIn, type NodeMetrics } from "../../src/node/metrics.ts";
import { metricsScrapesInFlightMax, startMetricsServer } from "../../src/node/metrics-server.ts";
import { OpFailure, type ClientOp, type OpOutcome } from "../../src/transport/api.ts";
import { requiredFamilies, sample } from "./prom.ts";


const incr = (key: string): ClientOp => ({ kind: "increment", key, amount: 1n, counter: null });
const get = (key: string): ClientOp => ({ kind: "get", key });
const ok: OpOutcome = { ok: true, result: { kind: "counter", value: 1n } };

/** A clock the test moves by hand. */
function manualClock(): { nowMs: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { nowMs: () => t, advance: (ms) => (t += ms) };
}

describe("registry", () => {
  test("every family is exposed, with process metrics, on a private registry", async () => {
    const m = createNodeMetrics();
    m.setAccel({ checksum: "native", clocks: "ts", append: "native" });
    const text = await m.registry.metrics();
    for (const [name, type] of requiredFamilies) expect(text).toContain(`# TYPE ${name} ${type}\n`);
    // Two nodes in one process do not collide (a global registry would throw on the second).
    const other = createNodeMetrics();
    expect(await other.registry.metrics()).toContain("# TYPE imdb_ops_total counter");
  });

  test("ops are counted by front door; the Redis protocol's commands, refusals and clients have their own families", async () => {
    const clock = manualClock();
    const m = createNodeMetrics({ processMetrics: false, nowMs: clock.nowMs });
    let clients = 3;
    m.setCollectors({ respClients: () => clients });
    await m.track([incr("a")], async () => [ok]);
    await m.track([incr("a")], async () => [ok], "resp");
    await m.track([incr("a")], async () => [ok], "resp");
    m.respCommandDone("incr", "OK");
    m.respCommandDone("get", "WRONGTYPE");
    m.respCommandDone("get", "WRONGTYPE");
    m.respConnectionRefused("maxclients");
    let text = await m.registry.metrics();
    expect(sample(text, "imdb_ops_total", { op: "increment", status: "OK", door: "grpc" })).toBe(1);
    expect(sample(text, "imdb_ops_total", { op: "increment", status: "OK", door: "resp" })).toBe(2);
    expect(sample(text, "imdb_op_duration_seconds_count", { op: "increment", door: "resp" })).toBe(2);
    expect(sample(text, "imdb_resp_commands_total", { command: "get", status: "WRONGTYPE" })).toBe(2);
    expect(sample(text, "imdb_resp_commands_total", { command: "incr", status: "OK" })).toBe(1);
    expect(sample(text, "imdb_resp_connections_refused_total", { reason: "maxclients" })).toBe(1);
    expect(sample(text, "imdb_resp_clients")).toBe(3);
    clients = 0;
    text = await m.registry.metrics();
    expect(sample(text, "imdb_resp_clients")).toBe(0);
  });

  test("track counts each op by kind and outcome and times the request", async () => {
    const clock = manualClock();
    const m = createNodeMetrics({ processMetrics: false, nowMs: clock.nowMs });
    await m.track([incr("a")], async () => {
      clock.advance(2);
      return [ok];
    });
    const notFound: OpOutcome = { ok: false, error: { code: "NOT_FOUND", message: "key not found" } };
    await m.track([incr("a"), get("b"), get("c")], async () => {
      clock.advance(30);
      return [ok, notFound, ok];
    });
    await expect(
      m.track([get("x")], async () => {
        clock.advance(1);
        throw new OpFailure("UNAVAILABLE", "stopping");
      }),
    ).rejects.toThrow("stopping");
    await expect(m.track([get("y")], () => Promise.reject(new Error("bug")))).rejects.toThrow("bug");

    const text = await m.registry.metrics();
    expect(sample(text, "imdb_ops_total", { op: "increment", status: "OK" })).toBe(2);
    expect(sample(text, "imdb_ops_total", { op: "get", status: "NOT_FOUND" })).toBe(1);
    expect(sample(text, "imdb_ops_total", { op: "get", status: "OK" })).toBe(1);
    expect(sample(text, "imdb_ops_total", { op: "get", status: "UNAVAILABLE" })).toBe(1);
    expect(sample(text, "imdb_ops_total", { op: "get", status: "INTERNAL" })).toBe(1);
    // One unary increment of 2 ms: in the 2.5 ms bucket, not the 1 ms one.
    expect(sample(text, "imdb_op_duration_seconds_bucket", { op: "increment", le: "0.001" })).toBe(0);
    expect(sample(text, "imdb_op_duration_seconds_bucket", { op: "increment", le: "0.0025" })).toBe(1);
    expect(sample(text, "imdb_op_duration_seconds_count", { op: "batch" })).toBe(1);
    expect(sample(text, "imdb_op_duration_seconds_sum", { op: "batch" })).toBeCloseTo(0.03, 9);
    expect(sample(text, "imdb_op_duration_seconds_count", { op: "get" })).toBe(2);
  });

  test("opDone and opsCounted; distinct label pairs are bounded", async () => {
    const m = createNodeMetrics({ processMetrics: false });
    m.opDone("set", "OK", 0.0004);
    m.opsCounted("set", "OK", 5);
    m.opsCounted("set", "OK", 0);
    for (let i = 0; i < opLabelPairsMax + 10; i++) m.opsCounted(`op${i}`, "OK", 1);
    const text = await m.registry.metrics();
    expect(sample(text, "imdb_ops_total", { op: "set", status: "OK" })).toBe(6);
    const series = text.split("\n").filter((l) => l.startsWith("imdb_ops_total{"));
    expect(series.length).toBe(opLabelPairsMax + 1);
    // set/OK took one slot, so 11 of the generated pairs fold into other/other.
    expect(sample(text, "imdb_ops_total", { op: "other", status: "other" })).toBe(11);
  });

  test("collectors are read at scrape time; pushed and pulled totals add up", async () => {
    const m = createNodeMetrics({ processMetrics: false });
    let peers = [
      { peer: "node-2", backlog: 12, lagSeconds: 0.25 },
      { peer: "node-3", backlog: 0, lagSeconds: 0 },
    ];
    let skew = 3;
    m.setCollectors({
      members: () => [{ status: "alive" }, { status: "alive" }, { status: "suspect" }, { status: "dead" }],
      peers: () => peers,
      antiEntropy: () => ({ rounds: 7, bytesSent: 100, bytesReceived: 50, keysRepaired: 4 }),
      clockSkewEvents: () => skew,
      typeConflicts: () => 3,
      keys: () => 42,
      actorsKnown: () => 7,
      epochStartedAtSeconds: () => 1_700_000_000.5,
    });
    m.antiEntropyRound();
    m.antiEntropyBytes("sent", 10);
    m.antiEntropyBytes("received", 5);
    m.antiEntropyRepaired(1);
    m.clockSkewEvent();
    let text = await m.registry.metrics();
    expect(sample(text, "imdb_members", { state: "alive" })).toBe(2);
    expect(sample(text, "imdb_members", { state: "suspect" })).toBe(1);
    expect(sample(text, "imdb_members", { state: "dead" })).toBe(1);
    expect(sample(text, "imdb_members", { state: "left" })).toBe(0);
    expect(sample(text, "imdb_peer_delta_backlog", { peer: "node-2" })).toBe(12);
    expect(sample(text, "imdb_peer_replication_lag_seconds", { peer: "node-2" })).toBe(0.25);
    expect(sample(text, "imdb_antientropy_rounds_total")).toBe(8);
    expect(sample(text, "imdb_antientropy_bytes_total", { direction: "sent" })).toBe(110);
    expect(sample(text, "imdb_antientropy_bytes_total", { direction: "received" })).toBe(55);
    expect(sample(text, "imdb_antientropy_keys_repaired_total")).toBe(5);
    expect(sample(text, "imdb_clock_skew_events_total")).toBe(4);
    expect(sample(text, "imdb_type_conflicts_total")).toBe(3);
    expect(sample(text, "imdb_keys")).toBe(42);
    expect(sample(text, "imdb_actors_known")).toBe(7);
    expect(sample(text, "imdb_replica_epoch_start_seconds")).toBe(1_700_000_000.5);

    // A departed peer's series disappears; cumulative values follow the callbacks.
    peers = [{ peer: "node-3", backlog: 2, lagSeconds: 0.01 }];
    skew = 9;
    text = await m.registry.metrics();
    expect(sample(text, "imdb_peer_delta_backlog", { peer: "node-2" })).toBeUndefined();
    expect(sample(text, "imdb_peer_delta_backlog", { peer: "node-3" })).toBe(2);
    expect(sample(text, "imdb_clock_skew_events_total")).toBe(10);
  });

  test("peer timestamps refused for being too far ahead are counted from their collector (issue 12, finding 8)", async () => {
    const m = createNodeMetrics({ processMetrics: false });
    let refused = 0;
    m.setCollectors({ hlcRemoteAheadRefused: () => refused });
    expect(sample(await m.registry.metrics(), "imdb_hlc_remote_ahead_refused_total")).toBe(0);
    refused = 3;
    expect(sample(await m.registry.metrics(), "imdb_hlc_remote_ahead_refused_total")).toBe(3);
  });

  test("accel path gauge is 1 exactly for the active path of each primitive", async () => {
    const m = createNodeMetrics({ processMetrics: false });
    m.setAccel({ checksum: "native", clocks: "ts", append: "native" });
    const text = await m.registry.metrics();
    expect(sample(text, "imdb_accel_path", { primitive: "checksum", path: "native" })).toBe(1);
    expect(sample(text, "imdb_accel_path", { primitive: "checksum", path: "ts" })).toBe(0);
    expect(sample(text, "imdb_accel_path", { primitive: "clocks", path: "ts" })).toBe(1);
    expect(sample(text, "imdb_accel_path", { primitive: "clocks", path: "native" })).toBe(0);
    expect(sample(text, "imdb_accel_path", { primitive: "append", path: "native" })).toBe(1);
  });

  test("snapshotDone and walSynced", async () => {
    const m = createNodeMetrics({ processMetrics: false });
    m.snapshotDone(1.5, 4096);
    m.snapshotDone(0.2, 8192);
    m.walSynced(16, 0.003);
    const text = await m.registry.metrics();
    expect(sample(text, "imdb_snapshot_duration_seconds_count")).toBe(2);
    expect(sample(text, "imdb_snapshot_bytes")).toBe(8192);
    expect(sample(text, "imdb_wal_fsync_duration_seconds_count")).toBe(1);
    expect(sample(text, "imdb_wal_group_records_sum")).toBe(16);
    expect(sample(text, "imdb_wal_group_records_bucket", { le: "8" })).toBe(0);
    expect(sample(text, "imdb_wal_group_records_bucket", { le: "16" })).toBe(1);
  });
});

describe("WAL appender wrapper", () => {
  const sums = tsAccel.checksums;
  const bodies = (n: number) => Array.from({ length: n }, (_, i) => Uint8Array.of(i, i + 1, i + 2));

  test("walRecordsIn counts framed records and skips segment headers", () => {
    expect(walRecordsIn([encodeRecords(bodies(1), asLsn(1), sums)])).toBe(1);
    expect(walRecordsIn([encodeRecords(bodies(37), asLsn(5), sums), encodeRecords(bodies(3), asLsn(42), sums)])).toBe(40);
    expect(walRecordsIn([encodeFileHeader(walMagic, asLsn(1), sums)])).toBe(0);
    expect(walRecordsIn([new Uint8Array(0)])).toBe(0);
  });

  test("each group-commit round is one group; every fdatasync is counted with its time", async () => {
    // A fake file that holds appends until the test finishes a round, like group commit does.
    const stats: AppendStats = { calls: 0, rounds: 0, writevs: 0, fdatasyncs: 0, writeMs: 0, fdatasyncMs: 0 };
    let waiting: Array<() => void> = [];
    const file: CountedDurableFile = {
      size: 0,
      stats: () => ({ ...stats }),
      append: () => {
        stats.calls++;
        return new Promise<void>((r) => waiting.push(r));
      },
      sync: () => new Promise<void>((r) => waiting.push(r)),
      idle: () => waiting.length === 0,
      close: async () => undefined,
    };
    const finishRound = (fdatasyncMs: number) => {
      stats.rounds++;
      stats.fdatasyncs++;
      stats.fdatasyncMs += fdatasyncMs;
      for (const r of waiting.splice(0)) r();
    };
    const inner: CountedAppender = { open: async () => file };
    const m = createNodeMetrics({ processMetrics: false });
    const f = await m.instrumentAppender(inner).open("/nowhere");
    const settle = async (ps: Promise<void>[]) => {
      await Promise.all(ps);
      await Promise.resolve();
    };
    const seen = async () => {
      const t = await m.registry.metrics();
      return {
        fsyncs: sample(t, "imdb_wal_fsync_duration_seconds_count"),
        fsyncSeconds: Math.round((sample(t, "imdb_wal_fsync_duration_seconds_sum") ?? -1) * 1e9) / 1e9,
        groups: sample(t, "imdb_wal_group_records_count"),
        records: sample(t, "imdb_wal_group_records_sum"),
      };
    };
    const round1 = [f.append([encodeRecords(bodies(2), asLsn(1), sums)], true), f.append([encodeRecords(bodies(5), asLsn(3), sums)], true)];
    finishRound(4);
    await settle(round1);
    expect(await seen()).toEqual({ fsyncs: 1, fsyncSeconds: 0.004, groups: 1, records: 7 });
    expect(sample(await m.registry.metrics(), "imdb_wal_group_records_bucket", { le: "4" })).toBe(0);
    expect(sample(await m.registry.metrics(), "imdb_wal_group_records_bucket", { le: "8" })).toBe(1);

    // The native worker may finish the next fdatasync before JS answers this round: every
    // fdatasync is still counted once, the answered records form one group.
    const round2 = [f.append([encodeRecords(bodies(1), asLsn(8), sums)], true)];
    stats.fdatasyncs++;
    stats.fdatasyncMs += 2;
    finishRound(2);
    await settle(round2);
    expect(await seen()).toEqual({ fsyncs: 3, fsyncSeconds: 0.008, groups: 2, records: 8 });

    // Appends without sync (durability interval) join the group of the next fdatasync.
    const p = f.append([encodeRecords(bodies(3), asLsn(9), sums)], false);
    for (const r of waiting.splice(0)) r();
    await settle([p]);
    expect((await seen()).groups).toBe(2);
    const s = f.sync();
    finishRound(1);
    await settle([s]);
    expect(await seen()).toEqual({ fsyncs: 4, fsyncSeconds: 0.009, groups: 3, records: 11 });
  });

  test("a real store in sync mode: fdatasyncs are counted and every appended record is reported", async () => {
    const dir = await mkdtemp(join(tmpdir(), "imdb-metrics-"));
    try {
      const m = createNodeMetrics({ processMetrics: false });
      const store = await openStore({
        dataDir: dir,
        durability: { kind: "sync" },
        repair: false,
        accel: { checksums: tsAccel.checksums, appender: m.instrumentAppender(tsAccel.appender) },
        log: silentLog,
        onFatal: () => undefined,
        sink: { snapshotEntry: () => undefined, walRecord: () => undefined },
      });
      // 20 concurrent callers of 3 records: group commit shares fdatasyncs among them.
      await Promise.all(Array.from({ length: 20 }, () => store.append(bodies(3))));
      await store.append(bodies(1));
      await store.close();
      await Promise.resolve();
      const text = await m.registry.metrics();
      const syncs = sample(text, "imdb_wal_fsync_duration_seconds_count") ?? 0;
      expect(syncs).toBeGreaterThanOrEqual(2); // segment header + at least one data round
      expect(syncs).toBeLessThanOrEqual(23);
      expect(sample(text, "imdb_wal_group_records_count")).toBe(syncs);
      expect(sample(text, "imdb_wal_group_records_sum")).toBe(61);
      expect(sample(text, "imdb_wal_fsync_duration_seconds_sum")).toBeGreaterThan(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("metrics server", () => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterAll(async () => {
    for (const s of open) await s.close();
  });

  async function serve(m: NodeMetrics, healthy?: () => boolean) {
    const s = await startMetricsServer("127.0.0.1:0", m.registry, healthy ? { healthy } : {});
    open.push(s);
    return `http://127.0.0.1:${s.port}`;
  }

  test("GET /metrics over HTTP has every family and the registry's content type", async () => {
    const m = createNodeMetrics();
    m.setAccel({ checksum: "ts", clocks: "ts", append: "ts" });
    m.opDone("increment", "OK", 0.001);
    const base = await serve(m);
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(m.registry.contentType);
    const text = await res.text();
    for (const [name, type] of requiredFamilies) expect(text).toContain(`# TYPE ${name} ${type}\n`);
    expect(sample(text, "imdb_ops_total", { op: "increment", status: "OK" })).toBe(1);
    expect(sample(text, "imdb_process_resident_memory_bytes")).toBeGreaterThan(0);
  });

  test("/healthz follows the health callback; other paths 404; other methods 405; HEAD has no body", async () => {
    let healthy = true;
    const base = await serve(createNodeMetrics({ processMetrics: false }), () => healthy);
    let res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ok\n");
    healthy = false;
    res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(503);
    await res.text();
    res = await fetch(`${base}/`);
    expect(res.status).toBe(404);
    await res.text();
    res = await fetch(`${base}/metrics/x`);
    expect(res.status).toBe(404);
    await res.text();
    res = await fetch(`${base}/metrics`, { method: "POST", body: "x" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
    await res.text();
    res = await fetch(`${base}/metrics?name=x`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });

  test("concurrent scrapes beyond the bound get 503, the rest succeed", async () => {
    const m = createNodeMetrics({ processMetrics: false });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    m.setCollectors({ keys: () => 1 });
    // Hold every scrape inside an async collect until the test releases them.
    let entered = 0;
    new Gauge({
      name: "test_gate",
      help: "holds scrapes",
      registers: [m.registry],
      async collect() {
        entered++;
        await gate;
        this.set(1);
      },
    });
    const base = await serve(m);
    const first = Array.from({ length: metricsScrapesInFlightMax }, () => fetch(`${base}/metrics`));
    // Wait (bounded, by yielding to the event loop) until every held scrape is inside collect.
    for (let i = 0; i < 10_000 && entered < metricsScrapesInFlightMax; i++) await new Promise<void>((r) => setImmediate(r));
    expect(entered).toBe(metricsScrapesInFlightMax);
    const extra = await fetch(`${base}/metrics`);
    expect(extra.status).toBe(503);
    await extra.text();
    release();
    const results = await Promise.all(first);
    for (const r of results) {
      expect(r.status).toBe(200);
      await r.text();
    }
  });

  test("a malformed address is refused before binding", async () => {
    await expect(startMetricsServer("nope", createNodeMetrics({ processMetrics: false }).registry)).rejects.toThrow("not HOST:PORT");
  });
});
