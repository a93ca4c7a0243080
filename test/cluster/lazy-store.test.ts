// A store that reports changes lazily (the node's engine with deferChanges) behind the cluster:
// the cluster asks it for pending reports before it reads its hash tree, so anti-entropy still
// sees every write, however the writes and ticks interleave.

import { describe, expect, test } from "bun:test";
import { Cluster } from "../../src/cluster/cluster.ts";
import type { ReplicaStore } from "../../src/cluster/store.ts";
import type { NodeId } from "../../src/cluster/types.ts";
import { Engine } from "../../src/engine/index.ts";
import { ManualEnv, seed } from "./helpers.ts";

const T = 1_700_000_000_000;

function lazyNode(name: string, env: ManualEnv, seeds: string[]): { cluster: Cluster; engine: Engine; reports: () => number } {
  const engine = new Engine({ actor: name, deferChanges: true });
  let reports = 0;
  const store: ReplicaStore = {
    digest: (key) => engine.digest(key),
    states: (keys) => keys.flatMap((k) => {
      const s = engine.encodeState(k);
      return s === undefined ? [] : [[k, s] as [string, Uint8Array]];
    }),
    mergeStates: (entries) => {
      for (const [k, s] of entries) if (!engine.mergeState(k, s, T).ok) throw new Error("bad state");
    },
    mergeDeltas: (batch) => {
      for (const d of batch) if (!engine.mergeDelta(d, T).ok) throw new Error("bad delta");
    },
    reportChanges: () => {
      reports += engine.reportChanges();
    },
  };
  const cluster = new Cluster({
    id: name as NodeId, addr: `${name}:1`, seeds, env, store,
    config: { antiEntropyIntervalMs: 100, hashTreeDepth: 2 },
  });
  engine.setOnChange((k, d) => cluster.keyChanged(k, d));
  return { cluster, engine, reports: () => reports };
}

describe(`a lazily reporting store (seed ${seed})`, () => {
  test("writes never reported by hand still reach the peer through anti-entropy; each key is reported once per look", () => {
    const env = new ManualEnv(seed);
    const a = lazyNode("a", env, []);
    const b = lazyNode("b", env, ["a:1"]);
    const nodes = new Map([["a:1", a], ["b:1", b]]);
    const pump = (): void => {
      for (let round = 0; round < 1000; round++) {
        let moved = false;
        for (const [, n] of nodes) {
          n.cluster.drainEvents();
          for (const out of n.cluster.drainOutbound()) {
            moved = true;
            nodes.get(out.addr)?.cluster.step(n.cluster.status().id as NodeId, out.payload);
          }
        }
        if (!moved) return;
      }
      throw new Error("messages kept flowing");
    };
    // Writes on a only, never broadcast as deltas: only anti-entropy can carry them to b.
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 200; i++) {
        const r = a.engine.applyMany([{ kind: "incr", key: `k${i % 50}`, amount: 1n }, { kind: "incr", key: `k${i % 50}`, amount: 2n }], T);
        expect(r.results.every((x) => x.ok)).toBe(true);
      }
      for (let step = 0; step < 100; step++) {
        env.now += 10;
        a.cluster.tick();
        b.cluster.tick();
        pump();
      }
    }
    for (let i = 0; i < 50; i++) expect(b.engine.get(`k${i}`)).toEqual({ type: "pncounter", value: BigInt(5 * 4 * 3) });
    expect(b.cluster.rootHash()).toBe(a.cluster.rootHash());
    // 5 rounds of writes to 50 keys: a reported each key once per round, not once per write.
    expect(a.reports()).toBe(5 * 50);
  });
});
