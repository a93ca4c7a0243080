// Hash keys through the engine: HSET/HDEL/HINCRBY answer Redis's integers, reads go through get,
// deltas carry the observed-remove semantics between nodes, a refused op changes nothing, and
// the write bounds hold (a hash that would pass the state byte bound is LIMIT_EXCEEDED).

import { describe, expect, test } from "bun:test";
import { Engine, type HashResult, type KeyValue } from "../../src/engine/index.ts";
import { keyStateWriteBytesMax, registerValueBytesMax } from "../../src/limits.ts";

const T = 1_000_000;
const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string): Uint8Array => enc.encode(s);

function ok(r: HashResult): { reply: bigint; delta: Uint8Array | null } {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r;
}

function merged(e: Engine, delta: Uint8Array | null): void {
  if (delta === null) throw new Error("no delta");
  const r = e.mergeDelta(delta, T);
  if (!r.ok) throw new Error(r.error.message);
}

/** The hash as "field=value" lines, or null if the key is missing. */
function fields(v: KeyValue | undefined): string[] | null {
  if (v === undefined) return null;
  if (v.type !== "hash") throw new Error(`not a hash: ${v.type}`);
  return v.fields.map((f) => `${dec.decode(f.field)}=${dec.decode(f.value)}`);
}

describe("engine hash ops", () => {
  test("HSET answers the fields added, HINCRBY the new value, HDEL the fields removed; get shows the fields", () => {
    const e = new Engine({ actor: "n1" });
    expect(ok(e.applyHash({ kind: "hset", key: "h", pairs: [{ field: b("a"), value: b("1") }, { field: b("b"), value: b("x") }] }, T)).reply).toBe(2n);
    expect(ok(e.applyHash({ kind: "hset", key: "h", pairs: [{ field: b("a"), value: b("2") }] }, T)).reply).toBe(0n);
    expect(ok(e.applyHash({ kind: "hincrby", key: "h", field: b("a"), amount: 40n }, T)).reply).toBe(42n);
    expect(ok(e.applyHash({ kind: "hincrby", key: "h", field: b("c"), amount: -3n }, T)).reply).toBe(-3n);
    expect(fields(e.get("h"))).toEqual(["a=42", "b=x", "c=-3"]);
    expect(e.typeOf("h")).toBe("hash");
    const del = ok(e.applyHash({ kind: "hdel", key: "h", fields: [b("a"), b("zz")] }, T));
    expect(del.reply).toBe(1n);
    expect(fields(e.get("h"))).toEqual(["b=x", "c=-3"]);
  });

  test("HDEL of absent fields or of a missing key changes nothing and has no delta; the missing key is not created", () => {
    const e = new Engine({ actor: "n1" });
    expect(e.applyHash({ kind: "hdel", key: "nokey", fields: [b("f")] }, T)).toEqual({ ok: true, reply: 0n, delta: null });
    expect(e.has("nokey")).toBe(false);
    ok(e.applyHash({ kind: "hset", key: "h", pairs: [{ field: b("f"), value: b("v") }] }, T));
    const before = e.encodeState("h");
    expect(e.applyHash({ kind: "hdel", key: "h", fields: [b("g")] }, T)).toEqual({ ok: true, reply: 0n, delta: null });
    expect(e.encodeState("h")).toEqual(before);
    const many = e.applyMany([{ kind: "hdel", key: "h", fields: [b("g")] }, { kind: "hdel", key: "h", fields: [b("f")] }], T);
    expect(many.results.map((r) => (r.ok ? r.reply : r.error.code))).toEqual([0n, 1n]);
    expect(many.deltas.length).toBe(1);
  });

  test("a hash op on another type, and another type's op on a hash, is WRONG_TYPE and changes nothing", () => {
    const e = new Engine({ actor: "n1" });
    e.apply({ kind: "incr", key: "c", amount: 1n }, T);
    e.apply({ kind: "set", key: "r", value: b("v") }, T);
    for (const key of ["c", "r"]) {
      const r = e.applyHash({ kind: "hset", key, pairs: [{ field: b("f"), value: b("v") }] }, T);
      expect(r.ok ? "ok" : r.error.code).toBe("WRONG_TYPE");
    }
    ok(e.applyHash({ kind: "hset", key: "h", pairs: [{ field: b("f"), value: b("v") }] }, T));
    const before = e.encodeState("h");
    const r = e.apply({ kind: "incr", key: "h", amount: 1n }, T);
    expect(r.ok ? "ok" : r.error.code).toBe("WRONG_TYPE");
    const notInt = e.applyHash({ kind: "hincrby", key: "h", field: b("f"), amount: 1n }, T);
    expect(notInt.ok ? "ok" : `${notInt.error.code}: ${notInt.error.message}`).toBe("INVALID: hash value is not an integer");
    expect(e.encodeState("h")).toEqual(before);
  });

  test("two nodes: an HSET the other's HDEL did not see survives; an HDEL'd counter keeps only the unseen increment", () => {
    const n1 = new Engine({ actor: "n1" });
    const n2 = new Engine({ actor: "n2" });
    merged(n2, ok(n1.applyHash({ kind: "hset", key: "h", pairs: [{ field: b("name"), value: b("v1") }] }, T)).delta);
    merged(n2, ok(n1.applyHash({ kind: "hincrby", key: "h", field: b("hits"), amount: 5n }, T)).delta);
    const del = ok(n1.applyHash({ kind: "hdel", key: "h", fields: [b("name"), b("hits")] }, T)).delta;
    const set = ok(n2.applyHash({ kind: "hset", key: "h", pairs: [{ field: b("name"), value: b("v2") }] }, T + 1)).delta;
    const inc = ok(n2.applyHash({ kind: "hincrby", key: "h", field: b("hits"), amount: 2n }, T + 1)).delta;
    merged(n1, set);
    merged(n1, inc);
    merged(n2, del);
    expect(fields(n1.get("h"))).toEqual(["hits=2", "name=v2"]);
    expect(fields(n2.get("h"))).toEqual(["hits=2", "name=v2"]);
    expect(n1.digest("h")).toBe(n2.digest("h") as bigint);
    // A full state (anti-entropy, snapshot) loads to the same value.
    const n3 = new Engine({ actor: "n3" });
    const loaded = n3.loadState("h", n1.encodeState("h") as Uint8Array);
    expect(loaded.ok).toBe(true);
    expect(fields(n3.get("h"))).toEqual(["hits=2", "name=v2"]);
  });

  test("an HSET that would take the hash past the state write bound is LIMIT_EXCEEDED and changes nothing", () => {
    const e = new Engine({ actor: "n1" });
    const big = new Uint8Array(registerValueBytesMax);
    let refused: HashResult | null = null;
    let written = 0;
    for (let k = 0; k < keyStateWriteBytesMax / registerValueBytesMax + 2 && refused === null; k++) {
      const r = e.applyHash({ kind: "hset", key: "h", pairs: [{ field: b(`f${k}`), value: big }] }, T);
      if (r.ok) written++;
      else refused = r;
    }
    expect(refused?.ok === false ? refused.error.code : "none").toBe("LIMIT_EXCEEDED");
    expect(written).toBeGreaterThanOrEqual(3);
    expect((e.encodeState("h") as Uint8Array).length).toBeLessThanOrEqual(keyStateWriteBytesMax + 2048);
    expect(fields(e.get("h"))?.length).toBe(written);
    // Replacing a field's value with a small one still works at the bound.
    expect(ok(e.applyHash({ kind: "hset", key: "h", pairs: [{ field: b("f0"), value: b("small") }] }, T)).reply).toBe(0n);
  });

  test("the two-node timeline of docs/api.md (Hashes) gives what the doc says", () => {
    const n1 = new Engine({ actor: "node-1" });
    const n2 = new Engine({ actor: "node-2" });
    merged(n2, ok(n1.applyHash({ kind: "hset", key: "h", pairs: [{ field: b("name"), value: b("ada") }] }, T)).delta);
    merged(n2, ok(n1.applyHash({ kind: "hincrby", key: "h", field: b("hits"), amount: 5n }, T)).delta);
    const del = ok(n1.applyHash({ kind: "hdel", key: "h", fields: [b("name"), b("hits")] }, T + 1));
    expect(del.reply).toBe(2n);
    const set = ok(n2.applyHash({ kind: "hset", key: "h", pairs: [{ field: b("name"), value: b("bob") }] }, T + 1));
    expect(set.reply).toBe(0n);
    const inc = ok(n2.applyHash({ kind: "hincrby", key: "h", field: b("hits"), amount: 2n }, T + 1));
    expect(inc.reply).toBe(7n);
    merged(n1, set.delta);
    merged(n1, inc.delta);
    merged(n2, del.delta);
    expect(fields(n1.get("h"))).toEqual(["hits=2", "name=bob"]);
    expect(fields(n2.get("h"))).toEqual(["hits=2", "name=bob"]);
    const del2 = ok(n1.applyHash({ kind: "hdel", key: "h", fields: [b("hits")] }, T + 2));
    expect(del2.reply).toBe(1n);
    const inc2 = ok(n1.applyHash({ kind: "hincrby", key: "h", field: b("hits"), amount: 1n }, T + 2));
    expect(inc2.reply).toBe(1n);
    merged(n2, del2.delta);
    merged(n2, inc2.delta);
    expect(fields(n2.get("h"))).toEqual(["hits=1", "name=bob"]);
    // Equal timestamps: the greater node id shows; the next HSET, having seen both, replaces both.
    const r = ok(n1.applyHash({ kind: "hset", key: "c", pairs: [{ field: b("color"), value: b("red") }] }, 5 * T));
    const bl = ok(n2.applyHash({ kind: "hset", key: "c", pairs: [{ field: b("color"), value: b("blue") }] }, 5 * T));
    merged(n1, bl.delta);
    merged(n2, r.delta);
    expect(fields(n1.get("c"))).toEqual(["color=blue"]);
    expect(fields(n2.get("c"))).toEqual(["color=blue"]);
    merged(n2, ok(n1.applyHash({ kind: "hset", key: "c", pairs: [{ field: b("color"), value: b("green") }] }, 5 * T)).delta);
    expect(fields(n2.get("c"))).toEqual(["color=green"]);
  });
});
