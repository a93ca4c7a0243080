// Counters merged outside int64 (issue 12, finding 5): an op whose result would still lie
// outside int64 is refused before it changes anything, on every engine path, and the node's
// edge never answers OUT_OF_RANGE for an op that was applied (a retry would count it twice).

import { describe, expect, test } from "bun:test";
import { Engine, type EngineOp, type ManyOp } from "../../src/engine/index.ts";
import { int64Max, int64Min } from "../../src/crdt/index.ts";
import { outcomeOf, toManyOp } from "../../src/node/ops.ts";
import type { ClientOp } from "../../src/transport/api.ts";

const T = 1_700_000_000_000;

function ok(r: { ok: boolean }): void {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r, (_k, v) => (typeof v === "bigint" ? String(v) : v))}`);
}

/** Engine "n1" holding key k merged from two replicas' deltas: value int64 max + 10 (up) or int64 min - 10. */
function overRange(up: boolean, key = "k"): Engine {
  const a = new Engine({ actor: "n1" });
  const b = new Engine({ actor: "n2" });
  const op = (amount: bigint): EngineOp => (up ? { kind: "incr", key, amount } : { kind: "decr", key, amount });
  const ra = a.apply(op(up ? int64Max : -int64Min - 1n), T);
  const rb = b.apply(op(up ? 10n : 11n), T);
  if (!ra.ok || !rb.ok || ra.delta === null || rb.delta === null) throw new Error("setup op refused");
  ok(a.mergeDelta(rb.delta, T));
  ok(b.mergeDelta(ra.delta, T));
  expect(a.get(key)).toEqual({ type: "pncounter", value: up ? int64Max + 10n : int64Min - 10n });
  return a;
}

const snap = (e: Engine, key: string): string => JSON.stringify([String((e.get(key) as { value: bigint }).value), String(e.digest(key)), e.encodeState(key)]);

describe("counters outside int64 (finding 5)", () => {
  for (const up of [true, false]) {
    const side = up ? "above int64 max" : "below int64 min";
    test(`${side}: apply refuses every op whose result stays outside, changing nothing and returning no delta`, () => {
      const e = overRange(up);
      const before = snap(e, "k");
      const refused: EngineOp[] = up
        ? [{ kind: "incr", key: "k", amount: 1n }, { kind: "decr", key: "k", amount: 1n }, { kind: "decr", key: "k", amount: 9n }]
        : [{ kind: "decr", key: "k", amount: 1n }, { kind: "incr", key: "k", amount: 1n }, { kind: "incr", key: "k", amount: 9n }];
      for (const op of refused) {
        const r = e.apply(op, T);
        expect(r.ok ? "applied" : r.error.code).toBe("OUT_OF_RANGE");
        expect(r.ok ? r.delta : undefined).toBeUndefined();
        expect(snap(e, "k")).toBe(before);
      }
      // The op that brings the value back into range is allowed.
      const back = e.apply(up ? { kind: "decr", key: "k", amount: 10n } : { kind: "incr", key: "k", amount: 10n }, T);
      expect(back.ok && back.value).toEqual({ type: "pncounter", value: up ? int64Max : int64Min });
    });

    test(`${side}: applyMany refuses the same ops, coalesces no delta for them, and applies the rest`, () => {
      const e = overRange(up);
      const before = snap(e, "k");
      const inc: ManyOp = { kind: "incr", key: "k", amount: 1n };
      const dec: ManyOp = { kind: "decr", key: "k", amount: 1n };
      const got = e.applyMany([inc, dec, inc, dec, { kind: "get", key: "k" }], T);
      expect(got.results.slice(0, 4).map((r) => (r.ok ? "ok" : r.error.code))).toEqual(["OUT_OF_RANGE", "OUT_OF_RANGE", "OUT_OF_RANGE", "OUT_OF_RANGE"]);
      expect(got.deltas).toEqual([]);
      expect(snap(e, "k")).toBe(before);
      // A compact counter key in the same batch still gets its (coalesced) delta.
      const mixed = e.applyMany([inc, { kind: "incr", key: "other", amount: 2n }, { kind: "incr", key: "other", amount: 3n }], T);
      expect(mixed.results[0]?.ok).toBe(false);
      expect(mixed.deltas.length).toBe(1);
      expect(snap(e, "k")).toBe(before);
      expect(e.get("other")).toEqual({ type: "pncounter", value: 5n });
    });
  }

  test("a G-Counter merged above int64 max refuses increments", () => {
    const a = new Engine({ actor: "n1" });
    const b = new Engine({ actor: "n2" });
    const ra = a.apply({ kind: "incr", key: "g", amount: int64Max, counter: "gcounter" }, T);
    const rb = b.apply({ kind: "incr", key: "g", amount: 1n, counter: "gcounter" }, T);
    if (!ra.ok || !rb.ok || ra.delta === null || rb.delta === null) throw new Error("setup op refused");
    ok(a.mergeDelta(rb.delta, T));
    const before = snap(a, "g");
    const r = a.applyMany([{ kind: "incr", key: "g", amount: 1n }], T);
    expect(r.results[0]?.ok).toBe(false);
    expect(r.deltas).toEqual([]);
    expect(snap(a, "g")).toBe(before);
  });

  test("the edge (outcomeOf) never answers OUT_OF_RANGE for an op that changed the state", () => {
    const amounts = [1n, 5n, 9n, 10n, 11n, 20n, int64Max];
    for (const up of [true, false]) {
      for (const kind of ["increment", "decrement"] as const) {
        for (const amount of amounts) {
          const e = overRange(up);
          const before = snap(e, "k");
          const op: ClientOp = { kind, key: "k", amount, ...(kind === "increment" ? { counter: null } : {}) } as ClientOp;
          const { results, deltas } = e.applyMany([toManyOp(op, T)], T);
          const outcome = outcomeOf(op, results[0] as (typeof results)[number], T);
          const changed = snap(e, "k") !== before;
          expect(changed).toBe(deltas.length > 0);
          if (!outcome.ok && outcome.error.code === "OUT_OF_RANGE") expect({ up, kind, amount, changed }).toEqual({ up, kind, amount, changed: false });
          if (changed) expect(outcome.ok).toBe(true);
        }
      }
    }
  });
});
