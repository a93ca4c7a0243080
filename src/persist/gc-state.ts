// The data folder's tombstone-collection state (`gc-state`): the collection generation, the
// lives this replica saw depart and the members it exchanged data with (src/cluster/gc.ts).
//
// Written synchronously (temp file, fsync, rename, fsync of the folder) because the cluster
// relies on it before it collects: a generation raised in memory but lost with a crash could
// let a restored copy of a member's data pass for newer than it is. The writes are rare (once
// per batch of collected rounds, once per member joining or departing) and a few hundred bytes.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { GcDurableState } from "../cluster/gc.ts";

export const gcStateFileName = "gc-state";
/** Departed lives and members are bounded (gc.ts); 1 MiB leaves room for thousands of each. */
export const gcStateFileBytesMax = 1024 * 1024;
const gcStateFormatVersion = 1;

/** A gc-state file that cannot be read: the node refuses to start rather than guess. */
export class GcStateError extends Error {
  override readonly name = "GcStateError";
}

/** The folder's state, or the empty state when there is no file (a new folder, or an older build's). */
export function readGcState(dataDir: string): GcDurableState {
  const path = join(dataDir, gcStateFileName);
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { generation: 0, ownGeneration: 0, departed: [], members: [], lives: [] };
    throw e;
  }
  return parseGcState(buf, path);
}

/** Checks and reads a gc-state file's bytes (`where` names it in errors). */
export function parseGcState(buf: Uint8Array, where: string): GcDurableState {
  if (buf.length > gcStateFileBytesMax) throw new GcStateError(`${where}: ${buf.length} bytes, more than ${gcStateFileBytesMax}: not a gc-state file`);
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(buf));
  } catch (e) {
    throw new GcStateError(`${where}: not JSON (${e instanceof Error ? e.message : String(e)}); move it away to start with generation 0`);
  }
  const o = v as Record<string, unknown>;
  const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === "string" && s.length > 0 && s.length <= 512);
  if (typeof v !== "object" || v === null || o.version !== gcStateFormatVersion || !Number.isSafeInteger(o.generation) || (o.generation as number) < 0 || !Number.isSafeInteger(o.ownGeneration) || (o.ownGeneration as number) < 0 || !strings(o.departed) || !strings(o.members) || !strings(o.lives)) {
    throw new GcStateError(`${where}: not a version-${gcStateFormatVersion} gc-state file (generation, ownGeneration, departed, members, lives); move it away to start with generation 0`);
  }
  return { generation: o.generation as number, ownGeneration: o.ownGeneration as number, departed: o.departed, members: o.members, lives: o.lives };
}

/** The file's text for a state. */
export function gcStateText(s: GcDurableState): string {
  return `${JSON.stringify({ version: gcStateFormatVersion, generation: s.generation, ownGeneration: s.ownGeneration, departed: s.departed, members: s.members, lives: s.lives })}\n`;
}

/** Stores the state durably before returning (see the top of this file). */
export function writeGcStateSync(dataDir: string, s: GcDurableState): void {
  const text = gcStateText(s);
  const path = join(dataDir, gcStateFileName);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dataDir, "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
