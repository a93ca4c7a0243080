// Positive-negative counter as a delta-state CRDT: per actor a u64 increment total p and a u64
// decrement total n; value = sum(p) - sum(n), a signed int64 (negative values are exact).
// A delete keeps per-actor reset rows (rp, rn) beside them, as the G-Counter does (see
// gcounter.ts for why they are independent rows and the value clamps): value = sum over actors
// of (p - rp) - (n - rn), each difference clamped at zero.

import { actorName, type ActorId } from "./actors.ts";
import { CrdtError, CrdtErrorCode } from "./errors.ts";
import { above, checkAmount, findActor, sameActors, unionActors } from "./gcounter.ts";
import { int64Max, int64Min, uint64Max } from "./int64.ts";

export class PNCounter {
  /** The kind discriminant (src/kinds): on the prototype, so it costs no memory per state. */
  get kind(): "pncounter" {
    return "pncounter";
  }

  /**
   * actors sorted by rank; p[i], n[i] in 0..uint64Max, never both 0. resets: the totals
   * deletes observed, as rows (rp, rn) of their own (null when no delete ever did: never an
   * empty counter).
   */
  constructor(public actors: ActorId[] = [], public p: bigint[] = [], public n: bigint[] = [], public resets: PNCounter | null = null) {}

  static create(): PNCounter {
    return new PNCounter();
  }

  value(): bigint {
    let s = 0n;
    const r = this.resets;
    if (r === null) {
      for (const x of this.p) s += x;
      for (const x of this.n) s -= x;
      return s;
    }
    for (let i = 0; i < this.actors.length; i++) {
      const j = findActor(r.actors, this.actors[i] as ActorId);
      s += above(this.p[i] as bigint, j >= 0 ? (r.p[j] as bigint) : 0n);
      s -= above(this.n[i] as bigint, j >= 0 ? (r.n[j] as bigint) : 0n);
    }
    return s;
  }

  /** Does the counter hold any increment or decrement a delete has not removed (src/kinds: present)? */
  present(): boolean {
    const r = this.resets;
    if (r === null) return this.actors.length > 0;
    for (let i = 0; i < this.actors.length; i++) {
      const j = findActor(r.actors, this.actors[i] as ActorId);
      if (j < 0 || (this.p[i] as bigint) > (r.p[j] as bigint) || (this.n[i] as bigint) > (r.n[j] as bigint)) return true;
    }
    return false;
  }

  /**
   * Delete (observed-remove): raises every actor's reset row to the totals this replica has
   * observed; returns the delta of just those reset rows, or null if nothing was counted.
   */
  removeObserved(): PNCounter | null {
    const actors: ActorId[] = [];
    const p: bigint[] = [];
    const n: bigint[] = [];
    const r = this.resets;
    for (let i = 0; i < this.actors.length; i++) {
      const a = this.actors[i] as ActorId;
      const j = r === null ? -1 : findActor(r.actors, a);
      const rp = j >= 0 ? ((r as PNCounter).p[j] as bigint) : 0n;
      const rn = j >= 0 ? ((r as PNCounter).n[j] as bigint) : 0n;
      const x = this.p[i] as bigint;
      const y = this.n[i] as bigint;
      if (x > rp || y > rn) { actors.push(a); p.push(x > rp ? x : rp); n.push(y > rn ? y : rn); }
    }
    if (actors.length === 0) return null;
    const delta = new PNCounter([], [], [], new PNCounter(actors, p, n));
    this.merge(delta);
    return delta;
  }

  /**
   * Adds amount (> 0); returns the delta: actor's row (and reset row, if any). Refuses with OUT_OF_RANGE, state
   * unchanged, when the result lies outside int64 - on either side: merged concurrent
   * decrements can leave the value below int64 min, and an increment that stays below it
   * would be applied yet unreadable (the edge answers OUT_OF_RANGE, the client retries, the
   * counter counts it twice).
   */
  inc(actor: ActorId, amount: bigint, base = 0): PNCounter {
    checkAmount(amount);
    checkResult(this.value() + amount, "increment", amount);
    return this.bump(actor, amount, true, base);
  }

  /**
   * Subtracts amount (> 0); returns the delta: actor's row (and reset row, if any). Refuses with OUT_OF_RANGE,
   * state unchanged, when the result lies outside int64 on either side (see inc). A decrement
   * that brings a value merged above int64 max back into range is allowed.
   */
  dec(actor: ActorId, amount: bigint, base = 0): PNCounter {
    checkAmount(amount);
    checkResult(this.value() - amount, "decrement", amount);
    return this.bump(actor, amount, false, base);
  }

  /**
   * base: where actor's row starts if it has none here (clocks.ts dotBase: a new life of the
   * key for actor), with a reset row there, so both its totals count only what comes after. The
   * engine always passes it; 0 (CRDT-level tests) starts at zero.
   */
  private bump(actor: ActorId, amount: bigint, positive: boolean, base: number): PNCounter {
    const col = positive ? this.p : this.n;
    const i = findActor(this.actors, actor);
    let next: bigint;
    if (i >= 0) {
      // Counted from its reset row where that lies above (its life's base: only its other
      // total has been counted yet), so the reset never swallows the new count.
      const r = this.resets;
      const j = r === null ? -1 : findActor(r.actors, actor);
      const reset = j < 0 ? 0n : (((positive ? (r as PNCounter).p : (r as PNCounter).n)[j]) as bigint);
      const have = col[i] as bigint;
      next = (have > reset ? have : reset) + amount;
      if (next > uint64Max) throw new CrdtError(CrdtErrorCode.OutOfRange, `count of ${actorName(actor)} would pass uint64 max`);
      col[i] = next;
    } else if (base > 0) {
      // A new life of the key for actor: its row starts above base, and above any reset row of
      // its own already here; both totals are reset up to there (the claim), only the one
      // counted now is written.
      const b = BigInt(base);
      const r = this.resets;
      const j = r === null ? -1 : findActor(r.actors, actor);
      const rp = j >= 0 ? ((r as PNCounter).p[j] as bigint) : 0n;
      const rn = j >= 0 ? ((r as PNCounter).n[j] as bigint) : 0n;
      const sp = rp > b ? rp : b;
      const sn = rn > b ? rn : b;
      next = (positive ? sp : sn) + amount;
      if (next > uint64Max) throw new CrdtError(CrdtErrorCode.OutOfRange, `count of ${actorName(actor)} would pass uint64 max`);
      this.actors.splice(~i, 0, actor);
      this.p.splice(~i, 0, positive ? next : 0n);
      this.n.splice(~i, 0, positive ? 0n : next);
      const claim = new PNCounter([actor], [sp], [sn]);
      if (r === null) this.resets = claim;
      else r.merge(claim);
    } else {
      next = amount;
      this.actors.splice(~i, 0, actor);
      this.p.splice(~i, 0, positive ? next : 0n);
      this.n.splice(~i, 0, positive ? 0n : next);
    }
    // The actor's whole row, and its reset row when a delete touched it: a replica that never
    // held the delete's record (it collected it, src/cluster/gc.ts) then still counts only what
    // came after the delete, and one that holds it loses nothing (rows join by max).
    const k = findActor(this.actors, actor);
    const r = this.resets;
    const j = r === null ? -1 : findActor(r.actors, actor);
    const reset = r === null || j < 0 ? null : new PNCounter([actor], [r.p[j] as bigint], [r.n[j] as bigint]);
    return new PNCounter([actor], [this.p[k] as bigint], [this.n[k] as bigint], reset);
  }

  /** Join: per-actor, per-component max of the rows and of the reset rows. Returns whether this changed. */
  merge(other: PNCounter): boolean {
    const changed = this.mergeRows(other);
    if (other.resets === null) return changed;
    if (this.resets === null) {
      this.resets = other.resets.clone();
      return true;
    }
    return this.resets.merge(other.resets) || changed;
  }

  private mergeRows(other: PNCounter): boolean {
    const a = this.actors;
    const b = other.actors;
    if (b.length === 0) return false; // a delete's delta: reset rows only
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
    if (this.resets === null || other.resets === null) return this.resets === other.resets;
    return this.resets.equals(other.resets);
  }

  clone(): PNCounter {
    return new PNCounter(this.actors.slice(), this.p.slice(), this.n.slice(), this.resets === null ? null : this.resets.clone());
  }
}

/** Refuses a result outside int64 (the value a client can read back). */
function checkResult(result: bigint, what: "increment" | "decrement", amount: bigint): void {
  if (result > int64Max) throw new CrdtError(CrdtErrorCode.OutOfRange, `${what} by ${amount} would leave the value above int64 max`);
  if (result < int64Min) throw new CrdtError(CrdtErrorCode.OutOfRange, `${what} by ${amount} would leave the value below int64 min`);
}
