// A fixed-fanout hash tree over per-key 64-bit digests, so that two replicas find their differing keys in O(d log N).
//
// Keys are placed in one of 16^depth leaves by a hash of the key. A node's hash is the XOR
// of mix(key, digest) over the keys below it, so a key's change is applied to the depth + 1
// nodes on its path by XOR-ing out the old contribution and XOR-ing in the new one.

export const treeFanout = 16;
const fanoutBits = 4;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Two independent 32-bit hashes of a key's UTF-16 code units (the same on every node). */
export function keyHash(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  return [fmix32(a), fmix32(b ^ Math.imul(a, 0x9e3779b1))];
}

/** Splits a 64-bit digest into u32 halves without allocating bigints. */
const splitView = new DataView(new ArrayBuffer(8));
const u64Max = 2n ** 64n - 1n;

/** The 64-bit contribution of one (key, digest) pair, as lo/hi halves. */
function entryHash(k1: number, k2: number, digest: bigint): [number, number] {
  splitView.setBigUint64(0, digest, true);
  const dLo = splitView.getUint32(0, true);
  const dHi = splitView.getUint32(4, true);
  const lo = fmix32(k1 ^ dLo ^ Math.imul(dHi, 0x9e3779b1));
  const hi = fmix32(k2 ^ dHi ^ Math.imul(lo, 0x85ebca6b) ^ dLo);
  return [lo, hi];
}

export class HashTree {
  /** levels[L] holds 16^L nodes as (lo, hi) pairs of u32. */
  private readonly levels: Uint32Array[] = [];
  private readonly leaves: Array<Map<string, bigint> | undefined>;
  private keys = 0;

  constructor(readonly depth: number) {
    if (!Number.isInteger(depth) || depth < 1 || depth > 6) throw new RangeError(`hash tree depth ${depth} not in 1..6`);
    for (let l = 0; l <= depth; l++) this.levels.push(new Uint32Array(2 * treeFanout ** l));
    this.leaves = new Array<Map<string, bigint> | undefined>(treeFanout ** depth);
  }

  get leafCount(): number {
    return treeFanout ** this.depth;
  }

  get keyCount(): number {
    return this.keys;
  }

  leafOf(key: string): number {
    return keyHash(key)[0] >>> (32 - fanoutBits * this.depth);
  }

  digestOf(key: string): bigint | undefined {
    return this.leaves[this.leafOf(key)]?.get(key);
  }

  /** Records a key's new digest; undefined removes the key. O(depth). */
  set(key: string, digest: bigint | undefined): void {
    if (digest !== undefined && (digest < 0n || digest > u64Max)) digest = BigInt.asUintN(64, digest);
    const [k1, k2] = keyHash(key);
    const leaf = k1 >>> (32 - fanoutBits * this.depth);
    let map = this.leaves[leaf];
    const old = map?.get(key);
    if (old === digest) return;
    let dLo = 0;
    let dHi = 0;
    if (old !== undefined) {
      const [lo, hi] = entryHash(k1, k2, old);
      dLo ^= lo;
      dHi ^= hi;
    }
    if (digest !== undefined) {
      const [lo, hi] = entryHash(k1, k2, digest);
      dLo ^= lo;
      dHi ^= hi;
      if (map === undefined) {
        map = new Map();
        this.leaves[leaf] = map;
      }
      if (old === undefined) this.keys++;
      map.set(key, digest);
    } else if (map !== undefined) {
      map.delete(key);
      this.keys--;
      if (map.size === 0) this.leaves[leaf] = undefined;
    }
    for (let l = this.depth; l >= 0; l--) {
      const idx = leaf >>> (fanoutBits * (this.depth - l));
      const level = this.levels[l] as Uint32Array;
      level[2 * idx] = ((level[2 * idx] as number) ^ dLo) >>> 0;
      level[2 * idx + 1] = ((level[2 * idx + 1] as number) ^ dHi) >>> 0;
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

  /** The keys of one leaf with their digests. */
  leafEntries(leaf: number): Array<{ key: string; digest: bigint }> {
    const map = this.leaves[leaf];
    if (map === undefined) return [];
    const out: Array<{ key: string; digest: bigint }> = [];
    for (const [key, digest] of map) out.push({ key, digest });
    return out;
  }
}
