// Version vectors, dots and causal contexts (a version vector plus a "dot cloud" of
// non-contiguous dots) - the causality bookkeeping of the MV-Register. Comparison of vector
// clocks goes through src/accel so the native batch path can take it.

import { accel, type ClockOrder } from "../accel/index.ts";
import { actorIndex, actorRank, type ActorId } from "./actors.ts";

/** Largest dot counter (dot counters travel as uint64 but are kept as exact doubles). */
export const dotCounterMax = Number.MAX_SAFE_INTEGER;

/**
 * Where an actor's dots (and counter rows) start in a key that holds none of its own: a key's
 * *new life*. Dots and counter rows are per key, and a key's record goes away once its delete is
 * collected (src/cluster/gc.ts) and forgotten. Written again, an actor would count from zero
 * again, while a replica that still holds the old record - one that has not run its own
 * collection yet, minutes later after a mass delete, or a copy of a running node put back - holds
 * those low counts as removed and drops the new write; its state, shipped back, then removes the
 * write on the writer too (the chaos suite's restore scenario lost acknowledged set adds and
 * increments so: test/engine/collect-forgotten.test.ts). So an actor that holds nothing of its
 * own in a key starts above dotBase(its HLC ms) and claims everything of its own below as seen
 * (dots) or reset (counter rows). The claim is true: what the actor wrote in an earlier life of
 * the key was all removed (the record was a collected delete) and lies below, since the clock has
 * moved on by at least the minute a collected record is remembered, and a life would need more
 * than dotBasePerMs dots per millisecond of one actor in one key to climb past the next base.
 * A key the actor never wrote pays the same: 8-byte counters instead of 1-byte ones.
 */
export const dotBasePerMs = 1024;
/** Largest ms a base is taken from (year 2160): dotBase stays below 2^53 with 2^51 of room above. */
export const dotBaseMsMax = 6_000_000_000_000;

/** The base of an actor's dots and rows in a key it holds nothing of its own in, at HLC ms (see dotBasePerMs). */
export function dotBase(ms: number): number {
  return Math.floor(Math.min(Math.max(ms, 0), dotBaseMsMax)) * dotBasePerMs;
}

/**
 * The first of actor's next dots in ctx: one past its highest; when ctx holds none of its dots
 * and base > 0, one past base, and `claim` = base (the caller adds actor's dots up to it to the
 * write's context and to ctx: see dotBasePerMs). base 0: no claim (CRDT tests, old behaviour).
 */
export function nextDot(ctx: CausalContext, actor: ActorId, base: number): { first: number; claim: number } {
  const seen = ctx.max(actor);
  if (seen > 0 || base <= 0) return { first: seen + 1, claim: 0 };
  return { first: base + 1, claim: base };
}

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
