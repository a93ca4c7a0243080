// The engine's key table hashes client-chosen keys under a per-process secret (HalfSipHash-1-3):
// keys that collide under one seed - what an attacker can compute for a known hash - are spread
// by another, so a client cannot turn lookups into scans (hash flooding).

import { describe, expect, test } from "bun:test";
import { halfSipHash13, halfSipHash24, halfSipHashReference } from "../../src/engine/keyhash.ts";
import { KeyTable } from "../../src/engine/keytable.ts";

function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

describe("key table hash", () => {
  test("HalfSipHash matches the reference implementation's published vectors (2-4, 32-bit)", () => {
    // vectors_hsip32 of github.com/veorq/SipHash: key 00..07, input 00..(n-1), tag little-endian.
    const expected = [0x5b9f35a9, 0xb85a4727, 0x03a662fa, 0x04e7fe8a, 0x89466e2a, 0x69b6fac5, 0x23fc6358, 0xc563cf8b, 0x8f84b8d0];
    const input = Uint8Array.from({ length: 64 }, (_, i) => i);
    expected.forEach((tag, n) => expect(halfSipHash24(0x03020100, 0x07060504, input, n)).toBe(tag));
  });

  test("the unrolled HalfSipHash-1-3 of the key table equals the reference form with c=1, d=3", () => {
    const seed = 0x5eed_0013;
    let s = seed;
    const next = (): number => (s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0);
    for (let n = 0; n < 5000; n++) {
      const len = n % 41;
      const buf = Uint8Array.from({ length: len + 3 }, () => next() & 0xff); // bytes past len must not count
      const k0 = next() | 0;
      const k1 = next();
      const got = halfSipHash13(k0, k1, buf, len);
      if (got !== halfSipHashReference(k0, k1, buf, len, 1, 3)) throw new Error(`seed ${seed}: differs at n=${n} (len ${len})`);
    }
    expect(halfSipHash13(0x03020100, 0x07060504, Uint8Array.from({ length: 8 }, (_, i) => i), 8)).toBe(halfSipHashReference(0x03020100, 0x07060504, Uint8Array.from({ length: 8 }, (_, i) => i), 8, 1, 3));
  });

  test("keys built to collide under one seed are spread under another", () => {
    // The table holds up to 2048 keys in 4096 slots: keys whose hashes agree in the low 12 bits
    // all start probing at one slot.
    const attacked: readonly [number, number] = [0x12345678, 0x9abcdef0];
    const other: readonly [number, number] = [0x0badf00d, 0x5eed5eed];
    const keys: Uint8Array[] = [];
    const target = halfSipHash13(attacked[0], attacked[1], ascii("k0"), 2) & 0xfff;
    for (let i = 0; keys.length < 200 && i < 10_000_000; i++) {
      const k = ascii(`k${i}`);
      if ((halfSipHash13(attacked[0], attacked[1], k, k.length) & 0xfff) === target) keys.push(k);
    }
    expect(keys.length).toBe(200);
    const probes = (seed: readonly [number, number]): number => {
      const t = new KeyTable(seed);
      let total = 0;
      for (const k of keys) {
        total += t.probes(k, k.length);
        expect(t.find(k, k.length)).toBe(-1);
        t.insert(k, k.length);
      }
      for (const k of keys) expect(t.find(k, k.length)).toBeGreaterThanOrEqual(0);
      return total;
    };
    // The seed the keys were built for: every insert scans all earlier keys (quadratic).
    expect(probes(attacked)).toBeGreaterThan((keys.length * keys.length) / 2);
    // Any other seed: about one probe per key.
    expect(probes(other)).toBeLessThan(3 * keys.length);
  });
});
