// Rebuilds what a data folder holds: the newest good snapshot (else the one before), then
// every WAL record from its start LSN in order. A torn tail is cut off after a copy is set
// aside; any other damage refuses with the file and byte offset, unless `repair` is asked.

import { mkdir, open, readFile, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Checksums } from "../accel/api.ts";
import { RecoveryError, RecoveryErrorCode } from "./errors.ts";
import { classifyName, snapshotDirName, walDirName } from "./format.ts";
import { copyAside, fsyncDir, listDir, moveAside } from "./fsutil.ts";
import { walSegmentFileBytesMax } from "./limits.ts";
import type { PersistLog } from "./log.ts";
import { asLsn, lsnFirst, type Lsn } from "./lsn.ts";
import { scanSegment } from "./scan.ts";
import { forEachEntry, loadSnapshot, type LoadedSnapshot, type SnapshotLoad } from "./snapshot.ts";

/** Receives the recovered state: every snapshot entry first, then WAL records in LSN order. */
export interface RecoverySink {
  /** `state` is a view into the loaded snapshot image: copy it if you keep it, or the whole image stays in memory. */
  snapshotEntry(key: string, state: Uint8Array): void;
  /** `body` is the payload as appended, a view into the loaded segment (copy it to keep it). */
  walRecord(lsn: Lsn, body: Uint8Array): void;
}

export interface RecoveryOptions {
  dataDir: string;
  /** Truncate at mid-log damage (moving later segments aside) instead of refusing. */
  repair: boolean;
  sums: Checksums;
  log: PersistLog;
  sink: RecoverySink;
}

export interface SegmentInfo {
  name: string;
  firstLsn: Lsn;
}

export interface RecoveryReport {
  snapshot: { file: string; startLsn: Lsn; entries: number } | null;
  walRecordsReplayed: number;
  /** The LSN the next appended record gets. */
  nextLsn: Lsn;
  /** Segments left in wal/, ordered by first LSN. */
  segments: SegmentInfo[];
  /** The last segment ends exactly at nextLsn - 1, so the writer appends to it. */
  appendToLast: boolean;
  /** Files copied or moved aside as `.broken`. */
  setAside: string[];
  /**
   * Repair dropped damage beyond a torn tail. The node should take a snapshot soon: until one
   * covers the repaired WAL, another restart may need `repair` again.
   */
  repaired: boolean;
}

type Action = { kind: "truncate"; path: string; offset: number } | { kind: "move-aside"; path: string };

/**
 * Runs recovery. On RecoveryError the sink may have received part of the state and must be
 * discarded; the disk is left as it was (except that stale snapshot temp files are removed).
 */
export async function recover(o: RecoveryOptions): Promise<RecoveryReport> {
  const walDir = join(o.dataDir, walDirName);
  const snapDir = join(o.dataDir, snapshotDirName);
  await io(o.dataDir, () => mkdir(walDir, { recursive: true }));
  await io(o.dataDir, () => mkdir(snapDir, { recursive: true }));
  const segs = await listFiles(walDir, "segment");
  const snaps = (await listFiles(snapDir, "snapshot")).reverse();
  const actions: Action[] = [];
  let repaired = false;

  // 1. The newest snapshot that verifies; damaged ones are set aside once recovery succeeds.
  let chosen: { name: string; snapshot: LoadedSnapshot } | null = null;
  const badSnaps: string[] = [];
  for (const s of snaps) {
    const path = join(snapDir, s.name);
    const r: SnapshotLoad = await io(path, () => loadSnapshot(path, s.firstLsn, o.sums));
    if (r.kind === "ok") { chosen = { name: s.name, snapshot: r.snapshot }; break; }
    if (r.unknownVersion) throw new RecoveryError(RecoveryErrorCode.UnknownVersion, path, 0, r.reason);
    o.log("warn", `snapshot ${path} is damaged at byte offset ${r.offset} (${r.reason}); trying an older one`);
    badSnaps.push(path);
    actions.push({ kind: "move-aside", path });
  }
  const startLsn = chosen?.snapshot.startLsn ?? lsnFirst;

  // 2. The WAL must hold every record from startLsn on: find the segment holding startLsn.
  let firstIdx = -1;
  for (let i = 0; i < segs.length; i++) if ((segs[i] as SegmentInfo).firstLsn <= startLsn) firstIdx = i;
  const firstSeg = segs[0];
  if (firstSeg !== undefined && firstIdx < 0) {
    const why = chosen !== null
      ? `snapshot ${chosen.name} starts at LSN ${startLsn} but the WAL begins at LSN ${firstSeg.firstLsn}`
      : badSnaps.length > 0
        ? `no good snapshot (damaged: ${badSnaps.join(", ")}) and the WAL begins at LSN ${firstSeg.firstLsn}`
        : `no snapshot covers LSNs before ${firstSeg.firstLsn}, where the WAL begins`;
    const file = join(walDir, firstSeg.name);
    if (!o.repair) throw new RecoveryError(RecoveryErrorCode.NoSnapshot, file, -1, why);
    repaired = true;
    o.log("error", `repair: ${why}; replaying the WAL that exists (peers refill the rest)`);
    firstIdx = 0;
  }
  if (chosen !== null) {
    o.log("info", `loading snapshot ${chosen.name} (${chosen.snapshot.entries} entries, start LSN ${startLsn})`);
    forEachEntry(chosen.snapshot, (k, v) => o.sink.snapshotEntry(k, v));
  }

  // 3. Replay segments in order, checking each header, its LSN continuity and its records.
  const kept: SegmentInfo[] = segs.slice(0, Math.max(firstIdx, 0));
  let walLast: number | null = null;
  let replayed = 0;
  let lastScanned = false;
  const damaged = (code: RecoveryErrorCode, i: number, path: string, offset: number, detail: string): void => {
    if (!o.repair) throw new RecoveryError(code, path, offset, detail);
    repaired = true;
    o.log("error", `repair: ${path} at byte offset ${offset}: ${detail}; truncating there and setting later segments aside`);
    for (const later of segs.slice(i + 1)) actions.push({ kind: "move-aside", path: join(walDir, later.name) });
  };
  for (let i = Math.max(firstIdx, 0); i < segs.length; i++) {
    const seg = segs[i] as SegmentInfo;
    const path = join(walDir, seg.name);
    const isLast = i === segs.length - 1;
    const buf = await readSegment(path);
    const scan = scanSegment(buf, o.sums);
    if (scan.header.kind !== "ok") {
      if (scan.header.kind === "bad-version") {
        throw new RecoveryError(RecoveryErrorCode.UnknownVersion, path, 8, `format version ${scan.header.version} (this build reads 1)`);
      }
      if (scan.tornHeader && isLast) {
        o.log("warn", `torn tail: ${path} has no complete header (crash while it was created); setting it aside`);
        actions.push({ kind: "move-aside", path });
        break;
      }
      damaged(RecoveryErrorCode.CorruptSegment, i, path, 0, scan.damage?.reason ?? "bad header");
      actions.push({ kind: "move-aside", path });
      break;
    }
    if (scan.header.lsn !== seg.firstLsn) {
      damaged(RecoveryErrorCode.CorruptSegment, i, path, 16, `header says first LSN ${scan.header.lsn}, the name says ${seg.firstLsn}`);
      actions.push({ kind: "move-aside", path });
      break;
    }
    if (walLast !== null && seg.firstLsn !== walLast + 1) {
      damaged(RecoveryErrorCode.WalGap, i, path, 0, `segment begins at LSN ${seg.firstLsn} but the previous one ends at LSN ${walLast}`);
      actions.push({ kind: "move-aside", path });
      break;
    }
    for (let j = 0; j < scan.count; j++) {
      const lsn = seg.firstLsn + j;
      if (lsn < startLsn) continue;
      o.sink.walRecord(lsn as Lsn, buf.subarray((scan.starts[j] as number) + 8, scan.ends[j] as number));
      replayed++;
    }
    kept.push(seg);
    walLast = seg.firstLsn + scan.count - 1;
    lastScanned = true;
    const d = scan.damage;
    if (d === null) continue;
    if (isLast && !d.goodRecordFollows) {
      o.log("warn", `torn tail: ${path} at byte offset ${d.offset} (${d.reason}); cutting it off after a copy aside`);
      actions.push({ kind: "truncate", path, offset: d.offset });
      break;
    }
    const where = d.goodRecordFollows ? "a good record follows it" : "it is not the last segment";
    damaged(RecoveryErrorCode.CorruptRecord, i, path, d.offset, `${d.reason}, and ${where}`);
    actions.push({ kind: "truncate", path, offset: d.offset });
    break;
  }

  // 4. Only now, with nothing left to refuse, change the disk.
  const setAside: string[] = [];
  for (const a of actions) {
    if (a.kind === "move-aside") {
      setAside.push(await io(a.path, () => moveAside(a.path)));
      continue;
    }
    setAside.push(await io(a.path, () => copyAside(a.path)));
    await io(a.path, () => truncateDurably(a.path, a.offset));
  }
  if (actions.length > 0) {
    await io(walDir, () => fsyncDir(walDir));
    await io(snapDir, () => fsyncDir(snapDir));
  }
  const nextLsn = asLsn(walLast === null ? startLsn : Math.max(walLast + 1, startLsn));
  return {
    snapshot: chosen === null ? null : { file: join(snapDir, chosen.name), startLsn, entries: chosen.snapshot.entries },
    walRecordsReplayed: replayed,
    nextLsn,
    segments: kept,
    appendToLast: lastScanned && walLast !== null && walLast + 1 === nextLsn,
    setAside,
    repaired,
  };
}

/** Our files in `dir` of one kind, by LSN; stale temp files are removed, foreign ones refused. */
async function listFiles(dir: string, want: "segment" | "snapshot"): Promise<SegmentInfo[]> {
  const names = await io(dir, () => listDir(dir));
  if (names === null) throw new RecoveryError(RecoveryErrorCode.TooLarge, dir, -1, "too many files");
  const out: SegmentInfo[] = [];
  for (const name of names) {
    const c = classifyName(name);
    if (c.kind === "broken") continue;
    if (c.kind === "temp" && want === "snapshot") {
      await io(join(dir, name), () => unlink(join(dir, name)));
      continue;
    }
    if (c.kind !== want) {
      throw new RecoveryError(RecoveryErrorCode.ForeignFile, join(dir, name), -1, `not a file this store writes here; move it away`);
    }
    out.push({ name, firstLsn: c.lsn });
  }
  return out.sort((a, b) => a.firstLsn - b.firstLsn);
}

async function readSegment(path: string): Promise<Uint8Array> {
  const st = await io(path, () => stat(path));
  if (!st.isFile()) throw new RecoveryError(RecoveryErrorCode.ForeignFile, path, -1, "not a regular file");
  const size = st.size;
  if (size > walSegmentFileBytesMax) {
    throw new RecoveryError(RecoveryErrorCode.TooLarge, path, -1, `${size} bytes exceed walSegmentFileBytesMax=${walSegmentFileBytesMax}`);
  }
  return new Uint8Array(await io(path, () => readFile(path)));
}

async function truncateDurably(path: string, offset: number): Promise<void> {
  const fh = await open(path, "r+");
  try {
    await fh.truncate(offset);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Runs a file-system step, turning its failure into a RecoveryError naming the file. */
async function io<T>(file: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (e instanceof RecoveryError) throw e;
    throw new RecoveryError(RecoveryErrorCode.Io, file, -1, e instanceof Error ? e.message : String(e));
  }
}
