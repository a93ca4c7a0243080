// The same loss without a tight race: with more stray keys than one eviction pass drops
// (evictKeysPerPass 16,384), yes answers wait for seconds before the asker acts on them.
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

test("RF 1: a join of many keys, then a leave 3 s after the first yes", () => {
  const sim = new Simulation({
    seed: 3, nodes: 4, config: { replicationFactor: 1, partitions: 64 }, counterInvariant: false, traceMessages: false,
    startStopped: [3], storeFactory: (actor, nowMs, hs) => new EngineStore(actor, nowMs, hs),
  });
  expect(sim.runUntilTrue(() => [0, 1, 2].every((i) => sim.view(i).filter((m) => m.status === "alive").length === 3), 120_000)).toBe(true);
  const ids = ["n0", "n1", "n2", "n3"].map(asNodeId);
  const cfg = { replicationFactor: 1, partitions: 64 };
  const before = new Placement(ids.slice(0, 3), cfg);
  const after = new Placement(ids, cfg);
  const keys: string[] = [];
  for (let i = 0; keys.length < 60_000; i++) if (after.ownersOfKey(`k${i}`)[0] === "n3") keys.push(`k${i}`);
  for (const k of keys) expect(sim.increment(Number(before.ownersOfKey(k)[0]!.slice(1)), k, 5)).toBe(true);
  sim.runFor(3_000);
  sim.restart(3);
  const yesHeld = (): Array<{ a: number; p: number }> => {
    const out: Array<{ a: number; p: number }> = [];
    for (const a of [0, 1, 2]) {
      const sp = (sim.cluster(a) as unknown as Internals).strayPushed;
      for (const [p, m] of sp) if (m.get("n3")?.keep === "yes" && (sim.cluster(a) as unknown as Internals).tree.partitionKeyCount(p) > 0) out.push({ a, p });
    }
    return out;
  };
  expect(sim.runUntilTrue(() => yesHeld().length > 0, sim.nowMs + 120_000, 100)).toBe(true);
  sim.runFor(3_000);
  expect(sim.handOff(3)).toBeNull();
  sim.runFor(1_500);
  sim.leave(3);
  sim.runUntilTrue(() => [0, 1, 2].every((i) => sim.view(i).find((m) => m.id === "n3")?.status === "left"), sim.nowMs + 30_000);
  sim.kill(3);
  sim.runFor(30_000);
  const lost = keys.filter((k) => Math.max(...[0, 1, 2].map((i) => sim.store(i).value(k))) !== 5);
  expect(lost).toEqual([]);
}, 300_000);
