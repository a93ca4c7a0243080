// Fuzzy snapshots: records appended while a 100k-entry snapshot is written all survive a
// reopen; only the newest two snapshots are kept and the WAL they cover is deleted; the
// scheduler fires on time and on WAL size.

import { afterEach, describe, expect, test } from "bun:test";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PersistError, PersistErrorCode, SnapshotScheduler, persistLimits, type Lsn } from "../../src/persist/index.ts";
import { snapshotName } from "../../src/persist/format.ts";
import { asLsn } from "../../src/persist/lsn.ts";
import { openTestStore, payloadFor, removeDir, snapshotKey, tempDir } from "./helpers.ts";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await removeDir(d);
});

describe("snapshots", () => {
  test("records appended during a snapshot of 100k entries all survive reopening", async () => {
    const d = await tempDir("snap");
    dirs.push(d);
    const keys = 100_000;
    const a = await openTestStore(d);
    const model = new Map<number, Uint8Array>();
    const batch: Uint8Array[] = [];
    for (let lsn = 1; lsn <= keys; lsn++) {
      const body = payloadFor(lsn);
      model.set(lsn, body);
      batch.push(body);
      if (batch.length === 1000) await a.store.append(batch.splice(0));
    }
    const startLsn = a.store.nextLsn;
    let iterated = 0;
    const acked: Lsn[] = [];
    const writes: Promise<void>[] = [];
    // The key list is fixed when the snapshot begins, so the records appended meanwhile are
    // not in it: they must come back from the WAL, replayed from the snapshot's start LSN.
    function* entries(): Generator<readonly [string, Uint8Array]> {
      for (const lsn of [...model.keys()]) {
        const body = model.get(lsn) as Uint8Array;
        // Every 5000 entries, writers append more (applied to the model in the same step).
        if (++iterated % 5000 === 0) {
          for (let i = 0; i < 20; i++) {
            const l = a.store.nextLsn;
            model.set(l, payloadFor(l));
            writes.push(a.store.append([payloadFor(l)]).then((x) => { acked.push(x); }));
          }
        }
        yield [snapshotKey(lsn), body];
      }
    }
    const written = await a.store.snapshot(entries());
    await Promise.all(writes);
    expect(written.startLsn).toBe(startLsn);
    expect(written.entries).toBe(keys);
    expect(acked.length).toBeGreaterThan(300);
    // More writes after the snapshot, then a restart.
    for (let i = 0; i < 50; i++) await a.store.append([payloadFor(a.store.nextLsn)]);
    const total = a.store.nextLsn - 1;
    await a.store.close();

    const b = await openTestStore(d);
    expect(b.store.recovery.snapshot?.startLsn).toBe(startLsn);
    expect(b.store.recovery.walRecordsReplayed).toBe(total - startLsn + 1);
    expect(b.set.prefixLength()).toBe(total);
    for (const l of acked) expect(b.set.records.has(l)).toBe(true);
    await b.store.close();
  }, 60_000);

  test("snapshot keys come back exactly, including a leading U+FEFF and other non-ASCII text", async () => {
    const d = await tempDir("snap-keys");
    dirs.push(d);
    const keys = ["\uFEFFbom", "\uFEFF", "plain", "é\uFEFF", "😀"];
    const a = await openTestStore(d);
    await a.store.snapshot(keys.map((k, i) => [k, Uint8Array.of(i)] as const));
    await a.store.close();
    const seen: Array<[string, number]> = [];
    const b = await openTestStore(d, {
      sink: { snapshotEntry: (key, state) => void seen.push([key, state[0] as number]), walRecord: () => undefined },
    });
    await b.store.close();
    expect(seen).toEqual(keys.map((k, i) => [k, i] as [string, number]));
  });

  test("keeps the newest two snapshots and deletes the WAL segments they do not need", async () => {
    const d = await tempDir("prune");
    dirs.push(d);
    const a = await openTestStore(d, { walSegmentBytes: persistLimits.walSegmentBytesMin });
    const model = new Map<number, Uint8Array>();
    const starts: Lsn[] = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 200; i++) {
        const l = a.store.nextLsn;
        model.set(l, payloadFor(l));
        await a.store.append([payloadFor(l)]);
      }
      starts.push((await a.store.snapshot([...model].map(([l, v]) => [snapshotKey(l), v] as const))).startLsn);
    }
    const snaps = (await readdir(join(d, "snap"))).sort();
    expect(snaps).toEqual([snapshotName(starts[2] as Lsn), snapshotName(starts[3] as Lsn)]);
    const segs = (await readdir(join(d, "wal"))).sort().map((n) => Number(n.slice(4, 24)));
    // The oldest kept snapshot still finds its start LSN in the WAL; nothing wholly below it remains.
    expect(segs[0]).toBeLessThanOrEqual(starts[2] as number);
    expect(segs[1]).toBeGreaterThan(starts[2] as number);
    expect(segs[0]).toBeGreaterThan(1);
    const second = await a.store.snapshot([]).then(() => a.store.snapshot([]));
    expect(second.startLsn).toBe(a.store.nextLsn);
    await a.store.close();
    const b = await openTestStore(d);
    // The newest snapshot is empty here, so the recovered set is just the WAL after it.
    expect(b.store.recovery.snapshot?.startLsn).toBe(second.startLsn);
    await b.store.close();
  });

  test("one snapshot at a time; a failed source leaves no file behind", async () => {
    const d = await tempDir("one");
    dirs.push(d);
    const a = await openTestStore(d);
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    async function* slow(): AsyncGenerator<readonly [string, Uint8Array]> {
      await gate;
      yield ["k", new Uint8Array(1)];
    }
    const first = a.store.snapshot(slow());
    const err = await a.store.snapshot([]).catch((e: unknown) => e);
    expect((err as PersistError).code).toBe(PersistErrorCode.SnapshotInProgress);
    release();
    await first;
    async function* failing(): AsyncGenerator<readonly [string, Uint8Array]> {
      yield ["k", new Uint8Array(1)];
      throw new Error("engine went away");
    }
    expect(await a.store.snapshot(failing()).catch((e: Error) => e.message)).toBe("engine went away");
    const big = await a.store.snapshot([["x".repeat(persistLimits.snapshotKeyBytesMax + 1), new Uint8Array(1)]]).catch((e: unknown) => e);
    expect((big as PersistError).code).toBe(PersistErrorCode.BadInput);
    expect((await readdir(join(d, "snap"))).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    await a.store.close();
  });
});

describe("leftovers", () => {
  test("a snapshot temp file left by a crash is removed at the next start", async () => {
    const d = await tempDir("tmp");
    dirs.push(d);
    const a = await openTestStore(d);
    await a.store.append([payloadFor(1)]);
    await a.store.close();
    const stale = join(d, "snap", `${snapshotName(asLsn(2))}.tmp`);
    await writeFile(stale, "half a snapshot");
    const b = await openTestStore(d);
    expect(b.set.prefixLength()).toBe(1);
    expect(await readdir(join(d, "snap"))).toEqual([]);
    await b.store.close();
  });
});

describe("closing", () => {
  test("close during a snapshot lets it finish and does not count as a failure", async () => {
    const d = await tempDir("close");
    dirs.push(d);
    const a = await openTestStore(d);
    await a.store.append([payloadFor(1)]);
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    async function* slow(): AsyncGenerator<readonly [string, Uint8Array]> {
      await gate;
      yield [snapshotKey(1), payloadFor(1)];
    }
    const snap = a.store.snapshot(slow());
    const closed = a.store.close();
    const appendAfterClose = await a.store.append([payloadFor(2)]).catch((e: PersistError) => e.code);
    expect(appendAfterClose).toBe(PersistErrorCode.Closed);
    release();
    expect((await snap).entries).toBe(1);
    await closed;
    expect(a.fatal).toEqual([]);
    const b = await openTestStore(d);
    expect(b.store.recovery.snapshot?.entries).toBe(1);
    expect(b.set.prefixLength()).toBe(1);
    await b.store.close();
  });
});

describe("SnapshotScheduler", () => {
  test("fires after the interval or the WAL size, never while one runs", () => {
    const s = new SnapshotScheduler({ intervalMs: 1000, walBytesMax: 500 }, 0);
    expect(s.due(999, 0)).toBe(false);
    expect(s.due(1000, 0)).toBe(true);
    expect(s.due(10, 500)).toBe(true);
    s.started(1000);
    expect(s.due(5000, 10_000)).toBe(false);
    s.finished();
    expect(s.due(1999, 499)).toBe(false);
    expect(s.due(2000, 0)).toBe(true);
    const off = new SnapshotScheduler({ intervalMs: 0, walBytesMax: 0 }, 0);
    expect(off.due(1e12, 1e12)).toBe(false);
  });
});
