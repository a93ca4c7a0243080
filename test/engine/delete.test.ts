// Delete (issue 13, item 2) through the engine: it removes exactly what this replica had
// observed, a concurrent write it had not observed survives (add-wins), a deleted key takes a
// write of any type, and nothing deleted comes back through redelivered or reordered deltas,
// anti-entropy from a replica that missed the delete, WAL replay or a snapshot load.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Engine, type EngineOp, type KeyListing, type KeyValue, type ListingRefusal } from "../../src/engine/index.ts";
import { checkProperty } from "../crdt/prop.ts";

const T = 1_700_000_000_000;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function write(e: Engine, op: EngineOp, nowMs = T): Uint8Array {
  const r = e.apply(op, nowMs);
  if (!r.ok) throw new Error(`op refused: ${r.error.message}`);
  if (r.delta === null) throw new Error("op changed nothing");
  return r.delta;
}

function del(e: Engine, key: string): Uint8Array | null {
  const r = e.delete(key);
  if (!r.ok) throw new Error(`delete refused: ${r.error.message}`);
  return r.delta;
}

function merge(e: Engine, d: Uint8Array | null, nowMs = T): void {
  if (d === null) return;
  const r = e.mergeDelta(d, nowMs);
  if (!r.ok) throw new Error(`merge refused: ${r.error.message}`);
}

/** Full state exchange of key both ways (anti-entropy). */
function exchange(a: Engine, b: Engine, key: string): void {
  const sa = a.encodeState(key);
  const sb = b.encodeState(key);
  if (sb !== undefined) expect(a.mergeState(key, sb, T).ok).toBe(true);
  if (sa !== undefined) expect(b.mergeState(key, sa, T).ok).toBe(true);
}

/** What a reader sees, as text. */
function shown(v: KeyValue | undefined): string {
  if (v === undefined) return "(absent)";
  switch (v.type) {
    case "gcounter":
    case "pncounter":
      return `${v.type} ${v.value}`;
    case "lww":
      return `lww ${text(v.value)}`;
    case "mv":
      return `mv ${v.values.map(text).sort().join("|")}`;
    case "set":
      return `set ${v.members.map(text).sort().join("|")}`;
    case "hash":
      return `hash ${v.fields.map((f) => `${text(f.field)}=${text(f.value)}`).join("|")}`;
    case "deadline":
      throw new Error("a deadline is never a key's value");
  }
}

/** One write per kind, used to run the same timelines over every kind. */
const writers: { name: string; op(key: string, tag: string): EngineOp; value(tags: string[]): string }[] = [
  { name: "pncounter", op: (key) => ({ kind: "incr", key, amount: 1n }), value: (tags) => `pncounter ${tags.length}` },
  { name: "gcounter", op: (key) => ({ kind: "incr", key, amount: 1n, counter: "gcounter" }), value: (tags) => `gcounter ${tags.length}` },
  { name: "lww", op: (key, tag) => ({ kind: "set", key, value: bytes(tag) }), value: (tags) => `lww ${tags[tags.length - 1]}` },
  { name: "mv", op: (key, tag) => ({ kind: "setMv", key, value: bytes(tag), context: null }), value: (tags) => `mv ${[...tags].sort().join("|")}` },
  { name: "set", op: (key, tag) => ({ kind: "sadd", key, members: [bytes(tag)] }), value: (tags) => `set ${[...tags].sort().join("|")}` },
];

describe("delete", () => {
  test("a key that does not exist: nothing deleted, nothing to replicate", () => {
    const e = new Engine({ actor: "a" });
    const r = e.delete("nope");
    expect(r).toEqual({ ok: true, deleted: false, delta: null });
    expect(e.storedKeyCount).toBe(0);
  });

  test("an invalid key is refused", () => {
    const e = new Engine({ actor: "a" });
    const r = e.delete("");
    expect(r.ok).toBe(false);
  });

  for (const w of writers) {
    describe(w.name, () => {
      test("a deleted key reads as absent, is not counted, and a second delete deletes nothing", () => {
        const e = new Engine({ actor: "a" });
        write(e, w.op("k", "x"));
        write(e, w.op("other", "y"));
        expect(e.keyCount).toBe(2);
        expect(del(e, "k")).not.toBeNull();
        expect(e.get("k")).toBeUndefined();
        expect(e.has("k")).toBe(false);
        expect(e.typeOf("k")).toBeUndefined();
        expect(e.keyCount).toBe(1);
        expect(e.deletedKeyCount).toBe(1);
        expect(e.delete("k")).toEqual({ ok: true, deleted: false, delta: null });
        expect(shown(e.get("other"))).toBe(w.value(["y"]));
      });

      test("a write the deleting replica had not observed survives (add-wins), on both replicas", () => {
        const a = new Engine({ actor: "a" });
        const b = new Engine({ actor: "b" });
        merge(b, write(a, w.op("k", "x")));
        // b writes concurrently with a's delete: a has not seen it.
        const late = write(b, w.op("k", "y"), T + 1);
        const gone = del(a, "k");
        merge(a, late, T + 2);
        merge(b, gone, T + 2);
        // Counters: only b's unobserved increment is left; registers: only b's value.
        const expected = w.name.endsWith("counter") ? `${w.name} 1` : w.value(["y"]);
        expect(shown(a.get("k"))).toBe(expected);
        expect(shown(b.get("k"))).toBe(expected);
        expect(a.digest("k")).toBe(b.digest("k"));
      });

      test("a write after the delete counts from nothing", () => {
        const e = new Engine({ actor: "a" });
        write(e, w.op("k", "x"));
        write(e, w.op("k", "x2"));
        del(e, "k");
        write(e, w.op("k", "z"), T + 5);
        expect(shown(e.get("k"))).toBe(w.value(["z"]));
      });

      test("nothing deleted comes back: redelivered and reordered deltas, anti-entropy from a replica that missed the delete, WAL replay, snapshot load", () => {
        const a = new Engine({ actor: "a" });
        const b = new Engine({ actor: "b" }); // missed everything after the first write
        const d1 = write(a, w.op("k", "x"));
        merge(b, d1);
        const d2 = write(a, w.op("k", "x2"), T + 1);
        const gone = del(a, "k");
        // Redelivery and reordering at a.
        merge(a, d1);
        merge(a, d2);
        expect(a.get("k")).toBeUndefined();
        // Anti-entropy with b, which never saw the delete (nor d2).
        exchange(a, b, "k");
        expect(a.get("k")).toBeUndefined();
        expect(b.get("k")).toBeUndefined();
        // WAL replay, in any order, into a fresh replica.
        for (const order of [[d1, d2, gone], [gone, d2, d1], [d2, gone, d1, d1]]) {
          const c = new Engine({ actor: "a" });
          for (const d of order) expect(c.mergeDelta(d as Uint8Array, T, { origin: "own" }).ok).toBe(true);
          expect(c.get("k")).toBeUndefined();
          expect(c.digest("k")).toBe(a.digest("k"));
        }
        // Snapshot load of the deleted key, then old deltas again.
        const s = new Engine({ actor: "a" });
        expect(s.loadState("k", a.encodeState("k") as Uint8Array).ok).toBe(true);
        expect(s.get("k")).toBeUndefined();
        expect(s.keyCount).toBe(0);
        expect(s.deletedKeyCount).toBe(1);
        merge(s, d1);
        merge(s, d2);
        expect(s.get("k")).toBeUndefined();
      });
    });
  }

  test("a deleted key can be written again with any type; no type conflict is shown, and replicas agree", () => {
    for (const first of writers) {
      for (const second of writers) {
        const a = new Engine({ actor: "a" });
        const b = new Engine({ actor: "b" });
        const log: Uint8Array[] = [write(a, first.op("k", "x"))];
        log.push(del(a, "k") as Uint8Array);
        log.push(write(a, second.op("k", "y"), T + 10));
        expect(shown(a.get("k"))).toBe(second.value(["y"]));
        expect(a.get("k")?.conflicts).toBeUndefined();
        expect(a.typeOf("k")).toBe(second.name as never);
        for (const d of [...log].reverse()) merge(b, d, T + 10);
        expect(shown(b.get("k"))).toBe(second.value(["y"]));
        expect(b.digest("k")).toBe(a.digest("k"));
        // And deleted again, the key is absent with either type's record kept.
        const again = del(a, "k");
        merge(b, again, T + 10);
        expect(a.get("k")).toBeUndefined();
        expect(b.get("k")).toBeUndefined();
        expect(b.digest("k")).toBe(a.digest("k"));
      }
    }
  });

  test("Batch: del in applyMany deletes, reports whether the key held anything, and its delta replicates", () => {
    const a = new Engine({ actor: "a" });
    const b = new Engine({ actor: "b" });
    const { results, deltas } = a.applyMany([
      { kind: "set", key: "k", value: bytes("v") },
      { kind: "del", key: "k" },
      { kind: "del", key: "k" },
      { kind: "get", key: "k" },
      { kind: "incr", key: "c", amount: 2n },
      { kind: "del", key: "c" },
    ], T);
    expect(results.map((r) => (r.ok ? r.deleted ?? shown(r.value) : r.error.code))).toEqual(["lww v", true, false, "(absent)", "pncounter 2", true]);
    for (const d of deltas) merge(b, d);
    expect(b.get("k")).toBeUndefined();
    expect(b.get("c")).toBeUndefined();
    expect(b.digest("c")).toBe(a.digest("c"));
  });

  test("seeded: random writes, deletes and deliveries (duplicated, reordered, dropped then repaired by anti-entropy) converge, and a key deleted after every write it saw stays absent", () => {
    const keys = ["k1", "k2"];
    const opArb = fc.oneof(
      fc.record({ t: fc.constant("w" as const), r: fc.nat(2), k: fc.nat(1), w: fc.nat(writers.length - 1), v: fc.constantFrom("a", "b") }),
      fc.record({ t: fc.constant("d" as const), r: fc.nat(2), k: fc.nat(1) }),
      fc.record({ t: fc.constant("x" as const), r: fc.nat(2), pick: fc.nat(), keep: fc.boolean() }),
    );
    checkProperty("delete convergence", fc.property(fc.array(opArb, { maxLength: 40 }), (cmds) => {
      const reps = ["a", "b", "c"].map((actor) => new Engine({ actor }));
      const pending: { to: number; d: Uint8Array }[] = [];
      let now = T;
      for (const c of cmds) {
        now += 1;
        if (c.t === "x") {
          if (pending.length === 0) continue;
          const k = c.pick % pending.length;
          const p = pending[k] as { to: number; d: Uint8Array };
          (reps[p.to] as Engine).mergeDelta(p.d, now);
          if (!c.keep) pending.splice(k, 1);
          continue;
        }
        const e = reps[c.r] as Engine;
        const key = keys[c.k] as string;
        let d: Uint8Array | null;
        if (c.t === "d") d = del(e, key);
        else {
          const r = e.apply((writers[c.w] as (typeof writers)[number]).op(key, c.v), now);
          d = r.ok ? r.delta : null; // a write of another type than the key's is refused
        }
        if (d !== null) for (let to = 0; to < reps.length; to++) if (to !== c.r) pending.push({ to, d });
      }
      // Anti-entropy repairs whatever was dropped.
      for (const key of keys) for (const x of reps) for (const y of reps) if (x !== y) exchange(x, y, key);
      for (const key of keys) {
        const first = reps[0] as Engine;
        for (const r of reps) {
          expect(r.digest(key)).toBe(first.digest(key));
          expect(shown(r.get(key))).toBe(shown(first.get(key)));
        }
      }
      // A replica that has everything and deletes leaves the key absent everywhere after one more round.
      for (const key of keys) {
        const d = del(reps[0] as Engine, key);
        for (const r of reps.slice(1)) merge(r, d, now);
        for (const r of reps) expect(r.get(key)).toBeUndefined();
      }
    }));
  });
});

function listed(r: KeyListing | ListingRefusal): KeyListing {
  if (!r.ok) throw new Error(`listing refused: ${r.error.message}`);
  return r;
}

describe("listKeys", () => {
  test("present keys only, by prefix and type, in bounded pages; a key present for the whole listing is returned once", () => {
    const e = new Engine({ actor: "a" });
    for (let i = 0; i < 50; i++) write(e, { kind: "set", key: `user:${i}`, value: bytes("v") });
    for (let i = 0; i < 10; i++) write(e, { kind: "incr", key: `hits:${i}`, amount: 1n });
    for (let i = 0; i < 50; i += 5) del(e, `user:${i}`);
    const seen = new Map<string, number>();
    let cursor = 0;
    let pages = 0;
    do {
      const page = listed(e.listKeys(cursor, 7, "user:"));
      for (const k of page.keys) seen.set(k, (seen.get(k) ?? 0) + 1);
      // Writes between pages: new keys, deletes of keys not yet returned, rewrites.
      write(e, { kind: "set", key: `user:new${pages}`, value: bytes("n") });
      write(e, { kind: "set", key: "user:1", value: bytes("again") });
      cursor = page.cursor;
      pages++;
    } while (cursor !== 0 && pages < 100);
    expect(cursor).toBe(0);
    for (let i = 0; i < 50; i++) {
      const k = `user:${i}`;
      expect(seen.get(k) ?? 0).toBe(i % 5 === 0 ? 0 : 1);
    }
    for (const [k, n] of seen) {
      expect(k.startsWith("user:")).toBe(true);
      expect(n).toBe(1);
    }
    expect(listed(e.listKeys(0, 100, "", "pncounter")).keys.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `hits:${i}`).sort());
  });
});
