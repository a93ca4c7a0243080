// Reads one WAL segment image and says exactly how much of it is good: the records that
// frame, checksum and number correctly, and, if something is wrong, where and whether any
// good record follows the damage (which separates a torn tail from a damaged middle).

import type { Checksums } from "../accel/api.ts";
import {
  decodeFileHeader, fileHeaderBytes, getU64, payloadChecksums, PayloadRanges, recordHeaderBytes, recordLsnBytes, walMagic,
  type HeaderCheck,
} from "./format.ts";
import { walRecordBytesMax } from "./limits.ts";
import type { Lsn } from "./lsn.ts";

export interface SegmentDamage {
  /** Byte offset in the file where the first bad record (or the header) starts. */
  offset: number;
  reason: string;
  /** A record with a good checksum and a later LSN exists after the damage. */
  goodRecordFollows: boolean;
}

export interface SegmentScan {
  header: HeaderCheck;
  /** The header is missing or all zeros: a segment created just before a crash. */
  tornHeader: boolean;
  /** Good records, in order: payload i is buf[starts[i], ends[i]) and has LSN firstLsn + i. */
  count: number;
  starts: Uint32Array;
  ends: Uint32Array;
  /** Offset just past the last good record (the header size when there is none). */
  goodEnd: number;
  damage: SegmentDamage | null;
}

const minRecordBytes = recordHeaderBytes + recordLsnBytes;
const offsetsInitial = 64 * 1024;

export function scanSegment(buf: Uint8Array, sums: Checksums): SegmentScan {
  const header = decodeFileHeader(buf, walMagic, sums);
  if (header.kind !== "ok") {
    const tornHeader = header.kind === "short" || buf.every((b) => b === 0);
    const reason = tornHeader ? "segment header missing (file shorter than a header or all zeros)" : `segment header: ${header.kind}`;
    return {
      header, tornHeader, count: 0, starts: new Uint32Array(0), ends: new Uint32Array(0), goodEnd: 0,
      damage: { offset: 0, reason, goodRecordFollows: false },
    };
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const size = buf.byteLength;
  // Offsets arrays grow by doubling: sizing them for the worst case (every record minimal)
  // would cost half the segment's size again.
  const framed = new PayloadRanges(Math.min(offsetsInitial, Math.floor((size - fileHeaderBytes) / minRecordBytes)));
  let at = fileHeaderBytes;
  let damage: { offset: number; reason: string } | null = null;
  // Framing pass: every length is bounded before it is used.
  while (at < size) {
    if (size - at < recordHeaderBytes) { damage = { offset: at, reason: "short record header" }; break; }
    const len = view.getUint32(at, true);
    if (len < recordLsnBytes || len > walRecordBytesMax) { damage = { offset: at, reason: `record length ${len} out of range` }; break; }
    if (at + recordHeaderBytes + len > size) { damage = { offset: at, reason: `record length ${len} runs past end of file` }; break; }
    framed.push(at + recordHeaderBytes, at + recordHeaderBytes + len);
    at += recordHeaderBytes + len;
  }
  // Checksums of all framed records in one accel call, then LSN continuity.
  const { starts, ends, count: n } = framed;
  const crcs = payloadChecksums(sums, buf, starts, ends, n);
  let good = 0;
  for (; good < n; good++) {
    const s = starts[good] as number;
    if (view.getUint32(s - 4, true) !== crcs[good]) { damage = { offset: s - recordHeaderBytes, reason: "record checksum mismatch" }; break; }
    const lsn = getU64(view, s);
    if (lsn !== header.lsn + good) {
      damage = { offset: s - recordHeaderBytes, reason: `record LSN ${lsn}, expected ${header.lsn + good}` };
      break;
    }
  }
  const goodEnd = good === 0 ? fileHeaderBytes : (ends[good - 1] as number);
  const lastGoodLsn = header.lsn + good - 1;
  return {
    header, tornHeader: false, count: good, starts, ends, goodEnd,
    damage: damage === null ? null : { ...damage, goodRecordFollows: goodRecordAfter(buf, view, damage.offset + 1, lastGoodLsn, sums) },
  };
}

/**
 * Looks at every byte offset from `from` for a record with a plausible length, an LSN after
 * `afterLsn` and a good checksum. Cheap checks come first so garbage and zeros cost a few
 * reads per byte; bounded by the buffer length.
 */
function goodRecordAfter(buf: Uint8Array, view: DataView, from: number, afterLsn: number, sums: Checksums): boolean {
  const size = buf.byteLength;
  const lsnCeiling = afterLsn + Math.ceil(size / minRecordBytes) + 1;
  for (let at = from; at + minRecordBytes <= size; at++) {
    const len = view.getUint32(at, true);
    if (len < recordLsnBytes || len > walRecordBytesMax || at + recordHeaderBytes + len > size) continue;
    const lsn = getU64(view, at + recordHeaderBytes);
    if (lsn <= afterLsn || lsn > lsnCeiling) continue;
    const payload = buf.subarray(at + recordHeaderBytes, at + recordHeaderBytes + len);
    if (sums.crc32c(payload) === view.getUint32(at + 4, true)) return true;
  }
  return false;
}

