// The node's translation of set reads (SMembers, SIsMember, SCard) from engine reads: a missing
// key is the empty set, another type is FAILED_PRECONDITION, and membership is exact for every
// member and non-member of a set.
import { expect, test } from "bun:test";
import { Engine } from "../../src/engine/index.ts";
import { outcomeOf, toManyOp } from "../../src/node/ops.ts";
import type { ClientOp, OpOutcome } from "../../src/transport/api.ts";

const T = 1_700_000_000_000;
const enc = new TextEncoder();

function read(e: Engine, op: ClientOp): OpOutcome {
  const { results } = e.applyMany([toManyOp(op, T)], T);
  return outcomeOf(op, results[0] as Parameters<typeof outcomeOf>[1], T);
}

test("set reads: members, membership of each member and non-member, count; missing key; another type", () => {
  const e = new Engine({ actor: "n1" });
  const members = Array.from({ length: 37 }, (_, i) => enc.encode(`m${i * 3}`));
  e.apply({ kind: "sadd", key: "s", members }, T);
  e.apply({ kind: "incr", key: "c", amount: 1n }, T);
  for (let i = 0; i < 37 * 3 + 2; i++) {
    const o = read(e, { kind: "sismember", key: "s", member: enc.encode(`m${i}`) });
    expect(o).toEqual({ ok: true, result: { kind: "isMember", value: i % 3 === 0 && i < 37 * 3 } });
  }
  expect(read(e, { kind: "scard", key: "s" })).toEqual({ ok: true, result: { kind: "count", value: 37 } });
  const all = read(e, { kind: "smembers", key: "s" });
  expect(all.ok && all.result.kind === "members" ? all.result.members.length : -1).toBe(37);
  expect(read(e, { kind: "smembers", key: "none" })).toEqual({ ok: true, result: { kind: "members", members: [] } });
  expect(read(e, { kind: "scard", key: "none" })).toEqual({ ok: true, result: { kind: "count", value: 0 } });
  expect(read(e, { kind: "sismember", key: "none", member: enc.encode("m0") })).toEqual({ ok: true, result: { kind: "isMember", value: false } });
  for (const op of [{ kind: "smembers", key: "c" }, { kind: "scard", key: "c" }, { kind: "sismember", key: "c", member: enc.encode("x") }] as ClientOp[]) {
    expect(read(e, op)).toEqual({ ok: false, error: { code: "FAILED_PRECONDITION", message: 'key "c" holds a pncounter, not a set' } });
  }
  // A write on the wrong type says the same through the engine.
  const wrong = read(e, { kind: "sadd", key: "c", members: [enc.encode("x")] });
  expect(wrong.ok ? "ok" : wrong.error.code).toBe("FAILED_PRECONDITION");
});
