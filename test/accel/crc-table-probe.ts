// Child process for conformance.test.ts: with IMDB_ACCEL_CRC=table the addon uses its C++
// slicing table; prints "table ok" when that matches the TS path on many lengths and offsets.
import { nativeAccel, nativeCrcImpl, tsAccel } from "../../src/accel/index.ts";

const n = nativeAccel();
if (!n) throw new Error("native addon not loaded");
const buf = new Uint8Array(4096);
let x = 12345;
for (let i = 0; i < buf.length; i++) {
  x = (x * 1103515245 + 12345) >>> 0;
  buf[i] = x >>> 24;
}
let bad = 0;
for (let len = 0; len <= 300; len++) {
  for (const start of [0, 1, 3, 7]) {
    const d = buf.subarray(start, start + len);
    if (n.checksums.crc32c(d) !== tsAccel.checksums.crc32c(d)) bad++;
  }
}
if (n.checksums.crc32c(buf) !== tsAccel.checksums.crc32c(buf)) bad++;
const offsets = Uint32Array.from({ length: 60 }, (_, i) => (i * (i + 1)) / 2); // record lengths 0..58
const many = n.checksums.crc32cMany(buf, offsets);
const manyTs = tsAccel.checksums.crc32cMany(buf, offsets);
for (let i = 0; i < many.length; i++) if (many[i] !== manyTs[i]) bad++;
console.log(bad === 0 ? `${nativeCrcImpl()} ok` : `${nativeCrcImpl()} ${bad} mismatches`);
