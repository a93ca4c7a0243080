// On-disk layout of WAL segments and snapshot files (format version 1), in one place so the
// writer and the recovery reader cannot drift apart. All integers are little-endian.
//
// WAL segment `wal/wal-<first LSN, 20 digits>.log`:
//   header (32 bytes): magic "IMDBWAL\n" | u32 version | u32 header bytes (32) |
//                      u64 first LSN | u32 crc32c(bytes 0..24) | u32 zero
//   records:           u32 length | u32 crc32c(payload) | payload
//   payload:           u64 LSN | body (the caller's opaque bytes, e.g. an encoded delta)
// The LSN lives inside the checksummed payload, so a record cannot be replayed at the wrong
// position; LSNs are consecutive within a segment and across segments.
//
// Snapshot `snap/snap-<start LSN, 20 digits>.snap` (written as `.snap.tmp`, then renamed):
//   header (32 bytes): magic "IMDBSNP\n" | u32 version | u32 32 | u64 start LSN | u32 crc | u32 0
//   chunks:            u32 length | u32 crc32c(body) | body
//   chunk body:        u32 entry count | entries: u32 key bytes | u32 value bytes | key | value
//   footer (32 bytes): magic "IMDBEND\n" | u64 entry count | u64 chunk count | u32 crc | u32 0

import type { Checksums } from "../accel/api.ts";
import { asLsn, type Lsn } from "./lsn.ts";

export const formatVersion = 1;
export const fileHeaderBytes = 32;
export const recordHeaderBytes = 8;
export const recordLsnBytes = 8;
export const snapshotFooterBytes = 32;

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
export const walMagic = ascii("IMDBWAL\n");
export const snapshotMagic = ascii("IMDBSNP\n");
export const footerMagic = ascii("IMDBEND\n");

export const walDirName = "wal";
export const snapshotDirName = "snap";
const lsnDigits = 20;
const walNameRe = /^wal-(\d{20})\.log$/;
const snapNameRe = /^snap-(\d{20})\.snap$/;
const brokenRe = /\.broken(\.\d+)?$/;

export function segmentName(firstLsn: Lsn): string {
  return `wal-${String(firstLsn).padStart(lsnDigits, "0")}.log`;
}
export function snapshotName(startLsn: Lsn): string {
  return `snap-${String(startLsn).padStart(lsnDigits, "0")}.snap`;
}

/** What a file name in wal/ or snap/ is. */
export type NameKind =
  | { kind: "segment"; lsn: Lsn }
  | { kind: "snapshot"; lsn: Lsn }
  | { kind: "temp" }
  | { kind: "broken" }
  | { kind: "foreign" };

export function classifyName(name: string): NameKind {
  if (brokenRe.test(name)) return { kind: "broken" };
  if (name.endsWith(".snap.tmp") && snapNameRe.test(name.slice(0, -4))) return { kind: "temp" };
  const w = walNameRe.exec(name);
  const s = w ? null : snapNameRe.exec(name);
  const digits = (w ?? s)?.[1];
  if (digits === undefined) return { kind: "foreign" };
  const n = Number(digits);
  if (!Number.isSafeInteger(n) || n < 1) return { kind: "foreign" };
  return w ? { kind: "segment", lsn: asLsn(n) } : { kind: "snapshot", lsn: asLsn(n) };
}

export function getU64(view: DataView, offset: number): number {
  const lo = view.getUint32(offset, true);
  const hi = view.getUint32(offset + 4, true);
  return hi * 0x1_0000_0000 + lo;
}
/** Little-endian u32 at offset, as DataView.setUint32(offset, n, true) writes it. */
function putU32(out: Uint8Array, offset: number, n: number): void {
  out[offset] = n & 0xff;
  out[offset + 1] = (n >>> 8) & 0xff;
  out[offset + 2] = (n >>> 16) & 0xff;
  out[offset + 3] = (n >>> 24) & 0xff;
}

export function setU64(view: DataView, offset: number, n: number): void {
  view.setUint32(offset, n % 0x1_0000_0000, true);
  view.setUint32(offset + 4, Math.floor(n / 0x1_0000_0000), true);
}

/** The 32-byte header shared by segments and snapshots (different magic). */
export function encodeFileHeader(magic: Uint8Array, lsn: Lsn, sums: Checksums): Uint8Array {
  const out = new Uint8Array(fileHeaderBytes);
  const view = new DataView(out.buffer);
  out.set(magic, 0);
  view.setUint32(8, formatVersion, true);
  view.setUint32(12, fileHeaderBytes, true);
  setU64(view, 16, lsn);
  view.setUint32(24, sums.crc32c(out.subarray(0, 24)), true);
  return out;
}

export type HeaderCheck =
  | { kind: "ok"; lsn: Lsn }
  | { kind: "short" }
  | { kind: "bad-magic" }
  | { kind: "bad-version"; version: number }
  | { kind: "bad-crc" };

export function decodeFileHeader(buf: Uint8Array, magic: Uint8Array, sums: Checksums): HeaderCheck {
  if (buf.byteLength < fileHeaderBytes) return { kind: "short" };
  for (let i = 0; i < magic.byteLength; i++) if (buf[i] !== magic[i]) return { kind: "bad-magic" };
  const view = new DataView(buf.buffer, buf.byteOffset, fileHeaderBytes);
  if (view.getUint32(24, true) !== sums.crc32c(buf.subarray(0, 24))) return { kind: "bad-crc" };
  const version = view.getUint32(8, true);
  if (version !== formatVersion || view.getUint32(12, true) !== fileHeaderBytes) return { kind: "bad-version", version };
  const lsn = getU64(view, 16);
  if (!Number.isSafeInteger(lsn) || lsn < 1) return { kind: "bad-crc" };
  return { kind: "ok", lsn: asLsn(lsn) };
}

/**
 * Frames payload bodies as consecutive WAL records with LSNs first, first+1, ... into one
 * buffer (one iovec per append call), checksummed in one accel call. The caller has checked
 * every body's size.
 */
export function encodeRecords(bodies: readonly Uint8Array[], first: Lsn, sums: Checksums): Uint8Array {
  const n = bodies.length;
  let total = 0;
  for (const b of bodies) total += recordHeaderBytes + recordLsnBytes + b.byteLength;
  const out = new Uint8Array(total);
  if (n === 1) {
    // The usual append (one request's deltas): no DataView and no range arrays. Reading a
    // typed array's .buffer makes JSC allocate its ArrayBuffer: 8% of a durable HSET's time
    // in the bench's profile, more than the CRC.
    const body = bodies[0] as Uint8Array;
    const payloadBytes = recordLsnBytes + body.byteLength;
    putU32(out, 0, payloadBytes);
    putU32(out, recordHeaderBytes, first % 0x1_0000_0000);
    putU32(out, recordHeaderBytes + 4, Math.floor(first / 0x1_0000_0000));
    out.set(body, recordHeaderBytes + recordLsnBytes);
    putU32(out, recordHeaderBytes - 4, sums.crc32c(out.subarray(recordHeaderBytes)));
    return out;
  }
  const view = new DataView(out.buffer);
  const starts = new Uint32Array(n);
  const ends = new Uint32Array(n);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const body = bodies[i] as Uint8Array;
    const payloadBytes = recordLsnBytes + body.byteLength;
    view.setUint32(at, payloadBytes, true);
    setU64(view, at + recordHeaderBytes, first + i);
    out.set(body, at + recordHeaderBytes + recordLsnBytes);
    starts[i] = at + recordHeaderBytes;
    ends[i] = at + recordHeaderBytes + payloadBytes;
    at += recordHeaderBytes + payloadBytes;
  }
  const crcs = n === 1 ? Uint32Array.of(sums.crc32c(out.subarray(recordHeaderBytes))) : payloadChecksums(sums, out, starts, ends, n);
  for (let i = 0; i < n; i++) view.setUint32((starts[i] as number) - 4, crcs[i] as number, true);
  return out;
}

/** Payload ranges [starts[i], ends[i]) of framed records, in arrays that double as they fill. */
export class PayloadRanges {
  starts: Uint32Array;
  ends: Uint32Array;
  count = 0;

  constructor(initial: number) {
    this.starts = new Uint32Array(Math.max(16, initial));
    this.ends = new Uint32Array(this.starts.length);
  }

  push(start: number, end: number): void {
    const n = this.count;
    if (n === this.starts.length) {
      const s2 = new Uint32Array(n * 2);
      const e2 = new Uint32Array(n * 2);
      s2.set(this.starts);
      e2.set(this.ends);
      this.starts = s2;
      this.ends = e2;
    }
    this.starts[n] = start;
    this.ends[n] = end;
    this.count = n + 1;
  }
}

/**
 * CRC32C of many payloads in one accel call. Payload i is buf[starts[i], ends[i]) with
 * ends[i] <= starts[i+1]; the gaps between payloads (record headers) are checksummed as
 * throw-away ranges because crc32cMany takes contiguous ranges starting at offset 0.
 */
export function payloadChecksums(sums: Checksums, buf: Uint8Array, starts: Uint32Array, ends: Uint32Array, n: number): Uint32Array {
  const offsets = new Uint32Array(2 * n + 1);
  for (let i = 0; i < n; i++) {
    offsets[2 * i + 1] = starts[i] as number;
    offsets[2 * i + 2] = ends[i] as number;
  }
  const all = sums.crc32cMany(buf, offsets);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = all[2 * i + 1] as number;
  return out;
}
