// Durable append in pure TypeScript: positional writev + fdatasync through node:fs/promises
// (libuv's thread pool keeps the event loop free) with the same group-commit semantics and the
// same zeros written ahead (zeroAheadBytes) as native/append.cc. Unlike the native path it runs
// one fdatasync at a time (the acknowledgements are the same; only the throughput on a slow disk
// differs).

import { constants as fsConstants } from "node:fs";
import { open as fsOpen, type FileHandle } from "node:fs/promises";
import { AccelError, AccelErrorCode, checkAppendRecords } from "./errors.ts";
import {
  iovecsPerWritevMax, roundBytesMax, zeroAheadBytes, type AppendStats, type CountedAppender, type CountedDurableFile,
} from "./append-types.ts";

/** Shared source of the zeros written ahead (never written to). */
let zeros: Uint8Array | null = null;

interface Pending {
  records: readonly Uint8Array[];
  bytes: number;
  sync: boolean;
  resolve: () => void;
  reject: (e: Error) => void;
}

class TsDurableFile implements CountedDurableFile {
  private readonly fh: FileHandle;
  private queue: Pending[] = [];
  private running = false;
  private poison: Error | null = null;
  private closing = false;
  private idleWaiters: Array<() => void> = [];
  private counters: AppendStats = { calls: 0, rounds: 0, writevs: 0, fdatasyncs: 0, writeMs: 0, fdatasyncMs: 0 };
  /** Where the next round writes, and where the zeros written ahead of it end. */
  private end: number;
  private zeroedEnd: number;
  size: number;

  constructor(fh: FileHandle, size: number) {
    this.fh = fh;
    this.size = size;
    this.end = size;
    this.zeroedEnd = size;
  }

  stats(): AppendStats {
    return { ...this.counters };
  }

  append(records: readonly Uint8Array[], sync: boolean): Promise<void> {
    if (this.closing) return Promise.reject(new AccelError(AccelErrorCode.Closed, "append: file is closed"));
    if (this.poison) return Promise.reject(this.poison);
    let bytes: number;
    try {
      bytes = checkAppendRecords(records);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    this.size += bytes;
    return this.enqueue(records, bytes, sync);
  }

  sync(): Promise<void> {
    if (this.closing) return Promise.reject(new AccelError(AccelErrorCode.Closed, "sync: file is closed"));
    if (this.poison) return Promise.reject(this.poison);
    return this.enqueue([], 0, true);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.running) await new Promise<void>((r) => this.idleWaiters.push(r));
    // The zeros ahead are not data: a cleanly closed file ends at its last append. After a
    // failed write the end is unknown, so nothing is cut.
    if (this.poison === null && this.zeroedEnd > this.end) await this.fh.truncate(this.end).catch(() => undefined);
    await this.fh.close();
  }

  private enqueue(records: readonly Uint8Array[], bytes: number, sync: boolean): Promise<void> {
    this.counters.calls++;
    const p = new Promise<void>((resolve, reject) => this.queue.push({ records, bytes, sync, resolve, reject }));
    if (!this.running) void this.drain();
    return p;
  }

  /** Runs rounds until the queue is empty; callers arriving meanwhile join the next round. */
  private async drain(): Promise<void> {
    this.running = true;
    while (this.queue.length > 0) {
      let take = 0;
      let bytes = 0;
      while (take < this.queue.length && (take === 0 || bytes + (this.queue[take] as Pending).bytes <= roundBytesMax)) {
        bytes += (this.queue[take] as Pending).bytes;
        take++;
      }
      const round = this.queue.splice(0, take);
      try {
        if (this.poison) throw this.poison;
        await this.writeRound(round);
        for (const p of round) p.resolve();
      } catch (e) {
        // A failed write or fdatasync may have lost data: poison the file, reject this round
        // and everything queued behind it.
        this.poison ??= e as Error;
        for (const p of round) p.reject(this.poison);
        for (const p of this.queue.splice(0)) p.reject(this.poison);
      }
    }
    this.running = false;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private async writeRound(round: Pending[]): Promise<void> {
    this.counters.rounds++;
    const bufs: Uint8Array[] = [];
    let wantSync = false;
    for (const p of round) {
      wantSync ||= p.sync;
      for (const r of p.records) if (r.byteLength > 0) bufs.push(r);
    }
    const t0 = performance.now();
    for (let i = 0; i < bufs.length; i += iovecsPerWritevMax) {
      await this.writeAll(bufs.slice(i, i + iovecsPerWritevMax));
    }
    await this.zeroAhead();
    const t1 = performance.now();
    this.counters.writeMs += t1 - t0;
    if (wantSync) {
      this.counters.fdatasyncs++;
      await this.fh.datasync();
      this.counters.fdatasyncMs += performance.now() - t1;
    }
  }

  /**
   * Once the data reaches the zeros written before, writes zeroAheadBytes more after it, so the
   * next appends' fdatasync flushes data only. Best effort: on failure (a full disk) appends go
   * on into blocks allocated as they come, as without it.
   */
  private async zeroAhead(): Promise<void> {
    if (this.end <= this.zeroedEnd) return;
    zeros ??= new Uint8Array(zeroAheadBytes);
    let at = this.end;
    const to = this.end + zeroAheadBytes;
    try {
      while (at < to) {
        const { bytesWritten } = await this.fh.write(zeros, 0, to - at, at);
        if (bytesWritten <= 0) break;
        at += bytesWritten;
      }
    } catch {
      // Best effort, see above.
    }
    this.zeroedEnd = at;
  }

  /** Positional writev at `end` until every byte is written (a regular file may accept less than asked). */
  private async writeAll(bufsIn: Uint8Array[]): Promise<void> {
    let bufs = bufsIn;
    let left = 0;
    for (const b of bufs) left += b.byteLength;
    while (left > 0) {
      this.counters.writevs++;
      const { bytesWritten } = await this.fh.writev(bufs, this.end);
      if (bytesWritten <= 0) throw new Error("writev wrote nothing");
      this.end += bytesWritten;
      left -= bytesWritten;
      let skip = bytesWritten;
      const rest: Uint8Array[] = [];
      for (const b of bufs) {
        if (skip >= b.byteLength) { skip -= b.byteLength; continue; }
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
      bufs = rest;
    }
  }
}

export const tsAppender: CountedAppender = {
  async open(path: string): Promise<CountedDurableFile> {
    // Not O_APPEND: rounds write at their own offset, before the zeros written ahead.
    const fh = await fsOpen(path, fsConstants.O_WRONLY | fsConstants.O_CREAT, 0o644);
    try {
      const st = await fh.stat();
      return new TsDurableFile(fh, st.size);
    } catch (e) {
      await fh.close();
      throw e;
    }
  },
};
