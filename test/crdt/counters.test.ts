// Counter edge cases: int64 overflow refusal leaves state unchanged; negative PN values.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { CrdtError, GCounter, int64Max, int64Min, internActor, PNCounter, uint64Max } from "../../src/crdt/index.ts";
import { decodeState, CrdtType, encodeState } from "../../src/codec/index.ts";
import { checkProperty } from "./prop.ts";

const a = internActor("a");
const b = internActor("b");

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof CrdtError) return e.code;
    throw e;
  }
  return "none";
}

describe("GCounter", () => {
  test("increment past int64 max is refused and changes nothing", () => {
    const g = new GCounter();
    g.inc(a, int64Max - 5n);
    const before = encodeState(g);
    expect(refusal(() => g.inc(b, 6n))).toBe("OUT_OF_RANGE");
    expect(refusal(() => g.inc(a, 6n))).toBe("OUT_OF_RANGE");
    expect(encodeState(g)).toEqual(before);
    g.inc(b, 5n);
    expect(g.value()).toBe(int64Max);
  });

  test("non-positive amounts are refused", () => {
    const g = new GCounter();
    expect(refusal(() => g.inc(a, 0n))).toBe("INVALID");
    expect(refusal(() => g.inc(a, -1n))).toBe("INVALID");
    expect(g.value()).toBe(0n);
  });

  test("the delta is the new count, so a duplicated delta does not double-count", () => {
    const g = new GCounter();
    const r = new GCounter();
    const d1 = g.inc(a, 5n);
    const d2 = g.inc(a, 7n);
    expect(d2.get(a)).toBe(12n);
    r.merge(d2);
    r.merge(d1);
    r.merge(d2);
    expect(r.value()).toBe(12n);
  });

  test("per-actor counts up to u64 max decode; a larger one is refused", () => {
    const g = new GCounter([a], [uint64Max]);
    const back = decodeState(CrdtType.GCounter, encodeState(g)) as GCounter;
    expect(back.get(a)).toBe(uint64Max);
    // and the value past int64 refuses further increments without changing anything
    expect(refusal(() => back.inc(a, 1n))).toBe("OUT_OF_RANGE");
  });
});

describe("PNCounter", () => {
  test("negative values read back correctly, including int64 min", () => {
    const p = new PNCounter();
    p.dec(a, 5n);
    expect(p.value()).toBe(-5n);
    p.inc(b, 2n);
    expect(p.value()).toBe(-3n);
    const back = decodeState(CrdtType.PNCounter, encodeState(p)) as PNCounter;
    expect(back.value()).toBe(-3n);
    const q = new PNCounter();
    q.dec(a, int64Max);
    q.dec(b, 1n);
    expect(q.value()).toBe(int64Min);
    expect((decodeState(CrdtType.PNCounter, encodeState(q)) as PNCounter).value()).toBe(int64Min);
  });

  test("any mutation that would leave int64 is refused and changes nothing", () => {
    const amount = fc.oneof(fc.bigInt({ min: 1n, max: 100n }), fc.bigInt({ min: 1n, max: int64Max }));
    const step = fc.record({ inc: fc.boolean(), actor: fc.constantFrom(a, b), amount });
    checkProperty("PN range", fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
      const p = new PNCounter();
      let model = 0n;
      const totals = new Map<string, bigint>(); // per actor and direction: must stay within u64
      for (const s of steps) {
        const before = encodeState(p);
        const next = s.inc ? model + s.amount : model - s.amount;
        const slot = `${s.actor}:${s.inc}`;
        const total = (totals.get(slot) ?? 0n) + s.amount;
        const code = refusal(() => (s.inc ? p.inc(s.actor, s.amount) : p.dec(s.actor, s.amount)));
        if (next > int64Max || next < int64Min || total > uint64Max) {
          expect(code).toBe("OUT_OF_RANGE");
          expect(encodeState(p)).toEqual(before);
        } else {
          expect(code).toBe("none");
          model = next;
          totals.set(slot, total);
        }
        expect(p.value()).toBe(model);
      }
    }), 0.2);
  });
});

describe("PNCounter merged outside int64 (finding 5)", () => {
  // Two replicas each stay within int64; their merge does not. An op on that state must be
  // refused whenever its result still lies outside int64, whichever direction it moves.
  function merged(sign: 1n | -1n): PNCounter {
    const x = new PNCounter();
    const y = new PNCounter();
    if (sign > 0n) { x.inc(a, int64Max); y.inc(b, 10n); } else { x.dec(a, int64Max); y.dec(b, 10n); }
    x.merge(y);
    return x;
  }

  test("above int64 max: an increment, or a decrement that stays above, is refused and changes nothing", () => {
    const p = merged(1n);
    expect(p.value()).toBe(int64Max + 10n);
    const before = encodeState(p);
    expect(refusal(() => p.dec(a, 1n))).toBe("OUT_OF_RANGE");
    expect(refusal(() => p.dec(b, 9n))).toBe("OUT_OF_RANGE");
    expect(refusal(() => p.inc(a, 1n))).toBe("OUT_OF_RANGE");
    expect(encodeState(p)).toEqual(before);
    // A decrement that lands back in range is allowed.
    const d = p.dec(b, 10n);
    expect(p.value()).toBe(int64Max);
    expect(d.n).toEqual([10n]);
  });

  test("below int64 min: a decrement, or an increment that stays below, is refused and changes nothing", () => {
    const p = merged(-1n);
    expect(p.value()).toBe(int64Min - 9n);
    const before = encodeState(p);
    expect(refusal(() => p.inc(a, 1n))).toBe("OUT_OF_RANGE");
    expect(refusal(() => p.inc(b, 8n))).toBe("OUT_OF_RANGE");
    expect(refusal(() => p.dec(a, 1n))).toBe("OUT_OF_RANGE");
    expect(encodeState(p)).toEqual(before);
    p.inc(b, 9n);
    expect(p.value()).toBe(int64Min);
  });
});
