// A fixed-fanout hash tree over per-key 64-bit digests, so that two replicas find their differing keys in O(d log N).
//
// Keys are placed in one of 16^depth leaves by a hash of the key. A node's hash is the XOR
// of mix(key, digest) over the keys below it, so a key's change is applied to the depth + 1
// nodes on its path by XOR-ing out the old contribution and XOR-ing in the new one.
//
// Memory: a node holds one entry per key, so nothing per key is a heap object except the
// key string itself. Each key gets a slot number; the slot's record (digest halves, key
// hash, links in its leaf's list) lives in fixed-size pages of an Int32Array, and an
// open-addressing table of slot numbers finds a key's slot. About 35 bytes per key besides
// the string, no bigint per update, and growing copies only the table.

export const treeFanout = 16;
const fanoutBits = 4;
export const treeDepthMin = 1;
export const treeDepthMax = 6;
/** Slots (keys) one tree holds at most: typed-array indices stay int32 and the table a power of two. */
export const treeKeysMax = 1 << 29;

const noSlot = -1;
/** Slots per page; the first page starts small and doubles up to this, later pages are full size. */
const pageBits = 14;
const pageSlots = 1 << pageBits;
const pageMask = pageSlots - 1;
const firstPageSlots = 64;
// A slot's record: fields at these offsets, `stride` int32s apart.
const fLo = 0;
const fHi = 1;
/** The key's second hash, which places it in the table: probes and rehashes never touch the string. */
const fHash = 2;
const fNext = 3;
const fPrev = 4;
const stride = 5;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// The last keyHashInto result; module scope so the hot path allocates no tuple.
let hk1 = 0;
let hk2 = 0;

function keyHashInto(key: string): void {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  hk1 = fmix32(a);
  hk2 = fmix32(b ^ Math.imul(a, 0x9e3779b1));
}

/** Two independent 32-bit hashes of a key's UTF-16 code units (the same on every node). */
export function keyHash(key: string): [number, number] {
  keyHashInto(key);
  return [hk1, hk2];
}

/** Splits a 64-bit digest into u32 halves (and joins them back) without allocating bigints. */
const splitView = new DataView(new ArrayBuffer(8));

// The last entryHashInto result.
let ehLo = 0;
let ehHi = 0;

/** The 64-bit contribution of one (key, digest) pair, from the key's hashes and the digest's halves. */
function entryHashInto(k1: number, k2: number, dLo: number, dHi: number): void {
  const lo = fmix32(k1 ^ dLo ^ Math.imul(dHi, 0x9e3779b1));
  ehLo = lo;
  ehHi = fmix32(k2 ^ dHi ^ Math.imul(lo, 0x85ebca6b) ^ dLo);
}

function joinDigest(lo: number, hi: number): bigint {
  splitView.setUint32(0, lo, true);
  splitView.setUint32(4, hi, true);
  return splitView.getBigUint64(0, true);
}

export class HashTreeFullError extends Error {
  constructor() {
    super(`hash tree holds ${treeKeysMax} keys already`);
    this.name = "HashTreeFullError";
  }
}

export class HashTree {
  /** levels[L] holds 16^L nodes as (lo, hi) pairs of u32. */
  private readonly levels: Uint32Array[] = [];
  private readonly leafShift: number;
  /** First slot of each leaf's list, or noSlot. */
  private readonly leafHead: Int32Array;

  // Slot s lives in page s >>> pageBits at index s & pageMask. A free slot has key undefined
  // and is linked through its next field from freeHead.
  private readonly recs: Int32Array[] = [new Int32Array(firstPageSlots * stride)];
  private readonly keyPages: Array<Array<string | undefined>> = [new Array<string | undefined>(firstPageSlots)];
  private freeHead = noSlot;
  private slotsUsed = 0;

  /** Open addressing (linear probing) by the key's second hash; entries are slots, noSlot = empty. */
  private table = new Int32Array(2 * firstPageSlots).fill(noSlot);
  private keys = 0;

  constructor(readonly depth: number) {
    if (!Number.isInteger(depth) || depth < treeDepthMin || depth > treeDepthMax) {
      throw new RangeError(`hash tree depth ${depth} not in ${treeDepthMin}..${treeDepthMax}`);
    }
    for (let l = 0; l <= depth; l++) this.levels.push(new Uint32Array(2 * treeFanout ** l));
    this.leafShift = 32 - fanoutBits * depth;
    this.leafHead = new Int32Array(treeFanout ** depth).fill(noSlot);
  }

  get leafCount(): number {
    return treeFanout ** this.depth;
  }

  get keyCount(): number {
    return this.keys;
  }

  leafOf(key: string): number {
    keyHashInto(key);
    return hk1 >>> this.leafShift;
  }

  digestOf(key: string): bigint | undefined {
    keyHashInto(key);
    const pos = this.find(key, hk2);
    if (pos < 0) return undefined;
    const s = this.table[pos] as number;
    const rec = this.recs[s >>> pageBits] as Int32Array;
    const o = (s & pageMask) * stride;
    return joinDigest(rec[o + fLo] as number, rec[o + fHi] as number);
  }

  /** Records a key's new digest (taken modulo 2^64); undefined removes the key. O(depth) amortised. */
  set(key: string, digest: bigint | undefined): void {
    keyHashInto(key);
    const k1 = hk1;
    const k2 = hk2;
    const leaf = k1 >>> this.leafShift;
    const pos = this.find(key, k2);
    let dLo = 0;
    let dHi = 0;
    if (digest === undefined) {
      if (pos < 0) return;
      const s = this.table[pos] as number;
      const rec = this.recs[s >>> pageBits] as Int32Array;
      const o = (s & pageMask) * stride;
      entryHashInto(k1, k2, rec[o + fLo] as number, rec[o + fHi] as number);
      dLo = ehLo;
      dHi = ehHi;
      this.removeAt(pos, s, leaf);
    } else {
      splitView.setBigUint64(0, digest, true);
      const nLo = splitView.getInt32(0, true);
      const nHi = splitView.getInt32(4, true);
      let s: number;
      if (pos >= 0) {
        s = this.table[pos] as number;
        const rec = this.recs[s >>> pageBits] as Int32Array;
        const o = (s & pageMask) * stride;
        const oLo = rec[o + fLo] as number;
        const oHi = rec[o + fHi] as number;
        if (oLo === nLo && oHi === nHi) return;
        entryHashInto(k1, k2, oLo, oHi);
        dLo = ehLo;
        dHi = ehHi;
      } else {
        s = this.insert(key, k2, leaf);
      }
      const rec = this.recs[s >>> pageBits] as Int32Array;
      const o = (s & pageMask) * stride;
      rec[o + fLo] = nLo;
      rec[o + fHi] = nHi;
      entryHashInto(k1, k2, nLo, nHi);
      dLo ^= ehLo;
      dHi ^= ehHi;
    }
    const depth = this.depth;
    for (let l = depth; l >= 0; l--) {
      const i = 2 * (leaf >>> (fanoutBits * (depth - l)));
      const level = this.levels[l] as Uint32Array;
      level[i] = (level[i] as number) ^ dLo;
      level[i + 1] = (level[i + 1] as number) ^ dHi;
    }
  }

  /** The hash of node `index` at `level` (0 = root) as lo/hi u32 halves. */
  hash(level: number, index: number): [number, number] {
    const arr = this.levels[level];
    if (arr === undefined || index < 0 || 2 * index + 1 >= arr.length) throw new RangeError(`no tree node ${level}/${index}`);
    return [arr[2 * index] as number, arr[2 * index + 1] as number];
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
      out.push({ key: this.keyOf(s), digest: joinDigest(rec[o + fLo] as number, rec[o + fHi] as number) });
      s = rec[o + fNext] as number;
    }
    return out;
  }

  private keyOf(s: number): string {
    return (this.keyPages[s >>> pageBits] as Array<string | undefined>)[s & pageMask] as string;
  }

  private hashOf(s: number): number {
    return (this.recs[s >>> pageBits] as Int32Array)[(s & pageMask) * stride + fHash] as number;
  }

  private link(s: number, field: number, to: number): void {
    (this.recs[s >>> pageBits] as Int32Array)[(s & pageMask) * stride + field] = to;
  }

  /** The table position holding `key`'s slot, or -1. */
  private find(key: string, k2: number): number {
    const table = this.table;
    const mask = table.length - 1;
    const h = k2 | 0;
    for (let pos = k2 & mask; ; pos = (pos + 1) & mask) {
      const s = table[pos] as number;
      if (s === noSlot) return -1;
      if (this.hashOf(s) === h && this.keyOf(s) === key) return pos;
    }
  }

  /** A fresh slot for a key not in the tree, linked at the head of its leaf and entered in the table. */
  private insert(key: string, k2: number, leaf: number): number {
    if (this.keys >= treeKeysMax) throw new HashTreeFullError();
    let s = this.freeHead;
    if (s !== noSlot) {
      this.freeHead = (this.recs[s >>> pageBits] as Int32Array)[(s & pageMask) * stride + fNext] as number;
    } else {
      s = this.slotsUsed++;
      this.ensurePage(s);
    }
    (this.keyPages[s >>> pageBits] as Array<string | undefined>)[s & pageMask] = key;
    const rec = this.recs[s >>> pageBits] as Int32Array;
    const o = (s & pageMask) * stride;
    const head = this.leafHead[leaf] as number;
    rec[o + fHash] = k2;
    rec[o + fNext] = head;
    rec[o + fPrev] = noSlot;
    if (head !== noSlot) this.link(head, fPrev, s);
    this.leafHead[leaf] = s;
    this.keys++;
    if (2 * this.keys > this.table.length) {
      this.growTable();
    } else {
      const table = this.table;
      const mask = table.length - 1;
      let pos = k2 & mask;
      while ((table[pos] as number) !== noSlot) pos = (pos + 1) & mask;
      table[pos] = s;
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
    else this.link(p, fNext, n);
    if (n !== noSlot) this.link(n, fPrev, p);
    (this.keyPages[s >>> pageBits] as Array<string | undefined>)[s & pageMask] = undefined;
    rec[o + fNext] = this.freeHead;
    this.freeHead = s;
    this.keys--;
    // Backward-shift deletion keeps linear probing free of tombstones.
    const table = this.table;
    const mask = table.length - 1;
    let hole = pos;
    for (let j = (hole + 1) & mask; ; j = (j + 1) & mask) {
      const t = table[j] as number;
      if (t === noSlot) break;
      const home = this.hashOf(t) & mask;
      // t may fill the hole unless its home lies cyclically in (hole, j].
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        table[hole] = t;
        hole = j;
      }
    }
    table[hole] = noSlot;
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
    this.keyPages.push(new Array<string | undefined>(pageSlots));
  }

  /** Doubles the table (load stays <= 1/2) and re-enters every live slot. */
  private growTable(): void {
    const table = new Int32Array(2 * this.table.length).fill(noSlot);
    const mask = table.length - 1;
    for (let s = 0; s < this.slotsUsed; s++) {
      if (this.keyOf(s) === undefined) continue;
      let pos = this.hashOf(s) & mask;
      while ((table[pos] as number) !== noSlot) pos = (pos + 1) & mask;
      table[pos] = s;
    }
    this.table = table;
  }
}
