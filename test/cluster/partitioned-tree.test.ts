// The pieces a partitioned cluster adds under anti-entropy and delta push: the hash tree's
// partition-major leaves and masked hashes (two owners compare exactly the partitions they
// share), and reading a delta's key without decoding it (a delta goes to its key's owners).
import { describe, expect, test } from "bun:test";
import { HashTree } from "../../src/cluster/hashtree.ts";
import { partitionOf, partitionOfUtf8 } from "../../src/cluster/placement.ts";
import { envelopeKeyBytes } from "../../src/codec/envelope.ts";
import { Engine } from "../../src/engine/index.ts";
import { Rng } from "../../src/sim/rng.ts";

const seed = Number(process.env.IMDB_SEED ?? Math.floor(Math.random() * 1_000_000_000));
const enc = new TextEncoder();

describe("partition-major hash tree", () => {
  test(`every key lands in its partition's run of leaves, and the runs cover the leaves once (seed ${seed})`, () => {
    const rng = new Rng(seed);
    for (const partitions of [1, 7, 64, 1000, 4096]) {
      const tree = new HashTree(3, [1, 2], partitions);
      let next = 0;
      for (let p = 0; p < partitions; p++) {
        const [start, end] = tree.partitionLeaves(p);
        expect(start).toBe(next);
        expect(end).toBeGreaterThan(start);
        next = end;
      }
      expect(next).toBe(tree.leafCount);
      for (let i = 0; i < 300; i++) {
        const key = `k${rng.int(1_000_000)}:${i}`;
        const [start, end] = tree.partitionLeaves(partitionOf(key, partitions));
        const leaf = tree.leafOf(key);
        expect(leaf >= start && leaf < end, `seed ${seed}: ${key}`).toBe(true);
      }
    }
  });

  test(`a masked hash equals the hash of a tree holding only the masked partitions' keys (seed ${seed})`, () => {
    const rng = new Rng(seed ^ 1);
    const partitions = 64;
    const all = new HashTree(2, [5, 6], partitions);
    const some = new HashTree(2, [7, 8], partitions);
    const shared = new Set<number>();
    for (let p = 0; p < partitions; p++) if (rng.chance(0.4)) shared.add(p);
    const mask = new Uint8Array(all.leafCount);
    for (const p of shared) mask.fill(1, ...all.partitionLeaves(p));
    for (let i = 0; i < 2000; i++) {
      const key = `key:${i}`;
      const digest = (BigInt(rng.nextU32()) << 96n) | (BigInt(rng.nextU32()) << 32n) | BigInt(i);
      all.set(key, digest);
      if (shared.has(partitionOf(key, partitions))) some.set(key, digest);
    }
    for (let level = 0; level <= 2; level++) {
      for (let index = 0; index < 16 ** level; index++) {
        expect(all.maskedHash(level, index, mask), `seed ${seed}: node ${level}/${index}`).toEqual(some.hash(level, index));
      }
    }
    expect(all.maskedHash(0, 0, new Uint8Array(all.leafCount).fill(1))).toEqual(all.hash(0, 0));
    expect(all.maskedHash(0, 0, new Uint8Array(all.leafCount))).toEqual([0, 0, 0, 0]);
  });

  test(`the kept per-partition hashes and counts stay exact through writes, overwrites and removes, for any partition count (seed ${seed})`, () => {
    const rng = new Rng(seed ^ 2);
    for (const partitions of [7, 64, 1000, 4096]) {
      const tree = new HashTree(3, [3, 4], partitions);
      const live = new Set<string>();
      for (let i = 0; i < 3000; i++) {
        const key = `k${rng.int(1500)}`;
        if (live.has(key) && rng.chance(0.3)) {
          tree.set(key, undefined);
          live.delete(key);
        } else {
          tree.set(key, (BigInt(rng.nextU32()) << 64n) | BigInt(rng.nextU32()));
          live.add(key);
        }
        if (i === 1500) tree.set("absent", undefined);
      }
      const mask = new Uint8Array(tree.leafCount);
      for (let p = 0; p < partitions; p++) if (rng.chance(0.5)) mask.fill(1, ...tree.partitionLeaves(p));
      // What maskedHash must give: the masked leaves' hashes XORed one by one.
      const naive = (level: number, index: number): [number, number, number, number] => {
        const span = 16 ** (3 - level);
        const h: [number, number, number, number] = [0, 0, 0, 0];
        for (let leaf = index * span; leaf < (index + 1) * span; leaf++) {
          if (mask[leaf] === 0) continue;
          tree.hash(3, leaf).forEach((w, j) => (h[j] = (h[j]! ^ w) >>> 0));
        }
        return h;
      };
      for (let level = 0; level <= 3; level++) {
        for (let index = 0; index < 16 ** level; index += level === 3 ? 7 : 1) {
          expect(tree.maskedHash(level, index, mask), `seed ${seed}: ${partitions} partitions, node ${level}/${index}`).toEqual(naive(level, index));
        }
      }
      const counts = new Array<number>(partitions).fill(0);
      for (const key of live) counts[partitionOf(key, partitions)]!++;
      for (let p = 0; p < partitions; p++) expect(tree.partitionKeyCount(p), `seed ${seed}: ${partitions} partitions, partition ${p}`).toBe(counts[p]!);
    }
  });

  test("a tree cannot give more partitions than leaves a run each", () => {
    expect(() => new HashTree(2, [0, 0], 257)).toThrow(/at most 256/);
    expect(() => new HashTree(2, [0, 0], 256)).not.toThrow();
  });
});

describe("a delta's key", () => {
  test("is read from the engine's deltas of every kind, and its partition is the key's", () => {
    const e = new Engine({ actor: "a" });
    const now = 1_700_000_000_000;
    const deltas: Array<[string, Uint8Array | null]> = [];
    const many = (key: string, op: Parameters<Engine["applyMany"]>[0][number]): void => {
      for (const d of e.applyMany([op], now).deltas) deltas.push([key, d]);
    };
    many("counter:é", { kind: "incr", key: "counter:é", amount: 3n });
    many("reg", { kind: "set", key: "reg", value: enc.encode("v") });
    many("set", { kind: "sadd", key: "set", members: [enc.encode("m")] });
    const h = e.applyHash({ kind: "hset", key: "hash", pairs: [{ field: enc.encode("f"), value: enc.encode("v") }] }, now);
    deltas.push(["hash", h.ok ? h.delta : null]);
    many("reg", { kind: "del", key: "reg" });
    expect(deltas.length).toBe(5);
    for (const [key, delta] of deltas) {
      expect(delta).not.toBeNull();
      const bytes = envelopeKeyBytes(delta!);
      expect(new TextDecoder().decode(bytes!)).toBe(key);
      expect(partitionOfUtf8(bytes!, 16384)).toBe(partitionOf(key, 16384));
    }
  });

  test(`garbage gives null or a key within the bounds, never a throw (seed ${seed})`, () => {
    const rng = new Rng(seed ^ 2);
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(rng.int(64));
      for (let j = 0; j < b.length; j++) b[j] = rng.int(256);
      const k = envelopeKeyBytes(b);
      if (k !== null) expect(k.length >= 1 && k.length <= 1024).toBe(true);
    }
    expect(envelopeKeyBytes(new Uint8Array(0))).toBeNull();
  });
});
