// Lifeguard's local health multiplier: a node that misses acks or must defend itself slows its own judgements of others.

/**
 * The score is 0 when healthy and at most `max - 1`. Failed probes and refutations raise
 * it, successful probes lower it; probe interval and probe timeout are multiplied by
 * score + 1, so an overloaded node (whose missing acks are its own fault) accuses less.
 */
export class Awareness {
  private score = 0;

  constructor(private readonly max: number) {}

  applyDelta(delta: number): void {
    this.score = Math.min(this.max - 1, Math.max(0, this.score + delta));
  }

  getScore(): number {
    return this.score;
  }

  scaleMs(ms: number): number {
    return ms * (this.score + 1);
  }
}
