// The data folder's replica identity on disk: the `identity` file (node id, epoch, the folder's
// inode, when the epoch began) and the `clean-stop` marker, read at start to decide (with the
// pure rules in replica.ts) whether this run continues the folder's epoch or starts a new one.
//
// Order at start: read both, decide, write a new identity durably if needed, then remove the
// marker durably — all before recovery, so no write of this run is ever acknowledged while a
// marker from the previous run still says "stopped cleanly". The marker is written again only
// at a clean stop, after the WAL's final fsync.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { open, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { fsyncDir } from "./fsutil.ts";
import type { PersistLog } from "./log.ts";
import {
  decideIdentity,
  describeNewEpoch,
  epochFromRandom,
  epochRandomBytes,
  parseEpoch,
  replicaActor,
  type Epoch,
  type FolderFacts,
  type IdentityDecision,
} from "./replica.ts";
import type { Durability } from "./wal.ts";

export const identityFileName = "identity";
export const cleanStopFileName = "clean-stop";
/** An identity file is a few dozen bytes; anything bigger is not ours. */
export const identityFileBytesMax = 4096;
const identityFormatVersion = 1;

export interface ReplicaIdentity {
  readonly nodeId: string;
  readonly epoch: Epoch;
  /** The CRDT actor this run writes as: replicaActor(nodeId, epoch). */
  readonly actor: string;
  /** Wall-clock ms when this epoch began (an earlier run's start when the epoch was kept). */
  readonly epochStartedAtMs: number;
  readonly decision: IdentityDecision;
}

export interface IdentityOptions {
  dataDir: string;
  nodeId: string;
  durability: Durability;
  repair: boolean;
  /** `epochRandomBytes` fresh random bytes (crypto.getRandomValues in the node). */
  random: () => Uint8Array;
  nowMs: number;
  log: PersistLog;
  /** The folder was just filled from a backup: start a new epoch whatever it holds. */
  restored?: boolean;
}

interface StoredIdentity {
  version: number;
  nodeId: string;
  epoch: Epoch;
  folderIno: string;
  epochStartedAtMs: number;
}

/** Reads the folder's identity, decides keep-or-new, makes the result durable, removes the clean-stop marker. */
export async function openIdentity(o: IdentityOptions): Promise<ReplicaIdentity> {
  const folderIno = await inodeOf(o.dataDir);
  const stored = await readIdentity(o.dataDir, o.log);
  const cleanStop = await exists(join(o.dataDir, cleanStopFileName));
  const facts: FolderFacts = {
    stored: stored === null ? null : { nodeId: stored.nodeId, epoch: stored.epoch, folderIno: stored.folderIno },
    folderIno,
    cleanStop,
    repair: o.repair,
    durability: o.durability,
    restored: o.restored === true,
  };
  const decision = decideIdentity(facts, o.nodeId);
  let current: StoredIdentity;
  if (decision.kind === "keep" && stored !== null) {
    current = stored;
  } else {
    current = { version: identityFormatVersion, nodeId: o.nodeId, epoch: epochFromRandom(o.random()), folderIno, epochStartedAtMs: o.nowMs };
    await writeFileDurably(o.dataDir, identityFileName, `${JSON.stringify(current)}\n`);
    if (decision.kind === "new") {
      const was = stored === null ? "" : ` (was epoch ${stored.epoch})`;
      o.log("info", `new replica epoch ${current.epoch}${was}: ${describeNewEpoch(decision.reason)}`);
    }
  }
  if (cleanStop) {
    await unlink(join(o.dataDir, cleanStopFileName));
    await fsyncDir(o.dataDir);
  }
  return {
    nodeId: o.nodeId,
    epoch: current.epoch,
    actor: replicaActor(o.nodeId, current.epoch),
    epochStartedAtMs: current.epochStartedAtMs,
    decision,
  };
}

/**
 * Starts a new epoch while the node runs, durably, and returns its actor: the folder's identity
 * file names the new epoch (same node id and folder) before any write of the new actor can be
 * made, so a restart continues as the new actor, never as the old. Synchronous (a few hundred
 * bytes and two fsyncs): the caller is the engine dropping keys another replica now holds
 * (Engine.evict), which must not write another key as the old actor meanwhile. Rare: once per
 * eviction that drops keys this actor wrote, so after a membership change at most.
 */
export function renewEpochSync(o: { dataDir: string; nodeId: string; random: () => Uint8Array; nowMs: number; log: PersistLog }): string {
  const path = join(o.dataDir, identityFileName);
  const stored = parseIdentity(readFileSync(path, "utf8"));
  if (typeof stored === "string") throw new Error(`${path}: ${stored}; cannot start a new replica epoch`);
  if (stored.nodeId !== o.nodeId) throw new Error(`${path} names node ${stored.nodeId}, not ${o.nodeId}`);
  const next: StoredIdentity = { ...stored, epoch: epochFromRandom(o.random()), epochStartedAtMs: o.nowMs };
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", 0o644);
  try {
    writeSync(fd, `${JSON.stringify(next)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(o.dataDir, "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
  o.log("info", `new replica epoch ${next.epoch} (was epoch ${stored.epoch}): this replica dropped keys it wrote and no longer owns, and writes as a new actor from now on`);
  return replicaActor(o.nodeId, next.epoch);
}

/** Records a clean stop: call only after the WAL's final fsync, when nothing more will be written. */
export async function markCleanStop(dataDir: string): Promise<void> {
  await writeFileDurably(dataDir, cleanStopFileName, "stopped cleanly\n");
}

/** Fresh epoch bytes from the OS's cryptographic generator. */
export function cryptoEpochBytes(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(epochRandomBytes));
}

async function inodeOf(dir: string): Promise<string> {
  return (await stat(dir, { bigint: true })).ino.toString();
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

/** The stored identity, or null when there is none; an unreadable one is logged and treated as none (a new epoch is always safe). */
async function readIdentity(dataDir: string, log: PersistLog): Promise<StoredIdentity | null> {
  const path = join(dataDir, identityFileName);
  let text: string;
  try {
    const st = await stat(path);
    if (!st.isFile() || st.size > identityFileBytesMax) {
      log("warn", `${path} is not an identity file this build writes; starting a new replica epoch`);
      return null;
    }
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
  const parsed = parseIdentity(text);
  if (typeof parsed === "string") {
    log("warn", `${path}: ${parsed}; starting a new replica epoch`);
    return null;
  }
  return parsed;
}

/** Parses an identity file's text; a string is the reason it was refused. */
export function parseIdentity(text: string): StoredIdentity | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return "not JSON";
  }
  if (typeof v !== "object" || v === null) return "not an object";
  const r = v as Record<string, unknown>;
  if (r.version !== identityFormatVersion) return `format version ${String(r.version)} (this build reads ${identityFormatVersion})`;
  const epoch = typeof r.epoch === "string" ? parseEpoch(r.epoch) : null;
  if (typeof r.nodeId !== "string" || epoch === null || typeof r.folderIno !== "string" || typeof r.epochStartedAtMs !== "number") {
    return "missing or malformed fields";
  }
  return { version: identityFormatVersion, nodeId: r.nodeId, epoch, folderIno: r.folderIno, epochStartedAtMs: r.epochStartedAtMs };
}

/** temp file, fsync, rename over the name, fsync the folder: the name holds the old or the new text, never a torn one. */
async function writeFileDurably(dir: string, name: string, text: string): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const fh = await open(tmp, "w", 0o644);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await fsyncDir(dir);
}
