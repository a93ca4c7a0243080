// AdminService.Backup on a running node: a fresh snapshot plus the WAL records logged while it was
// taken, framed as one backup file (persist/backup.ts) and handed out in pieces, so the operator's
// copy recovers to exactly this node's state at one LSN without stopping it or touching its folder.
import { createHash } from "node:crypto";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Checksums } from "../accel/api.ts";
import { backupFileBytesMax, backupFilesMax, encodeBackupHeader, encodeBackupTrailer, encodeFileFrame } from "../persist/backup.ts";
import { walSegmentBytesDefault } from "../persist/limits.ts";
import { classifyName, encodeFileHeader, recordHeaderBytes, segmentName, snapshotDirName, walDirName, walMagic } from "../persist/format.ts";
import { listDir } from "../persist/fsutil.ts";
import { gcStateFileName, gcStateText } from "../persist/gc-state.ts";
import { asLsn } from "../persist/lsn.ts";
import { scanSegment } from "../persist/scan.ts";
import { OpFailure, type BackupPiece } from "../transport/api.ts";

/** Largest data piece of one Backup message: far below the client's response limit. */
export const backupPieceBytesMax = 1024 * 1024;

export interface BackupSource {
  dataDir: string;
  sums: Checksums;
  /** Takes a snapshot now (waiting for one in progress); its file and start LSN. */
  snapshot(): Promise<{ file: string; startLsn: number }>;
  /** The LSN the next record gets. */
  nextLsn(): number;
  /** Makes every record appended so far durable (written to its segment file). */
  sync(): Promise<void>;
  /**
   * The node's tombstone-collection generation (src/cluster/gc.ts), read before the snapshot
   * starts: the backup's data holds every record this node had confirmed by then, so a restore
   * compares the members' generations with this one, not with 0 (which would discard any
   * backup in a cluster that ever collected a record).
   */
  generation?(): number;
}

/** What the stream ends with: the LSN the backup recovers to, its size and SHA-256. */
export interface BackupSummary {
  endLsn: number;
  bytes: number;
  sha256: Uint8Array;
}

/**
 * The backup file, piece by piece (each at most backupPieceBytesMax). Consistent: the snapshot
 * holds only effects of records below the LSN read after it finished (the engine applies and
 * appends in one synchronous step), and the WAL part holds every record from its start LSN up to
 * that one, so recovery of the file yields this node's state at exactly that LSN.
 */
export async function* backupPieces(src: BackupSource, done: (s: BackupSummary) => void): AsyncGenerator<Uint8Array> {
  const gcState = new TextEncoder().encode(gcStateText({ generation: src.generation?.() ?? 0, ownGeneration: 0, departed: [], members: [], lives: [] }));
  const snap = await src.snapshot();
  // Opened now: a later snapshot may prune the file, and an open handle still reads it.
  const fh = await open(snap.file, "r");
  try {
    const endLsn = src.nextLsn() - 1;
    await src.sync();
    const segments = await walTail(src, snap.startLsn, endLsn);
    const snapName = `${snapshotDirName}/${snap.file.slice(snap.file.lastIndexOf("/") + 1)}`;
    const snapBytes = (await fh.stat()).size;
    const totalBytes = snapBytes + segments.reduce((n, seg) => n + seg.image.byteLength, 0);
    if (totalBytes > backupFileBytesMax || segments.length + 2 > backupFilesMax) {
      throw new OpFailure("FAILED_PRECONDITION", `this backup would be ${totalBytes} bytes in ${segments.length + 1} files, more than a restore reads (${backupFileBytesMax} bytes, ${backupFilesMax} files)`);
    }
    const hash = createHash("sha256");
    let bytes = 0;
    const emit = (b: Uint8Array): Uint8Array => {
      hash.update(b);
      bytes += b.byteLength;
      return b;
    };
    yield emit(encodeBackupHeader(2 + segments.length, endLsn));
    yield emit(encodeFileFrame(gcStateFileName, gcState.byteLength));
    yield emit(gcState);
    yield emit(encodeFileFrame(snapName, snapBytes));
    for (let at = 0; at < snapBytes; at += backupPieceBytesMax) {
      const buf = new Uint8Array(Math.min(backupPieceBytesMax, snapBytes - at));
      let got = 0;
      while (got < buf.byteLength) {
        const { bytesRead } = await fh.read(buf, got, buf.byteLength - got, at + got);
        if (bytesRead === 0) throw new Error(`snapshot ${snap.file} shrank while it was read`);
        got += bytesRead;
      }
      yield emit(buf);
    }
    for (const seg of segments) {
      yield emit(encodeFileFrame(`${walDirName}/${seg.name}`, seg.image.byteLength));
      for (let at = 0; at < seg.image.byteLength; at += backupPieceBytesMax) yield emit(seg.image.subarray(at, at + backupPieceBytesMax));
    }
    const sha256 = new Uint8Array(hash.digest());
    const trailer = encodeBackupTrailer(bytes, sha256);
    yield trailer;
    done({ endLsn, bytes: bytes + trailer.byteLength, sha256 });
  } finally {
    await fh.close();
  }
}

/**
 * The records [fromLsn, toLsn] as WAL segments of their own: the records in that range, copied
 * byte for byte (each carries its LSN and checksum), behind fresh headers naming the first one;
 * consecutive source segments are joined up to walSegmentBytesDefault per output segment.
 */
async function walTail(src: BackupSource, fromLsn: number, toLsn: number): Promise<{ name: string; image: Uint8Array }[]> {
  if (toLsn < fromLsn) return [];
  const walDir = join(src.dataDir, walDirName);
  const firsts: number[] = [];
  for (const name of (await listDir(walDir)) ?? []) {
    const c = classifyName(name);
    if (c.kind === "segment") firsts.push(c.lsn);
  }
  firsts.sort((a, b) => a - b);
  const out: { name: string; image: Uint8Array }[] = [];
  let parts: Uint8Array[] = [];
  let partsFirst = fromLsn;
  let partsBytes = 0;
  const flush = (): void => {
    if (parts.length === 0) return;
    const header = encodeFileHeader(walMagic, asLsn(partsFirst), src.sums);
    const image = new Uint8Array(header.byteLength + partsBytes);
    image.set(header, 0);
    let at = header.byteLength;
    for (const p of parts) {
      image.set(p, at);
      at += p.byteLength;
    }
    out.push({ name: segmentName(asLsn(partsFirst)), image });
    parts = [];
    partsBytes = 0;
  };
  let want = fromLsn;
  for (let i = 0; i < firsts.length && want <= toLsn; i++) {
    const first = firsts[i] as number;
    const nextFirst = firsts[i + 1] ?? Infinity;
    if (nextFirst <= want || first > want) continue;
    const segName = segmentName(asLsn(first));
    let buf: Uint8Array;
    try {
      buf = new Uint8Array(await readFile(join(walDir, segName)));
    } catch (err) {
      throw new OpFailure("UNAVAILABLE", `WAL segment ${segName} went away while the backup read it (${(err as NodeJS.ErrnoException).code ?? String(err)}); try again`);
    }
    const scan = scanSegment(buf, src.sums);
    const from = want - first;
    const to = Math.min(toLsn, first + scan.count - 1) - first;
    if (to < from) break;
    const records = buf.subarray((scan.starts[from] as number) - recordHeaderBytes, scan.ends[to] as number);
    if (partsBytes > 0 && partsBytes + records.byteLength > walSegmentBytesDefault) flush();
    if (parts.length === 0) partsFirst = want;
    parts.push(records);
    partsBytes += records.byteLength;
    want = first + to + 1;
  }
  flush();
  if (want <= toLsn) throw new OpFailure("UNAVAILABLE", `the WAL records ${want}..${toLsn} could not be read for the backup; try again`);
  return out;
}

/** backupPieces as AdminService.Backup messages: the data, then the summary with a SHA-256 of every data byte. */
export async function* backupStream(src: BackupSource): AsyncGenerator<BackupPiece> {
  const hash = createHash("sha256");
  let total = 0;
  let endLsn = 0;
  for await (const b of backupPieces(src, (s) => (endLsn = s.endLsn))) {
    hash.update(b);
    total += b.byteLength;
    yield { kind: "data", bytes: b };
  }
  yield { kind: "end", endLsn: BigInt(endLsn), totalBytes: total, sha256: new Uint8Array(hash.digest()) };
}
