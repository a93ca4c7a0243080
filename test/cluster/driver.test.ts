// The cluster driver over an in-memory PeerSender, on a hand-driven clock: join, replies carried back, deltas, leave.

import { expect, test } from "bun:test";
import type { NodeId } from "../../src/cluster/types.ts";
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
      const reply = d.receive(self, payload);
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
  await leaving;
  c.d.stop();
  drivers.delete("c:7000");
  expect(a.d.members().find((m) => m.id === ("c" as NodeId))?.status).toBe("left");
  expect(b.d.status().left).toBe(1);
  expect(requests).toBeGreaterThan(0);
  for (const x of [a, b]) x.d.stop();
});

test("a gate holds every outgoing message until it settles, then they all leave", async () => {
  let now = 0;
  const timers: Array<() => void> = [];
  const sent: string[] = [];
  let release!: () => void;
  let gate: Promise<void> | null = new Promise<void>((r) => (release = r));
  const store = new CounterStore("a");
  const d = new ClusterDriver({
    id: "a", addr: "a:7000", seeds: ["b:7000", "c:7000"], store,
    sender: { send: async (to) => { sent.push(to.addr); return null; } },
    now: () => now, random: () => 0.5,
    every: (_ms, fn) => {
      timers.push(fn);
      return () => timers.splice(timers.indexOf(fn), 1);
    },
    gate: () => gate,
  });
  d.start();
  for (let t = 0; t < 50; t++) {
    now += 5;
    for (const f of [...timers]) f();
    await Promise.resolve();
  }
  expect(sent).toEqual([]); // join attempts were made, and held
  release();
  gate = null;
  for (let i = 0; i < 10; i++) await Promise.resolve();
  expect(new Set(sent)).toEqual(new Set(["b:7000", "c:7000"]));
  d.stop();
});
