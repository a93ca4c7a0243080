// The WAL writer: assigns consecutive LSNs, frames records, group-commits them through the
// accel durable append, rolls segments over, and turns the first write or fsync error into
// a fatal state in which nothing more is acknowledged.
//
// Appends made while an earlier one is still in flight are gathered until the end of the
// current microtask burst and issued as one image (one frame buffer, one checksum call, one
// accel call): they would share the next fdatasync anyway, since the appender commits
// everything queued while a round runs in the next round. Measured with 64 writers each
// appending one record and awaiting it, sync, native append, three alternating pairs on the
// shared 2-core box (load 15): with an engine HSET per record, 7.9-9.6k vs 4.3-9.3k ops/s
// (medians 9.5k vs 7.8k) and 31-37 vs 34-67 us of CPU per op; with an SADD, 9.1-11.6k vs
// 3.2-8.4k; records alone, 16-20k vs 8-12.5k ops/s and 6-9 vs 17 us of CPU per record: the
// per-record frame buffer, checksum call and N-API call were the cost. An append made while
// nothing is in flight is issued at once (the disk is idle: gathering would only delay it),
// which keeps two groups of writers alternating on the disk (~33 records per fdatasync here,
// vs ~23 one by one). Gathering every burst, even with the disk idle, put all 64 writers in
// one group that waits while the CPU works: 0.3-3x the old rate, unstable.
//
// Gathering also stops as soon as the file says its round is done (DurableFile.idle: the native
// worker's count, before the completion reaches JS): the records gathered so far go at once
// instead of at the end of the burst. Gathering only until the burst's end settled into a single
// record issued alone (the disk was idle when its writer ran) followed by the other 60-odd
// writers as one image, each waiting for the other: the CPU idle during the big round's
// fdatasync and the disk idle while the CPU ran the big group (tracing the accel calls of 64
// writers with 8 us of work each: sizes 1, 60, 1, 1, 60, ...). With the check, groups of 25-40
// alternate and overlap; 12 alternating pairs of the bench's durable loop (engine + WAL, sync, 64
// writers, quiet 2-core machine): 10 of 12 faster, paired median +25% set adds, +17% hash sets.

import { unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Appender, Checksums, DurableFile } from "../accel/api.ts";
import { PersistError, PersistErrorCode } from "./errors.ts";
import { encodeFileHeader, encodeRecords, fileHeaderBytes, recordHeaderBytes, recordLsnBytes, segmentName, walMagic } from "./format.ts";
import { fsyncDir } from "./fsutil.ts";
import {
  syncIntervalMsMax, syncIntervalMsMin, walAppendBytesMax, walAppendRecordsMax, walRecordBytesMax,
  walSegmentBytesMax, walSegmentBytesMin,
} from "./limits.ts";
import type { PersistLog } from "./log.ts";
import { asLsn, type Lsn } from "./lsn.ts";
import type { SegmentInfo } from "./recovery.ts";

/**
 * When an append is acknowledged:
 * - sync: after its bytes are on disk (fdatasync; concurrent appends share one);
 * - interval: after write(); a timer fdatasyncs every `ms` (a crash loses at most ~ms of acks);
 * - none: after write(); the OS decides when to flush (a process crash loses nothing, power loss may).
 */
export type Durability = { kind: "sync" } | { kind: "interval"; ms: number } | { kind: "none" };

/** The timer the `interval` mode uses; injectable so tests control it. */
export interface SyncTimer {
  start(everyMs: number, tick: () => void): () => void;
}
export const realSyncTimer: SyncTimer = {
  start(everyMs, tick) {
    const h = setInterval(tick, everyMs);
    return () => clearInterval(h);
  },
};

export interface WalOptions {
  walDir: string;
  sums: Checksums;
  appender: Appender;
  durability: Durability;
  segmentBytesMax: number;
  /** From recovery: the next LSN, the segments on disk, whether to append to the last one. */
  nextLsn: Lsn;
  segments: readonly SegmentInfo[];
  appendToLast: boolean;
  log: PersistLog;
  onFatal: (err: Error) => void;
  timer?: SyncTimer;
}

export function checkDurability(d: Durability): void {
  if (d.kind === "interval" && !(Number.isInteger(d.ms) && d.ms >= syncIntervalMsMin && d.ms <= syncIntervalMsMax)) {
    throw new PersistError(PersistErrorCode.BadInput, `durability interval ${d.ms} ms outside ${syncIntervalMsMin}..${syncIntervalMsMax}`);
  }
}

/** Appends gathered while an earlier one is in flight (see the top): issued as one at the end of the burst. */
interface Gathered {
  bodies: Uint8Array[];
  first: Lsn;
  /** Payload plus framing bytes of the bodies (bounded by walAppendBytesMax). */
  bytes: number;
  /** Settles as the gathered image's append does. */
  done: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class Wal {
  private file!: DurableFile;
  /** Accel appends issued and not settled: when 0 the disk is idle and an append goes out at once. */
  private inFlight = 0;
  private gathered: Gathered | null = null;
  private segmentBytes = 0;
  private next: Lsn;
  private fatal: PersistError | null = null;
  private closed = false;
  /** Set while a rollover runs: operations chain behind it so they reach the new file in order. */
  private rolling: Promise<void> | null = null;
  private dirty = false;
  private stopTimer: (() => void) | null = null;
  private readonly segs: SegmentInfo[];
  /** Payload bytes appended since open (drives the snapshot-by-WAL-size trigger). */
  bytesAppended = 0;
  /** Bytes appended whose write (and sync, in `sync` mode) has not settled yet: the append queue. */
  queuedBytes = 0;

  private constructor(private readonly o: WalOptions) {
    this.next = o.nextLsn;
    this.segs = [...o.segments];
  }

  static async open(o: WalOptions): Promise<Wal> {
    checkDurability(o.durability);
    if (!(Number.isInteger(o.segmentBytesMax) && o.segmentBytesMax >= walSegmentBytesMin && o.segmentBytesMax <= walSegmentBytesMax)) {
      throw new PersistError(PersistErrorCode.BadInput, `segment size ${o.segmentBytesMax} outside ${walSegmentBytesMin}..${walSegmentBytesMax}`);
    }
    const wal = new Wal(o);
    const last = wal.segs[wal.segs.length - 1];
    if (o.appendToLast && last !== undefined) {
      wal.file = await o.appender.open(join(o.walDir, last.name));
    } else {
      await wal.startSegment(wal.next);
    }
    wal.segmentBytes = wal.file.size;
    if (o.durability.kind === "interval") {
      wal.stopTimer = (o.timer ?? realSyncTimer).start(o.durability.ms, () => wal.tick());
    }
    return wal;
  }

  /** The LSN the next appended record gets. */
  get nextLsn(): Lsn {
    return this.next;
  }

  /** Segments on disk, oldest first (the last is being written). */
  get segments(): readonly SegmentInfo[] {
    return this.segs;
  }

  /** The error that stopped the WAL, if any. */
  get failure(): PersistError | null {
    return this.fatal;
  }

  /**
   * Appends one record per body, with consecutive LSNs in call order; resolves with the LSN of
   * the last one once the durability mode says so. Rejects (acknowledging nothing) after any
   * write or fsync error, and for a batch over the limits (then nothing is written).
   */
  append(bodies: readonly Uint8Array[]): Promise<Lsn> {
    const refused = this.refusal(bodies);
    if (refused !== null) return Promise.reject(refused);
    if (bodies.length === 0) return Promise.resolve(asLsn(this.next - 1));
    const first = this.next;
    const last = asLsn(first + bodies.length - 1);
    let bytes = 0;
    for (const b of bodies) bytes += recordHeaderBytes + recordLsnBytes + b.byteLength;
    if (this.segmentBytes >= this.o.segmentBytesMax) {
      // Gathered records belong to the segment being closed: out before the rollover.
      this.flushGathered();
      this.rollOver(first);
    }
    this.next = asLsn(last + 1);
    this.segmentBytes += bytes;
    this.bytesAppended += bytes;
    this.dirty = true;
    this.queuedBytes += bytes;
    const settled = (): Lsn => {
      this.queuedBytes -= bytes;
      if (this.fatal !== null) throw this.fatal;
      return last;
    };
    const failed = (e: unknown): never => {
      this.queuedBytes -= bytes;
      throw e;
    };
    // The disk is free when nothing is in flight or, sooner, when the file says its last round
    // is done (its completion may still be on its way to JS).
    const diskFree = this.rolling === null && (this.inFlight === 0 || this.file.idle());
    if (diskFree && this.gathered === null) return this.issueImage(encodeRecords(bodies, first, this.o.sums)).then(settled, failed);
    let g = this.gathered;
    if (g !== null && g.bytes + bytes > walAppendBytesMax) {
      this.flushGathered();
      g = null;
    }
    if (g === null) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const done = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
      g = { bodies: [], first, bytes: 0, done, resolve, reject };
      this.gathered = g;
      queueMicrotask(() => this.flushGathered());
    }
    for (const b of bodies) g.bodies.push(b);
    g.bytes += bytes;
    const done = g.done.then(settled, failed);
    // The disk went free during this burst: what is gathered goes now rather than at its end.
    if (diskFree) this.flushGathered();
    return done;
  }

  /** Issues the gathered appends as one image (a no-op when none are gathered). */
  private flushGathered(): void {
    const g = this.gathered;
    if (g === null) return;
    this.gathered = null;
    this.issueImage(encodeRecords(g.bodies, g.first, this.o.sums)).then(g.resolve, g.reject);
  }

  /** Appends one framed image (durable per the mode when it resolves), counted in flight until it settles. */
  private issueImage(image: Uint8Array): Promise<void> {
    const sync = this.o.durability.kind === "sync";
    this.inFlight++;
    const done = this.issue((f) => f.append([image], sync));
    // Registered before any caller's reaction, so a writer continuing after this settles sees the disk idle.
    done.then(() => { this.inFlight--; }, () => { this.inFlight--; });
    return done;
  }

  /** Resolves once everything appended so far is on disk, whatever the durability mode. */
  sync(): Promise<void> {
    if (this.fatal !== null) return Promise.reject(this.fatal);
    if (this.closed) return Promise.reject(new PersistError(PersistErrorCode.Closed, "the WAL is closed"));
    this.dirty = false;
    // What was appended before this call is on disk when it resolves: gathered records go first.
    this.flushGathered();
    return this.issue((f) => f.sync());
  }

  /** Deletes segments all of whose records have LSNs below `lsn` (never the one being written). */
  async pruneBelow(lsn: Lsn): Promise<string[]> {
    const removed: string[] = [];
    while (this.segs.length >= 2 && (this.segs[1] as SegmentInfo).firstLsn <= lsn) {
      const seg = this.segs.shift() as SegmentInfo;
      await unlink(join(this.o.walDir, seg.name)).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "ENOENT") throw e;
      });
      removed.push(seg.name);
    }
    if (removed.length > 0) await fsyncDir(this.o.walDir);
    return removed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flushGathered();
    this.closed = true;
    this.stopTimer?.();
    if (this.rolling !== null) await this.rolling.catch(() => undefined);
    await this.file.close().catch(() => undefined);
  }

  private refusal(bodies: readonly Uint8Array[]): PersistError | null {
    if (this.fatal !== null) return this.fatal;
    if (this.closed) return new PersistError(PersistErrorCode.Closed, "the WAL is closed");
    if (bodies.length > walAppendRecordsMax) {
      return new PersistError(PersistErrorCode.BadInput, `${bodies.length} records exceed walAppendRecordsMax=${walAppendRecordsMax}`);
    }
    let bytes = 0;
    for (const b of bodies) {
      if (b.byteLength + recordLsnBytes > walRecordBytesMax) {
        return new PersistError(PersistErrorCode.BadInput, `a record of ${b.byteLength} bytes exceeds walRecordBytesMax=${walRecordBytesMax}`);
      }
      bytes += b.byteLength + recordHeaderBytes + recordLsnBytes;
    }
    if (bytes > walAppendBytesMax) return new PersistError(PersistErrorCode.BadInput, `${bytes} bytes exceed walAppendBytesMax=${walAppendBytesMax}`);
    return null;
  }

  /**
   * Hands `op` the current file now, or, during a rollover, in call order once the new file is
   * ready. Its failure makes the WAL fatal.
   */
  private issue(op: (f: DurableFile) => Promise<void>): Promise<void> {
    let done: Promise<void>;
    if (this.rolling === null) {
      done = op(this.file);
    } else {
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      done = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
      const chained: Promise<void> = this.rolling.then(
        () => {
          if (this.fatal !== null) { reject(this.fatal); return; }
          op(this.file).then(resolve, reject);
        },
        (e: Error) => reject(e),
      );
      this.rolling = chained;
      void chained.then(() => { if (this.rolling === chained) this.rolling = null; });
    }
    return done.catch((e: Error) => {
      throw this.fail(e);
    });
  }

  /** Starts a new segment at the next LSN once the current one is durable and closed. */
  private rollOver(firstLsn: Lsn): void {
    const step = async (): Promise<void> => {
      const old = this.file;
      await old.sync();
      await old.close();
      await this.startSegment(firstLsn);
    };
    const chained = (this.rolling ?? Promise.resolve()).then(step);
    chained.catch((e: Error) => this.fail(e));
    this.rolling = chained;
    this.segmentBytes = fileHeaderBytes;
    void chained.then(
      () => { if (this.rolling === chained) this.rolling = null; },
      () => undefined,
    );
  }

  /** Creates segment `wal-<next LSN>.log`: header written and fsynced, folder fsynced. */
  private async startSegment(firstLsn: Lsn): Promise<void> {
    const seg: SegmentInfo = { name: segmentName(firstLsn), firstLsn };
    const file = await this.o.appender.open(join(this.o.walDir, seg.name));
    try {
      if (file.size !== 0) throw new Error(`WAL segment ${seg.name} already exists with ${file.size} bytes`);
      await file.append([encodeFileHeader(walMagic, seg.firstLsn, this.o.sums)], true);
      await fsyncDir(this.o.walDir);
    } catch (e) {
      await file.close().catch(() => undefined);
      throw e;
    }
    this.file = file;
    this.segs.push(seg);
  }

  private tick(): void {
    if (!this.dirty || this.fatal !== null || this.closed) return;
    this.sync().catch(() => undefined);
  }

  /** Enters the fatal state once (stops the timer, calls onFatal); returns the error to throw. */
  private fail(e: Error): PersistError {
    if (this.fatal === null) {
      this.fatal = new PersistError(PersistErrorCode.Fatal, `WAL write or fsync failed, the store accepts nothing more: ${e.message}`, { cause: e });
      this.stopTimer?.();
      this.o.log("error", this.fatal.message);
      this.o.onFatal(e);
    }
    return this.fatal;
  }
}
