// How much one anti-entropy exchange repairs: every differing leaf of the tree is compared at
// once, and the keys a node lists per interval are bounded, so a replica that missed a few keys
// everywhere converges in one exchange, and one that missed nearly everything in a few.

import { describe, expect, test } from "bun:test";
import { AntiEntropy } from "../../src/cluster/antientropy.ts";
import { defaultLanConfig } from "../../src/cluster/config.ts";
import { HashTree } from "../../src/cluster/hashtree.ts";
import { Outbox } from "../../src/cluster/outbox.ts";
import type { NodeId } from "../../src/cluster/types.ts";
import { decodeEnvelope } from "../../src/cluster/wire.ts";
import { CounterStore } from "../../src/sim/store.ts";
import { ManualEnv, seed } from "./helpers.ts";

const config = defaultLanConfig();

interface Side {
  id: NodeId;
  store: CounterStore;
  tree: HashTree;
  out: Outbox;
  ae: AntiEntropy;
}

function side(name: string, env: ManualEnv): Side {
  const store = new CounterStore(name);
  const tree = new HashTree(config.hashTreeDepth);
  store.setOnChange((k, d) => tree.set(k, d));
  const out = new Outbox();
  return { id: name as NodeId, store, tree, out, ae: new AntiEntropy(config, env, tree, store, out, []) };
}

/** Bytes of states (with their keys) in ae-states messages, per sender, since the last reset. */
const statesSent = new Map<string, number>();

/** Delivers everything both sides send until both are quiet; returns the keys listed in ae-leaves messages. */
function exchange(from: Side, to: Side): number {
  from.ae.start({ id: to.id, addr: to.id });
  let listed = 0;
  for (let hop = 0; hop < 100; hop++) {
    let moved = false;
    for (const [s, r] of [[from, to], [to, from]] as const) {
      for (const o of s.out.drain(s.id, () => [])) {
        moved = true;
        for (const m of decodeEnvelope(o.payload).messages) {
          if (m.kind === "ae-leaves") for (const l of m.leaves) listed += l.entries.length;
          if (m.kind === "ae-states") for (const [k, st] of m.entries) statesSent.set(s.id, (statesSent.get(s.id) ?? 0) + k.length + st.length);
          if (m.kind === "ae-tree" || m.kind === "ae-leaves" || m.kind === "ae-states" || m.kind === "ae-piece") r.ae.handle(s.id, s.id, m);
        }
      }
    }
    if (!moved) return listed;
  }
  throw new Error("anti-entropy kept sending for 100 hops");
}

const keysOf = (n: number, prefix: string): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe(`anti-entropy exchange size (seed ${seed})`, () => {
  test("a replica missing a few keys spread over the whole tree gets every one of them in one exchange", () => {
    const env = new ManualEnv(seed);
    const a = side("a", env);
    const b = side("b", env);
    const keys = keysOf(20_000, "k");
    for (const k of keys) a.store.increment(k, 1);
    // b holds all but every 40th key: 500 missing keys in ~500 of the 65,536 leaves.
    b.store.mergeStates(a.store.states(keys.filter((_, i) => i % 40 !== 0)));
    expect(b.tree.keyCount).toBe(19_500);
    exchange(a, b);
    // One message's slice of leaves (4,096 of 65,536) would have found about 31 of them.
    expect(b.tree.keyCount).toBe(20_000);
    expect(b.tree.hash(0, 0)).toEqual(a.tree.hash(0, 0));
  });

  test("replicas that differ almost everywhere list a bounded number of keys per interval and still converge in a few exchanges", () => {
    const env = new ManualEnv(seed + 1);
    const a = side("a", env);
    const b = side("b", env);
    for (const k of keysOf(40_000, "a")) a.store.increment(k, 1);
    for (const k of keysOf(40_000, "b")) b.store.increment(k, 1);
    // Whole leaves are listed: the budget may be passed by one leaf's keys (a few here).
    const listedMax = config.antiEntropyListedKeysMax + 64;
    // b answers a's exchange and lists up to its budget; a second exchange in the same interval
    // finds b's budget spent (it is a rate, not per exchange) although the replicas still differ.
    env.now += config.antiEntropyIntervalMs;
    const first = exchange(a, b);
    expect(first).toBeGreaterThanOrEqual(config.antiEntropyListedKeysMax);
    expect(first).toBeLessThanOrEqual(listedMax);
    expect(exchange(a, b)).toBe(0);
    expect(b.tree.keyCount).toBeLessThan(80_000);
    let exchanges = 1;
    while (a.tree.keyCount < 80_000 || b.tree.keyCount < 80_000) {
      env.now += config.antiEntropyIntervalMs;
      const listed = exchanges % 2 === 0 ? exchange(a, b) : exchange(b, a);
      expect(listed).toBeLessThanOrEqual(listedMax);
      exchanges++;
      expect(exchanges).toBeLessThanOrEqual(6);
    }
    expect(b.tree.hash(0, 0)).toEqual(a.tree.hash(0, 0));
  });

  test("an empty replica is sent at most the interval's state budget per interval, however much it lacks, and is filled over a few intervals", () => {
    const env = new ManualEnv(seed + 2);
    const a = side("a", env);
    const b = side("b", env);
    for (const k of keysOf(40_000, "a-somewhat-longer-key-name-")) a.store.increment(k, 1);
    // b lists every leaf (all empty) and a holds 40,000 keys (~3 MB of states): one exchange
    // used to ship them all at once, 8 MB per listing message, with no bound per exchange.
    let intervals = 0;
    while (b.tree.keyCount < 40_000) {
      env.now += config.antiEntropyIntervalMs;
      statesSent.clear();
      exchange(a, b);
      exchange(a, b);
      expect(statesSent.get("a") ?? 0).toBeLessThanOrEqual(config.antiEntropyStateBytesMax);
      intervals++;
      expect(intervals).toBeLessThanOrEqual(8);
    }
    expect(intervals).toBeGreaterThan(1);
    expect(b.tree.hash(0, 0)).toEqual(a.tree.hash(0, 0));
  });
});
