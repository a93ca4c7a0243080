// A prober that could not run (blocked event loop) judges its in-flight probe only after reading what arrived meanwhile.

import { expect, test } from "bun:test";
import { Cluster } from "../../src/cluster/cluster.ts";
import type { ClusterEvent, NodeId, Outbound } from "../../src/cluster/types.ts";
import { decodeEnvelope } from "../../src/cluster/wire.ts";
import { CounterStore } from "../../src/sim/store.ts";
import { ManualEnv } from "./helpers.ts";

/** Two joined nodes on one clock, with a's next ping to b answered but the ack left unread. */
function probeWithUnreadAck(seed: number) {
  const env = new ManualEnv(seed);
  const a = new Cluster({ id: "a" as NodeId, addr: "a:1", env, store: new CounterStore("a"), config: { antiEntropyIntervalMs: 3_600_000 } });
  const b = new Cluster({ id: "b" as NodeId, addr: "b:1", seeds: ["a:1"], env, store: new CounterStore("b"), config: { antiEntropyIntervalMs: 3_600_000 } });
  const nodes = new Map([["a:1", a], ["b:1", b]]);
  const events: ClusterEvent[] = [];
  let holdAckFor: "a" | null = null;
  const held: Outbound[] = [];
  const pump = (): void => {
    for (let round = 0; round < 100; round++) {
      let moved = false;
      for (const [addr, c] of nodes) {
        events.push(...c.drainEvents());
        for (const out of c.drainOutbound()) {
          moved = true;
          const kinds = decodeEnvelope(out.payload).messages.map((m) => m.kind);
          if (holdAckFor === "a" && addr === "b:1" && out.addr === "a:1" && kinds.includes("ack")) {
            held.push(out);
            continue;
          }
          nodes.get(out.addr)?.step(addr === "a:1" ? ("a" as NodeId) : ("b" as NodeId), out.payload);
        }
      }
      if (!moved) return;
    }
  };
  const advance = (ms: number): void => {
    for (let t = 0; t < ms; t += 5) {
      env.now += 5;
      a.tick();
      b.tick();
      pump();
    }
  };
  advance(2_000);
  expect(a.members().map((m) => m.status)).toEqual(["alive", "alive"]);
  // Run until a has a probe of b in flight whose ack b has sent but a has not read.
  holdAckFor = "a";
  for (let i = 0; i < 400 && held.length === 0; i++) advance(5);
  expect(held.length).toBe(1);
  return { env, a, b, events, held, pump };
}

const suspicionsOfB = (events: ClusterEvent[]): ClusterEvent[] => events.filter((e) => e.kind === "member-suspect" && e.id === "b");

test("after a 1 s stall, a probe whose ack is waiting unread is not failed: the ack is read first", () => {
  const s = probeWithUnreadAck(11);
  s.events.length = 0;
  // a's event loop is blocked for 1 s: no tick, no step. The driver measures it and says so.
  s.env.now += 1_000;
  s.a.stalled(1_000);
  s.a.tick();
  s.pump();
  // The I/O that queued during the stall is read: the ack.
  for (const out of s.held) s.a.step("b" as NodeId, out.payload);
  s.a.tick();
  s.pump();
  expect(suspicionsOfB([...s.events, ...s.a.drainEvents()])).toEqual([]);
});

test("without the stall credit the same probe fails and b is suspected (what the credit prevents)", () => {
  const s = probeWithUnreadAck(11);
  s.events.length = 0;
  s.env.now += 1_000;
  s.a.tick();
  s.pump();
  expect(suspicionsOfB([...s.events, ...s.a.drainEvents()]).length).toBe(1);
});
