// Gives memory back to the OS after tombstone collection freed a large part of the keyspace.
//
// Collection frees in three steps: the engine compacts its key table (new, smaller columns; the
// old arrays and the collected states become garbage), 60 s later (collectedGraceMs) the
// collector forgets the keys it collected, and some 20 s after that (collectedEchoGraceMs) it
// drops the fingerprints it kept of them. Each leaves old-generation garbage that only a full
// collection frees, and a node idle after a mass delete allocates little, so JavaScriptCore
// may run one late or not at all, leaving the node's resident size high while it holds
// nothing. So after either step the node runs one full, synchronous GC (Bun.gc(true)): a
// pause of a few hundred ms at 1M keys, at most once per check interval, and only after
// collection freed something, followed by Bun.shrink() (returnMemoryNow). Measured with
// `imdb bench collect --keys 100000`, side by side, before the shrink was added:
// 125-128 MiB per node after collection with it, 131-149 MiB without (docs/benchmarks.md).
// While the expiry sweep works off a backlog it waits (a minute at most) and runs once, not
// after every compaction of a mass expiry (`imdb bench expiry`, docs/benchmarks.md).

/** How often the node looks whether collection freed memory (ms): also the least time between two forced GCs. */
export const memoryReturnCheckMs = 5_000;
/**
 * Checks a GC may be deferred at most (12: one minute): a sweep that never catches up (expiries
 * outrunning its budget for good) must not keep memory from coming back forever.
 */
export const memoryReturnDeferChecksMax = 12;

export interface CollectionProgress {
  /** Key table compactions since start (Engine.storageSizes().compactions). */
  compactions: number;
  /** Collected keys the collector still remembers (gc.ts collectedGraceMs). */
  remembered: number;
  /**
   * Forgotten collected keys whose records the collector still recognises (gc.ts
   * collectedEchoGraceMs): a table of 16-32 bytes per key, dropped whole some 20 s after the
   * keys are forgotten, so after the forced GC of that moment: 3-6 MB at 200k keys, 16-32 MB at
   * 1M, that an idle node otherwise kept until some later GC.
   */
  echoes: number;
}

/**
 * True when, between two checks, the key table compacted, the collector forgot every key it
 * remembered, or it dropped the fingerprints of the keys it forgot: the moments collection turns
 * a large amount of memory into garbage.
 */
export function shouldReturnMemory(last: CollectionProgress, now: CollectionProgress): boolean {
  return now.compactions !== last.compactions || (last.remembered > 0 && now.remembered === 0) || (last.echoes > 0 && now.echoes === 0);
}

/**
 * One full, synchronous GC; once collection has settled (the collector remembers no key and
 * holds no fingerprint), then Bun.shrink(): JavaScriptCore's "shrink footprint when idle",
 * which also throws away compiled code and hands freed allocator memory back to the OS. The GC
 * alone left the JS heap's live size at 18.4 MiB per node after a 200k-key collection (14.4
 * before the writes) and RSS at 1.13-1.20x before; with the shrink, heap 10.5-13 MiB and RSS
 * 1.06-1.15x (`imdb bench collect --keys 200000`, docs/benchmarks.md). Not at compactions
 * while collection runs: the code it throws away is compiled again at once by the work still
 * going on: 1M-key collections (`imdb bench collect`, one run each, same machine) took 751 s
 * shrinking at every forced GC, 566 s never shrinking, 433 s shrinking once settled
 * (single runs each; the same code's 200k-key collections took 54-68 s from run to run). Bun
 * marks shrink() deprecated but the pinned 1.4.5 has it; should a later Bun drop it, the GC
 * alone still runs. After recovery and the hash-tree build the node passes settled=false (GC
 * only, as before the shrink): with the shrink there too, a node restored from an old backup
 * took 11 s instead of under 1 s to agree with its peers once in the chaos `ci` profile (seed
 * 914563853; the same scenario passed in that run and the run before). Not proven the cause,
 * but a shrink there buys nothing the collect figures need and may throw away code while
 * anti-entropy refills the node.
 */
export function returnMemoryNow(settled = true): void {
  Bun.gc(true);
  if (settled && typeof Bun.shrink === "function") Bun.shrink();
}

/** Checks every memoryReturnCheckMs and runs `fullGc` when shouldReturnMemory says so. */
export class MemoryReturn {
  private last: CollectionProgress;
  private timer: ReturnType<typeof setInterval> | null = null;
  /** Full GCs run since start (tests). */
  forced = 0;
  /** Checks since a full GC was earned and `defer` held it back (-1: none owed); it runs once defer no longer holds, or after memoryReturnDeferChecksMax. */
  private owedChecks = -1;

  /**
   * defer: true while a full GC should wait. The expiry sweep working off a backlog says so:
   * collection keeps pace with it, so the key table compacts every time a quarter of it is free
   * and each compaction would force a full, synchronous GC of a heap that may hold a million
   * keys; one when the sweep has caught up gives the same memory back without those pauses
   * (`imdb bench expiry`, docs/benchmarks.md).
   */
  constructor(private readonly read: () => CollectionProgress, private readonly fullGc: (settled: boolean) => void = returnMemoryNow, private readonly defer: () => boolean = () => false) {
    this.last = read();
  }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.check(), memoryReturnCheckMs);
    this.timer.unref();
  }

  check(): void {
    const now = this.read();
    if (shouldReturnMemory(this.last, now) && this.owedChecks < 0) this.owedChecks = 0;
    this.last = now;
    if (this.owedChecks < 0) return;
    if (this.defer() && this.owedChecks < memoryReturnDeferChecksMax) {
      this.owedChecks++;
    } else {
      this.owedChecks = -1;
      this.forced++;
      this.fullGc(now.remembered === 0 && now.echoes === 0);
    }
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
