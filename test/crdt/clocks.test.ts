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
