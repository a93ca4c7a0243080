// Expiry (issue 14) through the engine the node uses (applyMany, mergeDelta, mergeState,
// expireDue): one deadline on every replica, a key never readable after its deadline on a
// replica's clock, nothing written before a deadline survives it, nothing written after the
// key expired is lost - under skewed clocks and every delivery order.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Engine, type ManyOp, type ManyResult } from "../../src/engine/index.ts";
import { checkProperty } from "../crdt/prop.ts";

const T = 1_700_000_000_000;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

interface Ran { results: ManyResult[]; deltas: Uint8Array[] }

function run(e: Engine, ops: ManyOp[], nowMs: number): Ran {
  const r = e.applyMany(ops, nowMs);
  for (const x of r.results) if (!x.ok) throw new Error(`op refused: ${x.error.message}`);
  return r;
}

function one(e: Engine, op: ManyOp, nowMs: number): { result: Extract<ManyResult, { ok: true }>; deltas: Uint8Array[] } {
  const r = run(e, [op], nowMs);
  return { result: r.results[0] as Extract<ManyResult, { ok: true }>, deltas: r.deltas };
}

function mergeAll(e: Engine, deltas: readonly Uint8Array[], nowMs: number): void {
  for (const d of deltas) {
    const r = e.mergeDelta(d, nowMs);
    if (!r.ok) throw new Error(`merge refused: ${r.error.message}`);
  }
}

/** Full-state exchange of key both ways (anti-entropy). */
function exchange(a: Engine, b: Engine, key: string, nowA: number, nowB: number): void {
  const sa = a.encodeState(key);
  const sb = b.encodeState(key);
  if (sb !== undefined) expect(a.mergeState(key, sb, nowA).ok).toBe(true);
  if (sa !== undefined) expect(b.mergeState(key, sa, nowB).ok).toBe(true);
}

function members(e: Engine, key: string, nowMs: number): string {
  const v = e.get(key, nowMs);
  if (v === undefined) return "(absent)";
  if (v.type !== "set") throw new Error(`not a set: ${v.type}`);
  return v.members.map(text).sort().join(",");
}

function ttl(e: Engine, key: string, nowMs: number): bigint {
  return one(e, { kind: "ttl", key }, nowMs).result.reply as bigint;
}

/** Every permutation of xs (small xs only). */
function permutations<X>(xs: readonly X[]): X[][] {
  if (xs.length <= 1) return [xs.slice()];
  const out: X[][] = [];
  xs.forEach((x, i) => {
    for (const rest of permutations([...xs.slice(0, i), ...xs.slice(i + 1)])) out.push([x, ...rest]);
  });
  return out;
}

describe("expiry on one replica", () => {
  test("SET with a deadline: readable before it with expiresAtMs, missing at and after it (get, has, type, keys, ttl)", () => {
    const e = new Engine({ actor: "a" });
    one(e, { kind: "set", key: "k", value: bytes("v"), expiry: { kind: "at", atMs: T + 1000 } }, T);
    expect(e.get("k", T)).toMatchObject({ type: "lww", expiresAtMs: T + 1000 });
    expect(ttl(e, "k", T + 400)).toBe(600n);
    expect(e.get("k", T + 1000)).toBeUndefined();
    expect(e.has("k", T + 1000)).toBe(false);
    expect(e.typeOf("k", T + 1000)).toBeUndefined();
    const page = e.listKeys(0, 100, "", undefined, T + 1000);
    expect(page.ok && page.keys).toEqual([]);
    expect(ttl(e, "k", T + 1000)).toBe(-2n);
    expect(e.deadlineKeyCount).toBe(1);
    // The sweep executes it; the record is then a deleted key's (collected like one).
    const swept = e.expireDue(T + 1000, 100);
    expect(swept.deltas.length).toBe(1);
    expect(e.deadlineKeyCount).toBe(0);
    expect(e.expiredTotal).toBe(1);
    expect(e.deletedKeyCount).toBe(1);
  });

  test("EXPIRE NX/XX/GT/LT, PERSIST and TTL answer as Redis 7; a missing key answers 0 and -2", () => {
    const e = new Engine({ actor: "a" });
    const c = (op: ManyOp) => one(e, op, T).result.count;
    expect(c({ kind: "expire", key: "none", atMs: T + 5000, cond: null })).toBe(0);
    expect(ttl(e, "none", T)).toBe(-2n);
    one(e, { kind: "sadd", key: "k", members: [bytes("m")] }, T);
    expect(ttl(e, "k", T)).toBe(-1n);
    expect(c({ kind: "persist", key: "k" })).toBe(0);
    expect(c({ kind: "expire", key: "k", atMs: T + 5000, cond: "xx" })).toBe(0);
    expect(c({ kind: "expire", key: "k", atMs: T + 5000, cond: "gt" })).toBe(0); // none counts as infinitely late
    expect(c({ kind: "expire", key: "k", atMs: T + 5000, cond: "nx" })).toBe(1);
    expect(c({ kind: "expire", key: "k", atMs: T + 9000, cond: "nx" })).toBe(0);
    expect(c({ kind: "expire", key: "k", atMs: T + 4000, cond: "gt" })).toBe(0);
    expect(c({ kind: "expire", key: "k", atMs: T + 6000, cond: "gt" })).toBe(1);
    expect(c({ kind: "expire", key: "k", atMs: T + 7000, cond: "lt" })).toBe(0);
    expect(c({ kind: "expire", key: "k", atMs: T + 3000, cond: "lt" })).toBe(1);
    expect(ttl(e, "k", T)).toBe(3000n);
    expect(c({ kind: "expire", key: "k", atMs: T + 8000, cond: "xx" })).toBe(1);
    expect(ttl(e, "k", T)).toBe(8000n); // a sequential change may shorten or lengthen
    expect(c({ kind: "persist", key: "k" })).toBe(1);
    expect(ttl(e, "k", T)).toBe(-1n);
    expect(c({ kind: "expire", key: "k", atMs: T + 1000, cond: "lt" })).toBe(1); // none is infinitely late
    expect(e.deadlineKeyCount).toBe(1);
  });

  test("EXPIRE with a time already past expires the key at once (answers 1), as Redis's deletes it", () => {
    const e = new Engine({ actor: "a" });
    one(e, { kind: "sadd", key: "k", members: [bytes("m")] }, T);
    const r = one(e, { kind: "expire", key: "k", atMs: T - 1, cond: null }, T);
    expect(r.result.count).toBe(1);
    expect(r.deltas.length).toBe(1);
    expect(e.get("k", T)).toBeUndefined();
    expect(e.expiredTotal).toBe(1);
  });

  test("SET without a deadline clears one (Redis), keep leaves it; INCR and SADD keep it", () => {
    const e = new Engine({ actor: "a" });
    one(e, { kind: "set", key: "k", value: bytes("1"), expiry: { kind: "at", atMs: T + 1000 } }, T);
    one(e, { kind: "set", key: "k", value: bytes("2"), expiry: { kind: "keep" } }, T);
    expect(ttl(e, "k", T)).toBe(1000n);
    one(e, { kind: "set", key: "k", value: bytes("3") }, T);
    expect(ttl(e, "k", T)).toBe(-1n);
    one(e, { kind: "incr", key: "c", amount: 1n }, T);
    one(e, { kind: "expire", key: "c", atMs: T + 500, cond: null }, T);
    one(e, { kind: "incr", key: "c", amount: 2n }, T);
    expect(e.get("c", T)).toMatchObject({ type: "pncounter", value: 3n, expiresAtMs: T + 500 });
    expect(e.get("c", T + 500)).toBeUndefined();
  });

  test("a write to a key whose deadline has come starts a fresh key (the expiry is logged first), of any type", () => {
    const e = new Engine({ actor: "a" });
    one(e, { kind: "sadd", key: "k", members: [bytes("old")] }, T);
    one(e, { kind: "expire", key: "k", atMs: T + 100, cond: null }, T);
    const w = one(e, { kind: "sadd", key: "k", members: [bytes("new")] }, T + 100);
    expect(w.deltas.length).toBe(2); // the expiry's delta, then the write's
    expect(members(e, "k", T + 100)).toBe("new");
    expect(ttl(e, "k", T + 100)).toBe(-1n);
    one(e, { kind: "expire", key: "k", atMs: T + 200, cond: null }, T + 100);
    one(e, { kind: "incr", key: "k", amount: 5n }, T + 300); // a set before its expiry, a counter after
    expect(e.get("k", T + 300)).toMatchObject({ type: "pncounter", value: 5n });
  });

  test("the sweep is bounded: 10k keys due at once take several calls, each looking at no more than asked", () => {
    const e = new Engine({ actor: "a" });
    for (let k = 0; k < 10_000; k++) one(e, { kind: "set", key: `k${k}`, value: bytes("v"), expiry: { kind: "at", atMs: T + 10 } }, T);
    expect(e.deadlinesFiled).toBe(10_000);
    let calls = 0;
    let expired = 0;
    for (;;) {
      const r = e.expireDue(T + 10, 1000);
      expect(r.examined).toBeLessThanOrEqual(1000);
      if (r.examined === 0) break;
      expired += r.deltas.length;
      calls++;
    }
    expect(expired).toBe(10_000);
    expect(calls).toBe(10);
    expect(e.keyCount).toBe(0);
    expect(e.deadlinesFiled).toBe(0);
  });

  test("a deadline moved later is not executed at its old time; one moved earlier is", () => {
    const e = new Engine({ actor: "a" });
    one(e, { kind: "sadd", key: "late", members: [bytes("m")] }, T);
    one(e, { kind: "expire", key: "late", atMs: T + 100, cond: null }, T);
    one(e, { kind: "expire", key: "late", atMs: T + 900, cond: null }, T);
    one(e, { kind: "sadd", key: "early", members: [bytes("m")] }, T);
    one(e, { kind: "expire", key: "early", atMs: T + 900, cond: null }, T);
    one(e, { kind: "expire", key: "early", atMs: T + 100, cond: null }, T);
    expect(e.expireDue(T + 100, 100).deltas.length).toBe(1);
    expect(members(e, "late", T + 100)).toBe("m");
    expect(e.get("early", T + 100)).toBeUndefined();
    expect(e.expireDue(T + 900, 100).deltas.length).toBe(1);
    expect(e.get("late", T + 900)).toBeUndefined();
  });

  test("a restart (snapshot load, or WAL replay of the deltas) does not serve a key that expired while the node was down", () => {
    const e = new Engine({ actor: "a" });
    const d = one(e, { kind: "set", key: "k", value: bytes("v"), expiry: { kind: "at", atMs: T + 1000 } }, T).deltas;
    const snap = e.encodeState("k") as Uint8Array;
    const fromSnapshot = new Engine({ actor: "a" });
    expect(fromSnapshot.loadState("k", snap, T + 5000).ok).toBe(true);
    expect(fromSnapshot.get("k", T + 5000)).toBeUndefined();
    expect(fromSnapshot.expireDue(T + 5000, 10).deltas.length).toBe(1);
    const fromWal = new Engine({ actor: "a" });
    for (const x of d) expect(fromWal.replayOwn(x, 0, x.length, T + 5000)).toBeNull();
    expect(fromWal.get("k", T + 5000)).toBeUndefined();
    expect(fromWal.deadlineKeyCount).toBe(1);
  });

  test("bad deadlines are refused and change nothing", () => {
    const e = new Engine({ actor: "a" });
    one(e, { kind: "sadd", key: "k", members: [bytes("m")] }, T);
    const before = e.digest("k");
    for (const atMs of [-1, 2 ** 48, 1.5, Number.NaN]) {
      const r = e.applyMany([{ kind: "expire", key: "k", atMs, cond: null }], T);
      expect(r.results[0]?.ok).toBe(false);
      expect(r.deltas.length).toBe(0);
    }
    const s = e.applyMany([{ kind: "set", key: "k2", value: bytes("v"), expiry: { kind: "at", atMs: T } }], T);
    expect(s.results[0]?.ok).toBe(false);
    expect(e.has("k2", T)).toBe(false);
    expect(e.digest("k")).toBe(before);
  });
});

describe("expiry across replicas", () => {
  test("concurrent deadline changes resolve to the longest on both, in either order; a concurrent PERSIST beats any", () => {
    for (const order of [0, 1]) {
      const a = new Engine({ actor: "a" });
      const b = new Engine({ actor: "b" });
      mergeAll(b, one(a, { kind: "sadd", key: "k", members: [bytes("m")] }, T).deltas, T);
      const da = one(a, { kind: "expire", key: "k", atMs: T + 5000, cond: null }, T).deltas;
      const db = one(b, { kind: "expire", key: "k", atMs: T + 9000, cond: null }, T).deltas;
      if (order === 0) { mergeAll(a, db, T); mergeAll(b, da, T); } else { mergeAll(b, da, T); mergeAll(a, db, T); }
      expect(ttl(a, "k", T)).toBe(9000n);
      expect(ttl(b, "k", T)).toBe(9000n);
      const pa = one(a, { kind: "persist", key: "k" }, T).deltas;
      const eb = one(b, { kind: "expire", key: "k", atMs: T + 20_000, cond: null }, T).deltas;
      mergeAll(a, eb, T);
      mergeAll(b, pa, T);
      expect(ttl(a, "k", T)).toBe(-1n);
      expect(ttl(b, "k", T)).toBe(-1n);
      expect(a.digest("k")).toBe(b.digest("k"));
    }
  });

  // The timeline of docs/api.md "Expiry": A's clock is ahead, B's 30 s behind. The key carries
  // deadline D. A expires it at D and writes "fresh"; B, before D on its clock, writes "late".
  // Whatever order the three deltas arrive in, and whether B's sweep runs before or after: both
  // end with "fresh" only ("late" was written before the deadline, "fresh" after the expiry).
  test("skewed clocks, every delivery order: what was written before the deadline goes, what was written after the expiry stays", () => {
    const D = T + 10_000;
    const skewB = -30_000;
    let orders = 0;
    for (const sweepBFirst of [false, true]) {
      const base = new Engine({ actor: "a" });
      const seed = [
        ...one(base, { kind: "sadd", key: "k", members: [bytes("old")] }, T).deltas,
        ...one(base, { kind: "expire", key: "k", atMs: D, cond: null }, T).deltas,
      ];
      for (const perm of permutations(["expiryA", "freshA", "lateB"] as const)) {
        orders++;
        const a = new Engine({ actor: "a" });
        const b = new Engine({ actor: "b" });
        mergeAll(a, seed, T);
        mergeAll(b, seed, T + skewB);
        const nowA = D + 1;
        const nowB = D + 1 + skewB; // before D on B's clock
        const fromA = [...a.expireDue(nowA, 10).deltas];
        const fresh = one(a, { kind: "sadd", key: "k", members: [bytes("fresh")] }, nowA).deltas;
        const late = one(b, { kind: "sadd", key: "k", members: [bytes("late")] }, nowB).deltas;
        expect(members(b, "k", nowB)).toBe("late,old"); // B's clock is before D
        const pieces = { expiryA: fromA, freshA: fresh, lateB: late };
        if (sweepBFirst) mergeAll(b, b.expireDue(nowB, 10).deltas, nowB); // nothing due yet on B
        const bOut: Uint8Array[] = [];
        for (const p of perm) {
          if (p === "lateB") mergeAll(a, pieces.lateB, nowA);
          else mergeAll(b, pieces[p], nowB);
        }
        // B's clock reaches D: its sweep executes whatever it still holds under D.
        const laterB = D + 5;
        bOut.push(...b.expireDue(laterB, 10).deltas);
        mergeAll(a, bOut, nowA);
        exchange(a, b, "k", nowA, laterB);
        expect(members(a, "k", D + 10)).toBe("fresh");
        expect(members(b, "k", D + 10)).toBe("fresh");
        expect(a.digest("k")).toBe(b.digest("k"));
      }
    }
    expect(orders).toBe(12);
  });

  test("a replica that learns of the expiry before its clock reaches the deadline drops what it wrote before, keeps what it writes after", () => {
    const D = T + 10_000;
    const a = new Engine({ actor: "a" });
    const b = new Engine({ actor: "b" });
    mergeAll(b, [
      ...one(a, { kind: "sadd", key: "k", members: [bytes("old")] }, T).deltas,
      ...one(a, { kind: "expire", key: "k", atMs: D, cond: null }, T).deltas,
    ], T);
    const nowB = D - 20_000;
    const late = one(b, { kind: "sadd", key: "k", members: [bytes("late")] }, nowB).deltas;
    mergeAll(b, a.expireDue(D, 10).deltas, nowB); // B learns A executed D
    expect(members(b, "k", nowB)).toBe("(absent)");
    expect(b.expiredTotal).toBe(1);
    const after = one(b, { kind: "sadd", key: "k", members: [bytes("after")] }, nowB + 1).deltas;
    mergeAll(a, [...late, ...after], D);
    expect(members(a, "k", D)).toBe("after");
    expect(members(b, "k", D)).toBe("after");
    // B's own clock passing D later changes nothing: nothing of D is left to execute.
    expect(b.expireDue(D + 1, 10).deltas.length).toBe(0);
    expect(members(b, "k", D + 1)).toBe("after");
  });

  test("a write by a replica that never learned of the deadline is concurrent with it and survives its expiry (add-wins)", () => {
    const D = T + 10_000;
    const a = new Engine({ actor: "a" });
    const b = new Engine({ actor: "b" });
    mergeAll(b, one(a, { kind: "sadd", key: "k", members: [bytes("old")] }, T).deltas, T);
    one(a, { kind: "expire", key: "k", atMs: D, cond: null }, T);
    const unaware = one(b, { kind: "sadd", key: "k", members: [bytes("unaware")] }, T + 1).deltas;
    const expiry = a.expireDue(D, 10).deltas;
    mergeAll(b, expiry, D);
    mergeAll(a, unaware, D);
    exchange(a, b, "k", D, D);
    expect(members(a, "k", D)).toBe("unaware");
    expect(members(b, "k", D)).toBe("unaware");
    expect(ttl(a, "k", D)).toBe(-1n);
  });
});

describe("expiry convergence (seeded)", () => {
  // Random ops on 3 replicas with clocks skewed up to 60 s apart, random delivery (drops,
  // duplicates, reorders), anti-entropy: once every clock is past every deadline and the
  // replicas exchange everything, they hold the same state, and no replica shows the key
  // while a deadline it holds has passed on its clock.
  type Cmd =
    | { c: "add"; r: number }
    | { c: "expire"; r: number; inMs: number; cond: "nx" | "xx" | "gt" | "lt" | null }
    | { c: "persist"; r: number }
    | { c: "set"; r: number; ttl: number | null }
    | { c: "del"; r: number }
    | { c: "sweep"; r: number }
    | { c: "tick"; ms: number }
    | { c: "deliver"; pick: number; r: number; keep: boolean }
    | { c: "ae"; r: number; s: number };
  const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ c: fc.constant("add" as const), r: fc.nat(2) }) },
    { weight: 2, arbitrary: fc.record({ c: fc.constant("expire" as const), r: fc.nat(2), inMs: fc.integer({ min: -2000, max: 90_000 }), cond: fc.constantFrom(null, "nx", "xx", "gt", "lt") as fc.Arbitrary<"nx" | "xx" | "gt" | "lt" | null> }) },
    { weight: 1, arbitrary: fc.record({ c: fc.constant("persist" as const), r: fc.nat(2) }) },
    { weight: 1, arbitrary: fc.record({ c: fc.constant("del" as const), r: fc.nat(2) }) },
    { weight: 2, arbitrary: fc.record({ c: fc.constant("sweep" as const), r: fc.nat(2) }) },
    { weight: 2, arbitrary: fc.record({ c: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 30_000 }) }) },
    { weight: 5, arbitrary: fc.record({ c: fc.constant("deliver" as const), pick: fc.nat(), r: fc.nat(2), keep: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ c: fc.constant("ae" as const), r: fc.nat(2), s: fc.nat(2) }) },
  );

  test("replicas converge on one deadline and one value; a passed deadline is never readable", () => {
    checkProperty("expiry convergence", fc.property(
      fc.array(cmdArb, { maxLength: 80 }),
      fc.tuple(fc.integer({ min: -60_000, max: 60_000 }), fc.integer({ min: -60_000, max: 60_000 })),
      (cmds, [s1, s2]) => {
        const skew = [0, s1, s2];
        const es = [new Engine({ actor: "a" }), new Engine({ actor: "b" }), new Engine({ actor: "c" })];
        let real = T;
        let n = 0;
        const now = (r: number): number => real + (skew[r] as number);
        const pending: Uint8Array[] = [];
        const check = (): void => {
          for (let r = 0; r < 3; r++) {
            const e = es[r] as Engine;
            const t = ttl(e, "k", now(r));
            const v = e.get("k", now(r));
            if (v !== undefined) expect(t === -1n || t > 0n).toBe(true);
            else expect(t).toBe(-2n);
          }
        };
        for (const cmd of cmds) {
          switch (cmd.c) {
            case "add": pending.push(...run(es[cmd.r] as Engine, [{ kind: "sadd", key: "k", members: [bytes(`m${n++}`)] }], now(cmd.r)).deltas); break;
            case "expire": pending.push(...run(es[cmd.r] as Engine, [{ kind: "expire", key: "k", atMs: now(cmd.r) + cmd.inMs, cond: cmd.cond }], now(cmd.r)).deltas); break;
            case "persist": pending.push(...run(es[cmd.r] as Engine, [{ kind: "persist", key: "k" }], now(cmd.r)).deltas); break;
            case "set": break;
            case "del": pending.push(...run(es[cmd.r] as Engine, [{ kind: "del", key: "k" }], now(cmd.r)).deltas); break;
            case "sweep": pending.push(...(es[cmd.r] as Engine).expireDue(now(cmd.r), 10).deltas); break;
            case "tick": real += cmd.ms; break;
            case "deliver":
              if (pending.length > 0) {
                const k = cmd.pick % pending.length;
                mergeAll(es[cmd.r] as Engine, [pending[k] as Uint8Array], now(cmd.r));
                if (!cmd.keep) pending.splice(k, 1);
              }
              break;
            case "ae":
              if (cmd.r !== cmd.s) exchange(es[cmd.r] as Engine, es[cmd.s] as Engine, "k", now(cmd.r), now(cmd.s));
              break;
          }
          check();
        }
        // Quiesce: every clock past every deadline; sweeps and full exchanges until nothing moves.
        real += 200_000;
        for (let round = 0; round < 3; round++) {
          for (let r = 0; r < 3; r++) (es[r] as Engine).expireDue(now(r), 1000);
          for (let r = 1; r < 3; r++) exchange(es[0] as Engine, es[r] as Engine, "k", now(0), now(r));
          for (let r = 1; r < 3; r++) exchange(es[0] as Engine, es[r] as Engine, "k", now(0), now(r));
        }
        const d0 = (es[0] as Engine).digest("k");
        for (let r = 1; r < 3; r++) expect((es[r] as Engine).digest("k")).toBe(d0);
        const shown = es.map((e, r) => members(e, "k", now(r)));
        expect(new Set(shown).size).toBe(1);
        const ttls = es.map((e, r) => ttl(e, "k", now(r)));
        expect(ttls.every((t) => t === -1n || t === -2n)).toBe(true);
      },
    ), 0.3);
  });
});

describe("expiry and key counts", () => {
  test("keyCountAt leaves out keys whose deadline has come before the sweep executes them", () => {
    const e = new Engine({ actor: "a" });
    for (let k = 0; k < 5; k++) one(e, { kind: "set", key: `d${k}`, value: bytes("v"), expiry: { kind: "at", atMs: T + 100 + k } }, T);
    one(e, { kind: "set", key: "plain", value: bytes("v") }, T);
    one(e, { kind: "expire", key: "d4", atMs: T + 5000, cond: null }, T); // moved later: its old entry is stale
    expect(e.keyCountAt(T)).toBe(6);
    expect(e.keyCountAt(T + 102)).toBe(3); // d0, d1, d2 due
    expect(e.keyCountAt(T + 1000)).toBe(2); // d4 moved later; plain
    e.expireDue(T + 1000, 100);
    expect(e.keyCount).toBe(2);
    expect(e.keyCountAt(T + 1000)).toBe(2);
  });

  test("keyCountAt equals the keys a read finds, over random writes, deadlines, deletes, sweeps and another replica's writes and deletes (seeded)", () => {
    const keys = ["k0", "k1", "k2"];
    const step = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), k: fc.nat(2), ttl: fc.option(fc.integer({ min: 1, max: 300 }), { nil: null }) }),
      fc.record({ kind: fc.constant("expire" as const), k: fc.nat(2), at: fc.integer({ min: -50, max: 300 }) }),
      fc.record({ kind: fc.constantFrom("persist" as const, "del" as const, "sadd" as const, "remoteSet" as const, "remoteDel" as const), k: fc.nat(2) }),
      fc.record({ kind: fc.constant("time" as const), ms: fc.integer({ min: 1, max: 120 }) }),
      fc.record({ kind: fc.constant("sweep" as const), max: fc.integer({ min: 1, max: 3 }) }),
    );
    checkProperty("keyCountAt", fc.property(fc.array(step, { minLength: 10, maxLength: 60, size: "max" }), (steps) => {
      const a = new Engine({ actor: "a" });
      const b = new Engine({ actor: "b" });
      let now = T;
      for (const st of steps) {
        if (st.kind === "time") now += st.ms;
        else if (st.kind === "sweep") a.expireDue(now, st.max);
        else {
          const key = keys[st.k] as string;
          if (st.kind === "remoteSet" || st.kind === "remoteDel") {
            const r = b.applyMany([st.kind === "remoteSet" ? { kind: "sadd", key, members: [bytes(`b${now}`)] } : { kind: "del", key }], now);
            for (const d of r.deltas) a.mergeDelta(d, now);
          } else {
            const op: ManyOp = st.kind === "set" ? { kind: "sadd", key, members: [bytes(`a${now}`)] }
              : st.kind === "expire" ? { kind: "expire", key, atMs: now + st.at, cond: null }
              : st.kind === "persist" ? { kind: "persist", key }
              : st.kind === "del" ? { kind: "del", key }
              : { kind: "sadd", key, members: [bytes("x")] };
            a.applyMany([op], now);
            if (st.kind === "set" && st.ttl !== null) a.applyMany([{ kind: "expire", key, atMs: now + st.ttl, cond: null }], now);
          }
        }
        expect(a.keyCountAt(now)).toBe(keys.filter((k) => a.has(k, now)).length);
      }
    }));
  });
});
