// Grow-only counter as a delta-state CRDT: one u64 count per actor, value = sum.
// An increment's delta is the state {actor: newCount}, never "+n", so redelivery is harmless.
//
// Delete (observed-remove) adds per-actor RESET rows: the counts a delete observed, kept as a
// second G-Counter (max-merge), and the value counts only what lies above them. So an increment
// concurrent with a delete, which the delete did not observe, survives exactly, and a counter
// incremented after its delete starts from zero: the count row keeps growing, the reset row
// remembers where the delete found it. Both row sets join by pointwise max, so the join stays
// commutative, associative and idempotent.
//
// Reset rows are stored independently of the count rows and the value clamps each actor at
// zero (a reset above its count contributes nothing), rather than requiring reset <= count:
// a delete's delta holds reset rows only, and a replica may receive it before the increments
// it observed (reordered deltas, anti-entropy). Requiring reset <= count would make that delta,
// and such a replica's state, invalid; with the clamp every row set is valid and so is every
// join of valid states. Once the observed increments arrive the clamp no longer applies.

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

  /**
   * actors sorted by rank; counts[i] in 1..uint64Max belongs to actors[i]. resets: the counts
   * deletes observed (null when no delete ever did: never an empty counter).
   */
  constructor(public actors: ActorId[] = [], public counts: bigint[] = [], public resets: GCounter | null = null) {}

  static create(): GCounter {
    return new GCounter();
  }

  value(): bigint {
    let s = 0n;
    const r = this.resets;
    if (r === null) {
      for (const c of this.counts) s += c;
      return s;
    }
    for (let i = 0; i < this.actors.length; i++) s += above(this.counts[i] as bigint, r.get(this.actors[i] as ActorId));
    return s;
  }

  /**
   * Does the counter count anything a delete has not removed (src/kinds: present)? Some row
   * above its reset, not merely different from it: a reset above its row (the delete's delta
   * came first) removes what it observed, and nothing is present until more arrives.
   */
  present(): boolean {
    const r = this.resets;
    if (r === null) return this.actors.length > 0;
    for (let i = 0; i < this.actors.length; i++) if ((this.counts[i] as bigint) > r.get(this.actors[i] as ActorId)) return true;
    return false;
  }

  /**
   * Delete (observed-remove): raises every actor's reset row to the count this replica has
   * observed; returns the delta of just those reset rows, or null if nothing was counted.
   */
  removeObserved(): GCounter | null {
    const actors: ActorId[] = [];
    const counts: bigint[] = [];
    for (let i = 0; i < this.actors.length; i++) {
      const a = this.actors[i] as ActorId;
      const c = this.counts[i] as bigint;
      if (c > (this.resets?.get(a) ?? 0n)) { actors.push(a); counts.push(c); }
    }
    if (actors.length === 0) return null;
    const delta = new GCounter([], [], new GCounter(actors, counts));
    this.merge(delta);
    return delta;
  }

  get(actor: ActorId): bigint {
    const i = findActor(this.actors, actor);
    return i >= 0 ? (this.counts[i] as bigint) : 0n;
  }

  /**
   * Adds amount (> 0) to actor's count; returns the delta {actor: newCount} (with actor's reset row, if any). Refuses with
   * CrdtError(OUT_OF_RANGE), changing nothing, if the value would pass int64 max. base: where
   * actor's count starts if it has none here (clocks.ts dotBase: a new life of the key for
   * actor), with a reset row there; the engine always passes it, 0 starts at zero.
   */
  inc(actor: ActorId, amount: bigint, base = 0): GCounter {
    checkAmount(amount);
    if (this.value() + amount > int64Max) {
      throw new CrdtError(CrdtErrorCode.OutOfRange, `increment by ${amount} would pass int64 max`);
    }
    const i = findActor(this.actors, actor);
    let next: bigint;
    if (i >= 0) {
      // From its reset row where that lies above (see PNCounter's bump).
      const have = this.counts[i] as bigint;
      const reset = this.resets === null ? 0n : this.resets.get(actor);
      next = (have > reset ? have : reset) + amount;
      if (next > uint64Max) throw new CrdtError(CrdtErrorCode.OutOfRange, `count of ${actorName(actor)} would pass uint64 max`);
      this.counts[i] = next;
    } else if (base > 0) {
      const start = this.resets !== null && this.resets.get(actor) > BigInt(base) ? this.resets.get(actor) : BigInt(base);
      next = start + amount;
      if (next > uint64Max) throw new CrdtError(CrdtErrorCode.OutOfRange, `count of ${actorName(actor)} would pass uint64 max`);
      this.actors.splice(~i, 0, actor);
      this.counts.splice(~i, 0, next);
      const claim = new GCounter([actor], [start]);
      if (this.resets === null) this.resets = claim;
      else this.resets.merge(claim);
    } else {
      next = amount;
      this.actors.splice(~i, 0, actor);
      this.counts.splice(~i, 0, next);
    }
    // With its reset row when a delete touched it (see PNCounter's bump).
    const r = this.resets;
    const j = r === null ? -1 : findActor(r.actors, actor);
    return new GCounter([actor], [next], r === null || j < 0 ? null : new GCounter([actor], [r.counts[j] as bigint]));
  }

  /** Join: per-actor max of the count rows and of the reset rows. Returns whether this changed. */
  merge(other: GCounter): boolean {
    const changed = this.mergeRows(other);
    if (other.resets === null) return changed;
    if (this.resets === null) {
      this.resets = other.resets.clone();
      return true;
    }
    return this.resets.merge(other.resets) || changed;
  }

  private mergeRows(other: GCounter): boolean {
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
    if (b.length === 0) return false; // a delete's delta: reset rows only
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
    if (this.resets === null || other.resets === null) return this.resets === other.resets;
    return this.resets.equals(other.resets);
  }

  clone(): GCounter {
    return new GCounter(this.actors.slice(), this.counts.slice(), this.resets === null ? null : this.resets.clone());
  }
}

/** What an actor's total counts above its reset row: never below zero (see the file comment). */
export function above(total: bigint, reset: bigint): bigint {
  return total > reset ? total - reset : 0n;
}
