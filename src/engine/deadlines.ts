// Which keys come due next: a min-heap of (deadline, key) that the expiry sweep pops from, so a
// tick's work is bounded by what is due, never by how many keys carry a deadline.
//
// Entries are hints, checked against the key's state when popped (Engine.expireDue): a deadline
// moved later is not re-filed when it moves (the stale entry re-files it when it comes up), one
// moved earlier is filed again, and one cleared or executed simply finds nothing to do. So the
// heap holds at most one entry per key with a deadline plus one per deadline moved earlier and
// not yet come up.

export class DeadlineIndex {
  private at: number[] = [];
  private keys: string[] = [];

  get size(): number {
    return this.at.length;
  }

  /** The earliest deadline filed, or Infinity. */
  peekMs(): number {
    return this.at.length === 0 ? Infinity : (this.at[0] as number);
  }

  push(atMs: number, key: string): void {
    this.at.push(atMs);
    this.keys.push(key);
    let i = this.at.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.at[parent] as number) <= atMs) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /**
   * Calls visit(key) for every entry filed at or before nowMs (stale ones included), without
   * removing any: O(entries due), as a heap's subtree below a later root holds only later ones.
   */
  forEachDue(nowMs: number, visit: (key: string) => void): void {
    const stack: number[] = this.at.length > 0 ? [0] : [];
    while (stack.length > 0) {
      const i = stack.pop() as number;
      if ((this.at[i] as number) > nowMs) continue;
      visit(this.keys[i] as string);
      const l = 2 * i + 1;
      if (l < this.at.length) stack.push(l);
      if (l + 1 < this.at.length) stack.push(l + 1);
    }
  }

  /** Removes and returns the earliest entry's key (call only when size > 0). */
  pop(): string {
    const top = this.keys[0] as string;
    const lastAt = this.at.pop() as number;
    const lastKey = this.keys.pop() as string;
    const n = this.at.length;
    if (n > 0) {
      this.at[0] = lastAt;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < n && (this.at[l] as number) < (this.at[m] as number)) m = l;
        if (r < n && (this.at[r] as number) < (this.at[m] as number)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    // A heap that once held a mass of deadlines gives its arrays back once they have drained.
    if (n === 0 && this.keys.length === 0) {
      this.at = [];
      this.keys = [];
    }
    return top;
  }

  private swap(i: number, j: number): void {
    const a = this.at[i] as number;
    this.at[i] = this.at[j] as number;
    this.at[j] = a;
    const k = this.keys[i] as string;
    this.keys[i] = this.keys[j] as string;
    this.keys[j] = k;
  }
}
