// A search index over the sorted member names of a set or a hash (memberKey strings, one char
// per byte, so string order is bytewise order): for each name, a number made of its six chars
// that follow the prefix every name shares, in a Float64Array. Binary search runs on the numbers
// and compares strings only where numbers tie.
//
// Why: searching the sorted names was the largest single cost of an SADD or HSET (13-17% of the
// engine's time for a 20-byte name into keys of ~180 members, `bun --cpu-prof-md`): each step
// of the binary search compared two strings scattered over the heap (two or three cache misses
// each), and names that share a long prefix (`element:000000123456`, `user:1234:...`) make the
// comparison walk that prefix every time. Numbers in one array are contiguous and compare in
// one instruction. Cost: 8 bytes per name (the array is exactly sized when built, then grows by
// doubling), and only for sets and hashes of nameIndexMin names or more.
//
// The digest d(name) = the chars [p, p + 6) of name as base-256 digits (a missing char counts 0)
// is monotonic for names that start with the shared prefix (length p): a < b implies
// d(a) <= d(b). So every name whose digest is below d(key) sorts before key and every one whose
// digest is above sorts after it; only names with d(name) = d(key) need a string comparison.
// A key that does not start with the shared prefix is searched with strings alone.

import { assert } from "./errors.ts";

/** Sets and hashes with fewer names search the strings directly (a handful of comparisons). */
export const nameIndexMin = 16;
/** Chars per digest: 6 base-256 digits are 48 bits, exact in a double. */
const digestChars = 6;

function digest(name: string, p: number): number {
  let d = 0;
  // memberKey strings hold one char per byte (0-255), so each char is one base-256 digit.
  for (let k = p; k < p + digestChars; k++) d = d * 256 + (k < name.length ? name.charCodeAt(k) : 0);
  return d;
}

/** The length of the prefix `a` and `b` share, at most `max`. */
function sharedPrefix(a: string, b: string, max: number): number {
  const n = Math.min(max, a.length, b.length);
  let k = 0;
  while (k < n && a.charCodeAt(k) === b.charCodeAt(k)) k++;
  return k;
}

/**
 * Index of `key` in sorted `names`, or ~insertion point, looking only in [lo, hi) (the caller
 * knows every name before lo sorts before key and every one from hi on after it). One string
 * comparison per step and an equality test at the end: a relational string compare is the
 * costly step (40-200 ns each, the strings being scattered in memory), so not two.
 */
export function searchNames(names: readonly string[], key: string, lo = 0, hi = names.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((names[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo < names.length && names[lo] === key ? lo : ~lo;
}

export class NameIndex {
  private constructor(
    /** The names' shared prefix length (every indexed name starts with prefix). */
    private readonly p: number,
    private readonly prefix: string,
    private digests: Float64Array,
    private n: number,
  ) {}

  /** The index of `names` (sorted, distinct). */
  static build(names: readonly string[]): NameIndex {
    const n = names.length;
    let p = 0;
    if (n > 0) {
      // For sorted names the prefix all share is the one the first and the last share.
      const first = names[0] as string;
      p = sharedPrefix(first, names[n - 1] as string, first.length);
    }
    const prefix = n > 0 ? (names[0] as string).slice(0, p) : "";
    const digests = new Float64Array(Math.max(n, 1));
    for (let i = 0; i < n; i++) digests[i] = digest(names[i] as string, p);
    return new NameIndex(p, prefix, digests, n);
  }

  private covers(key: string): boolean {
    return key.length >= this.p && key.startsWith(this.prefix);
  }

  /**
   * Index of `key` in `names` (the sorted names this index was kept for), or ~insertion point;
   * searches from `from` on. The same answer as a binary search over the strings.
   */
  find(names: readonly string[], key: string, from: number): number {
    // A stale index would answer wrong indexes: every change of the names must reach it.
    assert(this.n === names.length, "NameIndex: the names changed behind the index");
    let lo = from;
    let hi = this.n;
    if (this.covers(key)) {
      const d = digest(key, this.p);
      const ds = this.digests;
      // Lower bound of d, then the end of its run: names outside it need no string comparison.
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((ds[mid] as number) < d) lo = mid + 1;
        else hi = mid;
      }
      // Upper bound of d from there (a binary search too: many names can share a digest).
      let top = this.n;
      hi = lo;
      while (hi < top) {
        const mid = (hi + top) >>> 1;
        if ((ds[mid] as number) <= d) hi = mid + 1;
        else top = mid;
      }
    }
    return searchNames(names, key, lo, hi);
  }

  /** `key` was inserted at i (names.splice(i, 0, key)); false when the index no longer fits the names (drop it). */
  inserted(i: number, key: string): boolean {
    if (!this.covers(key)) return false;
    if (this.n + 1 > this.digests.length) {
      const next = new Float64Array(this.digests.length * 2);
      next.set(this.digests.subarray(0, this.n));
      this.digests = next;
    }
    this.digests.copyWithin(i + 1, i, this.n);
    this.digests[i] = digest(key, this.p);
    this.n++;
    return true;
  }

  /** The name at i was removed (names.splice(i, 1)). The shared prefix stays shared by the rest. */
  removed(i: number): void {
    this.digests.copyWithin(i, i + 1, this.n);
    this.n--;
  }

  /** Names indexed (a test figure: it must equal the names' count). */
  get size(): number {
    return this.n;
  }
}
