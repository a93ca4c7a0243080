// The cluster driver over an in-memory PeerSender, on a hand-driven clock: join, replies carried back, deltas, leave.

import { expect, test } from "bun:test";
import type { ClusterConfig } from "../../src/cluster/config.ts";
import type { ClusterEvent, NodeId } from "../../src/cluster/types.ts";
import { ClusterDriver, type PeerSender } from "../../src/node/cluster-driver.ts";
import { Rng } from "../../src/sim/rng.ts";
import { CounterStore } from "../../src/sim/store.ts";
import { seed } from "./helpers.ts";

test("three drivers form a cluster, replicate increments and see a graceful leave", async () => {
  let now = 0;
  const timers: Array<() => void> = [];
  const drivers = new Map<string, ClusterDriver>();
  let requests = 0;
  let repliesWithPayload = 0;
  const sender = (self: string): PeerSender => ({
    send: async (to, payload) => {
      requests++;
      const d = drivers.get(to.addr);
      if (d === undefined) return null;
      const reply = await d.receive(self, payload);
      if (reply.length > 0) repliesWithPayload++;
      return { fromId: d.cluster.status().id, payload: reply };
    },
  });
  const rng = new Rng(seed);
  const make = (id: string): { d: ClusterDriver; store: CounterStore } => {
    const store = new CounterStore(id);
    const d = new ClusterDriver({
      id, addr: `${id}:7000`, seeds: ["a:7000"], store, sender: sender(id),
      now: () => now, random: () => rng.next(),
      every: (_ms, fn) => {
        timers.push(fn);
        return () => timers.splice(timers.indexOf(fn), 1);
      },
    });
    store.onChange = (k, dg) => d.keyChanged(k, dg);
    drivers.set(`${id}:7000`, d);
    return { d, store };
  };
  const a = make("a");
  const b = make("b");
  const c = make("c");
  for (const x of [a, b, c]) x.d.start();
  const run = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 5) {
      now += 5;
      for (const f of [...timers]) f();
      for (let i = 0; i < 10; i++) await Promise.resolve();
    }
  };
  await run(3_000);
  for (const x of [a, b, c]) expect(x.d.members().map((m) => `${m.id}:${m.status}`)).toEqual(["a:alive", "b:alive", "c:alive"]);
  expect(repliesWithPayload).toBeGreaterThan(0); // acks ride back in replies

  for (let i = 0; i < 20; i++) b.d.broadcastDelta(b.store.increment("hits", 1));
  await run(100);
  expect(a.store.value("hits")).toBe(20);
  expect(c.store.value("hits")).toBe(20);

  const leaving = c.d.leave(2_000);
  await run(1_000);
  expect(["a", "b"]).toContain((await leaving) as string); // a peer was seen holding the departure
  c.d.stop();
  drivers.delete("c:7000");
  expect(a.d.members().find((m) => m.id === ("c" as NodeId))?.status).toBe("left");
  expect(b.d.status().left).toBe(1);
  expect(requests).toBeGreaterThan(0);
  for (const x of [a, b]) x.d.stop();
});

/** Drivers on one hand-driven clock over an in-memory sender; `gates` gives each node's WAL gate. */
function harness(gates: Record<string, () => Promise<void> | null>, config: Partial<ClusterConfig> = {}) {
  let now = 0;
  const timers: Array<() => void> = [];
  const drivers = new Map<string, ClusterDriver>();
  /** Nodes cut off from every other: nothing they send arrives, nothing reaches them. */
  const cut = new Set<string>();
  const events: Array<{ at: string; e: ClusterEvent }> = [];
  const rng = new Rng(seed);
  const nodes = new Map<string, { d: ClusterDriver; store: CounterStore }>();
  for (const id of Object.keys(gates)) {
    const store = new CounterStore(id);
    const d = new ClusterDriver({
      id, addr: `${id}:7000`, seeds: ["a:7000"], store, config,
      sender: {
        send: async (to, payload) => {
          const peer = drivers.get(to.addr);
          if (peer === undefined || cut.has(id) || cut.has(to.addr.split(":")[0] as string)) return null;
          return { fromId: peer.cluster.status().id, payload: await peer.receive(id, payload) };
        },
      },
      now: () => now, random: () => rng.next(),
      every: (_ms, fn) => {
        timers.push(fn);
        return () => timers.splice(timers.indexOf(fn), 1);
      },
      gate: gates[id],
      onEvent: (e) => events.push({ at: id, e }),
    });
    store.onChange = (k, dg) => d.keyChanged(k, dg);
    drivers.set(`${id}:7000`, d);
    nodes.set(id, { d, store });
  }
  const run = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 5) {
      now += 5;
      for (const f of [...timers]) f();
      for (let i = 0; i < 10; i++) await Promise.resolve();
    }
  };
  return { nodes, events, run, cut, node: (id: string) => nodes.get(id) as { d: ClusterDriver; store: CounterStore } };
}

test("a leave is offered until a peer is seen holding it: made while cut off, it is heard once the cut heals; never heard, leave says so", async () => {
  const h = harness({ a: () => null, b: () => null, c: () => null });
  for (const { d } of h.nodes.values()) d.start();
  await h.run(3_000);
  const statusOf = (at: string, id: string): string | undefined => h.node(at).d.members().find((m) => m.id === id)?.status;
  // c leaves while cut off: its gossip reaches nobody (the queue drains after its retransmits,
  // where a leave used to stop waiting), then the cut heals and its next offer is heard.
  h.cut.add("c");
  const heard = h.node("c").d.leave(60_000);
  await h.run(5_000);
  expect(h.node("c").d.cluster.pendingBroadcasts()).toBe(0);
  expect(h.node("c").d.cluster.leaveHeardBy()).toBeNull();
  expect([statusOf("a", "c"), statusOf("b", "c")]).not.toContain("left");
  h.cut.delete("c");
  await h.run(1_000);
  const by = h.node("c").d.cluster.leaveHeardBy();
  expect(["a", "b"]).toContain(by as string);
  expect(statusOf(by as string, "c")).toBe("left");
  expect(await heard).toBe(by);
  h.node("c").d.stop();
  await h.run(2_000);
  expect([statusOf("a", "c"), statusOf("b", "c")]).toEqual(["left", "left"]);

  // b leaves cut off for good: after the timeout its leave answers null (nobody was seen holding it).
  h.cut.add("b");
  const unheard = h.node("b").d.leave(3_000);
  await h.run(4_000);
  expect(await unheard).toBeNull();
  expect(statusOf("a", "b")).not.toBe("left");
  for (const { d } of h.nodes.values()) d.stop();
});

test("a WAL that never settles holds delta acks and anti-entropy states, but pings, acks and probes still flow: no one is suspected", async () => {
  let release!: () => void;
  const stalled = new Promise<void>((r) => (release = r));
  let aStalled = false;
  const h = harness({ a: () => (aStalled ? stalled : null), b: () => null, c: () => null });
  for (const { d } of h.nodes.values()) d.start();
  await h.run(3_000);
  for (const { d } of h.nodes.values()) expect(d.members().map((m) => `${m.id}:${m.status}`)).toEqual(["a:alive", "b:alive", "c:alive"]);
  h.events.length = 0;

  // a's disk stalls for 10 s (20 probe periods).
  aStalled = true;
  const a = h.node("a");
  const b = h.node("b");
  b.d.broadcastDelta(b.store.increment("from-b", 1));
  await h.run(10_000);
  expect(h.events.filter(({ e }) => e.kind === "member-suspect" || e.kind === "member-dead")).toEqual([]);
  expect(a.store.value("from-b")).toBe(1); // a merged b's delta ...
  expect(b.d.cluster.deltaBacklog("a" as NodeId).entries).toBe(1); // ... but does not acknowledge it before its disk has it
  expect(a.d.status().heldEnvelopes).toBeGreaterThan(0);

  aStalled = false;
  release();
  await h.run(1_000);
  expect(b.d.cluster.deltaBacklog("a" as NodeId).entries).toBe(0);
  expect(a.d.status().heldEnvelopes).toBe(0);
  expect(a.d.status().heldBytes).toBe(0);
  for (const { d } of h.nodes.values()) d.stop();
});

test("held state-carrying envelopes are bounded: beyond heldOutboundEnvelopesMax they are dropped, counted, and recovered later", async () => {
  let release!: () => void;
  const stalled = new Promise<void>((r) => (release = r));
  let aStalled = false;
  const heldOutboundEnvelopesMax = 4;
  const h = harness({ a: () => (aStalled ? stalled : null), b: () => null }, { heldOutboundEnvelopesMax, antiEntropyIntervalMs: 200 });
  for (const { d } of h.nodes.values()) d.start();
  await h.run(2_000);
  aStalled = true;
  const b = h.node("b");
  for (let i = 0; i < 50; i++) {
    b.d.broadcastDelta(b.store.increment(`k${i}`, 1));
    await h.run(50);
    expect(h.node("a").d.status().heldEnvelopes).toBeLessThanOrEqual(heldOutboundEnvelopesMax);
  }
  expect(h.node("a").d.status().heldDropped).toBeGreaterThan(0);
  expect(b.d.cluster.deltaBacklog("a" as NodeId).entries).toBe(50); // nothing acknowledged while a's disk stalls
  expect(h.events.filter(({ e }) => e.kind === "member-suspect")).toEqual([]);
  aStalled = false;
  release();
  await h.run(3_000);
  expect(b.d.cluster.deltaBacklog("a" as NodeId).entries).toBe(0);
  for (let i = 0; i < 50; i++) expect(h.node("a").store.value(`k${i}`)).toBe(1);
  for (const { d } of h.nodes.values()) d.stop();
});
