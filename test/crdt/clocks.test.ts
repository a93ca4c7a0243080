// Version vectors compared through src/accel, and causal context compaction.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ClockOrder } from "../../src/accel/index.ts";
import { CausalContext, internActor, VersionVector, type ActorId } from "../../src/crdt/index.ts";
import { checkProperty } from "./prop.ts";

const pool: ActorId[] = ["p", "q", "r", "ä"].map(internActor);

function vv(counts: number[]): VersionVector {
  const v = new VersionVector();
  counts.forEach((n, i) => v.raise(pool[i] as ActorId, n));
  return v;
}

describe("VersionVector.compare", () => {
  test("matches the pointwise definition", () => {
    const arb = fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 });
    checkProperty("vv compare", fc.property(arb, arb, (x, y) => {
      const less = x.some((v, i) => v < (y[i] as number));
      const more = x.some((v, i) => v > (y[i] as number));
      const want = less && more ? ClockOrder.Concurrent : less ? ClockOrder.Before : more ? ClockOrder.After : ClockOrder.Equal;
      expect(vv(x).compare(vv(y))).toBe(want);
    }));
  });
});

describe("CausalContext", () => {
  test("compaction: equal dot sets give equal representations, and contains() is exact", () => {
    const dot = fc.record({ actor: fc.nat(3), counter: fc.integer({ min: 1, max: 6 }) });
    checkProperty("context compaction", fc.property(fc.array(dot, { maxLength: 20 }), fc.nat(), (dots, rot) => {
      const c1 = new CausalContext();
      const c2 = new CausalContext();
      const k = dots.length === 0 ? 0 : rot % dots.length;
      const shuffled = [...dots.slice(k), ...dots.slice(0, k)].reverse();
      for (const d of dots) c1.add({ actor: pool[d.actor] as ActorId, counter: d.counter });
      for (const d of shuffled) c2.add({ actor: pool[d.actor] as ActorId, counter: d.counter });
      expect(c1.equals(c2)).toBe(true);
      for (let a = 0; a < 4; a++) {
        for (let n = 1; n <= 7; n++) {
          const present = dots.some((d) => d.actor === a && d.counter === n);
          expect(c1.contains({ actor: pool[a] as ActorId, counter: n })).toBe(present);
        }
      }
    }), 0.5);
  });
});

describe("CausalContext from untrusted shapes (issue 12, finding 6)", () => {
  // A context built raw - vector plus a cloud that may repeat dots, hold covered ones, or come
  // unsorted - as a decoder sees it from a peer or a client.
  const dotArb = fc.record({ actor: fc.nat(3), counter: fc.integer({ min: 1, max: 6 }) });
  const rawArb = fc.record({ vv: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 4, maxLength: 4 }), cloud: fc.array(dotArb, { maxLength: 12 }) });
  type Raw = { vv: number[]; cloud: { actor: number; counter: number }[] };
  function build(r: Raw): CausalContext {
    const c = new CausalContext(vv(r.vv), r.cloud.map((d) => ({ actor: pool[d.actor] as ActorId, counter: d.counter })));
    c.compact();
    return c;
  }
  function dotSet(r: Raw): Set<string> {
    const s = new Set<string>();
    r.vv.forEach((n, a) => { for (let k = 1; k <= n; k++) s.add(`${a}:${k}`); });
    for (const d of r.cloud) s.add(`${d.actor}:${d.counter}`);
    return s;
  }
  function canonical(dots: Set<string>): CausalContext {
    const c = new CausalContext();
    for (const s of dots) {
      const [a, k] = s.split(":").map(Number) as [number, number];
      c.add({ actor: pool[a] as ActorId, counter: k });
    }
    return c;
  }

  test("a repeated cloud dot gives the same context as one copy", () => {
    const c = new CausalContext(vv([1]), [{ actor: pool[0] as ActorId, counter: 3 }, { actor: pool[0] as ActorId, counter: 3 }]);
    c.compact();
    expect(c.cloud.length).toBe(1);
    expect(c.equals(canonical(new Set(["0:1", "0:3"])))).toBe(true);
  });

  test("compact() of any raw shape equals the canonical context of its dot set", () => {
    checkProperty("raw compaction", fc.property(rawArb, (r) => {
      expect(build(r).equals(canonical(dotSet(r)))).toBe(true);
    }));
  });

  test("intersect() is the canonical context of the intersection of the dot sets", () => {
    checkProperty("context intersection", fc.property(rawArb, rawArb, (x, y) => {
      const want = new Set([...dotSet(x)].filter((d) => dotSet(y).has(d)));
      const got = build(x).intersect(build(y));
      expect(got.equals(canonical(want))).toBe(true);
      expect(build(y).intersect(build(x)).equals(got)).toBe(true);
    }));
  });
});
