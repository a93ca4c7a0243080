// Last-writer-wins register of bytes, ordered by (HLC timestamp, actor id) - never by raw wall
// time - so a write made after seeing another always wins, even across skewed clocks.
//
// It is a dotted register so that a delete removes exactly what it observed: each write is an
// entry (actor, HLC timestamp, value), and the register keeps a context, per actor the highest
// timestamp of that actor's writes it has seen. Join as the MV register's: an entry survives if
// both sides hold it or the other side has not seen it. A write replaces every entry its
// replica holds; a delete (removeObserved) is a delta of no entries and the context, so a write
// it did not observe survives (add-wins) whatever the clocks say - ordering by timestamp alone
// would let a delete on a node whose clock runs ahead erase a later write made elsewhere.
//
// The context is exact as a version vector of timestamps: one actor's writes to a key are
// totally ordered by its HLC, and each covers that actor's earlier ones (its replica held them,
// or what removed them, when it wrote), so "seen actor a up to h" means every write of a at or
// below h. Concurrent unobserved writes are all kept as entries; a read shows the greatest by
// (timestamp, actor), as before deletes existed, so without deletes behaviour is unchanged.

import { actorName, actorRank, type ActorId } from "./actors.ts";
import { assert, CrdtError, CrdtErrorCode } from "./errors.ts";
import { hlcCompare, type Hlc } from "./hlc.ts";

import { registerValueBytesMax } from "../limits.ts";

/** Largest register value, in bytes (see src/limits.ts). */
export { registerValueBytesMax };

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One write: its actor, HLC timestamp and value. Immutable. */
export interface LwwEntry {
  readonly actor: ActorId;
  readonly ms: number;
  readonly logical: number;
  readonly value: Uint8Array;
}

/** Orders writes by (timestamp, actor): the greatest is the one a read shows. */
export function compareEntries(a: LwwEntry, b: LwwEntry): number {
  if (a.ms !== b.ms) return a.ms - b.ms;
  if (a.logical !== b.logical) return a.logical - b.logical;
  return actorRank(a.actor) - actorRank(b.actor);
}

/** Per actor, the highest timestamp of its writes seen (absent: none). Parallel arrays sorted by actor rank. */
export class LwwClock {
  constructor(readonly actors: ActorId[] = [], readonly ms: number[] = [], readonly logical: number[] = []) {}

  get size(): number {
    return this.actors.length;
  }

  private indexOf(actor: ActorId): number {
    const r = actorRank(actor);
    let lo = 0;
    let hi = this.actors.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.actors[mid] as ActorId;
      if (m === actor) return mid;
      if (actorRank(m) < r) lo = mid + 1;
      else hi = mid;
    }
    return ~lo;
  }

  /** actor's highest seen timestamp, or null if none. */
  get(actor: ActorId): Hlc | null {
    const i = this.indexOf(actor);
    return i >= 0 ? { ms: this.ms[i] as number, logical: this.logical[i] as number } : null;
  }

  /** Has this clock seen actor's write at (ms, logical)? */
  covers(actor: ActorId, ms: number, logical: number): boolean {
    const i = this.indexOf(actor);
    if (i < 0) return false;
    const m = this.ms[i] as number;
    return m > ms || (m === ms && (this.logical[i] as number) >= logical);
  }

  /** Raises actor's timestamp to at least (ms, logical). */
  raise(actor: ActorId, ms: number, logical: number): void {
    const i = this.indexOf(actor);
    if (i < 0) {
      this.actors.splice(~i, 0, actor);
      this.ms.splice(~i, 0, ms);
      this.logical.splice(~i, 0, logical);
    } else if (!this.covers(actor, ms, logical)) {
      this.ms[i] = ms;
      this.logical[i] = logical;
    }
  }

  joinWith(other: LwwClock): void {
    for (let i = 0; i < other.actors.length; i++) this.raise(other.actors[i] as ActorId, other.ms[i] as number, other.logical[i] as number);
  }

  /** The greatest timestamp, or null when empty. */
  max(): Hlc | null {
    let best: Hlc | null = null;
    for (let i = 0; i < this.actors.length; i++) {
      const t = { ms: this.ms[i] as number, logical: this.logical[i] as number };
      if (best === null || hlcCompare(t, best) > 0) best = t;
    }
    return best;
  }

  equals(other: LwwClock): boolean {
    if (this.actors.length !== other.actors.length) return false;
    for (let i = 0; i < this.actors.length; i++) {
      if (this.actors[i] !== other.actors[i] || this.ms[i] !== other.ms[i] || this.logical[i] !== other.logical[i]) return false;
    }
    return true;
  }

  clone(): LwwClock {
    return new LwwClock(this.actors.slice(), this.ms.slice(), this.logical.slice());
  }
}

const noValue = new Uint8Array(0);

export class LwwRegister {
  /** The kind discriminant (src/kinds): on the prototype, so it costs no memory per state. */
  get kind(): "lww" {
    return "lww";
  }

  /**
   * entries: at most one per actor, sorted by actor rank, each covered by ctx. Empty entries
   * and an empty ctx: never written; empty entries and a non-empty ctx: deleted.
   */
  constructor(public entries: LwwEntry[] = [], public ctx: LwwClock = new LwwClock()) {}

  static create(): LwwRegister {
    return new LwwRegister();
  }

  /** The register holding one write and having seen nothing else (today's single-write form). */
  static single(ms: number, logical: number, actor: ActorId, value: Uint8Array): LwwRegister {
    return new LwwRegister([{ actor, ms, logical, value }], new LwwClock([actor], [ms], [logical]));
  }

  /** The write a read shows: the greatest by (timestamp, actor); null if none. */
  visible(): LwwEntry | null {
    const es = this.entries;
    if (es.length === 1) return es[0] as LwwEntry;
    let best: LwwEntry | null = null;
    for (const e of es) if (best === null || compareEntries(e, best) > 0) best = e;
    return best;
  }

  /** Holds a write a read shows (not never written, not deleted). */
  get isSet(): boolean {
    return this.entries.length > 0;
  }

  /** The visible write's timestamp milliseconds (0 if none). */
  get ms(): number {
    return this.visible()?.ms ?? 0;
  }

  get logical(): number {
    return this.visible()?.logical ?? 0;
  }

  /** The visible write's actor, null if none. */
  get actor(): ActorId | null {
    return this.visible()?.actor ?? null;
  }

  get value(): Uint8Array {
    return this.visible()?.value ?? noValue;
  }

  /** The visible write's timestamp. */
  timestamp(): Hlc {
    const v = this.visible();
    return v === null ? { ms: 0, logical: 0 } : { ms: v.ms, logical: v.logical };
  }

  /**
   * The greatest timestamp this register holds or has seen (its context covers every entry, and
   * a deleted write's timestamp stays in it): what a clock taking this state in must pass, and
   * what a peer's state is checked against for a timestamp too far ahead. Null if never written.
   */
  maxTimestamp(): Hlc | null {
    return this.ctx.max();
  }

  /**
   * Writes value at timestamp ts by actor, replacing every write this replica holds; returns
   * the delta (the new entry, and a context of everything seen plus itself). Refuses with
   * INVALID (changing nothing) if (ts, actor) does not order after the visible write - the
   * caller's HLC must have observed it - or after the actor's own earlier writes.
   */
  set(actor: ActorId, value: Uint8Array, ts: Hlc): LwwRegister {
    if (value.length > registerValueBytesMax) throw new CrdtError(CrdtErrorCode.Invalid, `value longer than ${registerValueBytesMax} bytes`);
    const entry: LwwEntry = { actor, ms: ts.ms, logical: ts.logical, value: value.slice() };
    const top = this.visible();
    if ((top !== null && compareEntries(entry, top) <= 0) || this.ctx.covers(actor, ts.ms, ts.logical)) {
      throw new CrdtError(CrdtErrorCode.Invalid, `timestamp ${ts.ms}.${ts.logical} by ${actorName(actor)} does not follow the current write`);
    }
    const ctx = this.ctx.clone();
    ctx.raise(actor, ts.ms, ts.logical);
    const delta = new LwwRegister([entry], ctx);
    this.entries = [entry];
    this.ctx = ctx.clone();
    return delta;
  }

  /** Delete (observed-remove): drops every entry; returns the delta (no entries, this context), or null if none. */
  removeObserved(): LwwRegister | null {
    if (this.entries.length === 0) return null;
    const delta = new LwwRegister([], this.ctx.clone());
    this.entries = [];
    return delta;
  }

  /**
   * Join: an entry survives if both sides hold it, or the other side has not seen it; contexts
   * join pointwise. Returns whether this changed.
   */
  merge(other: LwwRegister): boolean {
    const a = this.entries;
    const b = other.entries;
    const out: LwwEntry[] = [];
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      const x = a[i];
      const y = b[j];
      const c = x === undefined ? 1 : y === undefined ? -1 : actorRank(x.actor) - actorRank(y.actor);
      if (c === 0 && x !== undefined && y !== undefined) {
        if (x.ms === y.ms && x.logical === y.logical) {
          // The same write on both sides. Should the values differ (never from a correct
          // replica), keep the greater so the join stays commutative.
          out.push(compareBytes(x.value, y.value) >= 0 ? x : y);
        } else {
          // Each side's entry is in its own context, so the older is covered by the other side.
          const keepX = !other.ctx.covers(x.actor, x.ms, x.logical);
          const keepY = !this.ctx.covers(y.actor, y.ms, y.logical);
          assert(!(keepX && keepY), "LWW entries of one actor both unseen by the other side");
          if (keepX) out.push(x);
          else if (keepY) out.push(y);
        }
        i++;
        j++;
      } else if (c < 0 && x !== undefined) {
        if (!other.ctx.covers(x.actor, x.ms, x.logical)) out.push(x);
        i++;
      } else if (y !== undefined) {
        if (!this.ctx.covers(y.actor, y.ms, y.logical)) out.push(y);
        j++;
      }
    }
    const ctx = this.ctx.clone();
    ctx.joinWith(other.ctx);
    const changed = !entriesEqual(out, a) || !ctx.equals(this.ctx);
    this.entries = out;
    this.ctx = ctx;
    return changed;
  }

  equals(other: LwwRegister): boolean {
    return entriesEqual(this.entries, other.entries) && this.ctx.equals(other.ctx);
  }

  clone(): LwwRegister {
    return new LwwRegister(this.entries.slice(), this.ctx.clone());
  }
}

function entriesEqual(a: readonly LwwEntry[], b: readonly LwwEntry[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as LwwEntry;
    const y = b[i] as LwwEntry;
    if (x.actor !== y.actor || x.ms !== y.ms || x.logical !== y.logical || !bytesEqual(x.value, y.value)) return false;
  }
  return true;
}
