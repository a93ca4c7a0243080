// Actor interning: ranks follow the id strings' order however ids arrive, and ids are bounded.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { actorIdBytesMax, actorName, actorRank, CrdtError, internActor } from "../../src/crdt/index.ts";
import { checkProperty } from "./prop.ts";

describe("actor table", () => {
  test("rank order equals id string order, also after gaps run out", () => {
    // Many ids between two neighbours exhaust the rank gap and force renumbering.
    const squeeze = Array.from({ length: 40 }, (_, i) => "m" + "a".repeat(i + 1));
    checkProperty("actor ranks", fc.property(fc.array(fc.string({ minLength: 1, maxLength: 6 }), { maxLength: 20 }), (names) => {
      const ids = [...names, ...squeeze].map(internActor);
      for (const a of ids) {
        for (const b of ids) {
          const byName = actorName(a) < actorName(b) ? -1 : actorName(a) > actorName(b) ? 1 : 0;
          expect(Math.sign(actorRank(a) - actorRank(b))).toBe(byName);
        }
      }
    }), 0.1);
  });

  test("ids are 1..255 UTF-8 bytes", () => {
    expect(() => internActor("")).toThrow(CrdtError);
    expect(() => internActor("x".repeat(actorIdBytesMax + 1))).toThrow(CrdtError);
    expect(() => internActor("é".repeat(128))).toThrow(CrdtError); // 256 bytes
    expect(actorName(internActor("é".repeat(127)))).toBe("é".repeat(127));
  });
});
