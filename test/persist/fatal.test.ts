// A failed write or fsync must stop the store: onFatal fires once, the append that hit it and
// every later one reject, and nothing that was acknowledged is missing after a reopen.

import { afterEach, describe, expect, test } from "bun:test";
import { readdir, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Appender, DurableFile } from "../../src/accel/api.ts";
import { PersistError, PersistErrorCode, persistLimits, type Lsn, type SyncTimer } from "../../src/persist/index.ts";
import { segmentName } from "../../src/persist/format.ts";
import { asLsn } from "../../src/persist/lsn.ts";
import { openTestStore, payloadFor, removeDir, tempDir, testAccel, type OpenResult } from "./helpers.ts";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await removeDir(d);
});

/** Appends one record at a time until one rejects; returns the acknowledged LSNs and the error. */
async function appendUntilFailure(r: OpenResult, max: number): Promise<{ acked: Lsn[]; error: unknown }> {
  const acked: Lsn[] = [];
  for (let i = 0; i < max; i++) {
    try {
      acked.push(await r.store.append([payloadFor(r.store.nextLsn)]));
    } catch (error) {
      return { acked, error };
    }
  }
  throw new Error(`no failure within ${max} appends`);
}

async function expectAckedSurvive(d: string, acked: Lsn[]): Promise<void> {
  const again = await openTestStore(d);
  const k = again.set.prefixLength();
  expect(typeof k).toBe("number");
  for (const l of acked) expect(again.set.records.has(l)).toBe(true);
  await again.store.close();
}

/** The real appender, except that files' fdatasync starts failing with EIO once `failing()` says so. */
function failingAppender(failing: () => boolean): Appender {
  const real = testAccel().appender;
  return {
    async open(path: string): Promise<DurableFile> {
      const f = await real.open(path);
      let poisoned = false;
      const eio = (): Error => Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
      return {
        async append(records, sync) {
          if (poisoned) throw eio();
          await f.append(records, false);
          if (sync && failing()) { poisoned = true; throw eio(); }
          if (sync) await f.sync();
        },
        async sync() {
          if (poisoned || failing()) { poisoned = true; throw eio(); }
          await f.sync();
        },
        idle: () => f.idle(),
        get size() { return f.size; },
        close: () => f.close(),
      };
    },
  };
}

describe("fsync failure", () => {
  test("an injected fdatasync error: onFatal once, the append rejects, later ones too", async () => {
    const d = await tempDir("fatal");
    dirs.push(d);
    let appends = 0;
    const r = await openTestStore(d, { accel: { checksums: testAccel().checksums, appender: failingAppender(() => ++appends > 40) } });
    const { acked, error } = await appendUntilFailure(r, 1000);
    expect(error).toBeInstanceOf(PersistError);
    expect((error as PersistError).code).toBe(PersistErrorCode.Fatal);
    expect(acked.length).toBeGreaterThan(30);
    expect(acked.length).toBeLessThan(40);
    expect(r.fatal.length).toBe(1);
    expect((r.fatal[0] as Error).message).toContain("EIO");
    // Concurrent and later appends and snapshots are refused.
    const later = await Promise.all([r.store.append([payloadFor(1)]), r.store.append([payloadFor(2)])].map((p) => p.then(() => "acked", (e: PersistError) => e.code)));
    expect(later).toEqual([PersistErrorCode.Fatal, PersistErrorCode.Fatal]);
    expect(((await r.store.snapshot([]).catch((e: unknown) => e)) as PersistError).code).toBe(PersistErrorCode.Fatal);
    expect(r.fatal.length).toBe(1);
    await r.store.close();
    await expectAckedSurvive(d, acked);
  });

  test("a new WAL segment that is a symlink to /dev/full (ENOSPC) stops the store at rollover", async () => {
    const d = await tempDir("devfull");
    dirs.push(d);
    const r = await openTestStore(d, { walSegmentBytes: persistLimits.walSegmentBytesMin });
    const traps: string[] = [];
    for (let lsn = 2; lsn < 400; lsn++) {
      const p = join(d, "wal", segmentName(asLsn(lsn)));
      await symlink("/dev/full", p);
      traps.push(p);
    }
    // Many appends in flight when the rollover fails: every one queued behind it must reject.
    const results = await Promise.all(Array.from({ length: 300 }, () => {
      const lsn = r.store.nextLsn;
      return r.store.append([payloadFor(lsn)]).then((l) => l, (e: unknown) => e);
    }));
    const acked = results.filter((x): x is Lsn => typeof x === "number");
    const errors = results.filter((x) => typeof x !== "number");
    expect(acked.length).toBeGreaterThan(0);
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect((e as PersistError).code).toBe(PersistErrorCode.Fatal);
    expect(r.fatal.length).toBe(1);
    expect((r.fatal[0] as NodeJS.ErrnoException).code ?? (r.fatal[0] as Error).message).toMatch(/ENOSPC|No space/);
    // Acknowledged records are exactly a prefix of the issued ones.
    expect(acked).toEqual(Array.from({ length: acked.length }, (_, i) => asLsn(i + 1)));
    await r.store.close();
    for (const p of traps) await unlink(p);
    expect((await readdir(join(d, "wal"))).length).toBe(1);
    await expectAckedSurvive(d, acked);
  });

  test("interval mode: a failing timed fdatasync stops the store", async () => {
    const d = await tempDir("interval");
    dirs.push(d);
    let failNow = false;
    let tick: () => void = () => undefined;
    const timer: SyncTimer = { start: (_ms, fn) => { tick = fn; return () => undefined; } };
    const r = await openTestStore(d, {
      durability: { kind: "interval", ms: 10 },
      accel: { checksums: testAccel().checksums, appender: failingAppender(() => failNow) },
      timer,
    });
    await r.store.append([payloadFor(1)]);
    failNow = true;
    tick();
    for (let i = 0; i < 100 && r.fatal.length === 0; i++) await Promise.resolve();
    expect(r.fatal.length).toBe(1);
    expect(((await r.store.append([payloadFor(2)]).catch((e: unknown) => e)) as PersistError).code).toBe(PersistErrorCode.Fatal);
    await r.store.close();
  });
});
