// `imdb bench partition` through the built binary: the table reports balance at 10, 30 and 100
// nodes, the data a join moves and the capacity of 5 nodes from the node's own placement code,
// --json agrees with it, and the exit code follows the verdict.
import { describe, expect, test } from "bun:test";
import { run } from "./harness.ts";

interface PartitionJson {
  bench: string; keys: number; partitions: number; replicationFactor: number; met: boolean;
  balance: { nodes: number; maxOverMean: number; minOverMean: number; met: boolean }[];
  movement: { fromNodes: number; movedShare: number; idealShare: number; leaveMovedShare: number; met: boolean };
  capacity: { nodes: number; ratio: number; met: boolean };
  forward: { writes: number; owner: { p50Ms: number; p99Ms: number }; forwarded: { p50Ms: number; p99Ms: number }; ratioP50: number; ratioP99: number } | null;
  real: {
    nodes: number; replicationFactor: number; keys: number; perNode: number[]; shares: number[]; idealShare: number; capacity: number;
    join: { id: string; seconds: number; perNode: number[]; capacity: number };
  } | null;
}

describe("bench partition", () => {
  test("the default placement meets balance, movement and capacity on 200k keys; the table says so", async () => {
    const r = await run(["bench", "partition", "--keys", "200000"], { timeoutMs: 60_000 });
    expect(r.stdout).toContain("placement of 200,000 keys, 16,384 partitions, replication factor 3");
    for (const n of [10, 30, 100]) expect(r.stdout).toMatch(new RegExp(`^${n}\\s+1\\.\\d{3}\\s+0\\.\\d{3}  target <= 1\\.1x: met$`, "m"));
    expect(r.stdout).toMatch(/^one node joins 10: 0\.09\d of the data moves \(ideal 0\.091\); target within 10% of ideal: met$/m);
    expect(r.stdout).toMatch(/^capacity of 5 nodes against one with the same memory: 1\.6\d\dx \(target >= 1\.6x: met\)$/m);
    expect(r.stdout).toMatch(/^targets: met$/m);
    expect(r.stdout).toMatch(/^forwarded-request overhead: not measured/m);
    expect(r.code).toBe(0);
  });

  test("--forward-writes measures owned and forwarded writes on two real nodes; --real-keys what 5 real nodes with RF 3 store", async () => {
    const r = await run(["bench", "partition", "--keys", "200000", "--forward-writes", "50", "--real-keys", "3000", "--json"], { timeoutMs: 110_000 });
    expect(r.code).toBe(0);
    const res = JSON.parse(r.stdout) as PartitionJson;
    const real = res.real!;
    expect(real.nodes).toBe(5);
    expect(real.perNode.reduce((a, b) => a + b, 0)).toBe(3 * 3000);
    for (const s of real.shares) expect(Math.abs(s - 0.6)).toBeLessThan(0.1);
    expect(real.capacity).toBe(Math.round((3000 / Math.max(...real.perNode)) * 1000) / 1000);
    // The last node left, node-6 joined the four: filled, and the former owners dropped what moved
    // (every key on exactly 3 of the 5 again, about 0.6 of them each).
    expect(real.join.id).toBe("node-6");
    expect(real.join.perNode.length).toBe(5);
    expect(real.join.perNode.reduce((a, b) => a + b, 0)).toBe(3 * 3000);
    for (const k of real.join.perNode) expect(Math.abs(k / 3000 - 0.6)).toBeLessThan(0.1);
    expect(res.forward).not.toBeNull();
    const f = res.forward!;
    expect(f.writes).toBe(50);
    for (const s of [f.owner, f.forwarded]) {
      expect(s.p50Ms).toBeGreaterThan(0);
      expect(s.p99Ms).toBeGreaterThanOrEqual(s.p50Ms);
    }
    expect(f.ratioP50).toBe(Math.round((f.forwarded.p50Ms / f.owner.p50Ms) * 100) / 100);
  });

  test("--json with 1024 partitions: 100 nodes cannot be balanced within 1.1x, so the verdict and the exit code say not met", async () => {
    const r = await run(["bench", "partition", "--keys", "100000", "--partitions", "1024", "--json"], { timeoutMs: 60_000 });
    const res = JSON.parse(r.stdout) as PartitionJson;
    expect(res.bench).toBe("partition");
    expect(res.partitions).toBe(1024);
    expect(res.balance.map((b) => b.nodes)).toEqual([10, 30, 100]);
    for (const b of res.balance) expect(b.met).toBe(b.maxOverMean <= 1.1);
    expect(res.balance[2]!.met).toBe(false);
    expect(res.met).toBe(false);
    expect(r.code).toBe(1);
  });

  test("an out-of-range replication factor is a usage error", async () => {
    const r = await run(["bench", "partition", "--replication-factor", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--replication-factor must be an integer in 1..16");
  });
});
