// Eviction at the engine (Engine.evict; the cluster's rule is Cluster.evictStrays): a replica drops
// a key another replica (the partition's owner) holds, and later - owning the partition again,
// before any fill brought the key back - writes it afresh. Holding nothing of its own in the key,
// the write starts a new life (crdt/clocks.ts dotBase) and claims everything of its actor below as
// removed or reset; with the same actor that claim covers its own earlier, acknowledged writes,
// which the owner then drops: the control below shows the loss. Evict therefore renews the actor
// before dropping a key the actor wrote, and the owner ends up with both lives' writes.
import { describe, expect, test } from "bun:test";
import { Engine, type ManyOp } from "../../src/engine/index.ts";
import { bytes, merge, run, show, T } from "./apply-helpers.ts";
import { actorName } from "../../src/crdt/actors.ts";

interface Case {
  name: string;
  /** a's writes while it owned the key (acknowledged, held by the owner c too). */
  before: ManyOp[];
  /** a's write after it dropped the key and came to own it again, before any fill. */
  after: ManyOp;
  /** What c (and a, once they exchanged) must read: both lives' writes. */
  expect: string;
}

const cases: Case[] = [
  { name: "set", before: [1, 2, 3].map((n) => ({ kind: "sadd", key: "k", members: [bytes(`old${n}`)] })), after: { kind: "sadd", key: "k", members: [bytes("new")] }, expect: "new,old1,old2,old3" },
  // a no longer sees old3 when it writes: the two are concurrent, both kept.
  { name: "mv register", before: [1, 2, 3].map((n) => ({ kind: "setMv", key: "k", value: bytes(`old${n}`), context: null })), after: { kind: "setMv", key: "k", value: bytes("new"), context: null }, expect: "new,old3" },
  { name: "lww register", before: [1, 2, 3].map((n) => ({ kind: "set", key: "k", value: bytes(`old${n}`) })), after: { kind: "set", key: "k", value: bytes("new") }, expect: "new" },
  { name: "hash counter field", before: [1, 2, 3].map(() => ({ kind: "hincrby", key: "k", field: bytes("f"), amount: 5n })), after: { kind: "hincrby", key: "k", field: bytes("f"), amount: 2n }, expect: "f=17" },
  { name: "hash fields", before: [1, 2, 3].map((n) => ({ kind: "hset", key: "k", pairs: [{ field: bytes(`f${n}`), value: bytes("v") }] })), after: { kind: "hset", key: "k", pairs: [{ field: bytes("g"), value: bytes("w") }] }, expect: "f1=v,f2=v,f3=v,g=w" },
  { name: "pn-counter increment", before: [1, 2, 3].map(() => ({ kind: "incr", key: "k", amount: 5n })), after: { kind: "incr", key: "k", amount: 2n }, expect: "17" },
  { name: "pn-counter decrement", before: [1, 2, 3].map(() => ({ kind: "decr", key: "k", amount: 5n })), after: { kind: "decr", key: "k", amount: 2n }, expect: "-17" },
  { name: "g-counter", before: [1, 2, 3].map(() => ({ kind: "incr", key: "k", amount: 5n, counter: "gcounter" })), after: { kind: "incr", key: "k", amount: 2n, counter: "gcounter" }, expect: "17" },
];

/** a writes and c (the owner) holds it all; a evicts k with `renew`; a writes again; c merges. */
function evictAndRewrite(k: Case, renew: () => string): { a: Engine; c: Engine; renewed: number } {
  const a = new Engine({ actor: "node-a/0000000000000001" });
  const c = new Engine({ actor: "node-c/0000000000000001" });
  let now = T;
  for (const op of k.before) {
    merge(c, run(a, op, now), now);
    now += 10;
  }
  let renewed = 0;
  expect(a.evict([{ key: "k", digest: a.digest("k") as bigint }], () => (renewed++, renew()))).toBe(1);
  expect(a.has("k")).toBe(false);
  now += 1_000;
  merge(c, run(a, k.after, now), now);
  return { a, c, renewed };
}

describe("a key dropped and written again keeps both lives' writes", () => {
  for (const k of cases) {
    test(k.name, () => {
      const { a, c, renewed } = evictAndRewrite(k, () => "node-a/0000000000000002");
      expect(renewed).toBe(1);
      expect(actorName(a.actor)).toBe("node-a/0000000000000002");
      expect(show(c, T + 10_000)).toBe(k.expect);
      // The owner's state, shipped back, gives a the same.
      merge(a, [c.encodeState("k")!].map((s) => s), T + 10_000);
      expect(show(a, T + 10_000)).toBe(k.expect);
    });
  }

  // The control: the same steps without a new actor lose a's earlier writes (why evict renews).
  for (const k of cases.filter((x) => ["set", "pn-counter increment", "hash counter field"].includes(x.name))) {
    test(`control, without a new actor: ${k.name} loses the first life`, () => {
      const { c } = evictAndRewrite(k, () => "node-a/0000000000000001");
      expect(show(c, T + 10_000)).not.toBe(k.expect);
    });
  }
});

describe("evict", () => {
  test("a key the actor never wrote is dropped without a new actor", () => {
    const a = new Engine({ actor: "node-a/01" });
    const b = new Engine({ actor: "node-b/01" });
    merge(a, run(b, { kind: "incr", key: "k", amount: 3n }, T), T);
    let renewed = 0;
    expect(a.evict([{ key: "k", digest: a.digest("k") as bigint }], () => (renewed++, "node-a/02"))).toBe(1);
    expect(renewed).toBe(0);
    expect(actorName(a.actor)).toBe("node-a/01");
    expect(a.keyCount).toBe(0);
  });

  test("a renewal that fails (the identity cannot be written) drops nothing and keeps the actor", () => {
    const a = new Engine({ actor: "node-a/01" });
    run(a, { kind: "incr", key: "k", amount: 1n }, T);
    expect(() => a.evict([{ key: "k", digest: a.digest("k") as bigint }], () => {
      throw new Error("disk full");
    })).toThrow("disk full");
    expect(a.has("k")).toBe(true);
    expect(actorName(a.actor)).toBe("node-a/01");
  });

  test("a key changed since its digest was read stays, and a deleted key's record (the collector's); one renewal for many keys; gone reported; deadlines dropped", () => {
    const gone: string[] = [];
    const a = new Engine({ actor: "node-a/01", onChange: (key, d) => void (d === undefined && gone.push(key)) });
    for (const key of ["x", "y", "z"]) run(a, { kind: "incr", key, amount: 1n }, T);
    run(a, { kind: "set", key: "ttl", value: bytes("v"), expiry: { kind: "at", atMs: T + 60_000 } }, T);
    run(a, { kind: "sadd", key: "del", members: [bytes("m")] }, T);
    run(a, { kind: "del", key: "del" }, T);
    expect(a.deletedKeyCount).toBe(1);
    expect(a.deadlineKeyCount).toBe(1);
    const digests = ["x", "y", "z", "ttl", "del"].map((key) => ({ key, digest: a.digest(key) as bigint }));
    run(a, { kind: "incr", key: "y", amount: 1n }, T); // y changes after its digest was read
    let renewed = 0;
    expect(a.evict(digests, () => (renewed++, "node-a/02"))).toBe(3);
    expect(renewed).toBe(1);
    expect(gone.sort()).toEqual(["ttl", "x", "z"]);
    expect(a.has("y")).toBe(true);
    expect(a.keyCount).toBe(1);
    // The record stays until collection drops it: an older write arriving later meets it.
    expect(a.deletedKeyCount).toBe(1);
    expect(a.tombstones().count).toBe(1);
    expect(a.digest("del")).toBe(digests[4]!.digest);
    expect(a.deadlineKeyCount).toBe(0);
    // Unknown keys and an empty list change nothing.
    expect(a.evict([{ key: "nope", digest: 1n }], () => "node-a/03")).toBe(0);
    expect(a.evict([], () => "node-a/03")).toBe(0);
    expect(actorName(a.actor)).toBe("node-a/02");
  });
});
