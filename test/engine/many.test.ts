// applyMany (a client Batch in one call, compact counters' deltas coalesced) against one apply()
// per op, and deferChanges (digests and onChange reports made lazy) against immediate reports.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Engine, type EngineOp, type ManyOp } from "../../src/engine/index.ts";
import { checkProperty } from "../crdt/prop.ts";

const T = 1_700_000_000_000;
const keys = ["a", "b", "c", "é", "g"] as const;

const amountArb = fc.oneof(
  { weight: 8, arbitrary: fc.bigInt({ min: 1n, max: 4n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: -1n, max: 0n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: 1n, max: 1n << 63n }) },
);
const opArb: fc.Arbitrary<ManyOp> = fc.oneof(
  fc.record({ kind: fc.constant("incr" as const), key: fc.constantFrom(...keys), amount: amountArb }),
  fc.record({ kind: fc.constant("incr" as const), key: fc.constantFrom(...keys), amount: amountArb, counter: fc.constantFrom("gcounter" as const, "pncounter" as const) }),
  fc.record({ kind: fc.constant("decr" as const), key: fc.constantFrom(...keys), amount: amountArb }),
  fc.record({ kind: fc.constant("set" as const), key: fc.constantFrom(...keys), value: fc.uint8Array({ maxLength: 2 }) }),
  fc.record({ kind: fc.constant("setMv" as const), key: fc.constantFrom(...keys), value: fc.uint8Array({ maxLength: 2 }), context: fc.constant(null) }),
  fc.record({ kind: fc.constant("get" as const), key: fc.constantFrom(...keys, "missing") }),
  fc.record({ kind: fc.constant("incr" as const), key: fc.constant(""), amount: fc.constant(1n) }),
);

const show = (v: unknown): string =>
  JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : x instanceof Uint8Array ? Array.from(x) : x));

function state(e: Engine): string {
  return show(keys.map((k) => [e.get(k), e.digest(k)]));
}

describe("Engine.applyMany", () => {
  test("gives the results, state and digests of one apply() per op, and deltas that rebuild the state elsewhere", () => {
    const batches = fc.array(fc.array(opArb, { maxLength: 25 }), { minLength: 1, maxLength: 4 });
    checkProperty("applyMany = apply per op", fc.property(batches, fc.nat(), (steps, seed) => {
      const one = new Engine({ actor: "n1" });
      const many = new Engine({ actor: "n1" });
      const replica = new Engine({ actor: "n2" });
      // A remote row on some key, so the general (object) path is taken too.
      const remote = new Engine({ actor: "n3" }).apply({ kind: "incr", key: keys[seed % keys.length] as string, amount: 2n }, T);
      if (remote.ok) for (const e of [one, many, replica]) expect(e.mergeDelta(remote.delta, T).ok).toBe(true);
      let now = T;
      for (const batch of steps) {
        now += 1;
        const expected = batch.map((op) => {
          if (op.kind === "get") return { ok: true, value: one.get(op.key) };
          const r = one.apply(op as EngineOp, now);
          return r.ok ? { ok: true, value: r.value } : r;
        });
        const got = many.applyMany(batch, now);
        expect(show(got.results)).toBe(show(expected));
        // Each changed compact counter key yields one delta, not one per op. The key holding the
        // remote row is a state object (two actors): each op there has its own delta.
        const remoteKey = keys[seed % keys.length] as string;
        const counterOps = batch.filter((op) => (op.kind === "incr" || op.kind === "decr") && op.key !== remoteKey).length;
        expect(got.deltas.length).toBeLessThanOrEqual(batch.length - batch.filter((op) => op.kind === "get").length);
        if (counterOps > keys.length) expect(got.deltas.length).toBeLessThan(batch.length);
        // Deltas in reverse order and twice: joins commute and are idempotent.
        for (const d of [...got.deltas].reverse().concat(got.deltas)) expect(replica.mergeDelta(d, now).ok).toBe(true);
        expect(state(many)).toBe(state(one));
        for (const k of keys) expect(show(replica.get(k))).toBe(show(many.get(k)));
      }
    }), 0.3);
  });
});

describe("Engine deferChanges", () => {
  test("digests stay current on read; reportChanges tells each changed key once, with its latest digest", () => {
    const batches = fc.array(fc.array(opArb, { maxLength: 20 }), { minLength: 1, maxLength: 5 });
    checkProperty("deferred reports", fc.property(batches, (steps) => {
      const now: Array<[string, bigint | undefined]> = [];
      const later: Array<[string, bigint | undefined]> = [];
      const eager = new Engine({ actor: "n1", onChange: (k, d) => now.push([k, d]) });
      const lazy = new Engine({ actor: "n1", onChange: (k, d) => later.push([k, d]), deferChanges: true });
      for (const batch of steps) {
        now.length = 0;
        later.length = 0;
        eager.applyMany(batch, T);
        lazy.applyMany(batch, T);
        expect(later).toEqual([]);
        expect(state(lazy)).toBe(state(eager));
        const reported = lazy.reportChanges();
        expect(reported).toBe(later.length);
        // The lazy engine reports each changed key once, with the digest of its last change.
        const last = new Map(now);
        expect(new Map(later)).toEqual(last);
        expect(new Set(later.map(([k]) => k)).size).toBe(later.length);
        expect(lazy.reportChanges()).toBe(0);
      }
    }), 0.3);
  });

  test("without a subscriber nothing piles up; one set later hears of changes made after it", () => {
    const e = new Engine({ actor: "n1", deferChanges: true });
    for (let i = 0; i < 100; i++) expect(e.apply({ kind: "incr", key: `k${i}`, amount: 1n }, T).ok).toBe(true);
    const heard: string[] = [];
    e.setOnChange((k) => heard.push(k));
    expect(e.reportChanges()).toBe(0);
    const fresh = new Engine({ actor: "n1" });
    for (let i = 0; i < 100; i++) fresh.apply({ kind: "incr", key: `k${i}`, amount: 1n }, T);
    expect(e.digest("k7")).toBe(fresh.digest("k7") as bigint);
    e.apply({ kind: "incr", key: "k7", amount: 1n }, T);
    e.apply({ kind: "incr", key: "k7", amount: 1n }, T);
    e.apply({ kind: "incr", key: "k9", amount: 1n }, T);
    expect(e.reportChanges()).toBe(2);
    expect(heard).toEqual(["k7", "k9"]);
  });
});

describe("keys the engine turns back into strings", () => {
  test("a leading U+FEFF and other non-ASCII keys survive scan, reportChanges and a reload from scanned keys", () => {
    const keysHere = ["\uFEFFbom", "\uFEFF", "plain", "é\uFEFF", "😀"];
    const heard: string[] = [];
    const e = new Engine({ actor: "n1", deferChanges: true, onChange: (k) => heard.push(k) });
    for (const key of keysHere) expect(e.apply({ kind: "incr", key, amount: 3n }, T).ok).toBe(true);
    e.reportChanges();
    expect(heard).toEqual(keysHere);
    const scan = e.scan();
    const items = scan.next();
    expect(items.map((i) => i.key)).toEqual(keysHere);
    const copy = new Engine({ actor: "n2" });
    for (const { key, state } of items) expect(copy.loadState(key, state)).toEqual({ ok: true, key });
    for (const key of keysHere) expect(copy.get(key)).toEqual({ type: "pncounter", value: 3n });
  });
});

describe("reportChanges and a failing subscriber", () => {
  test("keys not reported because onChange threw are reported by the next call", () => {
    let fail = true;
    const heard: string[] = [];
    const e = new Engine({
      actor: "n1",
      deferChanges: true,
      onChange: (k) => {
        if (k === "b" && fail) throw new Error("tree full");
        heard.push(k);
      },
    });
    for (const key of ["a", "b", "c"]) e.apply({ kind: "incr", key, amount: 1n }, T);
    expect(() => e.reportChanges()).toThrow("tree full");
    expect(heard).toEqual(["a"]);
    fail = false;
    e.apply({ kind: "incr", key: "c", amount: 1n }, T);
    e.apply({ kind: "incr", key: "d", amount: 1n }, T);
    expect(e.reportChanges()).toBe(3);
    expect(heard).toEqual(["a", "b", "c", "d"]);
  });
});
