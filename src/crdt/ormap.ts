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

import { actorRank, actorUtf8, type ActorId } from "./actors.ts";
import { CausalContext, dotCompare, VersionVector, type Dot } from "./clocks.ts";
import { CrdtError, CrdtErrorCode } from "./errors.ts";
import { isValidHlc, type Hlc } from "./hlc.ts";
import { isInt64, uint64Max } from "./int64.ts";
import { bytesEqual, compareBytes } from "./lww.ts";
import { hashFieldBytesMax, hashFieldsWriteMax, registerValueBytesMax } from "../limits.ts";

/**
 * A merge whose other side names at most this many fields, and whose context holds at most
 * scopedDotsMax dots, may take the scoped path (see OrMap.merge): every delta of set, incr and
 * del qualifies, so a write costs O(log fields) instead of a pass over every field.
 */
const scopedFieldsMax = 64;
const scopedDotsMax = 256;

/** Bytes of a protobuf varint of n (a non-negative safe integer or u64 bigint). */
function varintBytes(n: number | bigint): number {
  let x = BigInt(n);
  let k = 1;
  while (x >= 0x80n) { x >>= 7n; k++; }
  return k;
}

/** Bytes of a length-delimited field of `inner` bytes with a one-byte tag. */
const delimited = (inner: number): number => 1 + varintBytes(inner) + inner;

function dotBytes(d: Dot): number {
  const a = actorUtf8(d.actor).length;
  return delimited(delimited(a) + 1 + varintBytes(d.counter));
}

/**
 * A field's exact encoded bytes in the state message (src/codec/states.ts writeOrMap; every tag
 * is one byte). Kept summed by merge, so the engine's size checks need no encoding: the exact
 * check (which encodes the whole state) runs only when a state is truly near a limit.
 */
export function fieldEncodedBytes(f: HashField): number {
  let n = delimited(f.name.length);
  for (const e of f.entries) {
    const inner = dotBytes(e.dot) + (e.ms !== 0 || e.logical !== 0 ? 9 : 0) + (e.value.length > 0 ? delimited(e.value.length) : 0);
    n += delimited(inner);
  }
  for (const d of f.dots) n += dotBytes(d);
  for (const r of f.rows) {
    let inner = delimited(actorUtf8(r.actor).length);
    for (const x of [r.p, r.n, r.rp, r.rn]) if (x !== 0n) inner += 1 + varintBytes(x);
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

export class OrMap {
  /** The kind discriminant (src/kinds): on the prototype, so it costs no memory per state. */
  get kind(): "hash" {
    return "hash";
  }

  /**
   * Sum of fieldEncodedBytes over fields (exact), or -1 when not known; and upper bounds of the
   * most values and rows one field holds (null: not known). Kept by merge so the engine's
   * bound checks cost O(1) per write; `fields` is only ever replaced through merge.
   */
  private fieldsBytesUb = -1;
  private widthUb: { siblings: number; rows: number } | null = null;

  /** fields sorted bytewise by name, each non-empty; every live dot is in ctx. */
  constructor(public fields: HashField[] = [], public ctx: CausalContext = new CausalContext()) {}

  /** An upper bound of the fields' encoded bytes (without the context). */
  fieldsBytesUpperBound(): number {
    if (this.fieldsBytesUb < 0) {
      let n = 0;
      for (const f of this.fields) n += fieldEncodedBytes(f);
      this.fieldsBytesUb = n;
    }
    return this.fieldsBytesUb;
  }

  /** Upper bounds of the most values and the most counter rows one field holds. */
  widthUpperBound(): { siblings: number; rows: number } {
    if (this.widthUb === null) this.widthUb = widest(this.fields);
    return this.widthUb;
  }

  /** Index of the field named name, or ~insertion point. */
  private find(name: Uint8Array): number {
    let lo = 0;
    let hi = this.fields.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareBytes((this.fields[mid] as HashField).name, name);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return ~lo;
  }

  /** The record of field name (present or a removed counter's leftover rows), or undefined. */
  field(name: Uint8Array): HashField | undefined {
    const i = this.find(name);
    return i >= 0 ? this.fields[i] : undefined;
  }

  /** HGET: the field's value, or null if absent. */
  get(name: Uint8Array): Uint8Array | null {
    const f = this.field(name);
    return f === undefined ? null : fieldValue(f);
  }

  /** HMGET. */
  getMany(names: readonly Uint8Array[]): (Uint8Array | null)[] {
    return names.map((n) => this.get(n));
  }

  /** HGETALL: present fields in bytewise order. */
  getAll(): HashPair[] {
    const out: HashPair[] = [];
    for (const f of this.fields) {
      const value = fieldValue(f);
      if (value !== null) out.push({ field: f.name, value });
    }
    return out;
  }

  /** HLEN. */
  len(): number {
    let n = 0;
    for (const f of this.fields) if (fieldPresent(f)) n++;
    return n;
  }

  present(): boolean {
    for (const f of this.fields) if (fieldPresent(f)) return true;
    return false;
  }

  private nextCounter(actor: ActorId, k: number): number {
    const counter = this.ctx.max(actor) + k;
    if (!Number.isSafeInteger(counter)) throw new CrdtError(CrdtErrorCode.OutOfRange, "dot counter exhausted");
    return counter;
  }

  private checkRoom(newRecords: number): void {
    if (this.fields.length + newRecords > hashFieldsWriteMax) {
      throw new CrdtError(
        CrdtErrorCode.LimitExceeded,
        `the hash would hold ${this.fields.length + newRecords} fields, the most a write may leave is ${hashFieldsWriteMax}`,
      );
    }
  }

  /**
   * HSET: writes each pair as actor at ts (the last of equal fields wins). Each field's new
   * value replaces every value and counter of that field this replica holds (their dots go in
   * the delta's context, its counter rows are reset); a value written concurrently elsewhere
   * stays as a sibling. Returns the delta and how many fields were not present before.
   * Refused, nothing changed: INVALID for an empty or too long field or value, or a bad HLC;
   * LIMIT_EXCEEDED past hashFieldsWriteMax.
   */
  set(actor: ActorId, ts: Hlc, pairs: readonly HashPair[]): { delta: OrMap; added: number } {
    if (!isValidHlc(ts.ms, ts.logical)) throw new CrdtError(CrdtErrorCode.Invalid, `HLC ${ts.ms}.${ts.logical} out of range`);
    if (pairs.length === 0) throw new CrdtError(CrdtErrorCode.Invalid, "HSET needs at least one field");
    for (const p of pairs) {
      checkField(p.field);
      if (p.value.length > registerValueBytesMax) throw new CrdtError(CrdtErrorCode.Invalid, `value longer than ${registerValueBytesMax} bytes`);
    }
    const distinct = distinctSorted(pairs, (p) => p.field);
    let newRecords = 0;
    for (const p of distinct) if (this.find(p.field) < 0) newRecords++;
    this.checkRoom(newRecords);
    const first = this.nextCounter(actor, distinct.length);
    const dots: Dot[] = [];
    const fields: HashField[] = [];
    let added = 0;
    distinct.forEach((p, k) => {
      const old = this.field(p.field);
      if (old === undefined || !fieldPresent(old)) added++;
      pushLiveDots(old, dots);
      const dot: Dot = { actor, counter: first - distinct.length + 1 + k };
      dots.push(dot);
      const entry: HashEntry = { dot, ms: ts.ms, logical: ts.logical, value: p.value.slice() };
      fields.push({ name: p.field.slice(), entries: [entry], dots: noDots, rows: resetRows(old) });
    });
    const delta = new OrMap(fields, contextOf(dots));
    this.merge(delta);
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
   * or a row passes uint64; LIMIT_EXCEEDED past hashFieldsWriteMax.
   */
  incr(actor: ActorId, name: Uint8Array, amount: bigint): { delta: OrMap; value: bigint } {
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
    const dot: Dot = { actor, counter: this.nextCounter(actor, 1) };
    const dots: Dot[] = [dot];
    let rows: HashRow[];
    if (old !== undefined) for (const e of old.entries) dots.push(e.dot);
    if (counting !== null) {
      for (const d of counting.dots) if (d.actor === actor) dots.push(d);
      rows = [raise(counting.rows.find((r) => r.actor === actor), actor, amount)];
    } else {
      // Nothing counted shows: whatever rows are left start over (a no-op when all are reset).
      rows = resetRows(old).slice();
      const i = rows.findIndex((r) => r.actor === actor);
      const own = i >= 0 ? rows[i] : old?.rows.find((r) => r.actor === actor);
      const raised = raise(own, actor, base + amount);
      if (i >= 0) rows[i] = raised;
      else rows.push(raised);
      rows.sort((a, b) => actorRank(a.actor) - actorRank(b.actor));
    }
    rows = rows.filter((r) => r.p !== 0n || r.n !== 0n);
    const delta = new OrMap([{ name: name.slice(), entries: noEntries, dots: [dot], rows: rows.length > 0 ? rows : noRows }], contextOf(dots));
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
    for (const f of this.fields) {
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
    if (other.fields.length + names.length <= scopedFieldsMax && this.fields.length > other.fields.length + names.length && this.scopedTo(other, names)) {
      return this.mergeScoped(other, names);
    }
    this.fieldsBytesUb = -1;
    this.widthUb = null;
    const a = this.fields;
    const b = other.fields;
    const out: HashField[] = [];
    let changed = false;
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      const x = a[i];
      const y = b[j];
      const c = x === undefined ? 1 : y === undefined ? -1 : compareBytes(x.name, y.name);
      let f: HashField | null;
      if (c === 0 && x !== undefined && y !== undefined) {
        f = joinField(x, y, this.ctx, other.ctx);
        if (f !== x) changed = true;
        i++;
        j++;
      } else if (c < 0 && x !== undefined) {
        f = filterField(x, other.ctx);
        if (f !== x) changed = true;
        i++;
      } else {
        f = filterField(y as HashField, this.ctx);
        if (f !== null) changed = true;
        j++;
      }
      if (f !== null) out.push(f);
    }
    const ctx = this.ctx.clone();
    ctx.joinWith(other.ctx);
    if (!ctx.equals(this.ctx)) changed = true;
    this.fields = out;
    this.ctx = ctx;
    return changed;
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
    const named: HashField[] = [];
    for (const y of other.fields) {
      const x = this.field(y.name);
      if (x !== undefined) named.push(x);
    }
    for (const n of names) {
      const x = this.field(n);
      if (x !== undefined) named.push(x);
    }
    const accounted = (d: Dot): boolean => {
      if (!this.ctx.contains(d)) return true;
      for (const y of other.fields) if (holdsDot(y, d)) return true;
      for (const x of named) if (holdsDot(x, d)) return true;
      return false;
    };
    for (let i = 0; i < octx.vv.actors.length; i++) {
      const actor = octx.vv.actors[i] as ActorId;
      const top = octx.vv.counters[i] as number;
      for (let counter = 1; counter <= top; counter++) if (!accounted({ actor, counter })) return false;
    }
    for (const d of octx.cloud) if (!accounted(d)) return false;
    return true;
  }

  /** merge() when scopedTo(other, names): joins other's fields and filters `names` in place, O((other's fields + names) * log fields). */
  private mergeScoped(other: OrMap, names: readonly Uint8Array[]): boolean {
    let changed = false;
    const steps: { name: Uint8Array; y: HashField | undefined }[] = other.fields.map((y) => ({ name: y.name, y }));
    // A name other carries a field of is joined above; filtering it again by other's context would drop other's own dots.
    for (const name of names) if (!other.fields.some((y) => bytesEqual(y.name, name))) steps.push({ name, y: undefined });
    for (const { name, y } of steps) {
      const i = this.find(name);
      const x = i >= 0 ? (this.fields[i] as HashField) : undefined;
      if (y === undefined && x === undefined) continue;
      const f = y === undefined ? filterField(x as HashField, other.ctx) : x === undefined ? filterField(y, this.ctx) : joinField(x, y, this.ctx, other.ctx);
      if (f === x || (f === null && x === undefined)) continue;
      changed = true;
      if (this.fieldsBytesUb >= 0) this.fieldsBytesUb += (f === null ? 0 : fieldEncodedBytes(f)) - (x === undefined ? 0 : fieldEncodedBytes(x));
      if (this.widthUb !== null && f !== null) {
        this.widthUb = { siblings: Math.max(this.widthUb.siblings, f.entries.length), rows: Math.max(this.widthUb.rows, f.rows.length) };
      }
      if (x === undefined) this.fields.splice(~i, 0, f as HashField); // f !== null here
      else if (f === null) this.fields.splice(i, 1);
      else this.fields[i] = f;
    }
    const ctx = this.ctx.clone();
    ctx.joinWith(other.ctx);
    if (!ctx.equals(this.ctx)) changed = true;
    this.ctx = ctx;
    return changed;
  }

  equals(other: OrMap): boolean {
    if (this.fields.length !== other.fields.length || !this.ctx.equals(other.ctx)) return false;
    for (let i = 0; i < this.fields.length; i++) if (!fieldsEqual(this.fields[i] as HashField, other.fields[i] as HashField)) return false;
    return true;
  }

  /** Fields are immutable, so a clone shares them. */
  clone(): OrMap {
    const c = new OrMap(this.fields.slice(), this.ctx.clone());
    c.fieldsBytesUb = this.fieldsBytesUb;
    c.widthUb = this.widthUb;
    return c;
  }
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
