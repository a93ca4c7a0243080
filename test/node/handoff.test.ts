// The node's half of a leave's hand-off (src/node/handoff.ts): states go out in calls of about
// handOffCallBytes, a bigger state in pieces the receiver's assembler puts back together byte
// for byte; a stale answer makes the sender read again, a transient one retry, a lasting one or
// a refused plan fail the leave with a clear error. The plan itself and the merge are the
// cluster's (test/sim/handoff.test.ts, test/integration/partition-join.test.ts).
import { describe, expect, test } from "bun:test";
import * as grpc from "@grpc/grpc-js";
import type { HandOffPlan } from "../../src/cluster/handoff.ts";
import type { NodeId } from "../../src/cluster/types.ts";
import { HandOffAssembler, handOffCallBytes, handOffForLeave, handOffPieceBytes, type HandOffPorts } from "../../src/node/handoff.ts";
import { OpFailure, type HandOffEntry } from "../../src/transport/api.ts";
import { RpcError } from "../../src/transport/client.ts";
import { createLogger } from "../../src/node/log.ts";

const log = createLogger({ level: "error", format: "text", write: () => {} });

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** A node holding `states`, handing them to targets whose receivers run a real assembler; `fail` may refuse a call. */
function rig(states: Map<string, Uint8Array>, targets: Record<string, string[]>, fail?: (to: string, n: number) => RpcError | null) {
  const received = new Map<string, Map<string, Uint8Array>>();
  const assemblers = new Map<string, HandOffAssembler>();
  const calls: Array<{ to: string; entries: readonly HandOffEntry[] }> = [];
  let reads = 0;
  const plan: HandOffPlan = { kind: "plan", keys: states.size, targets: Object.entries(targets).map(([id, keys]) => ({ id: id as NodeId, addr: `${id}:1`, keys })) };
  const ports: HandOffPorts = {
    plan: () => plan,
    states: (keys) => {
      reads++;
      return keys.filter((k) => states.has(k)).map((k) => [k, states.get(k)!] as [string, Uint8Array]);
    },
    stamp: () => ({ epoch: 1, confirms: reads }),
    send: async (to, entries) => {
      calls.push({ to: to.id, entries });
      const f = fail?.(to.id, calls.length);
      if (f) throw f;
      let a = assemblers.get(to.id);
      if (a === undefined) assemblers.set(to.id, (a = new HandOffAssembler(() => 0)));
      const whole = a.accept("me", entries);
      let got = received.get(to.id);
      if (got === undefined) received.set(to.id, (got = new Map()));
      for (const [k, s] of whole) got.set(k, s);
      return whole.length;
    },
    log,
    nowMs: () => Date.now(),
  };
  return { ports, received, calls, reads: () => reads };
}

describe("leave hand-off (node side)", () => {
  test("every target gets exactly its keys' states, small ones batched, a big one in pieces put back together byte for byte", async () => {
    const states = new Map<string, Uint8Array>();
    for (let i = 0; i < 600; i++) states.set(`k${i}`, bytes(4000 + (i % 7), i));
    const all = [...states.keys()];
    states.set("big", bytes(handOffPieceBytes * 2 + 12345, 99));
    const r = rig(states, { b: all.filter((_, i) => i % 2 === 0).concat("big"), c: all.filter((_, i) => i % 3 === 0) });
    const done = await handOffForLeave(r.ports);
    expect(done.merged).toBe(r.received.get("b")!.size + r.received.get("c")!.size);
    for (const [t, keys] of [["b", all.filter((_, i) => i % 2 === 0).concat("big")], ["c", all.filter((_, i) => i % 3 === 0)]] as const) {
      const got = r.received.get(t)!;
      expect([...got.keys()].sort()).toEqual([...new Set(keys)].sort());
      for (const [k, s] of got) expect(Bun.hash(s)).toBe(Bun.hash(states.get(k)!));
    }
    // Calls stay near handOffCallBytes; the big state went as 3 pieces, none above handOffPieceBytes.
    for (const c of r.calls) {
      const n = c.entries.reduce((a, e) => a + e.state.length, 0);
      if (c.entries.some((e) => e.total > 0)) expect(c.entries.length).toBe(1);
      else expect(n).toBeLessThanOrEqual(handOffCallBytes);
    }
    expect(r.calls.filter((c) => c.entries[0]!.key === "big").map((c) => c.entries[0]!.offset)).toEqual([0, handOffPieceBytes, 2 * handOffPieceBytes]);
  });

  test("a stale answer makes the sender read the states again; a transient one is retried", async () => {
    const states = new Map([["a", bytes(10, 1)], ["b", bytes(10, 2)]]);
    let n = 0;
    const r = rig(states, { x: ["a", "b"] }, () => {
      n++;
      if (n === 1) return new RpcError(grpc.status.FAILED_PRECONDITION, "stale");
      if (n === 2) return new RpcError(grpc.status.UNAVAILABLE, "busy");
      return null;
    });
    await handOffForLeave(r.ports);
    expect(r.reads()).toBe(2);
    expect([...r.received.get("x")!.keys()].sort()).toEqual(["a", "b"]);
  });

  test("a lasting refusal fails the leave (UNAVAILABLE, naming the target); a refused plan fails it FAILED_PRECONDITION", async () => {
    const r = rig(new Map([["a", bytes(10, 1)]]), { x: ["a"] }, () => new RpcError(grpc.status.PERMISSION_DENIED, "no"));
    const err = await handOffForLeave(r.ports).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpFailure);
    expect((err as OpFailure).code).toBe("UNAVAILABLE");
    expect((err as OpFailure).message).toContain("handing keys to x failed");
    const refused = await handOffForLeave({ ...r.ports, plan: () => ({ kind: "refused", reason: "no owner alive" }) }).catch((e: unknown) => e);
    expect((refused as OpFailure).code).toBe("FAILED_PRECONDITION");
    expect((refused as OpFailure).message).toContain("no owner alive");
  });

  test("a big state's pieces sent again (an answer lost after the merge, or a merge refused after the last piece) still end merged, once", async () => {
    const big = bytes(handOffPieceBytes * 2 + 777, 5);
    for (const failure of ["answer lost", "last answer lost", "merge refused"] as const) {
      const a = new HandOffAssembler(() => 0);
      const merged: Uint8Array[] = [];
      let calls = 0;
      const ports: HandOffPorts = {
        plan: () => ({ kind: "plan", keys: 1, targets: [{ id: "x" as NodeId, addr: "x:1", keys: ["big"] }] }),
        states: () => [["big", big]],
        stamp: () => ({ epoch: 1, confirms: 0 }),
        send: async (_to, entries) => {
          calls++;
          const whole = a.accept("me", entries);
          // The last piece's merge refused once (the receiver did not take the sender's data yet).
          if (failure === "merge refused" && calls === 3) throw new RpcError(grpc.status.UNAVAILABLE, "not now");
          for (const [, s] of whole) merged.push(s);
          a.committed("me");
          // The second (or last) piece's answer lost after it was taken and made durable.
          if (failure === "answer lost" && calls === 2) throw new RpcError(grpc.status.DEADLINE_EXCEEDED, "late");
          if (failure === "last answer lost" && calls === 3) throw new RpcError(grpc.status.DEADLINE_EXCEEDED, "late");
          return whole.length;
        },
        log,
        nowMs: () => Date.now(),
      };
      await handOffForLeave(ports);
      expect(`${failure}: ${merged.length}`).toBe(`${failure}: 1`);
      expect(Bun.hash(merged[0]!)).toBe(Bun.hash(big));
    }
  });

  test("a state read again (its merge refused as stale) and sent from its first piece replaces the one put together before", () => {
    const a = new HandOffAssembler(() => 0);
    expect(a.accept("s", [{ key: "k", state: new Uint8Array([1, 1]), offset: 0, total: 4 }])).toEqual([]);
    expect(a.accept("s", [{ key: "k", state: new Uint8Array([1, 1]), offset: 2, total: 4 }])).toEqual([["k", new Uint8Array([1, 1, 1, 1])]]);
    // Not committed (the merge was refused): the sender reads the key again, same size, other bytes.
    expect(a.accept("s", [{ key: "k", state: new Uint8Array([2, 2]), offset: 0, total: 4 }])).toEqual([]);
    expect(a.accept("s", [{ key: "k", state: new Uint8Array([2, 2]), offset: 2, total: 4 }])).toEqual([["k", new Uint8Array([2, 2, 2, 2])]]);
  });

  test("the assembler refuses a piece that does not continue the state it is putting together, and bounds senders", () => {
    const a = new HandOffAssembler(() => 0);
    expect(a.accept("s", [{ key: "k", state: bytes(4, 1), offset: 0, total: 8 }])).toEqual([]);
    expect(() => a.accept("s", [{ key: "k", state: bytes(4, 1), offset: 5, total: 8 }])).toThrow(OpFailure);
    expect(a.bytesHeld).toBe(0);
    for (let i = 0; i < HandOffAssembler.partialMax; i++) a.accept(`s${i}`, [{ key: "k", state: bytes(4, 1), offset: 0, total: 8 }]);
    expect(() => a.accept("late", [{ key: "k", state: bytes(4, 1), offset: 0, total: 8 }])).toThrow(OpFailure);
  });
});
