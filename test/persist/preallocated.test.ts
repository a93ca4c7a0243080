// The appender writes WAL segments into zeros it laid down ahead of them, so a segment left by a
// crash ends in zeros. Recovery must read those zeros as the end of the log (every record back,
// nothing invented, nothing set aside), and still tell a torn or damaged record from them.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { zeroAheadBytes } from "../../src/accel/append-types.ts";
import { RecoveryError, RecoveryErrorCode, persistLimits } from "../../src/persist/index.ts";
import { encodeFileHeader, encodeRecords, fileHeaderBytes, segmentName, walMagic } from "../../src/persist/format.ts";
import { recover, type RecoverySink } from "../../src/persist/recovery.ts";
import { scanSegment } from "../../src/persist/scan.ts";
import { asLsn, type Lsn } from "../../src/persist/lsn.ts";
import { appendRecords, copyDir, openTestStore, removeDir, tempDir, testAccel } from "./helpers.ts";

const recordsTotal = 20;
let root = "";
/** One segment of records 1..20, closed cleanly (no zeros after it). */
let single = "";
let singleSeg = "";
/** Several 4 KiB segments of records 1..300. */
let multi = "";
let multiTotal = 0;

beforeAll(async () => {
  root = await tempDir("prealloc");
  single = join(root, "single");
  const a = await openTestStore(single);
  await appendRecords(a.store, recordsTotal);
  await a.store.close();
  singleSeg = join("wal", segmentName(asLsn(1)));
  multi = join(root, "multi");
  const m = await openTestStore(multi, { walSegmentBytes: persistLimits.walSegmentBytesMin });
  await appendRecords(m.store, 300);
  multiTotal = m.store.nextLsn - 1;
  await m.store.close();
  expect((await readdir(join(multi, "wal"))).length).toBeGreaterThan(2);
});
afterAll(async () => {
  await removeDir(root);
});

let caseNo = 0;
async function copyOf(base: string): Promise<string> {
  const d = join(root, `case-${caseNo++}`);
  await copyDir(base, d);
  return d;
}

async function withZeros(path: string, zeros: number, keepBytes?: number): Promise<void> {
  const img = new Uint8Array(await readFile(path));
  const kept = img.subarray(0, keepBytes ?? img.byteLength);
  const out = new Uint8Array(kept.byteLength + zeros);
  out.set(kept, 0);
  await writeFile(path, out);
}

async function brokenCopies(d: string): Promise<string[]> {
  return (await readdir(join(d, "wal"))).filter((n) => n.includes(".broken"));
}

/** A sink that keeps what recovery hands it, whatever the bodies are. */
class Collected implements RecoverySink {
  readonly lsns: number[] = [];
  readonly bodies: Uint8Array[] = [];
  snapshotEntry(): void {
    throw new Error("no snapshot expected");
  }
  walRecord(lsn: Lsn, body: Uint8Array): void {
    this.lsns.push(lsn);
    this.bodies.push(body.slice());
  }
}

async function recoverCollected(dataDir: string): Promise<{ got: Collected; logs: string[] }> {
  const got = new Collected();
  const logs: string[] = [];
  await recover({ dataDir, repair: false, sums: testAccel().checksums, log: (level, msg) => logs.push(`${level}: ${msg}`), sink: got });
  return { got, logs };
}

describe("a preallocated (zero) tail", () => {
  test("zeros after the last record end the log: every record back, nothing set aside, appends continue right after it", async () => {
    const d = await copyOf(single);
    const seg = join(d, singleSeg);
    const clean = (await stat(seg)).size;
    await withZeros(seg, zeroAheadBytes);
    const a = await openTestStore(d);
    expect(a.set.prefixLength()).toBe(recordsTotal);
    expect(await brokenCopies(d)).toEqual([]);
    expect(a.logs.filter((l) => l.includes("torn tail"))).toEqual([]);
    await appendRecords(a.store, 1);
    await a.store.close();
    // The appended record sits right after record 20 (the zeros were trimmed, not skipped).
    expect((await stat(seg)).size).toBeGreaterThan(clean);
    const b = await openTestStore(d);
    expect(b.set.prefixLength()).toBe(recordsTotal + 1);
    expect(await brokenCopies(d)).toEqual([]);
    await b.store.close();
  });

  test("a segment preallocated and never written (header, then zeros) holds no record and is appended to", async () => {
    const d = join(root, `case-${caseNo++}`);
    const a = await openTestStore(d);
    await a.store.close();
    const seg = join(d, "wal", segmentName(asLsn(1)));
    expect((await stat(seg)).size).toBe(fileHeaderBytes);
    await withZeros(seg, zeroAheadBytes);
    const b = await openTestStore(d);
    expect(b.set.prefixLength()).toBe(0);
    expect(await brokenCopies(d)).toEqual([]);
    await appendRecords(b.store, 3);
    await b.store.close();
    const c = await openTestStore(d);
    expect(c.set.prefixLength()).toBe(3);
    expect(await readdir(join(d, "wal"))).toEqual([segmentName(asLsn(1))]);
    await c.store.close();
  });

  test("a newest segment preallocated and never written, after full ones: every record back, appended to in place", async () => {
    const d = await copyOf(multi);
    const segs = (await readdir(join(d, "wal"))).sort();
    const nextName = segmentName(asLsn(multiTotal + 1));
    const img = new Uint8Array(fileHeaderBytes + zeroAheadBytes);
    img.set(encodeFileHeader(walMagic, asLsn(multiTotal + 1), testAccel().checksums), 0);
    await writeFile(join(d, "wal", nextName), img);
    const a = await openTestStore(d, { walSegmentBytes: persistLimits.walSegmentBytesMin });
    expect(a.set.prefixLength()).toBe(multiTotal);
    expect(await brokenCopies(d)).toEqual([]);
    await appendRecords(a.store, 1);
    await a.store.close();
    expect((await readdir(join(d, "wal"))).sort()).toEqual([...segs, nextName].sort());
    const b = await openTestStore(d, { walSegmentBytes: persistLimits.walSegmentBytesMin });
    expect(b.set.prefixLength()).toBe(multiTotal + 1);
    await b.store.close();
  });

  test("an older segment ending in zeros is complete when the next one continues its LSNs", async () => {
    const d = await copyOf(multi);
    const segs = (await readdir(join(d, "wal"))).sort();
    await withZeros(join(d, "wal", segs[1] as string), zeroAheadBytes);
    const a = await openTestStore(d, { walSegmentBytes: persistLimits.walSegmentBytesMin });
    expect(a.set.prefixLength()).toBe(multiTotal);
    expect(await brokenCopies(d)).toEqual([]);
    await a.store.close();
  });

  test("an older segment cut at a record boundary, then zeros, still refuses as a gap", async () => {
    const d = await copyOf(multi);
    const segs = (await readdir(join(d, "wal"))).sort();
    const seg = join(d, "wal", segs[1] as string);
    // Cut the last record of the segment off: the next segment then starts one LSN too late.
    const s = scanSegment(new Uint8Array(await readFile(seg)), testAccel().checksums);
    const lastStart = (s.starts[s.count - 1] as number) - 8;
    await withZeros(seg, zeroAheadBytes, lastStart);
    const err = await recoverCollected(d).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(RecoveryError);
    expect((err as RecoveryError).code).toBe(RecoveryErrorCode.WalGap);
  });
});

describe("the writer", () => {
  test("only the open segment ends in zeros: rolled-over segments are cut to their records, and so is the last at close", async () => {
    const d = join(root, `case-${caseNo++}`);
    const a = await openTestStore(d, { walSegmentBytes: persistLimits.walSegmentBytesMin });
    await appendRecords(a.store, 300);
    const tails = async (): Promise<Array<{ zeroTail: boolean; exact: boolean }>> => {
      const out: Array<{ zeroTail: boolean; exact: boolean }> = [];
      for (const name of (await readdir(join(d, "wal"))).sort()) {
        const img = new Uint8Array(await readFile(join(d, "wal", name)));
        const s = scanSegment(img, testAccel().checksums);
        expect(s.damage).toBeNull();
        out.push({ zeroTail: s.zeroTail, exact: s.goodEnd === img.byteLength });
      }
      return out;
    };
    const open = await tails();
    expect(open.length).toBeGreaterThan(2);
    expect(open.slice(0, -1).every((t) => t.exact)).toBe(true);
    expect(open[open.length - 1]).toEqual({ zeroTail: true, exact: false });
    await a.store.close();
    expect((await tails()).every((t) => t.exact)).toBe(true);
  });
});

describe("damage next to zeros is still damage", () => {
  test("a torn record followed by a preallocated tail of zeros is a torn tail: cut after a copy aside", async () => {
    const d = await copyOf(single);
    const seg = join(d, singleSeg);
    const size = (await stat(seg)).size;
    // Keep the last record's header and part of its payload; zeros from there on.
    await withZeros(seg, zeroAheadBytes, size - 3);
    const a = await openTestStore(d);
    expect(a.set.prefixLength()).toBe(recordsTotal - 1);
    expect((await brokenCopies(d)).length).toBe(1);
    expect(a.logs.some((l) => l.startsWith("warn: torn tail"))).toBe(true);
    await appendRecords(a.store, 1);
    await a.store.close();
    const b = await openTestStore(d);
    expect(b.set.prefixLength()).toBe(recordsTotal);
    await b.store.close();
  });

  test("zeros, then a non-zero byte at the very end: not an end of log but a torn tail", async () => {
    const d = await copyOf(single);
    const seg = join(d, singleSeg);
    await withZeros(seg, zeroAheadBytes);
    const img = new Uint8Array(await readFile(seg));
    img[img.byteLength - 1] = 1;
    await writeFile(seg, img);
    const { got, logs } = await recoverCollected(d);
    expect(got.lsns.length).toBe(recordsTotal);
    expect(logs.some((l) => l.startsWith("warn: torn tail"))).toBe(true);
    expect((await brokenCopies(d)).length).toBe(1);
  });

  test("zeros, then a good later record: refuses as damage with a good record after it, as without zeros", async () => {
    const d = await copyOf(single);
    const seg = join(d, singleSeg);
    const img = new Uint8Array(await readFile(seg));
    const later = encodeRecords([new Uint8Array([9, 9, 9, 9])], asLsn(recordsTotal + 2), testAccel().checksums);
    const out = new Uint8Array(img.byteLength + 4096 + later.byteLength);
    out.set(img, 0);
    out.set(later, img.byteLength + 4096);
    await writeFile(seg, out);
    const err = await recoverCollected(d).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(RecoveryError);
    expect((err as RecoveryError).code).toBe(RecoveryErrorCode.CorruptRecord);
    expect((err as RecoveryError).offset).toBe(img.byteLength);
  });
});

describe("a record whose bytes start with zeros", () => {
  // Payload length 256 (u64 LSN + 248 body bytes): the u32 length field is 00 01 00 00 on disk.
  const body = new Uint8Array(248).fill(7);
  const others = [new Uint8Array([1, 2, 3]), new Uint8Array([4, 5, 6])];
  let dir = "";
  let image = new Uint8Array(0);
  /** Offset of the record with the zero-led length (LSN 3). */
  let zeroLed = 0;

  beforeAll(async () => {
    dir = join(root, "zero-led");
    await mkdir(join(dir, "wal"), { recursive: true });
    const sums = testAccel().checksums;
    const head = encodeFileHeader(walMagic, asLsn(1), sums);
    const recs = encodeRecords([...others, body], asLsn(1), sums);
    image = new Uint8Array(head.byteLength + recs.byteLength);
    image.set(head, 0);
    image.set(recs, head.byteLength);
    zeroLed = image.byteLength - (8 + 256);
    expect(image[zeroLed]).toBe(0);
    expect(image[zeroLed + 1]).toBe(1);
  });

  async function recoverImage(img: Uint8Array): Promise<{ got: Collected; logs: string[]; broken: string[] }> {
    const d = join(root, `case-${caseNo++}`);
    await mkdir(join(d, "wal"), { recursive: true });
    await writeFile(join(d, "wal", segmentName(asLsn(1))), img);
    const r = await recoverCollected(d);
    return { ...r, broken: await brokenCopies(d) };
  }

  function padded(keep: number): Uint8Array {
    const out = new Uint8Array(keep + zeroAheadBytes);
    out.set(image.subarray(0, keep), 0);
    return out;
  }

  test("complete, then zeros: recovered with its exact bytes", async () => {
    const r = await recoverImage(padded(image.byteLength));
    expect(r.got.lsns).toEqual([1, 2, 3]);
    expect(r.got.bodies[2]).toEqual(body);
    expect(r.broken).toEqual([]);
  });

  test("only its first (zero) byte written, then zeros: the log ends before it, nothing invented", async () => {
    const r = await recoverImage(padded(zeroLed + 1));
    expect(r.got.lsns).toEqual([1, 2]);
  });

  test("its length written but its payload not: a torn tail, cut after a copy aside", async () => {
    const r = await recoverImage(padded(zeroLed + 8 + 100));
    expect(r.got.lsns).toEqual([1, 2]);
    expect(r.logs.some((l) => l.startsWith("warn: torn tail"))).toBe(true);
    expect(r.broken.length).toBe(1);
  });
});
