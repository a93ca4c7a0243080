// `imdb bench expiry` through the built binary on a small key count: it starts a real node, loads
// keys that share one deadline while its writer sets other keys, sees every expired key gone and
// collected, and reports the writer's latency windows and the p99 verdict, in the table and in --json.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { run } from "./harness.ts";

setDefaultTimeout(240_000);

const small = ["bench", "expiry", "--keys", "3000", "--ttl-seconds", "2", "--before-seconds", "2", "--settle-seconds", "2", "--other-keys", "50", "--seconds-max", "180"];

interface ExpiryJson {
  bench: string; keys: number; ttlSeconds: number; durability: string; met: boolean; p99Ratio: number; goneSeconds: number; collectedSeconds: number;
  load: { keysPerSec: number; calibrationKeys: number; endToDeadlineSeconds: number };
  deadlineSpreadMs: { min: number; max: number; sampled: number };
  writer: { calls: number; errors: number; keys: number };
  windows: { name: string; calls: number; p50Ms: number; p99Ms: number; maxMs: number }[];
  reads: { sampled: number; presentBeforeDeadline: number; missingAtDeadline: number };
  sweep: { expired: number };
  rss: { beforeBytes: number; loadedBytes: number; afterBytes: number; ratio: number };
}

describe("bench expiry", () => {
  test("3000 keys, 2 s TTL: the table has the writer's windows, the reads, gone and collected times, RSS and the verdict", async () => {
    const r = await run(small, { timeoutMs: 200_000 });
    expect(r.stdout, r.stderr).toContain("one node (mutual TLS, durability sync), 3,000 keys sharing one deadline 2 s after the load; a writer sets 50 other keys, 8 calls in flight");
    expect(r.stdout).toMatch(/^writer window\s+from\.\.to s\s+calls\s+calls\/s\s+p50 ms\s+p99 ms\s+max ms\s+node CPU$/m);
    for (const w of ["unloaded", "before", "during", "collection", "after"]) expect(r.stdout).toMatch(new RegExp(`^${w}\\s+-?\\d+\\.\\d\\.\\.-?\\d+\\.\\d\\s+\\d+\\s+\\d+\\s+\\d+\\.\\d\\d\\s+\\d+\\.\\d\\d\\s+\\d+\\.\\d\\d\\s+(\\d+%|\\?)$`, "m"));
    // Every sampled key is readable before the deadline and missing from it on.
    expect(r.stdout).toMatch(/^reads: 32\/32 sampled keys found before the deadline \(answered \d+ ms before it\), 32\/32 missing when read at their own deadline/m);
    expect(r.stdout).toMatch(/^gone: no key with a deadline, only the writer's keys, \d+(\.\d+)? s after the deadline/m);
    expect(r.stdout).toMatch(/^collected: every expired record collected \d+(\.\d+)? s after the deadline$/m);
    expect(r.stdout).toMatch(/^RSS MiB: start \d+\.\d, before loading \d+\.\d, loaded \d+\.\d, collected \d+\.\d, after settling \d+\.\d; after\/before \d+\.\d{3}$/m);
    const verdict = /^p99 during \/ before: \d+\.\d\dx, target <= 2x: (met|not met)$/m.exec(r.stdout);
    expect(verdict, r.stderr).not.toBeNull();
    // The exit code says the verdict: 0 met, 1 not met.
    expect(r.code).toBe(verdict?.[1] === "met" ? 0 : 1);
  });

  test("--json: all keys expired by the node, the writer's keys untouched, the ratio is during p99 / before p99", async () => {
    const r = await run([...small, "--json"], { timeoutMs: 200_000 });
    const res = JSON.parse(r.stdout) as ExpiryJson;
    expect(res.bench).toBe("expiry");
    expect(res.keys).toBe(3000);
    expect(res.reads.presentBeforeDeadline).toBe(res.reads.sampled);
    expect(res.reads.missingAtDeadline).toBe(res.reads.sampled);
    // Every loaded key's deadline came within the run: the node executed all of them (the sweep or a lazy access).
    expect(res.sweep.expired).toBeGreaterThan(0);
    expect(res.goneSeconds).toBeGreaterThanOrEqual(0);
    expect(res.collectedSeconds).toBeGreaterThanOrEqual(res.goneSeconds);
    // Every sampled deadline is T or a little after (ttl_ms is turned into a deadline when the node reads the batch).
    expect(res.deadlineSpreadMs.min).toBeGreaterThanOrEqual(0);
    expect(res.load.calibrationKeys).toBeGreaterThan(0);
    expect(res.load.endToDeadlineSeconds).toBeGreaterThan(0);
    expect(res.windows.map((w) => w.name)).toEqual(["unloaded", "before", "during", "collection", "after"]);
    const [, before, during] = res.windows;
    expect(before?.calls).toBeGreaterThan(0);
    expect(during?.calls).toBeGreaterThan(0);
    expect(res.p99Ratio).toBeCloseTo((during?.p99Ms ?? 0) / (before?.p99Ms ?? 1), 1);
    expect(res.met).toBe(res.p99Ratio <= 2);
    expect(res.writer.errors).toBe(0);
    expect(res.rss.loadedBytes).toBeGreaterThan(0);
    expect(res.rss.ratio).toBeCloseTo(res.rss.afterBytes / res.rss.beforeBytes, 2);
    expect(r.code).toBe(res.met ? 0 : 1);
  });

  test("a key count out of range is a usage error before any node starts", async () => {
    const r = await run(["bench", "expiry", "--keys", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: --keys must be an integer in 1..10,000,000");
    expect(r.stdout).toBe("");
  });
});
