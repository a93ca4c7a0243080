// Safe retries and admission at the node's write path, on the real engine and (for restarts) the
// real store: a retry with the same request id is applied once and answered with the first result,
// also while the first attempt is in flight and after a restart (WAL replay, and past a snapshot);
// an id reused for another request is refused; a flood beyond the admission bounds is refused at
// once and changes nothing.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Engine } from "../../src/engine/index.ts";
import { openStore, silentLog, type Lsn, type Store } from "../../src/persist/index.ts";
import { OpFailure, type ClientOp, type OpOutcome } from "../../src/transport/api.ts";
import {
  decodeRequestChunk, decodeRequestPart, encodeRequestChunk, encodeRequestRecords, fingerprintOf, walRecordKind, type RequestEntryData,
} from "../../src/node/request-record.ts";
import { RequestReplay, withRequestTable } from "../../src/node/request-recovery.ts";
import { RequestTable } from "../../src/node/requests.ts";
import { WritePath, type AdmissionLimits } from "../../src/node/write-path.ts";
import { removeDir, tempDir, testAccel } from "../persist/helpers.ts";

const id = (s: string): Uint8Array => new TextEncoder().encode(s);
const incr = (key: string, amount: bigint): ClientOp => ({ kind: "increment", key, amount, counter: null });
const counterOf = (e: Engine, key: string): bigint | undefined => {
  const v = e.get(key);
  return v !== undefined && (v.type === "pncounter" || v.type === "gcounter") ? v.value : undefined;
};
const valueOf = (outcomes: OpOutcome[]): bigint => {
  const o = outcomes[0];
  if (o === undefined || !o.ok || o.result.kind !== "counter") throw new Error(`not a counter outcome: ${JSON.stringify(o)}`);
  return o.result.value;
};

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OpFailure) return err.code;
    throw err;
  }
  return "OK";
}

/** A store whose appends settle when the test says (or at once), counting what was appended. */
class FakeStore {
  records: Uint8Array[] = [];
  walQueuedBytes = 0;
  manual = false;
  private waiting: (() => void)[] = [];
  append(bodies: readonly Uint8Array[]): Promise<Lsn> {
    this.records.push(...bodies);
    if (!this.manual) return Promise.resolve(this.records.length as Lsn);
    return new Promise((resolve) => this.waiting.push(() => resolve(this.records.length as Lsn)));
  }
  settleAll(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const f of w) f();
  }
}

const quietCluster = { localAppend: () => undefined, broadcast: () => undefined, settled: () => null };

function fakePath(limits: Partial<AdmissionLimits> = {}, nowMs = () => 1_000_000) {
  const engine = new Engine({ actor: "n1" });
  const store = new FakeStore();
  const requests = new RequestTable();
  const writes = new WritePath({ engine, store, cluster: quietCluster, requests, now: nowMs, limits });
  return { engine, store, requests, writes };
}

describe("safe retries (request ids)", () => {
  test("the same id twice: applied once, the retry answered with the first result", async () => {
    const { engine, writes } = fakePath();
    expect(valueOf(await writes.apply([incr("c", 5n)], id("req-1")))).toBe(5n);
    expect(valueOf(await writes.apply([incr("c", 1n)], null))).toBe(6n);
    // The retry: first result (5, not 11 or 7), and the counter did not move.
    expect(valueOf(await writes.apply([incr("c", 5n)], id("req-1")))).toBe(5n);
    expect(counterOf(engine, "c")).toBe(6n);
    expect(writes.stats.retriesAnswered).toBe(1);
  });

  test("a retry that arrives while the first attempt is in flight waits for it and gets the same result", async () => {
    const { engine, store, writes } = fakePath();
    store.manual = true;
    const first = writes.apply([incr("c", 3n), { kind: "set", key: "r", value: id("v") }], id("req-2"));
    const retry = writes.apply([incr("c", 3n), { kind: "set", key: "r", value: id("v") }], id("req-2"));
    let retryDone = false;
    void retry.then(() => (retryDone = true));
    await Bun.sleep(0);
    // Not answered before the first attempt is durable.
    expect(retryDone).toBe(false);
    store.settleAll();
    const [a, b] = await Promise.all([first, retry]);
    expect(b).toEqual(a);
    expect(valueOf(a)).toBe(3n);
    expect(counterOf(engine, "c")).toBe(3n);
    expect(store.records.length).toBe(1); // one request record for both ops, appended once
  });

  test("an id reused for a different request is refused (FAILED_PRECONDITION) and changes nothing", async () => {
    const { engine, writes } = fakePath();
    await writes.apply([incr("c", 1n)], id("req-3"));
    expect(await refusal(writes.apply([incr("c", 2n)], id("req-3")))).toBe("FAILED_PRECONDITION");
    expect(await refusal(writes.apply([incr("other", 1n)], id("req-3")))).toBe("FAILED_PRECONDITION");
    expect(counterOf(engine, "c")).toBe(1n);
    expect(engine.has("other")).toBe(false);
  });

  test("a batch with an id may not hold a read (INVALID_ARGUMENT), and nothing is applied", async () => {
    const { engine, writes } = fakePath();
    expect(await refusal(writes.apply([incr("c", 1n), { kind: "get", key: "c" }], id("req-4")))).toBe("INVALID_ARGUMENT");
    for (const read of [{ kind: "smembers", key: "s" }, { kind: "scard", key: "s" }, { kind: "sismember", key: "s", member: id("a") }] as ClientOp[]) {
      expect(await refusal(writes.apply([{ kind: "sadd", key: "s", members: [id("a")] }, read], id("req-4s")))).toBe("INVALID_ARGUMENT");
    }
    expect(engine.has("c")).toBe(false);
    expect(engine.has("s")).toBe(false);
  });

  test("set writes with an id: a retry answers the first counts and adds nothing; the same members in another order are another request", async () => {
    const { engine, store, writes } = fakePath();
    const sadd = (members: string[]): ClientOp => ({ kind: "sadd", key: "s", members: members.map(id) });
    const counts = (o: OpOutcome[]): unknown[] => o.map((x) => (x.ok && x.result.kind === "count" ? x.result.value : x));
    const first = await writes.apply([sadd(["a", "b"]), { kind: "srem", key: "s", members: [id("a"), id("zz")] }], id("req-s"));
    expect(counts(first)).toEqual([2, 1]);
    const records = store.records.length;
    expect(counts(await writes.apply([sadd(["a", "b"]), { kind: "srem", key: "s", members: [id("a"), id("zz")] }], id("req-s")))).toEqual([2, 1]);
    expect(store.records.length).toBe(records);
    expect(engine.get("s")).toEqual({ type: "set", members: [id("b")] });
    expect(await refusal(writes.apply([sadd(["b", "a"]), { kind: "srem", key: "s", members: [id("a"), id("zz")] }], id("req-s")))).toBe("FAILED_PRECONDITION");
    // The fingerprint tells member bytes apart, not only their count and lengths.
    expect(fingerprintOf([sadd(["ab"])])).not.toEqual(fingerprintOf([sadd(["ba"])]));
    expect(fingerprintOf([sadd(["a", "bc"])])).not.toEqual(fingerprintOf([sadd(["ab", "c"])]));
  });

  test("the window: an id is forgotten after requestWindowMs, and the oldest go first beyond the count bound", () => {
    const table = new RequestTable({ windowMs: 1000, idsMax: 3 });
    const fp = fingerprintOf([incr("c", 1n)]);
    const entry = (s: string, at: number): RequestEntryData => ({ id: id(s), fingerprint: fp, acceptedAtMs: at, outcomes: [] });
    table.remember(entry("a", 0), null, 0);
    expect(table.lookup(id("a"), fp, 1000).kind).toBe("seen");
    expect(table.lookup(id("a"), fp, 1001).kind).toBe("new");
    for (const s of ["b", "c", "d", "e"]) table.remember(entry(s, 2000), null, 2000);
    expect(table.size).toBe(3);
    expect(table.lookup(id("b"), fp, 2000).kind).toBe("new");
    expect(table.lookup(id("e"), fp, 2000).kind).toBe("seen");
  });

  test("request records: a group cut at the WAL's tail is dropped whole; a complete one applies and remembers", () => {
    const source = new Engine({ actor: "n1" });
    const deltas: Uint8Array[] = [];
    for (let i = 0; i < 6; i++) {
      const r = source.apply({ kind: "set", key: `k${i}`, value: new Uint8Array(100).fill(i) }, 1000);
      if (!r.ok) throw new Error(r.error.message);
      deltas.push(r.delta);
    }
    const entry: RequestEntryData = { id: id("grp"), fingerprint: new Uint8Array(16).fill(7), acceptedAtMs: 5, outcomes: deltas.map(() => ({ ok: true, result: { kind: "written", context: null } })) };
    const records = encodeRequestRecords(entry, deltas, 400);
    expect(records.length).toBeGreaterThan(2);
    for (const r of records) expect(walRecordKind(r)).toBe("request-part");
    const replayInto = (n: number) => {
      const engine = new Engine({ actor: "n2" });
      const table = new RequestTable();
      const replay = new RequestReplay({
        table, nowMs: () => 10, warn: () => undefined,
        mergeDelta: (_lsn, b, s, e) => { const m = engine.mergeDelta(b.subarray(s, e), 10); if (!m.ok) throw new Error(m.error.message); },
      });
      records.slice(0, n).forEach((r, i) => replay.walRecord((i + 1) as Lsn, r));
      replay.finish();
      return { engine, table, replay };
    };
    const torn = replayInto(records.length - 1);
    expect(torn.engine.keyCount).toBe(0);
    expect(torn.table.size).toBe(0);
    expect(torn.replay.groupsDropped).toBe(1);
    const whole = replayInto(records.length);
    expect(whole.engine.keyCount).toBe(6);
    expect(whole.table.lookup(id("grp"), entry.fingerprint, 10).kind).toBe("seen");
  });
});

test("request records and table chunks keep every outcome exactly (int64 extremes, errors, contexts)", () => {
  const outcomes: OpOutcome[] = [
    { ok: true, result: { kind: "counter", value: -(2n ** 63n) } },
    { ok: true, result: { kind: "counter", value: 2n ** 63n - 1n } },
    { ok: true, result: { kind: "counter", value: 0n } },
    { ok: true, result: { kind: "counter", value: -1n } },
    { ok: true, result: { kind: "written", context: null } },
    { ok: true, result: { kind: "written", context: new Uint8Array([1, 2, 3]) } },
    { ok: true, result: { kind: "count", value: 0 } },
    { ok: true, result: { kind: "count", value: 100_000 } },
    { ok: false, error: { code: "FAILED_PRECONDITION", message: "key \"ключ\" holds a lww" } },
    { ok: false, error: { code: "OUT_OF_RANGE", message: "" } },
  ];
  const entry: RequestEntryData = { id: new Uint8Array(64).fill(0xff), fingerprint: fingerprintOf([incr("k", 1n)]), acceptedAtMs: 1_700_000_000_123, outcomes };
  const [record] = encodeRequestRecords(entry, [new Uint8Array([8, 1])], 1 << 20);
  const part = decodeRequestPart(record ?? new Uint8Array(0));
  expect(part.entry).toEqual(entry);
  expect(part.deltas).toEqual([new Uint8Array([8, 1])]);
  expect(decodeRequestChunk(encodeRequestChunk([entry, entry]))).toEqual([entry, entry]);
  // The fingerprint tells requests apart by every field that changes what they do.
  const set = (context: Uint8Array | null): ClientOp => ({ kind: "setMv", key: "m", value: id("v"), context });
  const fps = [[incr("k", 1n)], [incr("k", 2n)], [incr("j", 1n)], [{ ...incr("k", 1n), counter: "gcounter" }], [set(null)], [set(new Uint8Array(0))], [set(id("c"))], [incr("k", 1n), incr("k", 1n)],
    [{ kind: "sadd", key: "k", members: [id("a")] }], [{ kind: "srem", key: "k", members: [id("a")] }], [{ kind: "sadd", key: "k", members: [id("b")] }]]
    .map((ops) => Buffer.from(fingerprintOf(ops as ClientOp[])).toString("hex"));
  expect(new Set(fps).size).toBe(fps.length);
});

test("a node record of a kind or version this build does not know is refused with a message naming it", () => {
  const replay = new RequestReplay({ table: new RequestTable(), nowMs: () => 0, warn: () => undefined, mergeDelta: () => undefined });
  expect(() => replay.walRecord(1 as Lsn, new Uint8Array([0x00, 0x07, 0x01]))).toThrow("node record kind 7 is unknown to this build");
  expect(() => replay.walRecord(1 as Lsn, new Uint8Array([0x00, 0x01, 0x09]))).toThrow("request record version 9 is unknown to this build");
});

describe("safe retries across a restart (real store)", () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await removeDir(d);
  });

  /** A node's write path on a real store in `dir`, recovered the way node.ts recovers. */
  async function openNode(dir: string, walSegmentBytes?: number) {
    const engine = new Engine({ actor: "n1" });
    const requests = new RequestTable();
    const now = () => 1_000_000;
    const replay = new RequestReplay({
      table: requests, nowMs: now, warn: () => undefined,
      mergeDelta: (lsn, b, s, e) => { const m = engine.mergeDelta(b.subarray(s, e), now()); if (!m.ok) throw new Error(`${lsn}: ${m.error.message}`); },
    });
    const store: Store = await openStore({
      dataDir: dir, durability: { kind: "sync" }, repair: false, accel: testAccel(), log: silentLog, onFatal: () => undefined,
      ...(walSegmentBytes === undefined ? {} : { walSegmentBytes }),
      sink: {
        snapshotEntry: (key, state) => {
          if (replay.snapshotEntry(key, state)) return;
          const r = engine.loadState(key, state.slice());
          if (!r.ok) throw new Error(r.error.message);
        },
        walRecord: (lsn, body) => replay.walRecord(lsn, body),
      },
    });
    replay.finish();
    const writes = new WritePath({ engine, store, cluster: quietCluster, requests, now });
    const snapshot = () => store.snapshot(withRequestTable(entries(engine), requests.exportChunks()));
    return { engine, store, requests, writes, snapshot };
  }

  async function* entries(engine: Engine): AsyncGenerator<readonly [string, Uint8Array]> {
    const scan = engine.scan();
    while (!scan.done) for (const item of scan.next()) yield [item.key, item.state] as const;
  }

  test("through WAL replay: the retry after a restart gets the first result and the counter does not move", async () => {
    const dir = await tempDir("requests-wal");
    dirs.push(dir);
    let n = await openNode(dir);
    await n.writes.apply([incr("plain", 2n)], null); // an id-less write: a bare KeyDelta record, as before
    expect(valueOf(await n.writes.apply([incr("c", 7n)], id("x")))).toBe(7n);
    await n.writes.apply([incr("c", 1n)], null);
    await n.store.close();

    n = await openNode(dir);
    expect(counterOf(n.engine, "plain")).toBe(2n);
    expect(counterOf(n.engine, "c")).toBe(8n);
    expect(valueOf(await n.writes.apply([incr("c", 7n)], id("x")))).toBe(7n);
    expect(counterOf(n.engine, "c")).toBe(8n);
    expect(await refusal(n.writes.apply([incr("c", 6n)], id("x")))).toBe("FAILED_PRECONDITION");
    await n.store.close();
  });

  test("past a snapshot that let the WAL segment holding the request go", async () => {
    const dir = await tempDir("requests-snap");
    dirs.push(dir);
    let n = await openNode(dir, 4096);
    expect(valueOf(await n.writes.apply([incr("c", 3n)], id("y")))).toBe(3n);
    const firstSegment = join(dir, "wal", n.store.recovery.segments[0]?.name ?? "missing");
    // Two snapshots (the store keeps two) with segments rolled between them: the first segment is deleted.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 40; i++) await n.writes.apply([{ kind: "set", key: `pad${i}`, value: new Uint8Array(200).fill(round) }], null);
      await n.snapshot();
    }
    expect(existsSync(firstSegment)).toBe(false);
    await n.store.close();

    n = await openNode(dir, 4096);
    expect(counterOf(n.engine, "c")).toBe(3n);
    expect(n.requests.size).toBe(1);
    expect(valueOf(await n.writes.apply([incr("c", 3n)], id("y")))).toBe(3n);
    expect(counterOf(n.engine, "c")).toBe(3n);
    await n.store.close();
  });
});

describe("admission bounds", () => {
  test("a flood beyond opsInFlightMax is refused with RESOURCE_EXHAUSTED at once and changes nothing", async () => {
    const { engine, store, requests, writes } = fakePath({ opsInFlightMax: 10 });
    store.manual = true; // the disk stalls: admitted writes stay in flight
    const admitted = Array.from({ length: 10 }, (_, i) => writes.apply([incr(`ok${i}`, 1n)], null));
    const refused: Promise<string>[] = [];
    for (let i = 0; i < 50; i++) refused.push(refusal(writes.apply([incr("flood", 1n), { kind: "set", key: `f${i}`, value: id("v") }], id(`f${i}`))));
    expect(new Set(await Promise.all(refused))).toEqual(new Set(["RESOURCE_EXHAUSTED"]));
    expect(engine.has("flood")).toBe(false);
    expect(engine.keyCount).toBe(10);
    expect(store.records.length).toBe(10);
    expect(writes.stats.overloaded).toBe(50);
    expect(requests.size).toBe(0); // refused requests leave no id behind
    expect(writes.opsInFlight).toBe(10);
    store.manual = false;
    store.settleAll();
    await Promise.all(admitted);
    // Once the stall clears the node takes writes again.
    expect(valueOf(await writes.apply([incr("flood", 1n)], null))).toBe(1n);
  });

  test("a WAL queue above walQueueBytesMax refuses writes (RESOURCE_EXHAUSTED, nothing applied) but serves reads", async () => {
    const { engine, store, writes } = fakePath({ walQueueBytesMax: 1000 });
    await writes.apply([incr("c", 1n)], null);
    store.walQueuedBytes = 1001;
    expect(await refusal(writes.apply([incr("c", 1n)], null))).toBe("RESOURCE_EXHAUSTED");
    expect(counterOf(engine, "c")).toBe(1n);
    const read = await writes.apply([{ kind: "get", key: "c" }], null);
    expect(read[0]?.ok).toBe(true);
  });
});
