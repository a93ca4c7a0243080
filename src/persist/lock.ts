// One process per data folder: an exclusive flock(2) on `<dataDir>/lock`, held for the life of
// the process, so a second node started on the same folder is refused before it reads or
// writes anything (two writers overwrite each other's snapshots and WAL segments).
//
// flock rather than a pid file: the kernel drops the lock when the process dies however it
// dies (SIGKILL, power loss), so there is no stale lock to clean up and no pid-reuse race.
// Bun has no flock binding; bun:ffi calls libc's directly (this works in the compiled binary
// too). The pid and node id written into the file are only there to name the holder in the
// refusal; the lock itself is what decides.

import { dlopen, FFIType, read, type Pointer } from "bun:ffi";
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";

export const lockFileName = "lock";
/** Bytes of the lock file read to name its holder. */
const holderBytesMax = 256;

const lockExclusive = 2;
const lockNonBlocking = 4;

/** The folder is locked by another process (or another open of it in this one). */
export class FolderInUseError extends Error {
  constructor(readonly dataDir: string, readonly holderPid: number | null, readonly holderNodeId: string | null) {
    const who = holderPid === null ? "another process" : `process ${holderPid}${holderNodeId === null ? "" : ` (imdb node ${holderNodeId})`}`;
    super(`data folder ${dataDir} is in use by ${who}; one node per folder`);
    this.name = "FolderInUseError";
  }
}

export interface FolderLock {
  /** "flock" when held; "none" when this platform offers no flock (see `why`). */
  readonly kind: "flock" | "none";
  readonly why: string;
  /** Releases the lock (closing the file); idempotent. The OS releases it anyway at exit. */
  release(): void;
}

interface Libc {
  flock(fd: number, op: number): number;
  errno(): number;
  wouldBlock: number;
}

let libc: Libc | null | undefined;
let libcProblem = "";

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  // Opened lazily: only the node needs it, and a failure here only costs the lock.
  const darwin = process.platform === "darwin";
  const names = darwin ? ["libSystem.B.dylib", "libc.dylib"] : ["libc.so.6", "libc.so"];
  const errnoSymbol = darwin ? "__error" : "__errno_location";
  const problems: string[] = [];
  for (const name of names) {
    try {
      const lib = dlopen(name, {
        flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
        [errnoSymbol]: { args: [], returns: FFIType.ptr },
      });
      const errnoPtr = lib.symbols[errnoSymbol] as () => Pointer | null;
      libc = {
        flock: (fd, op) => lib.symbols.flock(fd, op) as number,
        errno: () => {
          const p = errnoPtr();
          return p === null ? 0 : read.i32(p, 0);
        },
        wouldBlock: darwin ? 35 : 11,
      };
      return libc;
    } catch (e) {
      problems.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  libcProblem = `cannot load libc for flock (${problems.join("; ")})`;
  return null;
}

/** Who holds the lock, from the file's "PID NODEID" line (best effort). */
function readHolder(path: string): { pid: number | null; nodeId: string | null } {
  try {
    const text = readFileSync(path, "utf8").slice(0, holderBytesMax);
    const m = /^(\d{1,10}) ([A-Za-z0-9._-]{1,64})\n?$/.exec(text);
    return m === null ? { pid: null, nodeId: null } : { pid: Number(m[1]), nodeId: m[2] as string };
  } catch {
    return { pid: null, nodeId: null };
  }
}

/**
 * Takes the folder's lock or throws FolderInUseError naming the holder. `dataDir` must exist.
 * Throws a plain Error when flock itself fails for another reason (the node must not start
 * unguarded on a file system that refuses locks it was asked for).
 */
export function lockDataDir(dataDir: string, nodeId: string): FolderLock {
  const lib = loadLibc();
  if (lib === null) return { kind: "none", why: libcProblem, release: () => undefined };
  const path = join(dataDir, lockFileName);
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  if (lib.flock(fd, lockExclusive | lockNonBlocking) !== 0) {
    const errno = lib.errno();
    closeSync(fd);
    if (errno === lib.wouldBlock) {
      const holder = readHolder(path);
      throw new FolderInUseError(dataDir, holder.pid, holder.nodeId);
    }
    throw new Error(`cannot lock data folder ${dataDir} (${path}): flock failed with errno ${errno}`);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid} ${nodeId}\n`, 0);
  let open = true;
  return {
    kind: "flock",
    why: "",
    release: () => {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}
