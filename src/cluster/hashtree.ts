// A fixed-fanout hash tree over per-key 128-bit digests, so that two replicas find their differing keys in O(d log N).
//
// Keys are placed in one of 16^depth leaves by a hash of the key. A node's 128-bit hash is the
// XOR of contribution(key, digest) over the keys below it, so a key's change is applied to the
// depth + 1 nodes on its path by XOR-ing out the old contribution and XOR-ing in the new one.
// The contribution mixes the key's hashes into the digest non-linearly and, for one key, as a
// bijection of the 128 digest bits: two digests of a key never contribute alike, and two keys
// whose states differ alike between two replicas (equal digests) do not cancel. The engine's
// digest is a cryptographic hash that already binds the key (src/engine/digest.ts), so no
// client can make two states of a key, or of two keys, contribute alike on purpose.
// Nodes compare these hashes across the cluster, so neither is seeded; only the table that
// finds a key's slot (client-chosen keys) uses a per-process secret (src/engine/keyhash.ts).
//
// Memory: a node holds one entry per key, so nothing per key is a heap object, not even the
// key string. Each key gets a slot number; the slot's record (digest words, table hash, links
// in its leaf's list, where its key is) lives in fixed-size pages of an Int32Array, the key's
// code units in pages of a byte arena (one byte each when all are below 256), and an
// open-addressing table of slot numbers (tagged with 4 bits of the key's hash) finds a key's
// slot. About 32 bytes per key plus the key's length plus 8-16 bytes of table; strings are
// made only when a leaf is listed for a peer.

import { fmix32, halfSipHash13, type KeyHashSeed } from "../engine/keyhash.ts";
import { partitionOf } from "./placement.ts";

export const treeFanout = 16;
const fanoutBits = 4;
export const treeDepthMin = 1;
export const treeDepthMax = 6;
/** Keys one tree holds at most (above the engine's 100M): a slot number takes 27 bits of a table entry. */
export const treeKeysMax = 1 << 27;
/** Longest key in UTF-16 code units (the engine's keys are at most 1024 bytes of UTF-8). */
export const treeKeyUnitsMax = 4096;

const noSlot = -1;
// A table entry is (tag << tagShift) | slot, tag = the top 4 bits of the key's table hash,
// so most probes past other keys are rejected without reading their records.
const tagShift = 27;
const slotMask = (1 << tagShift) - 1;
/** Slots per record page; the first page starts small and doubles up to this, later pages are full size. */
const pageBits = 14;
const pageSlots = 1 << pageBits;
const pageMask = pageSlots - 1;
const firstPageSlots = 64;
// A slot's record: fields at these offsets, `stride` int32s apart.
/** The digest's four 32-bit words, lowest first. */
const fD0 = 0;
/** The key's seeded table hash, which places it in the table: probes and rehashes need no key bytes. */
const fHash = 4;
const fNext = 5;
const fPrev = 6;
/** Where the key starts in the arena ((page << arenaPageBits) | offset), or noSlot if the slot is free. */
const fKey = 7;
const stride = 8;

// The key arena: each key is a varint (units << 1 | wide) then its units, 1 byte each, or
// 2 (little-endian) if any unit is 256 or more. A key never spans two pages.
const arenaPageBits = 16;
const arenaPageBytes = 1 << arenaPageBits;
const arenaOffsetMask = arenaPageBytes - 1;
const firstArenaPageBytes = 256;
// A key takes at most 2 + 2 * treeKeyUnitsMax bytes, so it always fits in one page.
if (2 + 2 * treeKeyUnitsMax > arenaPageBytes) throw new Error("arena pages too small for the longest key");
/** Arena pages at most, so that an arena address stays a non-negative int32. */
const arenaPagesMax = 1 << (31 - arenaPageBits);

/** Offset in its page where the key read by the last readHead call has its first unit. */
let unitsAt = 0;

/** The length header (units << 1 | wide) of the arena key at `addr` in `page`; sets unitsAt. */
function readHead(page: Uint8Array, addr: number): number {
  let p = addr & arenaOffsetMask;
  let b = page[p++] as number;
  let head = b & 0x7f;
  for (let shift = 7; b >= 0x80; shift += 7) {
    b = page[p++] as number;
    head |= (b & 0x7f) << shift;
  }
  unitsAt = p;
  return head;
}

// The last keyHashInto result; module scope so the hot path allocates no tuple.
let hk1 = 0;
let hk2 = 0;
/** Whether the last hashed key has a code unit of 256 or more. */
let hkWide = false;

function keyHashInto(key: string): void {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ key.length;
  let or = 0;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    or |= c;
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  hk1 = fmix32(a);
  hk2 = fmix32(b ^ Math.imul(a, 0x9e3779b1));
  hkWide = or > 0xff;
}

/** Two independent 32-bit hashes of a key's UTF-16 code units (the same on every node). */
export function keyHash(key: string): [number, number] {
  keyHashInto(key);
  return [hk1, hk2];
}

/** A tree node's 128-bit hash as four u32 words, lowest first. */
export type TreeHash = [number, number, number, number];

/** Splits a 128-bit digest into u32 words (and joins them back). */
const splitView = new DataView(new ArrayBuffer(16));
const mask64 = (1n << 64n) - 1n;
/** set()'s per-word change of a key's contribution (module scope: no allocation per update). */
const deltaOut = new Int32Array(4);

/**
 * The 128-bit contribution of (key, digest words d[0..3]) into `out`: each step is fmix32 (a
 * bijection) of one digest word XOR things already fixed, then a second pass feeds the last
 * word back, so for one key the map from digest to contribution is a bijection.
 */
function entryHashInto(k1: number, k2: number, d: Int32Array, out: Int32Array): void {
  const c0 = fmix32((d[0] as number) ^ k1);
  const c1 = fmix32((d[1] as number) ^ k2 ^ c0);
  const c2 = fmix32((d[2] as number) ^ Math.imul(k1, 0x9e3779b1) ^ c1);
  const c3 = fmix32((d[3] as number) ^ Math.imul(k2, 0x85ebca6b) ^ c2);
  out[0] = fmix32(c0 ^ c3);
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}
const oldWords = new Int32Array(4);
const newWords = new Int32Array(4);
const contribution = new Int32Array(4);

function joinDigest(rec: Int32Array, o: number): bigint {
  for (let j = 0; j < 4; j++) splitView.setInt32(4 * j, rec[o + fD0 + j] as number, true);
  return (splitView.getBigUint64(8, true) << 64n) | splitView.getBigUint64(0, true);
}

/** UTF-16 code units of a key as bytes (little-endian), for the table hash. */
let unitBytes = new Uint8Array(2 * 64);
function seededTableHash(k0: number, k1: number, key: string): number {
  const n = key.length;
  if (2 * n > unitBytes.length) unitBytes = new Uint8Array(2 * Math.max(n, 2 * unitBytes.length));
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i);
    unitBytes[2 * i] = c & 0xff;
    unitBytes[2 * i + 1] = c >>> 8;
  }
  return halfSipHash13(k0, k1, unitBytes, 2 * n);
}

/** The tree cannot take another key (treeKeysMax keys, or a full key arena); nothing was changed. */
export class HashTreeFullError extends Error {
  constructor(what: string) {
    super(`hash tree full: ${what}`);
    this.name = "HashTreeFullError";
  }
}

/** A key longer than treeKeyUnitsMax was refused; nothing was changed. */
export class HashTreeKeyError extends Error {
  constructor(units: number) {
    super(`key of ${units} UTF-16 units is longer than ${treeKeyUnitsMax}`);
    this.name = "HashTreeKeyError";
  }
}

/** The tree rebuilds itself smaller (shrink) only past this many slots: small trees are not worth it. */
export const shrinkSlotsMin = 65_536;

export class HashTree {
  /** levels[L] holds 16^L nodes as four u32 words each. */
  private readonly levels: Uint32Array[] = [];
  private readonly leafShift: number;
  /** First slot of each leaf's list, or noSlot. */
  private readonly leafHead: Int32Array;
  /** Keys per partition (partitioned trees only): a cheap "does this node hold any key of p". */
  private readonly partKeys: Int32Array;
  /** Per partition (partitioned trees only): the XOR of its leaves' hashes, four words each. */
  private readonly partHash: Uint32Array;

  // Slot s lives in record page s >>> pageBits at s & pageMask. A free slot's fKey is noSlot
  // and it is linked through fNext from freeHead.
  private readonly recs: Int32Array[] = [new Int32Array(firstPageSlots * stride)];
  private freeHead = noSlot;
  private slotsUsed = 0;

  private arena: Uint8Array[] = [new Uint8Array(firstArenaPageBytes)];
  /** Next free byte in the last arena page. */
  private arenaPos = 0;
  private liveBytes = 0;
  /** Bytes of removed keys and of page ends left unused; compaction reclaims them. */
  private deadBytes = 0;

  /** Open addressing (linear probing) by the key's second hash; entries are slots, noSlot = empty. */
  private table = new Int32Array(2 * firstPageSlots).fill(noSlot);
  private keys = 0;

  private readonly seed0: number;
  private readonly seed1: number;

  /**
   * seed: the secret key of the table hash (keys are chosen by clients); give each process its own.
   * partitions: 0 places keys in leaves by their hash alone; P > 0 (a partitioned cluster,
   * placement.ts) gives each partition its own run of leaves (partition-major), so that two
   * owners compare exactly the partitions they share (maskedHash) and a listed leaf holds keys
   * of one partition only. Every node of a cluster must use the same P: the layout is compared.
   */
  constructor(readonly depth: number, seed: KeyHashSeed = [0, 0], readonly partitions = 0) {
    if (!Number.isInteger(depth) || depth < treeDepthMin || depth > treeDepthMax) {
      throw new RangeError(`hash tree depth ${depth} not in ${treeDepthMin}..${treeDepthMax}`);
    }
    if (!Number.isInteger(partitions) || partitions < 0 || partitions > treeFanout ** depth) {
      throw new RangeError(`hash tree of depth ${depth} cannot give ${partitions} partitions a leaf each (at most ${treeFanout ** depth})`);
    }
    this.seed0 = seed[0] | 0;
    this.seed1 = seed[1] | 0;
    for (let l = 0; l <= depth; l++) this.levels.push(new Uint32Array(4 * treeFanout ** l));
    this.leafShift = 32 - fanoutBits * depth;
    this.leafHead = new Int32Array(treeFanout ** depth).fill(noSlot);
    this.partKeys = new Int32Array(partitions);
    this.partHash = new Uint32Array(4 * partitions);
  }

  get leafCount(): number {
    return treeFanout ** this.depth;
  }

  get keyCount(): number {
    return this.keys;
  }

  leafOf(key: string): number {
    keyHashInto(key);
    return this.leafAt(key, hk1);
  }

  /** The leaf of a key whose first hash is k1 (see the constructor: by hash, or partition-major). */
  private leafAt(key: string, k1: number): number {
    if (this.partitions === 0) return k1 >>> this.leafShift;
    const [start, end] = this.partitionLeaves(partitionOf(key, this.partitions));
    return start + ((k1 >>> 0) % (end - start));
  }

  /** The leaves [start, end) of partition p in a partitioned tree: disjoint runs covering every leaf. */
  partitionLeaves(p: number): [number, number] {
    const leaves = this.leafHead.length;
    return [Math.floor((p * leaves) / this.partitions), Math.floor(((p + 1) * leaves) / this.partitions)];
  }

  /** The partition whose leaves (partitionLeaves) hold `leaf`: the last p starting at or before it. */
  private partitionOfLeaf(leaf: number): number {
    return Math.ceil(((leaf + 1) * this.partitions) / this.leafHead.length) - 1;
  }

  /**
   * Partition p's 128-bit hash (the XOR of its keys' digests, as kept for maskedHash) as a string,
   * O(1): equal strings mean, but for a collision, that no key of p changed between two reads.
   */
  partitionHashKey(p: number): string {
    const h = this.partHash;
    const i = 4 * p;
    return `${h[i]}.${h[i + 1]}.${h[i + 2]}.${h[i + 3]}.${this.partKeys[p] ?? 0}`;
  }

  /** How many keys of partition p the tree holds, O(1) (0 in a tree that is not partitioned). */
  partitionKeyCount(p: number): number {
    return this.partKeys[p] ?? 0;
  }

  /**
   * The hash of node `index` at `level` counting only the leaves `mask` marks (one byte per
   * leaf, non-zero = counted): what the node's hash would be if the tree held only those
   * leaves' keys. In a partitioned tree the mask marks whole partitions (as anti-entropy's do:
   * a partition's first leaf stands for all of it), and a partition the node covers entirely
   * counts through its kept hash: O(partitions under the node), not O(leaves), the difference
   * between 1024 and 65536 steps for the root at depth 4. Otherwise O(leaves under the node).
   */
  maskedHash(level: number, index: number, mask: Uint8Array): TreeHash {
    if (!this.hasNode(level, index)) throw new RangeError(`no tree node ${level}/${index}`);
    const span = treeFanout ** (this.depth - level);
    const leaves = this.levels[this.depth] as Uint32Array;
    let h0 = 0;
    let h1 = 0;
    let h2 = 0;
    let h3 = 0;
    const first = index * span;
    const last = first + span;
    if (this.partitions > 0) {
      // The node covers whole partitions pf..pl exactly (every level above a partition's size):
      // their kept hashes. Otherwise (the node lies within a partition) leaf by leaf below.
      const pf = this.partitionOfLeaf(first);
      const pl = this.partitionOfLeaf(last - 1);
      if (this.partitionLeaves(pf)[0] === first && this.partitionLeaves(pl)[1] === last) {
        const parts = this.partHash;
        for (let p = pf; p <= pl; p++) {
          if (mask[this.partitionLeaves(p)[0]] === 0) continue;
          const i = 4 * p;
          h0 ^= parts[i] as number;
          h1 ^= parts[i + 1] as number;
          h2 ^= parts[i + 2] as number;
          h3 ^= parts[i + 3] as number;
        }
        return [h0 >>> 0, h1 >>> 0, h2 >>> 0, h3 >>> 0];
      }
    }
    for (let leaf = first; leaf < last; leaf++) {
      if (mask[leaf] === 0) continue;
      const i = 4 * leaf;
      h0 ^= leaves[i] as number;
      h1 ^= leaves[i + 1] as number;
      h2 ^= leaves[i + 2] as number;
      h3 ^= leaves[i + 3] as number;
    }
    return [h0 >>> 0, h1 >>> 0, h2 >>> 0, h3 >>> 0];
  }

  digestOf(key: string): bigint | undefined {
    keyHashInto(key);
    const pos = this.find(key, seededTableHash(this.seed0, this.seed1, key), hkWide);
    if (pos < 0) return undefined;
    const s = (this.table[pos] as number) & slotMask;
    return joinDigest(this.recs[s >>> pageBits] as Int32Array, (s & pageMask) * stride);
  }

  /**
   * Records a key's new digest (taken modulo 2^128); undefined removes the key. O(depth + key
   * length) amortised. Throws HashTreeKeyError or HashTreeFullError for a key it cannot hold,
   * changing nothing.
   */
  set(key: string, digest: bigint | undefined): void {
    keyHashInto(key);
    const k1 = hk1;
    const k2 = hk2;
    const wide = hkWide;
    const th = seededTableHash(this.seed0, this.seed1, key);
    const leaf = this.leafAt(key, k1);
    const pos = this.find(key, th, wide);
    // delta: the key's old contribution XOR its new one (an absent key contributes nothing).
    const delta = deltaOut;
    delta.fill(0);
    if (pos >= 0) {
      const s = (this.table[pos] as number) & slotMask;
      const rec = this.recs[s >>> pageBits] as Int32Array;
      const o = (s & pageMask) * stride;
      for (let j = 0; j < 4; j++) oldWords[j] = rec[o + fD0 + j] as number;
      if (digest !== undefined) {
        splitView.setBigUint64(0, digest & mask64, true);
        splitView.setBigUint64(8, (digest >> 64n) & mask64, true);
        let same = true;
        for (let j = 0; j < 4; j++) if ((oldWords[j] as number) !== splitView.getInt32(4 * j, true)) same = false;
        if (same) return;
      }
      entryHashInto(k1, k2, oldWords, contribution);
      delta.set(contribution);
      if (digest === undefined) this.removeAt(pos, s, leaf);
    } else if (digest === undefined) {
      return;
    }
    if (digest !== undefined) {
      splitView.setBigUint64(0, digest & mask64, true);
      splitView.setBigUint64(8, (digest >> 64n) & mask64, true);
      for (let j = 0; j < 4; j++) newWords[j] = splitView.getInt32(4 * j, true);
      const s = pos >= 0 ? (this.table[pos] as number) & slotMask : this.insert(key, th, wide, leaf);
      const rec = this.recs[s >>> pageBits] as Int32Array;
      const o = (s & pageMask) * stride;
      for (let j = 0; j < 4; j++) rec[o + fD0 + j] = newWords[j] as number;
      entryHashInto(k1, k2, newWords, contribution);
      for (let j = 0; j < 4; j++) delta[j] = (delta[j] as number) ^ (contribution[j] as number);
    }
    if (this.partitions > 0) {
      const i = 4 * this.partitionOfLeaf(leaf);
      for (let j = 0; j < 4; j++) this.partHash[i + j] = (this.partHash[i + j] as number) ^ (delta[j] as number);
    }
    const depth = this.depth;
    for (let l = depth; l >= 0; l--) {
      const i = 4 * (leaf >>> (fanoutBits * (depth - l)));
      const level = this.levels[l] as Uint32Array;
      for (let j = 0; j < 4; j++) level[i + j] = (level[i + j] as number) ^ (delta[j] as number);
    }
    if (digest === undefined && this.slotsUsed >= shrinkSlotsMin && this.keys * 4 < this.slotsUsed) this.shrink();
  }

  /**
   * Rebuilds the per-key structures at the live keys' size once three quarters of the slots are
   * free (after a mass delete whose records were collected): otherwise the records, table and
   * arena would stay at their peak for the life of the process. O(keys), at most once per
   * fourfold shrink; the tree's hashes come out the same.
   */
  private shrink(): void {
    const entries: Array<{ key: string; digest: bigint }> = [];
    for (let leaf = 0; leaf < this.leafHead.length; leaf++) for (const e of this.leafEntries(leaf)) entries.push(e);
    this.recs.length = 0;
    this.recs.push(new Int32Array(firstPageSlots * stride));
    this.freeHead = noSlot;
    this.slotsUsed = 0;
    this.arena = [new Uint8Array(firstArenaPageBytes)];
    this.arenaPos = 0;
    this.liveBytes = 0;
    this.deadBytes = 0;
    this.table = new Int32Array(2 * firstPageSlots).fill(noSlot);
    this.keys = 0;
    this.leafHead.fill(noSlot);
    this.partKeys.fill(0);
    this.partHash.fill(0);
    for (const level of this.levels) level.fill(0);
    for (const e of entries) this.set(e.key, e.digest);
  }

  /** The hash of node `index` at `level` (0 = root) as four u32 words, lowest first. */
  hash(level: number, index: number): TreeHash {
    const arr = this.levels[level];
    if (arr === undefined || index < 0 || 4 * index + 3 >= arr.length) throw new RangeError(`no tree node ${level}/${index}`);
    const i = 4 * index;
    return [arr[i] as number, arr[i + 1] as number, arr[i + 2] as number, arr[i + 3] as number];
  }

  /** Whether `index` names a node at `level`. */
  hasNode(level: number, index: number): boolean {
    return Number.isInteger(level) && level >= 0 && level <= this.depth && Number.isInteger(index) && index >= 0 && index < treeFanout ** level;
  }

  /** The keys of one leaf with their digests, built on demand (only differing leaves are listed). */
  leafEntries(leaf: number): Array<{ key: string; digest: bigint }> {
    const out: Array<{ key: string; digest: bigint }> = [];
    if (!(leaf >= 0 && leaf < this.leafHead.length)) return out;
    for (let s = this.leafHead[leaf] as number; s !== noSlot; ) {
      const rec = this.recs[s >>> pageBits] as Int32Array;
      const o = (s & pageMask) * stride;
      out.push({ key: this.keyAt(rec[o + fKey] as number), digest: joinDigest(rec, o) });
      s = rec[o + fNext] as number;
    }
    return out;
  }

  /** How many keys one leaf holds (no strings made). */
  leafKeyCount(leaf: number): number {
    let n = 0;
    if (!(leaf >= 0 && leaf < this.leafHead.length)) return n;
    for (let s = this.leafHead[leaf] as number; s !== noSlot; n++) {
      const rec = this.recs[s >>> pageBits] as Int32Array;
      s = rec[(s & pageMask) * stride + fNext] as number;
    }
    return n;
  }

  /** Bytes the per-key structures hold (records, arena, table), for the memory accounting. */
  get bytesHeld(): number {
    let n = this.table.byteLength;
    for (const r of this.recs) n += r.byteLength;
    for (const a of this.arena) n += a.byteLength;
    return n;
  }

  private hashOf(s: number): number {
    return (this.recs[s >>> pageBits] as Int32Array)[(s & pageMask) * stride + fHash] as number;
  }

  private setField(s: number, field: number, v: number): void {
    (this.recs[s >>> pageBits] as Int32Array)[(s & pageMask) * stride + field] = v;
  }

  /** The table position holding `key`'s slot (th: its seeded table hash), or -1. */
  private find(key: string, th: number, wide: boolean): number {
    const table = this.table;
    const mask = table.length - 1;
    const h = th | 0;
    const tag = th >>> 28;
    for (let pos = th & mask; ; pos = (pos + 1) & mask) {
      const e = table[pos] as number;
      if (e === noSlot) return -1;
      if (e >>> tagShift !== tag) continue;
      const s = e & slotMask;
      const rec = this.recs[s >>> pageBits] as Int32Array;
      const o = (s & pageMask) * stride;
      if ((rec[o + fHash] as number) === h && this.keyEquals(rec[o + fKey] as number, key, wide)) return pos;
    }
  }

  /** Whether the arena key at `addr` is `key` (whose wideness the caller knows). */
  private keyEquals(addr: number, key: string, wide: boolean): boolean {
    const page = this.arena[addr >>> arenaPageBits] as Uint8Array;
    const head = readHead(page, addr);
    let p = unitsAt;
    const n = key.length;
    if (head !== ((n << 1) | (wide ? 1 : 0))) return false;
    if (wide) {
      for (let i = 0; i < n; i++, p += 2) if (((page[p] as number) | ((page[p + 1] as number) << 8)) !== key.charCodeAt(i)) return false;
    } else {
      for (let i = 0; i < n; i++) if ((page[p + i] as number) !== key.charCodeAt(i)) return false;
    }
    return true;
  }

  /** The key stored at arena address `addr`, as a string. */
  private keyAt(addr: number): string {
    const page = this.arena[addr >>> arenaPageBits] as Uint8Array;
    const head = readHead(page, addr);
    let p = unitsAt;
    const n = head >>> 1;
    const units: number[] = new Array<number>(n);
    if ((head & 1) === 1) for (let i = 0; i < n; i++, p += 2) units[i] = (page[p] as number) | ((page[p + 1] as number) << 8);
    else for (let i = 0; i < n; i++) units[i] = page[p + i] as number;
    return String.fromCharCode(...units);
  }

  /** Bytes `key` takes in the arena. */
  private static keyBytes(units: number, wide: boolean): number {
    const head = (units << 1) | (wide ? 1 : 0);
    return (head < 0x80 ? 1 : head < 0x4000 ? 2 : 3) + (wide ? 2 : 1) * units;
  }

  /** Room for `bytes` in the arena: an address whose page has that many bytes free from it. Throws before changing anything. */
  private reserve(bytes: number): number {
    const last = this.arena.length - 1;
    const page = this.arena[last] as Uint8Array;
    if (this.arenaPos + bytes <= page.length) return (last << arenaPageBits) | this.arenaPos;
    if (last === 0 && page.length < arenaPageBytes) {
      // The first page grows (by copying) until it is full size, so small trees stay small.
      let size = page.length;
      while (size < arenaPageBytes && size < this.arenaPos + bytes) size *= 2;
      if (this.arenaPos + bytes <= size) {
        const bigger = new Uint8Array(size);
        bigger.set(page);
        this.arena[0] = bigger;
        return this.arenaPos;
      }
    }
    if (this.arena.length >= arenaPagesMax) throw new HashTreeFullError(`key arena of ${arenaPagesMax} pages`);
    this.deadBytes += page.length - this.arenaPos;
    this.arena.push(new Uint8Array(arenaPageBytes));
    this.arenaPos = 0;
    return (last + 1) << arenaPageBits;
  }

  /** Writes `key` at `addr` (reserved for it) and advances the arena. */
  private writeKey(addr: number, key: string, wide: boolean): void {
    const page = this.arena[addr >>> arenaPageBits] as Uint8Array;
    const start = addr & arenaOffsetMask;
    let p = start;
    const n = key.length;
    let head = (n << 1) | (wide ? 1 : 0);
    while (head >= 0x80) {
      page[p++] = (head & 0x7f) | 0x80;
      head >>>= 7;
    }
    page[p++] = head;
    if (wide) {
      for (let i = 0; i < n; i++, p += 2) {
        const c = key.charCodeAt(i);
        page[p] = c & 0xff;
        page[p + 1] = c >>> 8;
      }
    } else {
      for (let i = 0; i < n; i++) page[p + i] = key.charCodeAt(i);
      p += n;
    }
    this.arenaPos = p;
    this.liveBytes += p - start;
  }

  /** A fresh slot for a key not in the tree, linked at the head of its leaf and entered in the table. */
  private insert(key: string, th: number, wide: boolean, leaf: number): number {
    if (key.length > treeKeyUnitsMax) throw new HashTreeKeyError(key.length);
    if (this.keys >= treeKeysMax) throw new HashTreeFullError(`${treeKeysMax} keys`);
    const addr = this.reserve(HashTree.keyBytes(key.length, wide));
    let s = this.freeHead;
    if (s !== noSlot) {
      this.freeHead = (this.recs[s >>> pageBits] as Int32Array)[(s & pageMask) * stride + fNext] as number;
    } else {
      s = this.slotsUsed++;
      this.ensurePage(s);
    }
    this.writeKey(addr, key, wide);
    const rec = this.recs[s >>> pageBits] as Int32Array;
    const o = (s & pageMask) * stride;
    const head = this.leafHead[leaf] as number;
    rec[o + fHash] = th;
    rec[o + fNext] = head;
    rec[o + fPrev] = noSlot;
    rec[o + fKey] = addr;
    if (head !== noSlot) this.setField(head, fPrev, s);
    this.leafHead[leaf] = s;
    this.keys++;
    if (this.partitions > 0) {
      const q = this.partitionOfLeaf(leaf);
      this.partKeys[q] = (this.partKeys[q] as number) + 1;
    }
    if (2 * this.keys > this.table.length) {
      this.growTable();
    } else {
      const table = this.table;
      const mask = table.length - 1;
      let pos = th & mask;
      while ((table[pos] as number) !== noSlot) pos = (pos + 1) & mask;
      table[pos] = ((th >>> 28) << tagShift) | s;
    }
    return s;
  }

  /** Unlinks slot `s` (at table position `pos`, in `leaf`) and frees it. */
  private removeAt(pos: number, s: number, leaf: number): void {
    const rec = this.recs[s >>> pageBits] as Int32Array;
    const o = (s & pageMask) * stride;
    const p = rec[o + fPrev] as number;
    const n = rec[o + fNext] as number;
    if (p === noSlot) this.leafHead[leaf] = n;
    else this.setField(p, fNext, n);
    if (n !== noSlot) this.setField(n, fPrev, p);
    const addr = rec[o + fKey] as number;
    const bytes = this.keyBytesAt(addr);
    this.liveBytes -= bytes;
    this.deadBytes += bytes;
    rec[o + fKey] = noSlot;
    rec[o + fNext] = this.freeHead;
    this.freeHead = s;
    this.keys--;
    if (this.partitions > 0) {
      const q = this.partitionOfLeaf(leaf);
      this.partKeys[q] = (this.partKeys[q] as number) - 1;
    }
    // Backward-shift deletion keeps linear probing free of tombstones.
    const table = this.table;
    const mask = table.length - 1;
    let hole = pos;
    for (let j = (hole + 1) & mask; ; j = (j + 1) & mask) {
      const t = table[j] as number;
      if (t === noSlot) break;
      const home = this.hashOf(t & slotMask) & mask;
      // t may fill the hole unless its home lies cyclically in (hole, j].
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        table[hole] = t;
        hole = j;
      }
    }
    table[hole] = noSlot;
    if (this.deadBytes > this.liveBytes && this.deadBytes >= arenaPageBytes) this.compactArena();
  }

  /** Bytes the arena key at `addr` takes. */
  private keyBytesAt(addr: number): number {
    const page = this.arena[addr >>> arenaPageBits] as Uint8Array;
    const head = readHead(page, addr);
    return HashTree.keyBytes(head >>> 1, (head & 1) === 1);
  }

  /** Copies the live keys into fresh, packed pages (O(live keys); at most half of the arena was live). */
  private compactArena(): void {
    const old = this.arena;
    const fresh: Uint8Array[] = [new Uint8Array(arenaPageBytes)];
    let pos = 0;
    for (let s = 0; s < this.slotsUsed; s++) {
      const rec = this.recs[s >>> pageBits] as Int32Array;
      const o = (s & pageMask) * stride;
      const addr = rec[o + fKey] as number;
      if (addr === noSlot) continue;
      const bytes = this.keyBytesAt(addr);
      if (pos + bytes > arenaPageBytes) {
        fresh.push(new Uint8Array(arenaPageBytes));
        pos = 0;
      }
      const from = addr & arenaOffsetMask;
      const last = fresh.length - 1;
      (fresh[last] as Uint8Array).set((old[addr >>> arenaPageBits] as Uint8Array).subarray(from, from + bytes), pos);
      rec[o + fKey] = (last << arenaPageBits) | pos;
      pos += bytes;
    }
    this.arena = fresh;
    this.arenaPos = pos;
    this.deadBytes = 0;
  }

  /** Makes room for slot `s` (= slotsUsed - 1): doubles the first page up to full size, then adds pages. */
  private ensurePage(s: number): void {
    const p = s >>> pageBits;
    if (p < this.recs.length) {
      const rec = this.recs[p] as Int32Array;
      if ((s & pageMask) * stride < rec.length) return;
      const bigger = new Int32Array(Math.min(pageSlots, 2 * (rec.length / stride)) * stride);
      bigger.set(rec);
      this.recs[p] = bigger;
      return;
    }
    this.recs.push(new Int32Array(pageSlots * stride));
  }

  /** Doubles the table (load stays <= 1/2) and re-enters every live slot. */
  private growTable(): void {
    const table = new Int32Array(2 * this.table.length).fill(noSlot);
    const mask = table.length - 1;
    for (let s = 0; s < this.slotsUsed; s++) {
      const rec = this.recs[s >>> pageBits] as Int32Array;
      const o = (s & pageMask) * stride;
      if ((rec[o + fKey] as number) === noSlot) continue;
      const h = rec[o + fHash] as number;
      let pos = h & mask;
      while ((table[pos] as number) !== noSlot) pos = (pos + 1) & mask;
      table[pos] = ((h >>> 28) << tagShift) | s;
    }
    this.table = table;
  }
}
