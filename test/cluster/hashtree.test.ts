// Hash tree: equal key sets give equal hashes whatever the order, changes touch one path, removal restores.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { HashTree, treeFanout } from "../../src/cluster/hashtree.ts";
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
        const [alo, ahi] = a.hash(level, idx);
        const [blo, bhi] = b.hash(level, idx);
        expect(alo === blo && ahi === bhi).toBe(!onPath);
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

  test("depth outside 1..6 is refused", () => {
    expect(() => new HashTree(0)).toThrow(RangeError);
    expect(() => new HashTree(7)).toThrow(RangeError);
  });
});
