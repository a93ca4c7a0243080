// Durable append in pure TypeScript: writev + fdatasync through node:fs/promises (libuv's
// thread pool keeps the event loop free) with the same group-commit semantics as native/append.cc.

import { open as fsOpen, type FileHandle } from "node:fs/promises";
import { AccelError, AccelErrorCode, checkAppendRecords } from "./errors.ts";
import { iovecsPerWritevMax, roundBytesMax, type AppendStats, type CountedAppender, type CountedDurableFile } from "./append-types.ts";

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
  size: number;

  constructor(fh: FileHandle, size: number) {
    this.fh = fh;
    this.size = size;
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

  idle(): boolean {
    return !this.running && !this.closing;
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
    const t1 = performance.now();
    this.counters.writeMs += t1 - t0;
    if (wantSync) {
      this.counters.fdatasyncs++;
      await this.fh.datasync();
      this.counters.fdatasyncMs += performance.now() - t1;
    }
  }

  /** writev until every byte is written (a regular file may accept less than asked). */
  private async writeAll(bufsIn: Uint8Array[]): Promise<void> {
    let bufs = bufsIn;
    let left = 0;
    for (const b of bufs) left += b.byteLength;
    while (left > 0) {
      this.counters.writevs++;
      const { bytesWritten } = await this.fh.writev(bufs);
      if (bytesWritten <= 0) throw new Error("writev wrote nothing");
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
    const fh = await fsOpen(path, "a", 0o644);
    try {
      const st = await fh.stat();
      return new TsDurableFile(fh, st.size);
    } catch (e) {
      await fh.close();
      throw e;
    }
  },
};
