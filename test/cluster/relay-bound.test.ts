// Indirect probes relayed for others are bounded (relayedProbesMax): a flood of ping-reqs costs bounded memory and messages.

import { expect, test } from "bun:test";
import { Cluster } from "../../src/cluster/cluster.ts";
import { defaultLanConfig } from "../../src/cluster/config.ts";
import type { NodeId } from "../../src/cluster/types.ts";
import { decodeEnvelope, encodeEnvelope, type Message } from "../../src/cluster/wire.ts";
import { CounterStore } from "../../src/sim/store.ts";
import { ManualEnv } from "./helpers.ts";

const pingReqs = (n: number, from = 0): Message[] =>
  Array.from({ length: n }, (_, i) => ({ kind: "ping-req" as const, seq: from + i, target: "z" as NodeId, targetAddr: "z:9" }));

function sentKinds(c: Cluster): Message["kind"][] {
  return c.drainOutbound().flatMap((o) => decodeEnvelope(o.payload).messages.map((m) => m.kind));
}

test("beyond relayedProbesMax in flight, ping-reqs are dropped and counted; slots free up once relays time out", () => {
  const env = new ManualEnv(1);
  const relayedProbesMax = defaultLanConfig().relayedProbesMax;
  const a = new Cluster({ id: "a" as NodeId, addr: "a:1", env, store: new CounterStore("a") });
  a.step("x" as NodeId, encodeEnvelope({ fromAddr: "x:1", messages: pingReqs(relayedProbesMax + 100) }));
  let kinds = sentKinds(a);
  expect(kinds.filter((k) => k === "ping").length).toBe(relayedProbesMax);
  expect(a.status().relayedProbesDropped).toBe(100);

  // The target never answers: after probeTimeoutMs every relay is answered with a nack and forgotten.
  env.now += defaultLanConfig().probeTimeoutMs;
  a.tick();
  kinds = sentKinds(a);
  expect(kinds.filter((k) => k === "nack").length).toBe(relayedProbesMax);
  a.step("x" as NodeId, encodeEnvelope({ fromAddr: "x:1", messages: pingReqs(10, 1_000_000) }));
  expect(sentKinds(a).filter((k) => k === "ping").length).toBe(10);
  expect(a.status().relayedProbesDropped).toBe(100);
});

test("relayedProbesMax is a validated config field", () => {
  const env = new ManualEnv(1);
  expect(() => new Cluster({ id: "a" as NodeId, addr: "a:1", env, store: new CounterStore("a"), config: { relayedProbesMax: 0 } })).toThrow(/relayedProbesMax/);
  expect(() => new Cluster({ id: "a" as NodeId, addr: "a:1", env, store: new CounterStore("a"), config: { heldOutboundBytesMax: -1 } })).toThrow(/heldOutboundBytesMax/);
});
