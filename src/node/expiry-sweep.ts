// The background half of expiry (docs/api.md "Expiry"): every tick, executes the deadlines that
// have come, for a bounded time, and logs and sends their deltas like a client's writes. Reads
// never wait for it (a key is missing the moment its deadline passes on this clock); it only
// turns expired keys into deleted ones, whose memory collection then gives back.
import type { Engine } from "../engine/index.ts";

/** How often the sweep runs. */
export const expirySweepTickMs = 50;
/**
 * Most time one tick spends executing deadlines (then it yields to requests until the next tick):
 * a fifth of one core at most, so a million keys expiring at once never stall requests.
 */
export const expirySweepTickBudgetMs = 10;
/** Filed deadlines one engine call looks at: the granularity at which the budget is checked. */
export const expirySweepChunkKeys = 256;

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
  /** The last tick's commit: the next tick waits for it, so a slow disk slows the sweep, not the node. */
  private committing: Promise<void> | null = null;

  constructor(private readonly o: ExpirySweepOptions) {}

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.tick(), this.o.tickMs ?? expirySweepTickMs);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.committing;
  }

  /** One tick (also called by tests): executes due deadlines for at most the budget. */
  tick(): void {
    if (this.committing !== null || this.o.paused()) return;
    const budget = this.o.budgetMs ?? expirySweepTickBudgetMs;
    const t0 = performance.now();
    const deltas: Uint8Array[] = [];
    for (;;) {
      const r = this.o.engine.expireDue(this.o.now(), expirySweepChunkKeys);
      for (const d of r.deltas) deltas.push(d);
      if (r.examined < expirySweepChunkKeys || performance.now() - t0 >= budget) break;
    }
    const s = (performance.now() - t0) / 1000;
    this.stats.ticks++;
    this.stats.secondsTotal += s;
    this.stats.lastTickSeconds = s;
    if (s > this.stats.maxTickSeconds) this.stats.maxTickSeconds = s;
    if (deltas.length === 0) return;
    this.committing = this.o.commit(deltas).catch((err: unknown) => this.o.onError(err)).finally(() => {
      this.committing = null;
    });
  }
}
