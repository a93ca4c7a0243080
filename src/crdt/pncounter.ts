// Positive-negative counter as a delta-state CRDT: per actor a u64 increment total p and a u64
// decrement total n; value = sum(p) - sum(n), a signed int64 (negative values are exact).

import { actorName, type ActorId } from "./actors.ts";
import { CrdtError, CrdtErrorCode } from "./errors.ts";
import { checkAmount, findActor, sameActors, unionActors } from "./gcounter.ts";
import { int64Max, int64Min, uint64Max } from "./int64.ts";

export class PNCounter {
  /** The kind discriminant (src/kinds): on the prototype, so it costs no memory per state. */
  get kind(): "pncounter" {
    return "pncounter";
  }

  /** actors sorted by rank; p[i], n[i] in 0..uint64Max, never both 0. */
  constructor(public actors: ActorId[] = [], public p: bigint[] = [], public n: bigint[] = []) {}

  static create(): PNCounter {
    return new PNCounter();
  }

  value(): bigint {
    let s = 0n;
    for (const x of this.p) s += x;
    for (const x of this.n) s -= x;
    return s;
  }

  /**
   * Adds amount (> 0); returns the delta {actor: (newP, 0)}. Refuses with OUT_OF_RANGE, state
   * unchanged, when the result lies outside int64 - on either side: merged concurrent
   * decrements can leave the value below int64 min, and an increment that stays below it
   * would be applied yet unreadable (the edge answers OUT_OF_RANGE, the client retries, the
   * counter counts it twice).
   */
  inc(actor: ActorId, amount: bigint): PNCounter {
    checkAmount(amount);
    checkResult(this.value() + amount, "increment", amount);
    return this.bump(actor, amount, true);
  }

  /**
   * Subtracts amount (> 0); returns the delta {actor: (0, newN)}. Refuses with OUT_OF_RANGE,
   * state unchanged, when the result lies outside int64 on either side (see inc). A decrement
   * that brings a value merged above int64 max back into range is allowed.
   */
  dec(actor: ActorId, amount: bigint): PNCounter {
    checkAmount(amount);
    checkResult(this.value() - amount, "decrement", amount);
    return this.bump(actor, amount, false);
  }

  private bump(actor: ActorId, amount: bigint, positive: boolean): PNCounter {
    const col = positive ? this.p : this.n;
    const i = findActor(this.actors, actor);
    let next: bigint;
    if (i >= 0) {
      next = (col[i] as bigint) + amount;
      if (next > uint64Max) throw new CrdtError(CrdtErrorCode.OutOfRange, `count of ${actorName(actor)} would pass uint64 max`);
      col[i] = next;
    } else {
      next = amount;
      this.actors.splice(~i, 0, actor);
      this.p.splice(~i, 0, positive ? next : 0n);
      this.n.splice(~i, 0, positive ? 0n : next);
    }
    return positive ? new PNCounter([actor], [next], [0n]) : new PNCounter([actor], [0n], [next]);
  }

  /** Join: per-actor, per-component max. Returns whether this changed. */
  merge(other: PNCounter): boolean {
    const a = this.actors;
    const b = other.actors;
    if (sameActors(a, b)) {
      let changed = false;
      const pa = this.p;
      const na = this.n;
      const pb = other.p;
      const nb = other.n;
      for (let i = 0; i < pa.length; i++) {
        const y = pb[i] as bigint;
        if (y > (pa[i] as bigint)) { pa[i] = y; changed = true; }
        const z = nb[i] as bigint;
        if (z > (na[i] as bigint)) { na[i] = z; changed = true; }
      }
      return changed;
    }
    const actors = unionActors(a, b);
    const p: bigint[] = new Array<bigint>(actors.length);
    const n: bigint[] = new Array<bigint>(actors.length);
    let changed = actors.length !== a.length;
    let i = 0;
    let j = 0;
    for (let k = 0; k < actors.length; k++) {
      const actor = actors[k] as ActorId;
      let xp = 0n, xn = 0n, yp = 0n, yn = 0n;
      if (a[i] === actor) { xp = this.p[i] as bigint; xn = this.n[i] as bigint; i++; }
      if (b[j] === actor) { yp = other.p[j] as bigint; yn = other.n[j] as bigint; j++; }
      if (yp > xp) { p[k] = yp; changed = true; } else p[k] = xp;
      if (yn > xn) { n[k] = yn; changed = true; } else n[k] = xn;
    }
    this.actors = actors;
    this.p = p;
    this.n = n;
    return changed;
  }

  equals(other: PNCounter): boolean {
    if (!sameActors(this.actors, other.actors)) return false;
    for (let i = 0; i < this.p.length; i++) {
      if (this.p[i] !== other.p[i] || this.n[i] !== other.n[i]) return false;
    }
    return true;
  }

  clone(): PNCounter {
    return new PNCounter(this.actors.slice(), this.p.slice(), this.n.slice());
  }
}

/** Refuses a result outside int64 (the value a client can read back). */
function checkResult(result: bigint, what: "increment" | "decrement", amount: bigint): void {
  if (result > int64Max) throw new CrdtError(CrdtErrorCode.OutOfRange, `${what} by ${amount} would leave the value above int64 max`);
  if (result < int64Min) throw new CrdtError(CrdtErrorCode.OutOfRange, `${what} by ${amount} would leave the value below int64 min`);
}
