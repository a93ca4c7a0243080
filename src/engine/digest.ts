// A key's anti-entropy digest: BLAKE2s with a 128-bit output (RFC 7693) of the key and its
// canonical state. Replicas compare digests across nodes, so the hash cannot be keyed with a
// per-node secret; a cryptographic 128-bit hash needs no key: no client can find two states of
// a key that share a digest (2^64 work for a collision), as it could for the 2 x 32-bit
// murmur-style lanes used before. Binding the key in means equal states of different keys
// differ too, so their contributions to the hash tree cannot cancel.
//
// Written on 32-bit words (BLAKE2s, not BLAKE2b), so JavaScript needs no 64-bit arithmetic;
// state words live in module scope, so the hot path allocates nothing until a bigint is asked for.

/** Receives the four 32-bit words of the last blake2s128 call, little-endian order (w0 lowest). */
export const digestOut = { w0: 0, w1: 0, w2: 0, w3: 0 };

const iv = new Int32Array([
  0x6a09e667, 0xbb67ae85 | 0, 0x3c6ef372, 0xa54ff53a | 0, 0x510e527f, 0x9b05688c | 0, 0x1f83d9ab, 0x5be0cd19,
]);

/** BLAKE2s message schedule: the 10 rounds' word orders, flattened. */
const sigma = new Uint8Array([
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
  14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3,
  11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4,
  7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8,
  9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13,
  2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9,
  12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11,
  13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10,
  6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5,
  10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0,
]);

const h = new Int32Array(8);
const m = new Int32Array(16);

/**
 * Compresses the 64-byte block at buf[at] (bytes past `end` read as zero); t: bytes hashed so far
 * including this block. The working vector is sixteen locals (the G function written out on
 * them): about 10x faster than an array.
 */
function compress(buf: Uint8Array, at: number, end: number, t: number, last: boolean): void {
  for (let i = 0; i < 16; i++) {
    const p = at + 4 * i;
    if (p + 4 <= end) {
      m[i] = (buf[p] as number) | ((buf[p + 1] as number) << 8) | ((buf[p + 2] as number) << 16) | ((buf[p + 3] as number) << 24);
    } else {
      let w = 0;
      for (let k = 0; k < 4; k++) if (p + k < end) w |= (buf[p + k] as number) << (8 * k);
      m[i] = w;
    }
  }
  let v0 = h[0] as number, v1 = h[1] as number, v2 = h[2] as number, v3 = h[3] as number;
  let v4 = h[4] as number, v5 = h[5] as number, v6 = h[6] as number, v7 = h[7] as number;
  let v8 = iv[0] as number, v9 = iv[1] as number, v10 = iv[2] as number, v11 = iv[3] as number;
  let v12 = (iv[4] as number) ^ (t | 0), v13 = (iv[5] as number) ^ Math.floor(t / 0x1_0000_0000);
  let v14 = last ? ~(iv[6] as number) : (iv[6] as number), v15 = iv[7] as number;
  for (let r = 0; r < 160; r += 16) {
    v0 = (v0 + v4 + (m[sigma[r] as number] as number)) | 0; v12 ^= v0; v12 = (v12 >>> 16) | (v12 << 16); v8 = (v8 + v12) | 0; v4 ^= v8; v4 = (v4 >>> 12) | (v4 << 20);
    v0 = (v0 + v4 + (m[sigma[r + 1] as number] as number)) | 0; v12 ^= v0; v12 = (v12 >>> 8) | (v12 << 24); v8 = (v8 + v12) | 0; v4 ^= v8; v4 = (v4 >>> 7) | (v4 << 25);
    v1 = (v1 + v5 + (m[sigma[r + 2] as number] as number)) | 0; v13 ^= v1; v13 = (v13 >>> 16) | (v13 << 16); v9 = (v9 + v13) | 0; v5 ^= v9; v5 = (v5 >>> 12) | (v5 << 20);
    v1 = (v1 + v5 + (m[sigma[r + 3] as number] as number)) | 0; v13 ^= v1; v13 = (v13 >>> 8) | (v13 << 24); v9 = (v9 + v13) | 0; v5 ^= v9; v5 = (v5 >>> 7) | (v5 << 25);
    v2 = (v2 + v6 + (m[sigma[r + 4] as number] as number)) | 0; v14 ^= v2; v14 = (v14 >>> 16) | (v14 << 16); v10 = (v10 + v14) | 0; v6 ^= v10; v6 = (v6 >>> 12) | (v6 << 20);
    v2 = (v2 + v6 + (m[sigma[r + 5] as number] as number)) | 0; v14 ^= v2; v14 = (v14 >>> 8) | (v14 << 24); v10 = (v10 + v14) | 0; v6 ^= v10; v6 = (v6 >>> 7) | (v6 << 25);
    v3 = (v3 + v7 + (m[sigma[r + 6] as number] as number)) | 0; v15 ^= v3; v15 = (v15 >>> 16) | (v15 << 16); v11 = (v11 + v15) | 0; v7 ^= v11; v7 = (v7 >>> 12) | (v7 << 20);
    v3 = (v3 + v7 + (m[sigma[r + 7] as number] as number)) | 0; v15 ^= v3; v15 = (v15 >>> 8) | (v15 << 24); v11 = (v11 + v15) | 0; v7 ^= v11; v7 = (v7 >>> 7) | (v7 << 25);
    v0 = (v0 + v5 + (m[sigma[r + 8] as number] as number)) | 0; v15 ^= v0; v15 = (v15 >>> 16) | (v15 << 16); v10 = (v10 + v15) | 0; v5 ^= v10; v5 = (v5 >>> 12) | (v5 << 20);
    v0 = (v0 + v5 + (m[sigma[r + 9] as number] as number)) | 0; v15 ^= v0; v15 = (v15 >>> 8) | (v15 << 24); v10 = (v10 + v15) | 0; v5 ^= v10; v5 = (v5 >>> 7) | (v5 << 25);
    v1 = (v1 + v6 + (m[sigma[r + 10] as number] as number)) | 0; v12 ^= v1; v12 = (v12 >>> 16) | (v12 << 16); v11 = (v11 + v12) | 0; v6 ^= v11; v6 = (v6 >>> 12) | (v6 << 20);
    v1 = (v1 + v6 + (m[sigma[r + 11] as number] as number)) | 0; v12 ^= v1; v12 = (v12 >>> 8) | (v12 << 24); v11 = (v11 + v12) | 0; v6 ^= v11; v6 = (v6 >>> 7) | (v6 << 25);
    v2 = (v2 + v7 + (m[sigma[r + 12] as number] as number)) | 0; v13 ^= v2; v13 = (v13 >>> 16) | (v13 << 16); v8 = (v8 + v13) | 0; v7 ^= v8; v7 = (v7 >>> 12) | (v7 << 20);
    v2 = (v2 + v7 + (m[sigma[r + 13] as number] as number)) | 0; v13 ^= v2; v13 = (v13 >>> 8) | (v13 << 24); v8 = (v8 + v13) | 0; v7 ^= v8; v7 = (v7 >>> 7) | (v7 << 25);
    v3 = (v3 + v4 + (m[sigma[r + 14] as number] as number)) | 0; v14 ^= v3; v14 = (v14 >>> 16) | (v14 << 16); v9 = (v9 + v14) | 0; v4 ^= v9; v4 = (v4 >>> 12) | (v4 << 20);
    v3 = (v3 + v4 + (m[sigma[r + 15] as number] as number)) | 0; v14 ^= v3; v14 = (v14 >>> 8) | (v14 << 24); v9 = (v9 + v14) | 0; v4 ^= v9; v4 = (v4 >>> 7) | (v4 << 25);
  }
  h[0] = (h[0] as number) ^ v0 ^ v8;
  h[1] = (h[1] as number) ^ v1 ^ v9;
  h[2] = (h[2] as number) ^ v2 ^ v10;
  h[3] = (h[3] as number) ^ v3 ^ v11;
  h[4] = (h[4] as number) ^ v4 ^ v12;
  h[5] = (h[5] as number) ^ v5 ^ v13;
  h[6] = (h[6] as number) ^ v6 ^ v14;
  h[7] = (h[7] as number) ^ v7 ^ v15;
}

/** BLAKE2s (unkeyed) of buf[start, end) with an `outBytes`-byte output (1..32), into `out`'s first outBytes / 4 words. */
export function blake2s(buf: Uint8Array, start: number, end: number, outBytes: number, out: Int32Array): void {
  h.set(iv);
  h[0] = (h[0] as number) ^ (0x01010000 | outBytes);
  const len = end - start;
  let at = start;
  // Every block but the last; the last (possibly empty, possibly partial) is flagged.
  while (end - at > 64) {
    compress(buf, at, end, at - start + 64, false);
    at += 64;
  }
  compress(buf, at, end, len, true);
  for (let i = 0; i < outBytes / 4; i++) out[i] = h[i] as number;
}

const out4 = new Int32Array(4);

/** The 128-bit digest of buf[start, end) into digestOut. */
export function digest128(buf: Uint8Array, start: number, end: number): void {
  blake2s(buf, start, end, 16, out4);
  digestOut.w0 = (out4[0] as number) >>> 0;
  digestOut.w1 = (out4[1] as number) >>> 0;
  digestOut.w2 = (out4[2] as number) >>> 0;
  digestOut.w3 = (out4[3] as number) >>> 0;
}

/** The 128-bit digest as a bigint from its words (w0 lowest). */
export function digestOf(w0: number, w1: number, w2: number, w3: number): bigint {
  return (BigInt(w3 >>> 0) << 96n) | (BigInt(w2 >>> 0) << 64n) | (BigInt(w1 >>> 0) << 32n) | BigInt(w0 >>> 0);
}
