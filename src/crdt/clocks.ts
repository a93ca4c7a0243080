// Version vectors, dots and causal contexts (a version vector plus a "dot cloud" of
// non-contiguous dots) - the causality bookkeeping of the MV-Register. Comparison of vector
// clocks goes through src/accel so the native batch path can take it.

import { accel, type ClockOrder } from "../accel/index.ts";
import { actorIndex, actorRank, type ActorId } from "./actors.ts";

/** Largest dot counter (dot counters travel as uint64 but are kept as exact doubles). */
export const dotCounterMax = Number.MAX_SAFE_INTEGER;

/** One event: the counter-th event of an actor. */
export interface Dot {
  readonly actor: ActorId;
  readonly counter: number;
}

/** Orders dots canonically: by actor id string, then counter. */
export function dotCompare(a: Dot, b: Dot): number {
  if (a.actor !== b.actor) return actorRank(a.actor) - actorRank(b.actor);
  return a.counter - b.counter;
}

function dotKey(d: Dot): string {
  return `${d.actor as number}:${d.counter}`;
}

/** A version vector: actor -> highest contiguous counter, entries sorted canonically, no zeros. */
export class VersionVector {
  /** Parallel arrays sorted by actor rank; counters > 0. */
  constructor(readonly actors: ActorId[] = [], readonly counters: number[] = []) {}

  get size(): number {
    return this.actors.length;
  }

  private indexOf(actor: ActorId): number {
    return actorIndex(this.actors, actor);
  }

  get(actor: ActorId): number {
    const i = this.indexOf(actor);
    return i >= 0 ? (this.counters[i] as number) : 0;
  }

  /** Sets actor's counter to max(current, counter). */
  raise(actor: ActorId, counter: number): void {
    if (counter <= 0) return;
    const i = this.indexOf(actor);
    if (i >= 0) {
      if ((this.counters[i] as number) < counter) this.counters[i] = counter;
    } else {
      this.actors.splice(~i, 0, actor);
      this.counters.splice(~i, 0, counter);
    }
  }

  joinWith(other: VersionVector): void {
    for (let i = 0; i < other.actors.length; i++) this.raise(other.actors[i] as ActorId, other.counters[i] as number);
  }

  clone(): VersionVector {
    return new VersionVector(this.actors.slice(), this.counters.slice());
  }

  equals(other: VersionVector): boolean {
    if (this.actors.length !== other.actors.length) return false;
    for (let i = 0; i < this.actors.length; i++) {
      if (this.actors[i] !== other.actors[i] || this.counters[i] !== other.counters[i]) return false;
    }
    return true;
  }

  /** Packed form for src/accel: actor ranks ascending, counters. */
  packed(): { actors: Uint32Array; counters: Float64Array } {
    const n = this.actors.length;
    const actors = new Uint32Array(n);
    const counters = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      actors[i] = actorRank(this.actors[i] as ActorId);
      counters[i] = this.counters[i] as number;
    }
    return { actors, counters };
  }

  /** Causal order of this vector vs other (Equal, Before, After, Concurrent), via src/accel. */
  compare(other: VersionVector): ClockOrder {
    const a = this.packed();
    const b = other.packed();
    return accel().clocks.compare(a.actors, a.counters, b.actors, b.counters);
  }
}

/**
 * A causal context: every dot at or below the version vector, plus the dots in the cloud.
 * Kept compact: no cloud dot is covered by the vector or extends it contiguously, so equal
 * sets of dots have equal representations.
 */
export class CausalContext {
  constructor(readonly vv: VersionVector = new VersionVector(), public cloud: Dot[] = []) {}

  contains(d: Dot): boolean {
    if (d.counter <= this.vv.get(d.actor)) return true;
    for (const c of this.cloud) if (c.actor === d.actor && c.counter === d.counter) return true;
    return false;
  }

  /** Highest counter of actor in this context (vector or cloud). */
  max(actor: ActorId): number {
    let m = this.vv.get(actor);
    for (const c of this.cloud) if (c.actor === actor && c.counter > m) m = c.counter;
    return m;
  }

  add(d: Dot): void {
    if (this.contains(d)) return;
    this.cloud.push(d);
    this.compact();
  }

  joinWith(other: CausalContext): void {
    this.vv.joinWith(other.vv);
    for (const d of other.cloud) if (!this.contains(d)) this.cloud.push(d);
    this.compact();
  }

  /**
   * Folds cloud dots into the vector where contiguous, drops covered and repeated ones, sorts
   * the rest: afterwards equal sets of dots have equal representations (and so equal encodings
   * and digests), whatever shape the input had - a peer's or client's context may repeat a dot.
   */
  compact(): void {
    if (this.cloud.length === 0) return;
    this.cloud.sort(dotCompare);
    const kept: Dot[] = [];
    let last: Dot | undefined;
    for (const d of this.cloud) {
      const v = this.vv.get(d.actor);
      if (d.counter <= v) continue;
      if (d.counter === v + 1) this.vv.raise(d.actor, d.counter);
      else if (last === undefined || last.actor !== d.actor || last.counter !== d.counter) kept.push(d);
      last = d;
    }
    this.cloud = kept; // sorted order means one pass settles contiguity
  }

  /**
   * The dots in both contexts, compact. What a client's context is clamped to: the part of it
   * this replica has seen, so a forged or foreign dot can neither delete a value nor push the
   * replica's own counter to its end.
   */
  intersect(other: CausalContext): CausalContext {
    const vv = new VersionVector();
    for (let i = 0; i < this.vv.actors.length; i++) {
      const a = this.vv.actors[i] as ActorId;
      const m = Math.min(this.vv.counters[i] as number, other.vv.get(a));
      if (m > 0) { vv.actors.push(a); vv.counters.push(m); } // rank order kept: a subsequence of this.vv
    }
    const cloud: Dot[] = [];
    const others = other.cloudSet();
    for (const d of this.cloud) {
      if (d.counter <= other.vv.get(d.actor) || others.has(dotKey(d))) cloud.push(d);
    }
    for (const d of other.cloud) if (d.counter <= this.vv.get(d.actor)) cloud.push(d);
    const out = new CausalContext(vv, cloud);
    out.compact();
    return out;
  }

  private cloudSet(): Set<string> {
    const s = new Set<string>();
    for (const d of this.cloud) s.add(dotKey(d));
    return s;
  }

  clone(): CausalContext {
    return new CausalContext(this.vv.clone(), this.cloud.slice());
  }

  equals(other: CausalContext): boolean {
    if (!this.vv.equals(other.vv) || this.cloud.length !== other.cloud.length) return false;
    for (let i = 0; i < this.cloud.length; i++) {
      const a = this.cloud[i] as Dot;
      const b = other.cloud[i] as Dot;
      if (a.actor !== b.actor || a.counter !== b.counter) return false;
    }
    return true;
  }
}
