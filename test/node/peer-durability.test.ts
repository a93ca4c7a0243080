// Peer data in `sync` mode: a merged value is neither shown to readers nor acknowledged to its sender before this node's WAL append of it is durable.

import { expect, test } from "bun:test";
import type { NodeId } from "../../src/cluster/types.ts";
import { decodeEnvelope, encodeEnvelope, type Message } from "../../src/cluster/wire.ts";
import { defaultNodeConfig, type NodeConfig } from "../../src/config/config.ts";
import { Engine } from "../../src/engine/index.ts";
import type { Store } from "../../src/persist/index.ts";
import { asLsn, type Lsn } from "../../src/persist/index.ts";
import { ClusterHost } from "../../src/node/cluster-host.ts";
import { createLogger } from "../../src/node/log.ts";

/** A WAL whose appends resolve only when the test says so (an fsync that takes as long as we like). */
class HandStore {
  readonly appends: Array<{ bodies: readonly Uint8Array[]; resolve: () => void }> = [];
  private lsn = 1;
  asStore(): Store {
    return {
      recovery: { walRecordsReplayed: 0 } as Store["recovery"],
      nextLsn: asLsn(this.lsn),
      walBytesSinceSnapshot: 0,
      walQueuedBytes: 0,
      append: (bodies) =>
        new Promise<Lsn>((r) => {
          const lsn = asLsn((this.lsn += bodies.length) - 1);
          this.appends.push({ bodies, resolve: () => r(lsn) });
        }),
      sync: async () => undefined,
      snapshot: () => Promise.reject(new Error("not in this test")),
      close: async () => undefined,
    };
  }
}

/** node-b's handshake (src/cluster/gc.ts): replica data is merged only from a member whose life said hello. */
function hello(host: ClusterHost): void {
  const msg: Message = { kind: "gc-hello", reply: false, life: "node-b/0000000000000001", formerLives: [], generation: 0, quarantined: false, departed: false, rejoined: 0 };
  void host.receive("node-b", encodeEnvelope({ fromAddr: "127.0.0.1:9", messages: [msg] }));
}

/** Lets every promise chain that can run, run (no timers, no sleeping). */
async function drainMicrotasks(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}

test("a peer's delta is acknowledged, and readers answered, only once its WAL append resolved", async () => {
  const cfg: NodeConfig = { ...defaultNodeConfig, id: "node-a", insecure: true, peerAddr: "127.0.0.1:0", seeds: [] };
  const engine = new Engine({ actor: "node-a", deferChanges: true });
  const wal = new HandStore();
  const host = new ClusterHost({ cfg, engine, store: wal.asStore(), log: createLogger({ format: "text", level: "error", write: () => undefined }), now: () => 1_000_000, tls: null });
  host.start(1);
  try {
    const peer = new Engine({ actor: "node-b" });
    const { deltas } = peer.applyMany([{ kind: "incr", key: "k", amount: 5n }], 1_000_000);
    const batch: Message = { kind: "delta-batch", epoch: 7, floorSeq: 1, firstSeq: 1, deltas };
    hello(host);
    const reply = host.receive("node-b", encodeEnvelope({ fromAddr: "127.0.0.1:9", messages: [batch] }));

    // Merged into the engine and appended to the WAL in the same step ...
    expect(wal.appends.length).toBe(1);
    // ... but a read-only request (node.ts awaits settled()) and the delta ack both wait.
    const read = host.settled();
    expect(read).not.toBeNull();
    expect(reply).toBeInstanceOf(Promise);
    let readDone = false;
    let acked: Uint8Array | null = null;
    void read?.then(() => (readDone = true));
    void Promise.resolve(reply).then((r) => (acked = r));
    await drainMicrotasks();
    expect(readDone).toBe(false);
    expect(acked).toBeNull();

    wal.appends[0]?.resolve();
    await drainMicrotasks();
    expect(readDone).toBe(true);
    expect(host.settled()).toBeNull();
    expect(acked).not.toBeNull();
    expect(decodeEnvelope(acked as unknown as Uint8Array).messages).toEqual([{ kind: "delta-ack", epoch: 7, seq: 1 }]);
  } finally {
    await host.stop();
  }
});

test("a ping is answered at once while merged peer data waits for the disk", async () => {
  const cfg: NodeConfig = { ...defaultNodeConfig, id: "node-a", insecure: true, peerAddr: "127.0.0.1:0", seeds: [] };
  const engine = new Engine({ actor: "node-a", deferChanges: true });
  const wal = new HandStore();
  const host = new ClusterHost({ cfg, engine, store: wal.asStore(), log: createLogger({ format: "text", level: "error", write: () => undefined }), now: () => 1_000_000, tls: null });
  host.start(1);
  try {
    const { deltas } = new Engine({ actor: "node-b" }).applyMany([{ kind: "incr", key: "k", amount: 1n }], 1_000_000);
    hello(host);
    void host.receive("node-b", encodeEnvelope({ fromAddr: "127.0.0.1:9", messages: [{ kind: "delta-batch", epoch: 7, floorSeq: 1, firstSeq: 1, deltas }] }));
    expect(host.settled()).not.toBeNull();
    const pong = host.receive("node-b", encodeEnvelope({ fromAddr: "127.0.0.1:9", messages: [{ kind: "ping", seq: 3, target: "node-a" as NodeId }] }));
    expect(pong).toBeInstanceOf(Uint8Array);
    expect(decodeEnvelope(pong as Uint8Array).messages[0]).toEqual({ kind: "ack", seq: 3 });
  } finally {
    wal.appends.forEach((a) => a.resolve());
    await host.stop();
  }
});
