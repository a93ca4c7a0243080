// An owner acknowledges a stray push, then restarts having lost it (modelled by restoreFrom: the
// folder as it was before the push, as an `interval`/`none` crash keeps only what was fsynced).
// The former owner saw no death, so its acknowledgement record survives (no strayForget); the
// new process answers the keep ask "yes" and the former owner drops the only copy.
import { expect, test } from "bun:test";
import { Placement } from "../../src/cluster/placement.ts";
import { asNodeId } from "../../src/cluster/types.ts";
import { EngineStore } from "../../src/sim/engine-store.ts";
import { Simulation } from "../../src/sim/sim.ts";


/** What these tests read of a former owner's eviction state (Cluster internals). */
interface Internals {
  strayPushed: Map<number, Map<string, { keep: string }>>;
  tree: { partitionKeyCount(p: number): number };
}

test("RF 1: an owner that lost what it acknowledged still says yes", () => {
  const sim = new Simulation({
    seed: 3, nodes: 4, config: { replicationFactor: 1, partitions: 64 }, counterInvariant: false, traceMessages: false,
    startStopped: [3], storeFactory: (actor, nowMs, hs) => new EngineStore(actor, nowMs, hs),
  });
  expect(sim.runUntilTrue(() => [0, 1, 2].every((i) => sim.view(i).filter((m) => m.status === "alive").length === 3), 120_000)).toBe(true);
  const ids = ["n0", "n1", "n2", "n3"].map(asNodeId);
  const cfg = { replicationFactor: 1, partitions: 64 };
  const before = new Placement(ids.slice(0, 3), cfg);
  const after = new Placement(ids, cfg);
  const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`).filter((k) => after.ownersOfKey(k)[0] === "n3");
  for (const k of keys) expect(sim.increment(Number(before.ownersOfKey(k)[0]!.slice(1)), k, 5)).toBe(true);
  sim.runFor(3_000);
  sim.restart(3);
  const backup = sim.backup(3); // n3's folder as fsynced before any stray arrived (it joins empty)
  // As soon as a former owner has n3's acknowledgement of a whole partition, n3 crashes.
  const acked = (): boolean => [0, 1, 2].some((a) => [...((sim.cluster(a) as unknown as Internals).strayPushed).values()].some((m) => m.has("n3")));
  expect(sim.runUntilTrue(acked, sim.nowMs + 60_000, 1)).toBe(true);
  sim.kill(3);
  sim.restart(3, { restoreFrom: backup });
  sim.runFor(60_000);
  const lost = keys.filter((k) => Math.max(...[0, 1, 2, 3].map((i) => sim.store(i).value(k))) !== 5);
  expect(lost).toEqual([]);
}, 300_000);
