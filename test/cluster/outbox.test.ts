// The outbox never lets failure detection ride with replica data: pings get envelopes of their own, and only state-carrying envelopes are marked to wait.

import { expect, test } from "bun:test";
import { Outbox } from "../../src/cluster/outbox.ts";
import { asIncarnation, type NodeId } from "../../src/cluster/types.ts";
import { decodeEnvelope } from "../../src/cluster/wire.ts";

test("a ping queued with a megabyte delta batch and a delta ack to the same peer leaves in its own small envelope", () => {
  const o = new Outbox();
  const b = "b" as NodeId;
  o.send(b, "b:1", { kind: "delta-batch", epoch: 1, floorSeq: 1, firstSeq: 1, deltas: [new Uint8Array(1024 * 1024)] });
  o.send(b, "b:1", { kind: "ping", seq: 9, target: b });
  o.send(b, "b:1", { kind: "delta-ack", epoch: 3, seq: 4 });
  o.send(b, "b:1", { kind: "ae-states", entries: [["k", new Uint8Array(10)]], want: [] });
  o.send(b, "b:1", { kind: "alive", id: "c" as NodeId, incarnation: asIncarnation(0), addr: "c:1" });
  const out = o.drain("a:1", () => []);
  const view = out.map((x) => ({
    kinds: decodeEnvelope(x.payload).messages.map((m) => m.kind),
    failureDetection: x.failureDetection,
    carriesState: x.carriesState,
  }));
  expect(view).toEqual([
    { kinds: ["delta-batch"], failureDetection: false, carriesState: false },
    { kinds: ["ping", "alive"], failureDetection: true, carriesState: false },
    { kinds: ["delta-ack", "ae-states"], failureDetection: false, carriesState: true },
  ]);
  const ping = out.find((x) => x.failureDetection);
  expect(ping?.payload.length).toBeLessThan(100);
});
