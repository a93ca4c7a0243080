// Bookkeeping of the engine's deleted-key records (tombstones), so that how many there are, what
// they hold and how old the oldest is can be read at any moment without a pass over the keyspace
// (for metrics and for the cluster's collection of records, see Engine.collect).
//
// Only absent entries are tracked, in Maps keyed by entry index: a live key costs nothing here,
// a tombstone a few dozen bytes besides its record. The oldest is found through a min-heap of
// (ms, index) with lazy deletion: an entry that stopped being absent (written again, collected)
// or became absent again later leaves its old heap item behind, which is dropped when it
// reaches the top; the heap is rebuilt when such leftovers outnumber the live items.

/** Leftover heap items tolerated beyond twice the live tombstones before the heap is rebuilt. */
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
  /** Entry index -> ms it became absent. */
  private sinceMs = new Map<number, number>();
  /** Entry index -> its record's encoded size. */
  private sizes = new Map<number, number>();
  private bytes = 0;
  private heapMs: number[] = [];
  private heapIndex: number[] = [];

  get count(): number {
    return this.sinceMs.size;
  }

  /** Entry i became absent at ms, its record encoding to `bytes`. */
  add(i: number, ms: number, bytes: number): void {
    this.sinceMs.set(i, ms);
    this.sizes.set(i, bytes);
    this.bytes += bytes;
    this.push(ms, i);
    if (this.heapMs.length > 2 * this.sinceMs.size + heapSlackItemsMax) this.rebuildHeap();
  }

  /** Entry i is no longer absent (written again, or collected). */
  remove(i: number): void {
    const b = this.sizes.get(i);
    if (b === undefined) return;
    this.bytes -= b;
    this.sizes.delete(i);
    this.sinceMs.delete(i);
  }

  /** Absent entry i changed (a merge into its record); it now encodes to `bytes`. */
  resize(i: number, bytes: number): void {
    const b = this.sizes.get(i);
    if (b === undefined) return;
    this.bytes += bytes - b;
    this.sizes.set(i, bytes);
  }

  stats(): TombstoneStats {
    while (this.heapMs.length > 0 && this.sinceMs.get(this.heapIndex[0] as number) !== this.heapMs[0]) this.pop();
    return { count: this.sinceMs.size, bytes: this.bytes, oldestMs: this.heapMs.length > 0 ? (this.heapMs[0] as number) : null };
  }

  /** After a compaction of the key table: old index -> new index (none is removed while absent). */
  remap(newIndex: Int32Array): void {
    const sinceMs = new Map<number, number>();
    const sizes = new Map<number, number>();
    for (const [i, ms] of this.sinceMs) sinceMs.set(newIndex[i] as number, ms);
    for (const [i, b] of this.sizes) sizes.set(newIndex[i] as number, b);
    this.sinceMs = sinceMs;
    this.sizes = sizes;
    this.rebuildHeap();
  }

  private rebuildHeap(): void {
    this.heapMs = [];
    this.heapIndex = [];
    for (const [i, ms] of this.sinceMs) this.push(ms, i);
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
