// Whatever a peer sends, Cluster.step never throws and never declares its own node dead.

import { expect, test } from "bun:test";
import fc from "fast-check";
import { Cluster } from "../../src/cluster/cluster.ts";
import type { Incarnation, NodeId } from "../../src/cluster/types.ts";
import { encodeEnvelope, type Message } from "../../src/cluster/wire.ts";
import { CounterStore } from "../../src/sim/store.ts";
import { ManualEnv, propertyRuns, seed } from "./helpers.ts";

const ids = ["a", "b", "c"].map((s) => s as NodeId);
const idArb = fc.constantFrom(...ids);
const incArb = fc.nat({ max: 5 }).map((n) => n as Incarnation);
const bytesArb = fc.uint8Array({ maxLength: 20 });
const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ kind: fc.constant("ping" as const), seq: fc.nat(), target: idArb }),
  fc.record({ kind: fc.constant("ping-req" as const), seq: fc.nat(), target: idArb, targetAddr: fc.constantFrom("a:1", "b:1", "z:9") }),
  fc.record({ kind: fc.constant("ack" as const), seq: fc.nat({ max: 5 }) }),
  fc.record({ kind: fc.constant("nack" as const), seq: fc.nat({ max: 5 }) }),
  fc.record({ kind: fc.constant("alive" as const), id: idArb, incarnation: incArb, addr: fc.constantFrom("a:1", "b:1", "b:2") }),
  fc.record({ kind: fc.constant("suspect" as const), id: idArb, incarnation: incArb, from: idArb }),
  fc.record({ kind: fc.constant("dead" as const), id: idArb, incarnation: incArb, from: idArb }),
  fc.record({ kind: fc.constant("left" as const), id: idArb, incarnation: incArb }),
  fc.record({
    kind: fc.constant("push-pull" as const), join: fc.boolean(), reply: fc.boolean(),
    // Mostly the settings of the cluster under test (replicationFactor 0), sometimes another's.
    settings: fc.constantFrom({ replicationFactor: 0, partitions: 16_384 }, { replicationFactor: 0, partitions: 64 }, { replicationFactor: 0, partitions: 16_384 }, { replicationFactor: 3, partitions: 1024 }),
    members: fc.array(fc.record({ id: idArb, addr: fc.constantFrom("a:1", "b:1"), incarnation: incArb, status: fc.constantFrom("alive" as const, "suspect" as const, "dead" as const, "left" as const) }), { maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant("delta-batch" as const), epoch: fc.nat({ max: 3 }), floorSeq: fc.nat({ max: 10 }), firstSeq: fc.integer({ min: 1, max: 10 }), deltas: fc.array(bytesArb, { maxLength: 3 }) }),
  fc.record({ kind: fc.constant("delta-ack" as const), epoch: fc.nat({ max: 3 }), seq: fc.nat({ max: 10 }) }),
  fc.record({ kind: fc.constant("ae-tree" as const), depth: fc.constantFrom(2, 4), level: fc.nat({ max: 2 }), items: fc.array(fc.record({ index: fc.nat({ max: 300 }), hash: fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.nat()) }), { maxLength: 5 }) }),
  fc.record({ kind: fc.constant("ae-leaves" as const), depth: fc.constantFrom(2, 4), leaves: fc.array(fc.record({ index: fc.nat({ max: 300 }), entries: fc.array(fc.record({ key: fc.string({ minLength: 1, maxLength: 5 }), digest: fc.bigInt({ min: 0n, max: 2n ** 128n - 1n }) }), { maxLength: 3 }) }), { maxLength: 3 }) }),
  fc.record({ kind: fc.constant("ae-states" as const), entries: fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 5 }), bytesArb), { maxLength: 3 }), want: fc.array(fc.string({ minLength: 1, maxLength: 5 }), { maxLength: 3 }) }),
  fc.record({ kind: fc.constant("ae-piece" as const), key: fc.string({ minLength: 1, maxLength: 5 }), transfer: fc.nat({ max: 3 }), totalBytes: fc.constant(2 * 1024 * 1024 + 7), offset: fc.constantFrom(0, 1024 * 1024, 2 * 1024 * 1024, 5), bytes: bytesArb.filter((b) => b.length > 0) }),
);

test(`random peer messages never make step throw nor the node declare itself dead (seed ${seed})`, () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(idArb, fc.array(messageArb, { minLength: 1, maxLength: 6 }), fc.nat({ max: 3000 })), { maxLength: 25 }), (script) => {
      const env = new ManualEnv(seed);
      const store = new CounterStore("a");
      const a = new Cluster({ id: "a" as NodeId, addr: "a:1", seeds: ["b:1"], env, store, config: { hashTreeDepth: 2 } });
      store.onChange = (k, d) => a.keyChanged(k, d);
      a.broadcastDelta(store.increment("k", 1));
      for (const [from, messages, advanceMs] of script) {
        a.step(from, encodeEnvelope({ fromAddr: `${from}:1`, messages }));
        env.now += advanceMs;
        a.tick();
        a.drainOutbound();
        for (const e of a.drainEvents()) {
          expect(e.kind === "member-dead" && e.id === "a").toBe(false);
        }
        const self = a.members().find((m) => m.id === "a");
        expect(self?.status).toBe("alive");
      }
    }),
    { seed, numRuns: Math.min(propertyRuns, 500) },
  );
});
