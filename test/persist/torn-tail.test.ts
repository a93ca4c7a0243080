// A crash mid-write leaves a torn tail: cut at every byte offset of the last three records
// (with and without zeros after the cut), and damage in every byte of the final record, must
// recover exactly the complete records, set the segment aside, and keep working.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdir, readFile, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { persistLimits } from "../../src/persist/index.ts";
import { segmentName } from "../../src/persist/format.ts";
import { asLsn } from "../../src/persist/lsn.ts";
import { appendRecords, copyDir, openTestStore, payloadFor, removeDir, tempDir } from "./helpers.ts";

const recordsTotal = 20;
let root = "";
let base = "";
let segPath = "";
let image = new Uint8Array(0);
/** recordEnds[i] = byte offset just past record i+1. */
const recordEnds: number[] = [];

beforeAll(async () => {
  root = await tempDir("torn");
  base = join(root, "base");
  const a = await openTestStore(base);
  await appendRecords(a.store, recordsTotal);
  await a.store.close();
  segPath = join("wal", segmentName(asLsn(1)));
  image = new Uint8Array(await readFile(join(base, segPath)));
  let at = 32;
  for (let lsn = 1; lsn <= recordsTotal; lsn++) {
    at += 16 + payloadFor(lsn).byteLength;
    recordEnds.push(at);
  }
  expect(at).toBe(image.byteLength);
});
afterAll(async () => {
  await removeDir(root);
});

function completeAt(cut: number): number {
  return recordEnds.filter((e) => e <= cut).length;
}

let caseNo = 0;
/** Recovers a damaged copy; checks the records, the copy aside, and that appending continues. */
async function checkRecovers(damage: (seg: string) => Promise<void>, expected: number, cutsSomething: boolean): Promise<void> {
  const d = join(root, `case-${caseNo++}`);
  await copyDir(base, d);
  await damage(join(d, segPath));
  const a = await openTestStore(d);
  expect(a.set.prefixLength()).toBe(expected);
  const broken = (await readdir(join(d, "wal"))).filter((n) => n.includes(".broken"));
  expect(broken.length).toBe(cutsSomething ? 1 : 0);
  if (cutsSomething) expect(a.logs.some((l) => l.startsWith("warn: torn tail"))).toBe(true);
  await appendRecords(a.store, 1);
  await a.store.close();
  const b = await openTestStore(d);
  expect(b.set.prefixLength()).toBe(expected + 1);
  await b.store.close();
  await removeDir(d);
}

describe("torn tail", () => {
  test("cut at every byte offset of the last three records", async () => {
    const from = recordEnds[recordsTotal - 4] as number;
    for (let cut = from; cut <= image.byteLength; cut++) {
      const boundary = recordEnds.includes(cut);
      await checkRecovers((p) => truncate(p, cut), completeAt(cut), !boundary);
    }
  }, 60_000);

  test("cut, then zeros to the old length (a preallocated or half-flushed tail)", async () => {
    const from = recordEnds[recordsTotal - 4] as number;
    for (let cut = from; cut < image.byteLength; cut++) {
      const damaged = image.slice();
      damaged.fill(0, cut);
      await checkRecovers((p) => writeFile(p, damaged), completeAt(cut), true);
    }
  }, 60_000);

  test("any byte of the final record damaged: that record is cut, the rest kept", async () => {
    const from = recordEnds[recordsTotal - 2] as number;
    for (let at = from; at < image.byteLength; at++) {
      const damaged = image.slice();
      damaged[at] = (damaged[at] as number) ^ 0x5a;
      await checkRecovers((p) => writeFile(p, damaged), recordsTotal - 1, true);
    }
  }, 60_000);

  test("a last segment with a torn header is set aside", async () => {
    const d = join(root, "torn-header");
    const a = await openTestStore(d, { walSegmentBytes: persistLimits.walSegmentBytesMin });
    await appendRecords(a.store, 300);
    await a.store.close();
    const segs = (await readdir(join(d, "wal"))).sort();
    expect(segs.length).toBeGreaterThan(1);
    const last = segs[segs.length - 1] as string;
    const firstOfLast = Number(last.slice(4, 24));
    await truncate(join(d, "wal", last), 0);
    await writeFile(join(d, "wal", last), new Uint8Array(11));
    const b = await openTestStore(d, { walSegmentBytes: persistLimits.walSegmentBytesMin });
    expect(b.set.prefixLength()).toBe(firstOfLast - 1);
    expect((await readdir(join(d, "wal"))).some((n) => n === `${last}.broken`)).toBe(true);
    await b.store.close();
  });
});
