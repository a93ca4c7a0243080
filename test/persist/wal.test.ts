// The WAL writer on its own: LSNs, reopening, segment rollover, durability modes, limits.

import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { stat } from "node:fs/promises";
import { PersistError, PersistErrorCode, persistLimits, type SyncTimer } from "../../src/persist/index.ts";
import { encodeRecords, segmentName } from "../../src/persist/format.ts";
import { asLsn, type Lsn } from "../../src/persist/lsn.ts";
import { appendRecords, listNames, openTestStore as openWith, payloadFor, removeDir, tempDir } from "./helpers.ts";
import type { Appender, DurableFile } from "../../src/accel/api.ts";
import { nativeAccel, tsAccel, type AccelParts, type CountedDurableFile } from "../../src/accel/index.ts";
import type { StoreOptions } from "../../src/persist/index.ts";

const dirs: string[] = [];
async function dir(): Promise<string> {
  const d = await tempDir("wal");
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await removeDir(d);
});

// Both durable-append implementations run the same suite (the native one when the addon loaded).
const native = nativeAccel();
const paths: [string, AccelParts][] = [["ts", tsAccel], ...(native ? [["native", native] as [string, AccelParts]] : [])];

for (const [pathName, parts] of paths) {
  const openTestStore = (d: string, over: Partial<StoreOptions> = {}): ReturnType<typeof openWith> => openWith(d, { accel: parts, ...over });
  describe(`WAL (${pathName} append)`, () => {
    test("assigns consecutive LSNs in call order and replays them after reopening", async () => {
      const d = await dir();
      const a = await openTestStore(d);
      expect(a.store.nextLsn).toBe(asLsn(1));
      const l1 = await a.store.append([payloadFor(1)]);
      const l3 = await a.store.append([payloadFor(2), payloadFor(3)]);
      expect([l1, l3]).toEqual([asLsn(1), asLsn(3)]);
      expect(await a.store.append([])).toBe(asLsn(3));
      await appendRecords(a.store, 200, 3);
      await a.store.close();
      const b = await openTestStore(d);
      expect(b.set.prefixLength()).toBe(203);
      expect(b.store.nextLsn).toBe(asLsn(204));
      expect(b.store.recovery.walRecordsReplayed).toBe(203);
      await appendRecords(b.store, 5);
      await b.store.close();
      const c = await openTestStore(d);
      expect(c.set.prefixLength()).toBe(208);
      await c.store.close();
    });

    test("rolls over to a segment named by its first LSN and replays across segments", async () => {
      const d = await dir();
      const a = await openTestStore(d, { walSegmentBytes: persistLimits.walSegmentBytesMin });
      await appendRecords(a.store, 1000, 7);
      await a.store.close();
      const names = await listNames(join(d, "wal"));
      expect(names.length).toBeGreaterThan(5);
      expect(names[0]).toBe(segmentName(asLsn(1)));
      for (const n of names) expect((await stat(join(d, "wal", n))).size).toBeLessThan(persistLimits.walSegmentBytesMin + 1024);
      const b = await openTestStore(d, { walSegmentBytes: persistLimits.walSegmentBytesMin });
      expect(b.set.prefixLength()).toBe(1000);
      await b.store.close();
    });

    test("concurrent appends share fdatasyncs (group commit) and all are durable", async () => {
      const d = await dir();
      const files: CountedDurableFile[] = [];
      const counted: Appender = {
        async open(path: string): Promise<DurableFile> {
          const f = await parts.appender.open(path);
          files.push(f);
          return f;
        },
      };
      const a = await openTestStore(d, { accel: { checksums: parts.checksums, appender: counted } });
      const before = (files[0] as CountedDurableFile).stats().fdatasyncs;
      await appendRecords(a.store, 256);
      const syncs = (files[0] as CountedDurableFile).stats().fdatasyncs - before;
      expect(syncs).toBeGreaterThan(0);
      expect(syncs).toBeLessThan(256);
      await a.store.close();
      const b = await openTestStore(d);
      expect(b.set.prefixLength()).toBe(256);
      await b.store.close();
    });

    test("appends made while one is in flight go out as one accel append; sync and close include them; order and LSNs hold", async () => {
      const d = await dir();
      const calls: { records: number; sync: boolean }[] = [];
      const syncs: number[] = [];
      const counted: Appender = {
        async open(path: string): Promise<DurableFile> {
          const f = await parts.appender.open(path);
          return {
            append: (r, s) => { calls.push({ records: r.length, sync: s }); return f.append(r, s); },
            sync: () => { syncs.push(calls.length); return f.sync(); },
            // Never free early: the real file may finish a round mid-burst on a slow machine (next test).
            idle: () => false,
            get size() { return f.size; },
            close: () => f.close(),
          };
        },
      };
      const a = await openTestStore(d, { accel: { checksums: parts.checksums, appender: counted } });
      const opened = calls.length;
      // 64 writers in one tick: the first finds the disk idle and goes at once, the other 63 share one image.
      const lsns = await Promise.all(Array.from({ length: 64 }, (_, i) => a.store.append([payloadFor(i + 1)])));
      expect(lsns).toEqual(Array.from({ length: 64 }, (_, i) => asLsn(i + 1)));
      expect(calls.length - opened).toBe(2);
      // A sync called in the same tick as gathered appends resolves only once they are written.
      const pending = [a.store.append([payloadFor(65)]), a.store.append([payloadFor(66)]), a.store.append([payloadFor(67)])];
      const before = calls.length;
      await a.store.sync();
      expect(syncs[syncs.length - 1]).toBe(before + 1);
      expect(await Promise.all(pending)).toEqual([asLsn(65), asLsn(66), asLsn(67)]);
      // Close with appends still gathered: they are written before the file closes.
      const last = [a.store.append([payloadFor(68)]), a.store.append([payloadFor(69), payloadFor(70)])];
      await a.store.close();
      expect(await Promise.all(last)).toEqual([asLsn(68), asLsn(70)]);
      const b = await openTestStore(d);
      expect(b.set.prefixLength()).toBe(70);
      await b.store.close();
    });

    test("gathered appends go out as soon as the file says its round is done, not at the end of the burst", async () => {
      const d = await dir();
      const calls: number[] = [];
      // Stands in for the worker's count: busy from each append until the test says the round is done.
      let free = true;
      const counted: Appender = {
        async open(path: string): Promise<DurableFile> {
          const f = await parts.appender.open(path);
          return {
            append: (r, s) => { calls.push(r.reduce((n, x) => n + x.byteLength, 0)); free = false; return f.append(r, s); },
            sync: () => f.sync(),
            idle: () => free,
            get size() { return f.size; },
            close: () => f.close(),
          };
        },
      };
      const a = await openTestStore(d, { accel: { checksums: parts.checksums, appender: counted } });
      await a.store.sync();
      free = true;
      const opened = calls.length;
      const pending: Promise<Lsn>[] = [];
      for (let i = 1; i <= 20; i++) {
        // The first round finishes while the 11th writer runs: 2..11 go then, 12..20 at the burst's end.
        if (i === 11) free = true;
        pending.push(a.store.append([payloadFor(i)]));
      }
      expect(await Promise.all(pending)).toEqual(Array.from({ length: 20 }, (_, i) => asLsn(i + 1)));
      const image = (from: number, to: number): number =>
        encodeRecords(Array.from({ length: to - from + 1 }, (_, k) => payloadFor(from + k)), asLsn(from), parts.checksums).byteLength;
      expect(calls.slice(opened)).toEqual([image(1, 1), image(2, 11), image(12, 20)]);
      await a.store.close();
      const b = await openTestStore(d);
      expect(b.set.prefixLength()).toBe(20);
      await b.store.close();
    });

    test("refuses oversized input without writing anything", async () => {
      const d = await dir();
      const a = await openTestStore(d);
      const big = new Uint8Array(persistLimits.walRecordBytesMax);
      const err = await a.store.append([payloadFor(1), big]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PersistError);
      expect((err as PersistError).code).toBe(PersistErrorCode.BadInput);
      const many = Array.from({ length: persistLimits.walAppendRecordsMax + 1 }, () => new Uint8Array(1));
      expect(((await a.store.append(many).catch((e: unknown) => e)) as PersistError).code).toBe(PersistErrorCode.BadInput);
      expect(a.store.nextLsn).toBe(asLsn(1));
      await appendRecords(a.store, 3);
      await a.store.close();
      const b = await openTestStore(d);
      expect(b.set.prefixLength()).toBe(3);
      await b.store.close();
    });

    test("interval mode acknowledges after write and fdatasyncs on the injected timer", async () => {
      const d = await dir();
      const syncs: number[] = [];
      const real = parts;
      const counting: Appender = {
        async open(path: string): Promise<DurableFile> {
          const f = await real.appender.open(path);
          return {
            append: (r, s) => f.append(r, s),
            sync: () => { syncs.push(1); return f.sync(); },
            idle: () => f.idle(),
            get size() { return f.size; },
            close: () => f.close(),
          };
        },
      };
      let tick: (() => void) | null = null;
      const timer: SyncTimer = { start: (ms, fn) => { expect(ms).toBe(5); tick = fn; return () => { tick = null; }; } };
      const a = await openTestStore(d, { durability: { kind: "interval", ms: 5 }, accel: { checksums: real.checksums, appender: counting }, timer });
      await appendRecords(a.store, 10);
      expect(syncs.length).toBe(0);
      (tick as unknown as () => void)();
      await a.store.sync();
      expect(syncs.length).toBe(2);
      (tick as unknown as () => void)(); // nothing new appended: no fdatasync
      expect(syncs.length).toBe(2);
      await a.store.close();
      expect(tick).toBeNull();
      const b = await openTestStore(d);
      expect(b.set.prefixLength()).toBe(10);
      await b.store.close();
    });

    test("none mode and bad durability settings", async () => {
      const d = await dir();
      const bad = await openTestStore(d, { durability: { kind: "interval", ms: 0 } }).catch((e: unknown) => e);
      expect((bad as PersistError).code).toBe(PersistErrorCode.BadInput);
      const a = await openTestStore(d, { durability: { kind: "none" } });
      await appendRecords(a.store, 50, 5);
      await a.store.close();
      const b = await openTestStore(d);
      expect(b.set.prefixLength()).toBe(50);
      await b.store.close();
    });
  });
}

describe("WAL record framing", () => {
  test("a one-record append frames its record exactly as a batch frames the same record (LSNs past 2^32 too)", () => {
    // encodeRecords has a path of its own for one record (the usual append); replay reads both.
    const sums = tsAccel.checksums;
    const enc = new TextEncoder();
    const a = enc.encode("first body");
    const b = enc.encode("second, longer body");
    for (const first of [1, 2 ** 32 - 1, 2 ** 32 + 5, 2 ** 40 + 3]) {
      const batch = encodeRecords([a, b], asLsn(first), sums);
      const one = encodeRecords([a], asLsn(first), sums);
      const two = encodeRecords([b], asLsn(first + 1), sums);
      expect(Array.from(one)).toEqual(Array.from(batch.subarray(0, one.length)));
      expect(Array.from(two)).toEqual(Array.from(batch.subarray(one.length)));
      expect(one.length + two.length).toBe(batch.length);
    }
  });
});
