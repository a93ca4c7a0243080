// Loads the C++ addon (native/) and wraps its few functions in the api.ts contract; the only
// file that knows the addon's shape. Missing or broken addon => nativeBinding() returns null.

import { constants as osConstants } from "node:os";
import { ClockOrder, type Checksums, type Clocks, type PackedClocks } from "./api.ts";
import { AccelError, AccelErrorCode, checkAppendRecords } from "./errors.ts";
import type { AppendStats, CountedAppender, CountedDurableFile } from "./append-types.ts";

/** Opaque per-file handle owned by the addon. */
type NativeFileHandle = { readonly __nativeFile: unique symbol };

/** Called on the JS thread when the worker finished every request up to lastId. errno 0 = success. */
type DoneCallback = (lastId: number, errno: number, syscall: string, message: string) => void;

interface NativeBinding {
  crcImpl(): string;
  crc32c(data: Uint8Array): number;
  crc32cMany(buf: Uint8Array, offsets: Uint32Array): Uint32Array;
  compare(aActors: Uint32Array, aCounters: Float64Array, bActors: Uint32Array, bCounters: Float64Array): number;
  compareMany(
    aOffsets: Uint32Array, aActors: Uint32Array, aCounters: Float64Array,
    bOffsets: Uint32Array, bActors: Uint32Array, bCounters: Float64Array,
  ): Uint8Array;
  /** Opens for append; returns [handle, size]. Throws an Error carrying errno/syscall. */
  fileOpen(path: string, onDone: DoneCallback): [NativeFileHandle, number];
  fileAppend(h: NativeFileHandle, records: readonly Uint8Array[], sync: boolean, id: number): void;
  fileClose(h: NativeFileHandle, id: number): void;
  fileIdle(h: NativeFileHandle): boolean;
  /** [calls, rounds, writevs, fdatasyncs, writeMs, fdatasyncMs] */
  fileStats(h: NativeFileHandle): Float64Array;
}

let binding: NativeBinding | null = null;
let loadError: string | null = null;
try {
  // A static require path: `bun build --compile` embeds exactly this file (DESIGN.md).
  binding = require("../../build/Release/imdb_accel.node") as NativeBinding;
} catch (e) {
  loadError = e instanceof Error ? e.message.split("\n")[0] ?? String(e) : String(e);
}

export function nativeBinding(): NativeBinding | null {
  return binding;
}

/** Why the addon did not load, or null if it did. */
export function nativeLoadError(): string | null {
  return binding ? null : (loadError ?? "unknown");
}

/** Which CRC32C implementation the addon uses on this CPU: "sse4.2", "armv8" or "table". */
export function nativeCrcImpl(): string | null {
  return binding ? binding.crcImpl() : null;
}

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(osConstants.errno)) errnoNames.set(num, name);

function osError(errno: number, syscall: string, message: string, path?: string): Error {
  const code = errnoNames.get(errno) ?? `E${errno}`;
  const e = new Error(`${code}: ${message.toLowerCase()}, ${syscall}${path === undefined ? "" : ` '${path}'`}`) as Error & { code: string; errno: number; syscall: string };
  e.code = code;
  e.errno = -errno;
  e.syscall = syscall;
  return e;
}

/** Re-throws an addon argument error as the AccelError the TS path would throw. */
function rethrow(e: unknown): never {
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    for (const c of Object.values(AccelErrorCode)) if (c === code) throw new AccelError(c, e.message);
  }
  throw e;
}

export function nativeChecksums(b: NativeBinding): Checksums {
  return {
    crc32c(data: Uint8Array): number {
      return b.crc32c(data);
    },
    crc32cMany(buf: Uint8Array, offsets: Uint32Array): Uint32Array {
      try {
        return b.crc32cMany(buf, offsets);
      } catch (e) {
        rethrow(e);
      }
    },
  };
}

export function nativeClocks(b: NativeBinding): Clocks {
  return {
    compare(aActors, aCounters, bActors, bCounters): ClockOrder {
      try {
        return b.compare(aActors, aCounters, bActors, bCounters) as ClockOrder;
      } catch (e) {
        rethrow(e);
      }
    },
    compareMany(a: PackedClocks, c: PackedClocks): Uint8Array {
      try {
        return b.compareMany(a.offsets, a.actors, a.counters, c.offsets, c.actors, c.counters);
      } catch (e) {
        rethrow(e);
      }
    },
  };
}

interface Waiter {
  id: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

class NativeDurableFile implements CountedDurableFile {
  private readonly b: NativeBinding;
  private h: NativeFileHandle | null = null;
  private nextId = 1;
  /** In id order; the worker completes requests strictly in order. */
  private waiters: Waiter[] = [];
  private head = 0;
  private poison: Error | null = null;
  private closePromise: Promise<void> | null = null;
  size = 0;

  constructor(b: NativeBinding) {
    this.b = b;
  }

  attach(h: NativeFileHandle, size: number): void {
    this.h = h;
    this.size = size;
  }

  /** Worker callback: settles every waiter up to lastId. */
  readonly onDone = (lastId: number, errno: number, syscall: string, message: string): void => {
    if (errno !== 0) this.poison ??= osError(errno, syscall, message);
    const w = this.waiters;
    while (this.head < w.length && (w[this.head] as Waiter).id <= lastId) {
      const x = w[this.head] as Waiter;
      this.head++;
      if (errno !== 0) x.reject(this.poison as Error);
      else x.resolve();
    }
    if (this.head > 1024 && this.head * 2 > w.length) {
      this.waiters = w.slice(this.head);
      this.head = 0;
    }
  };

  stats(): AppendStats {
    if (!this.h) return { calls: 0, rounds: 0, writevs: 0, fdatasyncs: 0, writeMs: 0, fdatasyncMs: 0 };
    const s = this.b.fileStats(this.h);
    return { calls: s[0] ?? 0, rounds: s[1] ?? 0, writevs: s[2] ?? 0, fdatasyncs: s[3] ?? 0, writeMs: s[4] ?? 0, fdatasyncMs: s[5] ?? 0 };
  }

  append(records: readonly Uint8Array[], sync: boolean): Promise<void> {
    if (this.closePromise || !this.h) return Promise.reject(new AccelError(AccelErrorCode.Closed, "append: file is closed"));
    if (this.poison) return Promise.reject(this.poison);
    let bytes: number;
    try {
      bytes = checkAppendRecords(records);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    const id = this.nextId++;
    // The addon copies the records before returning, so callers may reuse their buffers.
    this.b.fileAppend(this.h, records, sync, id);
    this.size += bytes;
    return new Promise<void>((resolve, reject) => this.waiters.push({ id, resolve, reject }));
  }

  idle(): boolean {
    return this.h !== null && this.closePromise === null && this.b.fileIdle(this.h);
  }

  sync(): Promise<void> {
    if (this.closePromise || !this.h) return Promise.reject(new AccelError(AccelErrorCode.Closed, "sync: file is closed"));
    if (this.poison) return Promise.reject(this.poison);
    const id = this.nextId++;
    this.b.fileAppend(this.h, [], true, id);
    return new Promise<void>((resolve, reject) => this.waiters.push({ id, resolve, reject }));
  }

  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    const h = this.h;
    if (!h) return Promise.resolve();
    const id = this.nextId++;
    this.closePromise = new Promise<void>((resolve) => {
      // Close settles after everything before it; a poisoned file still closes its fd.
      this.waiters.push({ id, resolve, reject: () => resolve() });
    });
    this.b.fileClose(h, id);
    return this.closePromise;
  }
}

export function nativeAppender(b: NativeBinding): CountedAppender {
  return {
    async open(path: string): Promise<CountedDurableFile> {
      const f = new NativeDurableFile(b);
      let opened: [NativeFileHandle, number];
      try {
        opened = b.fileOpen(path, f.onDone);
      } catch (e) {
        const x = e as Error & { errno?: unknown; syscall?: unknown };
        if (typeof x.errno === "number") throw osError(x.errno, typeof x.syscall === "string" ? x.syscall : "open", x.message, path);
        throw e;
      }
      f.attach(opened[0], opened[1]);
      return f;
    },
  };
}
