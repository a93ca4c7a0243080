// `imdb bench collect` through the built binary on a small key count: it starts a real 3-node
// cluster, writes and deletes every key, sees every record collected on every node, and reports
// each node's memory against the target, in the table and in --json.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { run } from "./harness.ts";

setDefaultTimeout(240_000);

const small = ["bench", "collect", "--keys", "2000", "--nodes", "3", "--warmup-keys", "0", "--settle-seconds", "5", "--seconds-max", "180"];

interface CollectJson {
  bench: string; nodes: number; keys: number; durability: string; met: boolean; collectionSeconds: number;
  rows: { id: string; beforeBytes: number; loadedBytes: number; afterBytes: number; ratio: number; met: boolean;
    tombstonesAfter: number; keysDeletedAfter: number; keysAfter: number; tombstonesCollected: number }[];
}

describe("bench collect", () => {
  test("3 nodes, 2000 keys: the table has a row per node with tombstones back to 0, the collection time and the verdict", async () => {
    const r = await run(small, { timeoutMs: 200_000 });
    expect(r.stdout).toContain("3 nodes (mutual TLS, durability sync), 2,000 keys written, then all deleted (no warm-up)");
    expect(r.stdout).toMatch(/^node\s+before MiB\s+loaded MiB\s+after MiB\s+after\/before\s+verdict$/m);
    for (const id of ["node-1", "node-2", "node-3"]) {
      expect(r.stdout).toMatch(new RegExp(`^${id}\\s+\\d+\\.\\d\\s+\\d+\\.\\d\\s+\\d+\\.\\d\\s+\\d\\.\\d{3}  target <= 1\\.15x: (met|not met) \\(tombstones 0, deleted keys 0\\)$`, "m"));
    }
    expect(r.stdout).toMatch(/^collection: every record gone on every node \d+(\.\d+)? s after the last delete's acknowledgement$/m);
    const verdict = /^target after <= 1\.15 x before: (met|not met)$/m.exec(r.stdout);
    expect(verdict, r.stderr).not.toBeNull();
    // The exit code says the verdict: 0 met, 1 not met.
    expect(r.code).toBe(verdict?.[1] === "met" ? 0 : 1);
  });

  test("--json: every node holds no key and no record, and collected at least every deleted key", async () => {
    const r = await run([...small, "--json"], { timeoutMs: 200_000 });
    const res = JSON.parse(r.stdout) as CollectJson;
    expect(res.bench).toBe("collect");
    expect(res.keys).toBe(2000);
    expect(res.rows.map((x) => x.id)).toEqual(["node-1", "node-2", "node-3"]);
    for (const row of res.rows) {
      expect(row.tombstonesAfter).toBe(0);
      expect(row.keysDeletedAfter).toBe(0);
      expect(row.keysAfter).toBe(0);
      expect(row.tombstonesCollected).toBeGreaterThanOrEqual(2000);
      expect(row.loadedBytes).toBeGreaterThan(0);
      expect(row.ratio).toBeCloseTo(row.afterBytes / row.beforeBytes, 2);
      expect(row.met).toBe(row.ratio <= 1.15);
    }
    expect(res.met).toBe(res.rows.every((x) => x.met));
    expect(res.collectionSeconds).toBeGreaterThanOrEqual(0);
    expect(r.code).toBe(res.met ? 0 : 1);
  });

  test("a key count out of range is a usage error before any node starts", async () => {
    const r = await run(["bench", "collect", "--keys", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: --keys must be an integer in 1..10,000,000");
    expect(r.stdout).toBe("");
  });
});
