// The size bounds agree end to end (src/limits.ts): whatever the engine accepts - local writes
// and merges of them - can be logged, snapshotted and recovered by a restarted replica.

import { afterEach, describe, expect, test } from "bun:test";
import { accel } from "../../src/accel/index.ts";
import { encodeEnvelope, keyUtf8 } from "../../src/codec/index.ts";
import { CausalContext, internActor, MvRegister, VersionVector } from "../../src/crdt/index.ts";
import { Engine } from "../../src/engine/index.ts";
import { keyEnvelopeBytesMax, keyStateWriteBytesMax, mergeHeadroom, mvSiblingsMax, mvSiblingsWriteMax, registerValueBytesMax } from "../../src/limits.ts";
import { openStore, silentLog, type Store } from "../../src/persist/index.ts";
import { removeDir, tempDir } from "../persist/helpers.ts";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await removeDir(d);
});

/** A data folder and a store whose recovery loads into `engine` exactly as the node does (src/node/node.ts). */
async function open(dir: string, engine: Engine): Promise<Store> {
  const a = accel();
  return openStore({
    dataDir: dir,
    durability: { kind: "sync" },
    repair: false,
    accel: { checksums: a.checksums, appender: a.appender },
    log: silentLog,
    onFatal: () => undefined,
    sink: {
      snapshotEntry: (key, state) => {
        const r = engine.loadState(key, state.slice());
        if (!r.ok) throw new Error(`snapshot entry for key ${key}: ${r.error.message}`);
      },
      walRecord: (lsn, body) => {
        const r = engine.mergeDelta(body, 1_000);
        if (!r.ok) throw new Error(`WAL record ${lsn}: ${r.error.message}`);
      },
    },
  });
}

async function snapshot(store: Store, engine: Engine): Promise<void> {
  await store.snapshot((async function* () {
    const scan = engine.scan();
    while (!scan.done) for (const item of scan.next()) yield [item.key, item.state] as const;
  })());
}

function mvValues(e: Engine, key: string): Uint8Array[] {
  const v = e.get(key);
  if (v === undefined || v.type !== "mv") throw new Error(`${key} is not an MV register`);
  return v.values;
}

describe("MV siblings", () => {
  test("writes with a stale context stop at the sibling bound with a clear error, and a restart from a snapshot recovers the key", async () => {
    const dir = await tempDir("siblings");
    dirs.push(dir);
    const e = new Engine({ actor: "n1" });
    const store = await open(dir, e);
    // A client reads once and then keeps writing with that (stale) context: every write is
    // concurrent with the ones before it, so each one adds a sibling.
    const first = e.apply({ kind: "setMv", key: "k", value: new Uint8Array([0]), context: null }, 1_000);
    if (!first.ok || first.value.type !== "mv") throw new Error("first write refused");
    const stale = first.value.context;
    const deltas: Uint8Array[] = [first.delta];
    let refused: string | null = null;
    for (let i = 1; i <= mvSiblingsWriteMax + 1 && refused === null; i++) {
      const r = e.apply({ kind: "setMv", key: "k", value: new Uint8Array([i & 0xff, i >> 8]), context: stale }, 1_000);
      if (r.ok) deltas.push(r.delta);
      else refused = `${r.error.code}: ${r.error.message}`;
    }
    expect(refused).not.toBeNull();
    expect(refused).toContain("context");
    expect(mvValues(e, "k").length).toBe(mvSiblingsWriteMax);
    await store.append(deltas);
    await snapshot(store, e);
    await store.close();

    const again = new Engine({ actor: "n1" });
    const reopened = await open(dir, again);
    await reopened.close();
    expect(mvValues(again, "k").length).toBe(mvSiblingsWriteMax);
    expect(again.encodeState("k")).toEqual(e.encodeState("k") as Uint8Array);

    // The client's way out: a write with the context it read replaces every sibling.
    const read = again.get("k");
    if (read === undefined || read.type !== "mv") throw new Error("unreachable");
    const r = again.apply({ kind: "setMv", key: "k", value: new Uint8Array([7]), context: read.context }, 2_000);
    expect(r.ok).toBe(true);
    expect(mvValues(again, "k")).toEqual([new Uint8Array([7])]);
  });
});

describe("state size", () => {
  test("a write that would take a key's state past the write bound is refused and changes nothing; the key still restarts", async () => {
    const dir = await tempDir("state-bytes");
    dirs.push(dir);
    const e = new Engine({ actor: "n1" });
    const store = await open(dir, e);
    const big = (i: number): Uint8Array => new Uint8Array(registerValueBytesMax).fill(i);
    const first = e.apply({ kind: "setMv", key: "big", value: big(1), context: null }, 1_000);
    if (!first.ok || first.value.type !== "mv") throw new Error("first write refused");
    const stale = first.value.context;
    const deltas: Uint8Array[] = [first.delta];
    let refused: string | null = null;
    for (let i = 2; i < 40 && refused === null; i++) {
      const r = e.apply({ kind: "setMv", key: "big", value: big(i), context: stale }, 1_000);
      if (r.ok) deltas.push(r.delta);
      else refused = `${r.error.code}: ${r.error.message}`;
    }
    expect(refused).not.toBeNull();
    const before = e.encodeState("big") as Uint8Array;
    const again1 = e.apply({ kind: "setMv", key: "big", value: big(99), context: stale }, 1_000);
    expect(again1.ok ? "accepted" : again1.error.code).toBe("LIMIT_EXCEEDED");
    expect(e.encodeState("big")).toEqual(before);
    expect(before.length).toBeLessThanOrEqual(keyStateWriteBytesMax + 2048);
    // Three 1 MiB siblings fit in 4 MiB with their dots and context; a fourth does not.
    expect(mvValues(e, "big").length).toBe(Math.floor(keyStateWriteBytesMax / registerValueBytesMax) - 1);
    await store.append(deltas);
    await snapshot(store, e);
    await store.close();

    const again = new Engine({ actor: "n1" });
    const reopened = await open(dir, again);
    await reopened.close();
    expect(again.encodeState("big")).toEqual(before);
  });
});

describe("merges", () => {
  test("replicas that each filled a key to the write bound merge up to the stored bound; the merged state restarts; one more is refused and changes nothing", () => {
    const into = new Engine({ actor: "sink" });
    // What a replica holds after mvSiblingsWriteMax writes with empty contexts (each one
    // concurrent with the others): built directly, 1024 engine writes per replica are slow.
    const fill = (actor: string): Uint8Array => {
      const a = internActor(actor);
      const entries = Array.from({ length: mvSiblingsWriteMax }, (_, i) => ({ dot: { actor: a, counter: i + 1 }, value: new Uint8Array([i & 0xff]) }));
      const ctx = new CausalContext(new VersionVector([a], [mvSiblingsWriteMax]), []);
      return encodeEnvelope(keyUtf8("k") as Uint8Array, new MvRegister(entries, ctx));
    };
    for (let w = 0; w < mergeHeadroom; w++) {
      const r = into.mergeState("k", fill(`w${w}`), 1_000);
      expect(r.ok).toBe(true);
    }
    expect(mvValues(into, "k").length).toBe(mvSiblingsMax);
    const merged = into.encodeState("k") as Uint8Array;
    const restarted = new Engine({ actor: "sink" });
    expect(restarted.loadState("k", merged)).toEqual({ ok: true, key: "k" });
    expect(restarted.encodeState("k")).toEqual(merged);

    const refused = into.mergeState("k", fill("one-too-many"), 1_000);
    expect(refused.ok ? "merged" : refused.error.code).toBe("LIMIT_EXCEEDED");
    expect(into.encodeState("k")).toEqual(merged);
  });
});

describe("WAL", () => {
  test("a merged state above the write bound (what a node logs when anti-entropy repairs a key) is one WAL record and recovers", async () => {
    const dir = await tempDir("wal-state");
    dirs.push(dir);
    const e = new Engine({ actor: "n1" });
    for (let w = 0; w < 2; w++) {
      const writer = new Engine({ actor: `w${w}` });
      for (let i = 0; i < 3; i++) {
        const r = writer.apply({ kind: "setMv", key: "big", value: new Uint8Array(registerValueBytesMax).fill(w * 3 + i), context: new Uint8Array(0) }, 1_000);
        if (!r.ok) throw new Error(r.error.message);
      }
      expect(e.mergeState("big", writer.encodeState("big") as Uint8Array, 1_000).ok).toBe(true);
    }
    const state = e.encodeState("big") as Uint8Array;
    expect(state.length).toBeGreaterThan(keyStateWriteBytesMax);
    const store = await open(dir, new Engine({ actor: "n1" }));
    await store.append([state]);
    await store.close();
    const again = new Engine({ actor: "n1" });
    const reopened = await open(dir, again);
    await reopened.close();
    expect(again.encodeState("big")).toEqual(state);
  });
});

describe("a key holding several types stays within one stored state", () => {
  const mib = 1024 * 1024;
  /** An MV state of `n` one-MiB siblings by one actor, created at `createdMs`. */
  const bigMv = (n: number, createdMs: number): Uint8Array => {
    const a = internActor("big-writer");
    const entries = Array.from({ length: n }, (_, i) => ({ dot: { actor: a, counter: i + 1 }, value: new Uint8Array(mib).fill(i & 0xff) }));
    return encodeEnvelope(keyUtf8("k") as Uint8Array, new MvRegister(entries, new CausalContext(new VersionVector([a], [n]), [])), createdMs);
  };

  test("a conflict side that would take the key's states past the stored bound is refused and changes nothing; one within it is kept, encodes and restarts", () => {
    const e = new Engine({ actor: "sink" });
    expect(e.apply({ kind: "set", key: "k", value: new Uint8Array(mib).fill(7) }, 1_000).ok).toBe(true);
    const before = e.encodeState("k") as Uint8Array;
    const refused = e.mergeState("k", bigMv(63, 5_000), 6_000);
    expect(refused.ok ? "merged" : refused.error.code).toBe("LIMIT_EXCEEDED");
    expect(e.encodeState("k")).toEqual(before);

    const kept = e.mergeState("k", bigMv(62, 5_000), 6_000);
    expect(kept.ok && kept.typeConflict).toBe(true);
    const v = e.get("k");
    expect(v?.type).toBe("lww");
    expect(v !== undefined && "conflicts" in v ? v.conflicts?.length : 0).toBe(1);
    const state = e.encodeState("k") as Uint8Array;
    expect(state.length).toBeLessThanOrEqual(keyEnvelopeBytesMax);
    const restarted = new Engine({ actor: "sink" });
    expect(restarted.loadState("k", state)).toEqual({ ok: true, key: "k" });
    expect(restarted.encodeState("k")).toEqual(state);
  });
});
