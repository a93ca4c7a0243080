// What one SADD/SREM answers on the node's write path (Engine.applyMany): its count, not the
// set's member list, which made every add O(members) (146 -> 2.8 us at 50,000 members; the
// cost itself is a benchmark's business, `imdb bench resp`, not a timed assertion here).
import { describe, expect, test } from "bun:test";
import { Engine, type ManyOp } from "../../src/engine/index.ts";

const T = 1_700_000_000_000;
const enc = new TextEncoder();

/** An engine whose key "s" holds `n` members. */
function setOf(n: number): Engine {
  const e = new Engine({ actor: "n1" });
  for (let i = 0; i < n; i += 1000) {
    const ops: ManyOp[] = [];
    for (let k = i; k < Math.min(n, i + 1000); k++) ops.push({ kind: "sadd", key: "s", members: [enc.encode(`member:${k}`)] });
    e.applyMany(ops, T);
  }
  return e;
}

describe("SADD and SREM in applyMany", () => {
  test("answer the count of members added or removed and no value, and the set holds them", () => {
    const e = setOf(3);
    const { results } = e.applyMany([
      { kind: "sadd", key: "s", members: [enc.encode("member:0"), enc.encode("new")] },
      { kind: "srem", key: "s", members: [enc.encode("member:1"), enc.encode("absent")] },
      { kind: "srem", key: "s", members: [enc.encode("absent")] },
    ], T);
    expect(results).toEqual([
      { ok: true, value: undefined, count: 1 },
      { ok: true, value: undefined, count: 1 },
      { ok: true, value: undefined, count: 0 },
    ]);
    const v = e.get("s");
    expect(v?.type === "set" ? v.members.map((x) => new TextDecoder().decode(x)) : null).toEqual(["member:0", "member:2", "new"]);
  });
});
