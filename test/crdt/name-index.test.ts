// The search index over sorted member names (src/crdt/name-index.ts) answers exactly what a
// binary search over the strings answers, through every change the sets and hashes make.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { NameIndex, nameIndexMin } from "../../src/crdt/name-index.ts";
import { internActor, memberKey, OrMap, OrSet } from "../../src/crdt/index.ts";
import { checkProperty } from "./prop.ts";

/** Index of key in sorted names, or ~insertion point: the search the index stands in for. */
function plainFind(names: readonly string[], key: string, from = 0): number {
  let lo = from;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((names[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo < names.length && names[lo] === key ? lo : ~lo;
}

/**
 * Names that collide where the index is weakest: a long shared prefix, then few distinct
 * chars (equal digests, names that are prefixes of others, names shorter than the digest,
 * chars 0 and 255) and now and then one that leaves the prefix.
 */
const nameArb = fc.oneof(
  { weight: 8, arbitrary: fc.array(fc.constantFrom(0, 1, 0x30, 0x31, 0x7f, 0xff), { maxLength: 9 }).map((tail) => memberKey(new Uint8Array([...new TextEncoder().encode("element:00"), ...tail]))) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 12 }).map((b) => memberKey(b)) },
);

type IndexOp = { kind: "insert"; name: string } | { kind: "remove"; at: number } | { kind: "find"; name: string; from: number };
const opArb: fc.Arbitrary<IndexOp> = fc.oneof(
  { weight: 4, arbitrary: nameArb.map((name) => ({ kind: "insert" as const, name })) },
  { weight: 2, arbitrary: fc.nat().map((at) => ({ kind: "remove" as const, at })) },
  { weight: 4, arbitrary: fc.tuple(nameArb, fc.nat()).map(([name, from]) => ({ kind: "find" as const, name, from })) },
);

describe("NameIndex", () => {
  test("find answers as a binary search over the strings, through inserts and removes (rebuilt when an insert leaves the shared prefix)", () => {
    checkProperty("NameIndex find", fc.property(fc.uniqueArray(nameArb, { maxLength: 40 }), fc.array(opArb, { maxLength: 80 }), (start, ops) => {
      const names = [...start].sort();
      let ix = NameIndex.build(names);
      for (const op of ops) {
        if (op.kind === "insert") {
          const at = plainFind(names, op.name);
          if (at >= 0) continue;
          names.splice(~at, 0, op.name);
          if (!ix.inserted(~at, op.name)) ix = NameIndex.build(names);
        } else if (op.kind === "remove") {
          if (names.length === 0) continue;
          const at = op.at % names.length;
          names.splice(at, 1);
          ix.removed(at);
        } else {
          // A caller's `from` is at or before the key's place.
          const place = plainFind(names, op.name);
          const from = Math.min(op.from % (names.length + 1), place >= 0 ? place : ~place);
          expect(ix.find(names, op.name, from)).toBe(place);
        }
        expect(ix.size).toBe(names.length);
        for (const n of names) expect(ix.find(names, n, 0)).toBe(plainFind(names, n));
      }
    }), 0.3);
  });

  test("an index the names changed behind is refused, not used", () => {
    const names = ["a1", "a2", "a3"];
    const ix = NameIndex.build(names);
    names.push("a4");
    expect(() => ix.find(names, "a2", 0)).toThrow("NameIndex");
  });
});

describe("sets and hashes past nameIndexMin keep answering by the strings", () => {
  const enc = new TextEncoder();
  const a = internActor("node-a");
  const b = internActor("node-b");

  test("OrSet: adds, removes and merges against a model set", () => {
    checkProperty("OrSet with an index", fc.property(fc.array(fc.tuple(fc.constantFrom("add", "remove", "merge"), fc.uniqueArray(nameArb, { minLength: 1, maxLength: 24 })), { maxLength: 30 }), (steps) => {
      const s = new OrSet();
      const model = new Set<string>();
      const other = new OrSet();
      for (const [what, ns] of steps) {
        const bytes = ns.map((n) => Uint8Array.from(n, (c) => c.charCodeAt(0)));
        if (what === "add") {
          s.add(a, bytes);
          for (const n of ns) model.add(n);
        } else if (what === "remove") {
          s.remove(bytes);
          for (const n of ns) model.delete(n);
        } else {
          // A replica's concurrent adds come in through a merge (the bulk path past a few).
          // Members merged before were observed here then: only this step's adds are new.
          other.add(b, bytes);
          s.merge(other);
          for (const n of ns) model.add(n);
        }
        expect(s.memberKeys()).toEqual([...model].sort());
        for (const n of [...model, ...ns]) expect(s.contains(Uint8Array.from(n, (c) => c.charCodeAt(0)))).toBe(model.has(n));
      }
    }), 0.1);
  });

  test("OrMap: sets, deletes and merges against a model map", () => {
    let ms = 1_700_000_000_000;
    checkProperty("OrMap with an index", fc.property(fc.array(fc.tuple(fc.constantFrom("set", "del", "merge"), fc.uniqueArray(nameArb, { minLength: 1, maxLength: 24 })), { maxLength: 30 }), (steps) => {
      const m = new OrMap();
      const model = new Map<string, string>();
      const other = new OrMap();
      for (const [what, ns] of steps) {
        const field = (n: string): Uint8Array => Uint8Array.from(n, (c) => c.charCodeAt(0));
        ms++;
        if (what === "set") {
          m.set(a, { ms, logical: 0 }, ns.map((n) => ({ field: field(n), value: enc.encode(`v${ms}`) })));
          for (const n of ns) model.set(n, `v${ms}`);
        } else if (what === "del") {
          m.del(ns.map(field));
          for (const n of ns) model.delete(n);
        } else {
          // Written on the other replica later (a higher HLC): its values win the merge.
          other.set(b, { ms: ms + 1_000_000, logical: 0 }, ns.map((n) => ({ field: field(n), value: enc.encode(`w${ms}`) })));
          m.merge(other);
          for (const n of ns) model.set(n, `w${ms}`);
        }
        expect(m.len()).toBe(model.size);
        for (const n of [...model.keys(), ...ns]) {
          const got = m.get(field(n));
          expect(got === null ? null : new TextDecoder().decode(got)).toBe(model.get(n) ?? null);
        }
      }
    }), 0.1);
  });

  test("the sizes these tests reach use the index", () => {
    expect(nameIndexMin).toBeLessThanOrEqual(24);
  });
});
