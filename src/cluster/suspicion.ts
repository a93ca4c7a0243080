// Lifeguard's dynamic suspicion: a suspect's timeout starts high and shrinks as independent members confirm it.

import type { NodeId } from "./types.ts";

/** memberlist's suspicionTimeout: suspicionMult * max(1, log10(N)) * probeInterval, in ms. */
export function suspicionMinTimeoutMs(suspicionMult: number, liveNodes: number, probeIntervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, liveNodes)));
  return Math.floor(suspicionMult * nodeScale * probeIntervalMs);
}

/** Confirmations that shrink the timeout to its minimum (0 in clusters too small to have them). */
export function suspicionConfirmationsExpected(suspicionMult: number, liveNodes: number): number {
  const k = suspicionMult - 2;
  return liveNodes - 2 < k ? 0 : k;
}

/**
 * The suspicion of one member. It holds no timer: the membership machine asks for its
 * deadline on every tick, which moves earlier as confirmations arrive.
 */
export class Suspicion {
  private readonly confirmations = new Set<NodeId>();

  /**
   * @param startMs when this node started suspecting
   * @param k confirmations expected (timeout reaches minMs at k)
   * @param from the first accuser; it does not count as a confirmation
   */
  constructor(
    readonly startMs: number,
    private readonly k: number,
    private readonly minMs: number,
    private readonly maxMs: number,
    from: NodeId,
  ) {
    this.confirmations.add(from);
  }

  /** Records an accusation; true if it came from a member not heard before (worth re-gossiping). */
  confirm(from: NodeId): boolean {
    if (this.confirmations.has(from)) return false;
    this.confirmations.add(from);
    return true;
  }

  /** Independent confirmations beyond the first accuser. */
  confirmationCount(): number {
    return this.confirmations.size - 1;
  }

  timeoutMs(): number {
    const c = Math.min(this.confirmationCount(), this.k);
    if (this.k < 1) return this.minMs;
    const frac = Math.log(c + 1) / Math.log(this.k + 1);
    const raw = Math.floor(this.maxMs - frac * (this.maxMs - this.minMs));
    return Math.max(this.minMs, raw);
  }

  deadlineMs(): number {
    return this.startMs + this.timeoutMs();
  }
}
