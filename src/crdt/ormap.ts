// Hash (Redis HSET/HINCRBY/HDEL) as an observed-remove map of byte-string fields, each holding a
// register or a counter, under one causal context per key (delta OR-Map, Almeida/Shoker/Baquero),
// so a delete removes exactly what its replica saw and a concurrent unseen write survives.
//
// A field holds
//   - register entries: values under dots, with the HLC of their HSET. An HSET covers every
//     entry (and counter dot) of the field its replica holds, so only writes that did not see
//     each other remain as siblings; a read shows the greatest (ms, logical, actor) (LWW display).
//   - a counter: per-actor rows (p, n) of cumulative increments and decrements and reset rows
//     (rp, rn), all max-merged, plus presence dots (at most one live per actor: an HINCRBY
//     covers its actor's previous one). Value = sum (p - rp) - (n - rn). A removal (HDEL, HSET,
//     whole-key delete) covers the presence dots it saw and raises the reset rows to the (p, n)
//     it saw, so an increment nobody had observed is all that is left of a removed counter.
// A field is present iff it holds a live dot. If it holds both a live counter dot and register
// entries (an HSET and an HINCRBY made concurrently on two replicas), the counter shows and the
// entries are kept: deterministic on every replica, and the next HSET or HDEL covers both.
//
// Invariants every state keeps (and the decoder checks): rp <= p and rn <= n in every row (each
// delta that raises a reset row carries the row it reset); a counter field with no live dot has
// every row reset, so an HINCRBY after an HDEL starts from zero.
//
// Kept compact (issue 13: memory per field within 3x Redis), as the OR-Set is: field names are
// one sorted array of strings of one char per byte, and a field that is one register entry and
// nothing else - nearly every field - keeps its dot and HLC in one typed array and its value as
// a string; only a field with siblings, counter dots or rows is a HashField object (in a side
// map). Measured with `imdb bench types --items 1000000` (node RSS after a restart from a
// snapshot, 1000 fields per key): a HashField per field cost 504 B per field, this ~123 B
// (Redis: 64 B). HSET changes the columns in place; joins go field by field as before.

import { NameIndex, nameIndexMin, searchNames } from "./name-index.ts";
import { actorRank, actorUtf8, type ActorId } from "./actors.ts";
import { CausalContext, dotCompare, nextDot, VersionVector, type Dot } from "./clocks.ts";
import { assert, CrdtError, CrdtErrorCode } from "./errors.ts";
import { isValidHlc, type Hlc } from "./hlc.ts";
import { isInt64, uint64Max } from "./int64.ts";
import { bytesEqual, compareBytes } from "./lww.ts";
import { memberBytes, memberKey } from "./orset.ts";
import { hashFieldBytesMax, hashFieldsWriteMax, registerValueBytesMax } from "../limits.ts";

/**
 * A merge whose other side names at most this many fields, and whose context holds at most
 * scopedDotsMax dots, may take the scoped path (see OrMap.merge): every delta of set, incr and
 * del qualifies, so a write costs O(log fields) instead of a pass over every field.
 */
const scopedFieldsMax = 64;
const scopedDotsMax = 256;

/** Bytes of a protobuf varint of n (a non-negative safe integer). */
function varintBytes(n: number): number {
  let k = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    k++;
  }
  return k;
}

/** Bytes of a protobuf varint of a u64 bigint. */
function varintBytes64(n: bigint): number {
  if (n < 0x2000_0000_0000_0n) return varintBytes(Number(n));
  let x = n;
  let k = 1;
  while (x >= 0x80n) { x >>= 7n; k++; }
  return k;
}

/** Bytes of a length-delimited field of `inner` bytes with a one-byte tag. */
const delimited = (inner: number): number => 1 + varintBytes(inner) + inner;

function dotBytes(actor: ActorId, counter: number): number {
  return delimited(delimited(actorUtf8(actor).length) + 1 + varintBytes(counter));
}

/** fieldEncodedBytes of a field of one entry and nothing else, from its parts (name and value lengths in bytes). */
function simpleFieldBytes(nameBytes: number, actor: ActorId, counter: number, ms: number, logical: number, valueBytes: number): number {
  const inner = dotBytes(actor, counter) + (ms !== 0 || logical !== 0 ? 9 : 0) + (valueBytes > 0 ? delimited(valueBytes) : 0);
  return delimited(delimited(nameBytes) + delimited(inner));
}

/**
 * A field's exact encoded bytes in the state message (src/codec/states.ts writeOrMap; every tag
 * is one byte). Kept summed by merge, so the engine's size checks need no encoding: the exact
 * check (which encodes the whole state) runs only when a state is truly near a limit.
 */
export function fieldEncodedBytes(f: HashField): number {
  let n = delimited(f.name.length);
  for (const e of f.entries) {
    const inner = dotBytes(e.dot.actor, e.dot.counter) + (e.ms !== 0 || e.logical !== 0 ? 9 : 0) + (e.value.length > 0 ? delimited(e.value.length) : 0);
    n += delimited(inner);
  }
  for (const d of f.dots) n += dotBytes(d.actor, d.counter);
  for (const r of f.rows) {
    let inner = delimited(actorUtf8(r.actor).length);
    for (const x of [r.p, r.n, r.rp, r.rn]) if (x !== 0n) inner += 1 + varintBytes64(x);
    n += delimited(inner);
  }
  return delimited(n);
}

/** One register value of a field, under its dot, stamped with its HSET's HLC. */
export interface HashEntry {
  readonly dot: Dot;
  readonly ms: number;
  readonly logical: number;
  readonly value: Uint8Array;
}

/** One actor's counter row of a field: cumulative p, n and what removals reset (rp <= p, rn <= n). */
export interface HashRow {
  readonly actor: ActorId;
  readonly p: bigint;
  readonly n: bigint;
  readonly rp: bigint;
  readonly rn: bigint;
}

/**
 * One field. Immutable: a change makes a new object, so states, clones and deltas share fields
 * safely. Arrays are sorted canonically (entries and dots by dot, rows by actor rank); a field
 * holds at least one entry, dot or row.
 */
export interface HashField {
  readonly name: Uint8Array;
  readonly entries: readonly HashEntry[];
  readonly dots: readonly Dot[];
  readonly rows: readonly HashRow[];
}

export interface HashPair {
  readonly field: Uint8Array;
  readonly value: Uint8Array;
}

const noEntries: readonly HashEntry[] = Object.freeze([]);
const noDots: readonly Dot[] = Object.freeze([]);
const noRows: readonly HashRow[] = Object.freeze([]);
const noNames: readonly Uint8Array[] = Object.freeze([]);
const noFields: readonly HashField[] = Object.freeze([]);
/** A context a builder is constructed with and replaces before use (never changed: saves allocating one). */
const placeholderCtx = new CausalContext();
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Does f hold a live dot (is it present)? */
export function fieldPresent(f: HashField): boolean {
  return f.entries.length > 0 || f.dots.length > 0;
}

/** The counter's value: sum (p - rp) - (n - rn). */
export function counterValue(f: HashField): bigint {
  let v = 0n;
  for (const r of f.rows) v += r.p - r.rp - (r.n - r.rn);
  return v;
}

/** Display order of register entries: HLC, then actor, then dot counter and bytes (never tied for distinct entries). */
function compareShown(a: HashEntry, b: HashEntry): number {
  if (a.ms !== b.ms) return a.ms - b.ms;
  if (a.logical !== b.logical) return a.logical - b.logical;
  if (a.dot.actor !== b.dot.actor) return actorRank(a.dot.actor) - actorRank(b.dot.actor);
  if (a.dot.counter !== b.dot.counter) return a.dot.counter - b.dot.counter;
  return compareBytes(a.value, b.value);
}

/** The register entry a read shows, or null. */
export function shownEntry(f: HashField): HashEntry | null {
  let best: HashEntry | null = null;
  for (const e of f.entries) if (best === null || compareShown(e, best) > 0) best = e;
  return best;
}

/** What a read of f answers: the counter as decimal text if it has a live dot, else the shown register value, else null. */
export function fieldValue(f: HashField): Uint8Array | null {
  if (f.dots.length > 0) return encoder.encode(String(counterValue(f)));
  return shownEntry(f)?.value ?? null;
}

/** Redis's integer syntax: optional minus, no leading zeros, no "-0", int64. */
function parseInteger(v: Uint8Array): bigint | null {
  if (v.length === 0 || v.length > 20) return null;
  const s = decoder.decode(v);
  if (!/^(0|-?[1-9][0-9]*)$/.test(s)) return null;
  const n = BigInt(s);
  return isInt64(n) ? n : null;
}

function checkField(name: Uint8Array): void {
  if (name.length === 0) throw new CrdtError(CrdtErrorCode.Invalid, "hash field is empty");
  if (name.length > hashFieldBytesMax) throw new CrdtError(CrdtErrorCode.Invalid, `hash field longer than ${hashFieldBytesMax} bytes`);
}

/** Distinct names, sorted bytewise (the last of equal names wins where order matters: callers pass pairs in order). */
function distinctSorted<T>(items: readonly T[], nameOf: (t: T) => Uint8Array): T[] {
  const idx = items.map((_, i) => i);
  // Stable by position so the last of equal names is the one kept.
  idx.sort((i, j) => compareBytes(nameOf(items[i] as T), nameOf(items[j] as T)) || i - j);
  const out: T[] = [];
  for (let k = 0; k < idx.length; k++) {
    const cur = items[idx[k] as number] as T;
    const next = idx[k + 1];
    if (next !== undefined && bytesEqual(nameOf(cur), nameOf(items[next] as T))) continue;
    out.push(cur);
  }
  return out;
}

/** f's rows that a removal must reset (p > rp or n > rn), reset: each carries the row it reset. */
function resetRows(f: HashField | undefined): readonly HashRow[] {
  if (f === undefined) return noRows;
  let out: HashRow[] | null = null;
  for (const r of f.rows) {
    if (r.p === r.rp && r.n === r.rn) continue;
    (out ??= []).push({ actor: r.actor, p: r.p, n: r.n, rp: r.p, rn: r.n });
  }
  return out ?? noRows;
}

/** Pushes every live dot of f (entries and counter dots) onto dots. */
function pushLiveDots(f: HashField | undefined, dots: Dot[]): void {
  if (f === undefined) return;
  for (const e of f.entries) dots.push(e.dot);
  for (const d of f.dots) dots.push(d);
}

function contextOf(dots: Dot[]): CausalContext {
  const ctx = new CausalContext(new VersionVector(), dots);
  ctx.compact();
  return ctx;
}

function isEmpty(entries: readonly HashEntry[], dots: readonly Dot[], rows: readonly HashRow[]): boolean {
  return entries.length === 0 && dots.length === 0 && rows.length === 0;
}

/** Numbers per field in OrMap's nums column. */
const stride = 3;
const noNums = new Float64Array(0);

/** Is f one register entry and nothing else (the shape nearly every field has, kept in columns)? */
function isSimple(f: HashField): boolean {
  return f.entries.length === 1 && f.dots.length === 0 && f.rows.length === 0;
}

/** Has ctx seen the dot (actor, counter)? CausalContext.contains without a Dot object. */
function ctxHas(ctx: CausalContext, actor: ActorId, counter: number): boolean {
  if (counter <= ctx.vv.get(actor)) return true;
  for (const c of ctx.cloud) if (c.counter === counter && c.actor === actor) return true;
  return false;
}

/** Distinct pairs by field, sorted by memberKey (bytewise); of equal fields the last one wins. */
function distinctPairs(pairs: readonly HashPair[]): { key: string; value: Uint8Array }[] {
  if (pairs.length === 1) return [{ key: memberKey((pairs[0] as HashPair).field), value: (pairs[0] as HashPair).value }];
  const all = pairs.map((p, i) => ({ key: memberKey(p.field), value: p.value, i }));
  // Stable by position so the last of equal fields is the one kept.
  all.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : x.i - y.i));
  const out: { key: string; value: Uint8Array }[] = [];
  for (let k = 0; k < all.length; k++) {
    const cur = all[k] as { key: string; value: Uint8Array };
    if (k + 1 < all.length && (all[k + 1] as { key: string }).key === cur.key) continue;
    out.push({ key: cur.key, value: cur.value });
  }
  return out;
}

export class OrMap {
  /** The kind discriminant (src/kinds): on the prototype, so it costs no memory per state. */
  get kind(): "hash" {
    return "hash";
  }

  /** Field names, sorted, as memberKey strings (one char per byte: string order is bytewise order). */
  private names: string[] = [];
  /**
   * A field that is one register entry and nothing else (all a field holds unless concurrent
   * writes or HINCRBY made it more) is kept in columns: its value (a memberKey string) in
   * `values`, and in `nums`, `stride` numbers per field: the dot's counter, the HLC's ms, and
   * actor * 2^16 + logical (exact: both fit 53 bits). Counter 0 (no dot has it) marks a field
   * kept whole in `others`. A typed array because an insert shifts it with one memmove
   * (copyWithin): splicing four plain arrays made an HSET into a 200-field hash cost ~3 us.
   */
  private nums: Float64Array = noNums;
  private values: string[] = [];
  /** The other fields, by name (immutable objects: clones share them). Null when none, so equal states have equal shapes. */
  private others: Map<string, HashField> | null = null;
  /** Sum of fieldEncodedBytes over the fields, kept exact by every change. */
  private bytes = 0;
  /** Upper bounds of the most values and the most counter rows one field holds (exact after a full merge). */
  private siblingsUb = 0;
  private rowsUb = 0;
  /** The search index over names (name-index.ts), built by the first search of nameIndexMin names or more; null whenever names change other than one at a time. */
  private ix: NameIndex | null = null;

  /** fields sorted bytewise by name, each non-empty; every live dot is in ctx. */
  constructor(fields: readonly HashField[] = [], public ctx: CausalContext = new CausalContext()) {
    for (const f of fields) this.pushField(memberKey(f.name), f);
  }

  /**
   * A map from columns its decoder built (names sorted and distinct; nums and values as
   * described at `nums`, exactly sized), taken as they are: pushSimple's arrays grow by
   * doubling (slack a snapshot of 1M fields would keep).
   */
  static fromColumns(names: string[], nums: Float64Array, values: string[], others: Map<string, HashField> | null, ctx: CausalContext): OrMap {
    const n = names.length;
    assert(nums.length === n * stride && values.length === n, "OrMap.fromColumns: bad columns");
    const m = new OrMap([], ctx);
    m.names = names;
    m.nums = nums;
    m.values = values;
    m.others = others !== null && others.size > 0 ? others : null;
    for (let i = 0; i < n; i++) {
      assert(i === 0 || (names[i - 1] as string) < (names[i] as string), "OrMap.fromColumns: names out of order");
      if (m.counterAt(i) === 0) {
        const f = m.others?.get(names[i] as string);
        assert(f !== undefined && !isSimple(f), "OrMap.fromColumns: a field kept whole is missing or plain");
        m.widen(f);
      } else if (m.siblingsUb < 1) m.siblingsUb = 1;
      m.bytes += m.bytesAt(i);
    }
    return m;
  }

  /** nums' three numbers of a plain entry (see `nums`), at slot i. */
  static packInto(nums: Float64Array, i: number, actor: ActorId, counter: number, ms: number, logical: number): void {
    const b = i * stride;
    nums[b] = counter;
    nums[b + 1] = ms;
    nums[b + 2] = actor * 0x10000 + logical;
  }

  /** How many field records the map holds (present or a removed counter's leftover rows). */
  get fieldCount(): number {
    return this.names.length;
  }

  /** The fields as HashField objects, sorted (allocates one per simple field: for tests, tools and full passes). */
  get fields(): HashField[] {
    const out = new Array<HashField>(this.names.length);
    for (let i = 0; i < this.names.length; i++) out[i] = this.fieldAt(i);
    return out;
  }

  /** An upper bound of the fields' encoded bytes (without the context); exact. */
  fieldsBytesUpperBound(): number {
    return this.bytes;
  }

  /** Upper bounds of the most values and the most counter rows one field holds. */
  widthUpperBound(): { siblings: number; rows: number } {
    return { siblings: this.siblingsUb, rows: this.rowsUb };
  }

  /** The most values and the most counter rows one field holds, exactly. */
  width(): { siblings: number; rows: number } {
    let siblings = 0;
    let rows = 0;
    for (let i = 0; i < this.names.length; i++) {
      if (this.counterAt(i) !== 0) {
        if (siblings < 1) siblings = 1;
        continue;
      }
      const f = this.otherAt(i);
      if (f.entries.length > siblings) siblings = f.entries.length;
      if (f.rows.length > rows) rows = f.rows.length;
    }
    return { siblings, rows };
  }

  // ---- the columns (codec, and the methods below) ----

  /** Field i's name as a memberKey string. */
  nameKeyAt(i: number): string {
    return this.names[i] as string;
  }

  /** Field i if it is not kept in the columns (not one plain entry), else undefined. */
  complexAt(i: number): HashField | undefined {
    return this.counterAt(i) === 0 ? this.otherAt(i) : undefined;
  }

  /** Field i's entry, when complexAt(i) is undefined: dot, HLC and value (memberKey string). */
  counterAt(i: number): number {
    return this.nums[i * stride] as number;
  }

  actorAt(i: number): ActorId {
    return Math.floor((this.nums[i * stride + 2] as number) / 0x10000) as ActorId;
  }

  msAt(i: number): number {
    return this.nums[i * stride + 1] as number;
  }

  logicalAt(i: number): number {
    return (this.nums[i * stride + 2] as number) % 0x10000;
  }

  valueKeyAt(i: number): string {
    return this.values[i] as string;
  }

  private otherAt(i: number): HashField {
    return (this.others as Map<string, HashField>).get(this.names[i] as string) as HashField;
  }

  /** Field i as a HashField (a new object for a simple field). */
  private fieldAt(i: number): HashField {
    const c = this.counterAt(i);
    if (c === 0) return this.otherAt(i);
    const entry: HashEntry = { dot: { actor: this.actorAt(i), counter: c }, ms: this.msAt(i), logical: this.logicalAt(i), value: memberBytes(this.values[i] as string) };
    return { name: memberBytes(this.names[i] as string), entries: [entry], dots: noDots, rows: noRows };
  }

  private bytesAt(i: number): number {
    const c = this.counterAt(i);
    if (c === 0) return fieldEncodedBytes(this.otherAt(i));
    return simpleFieldBytes((this.names[i] as string).length, this.actorAt(i), c, this.msAt(i), this.logicalAt(i), (this.values[i] as string).length);
  }

  /** Room for n fields in nums. */
  private reserve(n: number): void {
    if (n * stride <= this.nums.length) return;
    const next = new Float64Array(Math.max(n, 2 * (this.nums.length / stride), 4) * stride);
    next.set(this.nums);
    this.nums = next;
  }

  /**
   * Builders and decoders, which go in name order: appends a field past the last one (key its
   * name), one plain entry. Exactly what pushField of the same field does.
   */
  pushSimple(key: string, actor: ActorId, counter: number, ms: number, logical: number, value: string): void {
    const last = this.names[this.names.length - 1];
    assert(counter > 0 && (last === undefined || last < key), "OrMap.pushSimple: out of order or without a dot");
    const i = this.names.length;
    this.reserve(i + 1);
    this.names.push(key);
    this.ix = null;
    this.values.push(value);
    OrMap.packInto(this.nums, i, actor, counter, ms, logical);
    this.bytes += simpleFieldBytes(key.length, actor, counter, ms, logical, value.length);
    if (this.siblingsUb < 1) this.siblingsUb = 1;
  }

  /** Appends field f (key: memberKey(f.name)) past the last one. */
  pushField(key: string, f: HashField): void {
    if (isSimple(f)) {
      const e = f.entries[0] as HashEntry;
      this.pushSimple(key, e.dot.actor, e.dot.counter, e.ms, e.logical, memberKey(e.value));
      return;
    }
    const last = this.names[this.names.length - 1];
    assert(last === undefined || last < key, "OrMap.pushField: out of order");
    const i = this.names.length;
    this.reserve(i + 1);
    this.names.push(key);
    this.ix = null;
    this.values.push("");
    OrMap.packInto(this.nums, i, 0 as ActorId, 0, 0, 0);
    (this.others ??= new Map()).set(key, f);
    this.bytes += fieldEncodedBytes(f);
    this.widen(f);
  }

  /** Appends src's field j. */
  private pushFrom(src: OrMap, j: number): void {
    const c = src.counterAt(j);
    if (c === 0) this.pushField(src.names[j] as string, src.otherAt(j));
    else this.pushSimple(src.names[j] as string, src.actorAt(j), c, src.msAt(j), src.logicalAt(j), src.values[j] as string);
  }

  private widen(f: HashField): void {
    if (f.entries.length > this.siblingsUb) this.siblingsUb = f.entries.length;
    if (f.rows.length > this.rowsUb) this.rowsUb = f.rows.length;
  }

  /** Writes field f (non-empty, named key) into slot i, which exists (its old content is dropped). */
  private putAt(i: number, key: string, f: HashField): void {
    if (isSimple(f)) {
      const e = f.entries[0] as HashEntry;
      this.setSimpleAt(i, e.dot.actor, e.dot.counter, e.ms, e.logical, memberKey(e.value));
      return;
    }
    this.bytes -= this.bytesAt(i);
    OrMap.packInto(this.nums, i, 0 as ActorId, 0, 0, 0);
    this.values[i] = "";
    (this.others ??= new Map()).set(key, f);
    this.bytes += fieldEncodedBytes(f);
    this.widen(f);
  }

  /** Makes slot i (which exists) one plain entry. */
  private setSimpleAt(i: number, actor: ActorId, counter: number, ms: number, logical: number, value: string): void {
    this.bytes -= this.bytesAt(i);
    if (this.counterAt(i) === 0) this.dropOther(this.names[i] as string);
    OrMap.packInto(this.nums, i, actor, counter, ms, logical);
    this.values[i] = value;
    this.bytes += simpleFieldBytes((this.names[i] as string).length, actor, counter, ms, logical, value.length);
    if (this.siblingsUb < 1) this.siblingsUb = 1;
  }

  private dropOther(key: string): void {
    if (this.others !== null && this.others.delete(key) && this.others.size === 0) this.others = null;
  }

  /** Opens slot i (the insertion point of key) holding a placeholder whose bytes count 0. */
  private openAt(i: number, key: string): void {
    const n = this.names.length;
    this.reserve(n + 1);
    this.nums.copyWithin((i + 1) * stride, i * stride, n * stride);
    this.names.splice(i, 0, key);
    if (this.ix !== null && !this.ix.inserted(i, key)) this.ix = null;
    this.values.splice(i, 0, "");
  }

  /** Inserts a new slot at i (the insertion point of key) holding f. */
  private insertAt(i: number, key: string, f: HashField): void {
    if (isSimple(f)) {
      const e = f.entries[0] as HashEntry;
      this.insertSimple(i, key, e.dot.actor, e.dot.counter, e.ms, e.logical, memberKey(e.value));
      return;
    }
    this.openAt(i, key);
    OrMap.packInto(this.nums, i, 0 as ActorId, 0, 0, 0);
    (this.others ??= new Map()).set(key, f);
    this.bytes += fieldEncodedBytes(f);
    this.widen(f);
  }

  /** Inserts a new slot at i (the insertion point of key), one plain entry. */
  private insertSimple(i: number, key: string, actor: ActorId, counter: number, ms: number, logical: number, value: string): void {
    this.openAt(i, key);
    OrMap.packInto(this.nums, i, actor, counter, ms, logical);
    this.values[i] = value;
    this.bytes += simpleFieldBytes(key.length, actor, counter, ms, logical, value.length);
    if (this.siblingsUb < 1) this.siblingsUb = 1;
  }

  private removeAt(i: number): void {
    this.bytes -= this.bytesAt(i);
    if (this.counterAt(i) === 0) this.dropOther(this.names[i] as string);
    const n = this.names.length;
    this.nums.copyWithin(i * stride, (i + 1) * stride, n * stride);
    this.names.splice(i, 1);
    this.ix?.removed(i);
    this.values.splice(i, 1);
  }

  /** Does field i hold the dot (actor, counter) live? */
  private holdsAt(i: number, actor: ActorId, counter: number): boolean {
    const c = this.counterAt(i);
    if (c !== 0) return c === counter && this.actorAt(i) === actor;
    return holdsDot(this.otherAt(i), { actor, counter });
  }

  /** Index of the field named key, or ~insertion point; searches from `from` on. */
  private find(key: string, from = 0): number {
    const names = this.names;
    if (names.length >= nameIndexMin) return (this.ix ??= NameIndex.build(names)).find(names, key, from);
    return searchNames(names, key, from);
  }

  /** The record of field name (present or a removed counter's leftover rows), or undefined. */
  field(name: Uint8Array): HashField | undefined {
    const i = this.find(memberKey(name));
    return i >= 0 ? this.fieldAt(i) : undefined;
  }

  /** HGET: the field's value, or null if absent. */
  get(name: Uint8Array): Uint8Array | null {
    const i = this.find(memberKey(name));
    if (i < 0) return null;
    if (this.counterAt(i) !== 0) return memberBytes(this.values[i] as string);
    return fieldValue(this.otherAt(i));
  }

  /** HMGET. */
  getMany(names: readonly Uint8Array[]): (Uint8Array | null)[] {
    return names.map((n) => this.get(n));
  }

  /** HGETALL: present fields in bytewise order. */
  getAll(): HashPair[] {
    const out: HashPair[] = [];
    for (let i = 0; i < this.names.length; i++) {
      if (this.counterAt(i) !== 0) {
        out.push({ field: memberBytes(this.names[i] as string), value: memberBytes(this.values[i] as string) });
        continue;
      }
      const f = this.otherAt(i);
      const value = fieldValue(f);
      if (value !== null) out.push({ field: f.name, value });
    }
    return out;
  }

  /** HLEN. */
  len(): number {
    let n = 0;
    for (let i = 0; i < this.names.length; i++) if (this.counterAt(i) !== 0 || fieldPresent(this.otherAt(i))) n++;
    return n;
  }

  present(): boolean {
    for (let i = 0; i < this.names.length; i++) if (this.counterAt(i) !== 0 || fieldPresent(this.otherAt(i))) return true;
    return false;
  }

  /** The first of actor's next k dots, and the claim below them (clocks.ts nextDot). */
  private nextDots(actor: ActorId, k: number, base: number): { first: number; claim: number } {
    const next = nextDot(this.ctx, actor, base);
    if (!Number.isSafeInteger(next.first + k - 1)) throw new CrdtError(CrdtErrorCode.OutOfRange, "dot counter exhausted");
    return next;
  }

  private checkRoom(newRecords: number): void {
    if (this.names.length + newRecords > hashFieldsWriteMax) {
      throw new CrdtError(
        CrdtErrorCode.LimitExceeded,
        `the hash would hold ${this.names.length + newRecords} fields, the most a write may leave is ${hashFieldsWriteMax}`,
      );
    }
  }

  /**
   * HSET: writes each pair as actor at ts (the last of equal fields wins). Each field's new
   * value replaces every value and counter of that field this replica holds (their dots go in
   * the delta's context, its counter rows are reset); a value written concurrently elsewhere
   * stays as a sibling. Returns the delta and how many fields were not present before.
   * Refused, nothing changed: INVALID for an empty or too long field or value, or a bad HLC;
   * LIMIT_EXCEEDED past hashFieldsWriteMax. base: where actor's dots start if the key holds none
   * of them (clocks.ts dotBase; the engine always passes it).
   *
   * Changes this in place to what joining the delta would give (the new entry alone, with the
   * old rows reset), rather than by a join: a join looks at the fields around, an HSET needs
   * only the ones it names.
   */
  set(actor: ActorId, ts: Hlc, pairs: readonly HashPair[], base = 0): { delta: OrMap; added: number } {
    if (!isValidHlc(ts.ms, ts.logical)) throw new CrdtError(CrdtErrorCode.Invalid, `HLC ${ts.ms}.${ts.logical} out of range`);
    if (pairs.length === 0) throw new CrdtError(CrdtErrorCode.Invalid, "HSET needs at least one field");
    for (const p of pairs) {
      checkField(p.field);
      if (p.value.length > registerValueBytesMax) throw new CrdtError(CrdtErrorCode.Invalid, `value longer than ${registerValueBytesMax} bytes`);
    }
    const distinct = distinctPairs(pairs);
    // Counting the new fields costs a search each: only near the bound.
    if (this.names.length + distinct.length > hashFieldsWriteMax) {
      let newRecords = 0;
      for (const p of distinct) if (this.find(p.key) < 0) newRecords++;
      this.checkRoom(newRecords);
    }
    const { first, claim } = this.nextDots(actor, distinct.length, base);
    const delta = new OrMap(noFields, placeholderCtx);
    /** The delta's context: the new dots and every live dot of the fields they replace. */
    const seen: Dot[] = [];
    let added = 0;
    let from = 0;
    for (let k = 0; k < distinct.length; k++) {
      const { key, value: bytes } = distinct[k] as { key: string; value: Uint8Array };
      const counter = first + k;
      const value = memberKey(bytes);
      const i = this.find(key, from);
      if (i < 0) {
        added++;
        this.insertSimple(~i, key, actor, counter, ts.ms, ts.logical, value);
        delta.pushSimple(key, actor, counter, ts.ms, ts.logical, value);
        from = ~i + 1;
      } else if (this.counterAt(i) !== 0) {
        seen.push({ actor: this.actorAt(i), counter: this.counterAt(i) });
        this.setSimpleAt(i, actor, counter, ts.ms, ts.logical, value);
        delta.pushSimple(key, actor, counter, ts.ms, ts.logical, value);
        from = i + 1;
      } else {
        const old = this.otherAt(i);
        if (!fieldPresent(old)) added++;
        pushLiveDots(old, seen);
        const reset = resetRows(old);
        const entry: HashEntry = { dot: { actor, counter }, ms: ts.ms, logical: ts.logical, value: bytes.slice() };
        delta.pushField(key, { name: old.name, entries: [entry], dots: noDots, rows: reset });
        // Joined, the delta leaves its entry alone (it covers every live dot) and the rows reset.
        this.putAt(i, key, { name: old.name, entries: [entry], dots: noDots, rows: joinRows(old.rows, reset) });
        from = i + 1;
      }
      seen.push({ actor, counter });
    }
    delta.ctx = contextOf(seen);
    if (claim > 0) {
      // A new life of the key for actor: its dots below are claimed, in the delta and here.
      delta.ctx.vv.raise(actor, claim);
      delta.ctx.compact();
      this.ctx.vv.raise(actor, claim);
    }
    // The new dots follow everything actor has here (first = its max + 1): when the vector
    // holds all of actor's dots they extend it; else the general join.
    const last = first + distinct.length - 1;
    if (this.ctx.vv.get(actor) === first - 1) this.ctx.vv.raise(actor, last);
    else this.ctx.joinWith(new CausalContext(undefined, distinct.map((_, k) => ({ actor, counter: first + k }))));
    return { delta, added };
  }

  /**
   * HINCRBY: adds amount (int64, may be negative or 0) to the field's counter as actor;
   * returns the delta and the new value. The delta holds a new presence dot of the field
   * (covering the actor's previous one), the actor's raised row, and covers the field's
   * register entries. A field showing a register value is converted when that value is an
   * integer (Redis: HSET f 10; HINCRBY f 5 gives 15): the entries are covered, the rows reset
   * and the counter starts at value + amount. Refused, nothing changed: INVALID "hash value
   * is not an integer" for any other register value; OUT_OF_RANGE if the result leaves int64
   * or a row passes uint64; LIMIT_EXCEEDED past hashFieldsWriteMax. lifeBase: where actor's
   * dots start if the key holds none, and its row if the field has none (clocks.ts dotBase).
   */
  incr(actor: ActorId, name: Uint8Array, amount: bigint, lifeBase = 0): { delta: OrMap; value: bigint } {
    checkField(name);
    if (!isInt64(amount)) throw new CrdtError(CrdtErrorCode.OutOfRange, `increment ${amount} is outside int64`);
    const old = this.field(name);
    if (old === undefined) this.checkRoom(1);
    const counting = old !== undefined && old.dots.length > 0 ? old : null;
    let base = 0n;
    if (counting === null && old !== undefined && old.entries.length > 0) {
      const parsed = parseInteger((shownEntry(old) as HashEntry).value);
      if (parsed === null) throw new CrdtError(CrdtErrorCode.Invalid, "hash value is not an integer");
      base = parsed;
    }
    const current = counting !== null ? counterValue(counting) : base;
    const value = current + amount;
    if (!isInt64(value)) throw new CrdtError(CrdtErrorCode.OutOfRange, "increment or decrement would overflow");
    const next = this.nextDots(actor, 1, lifeBase);
    const dot: Dot = { actor, counter: next.first };
    const dots: Dot[] = [dot];
    let rows: HashRow[];
    if (old !== undefined) for (const e of old.entries) dots.push(e.dot);
    // actor's row, if the field has none: counted from lifeBase, all of it below reset (clocks.ts dotBase).
    const rowBase = BigInt(Math.max(lifeBase, 0));
    const fresh: HashRow = { actor, p: rowBase, n: rowBase, rp: rowBase, rn: rowBase };
    if (counting !== null) {
      for (const d of counting.dots) if (d.actor === actor) dots.push(d);
      rows = [raise(counting.rows.find((r) => r.actor === actor) ?? fresh, actor, amount)];
    } else {
      // Nothing counted shows: whatever rows are left start over (a no-op when all are reset).
      rows = resetRows(old).slice();
      const i = rows.findIndex((r) => r.actor === actor);
      const own = i >= 0 ? rows[i] : old?.rows.find((r) => r.actor === actor) ?? fresh;
      const raised = raise(own, actor, base + amount);
      if (i >= 0) rows[i] = raised;
      else rows.push(raised);
      rows.sort((a, b) => actorRank(a.actor) - actorRank(b.actor));
    }
    rows = rows.filter((r) => r.p !== 0n || r.n !== 0n);
    const ctx = contextOf(dots);
    if (next.claim > 0) {
      // A new life of the key for actor: its dots below are claimed (the join brings it here).
      ctx.vv.raise(actor, next.claim);
      ctx.compact();
    }
    const delta = new OrMap([{ name: name.slice(), entries: noEntries, dots: [dot], rows: rows.length > 0 ? rows : noRows }], ctx);
    this.merge(delta);
    return { delta, value };
  }

  /**
   * HDEL: removes the named fields as this replica sees them (their dots in the delta's context,
   * their counter rows reset). Returns the delta (null if none was present: nothing to remove)
   * and how many were present. Refused (INVALID, nothing changed) for an empty or too long name.
   */
  del(names: readonly Uint8Array[]): { delta: OrMap | null; removed: number } {
    for (const n of names) checkField(n);
    const dots: Dot[] = [];
    const fields: HashField[] = [];
    let removed = 0;
    for (const name of distinctSorted(names, (n) => n)) {
      const f = this.field(name);
      if (f === undefined || !fieldPresent(f)) continue;
      removed++;
      pushLiveDots(f, dots);
      const rows = resetRows(f);
      if (rows.length > 0) fields.push({ name: f.name, entries: noEntries, dots: noDots, rows });
    }
    if (removed === 0) return { delta: null, removed };
    const delta = new OrMap(fields, contextOf(dots));
    // Only the named fields can hold the dots this delta covers.
    this.mergeWith(delta, names);
    return { delta, removed };
  }

  /**
   * Whole-key delete: the delta of everything this replica has seen (its whole context) and
   * every counter reset; null if nothing is present. Joining it again is a no-op.
   */
  removeObserved(): OrMap | null {
    if (!this.present()) return null;
    const fields: HashField[] = [];
    for (let i = 0; i < this.names.length; i++) {
      if (this.counterAt(i) !== 0) continue; // one plain entry: no rows to reset
      const f = this.otherAt(i);
      const rows = resetRows(f);
      if (rows.length > 0) fields.push({ name: f.name, entries: noEntries, dots: noDots, rows });
    }
    const delta = new OrMap(fields, this.ctx.clone());
    this.merge(delta);
    return delta;
  }

  /**
   * Join: a dotted item (entry, counter dot) survives if both sides hold it or the other side
   * has not seen its dot; rows take the per-component max. Returns whether this changed.
   */
  merge(other: OrMap): boolean {
    return this.mergeWith(other, noNames);
  }

  /** merge(), where `names` are fields other's context may cover besides its own (a local HDEL's). */
  private mergeWith(other: OrMap, names: readonly Uint8Array[]): boolean {
    const touched = other.names.length + names.length;
    if (touched <= scopedFieldsMax && this.names.length > touched && this.scopedTo(other, names)) {
      return this.mergeScoped(other, names);
    }
    const out = new OrMap();
    let changed = false;
    let i = 0;
    let j = 0;
    const a = this.names;
    const b = other.names;
    while (i < a.length || j < b.length) {
      const x = a[i];
      const y = b[j];
      const c = x === undefined ? 1 : y === undefined ? -1 : x < y ? -1 : x > y ? 1 : 0;
      if (c === 0) {
        if (this.joinInto(out, other, i, j)) changed = true;
        i++;
        j++;
      } else if (c < 0) {
        // Only here: it stays unless other has seen its dots.
        const xc = this.counterAt(i);
        if (xc !== 0) {
          if (ctxHas(other.ctx, this.actorAt(i), xc)) changed = true;
          else out.pushFrom(this, i);
        } else {
          const xf = this.otherAt(i);
          const f = filterField(xf, other.ctx);
          if (f !== xf) changed = true;
          if (f !== null) out.pushField(x as string, f);
        }
        i++;
      } else {
        // Only there: it comes unless this has seen its dots.
        const yc = other.counterAt(j);
        if (yc !== 0) {
          if (!ctxHas(this.ctx, other.actorAt(j), yc)) {
            out.pushFrom(other, j);
            changed = true;
          }
        } else {
          const f = filterField(other.otherAt(j), this.ctx);
          if (f !== null) {
            out.pushField(y as string, f);
            changed = true;
          }
        }
        j++;
      }
    }
    this.names = out.names;
    this.ix = null;
    this.nums = out.nums;
    this.values = out.values;
    this.others = out.others;
    this.bytes = out.bytes;
    this.siblingsUb = out.siblingsUb;
    this.rowsUb = out.rowsUb;
    if (joinContextInto(this.ctx, other.ctx)) changed = true;
    return changed;
  }

  /** Full merge, a field both sides hold (this's i, other's j): appends the join to out (if anything is left); true if it differs from this's. */
  private joinInto(out: OrMap, other: OrMap, i: number, j: number): boolean {
    const xc = this.counterAt(i);
    const yc = other.counterAt(j);
    const xa = this.actorAt(i);
    const ya = other.actorAt(j);
    if (xc !== 0 && yc !== 0) {
      // Two plain entries (the usual case): decided without objects unless both stay.
      if (xc === yc && xa === ya) {
        if (this.msAt(i) === other.msAt(j) && this.logicalAt(i) === other.logicalAt(j) && this.values[i] === other.values[j]) {
          out.pushFrom(this, i);
          return false;
        }
      } else {
        const keepX = !ctxHas(other.ctx, xa, xc);
        const keepY = !ctxHas(this.ctx, ya, yc);
        if (!keepY) {
          if (keepX) out.pushFrom(this, i);
          return !keepX;
        }
        if (!keepX) {
          out.pushFrom(other, j);
          return true;
        }
      }
    }
    const x = this.fieldAt(i);
    const f = joinField(x, other.fieldAt(j), this.ctx, other.ctx);
    if (f !== null) out.pushField(this.names[i] as string, f);
    return f !== x;
  }

  /**
   * Can joining other change only the fields other names? True when every dot of other's
   * context that this has seen is a live dot of other or of one of those fields here: then no
   * other field of this holds a dot other's context covers (a dot is one write, to one field).
   * Every delta of set, incr and del is like that on every replica that holds what its writer
   * held; anything else (a whole-key delete, a full state, a replica that has moved on) takes
   * the full pass.
   */
  private scopedTo(other: OrMap, names: readonly Uint8Array[]): boolean {
    const octx = other.ctx;
    let dots = octx.cloud.length;
    for (const c of octx.vv.counters) dots += c;
    if (dots > scopedDotsMax) return false;
    const named: number[] = [];
    for (const key of other.names) {
      const i = this.find(key);
      if (i >= 0) named.push(i);
    }
    for (const n of names) {
      const i = this.find(memberKey(n));
      if (i >= 0) named.push(i);
    }
    const accounted = (actor: ActorId, counter: number): boolean => {
      if (!ctxHas(this.ctx, actor, counter)) return true;
      for (let j = 0; j < other.names.length; j++) if (other.holdsAt(j, actor, counter)) return true;
      for (const i of named) if (this.holdsAt(i, actor, counter)) return true;
      return false;
    };
    for (let k = 0; k < octx.vv.actors.length; k++) {
      const actor = octx.vv.actors[k] as ActorId;
      const top = octx.vv.counters[k] as number;
      for (let counter = 1; counter <= top; counter++) if (!accounted(actor, counter)) return false;
    }
    for (const d of octx.cloud) if (!accounted(d.actor, d.counter)) return false;
    return true;
  }

  /** merge() when scopedTo(other, names): joins other's fields and filters `names` in place, O((other's fields + names) * log fields). */
  private mergeScoped(other: OrMap, names: readonly Uint8Array[]): boolean {
    let changed = false;
    const steps: { key: string; j: number }[] = other.names.map((key, j) => ({ key, j }));
    // A name other carries a field of is joined above; filtering it again by other's context would drop other's own dots.
    for (const name of names) {
      const key = memberKey(name);
      if (other.find(key) < 0) steps.push({ key, j: -1 });
    }
    for (const { key, j } of steps) {
      const i = this.find(key);
      const x = i >= 0 ? this.fieldAt(i) : undefined;
      if (j < 0 && x === undefined) continue;
      const f = j < 0 ? filterField(x as HashField, other.ctx) : x === undefined ? filterField(other.fieldAt(j), this.ctx) : joinField(x, other.fieldAt(j), this.ctx, other.ctx);
      if (f === x || (f === null && x === undefined)) continue;
      changed = true;
      if (x === undefined) this.insertAt(~i, key, f as HashField); // f !== null here
      else if (f === null) this.removeAt(i);
      else this.putAt(i, key, f);
    }
    if (joinContextInto(this.ctx, other.ctx)) changed = true;
    return changed;
  }

  equals(other: OrMap): boolean {
    const n = this.names.length;
    if (n !== other.names.length || !this.ctx.equals(other.ctx)) return false;
    for (let i = 0; i < n; i++) {
      if (this.names[i] !== other.names[i] || this.counterAt(i) !== other.counterAt(i)) return false;
      if (this.counterAt(i) === 0) {
        if (!fieldsEqual(this.otherAt(i), other.otherAt(i))) return false;
      } else if (this.actorAt(i) !== other.actorAt(i) || this.msAt(i) !== other.msAt(i) || this.logicalAt(i) !== other.logicalAt(i) || this.values[i] !== other.values[i]) {
        return false;
      }
    }
    return true;
  }

  /** Fields kept whole are immutable, so a clone shares them. */
  clone(): OrMap {
    const c = new OrMap([], this.ctx.clone());
    c.names = this.names.slice();
    c.nums = this.nums.slice(0, this.names.length * stride);
    c.values = this.values.slice();
    c.others = this.others === null ? null : new Map(this.others);
    c.bytes = this.bytes;
    c.siblingsUb = this.siblingsUb;
    c.rowsUb = this.rowsUb;
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

/** Does f hold dot d live (as a value or a counter dot)? */
function holdsDot(f: HashField, d: Dot): boolean {
  for (const e of f.entries) if (e.dot.actor === d.actor && e.dot.counter === d.counter) return true;
  for (const x of f.dots) if (x.actor === d.actor && x.counter === d.counter) return true;
  return false;
}

/** The most values and the most counter rows one field holds. */
export function widest(fields: readonly HashField[]): { siblings: number; rows: number } {
  let siblings = 0;
  let rows = 0;
  for (const f of fields) {
    if (f.entries.length > siblings) siblings = f.entries.length;
    if (f.rows.length > rows) rows = f.rows.length;
  }
  return { siblings, rows };
}

/** actor's row (or a new one) raised by amount (negative: n). */
function raise(row: HashRow | undefined, actor: ActorId, amount: bigint): HashRow {
  const r = row ?? { actor, p: 0n, n: 0n, rp: 0n, rn: 0n };
  const p = amount > 0n ? r.p + amount : r.p;
  const n = amount < 0n ? r.n - amount : r.n;
  if (p > uint64Max || n > uint64Max) throw new CrdtError(CrdtErrorCode.OutOfRange, "this replica's count of the field would pass uint64");
  return { actor, p, n, rp: r.rp, rn: r.rn };
}

/** f without the dotted items ctx has seen (f itself if none; null if nothing is left). */
function filterField(f: HashField, ctx: CausalContext): HashField | null {
  const entries = keepUnseen(f.entries, (e) => e.dot, ctx);
  const dots = keepUnseen(f.dots, (d) => d, ctx);
  if (entries === f.entries && dots === f.dots) return f;
  if (isEmpty(entries, dots, f.rows)) return null;
  return { name: f.name, entries, dots, rows: f.rows };
}

function keepUnseen<T>(items: readonly T[], dotOf: (t: T) => Dot, ctx: CausalContext): readonly T[] {
  let out: T[] | null = null;
  for (let k = 0; k < items.length; k++) {
    const t = items[k] as T;
    if (ctx.contains(dotOf(t))) out ??= items.slice(0, k);
    else if (out !== null) out.push(t);
  }
  return out ?? items;
}

/** The join of two records of one field; x itself if it does not change, null if nothing is left. */
function joinField(x: HashField, y: HashField, xCtx: CausalContext, yCtx: CausalContext): HashField | null {
  const entries = joinDotted(x.entries, y.entries, (e) => e.dot, xCtx, yCtx, (p, q) => (compareShown(q, p) > 0 ? q : p));
  const dots = joinDotted(x.dots, y.dots, (d) => d, xCtx, yCtx, (p) => p);
  const rows = joinRows(x.rows, y.rows);
  if (entries === x.entries && dots === x.dots && rows === x.rows) return x;
  if (isEmpty(entries, dots, rows)) return null;
  return { name: x.name, entries, dots, rows };
}

/**
 * Dotted join of two dot-sorted lists: an item survives if both hold it or the other side has
 * not seen its dot. Returns a itself when the result equals a. Two items with one dot (never
 * from correct replicas) resolve by pick, which must be commutative, to keep the join a join.
 */
function joinDotted<T>(
  a: readonly T[], b: readonly T[], dotOf: (t: T) => Dot, aCtx: CausalContext, bCtx: CausalContext, pick: (p: T, q: T) => T,
): readonly T[] {
  if (b.length === 0) return keepUnseen(a, dotOf, bCtx);
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    const c = x === undefined ? 1 : y === undefined ? -1 : dotCompare(dotOf(x), dotOf(y));
    if (c === 0 && x !== undefined && y !== undefined) {
      out.push(pick(x, y));
      i++;
      j++;
    } else if (c < 0 && x !== undefined) {
      if (!bCtx.contains(dotOf(x))) out.push(x);
      i++;
    } else if (y !== undefined) {
      if (!aCtx.contains(dotOf(y))) out.push(y);
      j++;
    }
  }
  if (out.length === a.length && out.every((t, k) => t === a[k])) return a;
  return out;
}

/** Per-actor, per-component max of two rank-sorted row lists; a itself if unchanged. */
function joinRows(a: readonly HashRow[], b: readonly HashRow[]): readonly HashRow[] {
  if (b.length === 0) return a;
  const out: HashRow[] = [];
  let changed = false;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    const c = x === undefined ? 1 : y === undefined ? -1 : actorRank(x.actor) - actorRank(y.actor);
    if (c === 0 && x !== undefined && y !== undefined) {
      if (y.p > x.p || y.n > x.n || y.rp > x.rp || y.rn > x.rn) {
        const max = (u: bigint, v: bigint): bigint => (u > v ? u : v);
        out.push({ actor: x.actor, p: max(x.p, y.p), n: max(x.n, y.n), rp: max(x.rp, y.rp), rn: max(x.rn, y.rn) });
        changed = true;
      } else out.push(x);
      i++;
      j++;
    } else if (c < 0 && x !== undefined) {
      out.push(x);
      i++;
    } else if (y !== undefined) {
      out.push(y);
      changed = true;
      j++;
    }
  }
  return changed ? out : a;
}

function fieldsEqual(x: HashField, y: HashField): boolean {
  if (!bytesEqual(x.name, y.name) || x.entries.length !== y.entries.length || x.dots.length !== y.dots.length || x.rows.length !== y.rows.length) return false;
  for (let k = 0; k < x.entries.length; k++) {
    const e = x.entries[k] as HashEntry;
    const f = y.entries[k] as HashEntry;
    if (dotCompare(e.dot, f.dot) !== 0 || e.ms !== f.ms || e.logical !== f.logical || !bytesEqual(e.value, f.value)) return false;
  }
  for (let k = 0; k < x.dots.length; k++) if (dotCompare(x.dots[k] as Dot, y.dots[k] as Dot) !== 0) return false;
  for (let k = 0; k < x.rows.length; k++) {
    const r = x.rows[k] as HashRow;
    const s = y.rows[k] as HashRow;
    if (r.actor !== s.actor || r.p !== s.p || r.n !== s.n || r.rp !== s.rp || r.rn !== s.rn) return false;
  }
  return true;
}
