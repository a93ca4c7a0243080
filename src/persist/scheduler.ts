// Decides when the node should take a snapshot: after an interval, or once enough WAL has
// accumulated since the last one. Pure: the node passes the clock and the byte count in.

export interface SnapshotTriggers {
  /** Take a snapshot at least this often (0 = never by time). */
  intervalMs: number;
  /** Take a snapshot once the WAL grew by this many bytes since the last (0 = never by size). */
  walBytesMax: number;
}

export class SnapshotScheduler {
  private lastStartMs: number;
  private running = false;

  constructor(private readonly triggers: SnapshotTriggers, nowMs: number) {
    if (!(triggers.intervalMs >= 0 && triggers.walBytesMax >= 0)) throw new RangeError("snapshot triggers must be >= 0");
    this.lastStartMs = nowMs;
  }

  /** True when a snapshot should start now (never while one runs). */
  due(nowMs: number, walBytesSinceSnapshot: number): boolean {
    if (this.running) return false;
    const t = this.triggers;
    return (t.intervalMs > 0 && nowMs - this.lastStartMs >= t.intervalMs) || (t.walBytesMax > 0 && walBytesSinceSnapshot >= t.walBytesMax);
  }

  started(nowMs: number): void {
    this.running = true;
    this.lastStartMs = nowMs;
  }

  /** Called when the snapshot finished or failed; a failure is retried at the next trigger. */
  finished(): void {
    this.running = false;
  }
}
