// A peer's LWW timestamp far ahead of local time (issue 12, finding 8): refused at the merge,
// changing nothing and leaving the clock where it was, so one timestamp near 2^48 cannot pin
// every clock in the cluster; the node's own log (WAL replay) is never refused.

import { describe, expect, test } from "bun:test";
import { Engine, type MergeResult } from "../../src/engine/index.ts";
import { hlcMsMax, hlcRemoteAheadMsMaxDefault } from "../../src/crdt/index.ts";

const T = 1_700_000_000_000;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** An LWW delta and the full state of key "l", written by a node whose clock reads `ms`. */
function writtenAt(ms: number, value = "far"): { delta: Uint8Array; state: Uint8Array } {
  const src = new Engine({ actor: "skewed" });
  const r = src.apply({ kind: "set", key: "l", value: bytes(value) }, ms);
  if (!r.ok) throw new Error("set refused");
  return { delta: r.delta, state: src.encodeState("l") as Uint8Array };
}

const snap = (e: Engine): string => JSON.stringify([e.get("l"), String(e.digest("l")), e.clock.current()], (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v));

function refusedAhead(r: MergeResult): number {
  if (r.ok || r.clockAhead === undefined) throw new Error(`expected a clock-ahead refusal, got ${JSON.stringify(r)}`);
  expect(r.clockAhead.key).toBe("l");
  return r.clockAhead.aheadMs;
}

describe("remote HLC far ahead (finding 8)", () => {
  test("a peer delta or state stamped near 2^48 is refused: state, digest and clock unchanged; local writes keep real time", () => {
    const e = new Engine({ actor: "n1" });
    const mine = e.apply({ kind: "set", key: "l", value: bytes("mine") }, T);
    expect(mine.ok).toBe(true);
    const before = snap(e);
    const far = writtenAt(hlcMsMax - 5);
    expect(refusedAhead(e.mergeDelta(far.delta, T))).toBe(hlcMsMax - 5 - T);
    expect(refusedAhead(e.mergeState("l", far.state, T))).toBe(hlcMsMax - 5 - T);
    expect(snap(e)).toBe(before);
    // The clock did not take it in: the next local write is stamped with real time.
    const next = e.apply({ kind: "set", key: "l", value: bytes("next") }, T + 1);
    expect(next.ok && next.value.type === "lww" && next.value.timestampMs).toBe(T + 1);
    // A key the node does not hold is not created either.
    const fresh = new Engine({ actor: "n2" });
    refusedAhead(fresh.mergeDelta(far.delta, T));
    expect(fresh.has("l")).toBe(false);
    expect(fresh.clock.current()).toEqual({ ms: 0, logical: 0 });
  });

  test("the bound: just inside is merged (and reported as skew), just past is refused; it is configurable", () => {
    const e = new Engine({ actor: "n1", maxClockSkewMs: 1000 });
    const inside = e.mergeDelta(writtenAt(T + hlcRemoteAheadMsMaxDefault, "inside").delta, T);
    expect(inside.ok && inside.changed && inside.skew?.aheadMs).toBe(hlcRemoteAheadMsMaxDefault);
    expect(refusedAhead(e.mergeDelta(writtenAt(T + hlcRemoteAheadMsMaxDefault + 1, "past").delta, T))).toBe(hlcRemoteAheadMsMaxDefault + 1);
    expect((e.get("l") as { value: Uint8Array }).value).toEqual(bytes("inside"));
    const strict = new Engine({ actor: "n1", hlcRemoteAheadMsMax: 60_000 });
    refusedAhead(strict.mergeDelta(writtenAt(T + 60_001).delta, T));
    expect(strict.mergeDelta(writtenAt(T + 60_000).delta, T).ok).toBe(true);
  });

  test("WAL replay of the node's own log (origin own) is not refused", () => {
    const e = new Engine({ actor: "n1" });
    const far = writtenAt(T + 3_600_000);
    const r = e.mergeDelta(far.delta, T, { origin: "own" });
    expect(r.ok && r.changed).toBe(true);
    expect(e.mergeState("l", far.state, T, { origin: "own" }).ok).toBe(true);
    expect(e.clock.current().ms).toBe(T + 3_600_000);
  });
});
