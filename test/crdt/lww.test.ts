// HLC monotonicity and the LWW-Register under clock skew.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { HybridClock, hlcCompare, hlcLogicalMax, hlcMsMax, internActor, LwwRegister, type Hlc } from "../../src/crdt/index.ts";
import { checkProperty } from "./prop.ts";

describe("HybridClock", () => {
  test("timestamps strictly increase across local events and remote updates, whatever physical time does", () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant("local" as const), phys: fc.integer({ min: 0, max: 50 }) }),
      fc.record({
        kind: fc.constant("remote" as const),
        phys: fc.integer({ min: 0, max: 50 }),
        ms: fc.integer({ min: 0, max: 120 }),
        logical: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(hlcLogicalMax)),
      }),
    );
    checkProperty("HLC monotonic", fc.property(fc.array(step, { maxLength: 50 }), (steps) => {
      const c = new HybridClock(10);
      let last: Hlc = { ms: 0, logical: 0 };
      for (const s of steps) {
        if (s.kind === "local") {
          const t = c.now(s.phys);
          expect(hlcCompare(t, last)).toBe(1);
          expect(t.ms).toBeGreaterThanOrEqual(s.phys);
          last = t;
        } else {
          const remote = { ms: s.ms, logical: s.logical };
          const skew = c.observe(remote, s.phys);
          expect(skew !== null).toBe(s.ms - s.phys > 10);
          const t = c.current();
          expect(hlcCompare(t, remote)).toBe(1); // later local events exceed what was observed
          expect(hlcCompare(t, last)).toBe(1);
          last = t;
        }
      }
    }), 0.5);
  });

  test("logical counter overflow advances the milliseconds", () => {
    const c = new HybridClock();
    c.observe({ ms: 100, logical: hlcLogicalMax - 1 }, 100);
    expect(c.current()).toEqual({ ms: 100, logical: hlcLogicalMax });
    expect(c.now(100)).toEqual({ ms: 101, logical: 0 });
  });

  test("a remote timestamp at the very end of time is taken in without crashing", () => {
    const c = new HybridClock();
    c.observe({ ms: hlcMsMax, logical: hlcLogicalMax }, 5);
    expect(c.now(6)).toEqual({ ms: hlcMsMax, logical: hlcLogicalMax });
  });
});

describe("LwwRegister", () => {
  test("with one actor 60 s ahead, a later write by the lagging actor that saw it still wins", () => {
    const ahead = internActor("ahead");
    const behind = internActor("behind");
    const clockAhead = new HybridClock(1000);
    const clockBehind = new HybridClock(1000);
    const t0 = 1_700_000_000_000;
    const ra = new LwwRegister();
    const rb = new LwwRegister();
    const d1 = ra.set(ahead, Uint8Array.of(1), clockAhead.now(t0 + 60_000));
    // The lagging node receives it: accepted, but reported as skew.
    rb.merge(d1);
    const skew = clockBehind.observe(d1.timestamp(), t0 + 10);
    expect(skew).not.toBeNull();
    expect(skew?.aheadMs).toBe(59_990);
    // Its next write, made 10 ms later by its own wall clock, wins everywhere.
    const d2 = rb.set(behind, Uint8Array.of(2), clockBehind.now(t0 + 20));
    ra.merge(d2);
    expect(Array.from(ra.value)).toEqual([2]);
    expect(Array.from(rb.value)).toEqual([2]);
    expect(ra.equals(rb)).toBe(true);
  });

  test("equal timestamps are ordered by actor id", () => {
    const x = internActor("x-actor");
    const y = internActor("y-actor");
    const ts = { ms: 5, logical: 0 };
    const r1 = new LwwRegister();
    r1.set(y, Uint8Array.of(9), ts);
    const r2 = new LwwRegister();
    r2.set(x, Uint8Array.of(8), ts);
    const a = r1.clone();
    a.merge(r2);
    const b = r2.clone();
    b.merge(r1);
    expect(Array.from(a.value)).toEqual([9]);
    expect(Array.from(b.value)).toEqual([9]);
  });

  test("a write that would not order after the current one is refused and changes nothing", () => {
    const x = internActor("x-actor");
    const r = new LwwRegister();
    r.set(x, Uint8Array.of(1), { ms: 10, logical: 0 });
    expect(() => r.set(x, Uint8Array.of(2), { ms: 9, logical: 0 })).toThrow();
    expect(Array.from(r.value)).toEqual([1]);
  });
});
