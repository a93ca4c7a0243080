// Anti-entropy ships every state a replica may hold, whatever its size: states above one message
// go in pieces, and a big key neither fails the exchange nor delays the small keys behind it.

import { describe, expect, test } from "bun:test";
import { AntiEntropy } from "../../src/cluster/antientropy.ts";
import { defaultLanConfig } from "../../src/cluster/config.ts";
import { HashTree } from "../../src/cluster/hashtree.ts";
import { Outbox } from "../../src/cluster/outbox.ts";
import type { NodeId } from "../../src/cluster/types.ts";
import { decodeEnvelope, envelopeBytesMax, stateBytesMax, WireError } from "../../src/cluster/wire.ts";
import { Engine } from "../../src/engine/index.ts";
import { aeReplyBytesMax, keyStateWriteBytesMax, registerValueBytesMax } from "../../src/limits.ts";
import { EngineStore } from "../../src/sim/engine-store.ts";
import { ManualEnv, seed } from "./helpers.ts";

interface Side {
  id: NodeId;
  store: EngineStore;
  tree: HashTree;
  out: Outbox;
  ae: AntiEntropy;
  refused: string[];
}

function side(name: string, env: ManualEnv): Side {
  // What is tested here is how states are cut into messages, not the rate limits: an interval's
  // budgets are set above what these exchanges ship.
  const config = { ...defaultLanConfig(), hashTreeDepth: 2, antiEntropyStateBytesMax: 64 * 1024 * 1024, antiEntropyListedKeysMax: 1_000_000 };
  const store = new EngineStore(name, () => 1_000);
  const tree = new HashTree(config.hashTreeDepth);
  store.setOnChange((k, d) => tree.set(k, d));
  const out = new Outbox();
  const events: never[] = [];
  return { id: name as NodeId, store, tree, out, ae: new AntiEntropy(config, env, tree, store, out, events), refused: [] };
}

/** Delivers everything both sides send (through the real wire codec) until both are quiet. */
function pump(a: Side, b: Side): void {
  for (let round = 0; round < 100; round++) {
    let moved = false;
    for (const [from, to] of [[a, b], [b, a]] as const) {
      for (const o of from.out.drain(from.id, () => [])) {
        moved = true;
        let env;
        try {
          env = decodeEnvelope(o.payload);
        } catch (e) {
          if (!(e instanceof WireError)) throw e;
          to.refused.push(e.message); // what Cluster.step does: the whole envelope is refused
          continue;
        }
        for (const m of env.messages) {
          if (m.kind === "ae-tree" || m.kind === "ae-leaves" || m.kind === "ae-states" || m.kind === "ae-piece") {
            try {
              to.ae.handle(from.id, env.fromAddr, m);
            } catch (e) {
              to.refused.push(String(e));
            }
          }
        }
      }
    }
    if (!moved) return;
  }
  throw new Error("anti-entropy kept sending for 100 rounds");
}

/**
 * Gives `into` a key whose MV state is `writers` times ~3 MiB: each writer wrote three 1 MiB
 * values with empty contexts (concurrent, all kept; a fourth would pass the write bound).
 */
function bigKey(into: Engine, key: string, writers: number, tag: number): void {
  const perWriter = Math.floor(keyStateWriteBytesMax / registerValueBytesMax) - 1;
  for (let w = 0; w < writers; w++) {
    const e = new Engine({ actor: `writer-${tag}-${w}` });
    for (let i = 0; i < perWriter; i++) {
      const r = e.apply({ kind: "setMv", key, value: new Uint8Array(registerValueBytesMax).fill(w * 16 + i), context: new Uint8Array(0) }, 1_000);
      if (!r.ok) throw new Error(`write refused: ${r.error.message}`);
    }
    const m = into.mergeState(key, e.encodeState(key) as Uint8Array, 1_000);
    if (!m.ok) throw new Error(`merge refused: ${m.error.message}`);
  }
}

describe(`anti-entropy with big keys (seed ${seed})`, () => {
  test("keys above one message are shipped in pieces, one per reply at least, and the small keys converge in the first exchange", () => {
    const env = new ManualEnv(seed);
    const a = side("a", env);
    const b = side("b", env);
    // Three keys of ~6 MiB each (merges of two writers' 3 MiB): more than one reply can hold.
    const bigKeys = ["big-0", "big-1", "big-2"];
    bigKeys.forEach((k, i) => bigKey(a.store.engine, k, 2, i));
    for (const k of bigKeys) expect((a.store.engine.encodeState(k) as Uint8Array).length).toBeGreaterThan(4 * 1024 * 1024);
    // Small keys, together a good part of a reply, so that a big key sent first would crowd them out.
    const small: string[] = [];
    for (let i = 0; i < 300; i++) {
      const key = `small-${i}`;
      small.push(key);
      const value = new Uint8Array(i % 10 === 0 ? 200 * 1024 : 100).fill(i & 0xff);
      const r = a.store.engine.apply({ kind: "set", key, value }, 1_000 + i);
      if (!r.ok) throw new Error(r.error.message);
    }
    const smallBytes = small.reduce((n, k) => n + (a.store.engine.encodeState(k) as Uint8Array).length, 0);
    expect(smallBytes).toBeLessThan(aeReplyBytesMax);
    expect(smallBytes + 6 * 1024 * 1024).toBeGreaterThan(aeReplyBytesMax / 2);

    a.ae.start({ id: b.id, addr: "b" });
    pump(a, b);
    expect(b.refused).toEqual([]);
    for (const k of small) expect(b.store.engine.encodeState(k)).toEqual(a.store.engine.encodeState(k) as Uint8Array);
    const first = bigKeys.filter((k) => b.store.engine.has(k)).length;
    expect(first).toBeGreaterThanOrEqual(1);

    // Every later exchange ships at least one more big key until the replicas are equal.
    let exchanges = 1;
    while (bigKeys.some((k) => !b.store.engine.has(k)) && exchanges < 10) {
      a.ae.start({ id: b.id, addr: "b" });
      pump(a, b);
      exchanges++;
    }
    expect(b.refused).toEqual([]);
    for (const k of bigKeys) expect(b.store.engine.encodeState(k)).toEqual(a.store.engine.encodeState(k) as Uint8Array);
    expect(exchanges).toBeLessThanOrEqual(bigKeys.length);
    expect(b.tree.hash(0, 0)).toEqual(a.tree.hash(0, 0));
    expect(b.ae.reassemblyBytesHeld).toBe(0);
  });

  test("pieces are bounded by one message, duplicates are harmless, and a piece cut elsewhere is refused", () => {
    const env = new ManualEnv(seed);
    const a = side("a", env);
    const b = side("b", env);
    bigKey(a.store.engine, "big", 2, 9);
    a.ae.start({ id: b.id, addr: "b" });
    // Capture the pieces instead of delivering them, to replay them out of order and twice.
    const pieces: Array<Extract<ReturnType<typeof decodeEnvelope>["messages"][number], { kind: "ae-piece" }>> = [];
    for (let round = 0; round < 20; round++) {
      for (const [from, to] of [[a, b], [b, a]] as const) {
        for (const o of from.out.drain(from.id, () => [])) {
          for (const m of decodeEnvelope(o.payload).messages) {
            if (m.kind === "ae-piece") pieces.push(m);
            else if (m.kind === "ae-tree" || m.kind === "ae-leaves" || m.kind === "ae-states") to.ae.handle(from.id, "x", m);
          }
        }
      }
    }
    expect(pieces.length).toBeGreaterThan(4);
    for (const p of pieces) expect(p.bytes.length).toBeLessThanOrEqual(stateBytesMax);
    const misCut = { ...(pieces[0] as (typeof pieces)[number]), offset: 1 };
    b.ae.handle(a.id, "a", misCut);
    expect(b.ae.reassemblyBytesHeld).toBe(0);
    for (const p of [...pieces].reverse()) {
      b.ae.handle(a.id, "a", p);
      b.ae.handle(a.id, "a", p);
    }
    expect(b.store.engine.encodeState("big")).toEqual(a.store.engine.encodeState("big") as Uint8Array);
    expect(b.ae.reassemblyBytesHeld).toBe(0);
  });

  test("a listing of many long keys is split across envelopes every peer accepts, and the replicas converge", () => {
    const env = new ManualEnv(seed);
    const a = side("a", env);
    const b = side("b", env);
    // 12,000 keys of 1,000 bytes on b, which lists its leaves when a opens the exchange:
    // listing them all at once would take ~12 MB, past what a peer decodes.
    for (let i = 0; i < 12_000; i++) {
      const r = b.store.engine.apply({ kind: "incr", key: `${String(i).padStart(6, "0")}${"x".repeat(994)}`, amount: 1n }, 1_000);
      if (!r.ok) throw new Error(r.error.message);
    }
    let largest = 0;
    for (let exchange = 0; exchange < 4 && a.store.engine.keyCount < 12_000; exchange++) {
      a.ae.start({ id: b.id, addr: "b" });
      for (let round = 0; round < 100; round++) {
        let moved = false;
        for (const [from, to] of [[a, b], [b, a]] as const) {
          for (const o of from.out.drain(from.id, () => [])) {
            moved = true;
            largest = Math.max(largest, o.payload.length);
            const e = decodeEnvelope(o.payload);
            for (const m of e.messages) if (m.kind === "ae-tree" || m.kind === "ae-leaves" || m.kind === "ae-states" || m.kind === "ae-piece") to.ae.handle(from.id, e.fromAddr, m);
          }
        }
        if (!moved) break;
      }
    }
    expect(a.store.engine.keyCount).toBe(12_000);
    expect(b.tree.hash(0, 0)).toEqual(a.tree.hash(0, 0));
    expect(largest).toBeLessThanOrEqual(envelopeBytesMax);
  });
});
