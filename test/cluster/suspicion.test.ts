// Lifeguard suspicion, local health awareness and the broadcast queue: the formulas the config documents.

import { describe, expect, test } from "bun:test";
import { Awareness } from "../../src/cluster/awareness.ts";
import { BroadcastQueue, retransmitLimit } from "../../src/cluster/broadcast.ts";
import { defaultLanConfig, validateClusterConfig, ClusterConfigError } from "../../src/cluster/config.ts";
import { Suspicion, suspicionConfirmationsExpected, suspicionMinTimeoutMs } from "../../src/cluster/suspicion.ts";
import type { Incarnation, NodeId } from "../../src/cluster/types.ts";

const id = (s: string) => s as NodeId;

describe("suspicion", () => {
  test("minimum timeout is suspicionMult * max(1, log10 N) * probe interval", () => {
    expect(suspicionMinTimeoutMs(4, 1, 500)).toBe(2000);
    expect(suspicionMinTimeoutMs(4, 10, 500)).toBe(2000);
    expect(suspicionMinTimeoutMs(4, 100, 500)).toBe(4000);
    expect(suspicionMinTimeoutMs(4, 1000, 1000)).toBe(12000);
  });

  test("expected confirmations are suspicionMult - 2, or 0 when the cluster is too small", () => {
    expect(suspicionConfirmationsExpected(4, 100)).toBe(2);
    expect(suspicionConfirmationsExpected(4, 3)).toBe(0);
  });

  test("the timeout starts at max and shrinks to min with independent confirmations only", () => {
    const s = new Suspicion(0, 2, 4000, 24000, id("a"));
    expect(s.timeoutMs()).toBe(24000);
    expect(s.confirm(id("a"))).toBe(false);
    expect(s.timeoutMs()).toBe(24000);
    expect(s.confirm(id("b"))).toBe(true);
    const one = s.timeoutMs();
    expect(one).toBeLessThan(24000);
    expect(one).toBeGreaterThan(4000);
    expect(s.confirm(id("c"))).toBe(true);
    expect(s.timeoutMs()).toBe(4000);
    expect(s.confirm(id("d"))).toBe(true);
    expect(s.deadlineMs()).toBe(4000);
  });

  test("with k = 0 the timeout is the minimum at once", () => {
    expect(new Suspicion(100, 0, 2000, 12000, id("a")).deadlineMs()).toBe(2100);
  });
});

describe("awareness", () => {
  test("scales timeouts by score + 1, bounded to 0 .. max-1", () => {
    const a = new Awareness(8);
    expect(a.scaleMs(500)).toBe(500);
    a.applyDelta(3);
    expect(a.scaleMs(500)).toBe(2000);
    a.applyDelta(100);
    expect(a.getScore()).toBe(7);
    a.applyDelta(-100);
    expect(a.getScore()).toBe(0);
  });
});

describe("broadcast queue", () => {
  test("retransmit limit is mult * ceil(log10(N + 1))", () => {
    expect(retransmitLimit(4, 1)).toBe(4);
    expect(retransmitLimit(4, 9)).toBe(4);
    expect(retransmitLimit(4, 10)).toBe(8);
    expect(retransmitLimit(6, 100)).toBe(18);
  });

  test("a newer update about a member replaces the older; each is sent limit times, least-sent first", () => {
    const q = new BroadcastQueue(100);
    q.push({ kind: "suspect", id: id("x"), incarnation: 1 as Incarnation, from: id("a") });
    q.push({ kind: "alive", id: id("x"), incarnation: 2 as Incarnation, addr: "h:1" });
    expect(q.size()).toBe(1);
    q.push({ kind: "dead", id: id("y"), incarnation: 0 as Incarnation, from: id("a") });
    const first = q.take(1400, 2);
    expect(first.map((u) => u.kind).sort()).toEqual(["alive", "dead"]);
    q.push({ kind: "left", id: id("z"), incarnation: 0 as Incarnation });
    const second = q.take(5, 2); // only the 4-byte "left" fits
    expect(second.map((u) => u.kind)).toEqual(["left"]);
    expect(q.take(1400, 2).length).toBe(3);
    expect(q.size()).toBe(0);
  });

  test("the byte budget is respected and the queue is bounded", () => {
    const q = new BroadcastQueue(10);
    for (let i = 0; i < 50; i++) q.push({ kind: "alive", id: id(`node-${i}`), incarnation: 0 as Incarnation, addr: "10.0.0.1:7000" });
    expect(q.size()).toBe(10);
    const taken = q.take(100, 5);
    expect(taken.length).toBeGreaterThan(0);
    expect(taken.length).toBeLessThanOrEqual(4);
  });
});

describe("config", () => {
  test("LAN defaults validate; a probe timeout not below the interval is refused naming the field", () => {
    expect(() => validateClusterConfig(defaultLanConfig())).not.toThrow();
    try {
      validateClusterConfig({ ...defaultLanConfig(), probeTimeoutMs: 500 });
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(ClusterConfigError);
      expect((e as ClusterConfigError).field).toBe("probeTimeoutMs");
    }
    expect(() => validateClusterConfig({ ...defaultLanConfig(), gossipNodes: 0 })).toThrow(ClusterConfigError);
  });
});
