// Members must place keys alike: a node whose replicationFactor or partitions differ from the
// cluster's is never merged into its member list (nor the cluster into its), and both sides
// report it (settings-mismatch), instead of two views of who owns which key.

import { expect, test } from "bun:test";
import { Cluster } from "../../src/cluster/cluster.ts";
import type { ClusterConfig } from "../../src/cluster/config.ts";
import type { ClusterEvent, NodeId } from "../../src/cluster/types.ts";
import { CounterStore } from "../../src/sim/store.ts";
import { ManualEnv } from "./helpers.ts";

/** Two nodes, b joining a, exchanging every message for `ms` of manual time; their events. */
function pair(a: Partial<ClusterConfig>, b: Partial<ClusterConfig>, ms = 5_000): { a: Cluster; b: Cluster; events: Map<string, ClusterEvent[]> } {
  const env = new ManualEnv(7);
  const nodes = new Map<string, Cluster>([
    ["a:1", new Cluster({ id: "a" as NodeId, addr: "a:1", env, store: new CounterStore("a"), config: a })],
    ["b:1", new Cluster({ id: "b" as NodeId, addr: "b:1", seeds: ["a:1"], env, store: new CounterStore("b"), config: b })],
  ]);
  const events = new Map<string, ClusterEvent[]>([["a:1", []], ["b:1", []]]);
  const end = env.now + ms;
  while (env.now < end) {
    env.now += 10;
    for (const c of nodes.values()) c.tick();
    for (let round = 0; round < 4; round++) {
      for (const [addr, c] of nodes) {
        for (const o of c.drainOutbound()) nodes.get(o.addr)?.step(addr === "a:1" ? ("a" as NodeId) : ("b" as NodeId), o.payload);
        events.get(addr)!.push(...c.drainEvents());
      }
    }
  }
  return { a: nodes.get("a:1")!, b: nodes.get("b:1")!, events };
}

const ids = (c: Cluster): string[] => c.members().filter((m) => m.status !== "left").map((m) => m.id).sort();

test("the same settings: the joiner becomes a member and places keys", () => {
  const { a, b } = pair({ replicationFactor: 2, partitions: 64 }, { replicationFactor: 2, partitions: 64 });
  expect(ids(a)).toEqual(["a", "b"]);
  expect(ids(b)).toEqual(["a", "b"]);
  expect(b.joining).toBe(false);
});

for (const [name, other] of [
  ["another replication factor", { replicationFactor: 3, partitions: 64 }],
  ["another partition count", { replicationFactor: 2, partitions: 128 }],
  ["no replication factor (every node holds every key)", { replicationFactor: 0, partitions: 64 }],
] as const) {
  test(`${name}: neither lists the other, the joiner does not join, both report the mismatch`, () => {
    const { a, b, events } = pair({ replicationFactor: 2, partitions: 64 }, other);
    expect(ids(a)).toEqual(["a"]);
    expect(ids(b)).toEqual(["b"]);
    if (other.replicationFactor > 0) expect(b.joining).toBe(true);
    for (const addr of ["a:1", "b:1"]) {
      const m = events.get(addr)!.find((e) => e.kind === "settings-mismatch");
      expect(m).toBeDefined();
      if (m?.kind === "settings-mismatch") expect(`${m.theirs} | ${m.ours}`).toContain("replicationFactor");
    }
  });
}

test("partitions differing without a replication factor do not matter (every node holds every key)", () => {
  const { a, b, events } = pair({ replicationFactor: 0, partitions: 64 }, { replicationFactor: 0, partitions: 128 });
  expect(ids(a)).toEqual(["a", "b"]);
  expect(ids(b)).toEqual(["a", "b"]);
  expect([...events.values()].flat().some((e) => e.kind === "settings-mismatch")).toBe(false);
});
