// A finding of the chaos "restore from an old backup under load" scenario, at the engine: a
// replica that collected a key's record and FORGOT it (collectedGraceMs later, or pushed out by
// collectedRememberedMax) then wrote the key again issued its own dots or counts from zero again,
// while another replica still held the old record - one that had not run its own collection round
// yet (minutes apart after a mass delete), or a copy of a running node put back. That replica then
// dropped the new write as "already removed", and its state, shipped back by anti-entropy, removed
// the write on the writer too: an acknowledged write lost. collect-rewrite.test.ts covers a record
// still kept; this file the one forgotten. Every kind whose writes count per actor is covered.
import { expect, test } from "bun:test";
import { Engine, type ManyOp } from "../../src/engine/index.ts";
import { bytes, merge, run, show, T } from "./apply-helpers.ts";

interface Case {
  name: string;
  /** Writes of the key's first life, by `a` (several, so the dots or counts removed are above the new ones). */
  before: ManyOp[];
  /** The write after the record was collected and forgotten, and what it must read as. */
  after: ManyOp;
  expect: string;
  /** How the first life ends. */
  end?: "del" | "expire";
}

const cases: Case[] = [
  {
    name: "set",
    before: [1, 2, 3].map((n) => ({ kind: "sadd", key: "k", members: [bytes(`old${n}`)] })),
    after: { kind: "sadd", key: "k", members: [bytes("new")] },
    expect: "new",
  },
  {
    name: "set, ended by expiry",
    before: [1, 2, 3].map((n) => ({ kind: "sadd", key: "k", members: [bytes(`old${n}`)] })),
    after: { kind: "sadd", key: "k", members: [bytes("new")] },
    expect: "new",
    end: "expire",
  },
  {
    name: "mv register",
    before: [1, 2, 3].map((n) => ({ kind: "setMv", key: "k", value: bytes(`old${n}`), context: null })),
    after: { kind: "setMv", key: "k", value: bytes("new"), context: null },
    expect: "new",
  },
  {
    name: "lww register",
    before: [1, 2, 3].map((n) => ({ kind: "set", key: "k", value: bytes(`old${n}`) })),
    after: { kind: "set", key: "k", value: bytes("new") },
    expect: "new",
  },
  {
    name: "register with a deadline, ended by expiry",
    before: [1, 2, 3].map((n) => ({ kind: "set", key: "k", value: bytes(`old${n}`), expiry: { kind: "at", atMs: T + 1000 } })),
    after: { kind: "set", key: "k", value: bytes("new"), expiry: { kind: "at", atMs: T + 3_600_000 } },
    expect: "new",
    end: "expire",
  },
  {
    name: "hash field",
    before: [1, 2, 3].map((n) => ({ kind: "hset", key: "k", pairs: [{ field: bytes("f"), value: bytes(`old${n}`) }] })),
    after: { kind: "hset", key: "k", pairs: [{ field: bytes("f"), value: bytes("new") }] },
    expect: "f=new",
  },
  {
    name: "hash counter field",
    before: [1, 2, 3].map(() => ({ kind: "hincrby", key: "k", field: bytes("f"), amount: 5n })),
    after: { kind: "hincrby", key: "k", field: bytes("f"), amount: 2n },
    expect: "f=2",
  },
  {
    name: "pn-counter increment",
    before: [1, 2, 3].map(() => ({ kind: "incr", key: "k", amount: 5n })),
    after: { kind: "incr", key: "k", amount: 2n },
    expect: "2",
  },
  {
    name: "pn-counter decrement",
    before: [1, 2, 3].map(() => ({ kind: "decr", key: "k", amount: 5n })),
    after: { kind: "decr", key: "k", amount: 2n },
    expect: "-2",
  },
  {
    name: "g-counter",
    before: [1, 2, 3].map(() => ({ kind: "incr", key: "k", amount: 5n, counter: "gcounter" })),
    after: { kind: "incr", key: "k", amount: 2n, counter: "gcounter" },
    expect: "2",
  },
];

/**
 * a writes the first life, c receives it and its end; a collects the record and forgets it
 * (c has not collected yet); a writes again. Returns both, and the new write's deltas.
 */
function forgottenOnA(k: Case): { a: Engine; c: Engine; fresh: Uint8Array[]; at: number } {
  const a = new Engine({ actor: "a" });
  const c = new Engine({ actor: "c" });
  let now = T;
  for (const op of k.before) merge(c, run(a, op, now), now);
  const end: ManyOp = k.end === "expire" ? { kind: "expire", key: "k", atMs: now, cond: null } : { kind: "del", key: "k" };
  merge(c, run(a, end, now), now);
  expect(show(c, now)).toBe("(absent)");
  expect(a.collect("k", a.digest("k") as bigint)).toBe(true);
  a.forgetCollected("k");
  expect(a.collectedRecordsKept).toBe(0);
  now += 61_000; // past collectedGraceMs: why the record was forgotten
  const fresh = run(a, k.after, now);
  expect(show(a, now)).toBe(k.expect);
  return { a, c, fresh, at: now };
}

for (const k of cases) {
  test(`${k.name}: a write after the key's record was collected and forgotten reaches a member that still holds the record, and survives that member's state coming back`, () => {
    const { a, c, fresh, at } = forgottenOnA(k);
    merge(c, fresh, at);
    expect(show(c, at)).toBe(k.expect);
    // Anti-entropy the other way: c's whole state (old record joined with the new write) back to a.
    const r = a.mergeState("k", c.encodeState("k") as Uint8Array, at);
    expect(r.ok).toBe(true);
    expect(show(a, at)).toBe(k.expect);
    expect(a.digest("k")).toBe(c.digest("k"));
  });

  test(`${k.name}: a member that never had the record takes the write after the forgotten collection as it is`, () => {
    const { a, fresh, at } = forgottenOnA(k);
    const d = new Engine({ actor: "d" });
    merge(d, fresh, at);
    expect(show(d, at)).toBe(k.expect);
    expect(d.digest("k")).toBe(a.digest("k"));
  });
}

test("counters written from their life's base stay compact (no state object) on the writer, on a replica, and after a reload", () => {
  const a = new Engine({ actor: "a" });
  const b = new Engine({ actor: "b" });
  let now = T;
  for (let k = 0; k < 50; k++) {
    const ops: ManyOp[] = [
      { kind: "incr", key: `p${k}`, amount: 3n },
      { kind: "decr", key: `p${k}`, amount: 1n },
      { kind: "incr", key: `g${k}`, amount: 2n, counter: "gcounter" },
    ];
    for (const op of ops) merge(b, run(a, op, now), now);
    now += 7;
  }
  for (const e of [a, b]) {
    expect(e.storageSizes().objects).toBe(0);
    expect(e.get("p7", now)).toMatchObject({ value: 2n });
    expect(e.get("g7", now)).toMatchObject({ value: 2n });
  }
  // A snapshot load (loadState) and a replay (mergeDelta of each key's state) keep them compact.
  const c = new Engine({ actor: "c" });
  const d = new Engine({ actor: "d" });
  for (let k = 0; k < 50; k++) {
    for (const key of [`p${k}`, `g${k}`]) {
      const s = a.encodeState(key) as Uint8Array;
      expect(c.loadState(key, s).ok).toBe(true);
      expect(d.mergeState(key, s, now).ok).toBe(true);
      expect(c.digest(key)).toBe(a.digest(key));
      expect(d.digest(key)).toBe(a.digest(key));
    }
  }
  expect(c.storageSizes().objects).toBe(0);
  expect(d.storageSizes().objects).toBe(0);
  expect(a.digest("p3")).toBe(b.digest("p3"));
});
