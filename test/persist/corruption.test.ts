// Damage beyond a torn tail: a flipped bit mid-log must refuse naming the file and offset (and
// start with the prefix under repair); 1000 random corruptions of a data folder must each
// recover a prefix of what was written or refuse with a RecoveryError, nothing else.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { readdir, readFile, rename, symlink, truncate, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RecoveryError, RecoveryErrorCode, persistLimits, type Store } from "../../src/persist/index.ts";
import { recover } from "../../src/persist/recovery.ts";
import { segmentName } from "../../src/persist/format.ts";
import { asLsn } from "../../src/persist/lsn.ts";
import {
  appendRecords, copyDir, openTestStore, payloadFor, propertySettings, RecordSet, removeDir, snapshotKey, tempDir,
  testAccel, withSeed, bytesEqual,
} from "./helpers.ts";

let root = "";
let single = ""; // one segment, 100 records
let rich = ""; // small segments, three fuzzy snapshots (two kept), pruned WAL
let walOnly = ""; // small segments, no snapshot
let richTotal = 0;

/** Appends with the engine's contract: the model sees a record in the same step it is appended. */
function appendModelled(store: Store, model: Map<number, Uint8Array>, n: number): Promise<unknown> {
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const lsn = store.nextLsn;
    model.set(lsn, payloadFor(lsn));
    all.push(store.append([payloadFor(lsn)]));
  }
  return Promise.all(all);
}

/** A fuzzy snapshot: iterates the live model while more records are appended. */
async function fuzzySnapshot(store: Store, model: Map<number, Uint8Array>): Promise<void> {
  async function* entries(): AsyncGenerator<readonly [string, Uint8Array]> {
    let i = 0;
    for (const [lsn, body] of model) {
      if (i++ % 40 === 0) await appendModelled(store, model, 3);
      yield [snapshotKey(lsn), body];
    }
  }
  await store.snapshot(entries());
}

beforeAll(async () => {
  root = await tempDir("corrupt");
  single = join(root, "single");
  const s = await openTestStore(single);
  await appendRecords(s.store, 100);
  await s.store.close();

  rich = join(root, "rich");
  const r = await openTestStore(rich, { walSegmentBytes: persistLimits.walSegmentBytesMin });
  const model = new Map<number, Uint8Array>();
  for (let round = 0; round < 3; round++) {
    await appendModelled(r.store, model, 150);
    await fuzzySnapshot(r.store, model);
  }
  await appendModelled(r.store, model, 150);
  richTotal = r.store.nextLsn - 1;
  await r.store.close();
  expect((await readdir(join(rich, "snap"))).length).toBe(2);

  walOnly = join(root, "wal-only");
  const w = await openTestStore(walOnly, { walSegmentBytes: persistLimits.walSegmentBytesMin });
  await appendRecords(w.store, 300, 2);
  await w.store.close();
});
afterAll(async () => {
  await removeDir(root);
});

async function recoverSet(dataDir: string, repair = false): Promise<RecordSet> {
  const set = new RecordSet();
  await recover({ dataDir, repair, sums: testAccel().checksums, log: () => undefined, sink: set });
  return set;
}

async function refusal(p: Promise<unknown>): Promise<RecoveryError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(RecoveryError);
  return e as RecoveryError;
}

let caseNo = 0;
async function copyOf(base: string): Promise<string> {
  const d = join(root, `case-${caseNo++}`);
  await copyDir(base, d);
  return d;
}

/** Offset of record `lsn` in a single-segment folder. */
function offsetOf(lsn: number): number {
  let at = 32;
  for (let l = 1; l < lsn; l++) at += 16 + payloadFor(l).byteLength;
  return at;
}

describe("damage in the middle", () => {
  test("a flipped bit mid-log refuses naming file and offset; repair starts with the prefix", async () => {
    const d = await copyOf(single);
    const seg = join(d, "wal", segmentName(asLsn(1)));
    const img = new Uint8Array(await readFile(seg));
    const at = offsetOf(50);
    img[at + 20] = (img[at + 20] as number) ^ 0x10;
    await writeFile(seg, img);
    const err = await refusal(openTestStore(d));
    expect(err.code).toBe(RecoveryErrorCode.CorruptRecord);
    expect(err.message).toContain(seg);
    expect(err.message).toContain(`byte offset ${at}`);
    expect(bytesEqual(new Uint8Array(await readFile(seg)), img)).toBe(true); // refusal changed nothing
    expect((await readdir(join(d, "wal"))).length).toBe(1);

    const a = await openTestStore(d, { repair: true });
    expect(a.set.prefixLength()).toBe(49);
    expect(a.store.recovery.repaired).toBe(true);
    expect(a.logs.some((l) => l.startsWith("error: repair:") && l.includes(`byte offset ${at}`))).toBe(true);
    expect(bytesEqual(new Uint8Array(await readFile(`${seg}.broken`)), img)).toBe(true);
    await appendRecords(a.store, 1);
    await a.store.close();
    const b = await openTestStore(d);
    expect(b.set.prefixLength()).toBe(50);
    await b.store.close();
  });

  test("damage at the end of a segment that is not the last one refuses", async () => {
    const d = await copyOf(walOnly);
    const segs = (await readdir(join(d, "wal"))).sort();
    const seg = join(d, "wal", segs[1] as string);
    const img = new Uint8Array(await readFile(seg));
    await writeFile(seg, img.subarray(0, img.byteLength - 3));
    const err = await refusal(recoverSet(d));
    expect(err.code).toBe(RecoveryErrorCode.CorruptRecord);
    expect(err.file).toBe(seg);
    const set = await recoverSet(d, true);
    const k = set.prefixLength();
    expect(typeof k === "number" && k > 0 && k < 300).toBe(true);
    expect((await readdir(join(d, "wal"))).filter((n) => n.endsWith(".broken")).length).toBe(segs.length - 1);
  });

  test("a missing middle segment refuses as a gap", async () => {
    const d = await copyOf(walOnly);
    const segs = (await readdir(join(d, "wal"))).sort();
    await unlink(join(d, "wal", segs[2] as string));
    const err = await refusal(recoverSet(d));
    expect(err.code).toBe(RecoveryErrorCode.WalGap);
    expect(err.file).toBe(join(d, "wal", segs[3] as string));
  });

  test("a WAL that starts after LSN 1 with no snapshot refuses; repair replays what exists", async () => {
    const d = await copyOf(walOnly);
    const segs = (await readdir(join(d, "wal"))).sort();
    await unlink(join(d, "wal", segs[0] as string));
    const err = await refusal(recoverSet(d));
    expect(err.code).toBe(RecoveryErrorCode.NoSnapshot);
    expect(err.message).toContain(segs[1] as string);
    const set = await recoverSet(d, true);
    expect(set.records.size).toBe(300 - (Number((segs[1] as string).slice(4, 24)) - 1));
    for (const [lsn, body] of set.records) expect(bytesEqual(body, payloadFor(lsn))).toBe(true);
  });

  test("a damaged newest snapshot falls back to the one before", async () => {
    const d = await copyOf(rich);
    const snaps = (await readdir(join(d, "snap"))).sort();
    const newest = join(d, "snap", snaps[1] as string);
    const img = new Uint8Array(await readFile(newest));
    img[img.byteLength >> 1] = (img[img.byteLength >> 1] as number) ^ 1;
    await writeFile(newest, img);
    const a = await openTestStore(d);
    expect(a.set.prefixLength()).toBe(richTotal);
    expect(a.store.recovery.snapshot?.file).toBe(join(d, "snap", snaps[0] as string));
    expect(a.logs.some((l) => l.includes(newest) && l.includes("damaged"))).toBe(true);
    await a.store.close();
  });

  test("both snapshots damaged where the WAL no longer reaches LSN 1: refuses", async () => {
    const d = await copyOf(rich);
    for (const s of await readdir(join(d, "snap"))) await truncate(join(d, "snap", s), 100);
    const err = await refusal(recoverSet(d));
    expect(err.code).toBe(RecoveryErrorCode.NoSnapshot);
    expect(err.message).toContain("no good snapshot");
  });

  test("foreign files, bad magic, unknown versions and devices are refused clearly", async () => {
    const d1 = await copyOf(single);
    await writeFile(join(d1, "wal", "notes.txt"), "hello");
    expect((await refusal(recoverSet(d1))).code).toBe(RecoveryErrorCode.ForeignFile);

    const d2 = await copyOf(single);
    const seg2 = join(d2, "wal", segmentName(asLsn(1)));
    const img = new Uint8Array(await readFile(seg2));
    img[0] = 0x41;
    await writeFile(seg2, img);
    const e2 = await refusal(recoverSet(d2));
    expect(e2.code).toBe(RecoveryErrorCode.CorruptSegment);
    expect(e2.message).toContain(`${seg2} at byte offset 0`);

    const d3 = await copyOf(single);
    const seg3 = join(d3, "wal", segmentName(asLsn(1)));
    const img3 = new Uint8Array(await readFile(seg3));
    const v = new DataView(img3.buffer);
    v.setUint32(8, 2, true);
    v.setUint32(24, testAccel().checksums.crc32c(img3.subarray(0, 24)), true);
    await writeFile(seg3, img3);
    expect((await refusal(recoverSet(d3, true))).code).toBe(RecoveryErrorCode.UnknownVersion);

    const d4 = await copyOf(single);
    const seg4 = join(d4, "wal", segmentName(asLsn(1)));
    await rename(seg4, join(d4, "wal", segmentName(asLsn(1)) + ".broken"));
    await symlink("/dev/zero", seg4);
    expect((await refusal(recoverSet(d4))).code).toBe(RecoveryErrorCode.ForeignFile);
  });
});

type Damage =
  | { kind: "truncate"; file: number; at: number }
  | { kind: "flip"; file: number; at: number; bit: number }
  | { kind: "zero"; file: number; at: number; len: number }
  | { kind: "delete"; file: number }
  | { kind: "swap"; file: number; other: number };

const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ kind: fc.constant("truncate" as const), file: fc.nat(), at: fc.double({ min: 0, max: 1, noNaN: true }) }).map((d) => ({ ...d, at: d.at })),
  fc.record({ kind: fc.constant("flip" as const), file: fc.nat(), at: fc.double({ min: 0, max: 1, noNaN: true }), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("zero" as const), file: fc.nat(), at: fc.double({ min: 0, max: 1, noNaN: true }), len: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ kind: fc.constant("delete" as const), file: fc.nat() }),
  fc.record({ kind: fc.constant("swap" as const), file: fc.nat(), other: fc.nat() }),
).map((d) => d as Damage);

async function dataFiles(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ["wal", "snap"]) for (const n of (await readdir(join(d, sub))).sort()) out.push(join(d, sub, n));
  return out;
}

async function applyDamage(d: string, dmg: Damage): Promise<void> {
  const files = await dataFiles(d);
  if (files.length === 0) return;
  const path = files[dmg.file % files.length] as string;
  const img = new Uint8Array(await readFile(path));
  const pos = (x: number): number => Math.min(img.byteLength, Math.floor(x * img.byteLength));
  switch (dmg.kind) {
    case "truncate":
      await truncate(path, pos(dmg.at));
      return;
    case "flip": {
      const at = Math.min(pos(dmg.at), img.byteLength - 1);
      if (at < 0) return;
      img[at] = (img[at] as number) ^ (1 << dmg.bit);
      await writeFile(path, img);
      return;
    }
    case "zero":
      img.fill(0, pos(dmg.at), pos(dmg.at) + dmg.len);
      await writeFile(path, img);
      return;
    case "delete":
      await unlink(path);
      return;
    case "swap": {
      const other = files[dmg.other % files.length] as string;
      const otherImg = await readFile(other);
      await writeFile(other, img);
      await writeFile(path, otherImg);
      return;
    }
  }
}

describe("random corruption of a data folder", () => {
  test("each run recovers an exact prefix or refuses with a RecoveryError; repair never throws otherwise", async () => {
    const { seed, numRuns } = propertySettings(1000);
    const bases = [rich, walOnly, single];
    let refused = 0;
    let started = 0;
    await withSeed(seed, () => fc.assert(
      fc.asyncProperty(fc.nat(bases.length - 1), fc.array(damageArb, { minLength: 1, maxLength: 3 }), async (b, damages) => {
        const d = await copyOf(bases[b] as string);
        try {
          for (const dmg of damages) await applyDamage(d, dmg);
          const set = await recoverSet(d).then((s) => s, (e: unknown) => {
            if (!(e instanceof RecoveryError)) throw e;
            return null;
          });
          if (set === null) refused++;
          else {
            started++;
            const k = set.prefixLength();
            if (typeof k === "string") throw new Error(`not a prefix: ${k}`);
          }
          // Repair: either a clear refusal or a start with only correct records, after which
          // the folder opens again with the same records.
          const repaired = await openTestStore(d, { repair: true, walSegmentBytes: persistLimits.walSegmentBytesMin }).then((r) => r, (e: unknown) => {
            if (!(e instanceof RecoveryError)) throw e;
            return null;
          });
          if (repaired === null) return;
          for (const [lsn, body] of repaired.set.records) if (!bytesEqual(body, payloadFor(lsn))) throw new Error(`repair recovered wrong bytes for ${lsn}`);
          await repaired.store.close();
          const again = await recoverSet(d).then((s) => s, (e: unknown) => e);
          if (again instanceof RecoveryError) {
            if (again.code !== RecoveryErrorCode.NoSnapshot) throw new Error(`repaired folder refused: ${again.message}`);
          } else if (again instanceof RecordSet) {
            if (again.records.size !== repaired.set.records.size) throw new Error(`reopen after repair: ${again.records.size} records, repair had ${repaired.set.records.size}`);
          } else throw again;
        } finally {
          await removeDir(d);
        }
      }),
      { seed, numRuns },
    ));
    console.log(`random corruption: seed ${seed}, ${numRuns} runs, ${started} started with a prefix, ${refused} refused`);
    expect(started + refused).toBe(numRuns);
  }, 120_000);
});
