// Cluster.route on the simulator's real cluster state machines (replicationFactor 2, 5 nodes):
// every node routes each key to the owners the placement of the member list names, agreeing
// with the others; a SIGKILLed owner keeps its partitions (dead, not reaped) but is skipped for
// a live owner once detected; with replicationFactor 0 everything is local.
import { describe, expect, test } from "bun:test";
import { Placement } from "../../src/cluster/placement.ts";
import { Simulation } from "../../src/sim/sim.ts";

const keys = Array.from({ length: 200 }, (_, i) => `key:${i}`);
const config = { replicationFactor: 2, partitions: 64 };

describe("Cluster.route", () => {
  test("every node routes each key to its placement's owners; a dead owner is skipped, not replaced", () => {
    const seed = 17;
    const sim = new Simulation({ seed, nodes: 5, config });
    // Before any node has a peer's member list it cannot place keys: it takes no writes.
    for (const i of sim.runningIndexes()) {
      expect(sim.cluster(i)!.joining).toBe(true);
      expect(sim.cluster(i)!.route("key:1")).toEqual({ kind: "joining" });
    }
    expect(sim.runUntilTrue(() => sim.runningIndexes().every((i) => sim.view(i).filter((m) => m.status === "alive").length === 5), 60_000), `seed ${seed}: formed`).toBe(true);
    const ids = sim.runningIndexes().map((i) => sim.idOf(i));
    const placement = new Placement(ids, config);
    for (const i of sim.runningIndexes()) {
      const self = sim.idOf(i);
      expect(sim.cluster(i)!.joining).toBe(false);
      expect(sim.cluster(i)!.placement()!.members).toEqual(placement.members);
      for (const key of keys) {
        const owners = placement.ownersOfKey(key);
        const r = sim.cluster(i)!.route(key);
        if (owners.includes(self)) expect(r.kind).toBe("local");
        else {
          expect(r).toEqual({ kind: "forward", to: owners[0]!, addr: sim.view(i).find((m) => m.id === owners[0])!.address });
          // A read whose call to the first owner failed goes to the next (src/node/forward.ts);
          // with every owner passed over there is nowhere to go.
          expect(sim.cluster(i)!.route(key, new Set([owners[0]!]))).toEqual({ kind: "forward", to: owners[1]!, addr: sim.view(i).find((m) => m.id === owners[1])!.address });
          expect(sim.cluster(i)!.route(key, new Set(owners)).kind).toBe("unavailable");
        }
      }
    }
    // Kill node 0; once the others hold it dead, keys it owned first go to their other owner.
    sim.kill(0);
    const dead = sim.idOf(0);
    expect(sim.runUntilTrue(() => [1, 2, 3, 4].every((i) => sim.view(i).find((m) => m.id === dead)?.status === "dead"), 120_000), `seed ${seed}: detected`).toBe(true);
    for (const i of [1, 2, 3, 4]) {
      // Still the same placement: a dead member keeps its partitions until reaped.
      expect(sim.cluster(i)!.placement()!.members).toEqual(placement.members);
      for (const key of keys) {
        const owners = placement.ownersOfKey(key);
        const r = sim.cluster(i)!.route(key);
        if (owners.includes(sim.idOf(i))) expect(r.kind).toBe("local");
        else {
          expect(r.kind).toBe("forward");
          if (r.kind === "forward") expect(r.to).toBe(owners.find((o) => o !== dead)!);
        }
      }
    }
  });

  test("with replicationFactor 0 every key is local and there is no placement, joined or not", () => {
    const sim = new Simulation({ seed: 3, nodes: 3 });
    for (const i of sim.runningIndexes()) expect(sim.cluster(i)!.route("k").kind).toBe("local");
    sim.runFor(5_000);
    for (const i of sim.runningIndexes()) {
      expect(sim.cluster(i)!.placement()).toBeNull();
      for (const key of keys) expect(sim.cluster(i)!.route(key).kind).toBe("local");
    }
  });
});
