// Type conflicts (issue 12, finding 2): a key created with two types by replicas that had not
// seen each other's write keeps both states; the earlier-created one stays visible everywhere,
// the other stays retrievable, recovery keeps both, and a local op of the hidden type is refused.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Engine, type EngineOp, type KeyValue } from "../../src/engine/index.ts";
import { encodeEnvelope, keyUtf8 } from "../../src/codec/index.ts";
import { internActor, LwwRegister } from "../../src/crdt/index.ts";
import { checkProperty } from "../crdt/prop.ts";

const T = 1_700_000_000_000;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function ok<R extends { ok: boolean }>(r: R): R {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r)}`);
  return r;
}

function delta(e: Engine, op: EngineOp, nowMs: number): Uint8Array {
  const r = e.apply(op, nowMs);
  if (!r.ok) throw new Error(`op refused: ${r.error.message}`);
  if (r.delta === null) throw new Error("op changed nothing");
  return r.delta;
}

const show = (v: unknown): string =>
  JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : x instanceof Uint8Array ? Array.from(x) : x));

/** What a reader can see of a key, plus its digest: equal on replicas holding equal data. */
function view(e: Engine, key: string): string {
  return show([e.get(key), e.digest(key)]);
}

/** node-1 sets k; node-2, which never saw it, increments k later (the lagging node's stray op). */
function established(): { n1: Engine; n2: Engine; set: Uint8Array; incr: Uint8Array } {
  const n1 = new Engine({ actor: "node-1" });
  const n2 = new Engine({ actor: "node-2" });
  const set = delta(n1, { kind: "set", key: "k", value: bytes("hello") }, T);
  const incr = delta(n2, { kind: "incr", key: "k", amount: 1n }, T + 5_000);
  return { n1, n2, set, incr };
}

function expectLwwWithCounterSide(e: Engine): void {
  const v = e.get("k") as KeyValue;
  expect(v.type).toBe("lww");
  expect(v.type === "lww" && new TextDecoder().decode(v.value)).toBe("hello");
  expect(v.conflicts).toEqual([{ type: "pncounter", value: 1n }]);
  expect(e.typeOf("k")).toBe("lww");
}

describe("type conflicts", () => {
  test("an established LWW key keeps its value on both replicas, in either merge order, when a stray counter state meets it; the counter stays retrievable", () => {
    for (const order of ["n1 first", "n2 first"] as const) {
      const { n1, n2, set, incr } = established();
      const merges = [() => ok(n1.mergeDelta(incr, T + 6_000)), () => ok(n2.mergeDelta(set, T + 6_000))];
      if (order === "n2 first") merges.reverse();
      const results = merges.map((m) => m());
      // Each replica reports the new conflict once, and a repeat reports nothing.
      for (const r of results) expect(r.ok && r.typeConflict && r.changed).toBe(true);
      const again = n1.mergeDelta(incr, T + 6_000);
      expect(again.ok && !again.typeConflict && !again.changed).toBe(true);
      expectLwwWithCounterSide(n1);
      expectLwwWithCounterSide(n2);
      expect(view(n1, "k")).toBe(view(n2, "k"));
    }
    // Anti-entropy (full states) converges the same way.
    const { n1, n2 } = established();
    ok(n1.mergeState("k", n2.encodeState("k") as Uint8Array, T + 6_000));
    ok(n2.mergeState("k", n1.encodeState("k") as Uint8Array, T + 6_000));
    expectLwwWithCounterSide(n1);
    expectLwwWithCounterSide(n2);
    expect(view(n1, "k")).toBe(view(n2, "k"));
  });

  test("a key written by the previous release (no stamp) stays visible against a new write of another type", () => {
    const old = new LwwRegister();
    old.set(internActor("node-1"), bytes("hello"), { ms: T, logical: 0 });
    const v1Record = encodeEnvelope(keyUtf8("k") as Uint8Array, old); // format version 1, as before
    const n2 = new Engine({ actor: "node-2" });
    const incr = delta(n2, { kind: "incr", key: "k", amount: 1n }, T - 60_000); // even with an earlier clock
    ok(n2.mergeDelta(v1Record, T));
    expectLwwWithCounterSide(n2);
  });

  test("a local op of the hidden type is refused and changes nothing; the visible type is still writable", () => {
    const { n2, set } = established();
    ok(n2.mergeDelta(set, T + 6_000));
    const before = [view(n2, "k"), show(n2.encodeState("k"))];
    for (const op of [
      { kind: "incr", key: "k", amount: 1n },
      { kind: "decr", key: "k", amount: 1n },
      { kind: "setMv", key: "k", value: bytes("x"), context: null },
    ] as EngineOp[]) {
      const r = n2.apply(op, T + 7_000);
      expect(r.ok ? "ok" : r.error.code).toBe("WRONG_TYPE");
      const many = n2.applyMany([op], T + 7_000);
      expect(many.results[0]?.ok).toBe(false);
      expect(many.deltas).toEqual([]);
      expect([view(n2, "k"), show(n2.encodeState("k"))]).toEqual(before);
    }
    // A write of the visible type lands there, and its delta carries it to a replica that
    // has only the counter side.
    const w = delta(n2, { kind: "set", key: "k", value: bytes("again") }, T + 8_000);
    const v = n2.get("k") as KeyValue;
    expect(v.type === "lww" && new TextDecoder().decode(v.value)).toBe("again");
    expect(v.conflicts).toEqual([{ type: "pncounter", value: 1n }]);
    const n3 = new Engine({ actor: "node-3" });
    ok(n3.mergeDelta(delta(new Engine({ actor: "node-4" }), { kind: "incr", key: "k", amount: 2n }, T + 9_000), T + 9_000));
    ok(n3.mergeDelta(w, T + 9_000));
    expect(n3.typeOf("k")).toBe("lww");
  });

  test("a snapshot (scan + loadState) and a WAL replay (mergeDelta of what was logged) keep the conflict side", () => {
    const { n1, set, incr } = established();
    const wal = [set, incr]; // n1's own delta, then the remote one it merged
    ok(n1.mergeDelta(incr, T + 6_000));
    ok(n1.apply({ kind: "set", key: "other", value: bytes("x") }, T + 6_000));
    const fromSnapshot = new Engine({ actor: "node-1" });
    const scan = n1.scan();
    while (!scan.done) for (const it of scan.next()) ok(fromSnapshot.loadState(it.key, it.state));
    expect(view(fromSnapshot, "k")).toBe(view(n1, "k"));
    expect(view(fromSnapshot, "other")).toBe(view(n1, "other"));
    expectLwwWithCounterSide(fromSnapshot);
    const fromWal = new Engine({ actor: "node-1" });
    for (const d of wal) ok(fromWal.mergeDelta(d, T + 6_000));
    expect(view(fromWal, "k")).toBe(view(n1, "k"));
    // Loading a single-type state over a conflicted key replaces it whole (recovery semantics).
    ok(fromSnapshot.loadState("k", encodeEnvelope(keyUtf8("k") as Uint8Array, new LwwRegister())));
    expect(fromSnapshot.get("k")?.conflicts).toBeUndefined();
  });

  test("concurrent creation with several types converges to one visible type, keeping every side, in every delivery order", () => {
    const kinds: EngineOp["kind"][] = ["incr", "decr", "set", "setMv", "sadd"];
    const opOf = (kind: EngineOp["kind"], n: number, gcounter: boolean): EngineOp => {
      switch (kind) {
        case "incr":
          return gcounter ? { kind, key: "k", amount: BigInt(n + 1), counter: "gcounter" } : { kind, key: "k", amount: BigInt(n + 1) };
        case "decr":
          return { kind, key: "k", amount: BigInt(n + 1) };
        case "set":
          return { kind, key: "k", value: Uint8Array.of(n) };
        case "setMv":
          return { kind, key: "k", value: Uint8Array.of(n), context: null };
        case "sadd":
        case "srem":
          return { kind, key: "k", members: [Uint8Array.of(n + 1)] };
      }
    };
    const write = fc.record({ node: fc.nat(3), kind: fc.constantFrom(...kinds), g: fc.boolean(), n: fc.nat(9), dt: fc.nat(3) });
    const delivery = fc.record({ to: fc.nat(3), which: fc.nat(), asState: fc.boolean() });
    checkProperty("type conflict convergence", fc.property(fc.array(write, { minLength: 1, maxLength: 12 }), fc.array(delivery, { maxLength: 30 }), (writes, deliveries) => {
      const nodes = [0, 1, 2, 3].map((i) => new Engine({ actor: `node-${i}` }));
      const deltas: Uint8Array[] = [];
      /** Each node's own first accepted write's type: every one must survive the merge. */
      const created = new Set<KeyValue["type"]>();
      let now = T;
      const step = (k: number): void => {
        const w = writes[k];
        if (w === undefined) return;
        now += w.dt;
        const e = nodes[w.node] as Engine;
        const r = e.apply(opOf(w.kind, w.n, w.g), now);
        if (r.ok && r.delta !== null) {
          deltas.push(r.delta);
          created.add(r.value.type);
        }
      };
      // Writes interleaved with partial, random deliveries (deltas or full states)...
      let k = 0;
      for (const d of deliveries) {
        step(k++);
        if (deltas.length === 0) continue;
        const to = nodes[d.to] as Engine;
        if (d.asState) {
          const from = nodes[(d.to + 1 + (d.which % 3)) % 4] as Engine;
          const s = from.encodeState("k");
          if (s !== undefined) ok(to.mergeState("k", s, now));
        } else ok(to.mergeDelta(deltas[d.which % deltas.length] as Uint8Array, now));
      }
      while (k < writes.length) step(k++);
      // ... then everyone receives everything, each in its own rotated order.
      nodes.forEach((n, i) => {
        const r = deltas.length === 0 ? 0 : (i * 7) % deltas.length;
        for (const d of [...deltas.slice(r), ...deltas.slice(0, r)]) ok(n.mergeDelta(d, now));
      });
      const first = nodes[0] as Engine;
      for (const n of nodes) expect(view(n, "k")).toBe(view(first, "k"));
      const v = first.get("k") as KeyValue;
      const types = [v.type, ...(v.conflicts ?? []).map((c) => c.type)];
      expect(new Set(types)).toEqual(created);
      // A refused local op of a hidden type leaves every replica equal.
      for (const c of v.conflicts ?? []) {
        const kind = c.type === "lww" ? "set" : c.type === "mv" ? "setMv" : c.type === "set" ? "sadd" : c.type === "pncounter" ? "decr" : "incr";
        const op = opOf(kind, 1, c.type === "gcounter");
        const r = first.apply(op, now);
        expect(r.ok ? "ok" : r.error.code).toBe("WRONG_TYPE");
      }
      for (const n of nodes) expect(view(n, "k")).toBe(view(first, "k"));
    }), 0.3);
  });
});
