// Eviction (Cluster.evictStrays) against the cases a review found it losing acknowledged writes
// in, when an owner's delta acknowledgement alone let a former owner drop its copy: each failed
// before the owner had to answer a keep ask (`stray-keep`: it owns the partition in its own
// placement, is not leaving, refused nothing of the asker). Replication factor 1 makes a lost copy
// a lost write; 2 shows a copy dropped that the leave had just made.
import { expect, test } from "bun:test";
import { Placement, partitionOf } from "../../src/cluster/placement.ts";
import { asNodeId } from "../../src/cluster/types.ts";
import { EngineStore } from "../../src/sim/engine-store.ts";
import { Simulation } from "../../src/sim/sim.ts";

function cluster(rf: number, o: { nodes?: number; startStopped?: number[]; seed?: number } = {}): Simulation {
  const nodes = o.nodes ?? 4;
  const sim = new Simulation({
    seed: o.seed ?? 3, nodes, config: { replicationFactor: rf, partitions: 64 }, counterInvariant: false, traceMessages: false,
    ...(o.startStopped ? { startStopped: o.startStopped } : {}),
    storeFactory: (actor, nowMs, hs) => new EngineStore(actor, nowMs, hs),
  });
  const up = nodes - (o.startStopped?.length ?? 0);
  expect(sim.runUntilTrue(() => sim.runningIndexes().every((i) => sim.view(i).filter((m) => m.status === "alive").length === up), 120_000)).toBe(true);
  return sim;
}

/** n3 leaves as `imdb admin leave` does: hand-off, announcement heard, process gone. */
function leave(sim: Simulation): void {
  sim.leave(3);
  sim.runUntilTrue(() => [0, 1, 2].every((i) => sim.view(i).find((m) => m.id === "n3")?.status === "left"), sim.nowMs + 30_000);
  sim.kill(3);
}

for (const rf of [1, 2]) {
  test(`RF ${rf}: the targets of a leave's hand-off, still placing keys on the leaver, keep what they were handed`, () => {
    // The leaver still owns the handed keys in the targets' view until its announcement arrives:
    // they pushed them back as strays, the leaver acknowledged, and they dropped them.
    const sim = cluster(rf);
    const pl = sim.cluster(0)!.placement()!;
    const keys = Array.from({ length: 400 }, (_, i) => `x${i}`).filter((k) => pl.ownersOfKey(k).includes(asNodeId("n3")));
    for (const k of keys) expect(sim.increment(3, k, 5)).toBe(true);
    sim.runFor(3_000);
    expect(sim.handOff(3)).toBeNull();
    sim.runFor(3_000);
    leave(sim);
    const copies = (k: string): number => [0, 1, 2].filter((i) => sim.store(i).value(k) === 5).length;
    expect(keys.filter((k) => copies(k) < rf)).toEqual([]);
    sim.runFor(120_000);
    expect(keys.filter((k) => copies(k) === 0)).toEqual([]);
  }, 120_000);
}

test("RF 1: a stray that reaches a leaving node after its hand-off is kept by its holders", () => {
  const sim = cluster(1);
  const pl = sim.cluster(0)!.placement()!;
  const key = Array.from({ length: 1000 }, (_, i) => `x${i}`).find((k) => pl.ownersOfKey(k)[0] === "n3")!;
  sim.runFor(3_000);
  expect(sim.handOff(3)).toBeNull();
  // After it, n0 applies a write of the key (as a forwarded write under a lagging view would).
  expect(sim.increment(0, key, 5)).toBe(true);
  sim.runFor(4_000);
  leave(sim);
  sim.runFor(60_000);
  expect(Math.max(...[0, 1, 2].map((i) => sim.store(i).value(key)))).toBe(5);
}, 120_000);

test("RF 1: two nodes whose placements give a partition to each other both keep it", () => {
  // n2 comes back from a clean stop after n3 was removed while it was down: n2 still places over
  // n3 (gc.knownMembers, until deadReapAfterMs) while n0 does not, and partition 25 is n0's in
  // n2's placement and n2's in n0's. Each pushed it to the other, each acknowledged, each dropped it.
  const sim = cluster(1, { startStopped: [3], seed: 1 });
  const ids = ["n0", "n1", "n2", "n3"].map(asNodeId);
  const cfg = { replicationFactor: 1, partitions: 64 };
  expect(new Placement(ids.slice(0, 3), cfg).owners(25)).toEqual([asNodeId("n2")]);
  expect(new Placement(ids, cfg).owners(25)).toEqual([asNodeId("n0")]);
  const status = (i: number, id: string) => sim.view(i).find((m) => m.id === id)?.status;
  const keys: string[] = [];
  for (let i = 0; keys.length < 5; i++) if (partitionOf(`k${i}`, 64) === 25) keys.push(`k${i}`);
  for (const k of keys) expect(sim.increment(2, k, 7)).toBe(true);
  sim.runFor(5_000);
  sim.stop(0);
  expect(sim.runUntilTrue(() => status(1, "n0") === "dead" && status(2, "n0") === "dead", sim.nowMs + 60_000)).toBe(true);
  sim.restart(3);
  expect(sim.runUntilTrue(() => status(2, "n3") === "alive" && sim.cluster(2)!.acceptsDataFrom(ids[3]!) && status(1, "n3") === "alive", sim.nowMs + 60_000)).toBe(true);
  sim.runFor(5_000);
  sim.stop(2);
  sim.kill(3);
  expect(sim.runUntilTrue(() => status(1, "n3") === "dead", sim.nowMs + 60_000)).toBe(true);
  expect(sim.removeMember(1, ids[3]!)).toBe("removed");
  sim.runFor(60_000);
  sim.restart(0);
  expect(sim.runUntilTrue(() => status(0, "n1") === "alive" && status(1, "n0") === "alive", sim.nowMs + 60_000)).toBe(true);
  sim.runFor(10_000);
  sim.restart(2);
  sim.runUntilTrue(() => status(2, "n0") === "alive" && status(0, "n2") === "alive", sim.nowMs + 60_000);
  // The disagreement this test is about.
  expect(sim.cluster(2)!.placement()!.owners(25)).toEqual([asNodeId("n0")]);
  expect(sim.cluster(0)!.placement()!.owners(25)).toEqual([asNodeId("n2")]);
  sim.runFor(130_000);
  expect(keys.map((k) => Math.max(...[0, 1, 2].map((i) => sim.store(i).value(k))))).toEqual(keys.map(() => 7));
}, 120_000);
