// Hash tree: equal key sets give equal hashes whatever the order, changes touch one path, removal restores.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { HashTree, HashTreeKeyError, treeFanout, treeKeyUnitsMax } from "../../src/cluster/hashtree.ts";
import { propertyRuns, seed } from "./helpers.ts";

const entries = fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })), {
  selector: (e) => e[0],
  maxLength: 60,
});

describe("HashTree", () => {
  test("the same entries in any order give the same root (seed printed on failure)", () => {
    fc.assert(
      fc.property(entries, fc.nat(), (es, rotate) => {
        const a = new HashTree(2);
        const b = new HashTree(2);
        for (const [k, d] of es) a.set(k, d);
        const r = es.length === 0 ? 0 : rotate % es.length;
        const reordered = [...es.slice(r), ...es.slice(0, r)].reverse();
        for (const [k, d] of reordered) b.set(k, d);
        expect(b.hash(0, 0)).toEqual(a.hash(0, 0));
        expect(b.keyCount).toBe(es.length);
      }),
      { seed, numRuns: Math.min(propertyRuns, 300) },
    );
  });

  test("removing every key returns to the empty tree; updating a digest changes the root", () => {
    fc.assert(
      fc.property(entries, (es) => {
        const t = new HashTree(3);
        const empty = t.hash(0, 0);
        for (const [k, d] of es) t.set(k, d);
        if (es.length > 0) {
          const [k, d] = es[0] as [string, bigint];
          const before = t.hash(0, 0);
          t.set(k, d ^ 1n);
          expect(t.hash(0, 0)).not.toEqual(before);
          t.set(k, d);
          expect(t.hash(0, 0)).toEqual(before);
        }
        for (const [k] of es) t.set(k, undefined);
        expect(t.hash(0, 0)).toEqual(empty);
        expect(t.keyCount).toBe(0);
      }),
      { seed, numRuns: Math.min(propertyRuns, 300) },
    );
  });

  test("a change touches exactly the nodes on the key's path", () => {
    const a = new HashTree(3);
    const b = new HashTree(3);
    for (let i = 0; i < 2000; i++) {
      a.set(`k${i}`, BigInt(i));
      b.set(`k${i}`, BigInt(i));
    }
    b.set("k7", 12345n);
    const leaf = a.leafOf("k7");
    for (let level = 0; level <= 3; level++) {
      for (let idx = 0; idx < treeFanout ** level; idx++) {
        const onPath = idx === leaf >>> (4 * (3 - level));
        expect(a.hash(level, idx)).toEqual(onPath ? expect.anything() : b.hash(level, idx));
        if (onPath) expect(a.hash(level, idx)).not.toEqual(b.hash(level, idx));
      }
    }
    expect(a.leafEntries(leaf).map((e) => e.key)).toContain("k7");
    expect(b.digestOf("k7")).toBe(12345n);
  });

  test("leaves are spread: 100k keys over 4096 leaves, none empty, none over 3x the mean", () => {
    const t = new HashTree(3);
    for (let i = 0; i < 100_000; i++) t.set(`user:${i}`, 1n);
    let min = Infinity;
    let max = 0;
    for (let l = 0; l < t.leafCount; l++) {
      const n = t.leafEntries(l).length;
      min = Math.min(min, n);
      max = Math.max(max, n);
    }
    expect(min).toBeGreaterThan(0);
    expect(max).toBeLessThan((3 * 100_000) / t.leafCount);
  });

  test("random sets and removals match a Map model: digests, leaves, key count, and a tree rebuilt from scratch (seed printed on failure)", () => {
    // A small key universe so keys are removed, re-added and updated often (free slots reused,
    // table shifts), with every arena encoding: empty, one byte per unit, two, long (2-byte length).
    const keyOf = (k: number): string =>
      k === 0 ? "" : [`k${k}`, `ключ${k}`, "x".repeat(60 + k), `é${k}\u00ff`, `😀${k}`][k % 5] as string;
    const op = fc.tuple(fc.nat(60), fc.option(fc.bigInt({ min: -(2n ** 64n), max: 2n ** 65n }), { freq: 3 }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400, size: "max" }), fc.integer({ min: 1, max: 2 }), (ops, depth) => {
        const t = new HashTree(depth);
        const model = new Map<string, bigint>();
        for (const [k, d] of ops) {
          const key = keyOf(k);
          t.set(key, d ?? undefined);
          if (d === null) model.delete(key);
          else model.set(key, BigInt.asUintN(128, d));
        }
        expect(t.keyCount).toBe(model.size);
        for (let k = 0; k <= 60; k++) expect(t.digestOf(keyOf(k))).toBe(model.get(keyOf(k)));
        const fresh = new HashTree(depth);
        for (const [k, d] of model) fresh.set(k, d);
        expect(t.hash(0, 0)).toEqual(fresh.hash(0, 0));
        const listed = new Map<string, bigint>();
        for (let l = 0; l < t.leafCount; l++) {
          for (const e of t.leafEntries(l)) {
            expect(t.leafOf(e.key)).toBe(l);
            expect(listed.has(e.key)).toBe(false);
            listed.set(e.key, e.digest);
          }
        }
        expect(listed).toEqual(model);
      }),
      { seed, numRuns: Math.min(propertyRuns, 300) },
    );
  });

  test("hashes are pinned: nodes on either side of a rewrite agree, whatever their table seeds", () => {
    // Re-pinned when hashes became 128-bit (wire kinds ae-tree/ae-leaves 16/17): a change to
    // these numbers is a change of the anti-entropy wire format.
    for (const seed of [[0, 0], [0xdeadbeef, 0x12345678]] as const) {
      const t = new HashTree(3, seed);
      for (let i = 0; i < 1000; i++) t.set(`key:${i}`, BigInt.asUintN(64, BigInt(i + 1) * 0x9e3779b97f4a7c15n));
      for (let i = 0; i < 1000; i += 7) t.set(`key:${i}`, undefined);
      t.set("ключ", 2n ** 128n - 1n);
      expect(t.keyCount).toBe(858);
      expect(t.hash(0, 0)).toEqual([3744579575, 844557644, 1222194816, 2791743215]);
      expect(t.hash(1, 5)).toEqual([3336288622, 3418682501, 2694618387, 3410519359]);
      expect(t.hash(3, t.leafOf("key:1"))).toEqual([1846042411, 3741438382, 1432991218, 418879106]);
    }
  });

  test("128-bit: digests that differ only in their high 64 bits differ in the tree; keys whose digests differ alike do not cancel", () => {
    const a = new HashTree(1);
    const b = new HashTree(1);
    a.set("k", 5n);
    b.set("k", 5n | (1n << 100n));
    expect(a.hash(0, 0)).not.toEqual(b.hash(0, 0));
    expect(b.digestOf("k")).toBe(5n | (1n << 100n));
    // Two keys with one digest, in one leaf or not: the root still differs from an empty tree's.
    const t = new HashTree(1);
    const empty = t.hash(0, 0);
    for (let i = 0; i < 50; i++) t.set(`same-${i}`, 42n);
    for (let i = 0; i < 50; i += 2) t.set(`same-${i}`, undefined);
    expect(t.hash(0, 0)).not.toEqual(empty);
    for (let l = 0; l < t.leafCount; l++) if (t.leafEntries(l).length > 0) expect(t.hash(1, l)).not.toEqual([0, 0, 0, 0]);
    // Two replicas where two keys hold one state here and another there (digests that do not
    // bind the key, as the simulator's store has): the difference must not cancel.
    const x = new HashTree(1);
    const y = new HashTree(1);
    for (const k of ["p", "q"]) {
      x.set(k, 7n);
      y.set(k, 9n);
    }
    expect(x.hash(0, 0)).not.toEqual(y.hash(0, 0));
  });

  test("past several pages and table doublings: 50k keys, a third removed and re-added, the rest updated", () => {
    const n = 50_000;
    const t = new HashTree(2); // ~200 keys per leaf: long leaf lists
    const empty = t.hash(0, 0);
    for (let i = 0; i < n; i++) t.set(`user:${i}`, BigInt(i));
    const full = t.hash(0, 0);
    for (let i = 0; i < n; i += 3) t.set(`user:${i}`, undefined);
    expect(t.keyCount).toBe(n - Math.ceil(n / 3));
    for (let i = 0; i < n; i += 3) expect(t.digestOf(`user:${i}`)).toBeUndefined();
    for (let i = 0; i < n; i += 3) t.set(`user:${i}`, BigInt(i));
    expect(t.hash(0, 0)).toEqual(full);
    for (let i = 0; i < n; i++) t.set(`user:${i}`, BigInt(i) + 2n ** 63n);
    for (let i = 0; i < n; i += 997) expect(t.digestOf(`user:${i}`)).toBe(BigInt(i) + 2n ** 63n);
    let listed = 0;
    for (let l = 0; l < t.leafCount; l++) listed += t.leafEntries(l).length;
    expect(listed).toBe(n);
    for (let i = n - 1; i >= 0; i--) t.set(`user:${i}`, undefined);
    expect(t.keyCount).toBe(0);
    expect(t.hash(0, 0)).toEqual(empty);
    expect(t.leafEntries(0)).toEqual([]);
  });

  test("removing most keys compacts the key arena; the rest stay listed and found", () => {
    const t = new HashTree(2);
    for (let i = 0; i < 50_000; i++) t.set(`user:${i}`, BigInt(i));
    const before = t.bytesHeld;
    for (let i = 0; i < 50_000; i++) if (i % 5 !== 0) t.set(`user:${i}`, undefined);
    expect(before - t.bytesHeld).toBeGreaterThan(300_000); // ~40k keys of ~11 bytes reclaimed
    const listed = new Map<string, bigint>();
    for (let l = 0; l < t.leafCount; l++) for (const e of t.leafEntries(l)) listed.set(e.key, e.digest);
    expect(listed.size).toBe(10_000);
    for (let i = 0; i < 50_000; i += 5) {
      expect(listed.get(`user:${i}`)).toBe(BigInt(i));
      expect(t.digestOf(`user:${i}`)).toBe(BigInt(i));
    }
    for (let i = 1; i < 50_000; i += 5) t.set(`user:${i}`, BigInt(i));
    expect(t.keyCount).toBe(20_000);
    expect(t.digestOf("user:49996")).toBe(49996n);
  });

  test("a key is held in at most ~60 bytes: 200k keys, no string or bigint kept per key", () => {
    const n = 200_000;
    const t = new HashTree(4);
    for (let i = 0; i < n; i++) t.set(`counter:${i}`, BigInt(i) * 0x9e3779b97f4a7c15n);
    expect(t.bytesHeld / n).toBeLessThan(60);
  });

  test("a key longer than treeKeyUnitsMax is refused with a typed error and changes nothing", () => {
    const t = new HashTree(2);
    t.set("a", 1n);
    const root = t.hash(0, 0);
    const long = "y".repeat(treeKeyUnitsMax + 1);
    expect(() => t.set(long, 5n)).toThrow(HashTreeKeyError);
    expect(t.keyCount).toBe(1);
    expect(t.hash(0, 0)).toEqual(root);
    expect(t.digestOf(long)).toBeUndefined();
    const longest = "ж".repeat(treeKeyUnitsMax);
    t.set(longest, 7n);
    expect(t.digestOf(longest)).toBe(7n);
    expect(t.leafEntries(t.leafOf(longest)).map((e) => e.key)).toContain(longest);
  });

  test("depth outside 1..6 is refused", () => {
    expect(() => new HashTree(0)).toThrow(RangeError);
    expect(() => new HashTree(7)).toThrow(RangeError);
  });
});

describe("hash tree shrink", () => {
  test("after most keys are removed the tree rebuilds at the live size, with the same hashes as a tree of the survivors", () => {
    const t = new HashTree(4, [7, 9]);
    const n = 200_000;
    for (let i = 0; i < n; i++) t.set(`key:${i}`, BigInt(i) * 0x9e3779b97f4a7c15n + 1n);
    const peak = t.bytesHeld;
    // Remove 95%: the tree crosses the quarter mark and rebuilds.
    for (let i = 0; i < n; i++) if (i % 20 !== 0) t.set(`key:${i}`, undefined);
    expect(t.keyCount).toBe(n / 20);
    const fresh = new HashTree(4, [7, 9]);
    for (let i = 0; i < n; i += 20) fresh.set(`key:${i}`, BigInt(i) * 0x9e3779b97f4a7c15n + 1n);
    // Rebuilt when a quarter of the slots were live (and not again below shrinkSlotsMin slots).
    expect(t.bytesHeld).toBeLessThan(peak / 3);
    expect(t.hash(0, 0)).toEqual(fresh.hash(0, 0));
    for (let leaf = 0; leaf < t.leafCount; leaf += 997) expect(t.hash(4, leaf)).toEqual(fresh.hash(4, leaf));
    for (let i = 0; i < n; i += 20) expect(t.digestOf(`key:${i}`)).toBe(BigInt(i) * 0x9e3779b97f4a7c15n + 1n);
    expect(t.digestOf("key:1")).toBeUndefined();
    // It keeps working after the rebuild.
    t.set("key:1", 5n);
    t.set("key:0", undefined);
    expect(t.digestOf("key:1")).toBe(5n);
    expect(t.keyCount).toBe(n / 20);
  });
});
