// Merge laws of every CRDT type, on states from a shared random history (so equal actors,
// equal timestamps and equal values collide, and several replicas delete the same events),
// plus m(X) = X join m_delta(X) for every mutator (delete included) and replica convergence
// against an observed-remove reference model (harness.ts).

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { checkProperty } from "./prop.ts";
import { allKinds, kindOf } from "../../src/kinds/index.ts";
import { encodeState } from "../../src/codec/index.ts";
import { keyTypesMax } from "../../src/limits.ts";
import { clone, cmdArb, join, merge, observed, roundTrip, runWorld, same, specs, World, type Replica } from "./harness.ts";

for (const spec of specs) {
  describe(spec.name, () => {
    // Three replica states after a random shared history.
    const statesArb = fc.array(cmdArb(spec), { maxLength: 40 }).map((cmds) => {
      const w = new World(spec, 3);
      runWorld(w, cmds);
      return w;
    });

    test("merge is commutative, associative and idempotent", () => {
      checkProperty(`${spec.name} laws`, fc.property(statesArb, (w) => {
        const [x, y, z] = w.replicas.map((r) => r.state) as [Replica["state"], Replica["state"], Replica["state"]];
        expect(same(join(x, y), join(y, x))).toBe(true);
        expect(same(join(join(x, y), z), join(x, join(y, z)))).toBe(true);
        expect(same(join(x, x), x)).toBe(true);
        const x2 = clone(x);
        expect(merge(x2, x)).toBe(false);
        // merge reports a change exactly when the state changed
        const xy = clone(x);
        expect(merge(xy, y)).toBe(!same(xy, x) || !same(join(x, y), x));
        expect(same(xy, join(x, y))).toBe(true);
      }));
    });

    test("every mutator: m(X) = X join m_delta(X)", () => {
      checkProperty(`${spec.name} delta`, fc.property(statesArb, fc.nat(2), spec.opArb, (w, i, op) => {
        const before = clone((w.replicas[i] as Replica).state);
        const d = w.apply(i, op);
        const after = (w.replicas[i] as Replica).state;
        if (d === null) {
          expect(same(after, before)).toBe(true); // a refused mutation changes nothing
          return;
        }
        expect(same(after, join(before, d.state))).toBe(true);
        // The delta is a state: redelivering it is a no-op.
        const again = clone(after);
        expect(merge(again, d.state)).toBe(false);
      }));
    });

    test("encode/decode round trip", () => {
      checkProperty(`${spec.name} codec`, fc.property(statesArb, fc.nat(2), spec.opArb, (w, i, op) => {
        for (const r of w.replicas) expect(same(roundTrip(r.state), r.state)).toBe(true);
        const d = w.apply(i, op);
        if (d !== null) expect(same(roundTrip(d.state), d.state)).toBe(true);
      }));
    });

    test("bytesUpperBound is at least the canonical encoding's size (the engine's bounds trust it)", () => {
      checkProperty(`${spec.name} size bound`, fc.property(statesArb, (w) => {
        for (const r of w.replicas) expect(kindOf(r.state).bytesUpperBound(r.state)).toBeGreaterThanOrEqual(encodeState(r.state).length);
      }));
    });

    test("3-5 replicas with duplicated, reordered and dropped deltas converge after one full exchange", () => {
      const worldArb = fc.record({
        n: fc.integer({ min: 3, max: 5 }),
        cmds: fc.array(cmdArb(spec), { maxLength: 60 }),
        // Small skews make equal timestamps; large ones put a deleting replica's clock far
        // ahead of (or behind) a writer's, which must not decide what a delete removes.
        skew: fc.array(fc.oneof(fc.integer({ min: -2, max: 2 }), fc.integer({ min: -5000, max: 5000 })), { minLength: 5, maxLength: 5 }),
      });
      checkProperty(`${spec.name} convergence`, fc.property(worldArb, ({ n, cmds, skew }) => {
        const w = new World(spec, n, skew);
        runWorld(w, cmds);
        w.fullExchange();
        const first = (w.replicas[0] as Replica).state;
        for (const r of w.replicas) expect(same(r.state, first)).toBe(true);
        expect(observed(first)).toBe(w.expected());
        expect(kindOf(first).present(first)).toBe(w.expectedPresent());
      }));
    });
  });
}

test("the law suite covers every registered kind", () => {
  expect(specs.map((s) => s.kind)).toEqual(allKinds.map((k) => k.name));
});

test("a key can hold one state of every registered kind (a type conflict keeps every side; the envelope decoder accepts keyTypesMax)", () => {
  expect(keyTypesMax).toBeGreaterThanOrEqual(allKinds.length);
});
