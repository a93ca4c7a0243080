// A fixed-fanout hash tree over per-key 64-bit digests, so that two replicas find their differing keys in O(d log N).
//
// Keys are placed in one of 16^depth leaves by a hash of the key. A node's hash is the XOR
// of mix(key, digest) over the keys below it, so a key's change is applied to the depth + 1
// nodes on its path by XOR-ing out the old contribution and XOR-ing in the new one.
//
// Memory: a node holds one entry per key, so nothing per key is a heap object except the
// key string itself. Each key gets a slot number; the slot's digest halves and its links in
// its leaf's list live in typed arrays, and an open-addressing table of slot numbers finds a
// key's slot. About 30-45 bytes per key besides the string, no bigint per update.

export const treeFanout = 16;
const fanoutBits = 4;
export const treeDepthMin = 1;
export const treeDepthMax = 6;
/** Slots (keys) one tree holds at most: typed-array indices stay int32 and the table a power of two. */
export const treeKeysMax = 1 << 29;

const slotsInitial = 64;
const noSlot = -1;

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

  // Per slot. A free slot has key undefined and is linked through `next` from freeHead.
  private slotKey: Array<string | undefined> = [];
  private digestLo = new Uint32Array(slotsInitial);
  private digestHi = new Uint32Array(slotsInitial);
  /** The key's second hash, which places it in the table: probes and rehashes never touch the string. */
  private slotHash = new Uint32Array(slotsInitial);
  private next = new Int32Array(slotsInitial);
  private prev = new Int32Array(slotsInitial);
  private freeHead = noSlot;
  private slotsUsed = 0;

  /** Open addressing (linear probing) by the key's second hash; entries are slots, noSlot = empty. */
  private table = new Int32Array(2 * slotsInitial).fill(noSlot);
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
    return joinDigest(this.digestLo[s] as number, this.digestHi[s] as number);
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
      entryHashInto(k1, k2, this.digestLo[s] as number, this.digestHi[s] as number);
      dLo = ehLo;
      dHi = ehHi;
      this.removeAt(pos, s, leaf);
    } else {
      splitView.setBigUint64(0, digest, true);
      const nLo = splitView.getUint32(0, true);
      const nHi = splitView.getUint32(4, true);
      let s: number;
      if (pos >= 0) {
        s = this.table[pos] as number;
        const oLo = this.digestLo[s] as number;
        const oHi = this.digestHi[s] as number;
        if (oLo === nLo && oHi === nHi) return;
        entryHashInto(k1, k2, oLo, oHi);
        dLo = ehLo;
        dHi = ehHi;
      } else {
        s = this.insert(key, k2, leaf);
      }
      this.digestLo[s] = nLo;
      this.digestHi[s] = nHi;
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
    for (let s = this.leafHead[leaf] as number; s !== noSlot; s = this.next[s] as number) {
      out.push({ key: this.slotKey[s] as string, digest: joinDigest(this.digestLo[s] as number, this.digestHi[s] as number) });
    }
    return out;
  }

  /** The table position holding `key`'s slot, or -1. */
  private find(key: string, k2: number): number {
    const table = this.table;
    const mask = table.length - 1;
    for (let pos = k2 & mask; ; pos = (pos + 1) & mask) {
      const s = table[pos] as number;
      if (s === noSlot) return -1;
      if ((this.slotHash[s] as number) === k2 && this.slotKey[s] === key) return pos;
    }
  }

  /** A fresh slot for a key not in the tree, linked at the head of its leaf and entered in the table. */
  private insert(key: string, k2: number, leaf: number): number {
    if (this.keys >= treeKeysMax) throw new HashTreeFullError();
    let s = this.freeHead;
    if (s !== noSlot) {
      this.freeHead = this.next[s] as number;
      this.slotKey[s] = key;
    } else {
      s = this.slotsUsed++;
      if (s >= this.digestLo.length) this.growSlots();
      this.slotKey.push(key);
    }
    this.slotHash[s] = k2;
    const head = this.leafHead[leaf] as number;
    this.next[s] = head;
    this.prev[s] = noSlot;
    if (head !== noSlot) this.prev[head] = s;
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
    const p = this.prev[s] as number;
    const n = this.next[s] as number;
    if (p === noSlot) this.leafHead[leaf] = n;
    else this.next[p] = n;
    if (n !== noSlot) this.prev[n] = p;
    this.slotKey[s] = undefined;
    this.next[s] = this.freeHead;
    this.freeHead = s;
    this.keys--;
    // Backward-shift deletion keeps linear probing free of tombstones.
    const table = this.table;
    const mask = table.length - 1;
    let hole = pos;
    for (let j = (hole + 1) & mask; ; j = (j + 1) & mask) {
      const t = table[j] as number;
      if (t === noSlot) break;
      const home = (this.slotHash[t] as number) & mask;
      // t may fill the hole unless its home lies cyclically in (hole, j].
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        table[hole] = t;
        hole = j;
      }
    }
    table[hole] = noSlot;
  }

  /** Slot arrays grow by half, so a tree of n keys holds at most ~1.5n slots. */
  private growSlots(): void {
    const cap = Math.min(treeKeysMax, Math.max(slotsInitial, Math.ceil(this.digestLo.length * 1.5)));
    const grow = <T extends Uint32Array | Int32Array>(old: T, fresh: T): T => {
      fresh.set(old);
      return fresh;
    };
    this.digestLo = grow(this.digestLo, new Uint32Array(cap));
    this.digestHi = grow(this.digestHi, new Uint32Array(cap));
    this.slotHash = grow(this.slotHash, new Uint32Array(cap));
    this.next = grow(this.next, new Int32Array(cap));
    this.prev = grow(this.prev, new Int32Array(cap));
  }

  /** Doubles the table (load stays <= 1/2) and re-enters every live slot. */
  private growTable(): void {
    const table = new Int32Array(2 * this.table.length).fill(noSlot);
    const mask = table.length - 1;
    for (let s = 0; s < this.slotsUsed; s++) {
      if (this.slotKey[s] === undefined) continue;
      let pos = (this.slotHash[s] as number) & mask;
      while ((table[pos] as number) !== noSlot) pos = (pos + 1) & mask;
      table[pos] = s;
    }
    this.table = table;
  }
}
