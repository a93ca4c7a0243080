// The background half of expiry (docs/api.md "Expiry"): every tick, executes the deadlines that
// have come, for a bounded time, and logs and sends their deltas like a client's writes. Reads
// never wait for it (a key is missing the moment its deadline passes on this clock); it only
// turns expired keys into deleted ones, whose memory collection then gives back.
import type { Engine } from "../engine/index.ts";

/** How often the sweep runs. */
export const expirySweepTickMs = 50;
/**
 * Most time one tick spends executing deadlines (then it yields to requests until the next tick):
 * 6% of one core. What an expired key costs beyond the sweep's own time (its WAL record, the
 * anti-entropy tree, its tombstone until collection, the garbage) comes on top, several times
 * over, so the budget is set by the writers' latency, not the sweep's speed: with 1M keys
 * expiring at once (`imdb bench expiry`, one node, sync, 2026-12-01) a writer's p99 during the
 * expiry was 3.16x its p99 before at 10 ms (all gone in 59 s), 2.08x at 5 ms (114 s) and 1.61x
 * at 3 ms (158 s); the target is 2x.
 */
export const expirySweepTickBudgetMs = 3;
/**
 * Filed deadlines one engine call looks at: the granularity at which the budget is checked, so
 * a tick overshoots its budget by up to one chunk's time. 256 overshot it by 70% on a busy
 * machine (ticks of 17 ms on average at a 10 ms budget, about 60 us of wall time per key
 * expired: `imdb bench expiry`, docs/benchmarks.md); with 64 the mean tick there was 8-11 ms,
 * and an idle core expires 64 keys in well under a millisecond.
 */
export const expirySweepChunkKeys = 64;
/**
 * Ticks whose deltas may be waiting for the WAL at once; a tick finding this many skips. One at
 * a time tied the sweep to the disk's latency instead of its budget: with sync durability on a
 * busy machine it ran 7.8 of its 20 ticks a second (14% of the time, under its 20%) and took
 * 433 s to expire 1M keys; with 4, 10 ticks a second at 17.5% and 340 s (`imdb bench expiry`,
 * docs/benchmarks.md). A few in flight let it use its budget while still bounding what a slow
 * disk has queued (this many ticks' deltas), so the disk slows the sweep, not the node.
 */
export const expirySweepCommitsInFlightMax = 4;

export interface ExpirySweepOptions {
  engine: Engine;
  /** Logs and sends deltas this node made itself; resolves once durable. */
  commit(deltas: readonly Uint8Array[]): Promise<void>;
  /** Wall clock, ms. */
  now(): number;
  /** True while the node takes no writes (stopping, or a replica rejoining): no tick runs. */
  paused(): boolean;
  onError(err: unknown): void;
  tickMs?: number;
  budgetMs?: number;
  commitsInFlightMax?: number;
}

export interface ExpirySweepStats {
  ticks: number;
  secondsTotal: number;
  lastTickSeconds: number;
  maxTickSeconds: number;
}

export class ExpirySweep {
  readonly stats: ExpirySweepStats = { ticks: 0, secondsTotal: 0, lastTickSeconds: 0, maxTickSeconds: 0 };
  private timer: ReturnType<typeof setInterval> | null = null;
  /** Commits not settled yet (expirySweepCommitsInFlightMax at most). */
  private readonly committing = new Set<Promise<void>>();

  /** Did the last tick that ran stop on its budget with deadlines still due (a backlog)? */
  private behindNow = false;

  constructor(private readonly o: ExpirySweepOptions) {}

  /** True while the sweep works off a backlog: the last tick that ran left deadlines due. */
  get behind(): boolean {
    return this.behindNow;
  }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.tick(), this.o.tickMs ?? expirySweepTickMs);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.committing);
  }

  /** One tick (also called by tests): executes due deadlines for at most the budget. */
  tick(): void {
    if (this.committing.size >= (this.o.commitsInFlightMax ?? expirySweepCommitsInFlightMax) || this.o.paused()) return;
    const budget = this.o.budgetMs ?? expirySweepTickBudgetMs;
    const t0 = performance.now();
    const deltas: Uint8Array[] = [];
    for (;;) {
      const r = this.o.engine.expireDue(this.o.now(), expirySweepChunkKeys);
      for (const d of r.deltas) deltas.push(d);
      if (r.examined < expirySweepChunkKeys) {
        this.behindNow = false;
        break;
      }
      if (performance.now() - t0 >= budget) {
        this.behindNow = true;
        break;
      }
    }
    const s = (performance.now() - t0) / 1000;
    this.stats.ticks++;
    this.stats.secondsTotal += s;
    this.stats.lastTickSeconds = s;
    if (s > this.stats.maxTickSeconds) this.stats.maxTickSeconds = s;
    if (deltas.length === 0) return;
    // Appends are issued in tick order (commit issues them before its first await), so the WAL keeps the sweep's order.
    const c: Promise<void> = this.o.commit(deltas).catch((err: unknown) => this.o.onError(err)).finally(() => {
      this.committing.delete(c);
    });
    this.committing.add(c);
  }
}
