// Placement: the properties partitioned replication will stand on. Every node must compute the same
// owners from the same members, whatever order it learnt them in; every partition has its
// replication factor of distinct owners; no member holds past the load bound; a join or a leave
// moves little more than its fair share; and the partition of a key never changes across versions.

import { describe, expect, test } from "bun:test";
import { asNodeId, type NodeId } from "../../src/cluster/types.ts";
import { Placement, partitionOf, partitionsDefault, placementLoadSlack, partitionsMax, replicationFactorMax } from "../../src/cluster/placement.ts";
import { Rng } from "../../src/sim/rng.ts";

const names = (n: number, prefix = "node-"): NodeId[] => Array.from({ length: n }, (_, i) => asNodeId(`${prefix}${i + 1}`));

/** Random member ids as operators name hosts: varying lengths, shared prefixes. */
function randomMembers(rng: Rng, n: number): NodeId[] {
  const ids = new Set<string>();
  while (ids.size < n) ids.add(`${["db", "imdb-", "node", "eu-west-1a-"][rng.int(4)]}${rng.int(100_000)}`);
  return [...ids].map(asNodeId);
}

function shuffled<T>(rng: Rng, xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) { const j = rng.int(i + 1); [out[i], out[j]] = [out[j]!, out[i]!]; }
  return out;
}

/** Share of the new placement's partition replicas that the old one did not have on that member. */
function movedShare(before: Placement, after: Placement): number {
  let moved = 0;
  let total = 0;
  for (let p = 0; p < after.partitions; p++) {
    const old = new Set(before.owners(p));
    for (const m of after.owners(p)) { total++; if (!old.has(m)) moved++; }
  }
  return moved / total;
}

function withSeed(seed: number, body: () => void): void {
  try { body(); } catch (e) { throw new Error(`seed ${seed}: ${(e as Error).message}`, { cause: e }); }
}

describe("partitionOf", () => {
  test("is pinned: the same keys land in the same partitions in every version (changing it moves every key)", () => {
    expect(["", "user:1", "user:2", "counter", "ключ", "a".repeat(1024)].map((k) => partitionOf(k, partitionsDefault))).toEqual(PINNED);
  });

  test("spreads keys evenly: 1M keys over the default partitions within 5 sigma of the mean everywhere", () => {
    const counts = new Int32Array(partitionsDefault);
    for (let i = 0; i < 1_000_000; i++) counts[partitionOf(`user:${i}`, partitionsDefault)]!++;
    const mean = 1_000_000 / partitionsDefault;
    const bound = 5 * Math.sqrt(mean);
    for (const c of counts) expect(Math.abs(c - mean)).toBeLessThan(bound);
  });

  test("a key longer than any client may send is hashed whole, not by a prefix", () => {
    const long = "k".repeat(5000);
    expect(partitionOf(long + "a", partitionsDefault)).not.toBe(partitionOf(long + "b", partitionsDefault));
  });

  test("stays in range for any partition count", () => {
    for (const parts of [1, 2, 3, 1000, 1024, partitionsMax]) {
      for (let i = 0; i < 1000; i++) {
        const p = partitionOf(`k${i}`, parts);
        expect(Number.isInteger(p) && p >= 0 && p < parts).toBe(true);
      }
    }
  });
});

// The values partitionOf gave when placement was written; see the first test.
const PINNED = [8270, 9376, 3709, 7523, 1694, 7333];

describe("Placement", () => {
  test("is pinned: the same members own the same partitions in every version (changing the scoring moves every key)", () => {
    const pl = new Placement(["a", "b", "c", "d", "e"].map(asNodeId), { partitions: 16, replicationFactor: 2 });
    expect(Array.from({ length: 8 }, (_, p) => pl.owners(p).join(""))).toEqual(["ce", "ca", "ca", "ea", "db", "da", "eb", "ce"]);
  });

  test("Placement.of hands out one shared placement per member list (in any order), equal to a new one; ownedMask is owns() for every partition", () => {
    const rng = new Rng(7);
    const members = randomMembers(rng, 12);
    const opts = { partitions: 512, replicationFactor: 3 };
    const a = Placement.of(members, opts);
    expect(Placement.of(shuffled(rng, members), opts)).toBe(a);
    expect(Placement.of(members, { partitions: 512, replicationFactor: 2 })).not.toBe(a);
    const fresh = new Placement(members, opts);
    for (let p = 0; p < 512; p++) expect(a.owners(p)).toEqual(fresh.owners(p));
    for (const m of [...members, asNodeId("not-a-member")]) {
      const mask = a.ownedMask(m);
      expect(mask.length).toBe(512);
      for (let p = 0; p < 512; p++) expect(mask[p] === 1).toBe(a.owns(m, p));
    }
  });

  test("every node computes the same owners, whatever order it learnt the members in", () => {
    for (let seed = 1; seed <= 20; seed++) withSeed(seed, () => {
      const rng = new Rng(seed);
      const members = randomMembers(rng, 2 + rng.int(40));
      const a = new Placement(members, { partitions: 256, replicationFactor: 3 });
      const b = new Placement(shuffled(rng, members), { partitions: 256, replicationFactor: 3 });
      for (let p = 0; p < 256; p++) expect(b.owners(p)).toEqual(a.owners(p));
    });
  });

  test("every partition has min(RF, members) distinct owners, all of them members, and no member holds past the bound", () => {
    for (let seed = 1; seed <= 40; seed++) withSeed(seed, () => {
      const rng = new Rng(seed);
      const n = 1 + rng.int(60);
      const rf = 1 + rng.int(5);
      const partitions = [1, 7, 64, 1024][rng.int(4)]!;
      const members = randomMembers(rng, n);
      const pl = new Placement(members, { partitions, replicationFactor: rf });
      const replicas = Math.min(rf, n);
      expect(pl.replicas).toBe(replicas);
      const known = new Set(members);
      for (let p = 0; p < partitions; p++) {
        const owners = pl.owners(p);
        expect(owners.length).toBe(replicas);
        expect(new Set(owners).size).toBe(replicas);
        for (const o of owners) { expect(known.has(o)).toBe(true); expect(pl.owns(o, p)).toBe(true); }
      }
      const cap = Math.ceil((partitions * replicas * placementLoadSlack) / n);
      const loads = pl.loads();
      expect(loads.reduce((x, y) => x + y, 0)).toBe(partitions * replicas);
      expect(Math.max(...loads)).toBeLessThanOrEqual(cap);
    });
  });

  test("a replication factor at or above the member count puts every partition on every member", () => {
    const pl = new Placement(names(3), { partitions: 64, replicationFactor: 5 });
    for (let p = 0; p < 64; p++) expect([...pl.owners(p)].sort()).toEqual(names(3));
    expect(pl.loads()).toEqual([64, 64, 64]);
  });

  test("balance with the default partitions and RF 3: fullest member within 1.1x the mean at 10, 30 and 100 members", () => {
    for (const n of [10, 30, 100]) {
      const loads = new Placement(names(n), { partitions: partitionsDefault, replicationFactor: 3 }).loads();
      const mean = (partitionsDefault * 3) / n;
      expect(Math.max(...loads) / mean).toBeLessThanOrEqual(1.1);
    }
  });

  test("a member joining or leaving moves at most 1.2x its fair share of partition replicas (20 seeded memberships of 5-40)", () => {
    for (let seed = 1; seed <= 20; seed++) withSeed(seed, () => {
      const rng = new Rng(seed);
      const n = 5 + rng.int(36);
      const members = randomMembers(rng, n + 1);
      const opts = { partitions: partitionsDefault, replicationFactor: 3 };
      const small = new Placement(members.slice(0, n), opts);
      const big = new Placement(members, opts);
      // Joining: the newcomer's fair share of the replicas is 1 / (n + 1); leaving: 1 / (n + 1) of the old ones.
      expect(movedShare(small, big)).toBeLessThanOrEqual(1.2 / (n + 1));
      expect(movedShare(big, small) * n / (n + 1)).toBeLessThanOrEqual(1.2 / (n + 1));
    });
  });

  test("at 100 members too, a join or a leave moves at most 1.2x its fair share (why the default is 16384 partitions, not 1024)", () => {
    const opts = { partitions: partitionsDefault, replicationFactor: 3 };
    const before = new Placement(names(100), opts);
    const after = new Placement(names(101), opts);
    expect(movedShare(before, after)).toBeLessThanOrEqual(1.2 / 101);
    expect(movedShare(after, before) * 100 / 101).toBeLessThanOrEqual(1.2 / 101);
    // The same with 1024 partitions moves 2.5x: the bound cannot balance 30 replicas a member without reshuffling.
    const coarse = { partitions: 1024, replicationFactor: 3 };
    expect(movedShare(new Placement(names(100), coarse), new Placement(names(101), coarse))).toBeGreaterThan(2 / 101);
  });

  test("a member joining takes partitions from others, never swaps partitions among the members that stay, for most partitions", () => {
    // Every partition the newcomer did not take keeps its owners in at least 95% of cases: a join
    // reshuffles little beyond what it must.
    const opts = { partitions: partitionsDefault, replicationFactor: 3 };
    const before = new Placement(names(10), opts);
    const after = new Placement(names(11), opts);
    let untouched = 0;
    let notTaken = 0;
    for (let p = 0; p < partitionsDefault; p++) {
      if (after.owns(asNodeId("node-11"), p)) continue;
      notTaken++;
      if ([...before.owners(p)].sort().join() === [...after.owners(p)].sort().join()) untouched++;
    }
    expect(untouched / notTaken).toBeGreaterThan(0.95);
  });

  test("refuses bad options and member lists with a clear error", () => {
    expect(() => new Placement([], { partitions: 16, replicationFactor: 1 })).toThrow("no members");
    expect(() => new Placement(names(2).concat(names(1)), { partitions: 16, replicationFactor: 1 })).toThrow("listed twice");
    expect(() => new Placement(names(2), { partitions: 0, replicationFactor: 1 })).toThrow("partitions must be");
    expect(() => new Placement(names(2), { partitions: partitionsMax + 1, replicationFactor: 1 })).toThrow("partitions must be");
    expect(() => new Placement(names(2), { partitions: 16, replicationFactor: 0 })).toThrow("replicationFactor must be");
    expect(() => new Placement(names(2), { partitions: 16, replicationFactor: replicationFactorMax + 1 })).toThrow("replicationFactor must be");
    expect(() => new Placement(names(2), { partitions: 16, replicationFactor: 1.5 })).toThrow("replicationFactor must be");
  });
});
