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

import { actorIndex, actorName, actorRank, type ActorId } from "./actors.ts";
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
    return actorIndex(this.actors, actor);
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
}

const noValue = new Uint8Array(0);
const noRows: readonly number[] = [];
/** Context rows of two states up to which a join first tries the linear-scan shortcut (LwwRegister.dominates). */
const joinShortcutRowsMax = 16;

export class LwwRegister {
  /** The kind discriminant (src/kinds): on the prototype, so it costs no memory per state. */
  get kind(): "lww" {
    return "lww";
  }

  /**
   * The visible write is kept inline (ms, logical, actor, value; actor null when the register
   * holds none), so a register holding one write and having seen nothing else - the common
   * case, and every register before deletes existed - costs what it did then. `others`: the
   * other entries (concurrent writes nobody has seen together), sorted by actor rank. `seen`:
   * the context of actors holding no entry, as flattened (actor, ms, logical) triples sorted by
   * actor rank. Both null when empty, and never changed in place (clones and deltas share them).
   *
   * An entry's timestamp is always its actor's context timestamp: a later write of that actor
   * covers the earlier, so a register that has seen it no longer holds the older entry (the
   * join keeps this; the decoder refuses a state breaking it). So the context is the entries'
   * timestamps plus `seen`, and this form is canonical: equal states, equal fields.
   */
  constructor(
    public ms: number = 0,
    public logical: number = 0,
    public actor: ActorId | null = null,
    public value: Uint8Array = noValue,
    private others: readonly LwwEntry[] | null = null,
    private seen: readonly number[] | null = null,
  ) {}

  static create(): LwwRegister {
    return new LwwRegister();
  }

  /**
   * The register holding entries (at most one per actor) and having seen clock, which must
   * hold each entry's actor at exactly the entry's timestamp.
   */
  static fromParts(entries: readonly LwwEntry[], clock: LwwClock): LwwRegister {
    const r = new LwwRegister();
    let top: LwwEntry | null = null;
    for (const e of entries) if (top === null || compareEntries(e, top) > 0) top = e;
    if (top !== null) {
      r.ms = top.ms;
      r.logical = top.logical;
      r.actor = top.actor;
      r.value = top.value;
    }
    const sorted = entries.slice().sort((x, y) => actorRank(x.actor) - actorRank(y.actor));
    const others = sorted.filter((e) => e !== top);
    r.others = others.length > 0 ? others : null;
    // Both sorted by actor rank, and every entry's actor is in the clock: one walk.
    const seen: number[] = [];
    let k = 0;
    for (let i = 0; i < clock.size; i++) {
      const a = clock.actors[i] as ActorId;
      const e = sorted[k];
      if (e !== undefined && e.actor === a) {
        assert(e.ms === clock.ms[i] && e.logical === clock.logical[i], "LWW entry apart from its actor's context timestamp");
        k++;
        continue;
      }
      seen.push(a, clock.ms[i] as number, clock.logical[i] as number);
    }
    assert(k === sorted.length, "LWW entry outside its context");
    r.seen = seen.length > 0 ? seen : null;
    return r;
  }

  /**
   * The register holding entries (sorted by actor rank, at most one per actor) and having
   * seen, beyond them, the rows of seen (flattened (actor, ms, logical) triples sorted by actor
   * rank, none of an entry's actor). The decoder's constructor: no clock is built.
   */
  static ofSorted(entries: readonly LwwEntry[], seen: readonly number[]): LwwRegister {
    let top: LwwEntry | null = null;
    for (const e of entries) if (top === null || compareEntries(e, top) > 0) top = e;
    const others = entries.length > 1 ? entries.filter((e) => e !== top) : null;
    return new LwwRegister(top?.ms ?? 0, top?.logical ?? 0, top?.actor ?? null, top?.value ?? noValue, others, seen.length > 0 ? seen : null);
  }

  /** The write a read shows: the greatest by (timestamp, actor); null if none. */
  visible(): LwwEntry | null {
    return this.actor === null ? null : { actor: this.actor, ms: this.ms, logical: this.logical, value: this.value };
  }

  /** Holds a write a read shows (not never written, not deleted). */
  get isSet(): boolean {
    return this.actor !== null;
  }

  /** The one write and nothing else seen: the wire's single-write form (src/codec/states.ts). */
  get isSingleWrite(): boolean {
    return this.actor !== null && this.others === null && this.seen === null;
  }

  /** The visible write's timestamp ({0, 0} if none). */
  timestamp(): Hlc {
    return { ms: this.ms, logical: this.logical };
  }

  /** Every entry, sorted by actor rank (a fresh array). */
  get entries(): LwwEntry[] {
    const top = this.visible();
    if (top === null) return [];
    const out = this.others === null ? [] : this.others.slice();
    const r = actorRank(top.actor);
    let i = 0;
    while (i < out.length && actorRank((out[i] as LwwEntry).actor) < r) i++;
    out.splice(i, 0, top);
    return out;
  }

  get entryCount(): number {
    return this.actor === null ? 0 : 1 + (this.others?.length ?? 0);
  }

  /** Bytes of all entries' values. */
  get valueBytes(): number {
    let n = this.value.length;
    if (this.others !== null) for (const e of this.others) n += e.value.length;
    return n;
  }

  /** The context (a fresh clock): every entry's timestamp and the seen rows. */
  get ctx(): LwwClock {
    const c = new LwwClock();
    if (this.actor !== null) c.raise(this.actor, this.ms, this.logical);
    if (this.others !== null) for (const e of this.others) c.raise(e.actor, e.ms, e.logical);
    const s = this.seen;
    if (s !== null) for (let i = 0; i < s.length; i += 3) c.raise(s[i] as ActorId, s[i + 1] as number, s[i + 2] as number);
    return c;
  }

  /**
   * The context beyond the entries (an entry's timestamp is its actor's context timestamp):
   * flattened (actor, ms, logical) triples sorted by actor rank; do not modify.
   */
  get seenRows(): readonly number[] {
    return this.seen ?? noRows;
  }

  get contextSize(): number {
    return this.entryCount + (this.seen === null ? 0 : this.seen.length / 3);
  }

  /** Has this register seen actor's write at (ms, logical)? */
  covers(actor: ActorId, ms: number, logical: number): boolean {
    const t = this.stampOf(actor);
    return t !== null && (t.ms > ms || (t.ms === ms && t.logical >= logical));
  }

  /** actor's context timestamp, or null if it has seen none of actor's writes. */
  private stampOf(actor: ActorId): Hlc | null {
    if (this.actor === actor) return { ms: this.ms, logical: this.logical };
    if (this.others !== null) for (const e of this.others) if (e.actor === actor) return { ms: e.ms, logical: e.logical };
    const s = this.seen;
    if (s !== null) for (let i = 0; i < s.length; i += 3) if (s[i] === actor) return { ms: s[i + 1] as number, logical: s[i + 2] as number };
    return null;
  }

  /**
   * The greatest timestamp this register holds or has seen (a deleted write's stays in its
   * context): what a clock taking this state in must pass, and what a peer's state is checked
   * against for a timestamp too far ahead. Null if never written.
   */
  maxTimestamp(): Hlc | null {
    // The visible write is the greatest entry; only the seen rows can pass it.
    let best: Hlc | null = this.actor === null ? null : { ms: this.ms, logical: this.logical };
    const s = this.seen;
    if (s !== null) {
      for (let i = 0; i < s.length; i += 3) {
        const t = { ms: s[i + 1] as number, logical: s[i + 2] as number };
        if (best === null || hlcCompare(t, best) > 0) best = t;
      }
    }
    return best;
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
    if ((top !== null && compareEntries(entry, top) <= 0) || this.covers(actor, ts.ms, ts.logical)) {
      throw new CrdtError(CrdtErrorCode.Invalid, `timestamp ${ts.ms}.${ts.logical} by ${actorName(actor)} does not follow the current write`);
    }
    // The context of the other actors: every entry's and seen row's but actor's own (which
    // the new entry carries).
    const rows: [ActorId, number, number][] = [];
    if (this.actor !== null && this.actor !== actor) rows.push([this.actor, this.ms, this.logical]);
    if (this.others !== null) for (const e of this.others) if (e.actor !== actor) rows.push([e.actor, e.ms, e.logical]);
    const seen = this.seen;
    if (seen !== null) for (let i = 0; i < seen.length; i += 3) if (seen[i] !== actor) rows.push([seen[i] as ActorId, seen[i + 1] as number, seen[i + 2] as number]);
    if (rows.length > 1) rows.sort((x, y) => actorRank(x[0]) - actorRank(y[0]));
    const delta = new LwwRegister(entry.ms, entry.logical, actor, entry.value, null, rows.length > 0 ? rows.flat() : null);
    this.assign(delta);
    return delta;
  }

  /** Delete (observed-remove): drops every entry; returns the delta (no entries, this context), or null if none. */
  removeObserved(): LwwRegister | null {
    if (this.actor === null) return null;
    const delta = LwwRegister.fromParts([], this.ctx);
    this.assign(delta);
    return delta;
  }

  /**
   * Join: an entry survives if both sides hold it, or the other side has not seen it; contexts
   * join pointwise. Returns whether this changed.
   */
  merge(other: LwwRegister): boolean {
    if (this.isSingleWrite && other.isSingleWrite && this.actor === other.actor) {
      // One writer's two states (the common delta): the later write covers the earlier.
      const c = this.ms !== other.ms ? other.ms - this.ms : other.logical !== this.logical ? other.logical - this.logical : compareBytes(other.value, this.value);
      if (c <= 0) return false;
      this.assign(other);
      return true;
    }
    // Small states (every replication delta): when one side has seen all the other has and
    // keeps all its own entries, the join is that side - decided without building clocks.
    if (this.contextSize + other.contextSize <= joinShortcutRowsMax) {
      if (this.dominates(other)) return false;
      if (other.dominates(this)) {
        this.assign(other);
        return true;
      }
    }
    const a = this.entries;
    const b = other.entries;
    const ca = this.ctx;
    const cb = other.ctx;
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
          // Each side's entry is its actor's context timestamp, so the older one is covered
          // by the other side and at most one survives.
          if (!cb.covers(x.actor, x.ms, x.logical)) out.push(x);
          else if (!ca.covers(y.actor, y.ms, y.logical)) out.push(y);
        }
        i++;
        j++;
      } else if (c < 0 && x !== undefined) {
        if (!cb.covers(x.actor, x.ms, x.logical)) out.push(x);
        i++;
      } else if (y !== undefined) {
        if (!ca.covers(y.actor, y.ms, y.logical)) out.push(y);
        j++;
      }
    }
    ca.joinWith(cb);
    const next = LwwRegister.fromParts(out, ca);
    if (next.equals(this)) return false;
    this.assign(next);
    return true;
  }

  /**
   * Is the join of o into this exactly this? True when this has seen every write o has seen
   * (so o's entries are either held here or removed here, and the context is this one) and
   * each entry here is unseen by o or held by o identically (so o removes none of them).
   * Linear scans: for small states only.
   */
  private dominates(o: LwwRegister): boolean {
    if (o.actor !== null && !this.covers(o.actor, o.ms, o.logical)) return false;
    if (o.others !== null) for (const e of o.others) if (!this.covers(e.actor, e.ms, e.logical)) return false;
    const s = o.seen;
    if (s !== null) for (let i = 0; i < s.length; i += 3) if (!this.covers(s[i] as ActorId, s[i + 1] as number, s[i + 2] as number)) return false;
    if (this.actor !== null && !o.keeps(this.actor, this.ms, this.logical, this.value)) return false;
    if (this.others !== null) for (const e of this.others) if (!o.keeps(e.actor, e.ms, e.logical, e.value)) return false;
    return true;
  }

  /** Would this register, joined with a register holding the entry, leave that entry in place: unseen here, or held identically? */
  private keeps(actor: ActorId, ms: number, logical: number, value: Uint8Array): boolean {
    if (!this.covers(actor, ms, logical)) return true;
    if (this.actor === actor) return this.ms === ms && this.logical === logical && bytesEqual(this.value, value);
    if (this.others !== null) {
      for (const e of this.others) if (e.actor === actor) return e.ms === ms && e.logical === logical && bytesEqual(e.value, value);
    }
    return false;
  }

  private assign(o: LwwRegister): void {
    this.ms = o.ms;
    this.logical = o.logical;
    this.actor = o.actor;
    this.value = o.value;
    this.others = o.others;
    this.seen = o.seen;
  }

  equals(other: LwwRegister): boolean {
    if (this.actor !== other.actor || this.ms !== other.ms || this.logical !== other.logical || !bytesEqual(this.value, other.value)) return false;
    if (!entriesEqual(this.others ?? [], other.others ?? [])) return false;
    const s = this.seen ?? [];
    const t = other.seen ?? [];
    if (s.length !== t.length) return false;
    for (let i = 0; i < s.length; i++) if (s[i] !== t[i]) return false;
    return true;
  }

  clone(): LwwRegister {
    return new LwwRegister(this.ms, this.logical, this.actor, this.value, this.others, this.seen);
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
