// A fast 64-bit non-cryptographic hash of canonical state bytes, as two independent 32-bit
// murmur3-style lanes, so a key's digest costs no bigint arithmetic until someone reads it.

/** Receives the two 32-bit halves of the last hash64 call (avoids allocating per call). */
export const hashOut = { hi: 0, lo: 0 };

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hashes buf[start, end) into hashOut.hi / hashOut.lo. */
export function hash64(buf: Uint8Array, start: number, end: number): void {
  let h1 = 0x9747b28c;
  let h2 = 0x5bd1e995;
  let i = start;
  const blocksEnd = start + ((end - start) & ~3);
  for (; i < blocksEnd; i += 4) {
    const k = (buf[i] as number) | ((buf[i + 1] as number) << 8) | ((buf[i + 2] as number) << 16) | ((buf[i + 3] as number) << 24);
    let k1 = Math.imul(k, 0xcc9e2d51);
    k1 = (k1 << 15) | (k1 >>> 17);
    h1 ^= Math.imul(k1, 0x1b873593);
    h1 = (h1 << 13) | (h1 >>> 19);
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
    let k2 = Math.imul(k, 0x239b961b);
    k2 = (k2 << 17) | (k2 >>> 15);
    h2 ^= Math.imul(k2, 0xab0e9789);
    h2 = (h2 << 11) | (h2 >>> 21);
    h2 = (Math.imul(h2, 9) + 0x38b34ae5) | 0;
  }
  const rest = (end - start) & 3;
  if (rest > 0) {
    let t = buf[i] as number;
    if (rest > 1) t ^= (buf[i + 1] as number) << 8;
    if (rest > 2) t ^= (buf[i + 2] as number) << 16;
    const k1 = Math.imul(t, 0xcc9e2d51);
    h1 ^= Math.imul((k1 << 15) | (k1 >>> 17), 0x1b873593);
    const k2 = Math.imul(t, 0x239b961b);
    h2 ^= Math.imul((k2 << 17) | (k2 >>> 15), 0xab0e9789);
  }
  const len = end - start;
  hashOut.hi = fmix((h1 ^ len) + Math.imul(h2, 0x2127599b));
  hashOut.lo = fmix(h2 ^ len ^ 0x165667b1);
}

/** The 64-bit digest from its halves. */
export function digestOf(hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
