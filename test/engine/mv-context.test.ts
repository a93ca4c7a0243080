// MV contexts through the engine (issue 12, findings 3 and 6): a Set answers the context of
// exactly what it replaced plus its own dot; a client's context is bound to its key, clamped to
// what this replica has seen, normalised, and decoded without interning the actors it names.

import { describe, expect, test } from "bun:test";
import { Engine, type ApplyResult, type KeyValue } from "../../src/engine/index.ts";
import {
  actorCount, CausalContext, dotBase, internActor, MvRegister, VersionVector, dotCounterMax, type ActorId, type Dot,
} from "../../src/crdt/index.ts";
import { contextKeyTag, encodeEnvelope, keyUtf8, WireType, Writer } from "../../src/codec/index.ts";

const T = 1_700_000_000_000;
const te = new TextEncoder();
const bytes = (s: string): Uint8Array => te.encode(s);
const text = (v: Uint8Array[]): string[] => v.map((x) => new TextDecoder().decode(x)).sort();

type Mv = Extract<KeyValue, { type: "mv" }>;

function ok(r: { ok: boolean }): void {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r)}`);
}
function written(r: ApplyResult): { value: Mv; delta: Uint8Array } {
  if (!r.ok || r.value.type !== "mv") throw new Error(`expected an MV write, got ${JSON.stringify(r)}`);
  return { value: r.value, delta: r.delta };
}
const mv = (e: Engine, key: string): Mv => e.get(key) as Mv;
const snap = (e: Engine, key: string): string => JSON.stringify([text(mv(e, key).values), Array.from(mv(e, key).context), String(e.digest(key))]);

/** Hand-written client context bytes: vector entries, cloud dots (any order, repeats allowed), key tag of `key`. */
function rawContext(key: string | null, vv: [string, number][], cloud: [string, number][]): Uint8Array {
  const w = new Writer();
  const row = (field: number, actor: string, counter: number): void => {
    const at = w.begin(field);
    w.tag(1, WireType.Bytes);
    w.bytes(bytes(actor));
    w.tag(2, WireType.Varint);
    w.uint(counter);
    w.end(at);
  };
  for (const [a, n] of vv) row(1, a, n);
  for (const [a, n] of cloud) row(2, a, n);
  if (key !== null) {
    const [hi, lo] = contextKeyTag(keyUtf8(key) as Uint8Array);
    w.tag(3, WireType.Fixed64);
    w.fixed64(hi, lo);
  }
  return w.finish();
}

describe("MV Set answers the context of what it replaced (finding 3)", () => {
  test("chaining Set -> Set with the answer keeps a sibling the writer never read", () => {
    const n1 = new Engine({ actor: "n1" });
    const n2 = new Engine({ actor: "n2" });
    ok(n1.mergeDelta(written(n2.apply({ kind: "setMv", key: "m", value: bytes("theirs"), context: new Uint8Array(0) }, T)).delta, T));
    // A writer that read nothing writes blind, then rewrites its own value with the answer.
    const first = written(n1.apply({ kind: "setMv", key: "m", value: bytes("mine-1"), context: new Uint8Array(0) }, T));
    expect(text(first.value.values)).toEqual(["mine-1", "theirs"]);
    const second = written(n1.apply({ kind: "setMv", key: "m", value: bytes("mine-2"), context: first.value.context }, T));
    expect(text(second.value.values)).toEqual(["mine-2", "theirs"]);
    ok(n2.mergeDelta(first.delta, T));
    ok(n2.mergeDelta(second.delta, T));
    expect(text(mv(n2, "m").values)).toEqual(["mine-2", "theirs"]);
    // The answer still replaces what the writer did read: a Get's context covers both.
    const all = written(n1.apply({ kind: "setMv", key: "m", value: bytes("merged"), context: mv(n1, "m").context }, T));
    expect(text(all.value.values)).toEqual(["merged"]);
  });
});

describe("client contexts are not trusted (finding 6)", () => {
  test("a context read from another key is refused INVALID and deletes nothing", () => {
    const e = new Engine({ actor: "n1" });
    written(e.apply({ kind: "setMv", key: "a", value: bytes("a1"), context: null }, T));
    written(e.apply({ kind: "setMv", key: "b", value: bytes("b1"), context: null }, T));
    const before = snap(e, "b");
    const r = e.apply({ kind: "setMv", key: "b", value: bytes("b2"), context: mv(e, "a").context }, T);
    expect(r.ok ? "ok" : r.error.code).toBe("INVALID");
    expect(snap(e, "b")).toBe(before);
    // A context with dots but no key binding (hand-made, or from before binding) is refused too.
    const unbound = e.apply({ kind: "setMv", key: "b", value: bytes("b2"), context: rawContext(null, [["n1", 1]], []) }, T);
    expect(unbound.ok ? "ok" : unbound.error.code).toBe("INVALID");
    expect(snap(e, "b")).toBe(before);
  });

  test("a forged counter near 2^53 neither makes the key unwritable nor deletes an unseen write", () => {
    const n1 = new Engine({ actor: "n1" });
    const n2 = new Engine({ actor: "n2" });
    written(n1.apply({ kind: "setMv", key: "m", value: bytes("v1"), context: null }, T));
    const unseen = written(n2.apply({ kind: "setMv", key: "m", value: bytes("n2-acked"), context: null }, T));
    const forged = rawContext("m", [["n1", dotCounterMax], ["n2", dotCounterMax]], [["n2", 7]]);
    const w = written(n1.apply({ kind: "setMv", key: "m", value: bytes("v2"), context: forged }, T));
    expect(text(w.value.values)).toEqual(["v2"]);
    for (let k = 0; k < 3; k++) written(n1.apply({ kind: "setMv", key: "m", value: bytes(`v${k + 3}`), context: mv(n1, "m").context }, T));
    ok(n1.mergeDelta(unseen.delta, T));
    expect(text(mv(n1, "m").values)).toEqual(["n2-acked", "v5"]);
    ok(n2.mergeDelta(w.delta, T));
    expect(text(mv(n2, "m").values)).toContain("n2-acked");
  });

  test("actors named in a client context are not interned", () => {
    const e = new Engine({ actor: "n1" });
    written(e.apply({ kind: "setMv", key: "m", value: bytes("v"), context: null }, T));
    const before = actorCount();
    const names: [string, number][] = Array.from({ length: 500 }, (_, i) => [`stranger-${i}-${before}`, 3]);
    const r = e.apply({ kind: "setMv", key: "m", value: bytes("w"), context: rawContext("m", names, names) }, T);
    ok(r);
    expect(actorCount()).toBe(before);
    expect(text(mv(e, "m").values)).toEqual(["v", "w"]); // the strangers' dots covered nothing
  });

  test("equal dot sets in any shape (repeats, covered or unsorted cloud dots) give equal states and digests", () => {
    // A replica that saw r's dots 1 and 3 but not 2 (deltas delivered out of order).
    const source = new Engine({ actor: "r" });
    const deltas = [1, 2, 3].map((k) => written(source.apply({ kind: "setMv", key: "m", value: bytes(`r${k}`), context: new Uint8Array(0) }, T)).delta);
    const replicas = [0, 1, 2].map(() => new Engine({ actor: "n1" }));
    for (const e of replicas) { ok(e.mergeDelta(deltas[0] as Uint8Array, T)); ok(e.mergeDelta(deltas[2] as Uint8Array, T)); }
    // r's dots start above its base in a key it holds nothing of (crdt/clocks.ts dotBase): b+1..b+3.
    const b = dotBase(T);
    const shapes = [
      rawContext("m", [["r", b + 1]], [["r", b + 3]]),
      rawContext("m", [["r", b + 1], ["r", b + 1]], [["r", b + 3], ["r", b + 1], ["r", b + 3]]),
      rawContext("m", [["r", b]], [["r", b + 3], ["r", b + 1], ["r", b + 3], ["r", b + 1]]),
    ];
    const answers = replicas.map((e, i) => written(e.apply({ kind: "setMv", key: "m", value: bytes("x"), context: shapes[i] as Uint8Array }, T)));
    for (const a of answers) expect(Array.from(a.delta)).toEqual(Array.from((answers[0] as (typeof answers)[0]).delta));
    for (const e of replicas) expect(snap(e, "m")).toBe(snap(replicas[0] as Engine, "m"));
    expect(text(mv(replicas[0] as Engine, "m").values)).toEqual(["x"]);
    // r's second write, which none of them had seen, survives as a sibling everywhere.
    for (const e of replicas) ok(e.mergeDelta(deltas[1] as Uint8Array, T));
    for (const e of replicas) expect(snap(e, "m")).toBe(snap(replicas[0] as Engine, "m"));
    expect(text(mv(replicas[0] as Engine, "m").values)).toEqual(["r2", "x"]);
  });

  test("a peer delta whose context repeats a dot leaves the same digest as the canonical one", () => {
    const r = internActor("peer-r");
    const dot = (counter: number): Dot => ({ actor: r, counter });
    // Context {r:1} + cloud {r:3}, once canonical and once with r:3 repeated.
    const entries = [{ dot: dot(3), value: bytes("v3") }];
    const canonical = new MvRegister(entries, new CausalContext(new VersionVector([r as ActorId], [1]), [dot(3)]));
    const repeated = new MvRegister(entries, new CausalContext(new VersionVector([r as ActorId], [1]), [dot(3), dot(3)]));
    const key = keyUtf8("m") as Uint8Array;
    const x = new Engine({ actor: "n1" });
    const y = new Engine({ actor: "n2" });
    ok(x.mergeDelta(encodeEnvelope(key, canonical), T));
    ok(y.mergeDelta(encodeEnvelope(key, repeated), T));
    expect(y.digest("m")).toBe(x.digest("m") as bigint);
    expect(y.encodeState("m")).toEqual(x.encodeState("m") as Uint8Array);
  });
});
