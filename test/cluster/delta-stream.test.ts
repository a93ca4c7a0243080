// The delta stream never acknowledges a delta its receiver did not get: not on first contact, not after a sender restart.

import { expect, test } from "bun:test";
import { defaultLanConfig } from "../../src/cluster/config.ts";
import { DeltaPush } from "../../src/cluster/deltas.ts";
import { Outbox } from "../../src/cluster/outbox.ts";
import type { ClusterEvent, NodeId } from "../../src/cluster/types.ts";
import { decodeEnvelope, type Message } from "../../src/cluster/wire.ts";
import { CounterStore } from "../../src/sim/store.ts";
import { ManualEnv } from "./helpers.ts";

const config = defaultLanConfig();
const a = { id: "a" as NodeId, addr: "a:1" };
const b = { id: "b" as NodeId, addr: "b:1" };

/** One side of a stream: its DeltaPush, outbox, store and events, on a shared manual clock. */
function side(env: ManualEnv, name: string, epoch: number, store = new CounterStore(name)) {
  const outbox = new Outbox();
  const events: ClusterEvent[] = [];
  const repaired: NodeId[] = [];
  const push = new DeltaPush(config, env, store, outbox, events, epoch, (p) => repaired.push(p));
  /** The messages this side sent since the last call. */
  const drain = (): Message[] => outbox.drain(`${name}:1`, () => []).flatMap((o) => decodeEnvelope(o.payload).messages);
  return { push, store, events, repaired, drain };
}

type DeltaMsg = Extract<Message, { kind: "delta-batch" | "delta-ack" }>;
const deltaMsgs = (ms: Message[]): DeltaMsg[] => ms.filter((m): m is DeltaMsg => m.kind === "delta-batch" || m.kind === "delta-ack");

/** Sender a writes `n` increments of k and pushes one batch; the batch is returned (not delivered). */
function writeAndPush(env: ManualEnv, sender: ReturnType<typeof side>, n: number): DeltaMsg[] {
  for (let i = 0; i < n; i++) sender.push.enqueue(sender.store.increment("k", 1), [b]);
  env.now += config.deltaPushIntervalMs;
  sender.push.tick([b]);
  return deltaMsgs(sender.drain());
}

function deliver(from: { id: NodeId; addr: string }, to: ReturnType<typeof side>, msgs: DeltaMsg[]): void {
  for (const m of msgs) to.push.handle(from.id, from.addr, m);
}

/** Runs the stream (both directions, no loss) until it is quiet or `ms` passed. */
function settle(env: ManualEnv, sender: ReturnType<typeof side>, receiver: ReturnType<typeof side>, ms: number): void {
  for (let t = 0; t < ms; t += config.deltaPushIntervalMs) {
    env.now += config.deltaPushIntervalMs;
    sender.push.tick([b]);
    for (let i = 0; i < 10; i++) {
      const out = deltaMsgs(sender.drain());
      const back = (deliver(a, receiver, out), deltaMsgs(receiver.drain()));
      deliver(b, sender, back);
      if (out.length === 0 && back.length === 0) break;
    }
  }
}

test("first contact: when the first batches are lost, the receiver acknowledges none of what follows until they are resent", () => {
  const env = new ManualEnv(1);
  const sender = side(env, "a", 7);
  const receiver = side(env, "b", 9);
  const lost = writeAndPush(env, sender, 3);
  expect(lost.map((m) => m.kind)).toEqual(["delta-batch"]);
  const arrives = writeAndPush(env, sender, 3);
  expect(arrives[0]).toMatchObject({ kind: "delta-batch", floorSeq: 1, firstSeq: 4 });
  deliver(a, receiver, arrives);
  const acks = deltaMsgs(receiver.drain());
  // Seqs 1..3 never arrived: nothing may be acknowledged yet.
  expect(acks).toEqual([{ kind: "delta-ack", epoch: 7, seq: 0 }]);
  deliver(b, sender, acks);
  expect(sender.push.backlog(b.id).entries).toBe(6);
  // The sender resends from the floor after deltaRetransmitMs; then everything arrives.
  settle(env, sender, receiver, config.deltaRetransmitMs * 3);
  expect(receiver.store.value("k")).toBe(6);
  expect(sender.push.backlog(b.id).entries).toBe(0);
});

test("sender restart: the new stream's lost first batches are not acknowledged on the strength of the old stream", () => {
  const env = new ManualEnv(2);
  const receiver = side(env, "b", 9);
  const first = side(env, "a", 7);
  deliver(a, receiver, writeAndPush(env, first, 3));
  expect(deltaMsgs(receiver.drain())).toEqual([{ kind: "delta-ack", epoch: 7, seq: 3 }]);
  expect(receiver.store.value("k")).toBe(3);

  // a restarts: a new epoch, a stream from seq 1 again, and its state kept (it was durable).
  const restarted = side(env, "a", 8, first.store);
  writeAndPush(env, restarted, 2); // lost
  const arrives = writeAndPush(env, restarted, 2);
  deliver(a, receiver, arrives);
  expect(deltaMsgs(receiver.drain())).toEqual([{ kind: "delta-ack", epoch: 8, seq: 0 }]);
  settle(env, restarted, receiver, config.deltaRetransmitMs * 3);
  expect(receiver.store.value("k")).toBe(7);
  expect(restarted.push.backlog(b.id).entries).toBe(0);
});

test("a floor raised by the sender (backlog handed to anti-entropy) lets the receiver acknowledge past what it gave up", () => {
  const env = new ManualEnv(3);
  const receiver = side(env, "b", 9);
  receiver.push.handle(a.id, a.addr, { kind: "delta-batch", epoch: 7, floorSeq: 50, firstSeq: 50, deltas: [] });
  expect(deltaMsgs(receiver.drain())).toEqual([{ kind: "delta-ack", epoch: 7, seq: 49 }]);
});

test("bytes in flight to a peer are bounded by deltaInflightBytesMax, and resends back off while acks do not come", () => {
  const env = new ManualEnv(4);
  const sender = side(env, "a", 7);
  const big = new Uint8Array(1024 * 1024);
  for (let i = 0; i < 20; i++) sender.push.enqueue(big, [b]);
  const sentAt: number[] = [];
  let bytes = 0;
  // No ack ever comes back: 10 s of ticks.
  for (let t = 0; t < 10_000; t += config.deltaPushIntervalMs) {
    env.now += config.deltaPushIntervalMs;
    sender.push.tick([b]);
    for (const m of deltaMsgs(sender.drain())) {
      if (m.kind !== "delta-batch") continue;
      sentAt.push(t);
      bytes += m.deltas.reduce((n, d) => n + d.length, 0);
    }
  }
  // First window: 4 MiB (deltaInflightBytesMax). Then go-back-N resends of that window only,
  // after 250, 500, 1000, then every 2000 ms (deltaRetransmitMaxMs): 7 resends in 10 s, not
  // one every 250 ms (40), and never the 20 MiB queued.
  const windows = bytes / config.deltaInflightBytesMax;
  expect(config.deltaInflightBytesMax).toBe(4 * 1024 * 1024);
  expect(config.deltaRetransmitMaxMs).toBe(2_000);
  expect(windows).toBe(8);
  expect(sentAt.length).toBe(32);
});

test("a stream ticked late (a busy event loop) still keeps up: each tick sends what the in-flight window admits, not one batch", () => {
  const env = new ManualEnv(5);
  const sender = side(env, "a", 7);
  const receiver = side(env, "b", 9);
  // 20,000 deltas/s for 10 s, ticks every 50 ms: one batch per tick would carry 256 / 50 ms,
  // 5,120/s, and the backlog would pass deltaBacklogEntriesMax (100,000) and overflow.
  const tickMs = 50;
  const perTick = 1_000;
  let written = 0;
  for (let t = 0; t < 10_000; t += tickMs) {
    for (let i = 0; i < perTick; i++) sender.push.enqueue(sender.store.increment("k", 1), [b]);
    written += perTick;
    env.now += tickMs;
    sender.push.tick([b]);
    const out = deltaMsgs(sender.drain());
    deliver(a, receiver, out);
    deliver(b, sender, deltaMsgs(receiver.drain()));
  }
  expect(sender.events.filter((e) => e.kind === "delta-backlog-overflow")).toEqual([]);
  expect(sender.repaired).toEqual([]);
  expect(receiver.store.value("k")).toBe(written);
  expect(sender.push.backlog(b.id).entries).toBe(0);
});

test("one tick sends the whole in-flight window, in batches of deltaBatchEntriesMax", () => {
  const env = new ManualEnv(6);
  const sender = side(env, "a", 7);
  for (let i = 0; i < 2 * config.deltaInflightEntriesMax; i++) sender.push.enqueue(sender.store.increment("k", 1), [b]);
  env.now += config.deltaPushIntervalMs;
  sender.push.tick([b]);
  const batches = deltaMsgs(sender.drain()).filter((m) => m.kind === "delta-batch");
  expect(batches.map((m) => (m.kind === "delta-batch" ? m.deltas.length : 0))).toEqual(Array(config.deltaInflightEntriesMax / config.deltaBatchEntriesMax).fill(config.deltaBatchEntriesMax));
});
