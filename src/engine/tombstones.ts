// Bookkeeping of the engine's deleted-key records (tombstones), so that how many there are, what
// they hold and how old the oldest is can be read at any moment without a pass over the keyspace
// (for metrics and for the cluster's collection of records, see Engine.collect).
//
// Per record it stores nothing of its own: an absent entry is always a state object (a counter
// without rows is never kept compact), so its p and n columns, which only compact counters use,
// hold when it became absent and its encoded size, flagged Flag.Tomb (a Map per record measured
// ~0.9 us per delete in Bun, more than the delete itself). The oldest is found through a min-heap
// of (ms, index) with lazy deletion: an item whose entry stopped being absent (written again,
// collected) or became absent again later is dropped when it reaches the top, and leftovers are
// filtered out once they outnumber the live items.

import { Flag, type KeyTable } from "./keytable.ts";

/** Heap items tolerated beyond twice the live ones (after the last filtering) before filtering. */
const heapSlackItemsMax = 1024;

export interface TombstoneStats {
  /** Absent (deleted, not yet collected) keys. */
  count: number;
  /** Estimated bytes their records hold: each one's encoded KeyState size, as of its last change. */
  bytes: number;
  /** When the oldest of them became absent (the nowMs of that delete or merge), or null if there are none. */
  oldestMs: number | null;
}

export class Tombstones {
  count = 0;
  private bytes = 0;
  private heapMs: number[] = [];
  private heapIndex: number[] = [];
  private heapItemsMax = heapSlackItemsMax;

  constructor(private readonly t: KeyTable) {}

  /** Entry i (a state object) became absent at ms, its record encoding to `bytes`. */
  add(i: number, ms: number, bytes: number): void {
    const t = this.t;
    t.flags[i] = (t.flags[i] as number) | Flag.Tomb;
    t.p[i] = ms;
    t.n[i] = bytes;
    this.count++;
    this.bytes += bytes;
    this.push(ms, i);
    if (this.heapMs.length > this.heapItemsMax) this.filter();
  }

  /** Entry i is no longer a tombstone (written again, or collected): before its p and n columns are reused. */
  release(i: number): void {
    const t = this.t;
    const f = t.flags[i] as number;
    if ((f & Flag.Tomb) === 0) return;
    t.flags[i] = f & ~Flag.Tomb;
    this.count--;
    this.bytes -= t.n[i] as number;
    t.p[i] = 0;
    t.n[i] = 0;
  }

  /** Absent entry i changed (a merge into its record); it now encodes to `bytes`. */
  resize(i: number, bytes: number): void {
    const t = this.t;
    if (((t.flags[i] as number) & Flag.Tomb) === 0) return;
    this.bytes += bytes - (t.n[i] as number);
    t.n[i] = bytes;
  }

  stats(): TombstoneStats {
    while (this.heapMs.length > 0 && !this.live(0)) this.pop();
    return { count: this.count, bytes: this.bytes, oldestMs: this.heapMs.length > 0 ? (this.heapMs[0] as number) : null };
  }

  /** After a compaction of the key table (entries moved, p and n with them): the heap anew. */
  rebuild(): void {
    const t = this.t;
    this.heapMs = [];
    this.heapIndex = [];
    for (let i = 0; i < t.count; i++) if (((t.flags[i] as number) & Flag.Tomb) !== 0) this.push(t.p[i] as number, i);
    this.heapItemsMax = 2 * this.heapMs.length + heapSlackItemsMax;
  }

  /** Is heap item k its entry's current tombstone? */
  private live(k: number): boolean {
    const i = this.heapIndex[k] as number;
    return ((this.t.flags[i] as number) & Flag.Tomb) !== 0 && this.t.p[i] === this.heapMs[k];
  }

  /** Drops the leftover items (O(heap), not O(table)). */
  private filter(): void {
    const ms = this.heapMs;
    const index = this.heapIndex;
    this.heapMs = [];
    this.heapIndex = [];
    const t = this.t;
    for (let k = 0; k < ms.length; k++) {
      const i = index[k] as number;
      if (((t.flags[i] as number) & Flag.Tomb) !== 0 && t.p[i] === ms[k]) this.push(ms[k] as number, i);
    }
    this.heapItemsMax = 2 * this.heapMs.length + heapSlackItemsMax;
  }

  private push(ms: number, i: number): void {
    const hm = this.heapMs;
    const hi = this.heapIndex;
    let k = hm.length;
    hm.push(ms);
    hi.push(i);
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if ((hm[parent] as number) <= ms) break;
      hm[k] = hm[parent] as number;
      hi[k] = hi[parent] as number;
      k = parent;
    }
    hm[k] = ms;
    hi[k] = i;
  }

  private pop(): void {
    const hm = this.heapMs;
    const hi = this.heapIndex;
    const lastMs = hm.pop() as number;
    const lastIndex = hi.pop() as number;
    const n = hm.length;
    if (n === 0) return;
    let k = 0;
    for (;;) {
      let c = 2 * k + 1;
      if (c >= n) break;
      if (c + 1 < n && (hm[c + 1] as number) < (hm[c] as number)) c++;
      if ((hm[c] as number) >= lastMs) break;
      hm[k] = hm[c] as number;
      hi[k] = hi[c] as number;
      k = c;
    }
    hm[k] = lastMs;
    hi[k] = lastIndex;
  }
}
