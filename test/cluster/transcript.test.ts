// A transcript of one node's protocol run (etcd raft style): every message and event as text, compared with testdata.
// When behaviour changes on purpose, rewrite it: IMDB_REWRITE_TRANSCRIPTS=1 npx bun test test/cluster/transcript.test.ts

import { expect, test } from "bun:test";
import { Cluster } from "../../src/cluster/cluster.ts";
import type { ClusterEvent, Incarnation, NodeId } from "../../src/cluster/types.ts";
import { decodeEnvelope, encodeEnvelope, type Message } from "../../src/cluster/wire.ts";
import { CounterStore } from "../../src/sim/store.ts";
import { ManualEnv } from "./helpers.ts";

const file = `${import.meta.dir}/testdata/membership.txt`;

function show(m: Message): string {
  switch (m.kind) {
    case "ping": return `ping seq=${m.seq} target=${m.target}`;
    case "ping-req": return `ping-req seq=${m.seq} target=${m.target}@${m.targetAddr}`;
    case "ack": case "nack": return `${m.kind} seq=${m.seq}`;
    case "alive": return `alive ${m.id}#${m.incarnation}@${m.addr}`;
    case "suspect": case "dead": return `${m.kind} ${m.id}#${m.incarnation} from=${m.from}`;
    case "left": return `left ${m.id}#${m.incarnation}`;
    case "push-pull": return `push-pull join=${m.join} reply=${m.reply} [${m.members.map((s) => `${s.id}#${s.incarnation}:${s.status}`).join(" ")}]`;
    case "delta-batch": return `delta-batch first=${m.firstSeq} floor=${m.floorSeq} n=${m.deltas.length}`;
    case "delta-ack": return `delta-ack seq=${m.seq}`;
    case "ae-tree": return `ae-tree level=${m.level} items=${m.items.length}`;
    case "ae-leaves": return `ae-leaves leaves=${m.leaves.length}`;
    case "ae-states": return `ae-states entries=${m.entries.length} want=${m.want.length}`;
    case "ae-piece": return `ae-piece key=${m.key} at=${m.offset}/${m.totalBytes}`;
    case "gc-hello": return `gc-hello reply=${m.reply} life=${m.life} generation=${m.generation} quarantined=${m.quarantined} departed=${m.departed}`;
    case "gc-probe": return `gc-probe round=${m.round} records=${m.entries.length}`;
    case "gc-confirm": return `gc-confirm round=${m.round} sigma=${m.sigma} confirms=${m.confirms}`;
    case "stray-keep": return `stray-keep partition=${m.partition} token=${m.token} seqs=${m.firstSeq}..${m.lastSeq}`;
    case "stray-kept": return `stray-kept partition=${m.partition} token=${m.token} ${m.answer}`;
  }
}

function showEvent(e: ClusterEvent): string {
  const { kind, ...rest } = e;
  return `event ${kind} ${Object.entries(rest).map(([k, v]) => `${k}=${String(v)}`).join(" ")}`;
}

test("membership transcript: join, probe, indirect probe, suspicion, refutation, death", async () => {
  const env = new ManualEnv(1);
  const start = env.now;
  const store = new CounterStore("a");
  const a = new Cluster({ id: "a" as NodeId, addr: "a:1", seeds: ["b:1"], env, store, config: { antiEntropyIntervalMs: 3_600_000, pushPullIntervalMs: 3_600_000, reconnectIntervalMs: 3_600_000 } });
  const lines: string[] = [];
  const flush = (): void => {
    for (const o of a.drainOutbound()) {
      const msgs = decodeEnvelope(o.payload).messages.map(show).join(" + ");
      lines.push(`  t=${env.now - start} a -> ${o.to ?? "?"}@${o.addr}: ${msgs}`);
    }
    for (const e of a.drainEvents()) lines.push(`  t=${env.now - start} ${showEvent(e)}`);
  };
  const recv = (from: string, ...messages: Message[]): void => {
    lines.push(`recv from ${from}: ${messages.map(show).join(" + ")}`);
    a.step(from as NodeId, encodeEnvelope({ fromAddr: `${from}:1`, messages }));
    flush();
  };
  const advance = (ms: number): void => {
    lines.push(`advance ${ms}`);
    const end = env.now + ms;
    for (;;) {
      const next = Math.min(end, Math.max(env.now + 1, a.nextDeadlineMs()));
      env.now = next;
      a.tick();
      flush();
      if (env.now >= end) break;
    }
  };
  const inc = (n: number) => n as Incarnation;
  advance(1);
  recv("b", { kind: "push-pull", join: false, reply: true, settings: { replicationFactor: 0, partitions: 16_384 }, members: [
    { id: "b" as NodeId, addr: "b:1", incarnation: inc(0), status: "alive" },
    { id: "c" as NodeId, addr: "c:1", incarnation: inc(0), status: "alive" },
  ] });
  advance(600);
  recv("b", { kind: "ack", seq: 1 });
  recv("c", { kind: "ack", seq: 1 });
  advance(1_100);
  recv("b", { kind: "nack", seq: 2 });
  recv("b", { kind: "suspect", id: "a" as NodeId, incarnation: inc(0), from: "b" as NodeId });
  advance(2_500);
  const text = `${lines.join("\n")}\n`;
  if (process.env.IMDB_REWRITE_TRANSCRIPTS === "1") await Bun.write(file, text);
  expect(text).toBe(await Bun.file(file).text());
});
