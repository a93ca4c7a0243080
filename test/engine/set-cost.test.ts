// What one SADD/SREM costs the node's write path (Engine.applyMany): its count, not the set's
// member list, so an add into a big set costs about what one into a small set does (Redis's
// SADD is O(1) per member; redis-benchmark adds to one key, "myset").
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

/** The least time (ms) `opsPerRound` single-member SADDs of new members took, over `rounds` rounds. */
function fastestRound(e: Engine, tag: string, rounds: number, opsPerRound: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let k = 0; k < opsPerRound; k++) e.applyMany([{ kind: "sadd", key: "s", members: [enc.encode(`${tag}:${r}:${k}`)] }], T);
    best = Math.min(best, performance.now() - t0);
  }
  return best;
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

  test("an SADD into a set of 50,000 members costs about what one into 1,000 members does", () => {
    const small = setOf(1000);
    const big = setOf(50_000);
    // Warm both up first; the fastest of several rounds leaves out pauses the machine causes.
    fastestRound(small, "warm", 3, 200);
    fastestRound(big, "warm", 3, 200);
    const smallMs = fastestRound(small, "run", 7, 200);
    const bigMs = fastestRound(big, "run", 7, 200);
    // Building the member list on every add made the big set ~25x slower; in place it is ~1x
    // (50,000: half the write bound, past which an add is checked on a copy of the set).
    expect(bigMs).toBeLessThan(Math.max(smallMs, 0.2) * 5);
  });
});
