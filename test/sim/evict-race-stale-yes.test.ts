// Found by a review of eviction (each failed before the fix named). A former owner kept a "yes" until it evicted. If the owner that said
// yes starts a leave in between, its hand-off gives the keys back to the former owner (the next
// owner once it is gone), which then drops them on the stale yes: RF 1 loses them.
import { expect, test } from "bun:test";
import { Placement, partitionOf } from "../../src/cluster/placement.ts";
import { asNodeId } from "../../src/cluster/types.ts";
import { EngineStore } from "../../src/sim/engine-store.ts";
import { Simulation } from "../../src/sim/sim.ts";


/** What these tests read of a former owner's eviction state (Cluster internals). */
interface Internals {
  strayPushed: Map<number, Map<string, { keep: string }>>;
  tree: { partitionKeyCount(p: number): number };
}

test("RF 1: an owner's yes, then its leave before the asker's next eviction pass", () => {
  const sim = new Simulation({
    seed: 3, nodes: 4, config: { replicationFactor: 1, partitions: 64 }, counterInvariant: false, traceMessages: false,
    startStopped: [3], storeFactory: (actor, nowMs, hs) => new EngineStore(actor, nowMs, hs),
  });
  expect(sim.runUntilTrue(() => [0, 1, 2].every((i) => sim.view(i).filter((m) => m.status === "alive").length === 3), 120_000)).toBe(true);
  const ids = ["n0", "n1", "n2", "n3"].map(asNodeId);
  const cfg = { replicationFactor: 1, partitions: 64 };
  const before = new Placement(ids.slice(0, 3), cfg);
  const after = new Placement(ids, cfg);
  // Keys that move to n3 when it joins, written at their owner before.
  const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`).filter((k) => after.ownersOfKey(k)[0] === "n3");
  for (const k of keys) expect(sim.increment(Number(before.ownersOfKey(k)[0]!.slice(1)), k, 5)).toBe(true);
  sim.runFor(3_000);
  sim.restart(3);
  // Wait until some former owner holds a yes from n3 for a partition it has not evicted yet.
  let hit: { a: number; p: number } | null = null;
  const found = sim.runUntilTrue(() => {
    for (const a of [0, 1, 2]) {
      const sp = (sim.cluster(a) as unknown as Internals).strayPushed;
      for (const [p, m] of sp) if (m.get("n3")?.keep === "yes" && (sim.cluster(a) as unknown as Internals).tree.partitionKeyCount(p) > 0) { hit = { a, p }; return true; }
    }
    return false;
  }, sim.nowMs + 60_000, 1);
  expect(found).toBe(true);
  const { a, p } = hit!;
  const inP = keys.filter((k) => partitionOf(k, 64) === p);
  // n3 leaves at once, as \`imdb admin leave\` does: hand-off first (to n${a}, p's owner without n3).
  expect(sim.handOff(3)).toBeNull();
  sim.runFor(1_500); // the hand-off's second pass, the delta drain
  sim.leave(3);
  sim.runUntilTrue(() => [0, 1, 2].every((i) => sim.view(i).find((m) => m.id === "n3")?.status === "left"), sim.nowMs + 30_000);
  sim.kill(3);
  sim.runFor(60_000);
  const lost = inP.filter((k) => Math.max(...[0, 1, 2].map((i) => sim.store(i).value(k))) !== 5);
  expect(lost).toEqual([]);
}, 300_000);
