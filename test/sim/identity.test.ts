// A node that lost its data comes back as a new replica (finding 1 of issue 12): its new
// acknowledged increments survive the join, on the real engine, in the simulator that builds
// replicas with the node's own rules (persist/replica.ts).

import { describe, expect, test } from "bun:test";
import { Engine } from "../../src/engine/index.ts";
import { actorName } from "../../src/crdt/actors.ts";
import { EngineStore } from "../../src/sim/engine-store.ts";
import { Simulation } from "../../src/sim/sim.ts";
import { epochFromRandom, parseReplicaActor, replicaActor } from "../../src/persist/replica.ts";

const seed = Number(process.env.IMDB_SEED ?? Math.floor(Math.random() * 1_000_000_000));

function incr(e: Engine, key: string, by: number): Uint8Array {
  const r = e.apply({ kind: "incr", key, amount: BigInt(by) }, 1_000);
  if (!r.ok) throw new Error(r.error.message);
  return r.delta;
}

function counter(e: Engine, key: string): bigint {
  const v = e.get(key);
  if (v === undefined || (v.type !== "pncounter" && v.type !== "gcounter")) throw new Error(`${key} is not a counter`);
  return v.value;
}

describe("engine: a wiped replica's new increments", () => {
  // Both halves run the same steps; only the actor of the replica after the wipe differs.
  const run = (actorAfterWipe: string): bigint => {
    const before = new Engine({ actor: replicaActor("node-1", epochFromRandom(new Uint8Array([1, 1, 1, 1, 1, 1, 1, 1]))) });
    const peer = new Engine({ actor: replicaActor("node-2", epochFromRandom(new Uint8Array([2, 2, 2, 2, 2, 2, 2, 2]))) });
    for (let i = 0; i < 10; i++) expect(peer.mergeDelta(incr(before, "c", 1), 1_000).ok).toBe(true);
    const after = new Engine({ actor: actorAfterWipe === "same" ? actorName(before.actor) : actorAfterWipe });
    for (let i = 0; i < 3; i++) expect(peer.mergeDelta(incr(after, "c", 1), 1_000).ok).toBe(true);
    return counter(peer, "c");
  };

  test("under a new epoch all 3 survive the join (10 + 3)", () => {
    expect(run(replicaActor("node-1", epochFromRandom(new Uint8Array([3, 3, 3, 3, 3, 3, 3, 3]))))).toBe(13n);
  });

  test("control: with the old actor (what the node did before) they vanish under the old count", () => {
    expect(run("same")).toBe(10n);
  });
});

describe(`simulator (seed ${seed})`, () => {
  const cluster = (): Simulation => {
    const sim = new Simulation({ seed, nodes: 2, storeFactory: (actor, nowMs) => new EngineStore(actor, nowMs) });
    sim.runUntil(3_000);
    for (let i = 0; i < 10; i++) expect(sim.increment(0, "c", 1)).toBe(true);
    expect(sim.runUntilTrue(() => sim.divergence() === null, 20_000)).toBe(true);
    expect(sim.store(1).value("c")).toBe(10);
    return sim;
  };

  /** n1 is paused while n0 takes 3 increments, so n0 cannot first relearn its old count. */
  const threeWhilePeerPaused = (sim: Simulation): void => {
    sim.stall(1, 2_000);
    sim.runFor(100);
    for (let i = 0; i < 3; i++) expect(sim.increment(0, "c", 1)).toBe(true);
    expect(sim.runUntilTrue(() => sim.divergence() === null, sim.nowMs + 60_000)).toBe(true);
    expect(sim.store(0).value("c")).toBe(13);
    expect(sim.store(1).value("c")).toBe(13);
    expect(sim.violations).toEqual([]);
  };

  test("a wiped node restarts as a new replica of the same node; a clean restart keeps its actor, a crash does not", () => {
    const sim = cluster();
    const first = sim.store(0).actor;
    expect(parseReplicaActor(first)?.nodeId).toBe("n0");
    sim.stop(0);
    sim.restart(0);
    expect(sim.store(0).actor).toBe(first);
    sim.kill(0);
    sim.restart(0);
    const crashed = sim.store(0).actor;
    expect(parseReplicaActor(crashed)?.nodeId).toBe("n0");
    expect(crashed).not.toBe(first);
    sim.kill(0);
    sim.restart(0, { wipe: true });
    const second = sim.store(0).actor;
    expect(parseReplicaActor(second)?.nodeId).toBe("n0");
    expect(second).not.toBe(crashed);
    threeWhilePeerPaused(sim);
  });

  test("a node whose WAL --repair cut back to an older state is a new replica and keeps its new increments", () => {
    const sim = new Simulation({ seed, nodes: 2, storeFactory: (actor, nowMs) => new EngineStore(actor, nowMs) });
    sim.runUntil(3_000);
    for (let i = 0; i < 5; i++) sim.increment(0, "c", 1);
    const older = sim.backup(0);
    for (let i = 0; i < 5; i++) sim.increment(0, "c", 1);
    expect(sim.runUntilTrue(() => sim.divergence() === null, 20_000)).toBe(true);
    const first = sim.store(0).actor;
    sim.kill(0);
    sim.restart(0, { repairTo: older });
    expect(sim.store(0).actor).not.toBe(first);
    threeWhilePeerPaused(sim);
  });

  test("a node restored from an older copy of its folder is a new replica and keeps its new increments", () => {
    const sim = new Simulation({ seed, nodes: 2, storeFactory: (actor, nowMs) => new EngineStore(actor, nowMs) });
    sim.runUntil(3_000);
    for (let i = 0; i < 5; i++) sim.increment(0, "c", 1);
    const copy = sim.backup(0);
    for (let i = 0; i < 5; i++) sim.increment(0, "c", 1);
    expect(sim.runUntilTrue(() => sim.divergence() === null, 20_000)).toBe(true);
    const first = sim.store(0).actor;
    sim.kill(0);
    sim.restart(0, { restoreFrom: copy });
    expect(sim.store(0).actor).not.toBe(first);
    expect(sim.store(0).value("c")).toBe(5);
    threeWhilePeerPaused(sim);
  });
});
