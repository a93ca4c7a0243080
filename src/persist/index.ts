// The persistence layer the node composes: recovery, the WAL and snapshots behind one handle.
//
//   const store = await openStore({ dataDir, durability: { kind: "sync" }, repair: false,
//                                   accel: accel(), log, onFatal, sink });
//   // recovery has run: sink.snapshotEntry(key, state) for each snapshot entry, then
//   // sink.walRecord(lsn, body) for each WAL record from the snapshot's start LSN, in order.
//   const lsn = await store.append([deltaBytes, ...]); // last record's LSN, acked per durability
//   if (scheduler.due(nowMs, store.walBytesSinceSnapshot)) await store.snapshot(engine.entries());
//   await store.close();
//
// Contract with the caller:
// - Apply a delta to the in-memory state and call append() in the same synchronous step
//   (no await between): a snapshot then contains only effects of records already appended,
//   which it makes durable before it is published.
// - Snapshot entries may reflect records after the snapshot's start LSN (it is fuzzy); replay
//   re-applies them, which is harmless because applying a delta twice is a no-op.
// - openStore rejects with RecoveryError (file + byte offset in the message) when the folder
//   is damaged beyond a torn tail; with `repair: true` it truncates at the damage instead.
// - After a write or fsync error, onFatal(err) is called once and every append and snapshot
//   rejects with PersistError FATAL: the node must stop; nothing possibly lost is acknowledged.

import { unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Appender, Checksums } from "../accel/api.ts";
import { PersistError, PersistErrorCode } from "./errors.ts";
import { classifyName, snapshotDirName, walDirName } from "./format.ts";
import { listDir } from "./fsutil.ts";
import { snapshotsKept, walSegmentBytesDefault } from "./limits.ts";
import type { PersistLog } from "./log.ts";
import type { Lsn } from "./lsn.ts";
import { recover, type RecoveryReport, type RecoverySink } from "./recovery.ts";
import { writeSnapshot, type SnapshotSource, type SnapshotWritten } from "./snapshot.ts";
import { checkDurability, Wal, type Durability, type SyncTimer } from "./wal.ts";

export { RecoveryError, RecoveryErrorCode, PersistError, PersistErrorCode } from "./errors.ts";
export type { Durability, SyncTimer } from "./wal.ts";
export type { RecoverySink, RecoveryReport, RecoveryOptions, SegmentInfo } from "./recovery.ts";
/** Recovery on its own (it cuts torn tails and sets damaged files aside, as openStore does). */
export { recover } from "./recovery.ts";
export type { SnapshotEntry, SnapshotSource, SnapshotWritten } from "./snapshot.ts";
export type { PersistLog, PersistLogLevel } from "./log.ts";
export { silentLog } from "./log.ts";
export { SnapshotScheduler, type SnapshotTriggers } from "./scheduler.ts";
export { type Lsn, lsnNone, lsnFirst, asLsn } from "./lsn.ts";
export * as persistLimits from "./limits.ts";

/** The accel parts persistence uses (what `accel()` returns satisfies it). */
export interface PersistAccel {
  checksums: Checksums;
  appender: Appender;
}

export interface StoreOptions {
  dataDir: string;
  durability: Durability;
  /** Truncate at mid-log damage instead of refusing to start. */
  repair: boolean;
  accel: PersistAccel;
  log: PersistLog;
  /** Called once on the first write/fsync error; the node should stop. */
  onFatal: (err: Error) => void;
  sink: RecoverySink;
  /** Default walSegmentBytesDefault (64 MiB). */
  walSegmentBytes?: number;
  /** The `interval` mode's timer; default setInterval. */
  timer?: SyncTimer;
}

export interface Store {
  /** What recovery found and did. */
  readonly recovery: RecoveryReport;
  /** The LSN the next appended record gets. */
  readonly nextLsn: Lsn;
  /** WAL bytes appended since the last snapshot began (or since open). */
  readonly walBytesSinceSnapshot: number;
  /**
   * WAL bytes appended whose write (and sync, in `sync` mode) has not settled: the append queue.
   * The node refuses new writes above its bound (node/write-path.ts walQueueBytesMax).
   */
  readonly walQueuedBytes: number;
  /** Appends one record per body; resolves with the last record's LSN per the durability mode. */
  append(bodies: readonly Uint8Array[]): Promise<Lsn>;
  /** Makes everything appended so far durable. */
  sync(): Promise<void>;
  /**
   * Takes a fuzzy snapshot starting at the current LSN while appends continue, publishes it,
   * keeps the newest `snapshotsKept`, and deletes WAL segments no kept snapshot needs.
   */
  snapshot(source: SnapshotSource): Promise<SnapshotWritten>;
  close(): Promise<void>;
}

export async function openStore(o: StoreOptions): Promise<Store> {
  checkDurability(o.durability);
  const recovery = await recover({ dataDir: o.dataDir, repair: o.repair, sums: o.accel.checksums, log: o.log, sink: o.sink });
  o.log("info", `recovered: next LSN ${recovery.nextLsn}, ${recovery.walRecordsReplayed} WAL records replayed`);
  const wal = await Wal.open({
    walDir: join(o.dataDir, walDirName),
    sums: o.accel.checksums,
    appender: o.accel.appender,
    durability: o.durability,
    segmentBytesMax: o.walSegmentBytes ?? walSegmentBytesDefault,
    nextLsn: recovery.nextLsn,
    segments: recovery.segments,
    appendToLast: recovery.appendToLast,
    log: o.log,
    onFatal: o.onFatal,
    ...(o.timer ? { timer: o.timer } : {}),
  });
  return new StoreImpl(o, wal, recovery);
}

class StoreImpl implements Store {
  private running: Promise<SnapshotWritten> | null = null;
  private bytesAtSnapshot = 0;
  private closed = false;

  constructor(private readonly o: StoreOptions, private readonly wal: Wal, readonly recovery: RecoveryReport) {}

  get nextLsn(): Lsn {
    return this.wal.nextLsn;
  }

  get walBytesSinceSnapshot(): number {
    return this.wal.bytesAppended - this.bytesAtSnapshot;
  }

  get walQueuedBytes(): number {
    return this.wal.queuedBytes;
  }

  append(bodies: readonly Uint8Array[]): Promise<Lsn> {
    if (this.closed) return Promise.reject(new PersistError(PersistErrorCode.Closed, "the store is closed"));
    return this.wal.append(bodies);
  }

  sync(): Promise<void> {
    return this.wal.sync();
  }

  snapshot(source: SnapshotSource): Promise<SnapshotWritten> {
    if (this.closed) return Promise.reject(new PersistError(PersistErrorCode.Closed, "the store is closed"));
    if (this.wal.failure !== null) return Promise.reject(this.wal.failure);
    if (this.running !== null) return Promise.reject(new PersistError(PersistErrorCode.SnapshotInProgress, "a snapshot is already being taken"));
    const run = this.takeSnapshot(source);
    this.running = run;
    const clear = (): void => { if (this.running === run) this.running = null; };
    run.then(clear, clear);
    return run;
  }

  private async takeSnapshot(source: SnapshotSource): Promise<SnapshotWritten> {
    const startLsn = this.wal.nextLsn;
    this.bytesAtSnapshot = this.wal.bytesAppended;
    const snapDir = join(this.o.dataDir, snapshotDirName);
    const written = await writeSnapshot({
      dir: snapDir, startLsn, source, sums: this.o.accel.checksums, beforePublish: () => this.wal.sync(),
    });
    this.o.log("info", `snapshot ${written.file}: ${written.entries} entries, ${written.bytes} bytes, start LSN ${startLsn}`);
    // The snapshot is published; failing to delete old files only costs disk space.
    await this.prune(snapDir).catch((e: unknown) => {
      this.o.log("warn", `could not delete old snapshots or WAL segments: ${e instanceof Error ? e.message : String(e)}`);
    });
    return written;
  }

  /** Keeps the newest snapshots; drops WAL segments wholly below the oldest one kept. */
  private async prune(snapDir: string): Promise<void> {
    const names = (await listDir(snapDir)) ?? [];
    const snaps: { name: string; lsn: number }[] = [];
    for (const name of names) {
      const c = classifyName(name);
      if (c.kind === "snapshot") snaps.push({ name, lsn: c.lsn });
    }
    snaps.sort((a, b) => b.lsn - a.lsn);
    for (const old of snaps.slice(snapshotsKept)) await unlink(join(snapDir, old.name)).catch(() => undefined);
    const oldestKept = snaps[Math.min(snaps.length, snapshotsKept) - 1];
    if (oldestKept === undefined) return;
    const removed = await this.wal.pruneBelow(oldestKept.lsn as Lsn);
    if (removed.length > 0) this.o.log("info", `deleted WAL segments below LSN ${oldestKept.lsn}: ${removed.join(", ")}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A snapshot in progress finishes first (it needs the WAL for its final sync).
    if (this.running !== null) await this.running.catch(() => undefined);
    await this.wal.close();
  }
}
