// The backup file `imdb admin backup` writes and `imdb node --restore` reads: the files a data
// folder needs to recover one node's state (a snapshot and the WAL records after it), in one
// stream with a SHA-256 over everything, so a corrupt or cut copy is refused before it is used.
//
// Layout (format version 1, little-endian):
//   header (32 bytes):  magic "IMDBBAK\n" | u32 version | u32 file count | u64 end LSN | u64 0
//   files, in order:    u32 name bytes | name ("gc-state", "snap/snap-<lsn>.snap" or "wal/wal-<lsn>.log") | u64 size | bytes
//                       (gc-state: the source's tombstone-collection generation when the backup began,
//                       so a restore into a cluster that collected since is told apart from one that did not)
//   trailer (48 bytes): magic "IMDBBKE\n" | u64 bytes before the trailer | SHA-256 of those bytes
//
// A restore writes the files into an empty data folder with no `identity`, so the node starts
// as a new replica (persist/replica.ts): its actor is never one a peer already holds rows of.

import { createHash } from "node:crypto";
import { mkdir, open, readdir, rm, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { Checksums } from "../accel/api.ts";
import { classifyName, snapshotDirName, walDirName } from "./format.ts";
import { gcStateFileName, parseGcState } from "./gc-state.ts";
import { fsyncDir } from "./fsutil.ts";
import { snapshotFileBytesMax, walSegmentFileBytesMax } from "./limits.ts";
import { lockFileName } from "./lock.ts";
import { scanSegment } from "./scan.ts";
import { verifySnapshot } from "./snapshot.ts";

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
export const backupMagic = ascii("IMDBBAK\n");
export const backupTrailerMagic = ascii("IMDBBKE\n");
export const backupFormatVersion = 1;
export const backupHeaderBytes = 32;
export const backupTrailerBytes = 48;
/** Files one backup may hold: a snapshot and the WAL segments after it. */
export const backupFilesMax = 1024;
/** Longest file name inside a backup. */
const backupNameBytesMax = 256;
/** Largest backup a restore reads: a maximal snapshot and a few maximal segments. */
export const backupFileBytesMax = snapshotFileBytesMax + 4 * walSegmentFileBytesMax;
/** Bytes a restore reads per call while checking the checksum and copying. */
const readChunkBytes = 1024 * 1024;

/** Why a backup file cannot be restored; the message names the file and what is wrong. */
export class BackupError extends Error {
  override readonly name = "BackupError";
}

export function encodeBackupHeader(fileCount: number, endLsn: number): Uint8Array {
  const out = new Uint8Array(backupHeaderBytes);
  const v = new DataView(out.buffer);
  out.set(backupMagic, 0);
  v.setUint32(8, backupFormatVersion, true);
  v.setUint32(12, fileCount, true);
  v.setBigUint64(16, BigInt(endLsn), true);
  return out;
}

/** The frame before a file's bytes: its name (relative to the data folder) and size. */
export function encodeFileFrame(name: string, size: number): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const out = new Uint8Array(4 + nameBytes.byteLength + 8);
  const v = new DataView(out.buffer);
  v.setUint32(0, nameBytes.byteLength, true);
  out.set(nameBytes, 4);
  v.setBigUint64(4 + nameBytes.byteLength, BigInt(size), true);
  return out;
}

export function encodeBackupTrailer(bytesBefore: number, sha256: Uint8Array): Uint8Array {
  const out = new Uint8Array(backupTrailerBytes);
  const v = new DataView(out.buffer);
  out.set(backupTrailerMagic, 0);
  v.setBigUint64(8, BigInt(bytesBefore), true);
  out.set(sha256, 16);
  return out;
}

export interface RestoreReport {
  endLsn: number;
  files: string[];
  bytes: number;
}

/** Refuses a data folder that holds anything but the lock file this process took. */
export async function checkEmptyDataDir(dataDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dataDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  const others = names.filter((n) => n !== lockFileName);
  if (others.length > 0) {
    throw new BackupError(`refusing to restore into ${dataDir}: it is not empty (${others.slice(0, 5).join(", ")}${others.length > 5 ? ", ..." : ""}); give an empty or new --data-dir`);
  }
}

/**
 * Checks the whole backup (size, trailer, SHA-256, every frame, the snapshot's and each segment's
 * own checksums), then writes its files into dataDir, which must be empty. On any failure the
 * folder is left as it was.
 */
export async function restoreBackup(path: string, dataDir: string, sums: Checksums): Promise<RestoreReport> {
  await checkEmptyDataDir(dataDir);
  const fh = await open(path, "r").catch((err: NodeJS.ErrnoException) => {
    throw new BackupError(`cannot read backup ${path}: ${err.code ?? err.message}`);
  });
  try {
    const size = (await fh.stat()).size;
    if (size > backupFileBytesMax) throw new BackupError(`${path}: ${size} bytes is more than a backup can be (${backupFileBytesMax})`);
    if (size < backupHeaderBytes + backupTrailerBytes) throw new BackupError(`${path} is not a complete imdb backup: ${size} bytes, shorter than a header and trailer (truncated?)`);
    const header = await readAt(fh, 0, backupHeaderBytes);
    if (!sameBytes(header.subarray(0, 8), backupMagic)) throw new BackupError(`${path} is not an imdb backup (no IMDBBAK header)`);
    const hv = new DataView(header.buffer, header.byteOffset, header.byteLength);
    const version = hv.getUint32(8, true);
    if (version !== backupFormatVersion) throw new BackupError(`${path}: backup format version ${version}; this build reads ${backupFormatVersion}`);
    const trailer = await readAt(fh, size - backupTrailerBytes, backupTrailerBytes);
    const tv = new DataView(trailer.buffer, trailer.byteOffset, trailer.byteLength);
    if (!sameBytes(trailer.subarray(0, 8), backupTrailerMagic) || Number(tv.getBigUint64(8, true)) !== size - backupTrailerBytes) {
      throw new BackupError(`${path} is truncated or damaged: its trailer is missing (the copy ended early?)`);
    }
    const hash = createHash("sha256");
    for (let at = 0; at < size - backupTrailerBytes; at += readChunkBytes) {
      hash.update(await readAt(fh, at, Math.min(readChunkBytes, size - backupTrailerBytes - at)));
    }
    if (!sameBytes(new Uint8Array(hash.digest()), trailer.subarray(16, 48))) throw new BackupError(`${path} is damaged: its SHA-256 does not match the one it was written with`);
    const files = await readFrames(fh, path, hv.getUint32(12, true), size - backupTrailerBytes);
    await checkFiles(fh, path, files, sums);
    await writeFiles(fh, files, dataDir);
    return { endLsn: Number(hv.getBigUint64(16, true)), files: files.map((f) => f.name), bytes: size };
  } finally {
    await fh.close();
  }
}

interface Frame {
  name: string;
  at: number;
  size: number;
}

async function readFrames(fh: FileHandle, path: string, count: number, end: number): Promise<Frame[]> {
  if (count < 1 || count > backupFilesMax) throw new BackupError(`${path}: ${count} files; a backup holds 1..${backupFilesMax}`);
  const frames: Frame[] = [];
  let at = backupHeaderBytes;
  for (let i = 0; i < count; i++) {
    if (end - at < 12) throw new BackupError(`${path}: file ${i + 1} of ${count} is cut short`);
    const len = new DataView((await readAt(fh, at, 4)).buffer).getUint32(0, true);
    if (len < 1 || len > backupNameBytesMax || at + 4 + len + 8 > end) throw new BackupError(`${path}: file ${i + 1} has a bad name length ${len}`);
    const nameAndSize = await readAt(fh, at + 4, len + 8);
    const name = new TextDecoder("utf-8", { fatal: true }).decode(nameAndSize.subarray(0, len));
    const fileSize = Number(new DataView(nameAndSize.buffer).getBigUint64(len, true));
    const dataAt = at + 4 + len + 8;
    if (dataAt + fileSize > end) throw new BackupError(`${path}: file ${name} runs past the end of the backup`);
    frames.push({ name, at: dataAt, size: fileSize });
    at = dataAt + fileSize;
  }
  if (at !== end) throw new BackupError(`${path}: ${end - at} bytes after the last file`);
  return frames;
}

/** Exactly one snapshot and only WAL segments, named as recovery expects, each passing its own checks. */
async function checkFiles(fh: FileHandle, path: string, files: Frame[], sums: Checksums): Promise<void> {
  let snapshots = 0;
  const seen = new Set<string>();
  for (const f of files) {
    const [dir, base, ...more] = f.name.split("/");
    const kind = base === undefined || more.length > 0 ? { kind: "foreign" as const } : classifyName(base);
    if (seen.has(f.name)) throw new BackupError(`${path}: ${f.name} appears twice`);
    seen.add(f.name);
    if (kind.kind === "snapshot" && dir === snapshotDirName) {
      snapshots++;
      if (f.size > snapshotFileBytesMax) throw new BackupError(`${path}: snapshot ${f.name} is too large`);
      const check = verifySnapshot(await readAt(fh, f.at, f.size), kind.lsn, sums);
      if (check.kind !== "ok") throw new BackupError(`${path}: snapshot ${f.name}: ${check.reason} at byte ${check.offset}`);
    } else if (kind.kind === "segment" && dir === walDirName) {
      if (f.size > walSegmentFileBytesMax) throw new BackupError(`${path}: WAL segment ${f.name} is too large`);
      const scan = scanSegment(await readAt(fh, f.at, f.size), sums);
      if (scan.damage !== null || scan.header.kind !== "ok" || scan.header.lsn !== kind.lsn) {
        throw new BackupError(`${path}: WAL segment ${f.name}: ${scan.damage?.reason ?? "header does not match its name"}`);
      }
    } else if (f.name === gcStateFileName) {
      try {
        parseGcState(await readAt(fh, f.at, f.size), `${path}: ${f.name}`);
      } catch (e) {
        throw new BackupError(e instanceof Error ? e.message : String(e));
      }
    } else {
      throw new BackupError(`${path}: unexpected file ${JSON.stringify(f.name)} (a backup holds snap/snap-*.snap, wal/wal-*.log and gc-state)`);
    }
  }
  if (snapshots !== 1) throw new BackupError(`${path}: holds ${snapshots} snapshots; a backup holds exactly one`);
}

/** Writes every file durably; on failure removes what it wrote, so the folder is empty again. */
async function writeFiles(fh: FileHandle, files: Frame[], dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const made = [join(dataDir, snapshotDirName), join(dataDir, walDirName)];
  try {
    for (const d of made) await mkdir(d, { recursive: true });
    for (const f of files) {
      const out = await open(join(dataDir, f.name), "wx", 0o644);
      try {
        for (let at = 0; at < f.size; at += readChunkBytes) {
          const part = await readAt(fh, f.at + at, Math.min(readChunkBytes, f.size - at));
          let off = 0;
          while (off < part.byteLength) off += (await out.write(part, off, part.byteLength - off)).bytesWritten;
        }
        await out.sync();
      } finally {
        await out.close();
      }
    }
    for (const d of made) await fsyncDir(d);
    await fsyncDir(dataDir);
  } catch (err) {
    for (const d of made) await rm(d, { recursive: true, force: true }).catch(() => undefined);
    await rm(join(dataDir, gcStateFileName), { force: true }).catch(() => undefined);
    throw err;
  }
}

async function readAt(fh: FileHandle, at: number, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const { bytesRead } = await fh.read(buf, got, n - got, at + got);
    if (bytesRead === 0) throw new BackupError(`unexpected end of the backup at byte ${at + got}`);
    got += bytesRead;
  }
  return buf;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Is `p` an existing path? (The CLI refuses to overwrite a backup file.) */
export async function pathExists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}
