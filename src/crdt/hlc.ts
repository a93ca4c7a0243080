// Hybrid logical clock (Kulkarni et al.): 48-bit milliseconds + 16-bit logical counter,
// monotonic across local events and remote updates. Orders LWW writes instead of raw wall time,
// so a lagging node that has seen a write always writes after it. Time is an argument.

import { assert } from "./errors.ts";

/** Largest representable millisecond value (48 bits). */
export const hlcMsMax = 2 ** 48 - 1;
/** Largest logical counter (16 bits); one more advances the milliseconds. */
export const hlcLogicalMax = 0xffff;
/** Default bound on how far a remote timestamp may be ahead of local physical time before it is reported. */
export const maxClockSkewMsDefault = 60_000;
/**
 * Default hard bound on how far a peer's timestamp may be ahead of local physical time before
 * it is refused outright (src/engine). Once observed, a timestamp near 2^48 would pin every
 * clock in the cluster at its end for good; a real clock is never this far off, while 10
 * minutes stays well clear of the skew NTP trouble (or the chaos suite's +-60 s) produces.
 */
export const hlcRemoteAheadMsMaxDefault = 10 * 60_000;

/** An HLC timestamp. Immutable. */
export interface Hlc {
  readonly ms: number;
  readonly logical: number;
}

export const hlcZero: Hlc = { ms: 0, logical: 0 };

export function hlcCompare(a: Hlc, b: Hlc): number {
  if (a.ms !== b.ms) return a.ms < b.ms ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  return 0;
}

export function isValidHlc(ms: number, logical: number): boolean {
  return Number.isInteger(ms) && ms >= 0 && ms <= hlcMsMax && Number.isInteger(logical) && logical >= 0 && logical <= hlcLogicalMax;
}

/** A remote timestamp that was accepted although it is far ahead of local physical time. */
export interface ClockSkew {
  remoteMs: number;
  physicalMs: number;
  /** remoteMs - physicalMs; > maxClockSkewMs. */
  aheadMs: number;
}

function checkPhysical(physicalMs: number): void {
  // The message is built only on failure: a template literal argument is evaluated on every
  // call, and converting the time to text was ~5% of an HSET's engine time (profiled).
  if (!(Number.isInteger(physicalMs) && physicalMs >= 0 && physicalMs <= hlcMsMax)) assert(false, `physical time ${physicalMs} ms is not a 48-bit integer`);
}

/** The clock of one replica. */
export class HybridClock {
  private ms = 0;
  private logical = 0;

  constructor(readonly maxClockSkewMs: number = maxClockSkewMsDefault) {
    assert(Number.isFinite(maxClockSkewMs) && maxClockSkewMs >= 0, "maxClockSkewMs must be >= 0");
  }

  /** The last timestamp issued or observed. */
  current(): Hlc {
    return { ms: this.ms, logical: this.logical };
  }

  /** A timestamp for a local event, greater than every timestamp issued or observed before. */
  now(physicalMs: number): Hlc {
    checkPhysical(physicalMs);
    if (physicalMs > this.ms) {
      this.ms = physicalMs;
      this.logical = 0;
    } else {
      this.tick();
    }
    return { ms: this.ms, logical: this.logical };
  }

  /**
   * Takes in a remote timestamp so later local timestamps exceed it. A remote timestamp more
   * than maxClockSkewMs ahead of physicalMs is still taken in (convergence first) and reported.
   */
  observe(remote: Hlc, physicalMs: number): ClockSkew | null {
    checkPhysical(physicalMs);
    assert(isValidHlc(remote.ms, remote.logical), "remote HLC out of range");
    const skew = remote.ms - physicalMs > this.maxClockSkewMs
      ? { remoteMs: remote.ms, physicalMs, aheadMs: remote.ms - physicalMs }
      : null;
    const ms = Math.max(this.ms, remote.ms, physicalMs);
    if (ms === this.ms && ms === remote.ms) {
      this.logical = Math.max(this.logical, remote.logical);
      this.tick();
    } else if (ms === this.ms) {
      this.tick();
    } else if (ms === remote.ms) {
      this.ms = ms;
      this.logical = remote.logical;
      this.tick();
    } else {
      this.ms = ms;
      this.logical = 0;
    }
    return skew;
  }

  /** Restores the clock after recovery so it never goes back below `ts`. */
  restore(ts: Hlc): void {
    if (hlcCompare(ts, { ms: this.ms, logical: this.logical }) > 0) {
      this.ms = ts.ms;
      this.logical = ts.logical;
    }
  }

  private tick(): void {
    if (this.logical < hlcLogicalMax) {
      this.logical++;
    } else if (this.ms < hlcMsMax) {
      // Logical counter full: borrow the next millisecond rather than wrap.
      this.ms++;
      this.logical = 0;
    }
    // else: the clock is at its very end (only a remote timestamp can put it there); it stays,
    // and ties are broken by actor id.
  }
}
