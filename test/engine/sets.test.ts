// Sets through the engine: SAdd/SRem answers as Redis gives them, add-wins across replicas
// through deltas, states and replay, WRONG_TYPE against other kinds, and the member bounds
// refusing a write before it changes anything.

import { describe, expect, test } from "bun:test";
import { Engine, type EngineOp, type KeyValue } from "../../src/engine/index.ts";
import { keyStateWriteBytesMax, setMemberBytesMax, setMembersWriteMax } from "../../src/limits.ts";

const T = 1_700_000_000_000;
const enc = new TextEncoder();
const m = (s: string): Uint8Array => enc.encode(s);
const names = (v: KeyValue | undefined): string[] => (v?.type === "set" ? v.members.map((x) => new TextDecoder().decode(x)) : []);

function applied(e: Engine, op: EngineOp): { delta: Uint8Array | null; count: number | undefined; value: KeyValue | undefined } {
  const r = e.apply(op, T);
  if (!r.ok) throw new Error(`op refused: ${r.error.message}`);
  return { delta: r.delta, count: r.count, value: r.value };
}

function mustDelta(d: Uint8Array | null): Uint8Array {
  if (d === null) throw new Error("expected a delta");
  return d;
}

describe("sets in the engine", () => {
  test("SAdd answers how many members were new, SRem how many were there; a repeated member counts once", () => {
    const e = new Engine({ actor: "n1" });
    expect(applied(e, { kind: "sadd", key: "s", members: [m("a"), m("b"), m("a")] }).count).toBe(2);
    expect(applied(e, { kind: "sadd", key: "s", members: [m("b"), m("c")] }).count).toBe(1);
    expect(names(e.get("s"))).toEqual(["a", "b", "c"]);
    const rem = applied(e, { kind: "srem", key: "s", members: [m("a"), m("zz"), m("a")] });
    expect(rem.count).toBe(1);
    expect(names(rem.value)).toEqual(["b", "c"]);
    expect(e.typeOf("s")).toBe("set");
  });

  test("each SAdd/SRem answer is the set as that write left it, whatever later writes do", () => {
    const e = new Engine({ actor: "n1" });
    const first = applied(e, { kind: "sadd", key: "s", members: [m("a")] });
    const second = applied(e, { kind: "sadd", key: "s", members: [m("b"), m("c")] });
    const third = applied(e, { kind: "srem", key: "s", members: [m("a")] });
    applied(e, { kind: "sadd", key: "s", members: [m("d")] });
    expect(names(first.value)).toEqual(["a"]);
    expect(names(second.value)).toEqual(["a", "b", "c"]);
    expect(names(third.value)).toEqual(["b", "c"]);
    expect(names(e.get("s"))).toEqual(["b", "c", "d"]);
  });

  test("an SRem that removes nothing changes nothing and has no delta; on a missing key it creates no key", () => {
    const changes: string[] = [];
    const e = new Engine({ actor: "n1", onChange: (k) => changes.push(k) });
    applied(e, { kind: "sadd", key: "s", members: [m("a")] });
    const before = [e.encodeState("s"), e.digest("s"), changes.length];
    const none = applied(e, { kind: "srem", key: "s", members: [m("b")] });
    expect(none).toEqual({ delta: null, count: 0, value: e.get("s") });
    expect([e.encodeState("s"), e.digest("s"), changes.length]).toEqual(before);
    const missing = applied(e, { kind: "srem", key: "nope", members: [m("b")] });
    expect(missing).toEqual({ delta: null, count: 0, value: undefined });
    expect(e.has("nope")).toBe(false);
    // In a batch: no delta to log or send for it.
    const many = e.applyMany([{ kind: "srem", key: "s", members: [m("b")] }, { kind: "sadd", key: "s", members: [m("b")] }], T);
    expect(many.results.map((r) => r.ok && r.count)).toEqual([0, 1]);
    expect(many.deltas.length).toBe(1);
  });

  test("concurrent add and remove of a member on two engines: the add wins on both, through deltas and through states", () => {
    const a = new Engine({ actor: "n1" });
    const b = new Engine({ actor: "n2" });
    expect(b.mergeDelta(mustDelta(applied(a, { kind: "sadd", key: "s", members: [m("x")] }).delta), T).ok).toBe(true);
    const readd = mustDelta(applied(a, { kind: "sadd", key: "s", members: [m("x")] }).delta);
    const remove = applied(b, { kind: "srem", key: "s", members: [m("x")] });
    expect(remove.count).toBe(1);
    expect(names(b.get("s"))).toEqual([]);
    expect(a.mergeDelta(mustDelta(remove.delta), T).ok).toBe(true);
    expect(b.mergeDelta(readd, T).ok).toBe(true);
    expect(names(a.get("s"))).toEqual(["x"]);
    expect(names(b.get("s"))).toEqual(["x"]);
    expect(a.digest("s")).toBe(b.digest("s") as bigint);
    // A third replica that gets the states (anti-entropy), in either order, agrees.
    const c = new Engine({ actor: "n3" });
    expect(c.mergeState("s", b.encodeState("s") as Uint8Array, T).ok).toBe(true);
    expect(c.mergeState("s", a.encodeState("s") as Uint8Array, T).ok).toBe(true);
    expect(c.digest("s")).toBe(a.digest("s") as bigint);
  });

  test("a removed member does not come back from a redelivered add delta, WAL replay or a loaded state", () => {
    const a = new Engine({ actor: "n1" });
    const wal: Uint8Array[] = [];
    wal.push(mustDelta(applied(a, { kind: "sadd", key: "s", members: [m("x"), m("y")] }).delta));
    wal.push(mustDelta(applied(a, { kind: "srem", key: "s", members: [m("x")] }).delta));
    expect(a.mergeDelta(wal[0] as Uint8Array, T)).toMatchObject({ ok: true, changed: false });
    expect(names(a.get("s"))).toEqual(["y"]);
    const replayed = new Engine({ actor: "n1" });
    for (const d of wal) expect(replayed.mergeDelta(d, T, { origin: "own" }).ok).toBe(true);
    expect(replayed.mergeDelta(wal[0] as Uint8Array, T).ok).toBe(true); // a redelivery after replay
    expect(names(replayed.get("s"))).toEqual(["y"]);
    const loaded = new Engine({ actor: "n2" });
    expect(loaded.loadState("s", a.encodeState("s") as Uint8Array).ok).toBe(true);
    expect(loaded.mergeDelta(wal[0] as Uint8Array, T).ok).toBe(true);
    expect(names(loaded.get("s"))).toEqual(["y"]);
  });

  test("set ops on another type, and other ops on a set, are WRONG_TYPE and change nothing", () => {
    const e = new Engine({ actor: "n1" });
    applied(e, { kind: "incr", key: "c", amount: 1n });
    applied(e, { kind: "sadd", key: "s", members: [m("a")] });
    const state = e.encodeState("s");
    for (const op of [
      { kind: "sadd", key: "c", members: [m("a")] },
      { kind: "srem", key: "c", members: [m("a")] },
      { kind: "incr", key: "s", amount: 1n },
      { kind: "set", key: "s", value: m("v") },
      { kind: "setMv", key: "s", value: m("v"), context: null },
    ] as EngineOp[]) {
      const r = e.apply(op, T);
      expect(r.ok ? "ok" : r.error.code).toBe("WRONG_TYPE");
    }
    expect(e.encodeState("s")).toEqual(state);
    expect(e.get("c")).toEqual({ type: "pncounter", value: 1n });
  });

  test("an SAdd past the member bound or the state's byte bound is LIMIT_EXCEEDED and changes nothing; an empty member is INVALID", () => {
    const e = new Engine({ actor: "n1" });
    const many = Array.from({ length: setMembersWriteMax }, (_, i) => m(`m${i}`));
    expect(applied(e, { kind: "sadd", key: "s", members: many }).count).toBe(setMembersWriteMax);
    const state = e.encodeState("s");
    const over = e.apply({ kind: "sadd", key: "s", members: [m("one-more")] }, T);
    expect(over.ok ? "ok" : over.error.code).toBe("LIMIT_EXCEEDED");
    expect(e.encodeState("s")).toEqual(state);
    // Re-adding present members leaves the count where it is: allowed.
    expect(applied(e, { kind: "sadd", key: "s", members: [m("m0")] }).count).toBe(0);
    // Bytes: members of the largest size fill the write bound before the member count does.
    const big = (i: number): Uint8Array => new Uint8Array(setMemberBytesMax).fill(i);
    const fits = Math.floor(keyStateWriteBytesMax / (setMemberBytesMax + 64));
    const members = Array.from({ length: fits }, (_, i) => big(i + 1));
    expect(applied(e, { kind: "sadd", key: "b", members }).count).toBe(fits);
    const bigState = e.encodeState("b");
    const past = e.apply({ kind: "sadd", key: "b", members: [big(fits + 1), big(fits + 2)] }, T);
    expect(past.ok ? "ok" : past.error.code).toBe("LIMIT_EXCEEDED");
    expect(e.encodeState("b")).toEqual(bigState);
    const empty = e.apply({ kind: "sadd", key: "b", members: [new Uint8Array(0)] }, T);
    expect(empty.ok ? "ok" : empty.error.code).toBe("INVALID");
    expect(e.has("nothing")).toBe(false);
    const emptyNew = e.apply({ kind: "sadd", key: "nothing", members: [new Uint8Array(0)] }, T);
    expect(emptyNew.ok ? "ok" : emptyNew.error.code).toBe("INVALID");
    expect(e.has("nothing")).toBe(false);
  });
});
