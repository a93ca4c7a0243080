// The cluster state machines driven by hand: join, refutation, rejoin, leave, reaping, delta push and anti-entropy.

import { describe, expect, test } from "bun:test";
import { Cluster } from "../../src/cluster/cluster.ts";
import type { ClusterConfig } from "../../src/cluster/config.ts";
import type { ClusterEvent, Incarnation, NodeId, Outbound } from "../../src/cluster/types.ts";
import { decodeEnvelope, encodeEnvelope, type Message } from "../../src/cluster/wire.ts";
import { antiEntropyCosts } from "../../src/sim/measure.ts";
import { CounterStore } from "../../src/sim/store.ts";
import { ManualEnv, seed } from "./helpers.ts";

interface TestNode {
  id: NodeId;
  addr: string;
  cluster: Cluster;
  store: CounterStore;
  events: ClusterEvent[];
}

/** Synchronous delivery between clusters on one manual clock; `drop` filters messages. */
class Net {
  readonly env = new ManualEnv(seed);
  readonly nodes = new Map<string, TestNode>();
  drop: (from: NodeId, out: Outbound) => boolean = () => false;
  sent: Array<{ from: NodeId; out: Outbound }> = [];

  add(name: string, opts: { addr?: string; seeds?: string[]; config?: Partial<ClusterConfig>; store?: CounterStore } = {}): TestNode {
    const id = name as NodeId;
    const addr = opts.addr ?? `${name}:1`;
    const store = opts.store ?? new CounterStore(`${name}/${addr}`);
    const cluster = new Cluster({ id, addr, seeds: opts.seeds ?? [], config: opts.config, env: this.env, store });
    store.onChange = (k, d) => cluster.keyChanged(k, d);
    store.reportAll();
    const n: TestNode = { id, addr, cluster, store, events: [] };
    this.nodes.set(addr, n);
    return n;
  }

  remove(n: TestNode): void {
    this.nodes.delete(n.addr);
  }

  pump(): void {
    for (let round = 0; round < 1000; round++) {
      let moved = false;
      for (const n of [...this.nodes.values()]) {
        n.events.push(...n.cluster.drainEvents());
        for (const out of n.cluster.drainOutbound()) {
          moved = true;
          this.sent.push({ from: n.id, out });
          if (this.drop(n.id, out)) continue;
          this.nodes.get(out.addr)?.cluster.step(n.id, out.payload);
        }
      }
      if (!moved) return;
    }
    throw new Error("messages kept flowing for 1000 rounds");
  }

  advance(ms: number, stepMs = 5): void {
    const end = this.env.now + ms;
    while (this.env.now < end) {
      this.env.now = Math.min(end, this.env.now + stepMs);
      for (const n of this.nodes.values()) n.cluster.tick();
      this.pump();
    }
  }

  statusOf(observer: TestNode, subject: TestNode): string | undefined {
    return observer.cluster.members().find((m) => m.id === subject.id)?.status;
  }
}

const kinds = (o: Outbound): Message["kind"][] => decodeEnvelope(o.payload).messages.map((m) => m.kind);

describe(`membership (seed ${seed})`, () => {
  test("nodes join through a seed address and all see all alive", () => {
    const net = new Net();
    const a = net.add("a");
    const b = net.add("b", { seeds: ["a:1"] });
    const c = net.add("c", { seeds: ["a:1"] });
    net.advance(3_000);
    for (const x of [a, b, c]) {
      expect(x.cluster.members().map((m) => `${m.id}:${m.status}`)).toEqual(["a:alive", "b:alive", "c:alive"]);
    }
  });

  test("a ping is acked; a ping meant for another id is refused", () => {
    const net = new Net();
    const a = net.add("a");
    a.cluster.step("x" as NodeId, encodeEnvelope({ fromAddr: "x:1", messages: [{ kind: "ping", seq: 5, target: "a" as NodeId }] }));
    const out = a.cluster.drainOutbound();
    expect(out.length).toBe(1);
    expect(out[0]?.addr).toBe("x:1");
    expect(decodeEnvelope((out[0] as Outbound).payload).messages[0]).toEqual({ kind: "ack", seq: 5 });
    a.cluster.step("x" as NodeId, encodeEnvelope({ fromAddr: "x:1", messages: [{ kind: "ping", seq: 6, target: "b" as NodeId }] }));
    expect(a.cluster.drainOutbound().length).toBe(0);
    expect(a.cluster.drainEvents().some((e) => e.kind === "message-refused")).toBe(true);
  });

  test("a node told it is suspect or dead refutes with a higher incarnation and never marks itself", () => {
    const net = new Net();
    const a = net.add("a");
    a.cluster.step("x" as NodeId, encodeEnvelope({ fromAddr: "x:1", messages: [{ kind: "suspect", id: "a" as NodeId, incarnation: 0 as Incarnation, from: "x" as NodeId }] }));
    expect(Number(a.cluster.status().incarnation)).toBe(1);
    a.cluster.step("x" as NodeId, encodeEnvelope({ fromAddr: "x:1", messages: [{ kind: "dead", id: "a" as NodeId, incarnation: 3 as Incarnation, from: "x" as NodeId }] }));
    expect(Number(a.cluster.status().incarnation)).toBe(4);
    expect(a.cluster.members().find((m) => m.id === "a")?.status).toBe("alive");
    const events = a.cluster.drainEvents();
    expect(events.filter((e) => e.kind === "self-refuted").length).toBe(2);
    expect(events.some((e) => e.kind === "member-dead")).toBe(false);
    // An old claim (lower incarnation) is not worth refuting.
    a.cluster.step("x" as NodeId, encodeEnvelope({ fromAddr: "x:1", messages: [{ kind: "dead", id: "a" as NodeId, incarnation: 2 as Incarnation, from: "x" as NodeId }] }));
    expect(Number(a.cluster.status().incarnation)).toBe(4);
  });

  test("an isolated node is declared dead, then refutes after the heal and is alive everywhere again", () => {
    const net = new Net();
    const a = net.add("a");
    const b = net.add("b", { seeds: ["a:1"] });
    const c = net.add("c", { seeds: ["a:1"] });
    net.advance(2_000);
    net.drop = (from, out) => from === c.id || out.addr === c.addr;
    net.advance(8_000);
    expect(net.statusOf(a, c)).toBe("dead");
    expect(net.statusOf(b, c)).toBe("dead");
    expect(net.statusOf(c, c)).toBe("alive");
    net.drop = () => false;
    net.advance(25_000);
    expect(net.statusOf(a, c)).toBe("alive");
    expect(net.statusOf(b, c)).toBe("alive");
    expect(net.statusOf(c, a)).toBe("alive");
    expect(c.cluster.status().incarnation).toBeGreaterThan(0);
  });

  test("a killed node restarted under its id at a new address rejoins with a higher incarnation", () => {
    const net = new Net();
    const a = net.add("a");
    const b = net.add("b", { seeds: ["a:1"] });
    const c = net.add("c", { seeds: ["a:1"] });
    net.advance(2_000);
    net.remove(c);
    net.advance(8_000);
    expect(net.statusOf(a, c)).toBe("dead");
    const c2 = net.add("c", { addr: "c:2", seeds: ["a:1"] });
    net.advance(3_000);
    for (const x of [a, b]) {
      const m = x.cluster.members().find((mm) => mm.id === "c");
      expect(m?.status).toBe("alive");
      expect(m?.address).toBe("c:2");
      expect(m?.incarnation).toBeGreaterThan(0);
    }
    expect(a.events.some((e) => e.kind === "member-joined" && e.id === "c" && e.address === "c:2")).toBe(true);
    expect(net.statusOf(c2, b)).toBe("alive");
  });

  test("a node restarted at a new address before the cluster noticed its death still takes its id back", () => {
    const net = new Net();
    const a = net.add("a");
    const b = net.add("b", { seeds: ["a:1"] });
    const c = net.add("c", { seeds: ["a:1"] });
    net.advance(2_000);
    net.remove(c);
    expect(net.statusOf(a, c)).toBe("alive"); // not yet detected
    const c2 = net.add("c", { addr: "c:2", seeds: ["a:1"] });
    net.advance(3_000);
    for (const x of [a, b]) expect(x.cluster.members().find((m) => m.id === "c")).toMatchObject({ status: "alive", address: "c:2" });
    expect(c2.events.some((e) => e.kind === "duplicate-node-id")).toBe(false);
  });

  test("a second live process claiming a live node's id at another address yields; the first keeps the id; both report it (issue 12, 9b)", () => {
    const net = new Net();
    const a = net.add("a");
    const b = net.add("b", { seeds: ["a:1"] });
    const c = net.add("c", { seeds: ["a:1"] });
    net.advance(2_000);
    const impostor = net.add("c", { addr: "c:2", seeds: ["a:1"] });
    net.advance(5_000);
    expect(impostor.events).toContainEqual({ kind: "duplicate-node-id", address: "c:1", yielded: true });
    expect(c.events).toContainEqual({ kind: "duplicate-node-id", address: "c:2", yielded: false });
    expect(c.events.some((e) => e.kind === "duplicate-node-id" && e.yielded)).toBe(false);
    // No address flapping: every member kept c at its first address the whole time.
    for (const x of [a, b]) {
      expect(x.cluster.members().find((m) => m.id === "c")).toMatchObject({ status: "alive", address: "c:1" });
      expect(x.events.some((e) => e.kind === "member-updated" && e.id === "c")).toBe(false);
    }
    // The yielded process stays silent from then on.
    const fromImpostor = (): number => net.sent.filter((x) => decodeEnvelope(x.out.payload).fromAddr === "c:2").length;
    const before = fromImpostor();
    net.advance(2_000);
    expect(fromImpostor()).toBe(before);
  });

  test("a graceful leave is seen by all, and left members are reaped after leftReapAfterMs", () => {
    const config = { leftReapAfterMs: 5_000 };
    const net = new Net();
    const a = net.add("a", { config });
    const b = net.add("b", { seeds: ["a:1"], config });
    const c = net.add("c", { seeds: ["a:1"], config });
    net.advance(2_000);
    c.cluster.leave();
    net.advance(1_000);
    expect(net.statusOf(a, c)).toBe("left");
    expect(net.statusOf(b, c)).toBe("left");
    net.remove(c);
    net.advance(5_000);
    expect(net.statusOf(a, c)).toBeUndefined();
    expect(a.events.some((e) => e.kind === "member-reaped" && e.id === "c")).toBe(true);
  });

  // `imdb admin member remove`: before it, a dead member stayed listed (and was retried) for deadReapAfterMs.
  test("an operator removes a dead member: forgotten here at once, left on the others, contacted by no one", () => {
    const net = new Net();
    const a = net.add("a");
    const b = net.add("b", { seeds: ["a:1"] });
    const c = net.add("c", { seeds: ["a:1"] });
    net.advance(2_000);
    net.remove(c);
    net.advance(8_000);
    expect(net.statusOf(a, c)).toBe("dead");
    expect(net.statusOf(b, c)).toBe("dead");

    expect(a.cluster.removeMember(b.id)).toEqual({ kind: "reachable", status: "alive" });
    expect(a.cluster.removeMember(a.id)).toEqual({ kind: "self" });
    expect(a.cluster.removeMember("nobody" as NodeId)).toEqual({ kind: "unknown" });
    expect(a.cluster.removeMember(c.id)).toEqual({ kind: "removed", was: "dead" });
    expect(net.statusOf(a, c)).toBeUndefined();
    net.pump();
    expect(a.events.some((e) => e.kind === "member-reaped" && e.id === "c")).toBe(true);

    net.advance(2_000);
    expect(net.statusOf(b, c)).toBe("left");
    const sentBefore = net.sent.length;
    net.advance(30_000);
    // Push-pulls from b carry c as left, which does not bring it back on a; nobody dials it.
    expect(net.statusOf(a, c)).toBeUndefined();
    expect(net.statusOf(b, c)).toBe("left");
    expect(net.sent.slice(sentBefore).filter((x) => x.out.addr === "c:1")).toEqual([]);
    // On b (left there), a removal forgets it at once too.
    expect(b.cluster.removeMember(c.id)).toEqual({ kind: "removed", was: "left" });
    expect(net.statusOf(b, c)).toBeUndefined();
  });

  test("a node whose probes go unanswered raises its local health score", () => {
    const net = new Net();
    const a = net.add("a");
    net.add("b", { seeds: ["a:1"] });
    net.add("c", { seeds: ["a:1"] });
    net.advance(2_000);
    expect(a.cluster.status().healthScore).toBe(0);
    net.drop = (from, out) => out.addr === "a:1" && kinds(out).includes("ack");
    net.advance(3_000);
    expect(a.cluster.status().healthScore).toBeGreaterThan(0);
  });

  test("a payload that is not an envelope changes nothing", () => {
    const net = new Net();
    const a = net.add("a");
    const before = a.cluster.members();
    a.cluster.step("x" as NodeId, new Uint8Array([1, 2, 3, 4]));
    expect(a.cluster.members()).toEqual(before);
    expect(a.cluster.drainEvents().map((e) => e.kind)).toEqual(["message-refused"]);
  });
});

describe(`delta push (seed ${seed})`, () => {
  test("deltas reach every live peer in batches and are acknowledged; lost batches are resent", () => {
    const net = new Net();
    // Anti-entropy is off, so only the delta stream's resends can repair c. (Dropping envelopes
    // that carry anti-entropy messages instead also dropped resends that shared an envelope with
    // them, which failed this test for some seeds, e.g. 3437596.)
    const config = { antiEntropyIntervalMs: 3_600_000 };
    const a = net.add("a", { config });
    const b = net.add("b", { seeds: ["a:1"], config });
    const c = net.add("c", { seeds: ["a:1"], config });
    net.advance(2_000);
    let dropped = 0;
    net.drop = (_from, out) => {
      if (out.addr === "c:1" && kinds(out).includes("delta-batch") && dropped < 3) {
        dropped++;
        return true;
      }
      return false;
    };
    for (let i = 0; i < 10; i++) a.cluster.broadcastDelta(a.store.increment("k", 1));
    net.advance(20);
    expect(b.store.value("k")).toBe(10);
    expect(a.cluster.deltaBacklog(b.id).entries).toBe(0);
    expect(c.store.value("k")).toBe(0);
    // Resends back off (250, 500, 1000 ms without progress): the third resend gets through.
    net.advance(2_000);
    expect(dropped).toBe(3);
    expect(c.store.value("k")).toBe(10);
    expect(a.cluster.deltaBacklog(c.id).entries).toBe(0);
    expect(a.events.some((e) => e.kind === "deltas-acked" && e.peer === c.id && e.seq === 10)).toBe(true);
  });

  test("an overflowing backlog is dropped and the peer is repaired by anti-entropy", () => {
    const config = { deltaBacklogEntriesMax: 3, antiEntropyIntervalMs: 500 };
    const net = new Net();
    const a = net.add("a", { config });
    const b = net.add("b", { seeds: ["a:1"], config });
    net.advance(2_000);
    net.drop = (_from, out) => out.addr === "b:1" && kinds(out).some((k) => k === "delta-batch" || k.startsWith("ae-"));
    for (let i = 0; i < 5; i++) a.cluster.broadcastDelta(a.store.increment(`k${i}`, 2));
    net.advance(10);
    expect(a.cluster.drainEvents().concat(a.events).some((e) => e.kind === "delta-backlog-overflow" && e.peer === b.id)).toBe(true);
    expect(a.cluster.deltaBacklog(b.id).entries).toBeLessThanOrEqual(3);
    net.drop = () => false;
    net.advance(2_000);
    for (let i = 0; i < 5; i++) expect(b.store.value(`k${i}`)).toBe(2);
  });
});

describe(`anti-entropy (seed ${seed})`, () => {
  test("equal replicas exchange < 1 KB; d differing keys cost <= 2d entries; both converge", () => {
    const [equal, one, fifty] = antiEntropyCosts({ keys: 20_000, differing: [0, 1, 50], seed, depth: 3 });
    expect(equal?.hashBytes).toBeLessThan(1024);
    expect(equal?.entries).toBe(0);
    for (const c of [one, fifty]) {
      expect(c?.converged).toBe(true);
      expect(c?.entries).toBeLessThanOrEqual(2 * (c?.differing ?? 0));
      expect(c?.entries).toBeGreaterThanOrEqual(c?.differing ?? 0);
    }
    // Hash bytes grow with d, not with the key count: well under one listed leaf per key.
    expect((fifty?.hashBytes ?? 0) / 50).toBeLessThan(2_000);
  });

  test("a wiped node is filled by anti-entropy in bounded chunks", () => {
    const config = { antiEntropyChunkBytesMax: 4096, antiEntropyIntervalMs: 200, hashTreeDepth: 2 };
    const net = new Net();
    const a = net.add("a", { config });
    for (let i = 0; i < 3000; i++) a.store.increment(`key-${i}`, 1 + (i % 5));
    const b = net.add("b", { seeds: ["a:1"], config });
    net.advance(10_000, 10);
    for (let i = 0; i < 3000; i += 97) expect(b.store.value(`key-${i}`)).toBe(1 + (i % 5));
    expect(b.cluster.rootHash()).toBe(a.cluster.rootHash());
    for (const { out } of net.sent) {
      for (const m of decodeEnvelope(out.payload).messages) {
        if (m.kind !== "ae-states") continue;
        const bytes = m.entries.reduce((s, [k, v]) => s + k.length + v.length, 0);
        expect(bytes).toBeLessThanOrEqual(4096 + 200);
      }
    }
  });
});
