// Pure-TypeScript CRC32C (Castagnoli), slicing-by-8: the fallback and the reference the
// native path must match bit for bit.

import type { Checksums } from "./api.ts";
import { checkOffsets } from "./errors.ts";

const poly = 0x82f63b78; // reflected Castagnoli polynomial

/** tables[k*256 + b]: CRC of byte b followed by k zero bytes (slicing-by-8). */
const tables = new Uint32Array(8 * 256);
for (let b = 0; b < 256; b++) {
  let c = b;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
  tables[b] = c >>> 0;
}
for (let b = 0; b < 256; b++) {
  let c = tables[b] as number;
  for (let k = 1; k < 8; k++) {
    c = (tables[c & 0xff] as number) ^ (c >>> 8);
    tables[k * 256 + b] = c >>> 0;
  }
}

/** Continues a raw (not yet inverted) CRC over data[start, end). */
function crcUpdate(crcIn: number, data: Uint8Array, start: number, end: number): number {
  const t = tables;
  let crc = crcIn;
  let i = start;
  while (i + 8 <= end) {
    const lo = (crc ^ ((data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24))) >>> 0;
    crc =
      (t[7 * 256 + (lo & 0xff)] as number) ^
      (t[6 * 256 + ((lo >>> 8) & 0xff)] as number) ^
      (t[5 * 256 + ((lo >>> 16) & 0xff)] as number) ^
      (t[4 * 256 + (lo >>> 24)] as number) ^
      (t[3 * 256 + (data[i + 4] as number)] as number) ^
      (t[2 * 256 + (data[i + 5] as number)] as number) ^
      (t[256 + (data[i + 6] as number)] as number) ^
      (t[data[i + 7] as number] as number);
    i += 8;
  }
  while (i < end) {
    crc = (t[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
    i++;
  }
  return crc;
}

export function crc32cTs(data: Uint8Array): number {
  return (crcUpdate(0xffffffff, data, 0, data.length) ^ 0xffffffff) >>> 0;
}

export function crc32cManyTs(buf: Uint8Array, offsets: Uint32Array): Uint32Array {
  checkOffsets(offsets, buf.length, "crc32cMany");
  const n = offsets.length - 1;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = (crcUpdate(0xffffffff, buf, offsets[i] as number, offsets[i + 1] as number) ^ 0xffffffff) >>> 0;
  }
  return out;
}

export const tsChecksums: Checksums = { crc32c: crc32cTs, crc32cMany: crc32cManyTs };
