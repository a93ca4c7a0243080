// Grow-only counter as a delta-state CRDT: one u64 count per actor, value = sum.
// An increment's delta is the state {actor: newCount}, never "+n", so redelivery is harmless.

import { actorName, actorRank, type ActorId } from "./actors.ts";
import { CrdtError, CrdtErrorCode } from "./errors.ts";
import { int64Max, uint64Max } from "./int64.ts";

/**
 * Linear merge of two rank-sorted actor lists into their sorted union. Shared by G- and
 * PN-Counter.
 */
export function unionActors(a: readonly ActorId[], b: readonly ActorId[]): ActorId[] {
  const out: ActorId[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length) out.push(a[i++] as ActorId);
    else if (i >= a.length) out.push(b[j++] as ActorId);
    else {
      const x = a[i] as ActorId;
      const y = b[j] as ActorId;
      if (x === y) { out.push(x); i++; j++; }
      else if (actorRank(x) < actorRank(y)) { out.push(x); i++; }
      else { out.push(y); j++; }
    }
  }
  return out;
}

/** Index of actor in a rank-sorted list, or ~insertionPoint. */
export function findActor(actors: readonly ActorId[], actor: ActorId): number {
  const n = actors.length;
  if (n <= 8) {
    const r = actorRank(actor);
    for (let i = 0; i < n; i++) {
      const a = actors[i] as ActorId;
      if (a === actor) return i;
      if (actorRank(a) > r) return ~i;
    }
    return ~n;
  }
  const r = actorRank(actor);
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const m = actors[mid] as ActorId;
    if (m === actor) return mid;
    if (actorRank(m) < r) lo = mid + 1;
    else hi = mid;
  }
  return ~lo;
}

export function sameActors(a: readonly ActorId[], b: readonly ActorId[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function checkAmount(amount: bigint): void {
  if (amount <= 0n) throw new CrdtError(CrdtErrorCode.Invalid, `amount must be > 0 (got ${amount})`);
  if (amount > int64Max) throw new CrdtError(CrdtErrorCode.OutOfRange, `amount ${amount} exceeds int64`);
}

export class GCounter {
  /** The kind discriminant (src/kinds): on the prototype, so it costs no memory per state. */
  get kind(): "gcounter" {
    return "gcounter";
  }

  /** actors sorted by rank; counts[i] in 1..uint64Max belongs to actors[i]. */
  constructor(public actors: ActorId[] = [], public counts: bigint[] = []) {}

  static create(): GCounter {
    return new GCounter();
  }

  value(): bigint {
    let s = 0n;
    for (const c of this.counts) s += c;
    return s;
  }

  get(actor: ActorId): bigint {
    const i = findActor(this.actors, actor);
    return i >= 0 ? (this.counts[i] as bigint) : 0n;
  }

  /**
   * Adds amount (> 0) to actor's count; returns the delta {actor: newCount}. Refuses with
   * CrdtError(OUT_OF_RANGE), changing nothing, if the value would pass int64 max.
   */
  inc(actor: ActorId, amount: bigint): GCounter {
    checkAmount(amount);
    if (this.value() + amount > int64Max) {
      throw new CrdtError(CrdtErrorCode.OutOfRange, `increment by ${amount} would pass int64 max`);
    }
    const i = findActor(this.actors, actor);
    let next: bigint;
    if (i >= 0) {
      next = (this.counts[i] as bigint) + amount;
      if (next > uint64Max) throw new CrdtError(CrdtErrorCode.OutOfRange, `count of ${actorName(actor)} would pass uint64 max`);
      this.counts[i] = next;
    } else {
      next = amount;
      this.actors.splice(~i, 0, actor);
      this.counts.splice(~i, 0, next);
    }
    return new GCounter([actor], [next]);
  }

  /** Join: per-actor max. Returns whether this changed. */
  merge(other: GCounter): boolean {
    const a = this.actors;
    const b = other.actors;
    if (sameActors(a, b)) {
      let changed = false;
      const ca = this.counts;
      const cb = other.counts;
      for (let i = 0; i < ca.length; i++) {
        const y = cb[i] as bigint;
        if (y > (ca[i] as bigint)) { ca[i] = y; changed = true; }
      }
      return changed;
    }
    if (b.length === 1) {
      // The common delta shape: one row.
      const actor = b[0] as ActorId;
      const y = other.counts[0] as bigint;
      const i = findActor(a, actor);
      if (i >= 0) {
        if (y <= (this.counts[i] as bigint)) return false;
        this.counts[i] = y;
        return true;
      }
      a.splice(~i, 0, actor);
      this.counts.splice(~i, 0, y);
      return true;
    }
    const actors = unionActors(a, b);
    const counts: bigint[] = new Array<bigint>(actors.length);
    let changed = actors.length !== a.length;
    let i = 0;
    let j = 0;
    for (let k = 0; k < actors.length; k++) {
      const actor = actors[k] as ActorId;
      const x = a[i] === actor ? (this.counts[i++] as bigint) : 0n;
      const y = b[j] === actor ? (other.counts[j++] as bigint) : 0n;
      if (y > x) { counts[k] = y; changed = true; } else counts[k] = x;
    }
    this.actors = actors;
    this.counts = counts;
    return changed;
  }

  equals(other: GCounter): boolean {
    if (!sameActors(this.actors, other.actors)) return false;
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i] !== other.counts[i]) return false;
    return true;
  }

  clone(): GCounter {
    return new GCounter(this.actors.slice(), this.counts.slice());
  }
}
