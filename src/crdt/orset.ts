// Observed-remove set of byte strings, add-wins, with dots and a causal context (the optimised
// delta OR-Set of Almeida, Shoker and Baquero): each member keeps only the dots of the adds that
// put it there, and a remove leaves no tombstone per element: what a replica has seen is its
// causal context, so a removed member's dots are in the context and in no entry.
//
// Kept compact (issue 13: memory per member within 3x Redis): members are one sorted array of
// strings of one char per byte, each member's first dot in two parallel number arrays, and
// only the rare member with several dots (concurrent adds no re-add has replaced yet) has a
// dots array, in a side map. Measured with `imdb bench types --items 1000000` (node RSS after
// a restart from a snapshot, 1000 members per key): an entry object with a Uint8Array member
// and an array of Dot objects cost 229 B per member, this layout ~104 B (Redis: 56 B).

import { NameIndex, nameIndexMin, searchNames } from "./name-index.ts";
import { actorUtf8, type ActorId } from "./actors.ts";
import { CausalContext, dotCompare, nextDot, type Dot } from "./clocks.ts";
import { assert, CrdtError, CrdtErrorCode } from "./errors.ts";
import { setMemberBytesMax } from "../limits.ts";

/** One member and the dots of the adds that put it there (never empty, sorted by dot). */
export interface OrSetEntry {
  readonly member: Uint8Array;
  readonly dots: readonly Dot[];
}

/** Most bytes one String.fromCharCode.apply call takes (engines bound a call's argument count). */
const charCodesPerCallMax = 4096;

/** Up to this many bytes, memberKey looks for an all-ASCII key first. */
const asciiScanBytesMax = 64;
/** For ASCII bytes UTF-8 decoding is the identity on char codes, and it beats fromCharCode.apply about 2x (measured, 8-byte keys). */
const asciiDecoder = new TextDecoder();

function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if ((bytes[i] as number) >= 0x80) return false;
  return true;
}

/**
 * A member's bytes as a string of one char (0..255) per byte: JS string order is then bytewise
 * order, and an 8-bit string costs ~48 B against ~66 B for a small Uint8Array (measured, Bun 1.x).
 */
export function memberKey(bytes: Uint8Array): string {
  // One byte: the engine's shared one-char strings (a hash of "v" values keeps no string per field).
  if (bytes.length === 1) return String.fromCharCode(bytes[0] as number);
  if (bytes.length <= asciiScanBytesMax && isAscii(bytes)) return asciiDecoder.decode(bytes);
  if (bytes.length <= charCodesPerCallMax) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += charCodesPerCallMax) {
    parts.push(String.fromCharCode.apply(null, bytes.subarray(i, i + charCodesPerCallMax) as unknown as number[]));
  }
  return parts.join("");
}

/** The bytes of a memberKey string (a new array). */
export function memberBytes(key: string): Uint8Array {
  const out = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) out[i] = key.charCodeAt(i);
  return out;
}

/** Has ctx seen the dot (actor, counter)? */
type Seen = (actor: ActorId, counter: number) => boolean;

/** Up to this many loose dots (and no vector), a membership test compares them one by one. */
const cloudScanMax = 4;

/**
 * A membership test for ctx's dots. A join asks it once per dot of the bigger side, so the
 * common shapes of a delta's context (one actor's vector, a few loose dots) get tests that
 * cost a comparison or two.
 */
function seenBy(ctx: CausalContext): Seen {
  const vv = ctx.vv;
  if (vv.size === 0 && ctx.cloud.length <= cloudScanMax) {
    // A delta's few loose dots (an add's new and replaced ones): compare counters first.
    const cloud = ctx.cloud;
    return (actor, counter) => {
      for (const c of cloud) if (c.counter === counter && c.actor === actor) return true;
      return false;
    };
  }
  if (ctx.cloud.length === 0) {
    if (vv.size === 0) return () => false;
    if (vv.size === 1) {
      const only = vv.actors[0] as ActorId;
      const max = vv.counters[0] as number;
      return (actor, counter) => actor === only && counter <= max;
    }
    return (actor, counter) => counter <= vv.get(actor);
  }
  const cloud = new Map<ActorId, Set<number>>();
  for (const d of ctx.cloud) {
    let s = cloud.get(d.actor);
    if (s === undefined) cloud.set(d.actor, (s = new Set()));
    s.add(d.counter);
  }
  if (vv.size === 0) return (actor, counter) => cloud.get(actor)?.has(counter) === true;
  return (actor, counter) => counter <= vv.get(actor) || cloud.get(actor)?.has(counter) === true;
}

/** Up to this many dots, a join lists the other side's context to see whether it can touch members it does not name. */
const ctxListMax = 64;

/** ctx's dots, or null if it has more than ctxListMax. */
function listDots(ctx: CausalContext): Dot[] | null {
  let n = ctx.cloud.length;
  for (const c of ctx.vv.counters) n += c;
  if (n > ctxListMax) return null;
  const out: Dot[] = ctx.cloud.slice();
  for (let i = 0; i < ctx.vv.actors.length; i++) {
    const actor = ctx.vv.actors[i] as ActorId;
    for (let c = 1; c <= (ctx.vv.counters[i] as number); c++) out.push({ actor, counter: c });
  }
  return out;
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

function oneDotBytes(actor: ActorId, counter: number): number {
  return dotBytesUpperBound(actorUtf8(actor).length, counter);
}

/** Bytes of one entry's encoding at most. */
function entryBytes(memberBytes: number, dots: readonly Dot[]): number {
  let n = memberBytes + entryBytesOver;
  for (const d of dots) n += oneDotBytes(d.actor, d.counter);
  return n;
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
function joinDots(a: readonly Dot[], b: readonly Dot[], aSeen: Seen, bSeen: Seen): Dot[] {
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
      if (!bSeen(x.actor, x.counter)) out.push(x);
      i++;
    } else if (y !== undefined) {
      if (!aSeen(y.actor, y.counter)) out.push(y);
      j++;
    }
  }
  return out;
}

/** Above this many members inserted (removed) at once, the arrays are rebuilt in one pass instead of one shift each. */
const spliceMax = 16;

/** Distinct member keys, sorted. */
function distinctKeys(members: readonly Uint8Array[]): string[] {
  const sorted = members.map(memberKey).sort();
  const out: string[] = [];
  for (const k of sorted) if (out.length === 0 || out[out.length - 1] !== k) out.push(k);
  return out;
}

/** A member to insert: its key and dots (sorted, at least one). */
interface NewMember {
  key: string;
  dots: readonly Dot[];
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
  entriesBytes = 0;
  /** The members, sorted, as memberKey strings (never empty). */
  private keys: string[] = [];
  /** Each member's first dot (dotCompare order): its only one, unless the member is in `multi`. */
  private actors: ActorId[] = [];
  private counters: number[] = [];
  /** Members with two dots or more: all their dots, sorted (arrays never changed in place: clones share them). Null when none, so equal states have equal fields. */
  private multi: Map<string, readonly Dot[]> | null = null;
  /** The search index over keys (name-index.ts), built by the first search of nameIndexMin keys or more; null whenever keys change other than one at a time. */
  private ix: NameIndex | null = null;

  /**
   * entries sorted by member (bytewise), each with at least one dot, dots sorted; every dot is
   * in ctx (the invariant every method keeps: a member's dots are what ctx says it has seen).
   */
  constructor(entries: readonly OrSetEntry[] = [], public ctx: CausalContext = new CausalContext()) {
    for (const e of entries) this.pushSorted(memberKey(e.member), e.dots);
  }

  /** Appends a member past the last one (decoders and builders, which sort first); dots sorted, at least one. */
  pushSorted(key: string, dots: readonly Dot[]): void {
    const last = this.keys[this.keys.length - 1];
    assert(dots.length > 0 && key.length > 0 && (last === undefined || last < key), "OrSet.pushSorted: out of order or without dots");
    const first = dots[0] as Dot;
    this.keys.push(key);
    this.ix = null;
    this.actors.push(first.actor);
    this.counters.push(first.counter);
    if (dots.length > 1) (this.multi ??= new Map()).set(key, dots);
    this.entriesBytes += entryBytes(key.length, dots);
  }

  /**
   * A set from columns its decoder built (keys sorted, distinct, non-empty; each member's first
   * dot in actors / counters; members with several dots in multi), taken as they are: exactly
   * sized arrays, where pushSorted's grow by doubling (slack a 1M-member snapshot keeps).
   */
  static fromColumns(keys: string[], actors: ActorId[], counters: number[], multi: Map<string, readonly Dot[]> | null, ctx: CausalContext): OrSet {
    assert(actors.length === keys.length && counters.length === keys.length && (multi === null || multi.size > 0), "OrSet.fromColumns: bad columns");
    const s = new OrSet([], ctx);
    s.keys = keys;
    s.actors = actors;
    s.counters = counters;
    s.multi = multi;
    let bytes = 0;
    for (let i = 0; i < keys.length; i++) {
      assert(i === 0 || (keys[i - 1] as string) < (keys[i] as string), "OrSet.fromColumns: keys out of order");
      bytes += s.bytesAt(i);
    }
    s.entriesBytes = bytes;
    return s;
  }

  /** Index of the member with this key, or ~insertion point; searches from `from` on. */
  private indexOf(key: string, from = 0): number {
    const keys = this.keys;
    if (keys.length >= nameIndexMin) return (this.ix ??= NameIndex.build(keys)).find(keys, key, from);
    return searchNames(keys, key, from);
  }

  /** Inserts a member this set does not hold at index i (its insertion point), with one dot. */
  private insertOne(i: number, key: string, actor: ActorId, counter: number): void {
    this.keys.splice(i, 0, key);
    if (this.ix !== null && !this.ix.inserted(i, key)) this.ix = null;
    this.actors.splice(i, 0, actor);
    this.counters.splice(i, 0, counter);
    this.entriesBytes += key.length + entryBytesOver + oneDotBytes(actor, counter);
  }

  /** Member i's dots, sorted (shared: do not modify). */
  dotsAt(i: number): readonly Dot[] {
    const many = this.multi?.get(this.keys[i] as string);
    return many ?? [{ actor: this.actors[i] as ActorId, counter: this.counters[i] as number }];
  }

  /** Member i as a memberKey string. */
  keyAt(i: number): string {
    return this.keys[i] as string;
  }

  /** Member i's dots if it has several, else undefined (its one dot is firstActorAt / firstCounterAt). */
  manyDotsAt(i: number): readonly Dot[] | undefined {
    return this.multi?.get(this.keys[i] as string);
  }

  firstActorAt(i: number): ActorId {
    return this.actors[i] as ActorId;
  }

  firstCounterAt(i: number): number {
    return this.counters[i] as number;
  }

  private bytesAt(i: number): number {
    const key = this.keys[i] as string;
    const many = this.multi?.get(key);
    return many === undefined ? key.length + entryBytesOver + oneDotBytes(this.actors[i] as ActorId, this.counters[i] as number) : entryBytes(key.length, many);
  }

  /** Gives member i these dots (sorted, at least one). */
  private setDotsAt(i: number, dots: readonly Dot[]): void {
    this.entriesBytes -= this.bytesAt(i);
    const key = this.keys[i] as string;
    const first = dots[0] as Dot;
    this.actors[i] = first.actor;
    this.counters[i] = first.counter;
    if (dots.length > 1) (this.multi ??= new Map()).set(key, dots);
    else this.dropMulti(key);
    this.entriesBytes += this.bytesAt(i);
  }

  private dropMulti(key: string): void {
    if (this.multi !== null && this.multi.delete(key) && this.multi.size === 0) this.multi = null;
  }

  /** Removes the members at these indexes (ascending, distinct). */
  private removeAt(gone: readonly number[]): void {
    if (gone.length === 0) return;
    for (const i of gone) {
      this.entriesBytes -= this.bytesAt(i);
      this.dropMulti(this.keys[i] as string);
    }
    if (gone.length <= spliceMax) {
      for (let g = gone.length - 1; g >= 0; g--) {
        const i = gone[g] as number;
        this.keys.splice(i, 1);
        this.ix?.removed(i);
        this.actors.splice(i, 1);
        this.counters.splice(i, 1);
      }
      return;
    }
    this.ix = null;
    let out = 0;
    let g = 0;
    for (let i = 0; i < this.keys.length; i++) {
      if (g < gone.length && gone[g] === i) {
        g++;
        continue;
      }
      this.keys[out] = this.keys[i] as string;
      this.actors[out] = this.actors[i] as ActorId;
      this.counters[out] = this.counters[i] as number;
      out++;
    }
    this.keys.length = out;
    this.actors.length = out;
    this.counters.length = out;
  }

  /** Inserts members this set does not hold (sorted by key, distinct). */
  private insert(added: readonly NewMember[]): void {
    if (added.length === 0) return;
    for (const y of added) {
      this.entriesBytes += entryBytes(y.key.length, y.dots);
      if (y.dots.length > 1) (this.multi ??= new Map()).set(y.key, y.dots);
    }
    if (added.length <= spliceMax) {
      // A few go in place: one shift of each array per member.
      let from = 0;
      for (const y of added) {
        const i = ~this.indexOf(y.key, from);
        const d = y.dots[0] as Dot;
        this.keys.splice(i, 0, y.key);
        if (this.ix !== null && !this.ix.inserted(i, y.key)) this.ix = null;
        this.actors.splice(i, 0, d.actor);
        this.counters.splice(i, 0, d.counter);
        from = i + 1;
      }
      return;
    }
    // Many (a big SAdd, a state from anti-entropy): one sorted merge, not one shift each.
    const n = this.keys.length + added.length;
    const keys = new Array<string>(n);
    const actors = new Array<ActorId>(n);
    const counters = new Array<number>(n);
    let i = 0;
    let j = 0;
    for (let k = 0; k < n; k++) {
      const y = added[j];
      if (y === undefined || (i < this.keys.length && (this.keys[i] as string) < y.key)) {
        keys[k] = this.keys[i] as string;
        actors[k] = this.actors[i] as ActorId;
        counters[k] = this.counters[i] as number;
        i++;
      } else {
        const d = y.dots[0] as Dot;
        keys[k] = y.key;
        actors[k] = d.actor;
        counters[k] = d.counter;
        j++;
      }
    }
    this.keys = keys;
    this.ix = null;
    this.actors = actors;
    this.counters = counters;
  }

  /** The members as OrSetEntry objects, sorted (allocates one per member: for tests and tools, not hot paths). */
  get entries(): OrSetEntry[] {
    return this.keys.map((k, i) => ({ member: memberBytes(k), dots: this.dotsAt(i) }));
  }

  /** The members, sorted bytewise (new arrays). */
  members(): Uint8Array[] {
    return this.keys.map(memberBytes);
  }

  /** The members as memberKey strings, sorted: a copy, which later changes of the set do not touch. */
  memberKeys(): string[] {
    return this.keys.slice();
  }

  contains(member: Uint8Array): boolean {
    return this.indexOf(memberKey(member)) >= 0;
  }

  count(): number {
    return this.keys.length;
  }

  /** How many of `members` (counted once each) are not in the set. */
  countAbsent(members: readonly Uint8Array[]): number {
    let n = 0;
    for (const k of distinctKeys(members)) if (this.indexOf(k) < 0) n++;
    return n;
  }

  /**
   * Adds members as actor. Each distinct member gets a new dot (one past the highest of actor's
   * dots this replica has seen of the key) that replaces the dots it held here, so a re-add
   * never grows a member's dots. Returns the delta: the new dots, with a context of those and
   * of the dots they replace. Refused (INVALID, nothing changed) for an empty member or one
   * longer than setMemberBytesMax. base: where actor's dots start if this key holds none of
   * them yet (clocks.ts dotBase; the engine always passes it, 0 only in CRDT-level tests).
   *
   * Changes this in place rather than by joining the delta (what it equals): the join walks
   * every member, which made an SAdd into a 1000-member set cost ~40 us (profiled: merge was
   * 42% of the engine's time in the bench's shape).
   */
  add(actor: ActorId, members: readonly Uint8Array[], base = 0): OrSet {
    for (const m of members) {
      if (m.length === 0) throw new CrdtError(CrdtErrorCode.Invalid, "a set member must not be empty");
      if (m.length > setMemberBytesMax) throw new CrdtError(CrdtErrorCode.Invalid, `set member longer than ${setMemberBytesMax} bytes`);
    }
    // One member (the usual SAdd) needs no sort.
    const keys = members.length === 1 ? [memberKey(members[0] as Uint8Array)] : distinctKeys(members);
    const { first, claim } = nextDot(this.ctx, actor, base);
    if (!Number.isSafeInteger(first + keys.length)) throw new CrdtError(CrdtErrorCode.OutOfRange, "dot counter exhausted");
    const delta = new OrSet();
    if (claim > 0) {
      // A new life of the key for actor: its dots below are claimed, here and in the delta.
      delta.ctx.vv.raise(actor, claim);
      this.ctx.vv.raise(actor, claim);
    }
    /** Many new members go in with one merge (insert), a few in place where they were looked up. */
    const bulk = keys.length > spliceMax;
    const added: NewMember[] = [];
    let from = 0;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k] as string;
      const dot: Dot = { actor, counter: first + k };
      const i = this.indexOf(key, from);
      if (i >= 0) {
        // A re-add: the new dot replaces the member's dots (the delta's context carries them).
        for (const d of this.dotsAt(i)) delta.ctx.cloud.push(d);
        this.setDotsAt(i, [dot]);
        from = i + 1;
      } else if (bulk) {
        added.push({ key, dots: [dot] });
        from = ~i;
      } else {
        this.insertOne(~i, key, actor, dot.counter);
        from = ~i + 1;
      }
      delta.ctx.cloud.push(dot);
      delta.pushSorted(key, [dot]);
    }
    this.insert(added);
    delta.ctx.compact();
    // The new dots follow everything actor has here (first = its max + 1), so when the vector
    // holds all of actor's dots they extend it; else the general join.
    const last = first + keys.length - 1;
    if (this.ctx.vv.get(actor) === first - 1) this.ctx.vv.raise(actor, last);
    else this.ctx.joinWith(new CausalContext(undefined, keys.map((_, k) => ({ actor, counter: first + k }))));
    return delta;
  }

  /**
   * Removes the members this replica holds: the delta has no entries and a context of exactly
   * their dots, so joined anywhere it removes what was observed here and nothing else - an add
   * this replica had not seen keeps its member (add wins). Members not in the set are ignored;
   * removing none gives an empty delta (bottom). This context already holds every dot it drops.
   */
  remove(members: readonly Uint8Array[]): OrSet {
    const delta = new OrSet();
    const gone: number[] = [];
    let from = 0;
    for (const key of distinctKeys(members)) {
      const i = this.indexOf(key, from);
      if (i < 0) {
        from = ~i;
        continue;
      }
      for (const d of this.dotsAt(i)) delta.ctx.cloud.push(d);
      gone.push(i);
      from = i + 1;
    }
    this.removeAt(gone);
    delta.ctx.compact();
    return delta;
  }

  /** True for the bottom: no members and an empty context (a delta that changes nothing). */
  get isEmpty(): boolean {
    return this.keys.length === 0 && this.ctx.vv.size === 0 && this.ctx.cloud.length === 0;
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
    const gone: number[] = [];
    const added: NewMember[] = [];
    /** Indexes (ascending) of this side's members the other side also holds, and the dots they held. */
    const matched: number[] = [];
    const matchedDots: Dot[] = [];
    // Members of the other side: joined with this side's, or new here where this side has not seen them.
    let from = 0;
    for (let j = 0; j < other.keys.length; j++) {
      const key = other.keys[j] as string;
      const theirs = other.dotsAt(j);
      const i = this.indexOf(key, from);
      if (i < 0) {
        from = ~i;
        const dots = theirs.filter((d) => !thisSeen(d.actor, d.counter));
        if (dots.length > 0) added.push({ key, dots });
        continue;
      }
      from = i + 1;
      matched.push(i);
      const ours = this.dotsAt(i);
      for (const d of ours) matchedDots.push(d);
      const dots = joinDots(ours, theirs, thisSeen, otherSeen);
      if (sameDots(dots, ours)) continue;
      changed = true;
      if (dots.length === 0) gone.push(i);
      else this.setDotsAt(i, dots);
    }
    // Members only this side holds lose the dots the other side has seen. A small delta into a
    // big set (a peer's SAdd: its context is its new dot and the dots of the members it names)
    // can touch no other member, and finding that out by listing its context beats a pass over
    // every member (a set of n members took O(n) per replicated add).
    if (!otherCtxEmpty && this.mayTouchUnnamed(other.ctx, thisSeen, matchedDots)) {
      let m = 0;
      for (let i = 0; i < this.keys.length; i++) {
        if (m < matched.length && matched[m] === i) {
          m++;
          continue;
        }
        const many = this.multi?.get(this.keys[i] as string);
        if (many === undefined) {
          if (!otherSeen(this.actors[i] as ActorId, this.counters[i] as number)) continue;
          gone.push(i);
        } else {
          const dots = many.filter((d) => !otherSeen(d.actor, d.counter));
          if (dots.length === many.length) continue;
          if (dots.length === 0) gone.push(i);
          else this.setDotsAt(i, dots);
        }
        changed = true;
      }
    }
    if (gone.length > 0) {
      gone.sort((x, y) => x - y);
      this.removeAt(gone);
    }
    if (added.length > 0) {
      changed = true;
      this.insert(added);
    }
    if (!otherCtxEmpty && joinContextInto(this.ctx, other.ctx)) changed = true;
    return changed;
  }

  /**
   * Could a join with a context `ctx` drop a dot of a member other than the named ones (whose
   * dots were `named`)? Only a dot this side has seen can be one it holds; if ctx is small,
   * list it and look.
   */
  private mayTouchUnnamed(ctx: CausalContext, thisSeen: Seen, named: readonly Dot[]): boolean {
    const dots = listDots(ctx);
    if (dots === null) return true;
    for (const d of dots) {
      if (!thisSeen(d.actor, d.counter)) continue;
      let found = false;
      for (const n of named) if (n.actor === d.actor && n.counter === d.counter) found = true;
      if (!found) return true;
    }
    return false;
  }

  equals(other: OrSet): boolean {
    const n = this.keys.length;
    if (n !== other.keys.length || !this.ctx.equals(other.ctx)) return false;
    if ((this.multi?.size ?? 0) !== (other.multi?.size ?? 0)) return false;
    for (let i = 0; i < n; i++) {
      if (this.keys[i] !== other.keys[i] || this.actors[i] !== other.actors[i] || this.counters[i] !== other.counters[i]) return false;
    }
    if (this.multi !== null) {
      for (const [k, dots] of this.multi) {
        const theirs = other.multi?.get(k);
        if (theirs === undefined || !sameDots(dots, theirs)) return false;
      }
    }
    return true;
  }

  clone(): OrSet {
    const c = new OrSet([], this.ctx.clone());
    c.keys = this.keys.slice();
    c.actors = this.actors.slice();
    c.counters = this.counters.slice();
    c.multi = this.multi === null ? null : new Map(this.multi);
    c.entriesBytes = this.entriesBytes;
    return c;
  }
}

/** Joins `from` into `into` in place; true if `into` changed (checked first, so an unchanged context is not rebuilt). */
function joinContextInto(into: CausalContext, from: CausalContext): boolean {
  let grows = false;
  for (let i = 0; i < from.vv.actors.length && !grows; i++) if ((from.vv.counters[i] as number) > into.vv.get(from.vv.actors[i] as ActorId)) grows = true;
  for (let i = 0; i < from.cloud.length && !grows; i++) if (!into.contains(from.cloud[i] as Dot)) grows = true;
  if (grows) into.joinWith(from);
  return grows;
}
