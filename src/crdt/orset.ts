// Observed-remove set of byte strings, add-wins, with dots and a causal context (the optimised
// delta OR-Set of Almeida, Shoker and Baquero): each member keeps only the dots of the adds that
// put it there, and a remove leaves no tombstone per element: what a replica has seen is its
// causal context, so a removed member's dots are in the context and in no entry.

import { actorUtf8, type ActorId } from "./actors.ts";
import { CausalContext, dotCompare, type Dot } from "./clocks.ts";
import { CrdtError, CrdtErrorCode } from "./errors.ts";
import { compareBytes } from "./lww.ts";
import { setMemberBytesMax } from "../limits.ts";

/** One member and the dots of the adds that put it there (never empty, sorted by dot). */
export interface OrSetEntry {
  readonly member: Uint8Array;
  readonly dots: readonly Dot[];
}

/** Up to this many loose dots (and no vector), a membership test compares them one by one. */
const cloudScanMax = 4;

/**
 * A membership test for ctx's dots. A join asks it once per dot of the bigger side, so the
 * common shapes of a delta's context (one actor's vector, a few loose dots) get tests that
 * cost a comparison or two.
 */
function seenBy(ctx: CausalContext): (d: Dot) => boolean {
  const vv = ctx.vv;
  if (vv.size === 0 && ctx.cloud.length <= cloudScanMax) {
    // A delta's few loose dots (an add's new and replaced ones): compare counters first.
    const cloud = ctx.cloud;
    return (d) => {
      for (const c of cloud) if (c.counter === d.counter && c.actor === d.actor) return true;
      return false;
    };
  }
  if (ctx.cloud.length === 0) {
    if (vv.size === 0) return () => false;
    if (vv.size === 1) {
      const actor = vv.actors[0] as ActorId;
      const max = vv.counters[0] as number;
      return (d) => d.actor === actor && d.counter <= max;
    }
    return (d) => d.counter <= vv.get(d.actor);
  }
  const cloud = new Map<ActorId, Set<number>>();
  for (const d of ctx.cloud) {
    let s = cloud.get(d.actor);
    if (s === undefined) cloud.set(d.actor, (s = new Set()));
    s.add(d.counter);
  }
  if (vv.size === 0) return (d) => cloud.get(d.actor)?.has(d.counter) === true;
  return (d) => d.counter <= vv.get(d.actor) || cloud.get(d.actor)?.has(d.counter) === true;
}

/** Bytes of a varint of n (a dot counter, < 2^53). */
function varintBytes(n: number): number {
  let b = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    b++;
  }
  return b;
}

/**
 * Bytes of one dot's encoding (proto/crdt.proto Dot, as a repeated field) at most: its actor id
 * and counter, plus the dot's tag and length (<= 2 bytes: a dot is under 16 KiB), the actor's
 * tag and length (<= 2) and the counter's tag.
 */
export function dotBytesUpperBound(actorBytes: number, counter: number): number {
  return actorBytes + varintBytes(counter) + 7;
}

/** Bytes an entry adds besides its member and dots: its tag and length (<= 6: an entry with many dots passes 2 MiB), the member's tag and length (<= 4). */
export const entryBytesOver = 10;

/** Bytes of one entry's encoding at most. */
function entryBytes(e: OrSetEntry): number {
  let n = e.member.length + entryBytesOver;
  for (const d of e.dots) n += dotBytesUpperBound(actorUtf8(d.actor).length, d.counter);
  return n;
}

function anySeen(dots: readonly Dot[], seen: (d: Dot) => boolean): boolean {
  for (let k = 0; k < dots.length; k++) if (seen(dots[k] as Dot)) return true;
  return false;
}

function sameDots(a: readonly Dot[], b: readonly Dot[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (dotCompare(a[i] as Dot, b[i] as Dot) !== 0) return false;
  return true;
}

/**
 * The dots member keeps in a join: those both sides hold, those of one side the other has not
 * seen. `a`, `b` sorted; the result sorted, without repeats.
 */
function joinDots(a: readonly Dot[], b: readonly Dot[], aSeen: (d: Dot) => boolean, bSeen: (d: Dot) => boolean): Dot[] {
  const out: Dot[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    const c = x === undefined ? 1 : y === undefined ? -1 : dotCompare(x, y);
    if (c === 0 && x !== undefined) {
      out.push(x);
      i++;
      j++;
    } else if (c < 0 && x !== undefined) {
      if (!bSeen(x)) out.push(x);
      i++;
    } else if (y !== undefined) {
      if (!aSeen(y)) out.push(y);
      j++;
    }
  }
  return out;
}

/** Above this many new members, a join rebuilds the entry array instead of inserting one by one. */
const spliceAddsMax = 16;

/** Two entry lists sorted by member, with no member in both, as one sorted list. */
function mergeSorted(a: readonly OrSetEntry[], b: readonly OrSetEntry[]): OrSetEntry[] {
  const out = new Array<OrSetEntry>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as OrSetEntry;
    const y = b[j] as OrSetEntry;
    if (compareBytes(x.member, y.member) < 0) { out[k++] = x; i++; } else { out[k++] = y; j++; }
  }
  while (i < a.length) out[k++] = a[i++] as OrSetEntry;
  while (j < b.length) out[k++] = b[j++] as OrSetEntry;
  return out;
}

/** Distinct members, sorted bytewise, copied (the caller's buffers may be reused). */
function distinctSorted(members: readonly Uint8Array[]): Uint8Array[] {
  const sorted = members.map((m) => m.slice()).sort(compareBytes);
  const out: Uint8Array[] = [];
  for (const m of sorted) if (out.length === 0 || compareBytes(out[out.length - 1] as Uint8Array, m) !== 0) out.push(m);
  return out;
}

export class OrSet {
  /** The kind discriminant (src/kinds): on the prototype, so it costs no memory per state. */
  get kind(): "set" {
    return "set";
  }

  /**
   * An upper bound of the entries' encoded bytes (the sum of entryBytes), kept up to date by
   * every change, so the engine's size bounds cost O(1) per write instead of a pass over the set.
   */
  entriesBytes: number;

  /**
   * entries sorted by member (bytewise), each with at least one dot, dots sorted; every dot is
   * in ctx. Entries are never changed in place (clones share them).
   */
  constructor(public entries: OrSetEntry[] = [], public ctx: CausalContext = new CausalContext(), entriesBytes?: number) {
    if (entriesBytes === undefined) {
      entriesBytes = 0;
      for (const e of entries) entriesBytes += entryBytes(e);
    }
    this.entriesBytes = entriesBytes;
  }

  /** Index of member in entries, or ~insertion point. */
  private indexOf(member: Uint8Array): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareBytes((this.entries[mid] as OrSetEntry).member, member);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return ~lo;
  }

  /** The members, sorted bytewise (shared buffers: do not modify). */
  members(): Uint8Array[] {
    return this.entries.map((e) => e.member);
  }

  contains(member: Uint8Array): boolean {
    return this.indexOf(member) >= 0;
  }

  count(): number {
    return this.entries.length;
  }

  /** How many of `members` (counted once each) are not in the set. */
  countAbsent(members: readonly Uint8Array[]): number {
    let n = 0;
    for (const m of distinctSorted(members)) if (!this.contains(m)) n++;
    return n;
  }

  /**
   * Adds members as actor. Each distinct member gets a new dot (one past the highest of actor's
   * dots this replica has seen of the key) that replaces the dots it held here, so a re-add
   * never grows a member's dots. Returns the delta: the new dots, with a context of those and
   * of the dots they replace. Refused (INVALID, nothing changed) for an empty member or one
   * longer than setMemberBytesMax.
   */
  add(actor: ActorId, members: readonly Uint8Array[]): OrSet {
    for (const m of members) {
      if (m.length === 0) throw new CrdtError(CrdtErrorCode.Invalid, "a set member must not be empty");
      if (m.length > setMemberBytesMax) throw new CrdtError(CrdtErrorCode.Invalid, `set member longer than ${setMemberBytesMax} bytes`);
    }
    const distinct = distinctSorted(members);
    const first = this.ctx.max(actor) + 1;
    if (!Number.isSafeInteger(first + distinct.length)) throw new CrdtError(CrdtErrorCode.OutOfRange, "dot counter exhausted");
    const ctx = new CausalContext();
    const entries: OrSetEntry[] = [];
    for (let k = 0; k < distinct.length; k++) {
      const member = distinct[k] as Uint8Array;
      const dot: Dot = { actor, counter: first + k };
      const i = this.indexOf(member);
      if (i >= 0) for (const d of (this.entries[i] as OrSetEntry).dots) ctx.cloud.push(d);
      ctx.cloud.push(dot);
      entries.push({ member, dots: [dot] });
    }
    ctx.compact();
    const delta = new OrSet(entries, ctx);
    this.merge(delta);
    return delta;
  }

  /**
   * Removes the members this replica holds: the delta has no entries and a context of exactly
   * their dots, so joined anywhere it removes what was observed here and nothing else - an add
   * this replica had not seen keeps its member (add wins). Members not in the set are ignored;
   * removing none gives an empty delta (bottom).
   */
  remove(members: readonly Uint8Array[]): OrSet {
    const ctx = new CausalContext();
    for (const m of members) {
      const i = this.indexOf(m);
      if (i >= 0) for (const d of (this.entries[i] as OrSetEntry).dots) ctx.cloud.push(d);
    }
    ctx.compact();
    const delta = new OrSet([], ctx);
    this.merge(delta);
    return delta;
  }

  /** True for the bottom: no members and an empty context (a delta that changes nothing). */
  get isEmpty(): boolean {
    return this.entries.length === 0 && this.ctx.vv.size === 0 && this.ctx.cloud.length === 0;
  }

  /**
   * Join: a member keeps the dots both sides hold and those one side holds that the other has
   * not seen; a member left without dots is gone. Returns whether this changed.
   */
  merge(other: OrSet): boolean {
    const thisSeen = seenBy(this.ctx);
    const otherSeen = seenBy(other.ctx);
    const otherCtxEmpty = other.ctx.vv.size === 0 && other.ctx.cloud.length === 0;
    let changed = false;
    let removed = 0;
    // This side's members: the other side may have removed some of their dots. Both lists
    // are sorted by member, so one pointer walks the other side's.
    const entries = this.entries;
    const theirs = other.entries;
    let j = 0;
    for (let i = 0; i < entries.length; i++) {
      const x = entries[i] as OrSetEntry;
      let c = 1;
      while (j < theirs.length && (c = compareBytes((theirs[j] as OrSetEntry).member, x.member)) < 0) j++;
      let dots: Dot[];
      if (j >= theirs.length || c !== 0) {
        // The common case of a small delta into a big set: most members are untouched, and
        // finding that out allocates nothing.
        if (otherCtxEmpty || !anySeen(x.dots, otherSeen)) continue;
        dots = x.dots.filter((d) => !otherSeen(d));
      } else {
        dots = joinDots(x.dots, (theirs[j] as OrSetEntry).dots, thisSeen, otherSeen);
        if (sameDots(dots, x.dots)) continue;
      }
      changed = true;
      if (dots.length === 0) removed++;
      const next = { member: x.member, dots };
      this.entriesBytes += (dots.length === 0 ? 0 : entryBytes(next)) - entryBytes(x);
      entries[i] = next;
    }
    if (removed > 0) this.entries = entries.filter((e) => e.dots.length > 0);
    // The other side's members this side does not hold: kept where this side has not seen them.
    const added: OrSetEntry[] = [];
    for (const y of other.entries) {
      if (this.indexOf(y.member) >= 0) continue;
      const dots = y.dots.filter((d) => !thisSeen(d));
      if (dots.length > 0) added.push(dots.length === y.dots.length ? y : { member: y.member, dots });
    }
    if (added.length > 0) {
      changed = true;
      for (const y of added) this.entriesBytes += entryBytes(y);
      // A few go in place; many (a big SAdd, a state from anti-entropy) in one sorted merge,
      // not one array shift each.
      if (added.length <= spliceAddsMax) for (const y of added) this.entries.splice(~this.indexOf(y.member), 0, y);
      else this.entries = mergeSorted(this.entries, added);
    }
    if (!otherCtxEmpty) {
      const ctx = this.ctx.clone();
      ctx.joinWith(other.ctx);
      if (!ctx.equals(this.ctx)) {
        this.ctx = ctx;
        changed = true;
      }
    }
    return changed;
  }

  equals(other: OrSet): boolean {
    if (this.entries.length !== other.entries.length || !this.ctx.equals(other.ctx)) return false;
    for (let i = 0; i < this.entries.length; i++) {
      const x = this.entries[i] as OrSetEntry;
      const y = other.entries[i] as OrSetEntry;
      if (compareBytes(x.member, y.member) !== 0 || !sameDots(x.dots, y.dots)) return false;
    }
    return true;
  }

  clone(): OrSet {
    return new OrSet(this.entries.slice(), this.ctx.clone(), this.entriesBytes);
  }
}
