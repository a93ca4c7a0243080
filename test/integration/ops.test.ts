// An operator's view of a running node through the built binary: /metrics under load has every
// imdb_* family with sensible values, /healthz answers, and AdminService works with an admin
// certificate and refuses a plain client one. A second node joins so the per-peer families
// and anti-entropy counters have something to show.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { run, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";
import { requiredFamilies as families, sample } from "../node/prom.ts";

setDefaultTimeout(60_000);

const dir = tempDir("ops");
const certs = join(dir.path, "certs");
let node1: NodeProc;
let node2: NodeProc | undefined;
let metrics1 = "";


/** The metrics address from the ready line: `imdb node ID ready: client H:P peer H:P metrics H:P`. */
function metricsAddrOf(n: NodeProc): string {
  const m = /ready: .* metrics (\S+)/.exec(n.stdout());
  if (!m) throw new Error(`the ready line does not name the metrics address ("... metrics HOST:PORT"): ${JSON.stringify(n.stdout())}`);
  return m[1] as string;
}

async function scrape(addr: string): Promise<string> {
  const res = await fetch(`http://${addr}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type") ?? "").toContain("text/plain");
  return res.text();
}

const client = (server: string, args: string[]) => run(["client", "--server", server, "--tls-dir", certs, ...args]);
const admin = (server: string, args: string[], name = "admin") => run(["admin", "--server", server, "--tls-dir", certs, "--name", name, ...args]);

const nodeArgs = (id: string, extra: string[] = []) => [
  "--data-dir", join(dir.path, id), "--tls-dir", certs, "--durability", "sync",
  "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", ...extra,
];

beforeAll(async () => {
  const made = await run(["certs", "init", "--dir", certs, "--nodes", "node-1,node-2", "--clients", "client", "--admins", "admin"]);
  expect(made.code).toBe(0);
  node1 = await startNode("node-1", nodeArgs("node-1"));
  metrics1 = metricsAddrOf(node1);
});

afterAll(() => {
  node1?.proc.kill("SIGKILL");
  node2?.proc.kill("SIGKILL");
  dir.cleanup();
});

/** Distinct keys of the load (its prefill writes two ops per key first). */
const loadKeys = 200;

describe("metrics of one node under load", () => {
  test("/healthz answers ok while serving", async () => {
    const res = await fetch(`http://${metrics1}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ok\n");
    const missing = await fetch(`http://${metrics1}/nothing`);
    expect(missing.status).toBe(404);
    await missing.text();
  });

  test("every family is present with sensible values after load", async () => {
    const load = await run(["bench", "load", "--server", node1.clientAddr, "--tls-dir", certs, "--op", "mixed", "--clients", "8", "--seconds", "2", "--keys", String(loadKeys), "--json"]);
    expect(load.code).toBe(0);
    const result = JSON.parse(load.stdout) as { ops: number; errors: number };
    expect(result.ops).toBeGreaterThan(0);
    const missing = await client(node1.clientAddr, ["get", "no-such-key"]);
    expect(missing.code).toBe(1);

    const text = await scrape(metrics1);
    for (const [name, type] of families) expect(text).toContain(`# TYPE ${name} ${type}\n`);

    // Ops: the load's increments and sets were counted as OK; the missing key as NOT_FOUND.
    const incrOk = sample(text, "imdb_ops_total", { op: "increment", status: "OK" }) ?? 0;
    const setOk = sample(text, "imdb_ops_total", { op: "set", status: "OK" }) ?? 0;
    const getAll = (sample(text, "imdb_ops_total", { op: "get", status: "OK" }) ?? 0) + (sample(text, "imdb_ops_total", { op: "get", status: "NOT_FOUND" }) ?? 0);
    expect(incrOk).toBeGreaterThan(0);
    expect(setOk).toBeGreaterThan(0);
    expect(sample(text, "imdb_ops_total", { op: "get", status: "NOT_FOUND" })).toBeGreaterThanOrEqual(1);
    // The node counted what the load generator saw acknowledged, plus its prefill (one increment
    // and one set per key, in Batch calls) and the one missing get.
    expect(incrOk + setOk + getAll).toBeGreaterThanOrEqual(result.ops - result.errors + 2 * loadKeys + 1);
    expect(incrOk + setOk + getAll).toBeLessThanOrEqual(result.ops + 2 * loadKeys + 1);
    expect(sample(text, "imdb_op_duration_seconds_count", { op: "batch" })).toBeGreaterThanOrEqual(1);
    const latencyCount = (sample(text, "imdb_op_duration_seconds_count", { op: "increment" }) ?? 0) + (sample(text, "imdb_op_duration_seconds_count", { op: "set" }) ?? 0);
    expect(latencyCount).toBeGreaterThan(0);
    // All of these requests finished well under the largest bucket.
    expect(sample(text, "imdb_op_duration_seconds_bucket", { op: "increment", le: "+Inf" })).toBe(sample(text, "imdb_op_duration_seconds_count", { op: "increment" }) ?? -1);

    // Sync durability: writes were fdatasync'ed, in groups holding every write.
    const fsyncs = sample(text, "imdb_wal_fsync_duration_seconds_count") ?? 0;
    expect(fsyncs).toBeGreaterThan(0);
    expect(sample(text, "imdb_wal_fsync_duration_seconds_sum")).toBeGreaterThan(0);
    expect(sample(text, "imdb_wal_group_records_sum")).toBeGreaterThanOrEqual(incrOk + setOk);
    // Group commit: with 8 concurrent callers, fewer fdatasyncs than writes.
    expect(fsyncs).toBeLessThan(incrOk + setOk);

    // Exactly one active path per accel primitive.
    for (const primitive of ["checksum", "clocks", "append"]) {
      const native = sample(text, "imdb_accel_path", { primitive, path: "native" });
      const ts = sample(text, "imdb_accel_path", { primitive, path: "ts" });
      expect((native ?? 0) + (ts ?? 0)).toBe(1);
    }

    expect(sample(text, "imdb_members", { state: "alive" })).toBeGreaterThanOrEqual(1);
    expect(sample(text, "imdb_members", { state: "dead" })).toBe(0);
    expect(sample(text, "imdb_clock_skew_events_total")).toBe(0);
    expect(sample(text, "imdb_process_resident_memory_bytes")).toBeGreaterThan(0);
  });
});

describe("admin commands", () => {
  test("a plain client certificate is refused with PERMISSION_DENIED and changes nothing", async () => {
    for (const cmd of ["snapshot", "stats", "leave"]) {
      const r = await admin(node1.clientAddr, [cmd], "client");
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("PERMISSION_DENIED");
    }
    const text = await scrape(metrics1);
    expect(sample(text, "imdb_snapshot_duration_seconds_count") ?? 0).toBe(0);
    expect(sample(text, "imdb_members", { state: "alive" })).toBeGreaterThanOrEqual(1);
  });

  test("snapshot with an admin certificate writes one, and the snapshot metrics show it", async () => {
    const r = await admin(node1.clientAddr, ["--json", "snapshot"]);
    expect(r.code).toBe(0);
    const snap = JSON.parse(r.stdout) as { path: string; bytes: number; keys: number };
    expect(snap.bytes).toBeGreaterThan(0);
    expect(snap.keys).toBeGreaterThan(0);
    const text = await scrape(metrics1);
    expect(sample(text, "imdb_snapshot_duration_seconds_count")).toBeGreaterThanOrEqual(1);
    expect(sample(text, "imdb_snapshot_bytes")).toBeGreaterThan(0);
  });

  test("stats with an admin certificate names the node", async () => {
    const r = await admin(node1.clientAddr, ["--json", "stats"]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as { stats: Record<string, string> };
    expect(s.stats.nodeId).toBe("node-1");
    // The CRDT actor of this life of the data folder (docs/operations.md, Replica identity).
    expect(s.stats.replica).toMatch(/^node-1\/[0-9a-f]{16}$/);
    const human = await admin(node1.clientAddr, ["stats"]);
    expect(human.stdout).toContain("nodeId: node-1");
  });
});

describe("two nodes", () => {
  test("a joined peer shows in members, per-peer gauges and anti-entropy counters", async () => {
    node2 = await startNode("node-2", nodeArgs("node-2", ["--seeds", node1.peerAddr]));
    const metrics2 = metricsAddrOf(node2);
    await waitFor("node-1 to see node-2 alive", async () => sample(await scrape(metrics1), "imdb_members", { state: "alive" }) === 2, 20_000, 200);
    // Writes on node-1 are pushed to node-2 (a backlog series exists for it).
    expect((await client(node1.clientAddr, ["incr", "pushed", "3"])).code).toBe(0);
    await waitFor("node-1 to export a backlog and lag for node-2", async () => {
      const t = await scrape(metrics1);
      return sample(t, "imdb_peer_delta_backlog", { peer: "node-2" }) !== undefined && sample(t, "imdb_peer_replication_lag_seconds", { peer: "node-2" }) !== undefined;
    }, 10_000, 200);
    // node-2 was empty: anti-entropy (about once a second) repairs the keys node-1 had. Which
    // side counts a repair depends on who started the round, so look at both nodes.
    await waitFor("anti-entropy rounds, bytes and repaired keys", async () => {
      const [t1, t2] = [await scrape(metrics1), await scrape(metrics2)];
      const total = (name: string, labels: Record<string, string> = {}) => (sample(t1, name, labels) ?? 0) + (sample(t2, name, labels) ?? 0);
      return total("imdb_antientropy_rounds_total") > 0 && total("imdb_antientropy_keys_repaired_total") >= loadKeys &&
        total("imdb_antientropy_bytes_total", { direction: "sent" }) > 0 && total("imdb_antientropy_bytes_total", { direction: "received" }) > 0;
    }, 20_000, 250);
    expect(sample(await scrape(metrics2), "imdb_members", { state: "alive" })).toBe(2);
    const got = await waitFor("node-2 to read the pushed key", async () => {
      const r = await client(node2!.clientAddr, ["--json", "get", "pushed"]);
      return r.code === 0 ? (JSON.parse(r.stdout) as { value: number }) : undefined;
    }, 10_000, 200);
    expect(got.value).toBe(3);
  });

  test("leave with an admin certificate: the other node sees the member as left", async () => {
    if (node2 === undefined) throw new Error("node-2 did not start (see the previous test)");
    const r = await admin(node2.clientAddr, ["leave"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("OK: left; node-1 holds the departure");
    await waitFor("node-1 to count node-2 as left", async () => sample(await scrape(metrics1), "imdb_members", { state: "left" }) === 1, 15_000, 200);
  });

  test("SIGTERM stops the node and its metrics endpoint", async () => {
    node1.proc.kill("SIGTERM");
    expect(await node1.proc.exited).toBe(0);
    await expect(fetch(`http://${metrics1}/healthz`)).rejects.toThrow();
  });
});
