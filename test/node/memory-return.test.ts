// The node runs a full GC after tombstone collection freed memory, and only then (memory-return.ts).
import { describe, expect, test } from "bun:test";
import { MemoryReturn, memoryReturnDeferChecksMax, shouldReturnMemory, type CollectionProgress } from "../../src/node/memory-return.ts";

describe("memory return after collection", () => {
  test("a compaction or the collector forgetting its last remembered key forces one GC; nothing else does", () => {
    let now: CollectionProgress = { compactions: 0, remembered: 0, echoes: 0 };
    let gcs = 0;
    const m = new MemoryReturn(() => now, () => gcs++);
    m.check();
    expect(gcs).toBe(0);
    // Collection in progress: keys remembered, no compaction yet.
    now = { compactions: 0, remembered: 4096, echoes: 0 };
    m.check();
    expect(gcs).toBe(0);
    // The key table compacted: one GC, not repeated while nothing changes.
    now = { compactions: 1, remembered: 500_000, echoes: 0 };
    m.check();
    m.check();
    expect(gcs).toBe(1);
    // Fewer remembered is not yet "all forgotten".
    now = { compactions: 1, remembered: 10, echoes: 0 };
    m.check();
    expect(gcs).toBe(1);
    now = { compactions: 1, remembered: 0, echoes: 0 };
    m.check();
    m.check();
    expect(gcs).toBe(2);
    expect(m.forced).toBe(2);
  });

  test("while deferred (the expiry sweep has a backlog), compactions owe one GC, run once when no longer deferred", () => {
    let now: CollectionProgress = { compactions: 0, remembered: 0, echoes: 0 };
    let deferred = true;
    let gcs = 0;
    const m = new MemoryReturn(() => now, () => gcs++, () => deferred);
    // A mass expiry: the table compacts again and again while the sweep works off its backlog.
    for (let c = 1; c <= 5; c++) {
      now = { compactions: c, remembered: 1000 * c, echoes: 0 };
      m.check();
    }
    expect(gcs).toBe(0);
    // The sweep caught up: one GC for all of them, not one per compaction.
    deferred = false;
    m.check();
    m.check();
    expect(gcs).toBe(1);
    expect(m.forced).toBe(1);
  });

  test(`a GC is deferred for at most ${memoryReturnDeferChecksMax} checks, however long the backlog lasts`, () => {
    let now: CollectionProgress = { compactions: 0, remembered: 0, echoes: 0 };
    let gcs = 0;
    const m = new MemoryReturn(() => now, () => gcs++, () => true);
    now = { compactions: 1, remembered: 1000, echoes: 0 };
    for (let k = 0; k < memoryReturnDeferChecksMax; k++) m.check();
    expect(gcs).toBe(0);
    m.check();
    expect(gcs).toBe(1);
    m.check();
    expect(gcs).toBe(1);
  });

  test("the collector dropping the fingerprints of the keys it forgot forces one GC too", () => {
    let now: CollectionProgress = { compactions: 1, remembered: 200_000, echoes: 0 };
    let gcs = 0;
    const m = new MemoryReturn(() => now, () => gcs++);
    // Forgotten: one GC; the fingerprints (a table of 16-32 bytes per key) are still held.
    now = { compactions: 1, remembered: 0, echoes: 200_000 };
    m.check();
    expect(gcs).toBe(1);
    m.check();
    expect(gcs).toBe(1);
    // Dropped some 20 s later: that table is garbage now, one more GC.
    now = { compactions: 1, remembered: 0, echoes: 0 };
    m.check();
    m.check();
    expect(gcs).toBe(2);
  });

  test("the GC gives memory back to the OS (settled) only once the collector remembers no key and holds no fingerprint", () => {
    let now: CollectionProgress = { compactions: 0, remembered: 0, echoes: 0 };
    const settled: boolean[] = [];
    const m = new MemoryReturn(() => now, (s) => settled.push(s));
    now = { compactions: 1, remembered: 500_000, echoes: 0 };
    m.check();
    now = { compactions: 2, remembered: 900_000, echoes: 0 };
    m.check();
    now = { compactions: 2, remembered: 0, echoes: 900_000 };
    m.check();
    now = { compactions: 2, remembered: 0, echoes: 0 };
    m.check();
    expect(settled).toEqual([false, false, false, true]);
    // A compaction with nothing collected pending (an expiry sweep's, say) is settled too.
    now = { compactions: 3, remembered: 0, echoes: 0 };
    m.check();
    expect(settled).toEqual([false, false, false, true, true]);
  });

  test("an idle node with nothing collected never forces a GC", () => {
    expect(shouldReturnMemory({ compactions: 3, remembered: 0, echoes: 0 }, { compactions: 3, remembered: 0, echoes: 0 })).toBe(false);
  });
});
