// A finding of the chaos TTL scenario (issue 14), at the engine: a replica that collected a key's
// record and wrote the key again issued its own dots (set) or counts (counter) from zero again,
// while another member that had not collected that record yet still held them as removed, so it
// dropped the new write, and its state later removed the write on the writer too. Now a write of
// a key collected lately puts the record back first and continues from it, and a counter's delta
// carries its actor's reset row, so both a member that holds the record and one that never did
// count exactly the new writes.
import { expect, test } from "bun:test";
import { Engine } from "../../src/engine/index.ts";
import { bytes, merge, run, T } from "./apply-helpers.ts";

function members(e: Engine, nowMs: number): string {
  const v = e.get("k", nowMs);
  if (v === undefined) return "(absent)";
  return v.type === "set" ? v.members.map((m) => new TextDecoder().decode(m)).sort().join(",") : v.type;
}

/** a writes two members, removes them (delete or expiry), c receives all; a collects its record, c not yet. */
function collectedOnA(how: "del" | "expire"): { a: Engine; c: Engine } {
  const a = new Engine({ actor: "a" });
  const c = new Engine({ actor: "c" });
  merge(c, [...run(a, { kind: "sadd", key: "k", members: [bytes("x1")] }, T), ...run(a, { kind: "sadd", key: "k", members: [bytes("x2")] }, T)], T);
  merge(c, how === "del" ? run(a, { kind: "del", key: "k" }, T) : run(a, { kind: "expire", key: "k", atMs: T, cond: null }, T), T);
  expect(a.collect("k", a.digest("k") as bigint)).toBe(true);
  return { a, c };
}

test("a member without the record (it collected it, or never had it) takes the new writes too", () => {
  for (const how of ["del", "expire"] as const) {
    const { a, c } = collectedOnA(how);
    expect(c.digest("k")).toBeDefined();
    expect(members(c, T)).toBe("(absent)");
    const fresh = run(a, { kind: "sadd", key: "k", members: [bytes("fresh")] }, T + 1);
    expect(members(a, T + 1)).toBe("fresh");
    const d = new Engine({ actor: "d" });
    merge(d, fresh, T + 1);
    expect(members(d, T + 1)).toBe("fresh");
  }
  const a = new Engine({ actor: "a" });
  run(a, { kind: "incr", key: "k", amount: 10n }, T);
  run(a, { kind: "del", key: "k" }, T);
  expect(a.collect("k", a.digest("k") as bigint)).toBe(true);
  const d = new Engine({ actor: "d" });
  merge(d, run(a, { kind: "incr", key: "k", amount: 3n }, T + 1), T + 1);
  expect(d.get("k", T + 1)).toMatchObject({ value: 3n });
  expect(a.get("k", T + 1)).toMatchObject({ value: 3n });
});

for (const how of ["del", "expire"] as const) {
  test(`a set member added after its key's record was collected (${how}) reaches a member that still holds the record`, () => {
    const { a, c } = collectedOnA(how);
    const fresh = run(a, { kind: "sadd", key: "k", members: [bytes("fresh")] }, T + 1);
    expect(members(a, T + 1)).toBe("fresh");
    merge(c, fresh, T + 1);
    // Today: c reads "(absent)": a's new dot a:1 is one c's record says was removed.
    expect(members(c, T + 1)).toBe("fresh");
  });
}

test("an increment after a counter's record was collected reaches a member that still holds the record", () => {
  const a = new Engine({ actor: "a" });
  const c = new Engine({ actor: "c" });
  merge(c, run(a, { kind: "incr", key: "k", amount: 10n }, T), T);
  merge(c, run(a, { kind: "del", key: "k" }, T), T);
  expect(a.collect("k", a.digest("k") as bigint)).toBe(true);
  merge(c, run(a, { kind: "incr", key: "k", amount: 3n }, T + 1), T + 1);
  // Today: c reads nothing: a's row restarts at 3, below the 10 c's record removed.
  expect(c.get("k", T + 1)).toMatchObject({ value: 3n });
});
