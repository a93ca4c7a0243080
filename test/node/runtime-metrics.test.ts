// Issue 16, "See inside": /metrics passes `promtool check metrics` with no warnings, the runtime
// families are true under Bun (no Node-only numbers), and imdb_build_info and certificate expiry
// are exported.
import { describe, expect, test } from "bun:test";
import { createCa, issueCert, validityFromDays } from "../../src/transport/certs.ts";
import { loadedCerts } from "../../src/node/cert-expiry.ts";
import { createNodeMetrics, type NodeMetrics } from "../../src/node/metrics.ts";
import { sample } from "./prom.ts";
import { checkMetrics, promtool } from "./promtool.ts";

/** A registry with every family holding samples, as on a busy node. */
function busy(): NodeMetrics {
  const m = createNodeMetrics({ build: { version: "9.8.7", commit: "abc123" } });
  m.setAccel({ checksum: "native", clocks: "ts", append: "native" });
  m.opDone("get", "OK", 0.001);
  m.opDone("set", "UNAVAILABLE", 0.2);
  m.walSynced(3, 0.002);
  m.snapshotDone(1.5, 4096);
  m.setCollectors({
    members: () => [{ status: "alive" }, { status: "dead" }],
    peers: () => [{ peer: "node-2", backlog: 3, lagSeconds: 1.25 }],
    antiEntropy: () => ({ rounds: 2, bytesSent: 10, bytesReceived: 20, keysRepaired: 1 }),
    keys: () => 5,
    deletedKeys: () => 1,
    tlsCerts: () => [{ cert: "node", subject: "node-1", notAfterSeconds: 2_000_000_000 }],
  });
  return m;
}

describe("promtool check metrics", () => {
  const path = promtool();
  test.skipIf(path === null)("a busy node's /metrics text has no problem at all", async () => {
    const r = checkMetrics(path!, await busy().registry.metrics());
    expect(r.problems).toBe("");
    expect(r.code).toBe(0);
  });

  test.skipIf(path === null)("the lint really reports problems (what prom-client's Node defaults had)", () => {
    const bad = "# HELP imdb_nodejs_active_handles_total x\n# TYPE imdb_nodejs_active_handles_total gauge\nimdb_nodejs_active_handles_total 0\n";
    const r = checkMetrics(path!, bad);
    expect(r.problems).toContain('non-counter metrics should not have "_total" suffix');
  });
});

describe("runtime metrics under Bun", () => {
  test("no family Bun cannot report truthfully; what is there is plausible", async () => {
    const text = await busy().registry.metrics();
    // Node/V8 imitations: version_info says a Node version, heap used > total, VmData as "heap", loop histograms of NaN.
    expect(text).not.toContain("imdb_nodejs_");
    expect(text).not.toContain("imdb_process_heap_bytes");
    expect(text).not.toMatch(/\bNaN\b/i);
    const rss = sample(text, "imdb_process_resident_memory_bytes")!;
    expect(rss).toBeGreaterThan(1e6);
    expect(sample(text, "imdb_process_resident_memory_peak_bytes")!).toBeGreaterThanOrEqual(rss);
    Bun.gc(true);
    const after = await busy().registry.metrics();
    const live = sample(after, "imdb_js_heap_live_bytes_at_last_gc")!;
    expect(live).toBeGreaterThan(1e5);
    expect(live).toBeLessThan(sample(after, "imdb_process_resident_memory_bytes")!);
    const user = sample(text, "imdb_process_cpu_user_seconds_total")!;
    const sys = sample(text, "imdb_process_cpu_system_seconds_total")!;
    expect(sample(text, "imdb_process_cpu_seconds_total")!).toBeGreaterThanOrEqual(user + sys - 0.05);
    const delay = sample(text, "imdb_event_loop_delay_seconds")!;
    expect(delay).toBeGreaterThanOrEqual(0);
    expect(delay).toBeLessThan(5);
    const started = sample(text, "imdb_process_start_time_seconds")!;
    expect(Math.abs(started - (Date.now() - performance.now()) / 1000)).toBeLessThan(5);
  });

  test("imdb_build_info names the version, commit and Bun", async () => {
    const text = await busy().registry.metrics();
    expect(sample(text, "imdb_build_info", { version: "9.8.7", commit: "abc123", bun: Bun.version })).toBe(1);
  });
});

describe("certificate expiry", () => {
  test("one series per loaded certificate (node and CA), at its notAfter", async () => {
    const now = new Date("2030-01-01T00:00:00Z");
    const ca = await createCa(validityFromDays(now, 3650));
    const node = await issueCert(ca, "node", "node-1", validityFromDays(now, 30), ["127.0.0.1"]);
    const certs = loadedCerts({ ca: Buffer.from(ca.certPem), cert: Buffer.from(node.certPem), key: Buffer.from(node.keyPem) });
    expect(certs.map((c) => c.cert)).toEqual(["node", "ca"]);
    expect(certs[0]!.subject).toBe("node-1");
    expect(certs[0]!.notAfterSeconds).toBe(Math.floor(Date.parse(new (await import("node:crypto")).X509Certificate(node.certPem).validTo) / 1000));
    expect(certs[0]!.notAfterSeconds).toBeGreaterThan(now.getTime() / 1000 + 29 * 86400);
    expect(certs[1]!.notAfterSeconds).toBeGreaterThan(now.getTime() / 1000 + 3649 * 86400);
    const m = createNodeMetrics({ processMetrics: false });
    m.setCollectors({ tlsCerts: () => certs });
    const text = await m.registry.metrics();
    expect(sample(text, "imdb_tls_cert_expiry_timestamp_seconds", { cert: "node", subject: "node-1" })).toBe(certs[0]!.notAfterSeconds);
    expect(sample(text, "imdb_tls_cert_expiry_timestamp_seconds", { cert: "ca" })).toBe(certs[1]!.notAfterSeconds);
  });
});
