// What a delete leaves behind, through the engine's merge, load and clock paths (the engine's
// Delete op is not involved: these states arrive from a peer, the WAL or a snapshot). A counter
// with reset rows must never be squeezed into the compact columns (which have no room for
// them: the deleted counts would come back), and every timestamp a deleted LWW register
// carries counts for the remote-ahead refusal and for the clock.

import { describe, expect, test } from "bun:test";
import { Engine, type MergeResult } from "../../src/engine/index.ts";
import { decodeEnvelope, encodeEnvelope, keyUtf8 } from "../../src/codec/index.ts";
import { GCounter, hlcMsMax, internActor, LwwRegister, PNCounter } from "../../src/crdt/index.ts";

const T = 1_700_000_000_000;
const key = keyUtf8("k") as Uint8Array;

function ok(r: MergeResult): void {
  if (!r.ok) throw new Error(`merge refused: ${r.error.message}`);
}

/** The state node-1's engine holds for "k", decoded. */
function stateOf(e: Engine): GCounter | PNCounter | LwwRegister {
  return decodeEnvelope(e.encodeState("k") as Uint8Array).state as GCounter | PNCounter | LwwRegister;
}

describe("deleted counters in the engine", () => {
  test("a peer's delete of a compact counter keeps its reset rows: value 0, later increments count from zero, old deltas bring nothing back", () => {
    for (const counter of ["gcounter", "pncounter"] as const) {
      const e = new Engine({ actor: "node-1" });
      const inc = e.apply({ kind: "incr", key: "k", amount: 5n, counter }, T);
      if (!inc.ok) throw new Error("incr refused");
      // The peer saw node-1's 5 and deleted the key.
      const peer = decodeEnvelope(inc.delta).state as GCounter | PNCounter;
      const dDel = peer.removeObserved();
      if (dDel === null) throw new Error("nothing to delete");
      ok(e.mergeDelta(encodeEnvelope(key, dDel, T), T + 1));
      expect(e.get("k")).toBeUndefined(); // deleted: absent, its record kept
      expect(e.deletedKeyCount).toBe(1);
      expect((stateOf(e) as GCounter | PNCounter).resets).not.toBeNull();
      // The incr delta again (redelivered, or replayed from the WAL): nothing comes back.
      const again = e.mergeDelta(inc.delta, T + 2);
      expect(again.ok && again.changed).toBe(false);
      expect(e.get("k")).toBeUndefined();
      // A local increment after the delete counts from zero.
      const next = e.apply({ kind: "incr", key: "k", amount: 2n, counter }, T + 3);
      expect(next.ok && next.value).toEqual({ type: counter, value: 2n });
      expect(e.get("k")).toEqual({ type: counter, value: 2n });
    }
  });

  test("a delete's delta alone creates the key as deleted; a snapshot of a deleted counter loads with its resets and re-encodes the same", () => {
    const n1 = internActor("node-1");
    const e = new Engine({ actor: "node-2" });
    const deleted = new PNCounter([], [], [], new PNCounter([n1], [4n], [1n]));
    ok(e.mergeDelta(encodeEnvelope(key, deleted, T), T));
    expect(e.get("k")).toBeUndefined();
    ok(e.mergeDelta(encodeEnvelope(key, new PNCounter([n1], [4n], [1n]), T), T)); // what it observed: still deleted
    expect(e.get("k")).toBeUndefined();
    ok(e.mergeDelta(encodeEnvelope(key, new PNCounter([n1], [6n], [1n]), T), T)); // 2 more, unobserved by the delete
    expect(e.get("k")).toEqual({ type: "pncounter", value: 2n });
    const snap = e.encodeState("k") as Uint8Array;
    const restored = new Engine({ actor: "node-2" });
    const loaded = restored.loadState("k", snap);
    expect(loaded.ok).toBe(true);
    expect(restored.get("k")).toEqual({ type: "pncounter", value: 2n });
    expect(Buffer.from(restored.encodeState("k") as Uint8Array).equals(Buffer.from(snap))).toBe(true);
    expect(restored.digest("k")).toBe(e.digest("k") as bigint);
  });
});

describe("deleted LWW registers in the engine", () => {
  /** A register that saw b's write at farMs, deleted it, then holds a's write at T. */
  function withFarContext(farMs: number): LwwRegister {
    const r = new LwwRegister();
    r.set(internActor("node-b"), Uint8Array.of(1), { ms: farMs, logical: 0 });
    r.removeObserved();
    r.set(internActor("node-a"), Uint8Array.of(2), { ms: T, logical: 0 });
    return r;
  }

  test("a peer state whose visible write is recent but whose context holds a stamp near 2^48 is refused, clock untouched", () => {
    const e = new Engine({ actor: "node-1" });
    const r = withFarContext(hlcMsMax - 5);
    expect(r.ms).toBe(T); // the visible write alone would pass
    const got = e.mergeState("k", encodeEnvelope(key, r, T), T);
    expect(got.ok).toBe(false);
    expect(!got.ok && got.clockAhead?.remoteMs).toBe(hlcMsMax - 5);
    const del = r.removeObserved() as LwwRegister;
    expect(e.mergeDelta(encodeEnvelope(key, del, T), T).ok).toBe(false);
    expect(e.has("k")).toBe(false);
    expect(e.clock.current()).toEqual({ ms: 0, logical: 0 });
  });

  test("merging or loading a deleted register moves the clock past every stamp it saw, so the next write follows them", () => {
    const far = T + 5_000;
    const e = new Engine({ actor: "node-1" });
    const del = withFarContext(far).removeObserved() as LwwRegister;
    ok(e.mergeDelta(encodeEnvelope(key, del, T), T));
    const w = e.apply({ kind: "set", key: "k", value: Uint8Array.of(3) }, T);
    expect(w.ok && w.value.type === "lww" && w.value.timestampMs).toBeGreaterThanOrEqual(far);
    const restored = new Engine({ actor: "node-1" });
    expect(restored.loadState("k", encodeEnvelope(key, del, T)).ok).toBe(true);
    expect(restored.clock.current().ms).toBeGreaterThanOrEqual(far);
  });
});
