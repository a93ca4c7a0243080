// Fuzzy, incremental snapshots: entries stream from the caller's iterator into checksummed
// chunks of a temp file while writes continue; the file only takes its real name after it,
// and the WAL up to everything it may contain, are on disk.

import { open, rename, unlink, readFile, stat } from "node:fs/promises";
import type { Checksums } from "../accel/api.ts";
import {
  decodeFileHeader, encodeFileHeader, fileHeaderBytes, footerMagic, getU64, payloadChecksums, PayloadRanges,
  recordHeaderBytes, setU64, snapshotFooterBytes, snapshotMagic, snapshotName,
} from "./format.ts";
import { PersistError, PersistErrorCode } from "./errors.ts";
import { fsyncDir } from "./fsutil.ts";
import {
  snapshotChunkBytesMax, snapshotChunkBytesTarget, snapshotFileBytesMax, snapshotKeyBytesMax, snapshotValueBytesMax,
} from "./limits.ts";
import type { Lsn } from "./lsn.ts";

export type SnapshotEntry = readonly [key: string, state: Uint8Array];
export type SnapshotSource = Iterable<SnapshotEntry> | AsyncIterable<SnapshotEntry>;

export interface SnapshotWritten {
  file: string;
  startLsn: Lsn;
  entries: number;
  bytes: number;
}

const entryHeaderBytes = 8;
const encoder = new TextEncoder();

/** Accumulates entries into one chunk body: u32 count | (u32 key bytes | u32 value bytes | key | value)*. */
class ChunkBuilder {
  private buf = new Uint8Array(snapshotChunkBytesTarget + recordHeaderBytes + 4);
  private view = new DataView(this.buf.buffer);
  private at = recordHeaderBytes + 4;
  count = 0;

  get bytes(): number {
    return this.at;
  }

  add(key: string, value: Uint8Array): void {
    const keyBytes = encoder.encode(key);
    if (keyBytes.byteLength > snapshotKeyBytesMax) {
      throw new PersistError(PersistErrorCode.BadInput, `snapshot key of ${keyBytes.byteLength} bytes exceeds snapshotKeyBytesMax=${snapshotKeyBytesMax}`);
    }
    if (value.byteLength > snapshotValueBytesMax) {
      throw new PersistError(PersistErrorCode.BadInput, `snapshot value of ${value.byteLength} bytes exceeds snapshotValueBytesMax=${snapshotValueBytesMax}`);
    }
    const need = this.at + entryHeaderBytes + keyBytes.byteLength + value.byteLength;
    if (need > this.buf.byteLength) this.grow(need);
    this.view.setUint32(this.at, keyBytes.byteLength, true);
    this.view.setUint32(this.at + 4, value.byteLength, true);
    this.buf.set(keyBytes, this.at + entryHeaderBytes);
    this.buf.set(value, this.at + entryHeaderBytes + keyBytes.byteLength);
    this.at = need;
    this.count++;
  }

  /** The framed chunk (u32 length | u32 crc | body); the builder starts over. */
  take(sums: Checksums): Uint8Array {
    const out = this.buf.slice(0, this.at);
    const view = new DataView(out.buffer);
    view.setUint32(recordHeaderBytes, this.count, true);
    view.setUint32(0, this.at - recordHeaderBytes, true);
    view.setUint32(4, sums.crc32c(out.subarray(recordHeaderBytes)), true);
    this.at = recordHeaderBytes + 4;
    this.count = 0;
    return out;
  }

  private grow(need: number): void {
    const next = new Uint8Array(Math.max(need, this.buf.byteLength * 2));
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}

export interface WriteSnapshotOptions {
  dir: string;
  startLsn: Lsn;
  source: SnapshotSource;
  sums: Checksums;
  /** Runs after the temp file is fsynced, before the rename: makes the WAL durable. */
  beforePublish: () => Promise<void>;
}

export async function writeSnapshot(o: WriteSnapshotOptions): Promise<SnapshotWritten> {
  const file = `${o.dir}/${snapshotName(o.startLsn)}`;
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, "w", 0o644);
  let entries = 0;
  let chunks = 0;
  let bytes = 0;
  try {
    const write = async (b: Uint8Array): Promise<void> => {
      let off = 0;
      while (off < b.byteLength) off += (await fh.write(b, off, b.byteLength - off)).bytesWritten;
      bytes += b.byteLength;
    };
    await write(encodeFileHeader(snapshotMagic, o.startLsn, o.sums));
    const chunk = new ChunkBuilder();
    /** Adds an entry; returns a full chunk to write, or null. */
    const add = (key: string, value: Uint8Array): Uint8Array | null => {
      chunk.add(key, value);
      entries++;
      if (chunk.bytes < snapshotChunkBytesTarget) return null;
      chunks++;
      return chunk.take(o.sums);
    };
    // A plain iterable is walked without a microtask per entry; appends still interleave at
    // every chunk flush.
    if (Symbol.asyncIterator in o.source) {
      for await (const [key, value] of o.source) {
        const full = add(key, value);
        if (full !== null) await write(full);
      }
    } else {
      for (const [key, value] of o.source) {
        const full = add(key, value);
        if (full !== null) await write(full);
      }
    }
    if (chunk.count > 0) {
      await write(chunk.take(o.sums));
      chunks++;
    }
    const footer = new Uint8Array(snapshotFooterBytes);
    const fv = new DataView(footer.buffer);
    footer.set(footerMagic, 0);
    setU64(fv, 8, entries);
    setU64(fv, 16, chunks);
    fv.setUint32(24, o.sums.crc32c(footer.subarray(0, 24)), true);
    await write(footer);
    await fh.datasync();
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  try {
    await o.beforePublish();
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fsyncDir(o.dir);
  return { file, startLsn: o.startLsn, entries, bytes };
}

/** A fully verified snapshot image; entries are decoded from it on demand. */
export interface LoadedSnapshot {
  startLsn: Lsn;
  entries: number;
  buf: Uint8Array;
  /** Chunk bodies: buf[starts[i], ends[i]). */
  starts: Uint32Array;
  ends: Uint32Array;
}

export type SnapshotLoad = { kind: "ok"; snapshot: LoadedSnapshot } | { kind: "bad"; offset: number; reason: string; unknownVersion: boolean };

/** Reads and verifies a whole snapshot file (header, every chunk checksum and entry frame, footer). */
export async function loadSnapshot(path: string, expectLsn: Lsn, sums: Checksums): Promise<SnapshotLoad> {
  const st = await stat(path);
  if (!st.isFile()) return bad(0, "not a regular file");
  const size = st.size;
  if (size > snapshotFileBytesMax) return bad(0, `file of ${size} bytes exceeds snapshotFileBytesMax=${snapshotFileBytesMax}`);
  const buf = new Uint8Array(await readFile(path));
  return verifySnapshot(buf, expectLsn, sums);
}

function bad(offset: number, reason: string, unknownVersion = false): SnapshotLoad {
  return { kind: "bad", offset, reason, unknownVersion };
}

export function verifySnapshot(buf: Uint8Array, expectLsn: Lsn, sums: Checksums): SnapshotLoad {
  const header = decodeFileHeader(buf, snapshotMagic, sums);
  if (header.kind !== "ok") return bad(0, `snapshot header: ${header.kind}`, header.kind === "bad-version");
  if (header.lsn !== expectLsn) return bad(0, `header start LSN ${header.lsn} does not match the file name (${expectLsn})`);
  const size = buf.byteLength;
  if (size < fileHeaderBytes + snapshotFooterBytes) return bad(fileHeaderBytes, "no footer");
  const view = new DataView(buf.buffer, buf.byteOffset, size);
  const footerAt = size - snapshotFooterBytes;
  // Chunks are ~snapshotChunkBytesTarget each, so these rarely grow.
  const framed = new PayloadRanges(64);
  let at = fileHeaderBytes;
  while (at < footerAt) {
    if (footerAt - at < recordHeaderBytes + 4) return bad(at, "short chunk header");
    const len = view.getUint32(at, true);
    if (len < 4 || len > snapshotChunkBytesMax || at + recordHeaderBytes + len > footerAt) return bad(at, `chunk length ${len} out of range`);
    framed.push(at + recordHeaderBytes, at + recordHeaderBytes + len);
    at += recordHeaderBytes + len;
  }
  const { starts, ends, count: n } = framed;
  for (let i = 0; i < footerMagic.byteLength; i++) if (buf[footerAt + i] !== footerMagic[i]) return bad(footerAt, "footer magic missing");
  if (view.getUint32(footerAt + 24, true) !== sums.crc32c(buf.subarray(footerAt, footerAt + 24))) return bad(footerAt, "footer checksum mismatch");
  const crcs = payloadChecksums(sums, buf, starts, ends, n);
  let entries = 0;
  for (let i = 0; i < n; i++) {
    const s = starts[i] as number;
    const e = ends[i] as number;
    if (view.getUint32(s - 4, true) !== crcs[i]) return bad(s - recordHeaderBytes, "chunk checksum mismatch");
    const counted = checkChunkEntries(view, s, e);
    if (counted < 0) return bad(s - recordHeaderBytes, "chunk entries do not frame");
    entries += counted;
  }
  if (getU64(view, footerAt + 8) !== entries || getU64(view, footerAt + 16) !== n) return bad(footerAt, "footer counts disagree with the chunks");
  return { kind: "ok", snapshot: { startLsn: header.lsn, entries, buf, starts: starts.subarray(0, n), ends: ends.subarray(0, n) } };
}

/** Number of entries in a chunk body if they frame exactly, else -1. */
function checkChunkEntries(view: DataView, start: number, end: number): number {
  const count = view.getUint32(start, true);
  let at = start + 4;
  for (let i = 0; i < count; i++) {
    if (end - at < entryHeaderBytes) return -1;
    const k = view.getUint32(at, true);
    const v = view.getUint32(at + 4, true);
    if (k > snapshotKeyBytesMax || v > snapshotValueBytesMax || at + entryHeaderBytes + k + v > end) return -1;
    at += entryHeaderBytes + k + v;
  }
  return at === end ? count : -1;
}

/** ignoreBOM: a key starting with U+FEFF keeps it (the default would drop it and the entry would not load). */
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** Hands every entry of a verified snapshot to `each`; values are views into the image. */
export function forEachEntry(s: LoadedSnapshot, each: (key: string, state: Uint8Array) => void): void {
  const view = new DataView(s.buf.buffer, s.buf.byteOffset, s.buf.byteLength);
  for (let c = 0; c < s.starts.length; c++) {
    const start = s.starts[c] as number;
    const count = view.getUint32(start, true);
    let at = start + 4;
    for (let i = 0; i < count; i++) {
      const k = view.getUint32(at, true);
      const v = view.getUint32(at + 4, true);
      const keyAt = at + entryHeaderBytes;
      each(decoder.decode(s.buf.subarray(keyAt, keyAt + k)), s.buf.subarray(keyAt + k, keyAt + k + v));
      at = keyAt + k + v;
    }
  }
}
