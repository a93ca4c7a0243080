// Observed-remove set of byte strings, add-wins, with dots and a causal context (the optimised
// delta OR-Set of Almeida, Shoker and Baquero): each member keeps only the dots of the adds that
// put it there, and a remove leaves no tombstone per element - what a replica has seen is its
// causal context, so a removed member's dots are simply absent from the map and present in it.

import { type ActorId } from "./actors.ts";
import { CausalContext, dotCompare, type Dot } from "./clocks.ts";
import { CrdtError, CrdtErrorCode } from "./errors.ts";
import { compareBytes } from "./lww.ts";
import { setMemberBytesMax } from "../limits.ts";

/** One member and the dots of the adds that put it there (never empty, sorted by dot). */
export interface OrSetEntry {
  readonly member: Uint8Array;
  readonly dots: readonly Dot[];
}

/** Above this many cloud dots, membership tests go through a hash set instead of a scan. */
const cloudScanMax = 8;

/** A membership test for ctx's dots, fast for a context with a large cloud. */
function seenBy(ctx: CausalContext): (d: Dot) => boolean {
  if (ctx.cloud.length <= cloudScanMax) return (d) => ctx.contains(d);
  const cloud = new Set<string>();
  for (const d of ctx.cloud) cloud.add(`${d.actor as number}:${d.counter}`);
  return (d) => d.counter <= ctx.vv.get(d.actor) || cloud.has(`${d.actor as number}:${d.counter}`);
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
   * entries sorted by member (bytewise), each with at least one dot, dots sorted; every dot is
   * in ctx. Entries are never changed in place (clones share them).
   */
  constructor(public entries: OrSetEntry[] = [], public ctx: CausalContext = new CausalContext()) {}

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
    // This side's members: the other side may have removed some of their dots.
    const entries = this.entries;
    for (let i = 0; i < entries.length; i++) {
      const x = entries[i] as OrSetEntry;
      const j = other.entries.length === 0 ? -1 : other.indexOf(x.member);
      let dots: Dot[];
      if (j < 0) {
        // The common case of a small delta into a big set: most members are untouched, and
        // finding that out allocates nothing.
        if (otherCtxEmpty || !x.dots.some(otherSeen)) continue;
        dots = x.dots.filter((d) => !otherSeen(d));
      } else {
        dots = joinDots(x.dots, (other.entries[j] as OrSetEntry).dots, thisSeen, otherSeen);
        if (sameDots(dots, x.dots)) continue;
      }
      changed = true;
      if (dots.length === 0) removed++;
      entries[i] = { member: x.member, dots };
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
    return new OrSet(this.entries.slice(), this.ctx.clone());
  }
}
