// The hash that places client-chosen keys in the engine's hash table: HalfSipHash-1-3 (Aumasson
// and Bernstein's SipHash on 32-bit words, as Linux's hsiphash) under a secret 64-bit seed, so a
// client cannot pick keys that all collide (hash flooding turns every lookup into a scan). An
// unkeyed hash, even a seeded murmur, has seed-independent multicollisions; SipHash is keyed
// by design. The seed comes in from outside (the engine is pure): random per process in the
// node, from the seeded rng in the simulator.

/** A 64-bit hash key as two u32 words. */
export type KeyHashSeed = readonly [number, number];

function rotl(x: number, b: number): number {
  return (x << b) | (x >>> (32 - b));
}

// The state words; module scope so the hot path allocates nothing (the engine is single-threaded).
let v0 = 0;
let v1 = 0;
let v2 = 0;
let v3 = 0;

function round(): void {
  v0 = (v0 + v1) | 0; v1 = rotl(v1, 5); v1 ^= v0; v0 = rotl(v0, 16);
  v2 = (v2 + v3) | 0; v3 = rotl(v3, 8); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = rotl(v3, 7); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = rotl(v1, 13); v1 ^= v2; v2 = rotl(v2, 16);
}

/**
 * HalfSipHash-c-d with 32-bit output of buf[0, len) under key (k0, k1), as a u32: the spec's
 * form, checked against the published vectors (2-4); halfSipHash13 is its unrolled 1-3 case.
 */
export function halfSipHashReference(k0: number, k1: number, buf: Uint8Array, len: number, c: number, d: number): number {
  v0 = k0 | 0;
  v1 = k1 | 0;
  v2 = 0x6c796765 ^ k0;
  v3 = 0x74656462 ^ k1;
  const end = len & ~3;
  let i = 0;
  for (; i < end; i += 4) {
    const m = (buf[i] as number) | ((buf[i + 1] as number) << 8) | ((buf[i + 2] as number) << 16) | ((buf[i + 3] as number) << 24);
    v3 ^= m;
    for (let r = 0; r < c; r++) round();
    v0 ^= m;
  }
  let b = (len & 0xff) << 24;
  const left = len & 3;
  if (left === 3) b |= (buf[i + 2] as number) << 16;
  if (left >= 2) b |= (buf[i + 1] as number) << 8;
  if (left >= 1) b |= buf[i] as number;
  v3 ^= b;
  for (let r = 0; r < c; r++) round();
  v0 ^= b;
  v2 ^= 0xff;
  for (let r = 0; r < d; r++) round();
  return (v1 ^ v3) >>> 0;
}

/**
 * The table hash: HalfSipHash-1-3 (the round counts Rust's HashMap and Linux's hsiphash use
 * against flooding), 32-bit output, of buf[0, len) under key (k0, k1).
 */
export function halfSipHash13(k0: number, k1: number, buf: Uint8Array, len: number): number {
  // halfSipHashReference(k0, k1, buf, len, 1, 3) with the state in locals and the rounds
  // written out: the key table hashes every key of every request with it, and the module-scope
  // state and round() calls cost 30-50 ns more per key (measured 87-100 vs 48-62 ns per
  // 11-byte key, bun 1.4.5); applyMany of 100 increments paid about 5 us for it.
  let a = k0 | 0;
  let b = k1 | 0;
  let c = 0x6c796765 ^ k0;
  let d = 0x74656462 ^ k1;
  const end = len & ~3;
  let i = 0;
  for (; i < end; i += 4) {
    const m = (buf[i] as number) | ((buf[i + 1] as number) << 8) | ((buf[i + 2] as number) << 16) | ((buf[i + 3] as number) << 24);
    d ^= m;
    a = (a + b) | 0; b = (b << 5) | (b >>> 27); b ^= a; a = (a << 16) | (a >>> 16);
    c = (c + d) | 0; d = (d << 8) | (d >>> 24); d ^= c;
    a = (a + d) | 0; d = (d << 7) | (d >>> 25); d ^= a;
    c = (c + b) | 0; b = (b << 13) | (b >>> 19); b ^= c; c = (c << 16) | (c >>> 16);
    a ^= m;
  }
  let m = (len & 0xff) << 24;
  const left = len & 3;
  if (left === 3) m |= (buf[i + 2] as number) << 16;
  if (left >= 2) m |= (buf[i + 1] as number) << 8;
  if (left >= 1) m |= buf[i] as number;
  d ^= m;
  a = (a + b) | 0; b = (b << 5) | (b >>> 27); b ^= a; a = (a << 16) | (a >>> 16);
  c = (c + d) | 0; d = (d << 8) | (d >>> 24); d ^= c;
  a = (a + d) | 0; d = (d << 7) | (d >>> 25); d ^= a;
  c = (c + b) | 0; b = (b << 13) | (b >>> 19); b ^= c; c = (c << 16) | (c >>> 16);
  a ^= m;
  c ^= 0xff;
  for (let r = 0; r < 3; r++) {
    a = (a + b) | 0; b = (b << 5) | (b >>> 27); b ^= a; a = (a << 16) | (a >>> 16);
    c = (c + d) | 0; d = (d << 8) | (d >>> 24); d ^= c;
    a = (a + d) | 0; d = (d << 7) | (d >>> 25); d ^= a;
    c = (c + b) | 0; b = (b << 13) | (b >>> 19); b ^= c; c = (c << 16) | (c >>> 16);
  }
  return (b ^ d) >>> 0;
}

/** HalfSipHash-2-4, the reference parameters: only to check this code against the published vectors. */
export function halfSipHash24(k0: number, k1: number, buf: Uint8Array, len: number): number {
  return halfSipHashReference(k0, k1, buf, len, 2, 4);
}

/** Murmur3's 32-bit finaliser: a bijection of u32 with full avalanche (hash trees, placement scores). */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
