// Rebuilds what a data folder holds: the newest good snapshot (else the one before), then
// every WAL record from its start LSN in order. A torn tail is cut off after a copy is set
// aside; any other damage refuses with the file and byte offset, unless `repair` is asked.

import { mkdir, open, readFile, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Checksums } from "../accel/api.ts";
import { RecoveryError, RecoveryErrorCode } from "./errors.ts";
import { classifyName, recordLsnBytes, snapshotDirName, walDirName } from "./format.ts";
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
  /**
   * The same record as segment[start, end), when the sink takes it that way: recovery then calls
   * this instead of walRecord and builds no view per record (a tenth of replaying 1M records).
   */
  walRecordAt?(lsn: Lsn, segment: Uint8Array, start: number, end: number): void;
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
  const r = new Recovery(o);
  await r.list();
  const chosen = await r.chooseSnapshot();
  const startLsn = chosen?.snapshot.startLsn ?? lsnFirst;
  const firstIdx = r.firstNeededSegment(startLsn, chosen?.name ?? null);
  if (chosen !== null) {
    o.log("info", `loading snapshot ${chosen.name} (${chosen.snapshot.entries} entries, start LSN ${startLsn})`);
    forEachEntry(chosen.snapshot, (k, v) => o.sink.snapshotEntry(k, v));
  }
  r.kept.push(...r.segs.slice(0, firstIdx));
  for (let i = firstIdx; i < r.segs.length; i++) if (!(await r.replaySegment(i, startLsn))) break;
  const setAside = await r.applyActions();
  const walLast = r.walLast;
  const nextLsn = asLsn(walLast === null ? startLsn : Math.max(walLast + 1, startLsn));
  return {
    snapshot: chosen === null ? null : { file: join(r.snapDir, chosen.name), startLsn, entries: chosen.snapshot.entries },
    walRecordsReplayed: r.replayed,
    nextLsn,
    segments: r.kept,
    appendToLast: r.lastScanned && walLast !== null && walLast + 1 === nextLsn,
    setAside,
    repaired: r.repaired,
  };
}

/** The state of one recovery run; the disk changes it decides on wait in `actions` until the end. */
class Recovery {
  readonly walDir: string;
  readonly snapDir: string;
  segs: SegmentInfo[] = [];
  private snaps: SegmentInfo[] = [];
  private readonly actions: Action[] = [];
  private readonly badSnaps: string[] = [];
  readonly kept: SegmentInfo[] = [];
  /** LSN of the last good record of the scanned segments, null before any. */
  walLast: number | null = null;
  /** The last kept segment was scanned (and so ends at walLast). */
  lastScanned = false;
  replayed = 0;
  repaired = false;

  constructor(private readonly o: RecoveryOptions) {
    this.walDir = join(o.dataDir, walDirName);
    this.snapDir = join(o.dataDir, snapshotDirName);
  }

  async list(): Promise<void> {
    await io(this.o.dataDir, () => mkdir(this.walDir, { recursive: true }));
    await io(this.o.dataDir, () => mkdir(this.snapDir, { recursive: true }));
    this.segs = await listFiles(this.walDir, "segment");
    this.snaps = (await listFiles(this.snapDir, "snapshot")).reverse();
  }

  /** The newest snapshot that verifies; damaged ones are set aside once recovery succeeds. */
  async chooseSnapshot(): Promise<{ name: string; snapshot: LoadedSnapshot } | null> {
    for (const s of this.snaps) {
      const path = join(this.snapDir, s.name);
      const r: SnapshotLoad = await io(path, () => loadSnapshot(path, s.firstLsn, this.o.sums));
      if (r.kind === "ok") return { name: s.name, snapshot: r.snapshot };
      if (r.unknownVersion) throw new RecoveryError(RecoveryErrorCode.UnknownVersion, path, 0, r.reason);
      this.o.log("warn", `snapshot ${path} is damaged at byte offset ${r.offset} (${r.reason}); trying an older one`);
      this.badSnaps.push(path);
      this.actions.push({ kind: "move-aside", path });
    }
    return null;
  }

  /** Index of the segment holding startLsn: the WAL must hold every record from there on. */
  firstNeededSegment(startLsn: Lsn, snapshotName: string | null): number {
    let firstIdx = -1;
    for (let i = 0; i < this.segs.length; i++) if ((this.segs[i] as SegmentInfo).firstLsn <= startLsn) firstIdx = i;
    const firstSeg = this.segs[0];
    if (firstSeg === undefined || firstIdx >= 0) return Math.max(firstIdx, 0);
    const why = snapshotName !== null
      ? `snapshot ${snapshotName} starts at LSN ${startLsn} but the WAL begins at LSN ${firstSeg.firstLsn}`
      : this.badSnaps.length > 0
        ? `no good snapshot (damaged: ${this.badSnaps.join(", ")}) and the WAL begins at LSN ${firstSeg.firstLsn}`
        : `no snapshot covers LSNs before ${firstSeg.firstLsn}, where the WAL begins`;
    if (!this.o.repair) throw new RecoveryError(RecoveryErrorCode.NoSnapshot, join(this.walDir, firstSeg.name), -1, why);
    this.repaired = true;
    this.o.log("error", `repair: ${why}; replaying the WAL that exists (peers refill the rest)`);
    return 0;
  }

  /**
   * Checks segment i's header and LSN continuity, hands its good records at or after
   * startLsn to the sink, and deals with damage. Returns false when replay stops here.
   */
  async replaySegment(i: number, startLsn: Lsn): Promise<boolean> {
    const seg = this.segs[i] as SegmentInfo;
    const path = join(this.walDir, seg.name);
    const isLast = i === this.segs.length - 1;
    const buf = await readSegment(path);
    const scan = scanSegment(buf, this.o.sums);
    if (scan.header.kind !== "ok") {
      if (scan.header.kind === "bad-version") {
        throw new RecoveryError(RecoveryErrorCode.UnknownVersion, path, 8, `format version ${scan.header.version} (this build reads 1)`);
      }
      if (scan.tornHeader && isLast) {
        this.o.log("warn", `torn tail: ${path} has no complete header (crash while it was created); setting it aside`);
      } else {
        this.damaged(RecoveryErrorCode.CorruptSegment, i, path, 0, scan.damage?.reason ?? "bad header");
      }
      this.actions.push({ kind: "move-aside", path });
      return false;
    }
    const misplaced = scan.header.lsn !== seg.firstLsn
      ? { code: RecoveryErrorCode.CorruptSegment, offset: 16, detail: `header says first LSN ${scan.header.lsn}, the name says ${seg.firstLsn}` }
      : this.walLast !== null && seg.firstLsn !== this.walLast + 1
        ? { code: RecoveryErrorCode.WalGap, offset: 0, detail: `segment begins at LSN ${seg.firstLsn} but the previous one ends at LSN ${this.walLast}` }
        : null;
    if (misplaced !== null) {
      this.damaged(misplaced.code, i, path, misplaced.offset, misplaced.detail);
      this.actions.push({ kind: "move-aside", path });
      return false;
    }
    for (let j = 0; j < scan.count; j++) {
      const lsn = seg.firstLsn + j;
      if (lsn < startLsn) continue;
      const start = (scan.starts[j] as number) + recordLsnBytes;
      const end = scan.ends[j] as number;
      if (this.o.sink.walRecordAt !== undefined) this.o.sink.walRecordAt(lsn as Lsn, buf, start, end);
      else this.o.sink.walRecord(lsn as Lsn, buf.subarray(start, end));
      this.replayed++;
    }
    this.kept.push(seg);
    this.walLast = seg.firstLsn + scan.count - 1;
    this.lastScanned = true;
    const d = scan.damage;
    if (d === null) return true;
    if (isLast && !d.goodRecordFollows) {
      this.o.log("warn", `torn tail: ${path} at byte offset ${d.offset} (${d.reason}); cutting it off after a copy aside`);
    } else {
      const where = d.goodRecordFollows ? "a good record follows it" : "it is not the last segment";
      this.damaged(RecoveryErrorCode.CorruptRecord, i, path, d.offset, `${d.reason}, and ${where}`);
    }
    this.actions.push({ kind: "truncate", path, offset: d.offset });
    return false;
  }

  /** Damage beyond a torn tail: refuse, or under repair cut here and set later segments aside. */
  private damaged(code: RecoveryErrorCode, i: number, path: string, offset: number, detail: string): void {
    if (!this.o.repair) throw new RecoveryError(code, path, offset, detail);
    this.repaired = true;
    this.o.log("error", `repair: ${path} at byte offset ${offset}: ${detail}; truncating there and setting later segments aside`);
    for (const later of this.segs.slice(i + 1)) this.actions.push({ kind: "move-aside", path: join(this.walDir, later.name) });
  }

  /** Only now, with nothing left to refuse, change the disk. Returns the copies set aside. */
  async applyActions(): Promise<string[]> {
    const setAside: string[] = [];
    for (const a of this.actions) {
      if (a.kind === "move-aside") {
        setAside.push(await io(a.path, () => moveAside(a.path)));
        continue;
      }
      setAside.push(await io(a.path, () => copyAside(a.path)));
      await io(a.path, () => truncateDurably(a.path, a.offset));
    }
    if (this.actions.length > 0) {
      await io(this.walDir, () => fsyncDir(this.walDir));
      await io(this.snapDir, () => fsyncDir(this.snapDir));
    }
    return setAside;
  }
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
