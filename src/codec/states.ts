// Canonical protobuf encodings of each CRDT state (messages in proto/crdt.proto) and their
// decoders. Decoding any bytes either returns a valid state or throws DecodeError.

import {
  actorIdBytesMax, actorName, actorUtf8, CausalContext, compareBytes, Deadline, deadlineValue, deadlineValueBytes, dotCounterMax, GCounter, hlcLogicalMax, internActor, LwwRegister,
  memberKey, MvRegister, OrMap, OrSet, PNCounter, registerValueBytesMax, VersionVector, dotCompare, actorRank,
  type ActorId, type Dot, type HashEntry, type HashField, type HashRow, type MvEntry,
} from "../crdt/index.ts";
import { DecodeError } from "./errors.ts";
import { Reader, WireType, Writer } from "./wire.ts";

import {
  contextActorsMax, contextCloudDotsMax, counterActorsMax, counterResetRowsMax, hashFieldBytesMax, hashFieldSiblingsMax, hashFieldsMax,
  keyStateBytesMax, mvSiblingsMax, rowBytesMax, setMemberBytesMax, setMembersMax,
} from "../limits.ts";

// The decoders accept every state a replica may store (src/limits.ts: the stored bounds).
/**
 * Most per-actor rows (and reset rows) of a counter; most MV siblings; most version-vector
 * entries and cloud dots of a context; most OR-Set members and longest member.
 */
export { contextActorsMax, contextCloudDotsMax, counterActorsMax, counterResetRowsMax, mvSiblingsMax, setMemberBytesMax, setMembersMax };
/** Largest encoded state of one key. */
export const stateBytesMax = keyStateBytesMax;

/** ignoreBOM: a leading U+FEFF is part of the string, not a byte-order mark to drop. */
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decodes UTF-8 (ASCII fast path); throws DecodeError on invalid input. */
export function decodeUtf8(r: Reader, bytes: Uint8Array, what: string): string {
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) if ((bytes[i] as number) >= 0x80) { ascii = false; break; }
  if (ascii) return String.fromCharCode(...bytes);
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return r.fail(`${what}: invalid UTF-8`);
  }
}

function readActorName(r: Reader): string {
  const bytes = r.bytesView(actorIdBytesMax, "actor id");
  if (bytes.length === 0) r.fail("actor id is empty");
  return decodeUtf8(r, bytes, "actor id");
}

function intern(r: Reader, name: string): ActorId {
  try {
    return internActor(name);
  } catch (e) {
    return r.fail(`actor id refused: ${(e as Error).message}`);
  }
}

function writeActor(w: Writer, field: number, a: ActorId): void {
  w.tag(field, WireType.Bytes);
  w.bytes(actorUtf8(a));
}

/** Interns row names (after the whole message parsed) and sorts rows canonically; refuses duplicates. */
function internRows<T extends { name: string; actor: ActorId }>(r: Reader, rows: T[]): T[] {
  for (const row of rows) row.actor = intern(r, row.name);
  rows.sort((x, y) => actorRank(x.actor) - actorRank(y.actor));
  for (let i = 1; i < rows.length; i++) {
    if ((rows[i] as T).actor === (rows[i - 1] as T).actor) r.fail(`duplicate actor ${(rows[i] as T).name}`);
  }
  return rows;
}

// ---- counter reset rows (CounterReset, field 2 of both counter states) ----

/**
 * A counter's reset rows, after its count rows (so a counter no delete touched encodes exactly
 * as before resets existed). A G-Counter's rows have no n.
 */
function writeResets(w: Writer, actors: readonly ActorId[], p: readonly bigint[], n: readonly bigint[] | null): void {
  for (let i = 0; i < actors.length; i++) {
    const at = w.begin(2);
    writeActor(w, 1, actors[i] as ActorId);
    const x = p[i] as bigint;
    const y = n === null ? 0n : (n[i] as bigint);
    if (x !== 0n) { w.tag(2, WireType.Varint); w.uint64(x); }
    if (y !== 0n) { w.tag(3, WireType.Varint); w.uint64(y); }
    w.end(at);
  }
}

interface RawReset { name: string; actor: ActorId; p: bigint; n: bigint }

/**
 * One reset row into rows (an all-zero row resets nothing and is dropped, as a zero count row
 * is). A reset may lie above its count row, or have none: a delete's delta holds only resets
 * (src/crdt/gcounter.ts), so that is valid. A G-Counter's reset has no n.
 */
function readReset(r: Reader, rows: RawReset[], g: boolean): void {
  if (rows.length >= counterResetRowsMax) r.fail(`more than ${counterResetRowsMax} counter reset rows`);
  const e: Reader = r.sub(rowBytesMax, "counter reset row");
  let name: string | null = null;
  let p = 0n;
  let n = 0n;
  while (!e.done) {
    const [g2, gt] = e.tag();
    if (g2 === 1) { e.expect(gt, WireType.Bytes, g2); name = readActorName(e); }
    else if (g2 === 2) { e.expect(gt, WireType.Varint, g2); p = e.uint64(); }
    else if (g2 === 3) { e.expect(gt, WireType.Varint, g2); n = e.uint64(); }
    else e.skip(gt);
  }
  if (name === null) e.fail("counter reset row without actor");
  if (g && n !== 0n) e.fail("G-Counter reset row with a decrement total");
  if (p > 0n || n > 0n) rows.push({ name, actor: 0 as ActorId, p, n });
}

// ---- G-Counter ----

export function writeGCounter(w: Writer, s: GCounter): void {
  for (let i = 0; i < s.actors.length; i++) {
    const at = w.begin(1);
    writeActor(w, 1, s.actors[i] as ActorId);
    w.tag(2, WireType.Varint);
    w.uint64(s.counts[i] as bigint);
    w.end(at);
  }
  if (s.resets !== null) writeResets(w, s.resets.actors, s.resets.counts, null);
}

export function readGCounter(r: Reader): GCounter {
  const rows: { name: string; actor: ActorId; count: bigint }[] = [];
  const resets: RawReset[] = [];
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 2) { r.expect(wt, WireType.Bytes, f); readReset(r, resets, true); continue; }
    if (f !== 1) { r.skip(wt); continue; }
    r.expect(wt, WireType.Bytes, f);
    if (rows.length >= counterActorsMax) r.fail(`more than ${counterActorsMax} counter rows`);
    const e: Reader = r.sub(rowBytesMax, "G-Counter row");
    let name: string | null = null;
    let count = 0n;
    while (!e.done) {
      const [g, gt] = e.tag();
      if (g === 1) { e.expect(gt, WireType.Bytes, g); name = readActorName(e); }
      else if (g === 2) { e.expect(gt, WireType.Varint, g); count = e.uint64(); }
      else e.skip(gt);
    }
    if (name === null) e.fail("G-Counter row without actor");
    if (count > 0n) rows.push({ name, actor: 0 as ActorId, count });
  }
  internRows(r, rows);
  internRows(r, resets);
  const reset = resets.length === 0 ? null : new GCounter(resets.map((x) => x.actor), resets.map((x) => x.p));
  return new GCounter(rows.map((x) => x.actor), rows.map((x) => x.count), reset);
}

// ---- PN-Counter ----

export function writePNCounter(w: Writer, s: PNCounter): void {
  for (let i = 0; i < s.actors.length; i++) {
    const at = w.begin(1);
    writeActor(w, 1, s.actors[i] as ActorId);
    const p = s.p[i] as bigint;
    const n = s.n[i] as bigint;
    if (p !== 0n) { w.tag(2, WireType.Varint); w.uint64(p); }
    if (n !== 0n) { w.tag(3, WireType.Varint); w.uint64(n); }
    w.end(at);
  }
  if (s.resets !== null) writeResets(w, s.resets.actors, s.resets.p, s.resets.n);
}

export function readPNCounter(r: Reader): PNCounter {
  const rows: { name: string; actor: ActorId; p: bigint; n: bigint }[] = [];
  const resets: RawReset[] = [];
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 2) { r.expect(wt, WireType.Bytes, f); readReset(r, resets, false); continue; }
    if (f !== 1) { r.skip(wt); continue; }
    r.expect(wt, WireType.Bytes, f);
    if (rows.length >= counterActorsMax) r.fail(`more than ${counterActorsMax} counter rows`);
    const e: Reader = r.sub(rowBytesMax, "PN-Counter row");
    let name: string | null = null;
    let p = 0n;
    let n = 0n;
    while (!e.done) {
      const [g, gt] = e.tag();
      if (g === 1) { e.expect(gt, WireType.Bytes, g); name = readActorName(e); }
      else if (g === 2) { e.expect(gt, WireType.Varint, g); p = e.uint64(); }
      else if (g === 3) { e.expect(gt, WireType.Varint, g); n = e.uint64(); }
      else e.skip(gt);
    }
    if (name === null) e.fail("PN-Counter row without actor");
    if (p > 0n || n > 0n) rows.push({ name, actor: 0 as ActorId, p, n });
  }
  internRows(r, rows);
  internRows(r, resets);
  const reset = resets.length === 0 ? null : new PNCounter(resets.map((x) => x.actor), resets.map((x) => x.p), resets.map((x) => x.n));
  return new PNCounter(rows.map((x) => x.actor), rows.map((x) => x.p), rows.map((x) => x.n), reset);
}

// ---- LWW-Register ----

/** An HLC as the wire's fixed64: ms << 16 | logical, as two u32 halves. */
function writeHlc(w: Writer, field: number, ms: number, logical: number): void {
  if (ms === 0 && logical === 0) return;
  const hi = Math.floor(ms / 0x10000);
  const lo = ((ms % 0x10000) * 0x10000 + logical) >>> 0;
  w.tag(field, WireType.Fixed64);
  w.fixed64(hi, lo);
}

function hlcOf(hi: number, lo: number): { ms: number; logical: number } {
  return { ms: hi * 0x10000 + (lo >>> 16), logical: lo & hlcLogicalMax };
}

/**
 * Two forms (proto/crdt.proto). A register holding one write and having seen nothing else -
 * every register before deletes existed - keeps the single-write form (fields 1..3), so the
 * WAL records, snapshots and digests written before are the bytes written now. Anything else
 * (concurrent writes, a write that replaced another actor's, a delete) uses entries and the
 * context of actors holding no entry (fields 4, 5); an entry's own timestamp is its actor's.
 */
export function writeLww(w: Writer, s: LwwRegister): void {
  if (s.isSingleWrite && s.actor !== null) {
    writeHlc(w, 1, s.ms, s.logical);
    writeActor(w, 2, s.actor);
    if (s.value.length > 0) { w.tag(3, WireType.Bytes); w.bytes(s.value); }
    return;
  }
  for (const x of s.entries) {
    const at = w.begin(4);
    writeActor(w, 1, x.actor);
    writeHlc(w, 2, x.ms, x.logical);
    if (x.value.length > 0) { w.tag(3, WireType.Bytes); w.bytes(x.value); }
    w.end(at);
  }
  // Only the context of actors holding no entry: an entry's timestamp is its actor's.
  const seen = s.seenRows;
  for (let i = 0; i < seen.length; i += 3) {
    const at = w.begin(5);
    writeActor(w, 1, seen[i] as ActorId);
    writeHlc(w, 2, seen[i + 1] as number, seen[i + 2] as number);
    w.end(at);
  }
}

interface RawLwwRow { name: string; actor: ActorId; ms: number; logical: number; value: Uint8Array }

/** One LwwEntry (withValue) or LwwClock row. */
function readLwwRow(r: Reader, withValue: boolean): RawLwwRow {
  const what = withValue ? "LWW entry" : "LWW context row";
  const e: Reader = r.sub(withValue ? registerValueBytesMax + rowBytesMax + 16 : rowBytesMax, what);
  let name: string | null = null;
  let hi = 0;
  let lo = 0;
  let value: Uint8Array = new Uint8Array(0);
  while (!e.done) {
    const [g, gt] = e.tag();
    if (g === 1) { e.expect(gt, WireType.Bytes, g); name = readActorName(e); }
    else if (g === 2) { e.expect(gt, WireType.Fixed64, g); [hi, lo] = e.fixed64(); }
    else if (g === 3 && withValue) { e.expect(gt, WireType.Bytes, g); value = e.bytesView(registerValueBytesMax, "register value"); }
    else e.skip(gt);
  }
  if (name === null) e.fail(`${what} without actor`);
  return { name, actor: 0 as ActorId, ...hlcOf(hi, lo), value };
}

export function readLww(r: Reader): LwwRegister {
  let hi = 0;
  let lo = 0;
  let name: string | null = null;
  let value: Uint8Array = new Uint8Array(0);
  let single = false;
  const entries: RawLwwRow[] = [];
  const ctx: RawLwwRow[] = [];
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 1) { r.expect(wt, WireType.Fixed64, f); [hi, lo] = r.fixed64(); single = true; }
    else if (f === 2) { r.expect(wt, WireType.Bytes, f); name = readActorName(r); single = true; }
    else if (f === 3) { r.expect(wt, WireType.Bytes, f); value = r.bytesView(registerValueBytesMax, "register value"); single = true; }
    else if (f === 4) {
      r.expect(wt, WireType.Bytes, f);
      // One entry per actor that wrote concurrently: bounded as MV siblings are.
      if (entries.length >= mvSiblingsMax) r.fail(`more than ${mvSiblingsMax} LWW entries`);
      entries.push(readLwwRow(r, true));
    } else if (f === 5) {
      r.expect(wt, WireType.Bytes, f);
      if (ctx.length >= contextActorsMax) r.fail(`more than ${contextActorsMax} LWW context rows`);
      ctx.push(readLwwRow(r, false));
    } else r.skip(wt);
  }
  if (single && (entries.length > 0 || ctx.length > 0)) r.fail("LWW-Register in both the single-write and the general form");
  if (single) {
    if (name === null) {
      if (hi !== 0 || lo !== 0 || value.length > 0) r.fail("LWW-Register with timestamp or value but no actor");
      return new LwwRegister();
    }
    const t = hlcOf(hi, lo);
    return new LwwRegister(t.ms, t.logical, intern(r, name), value.slice());
  }
  internRows(r, entries);
  internRows(r, ctx);
  // Both sorted by actor rank: one walk keeps the context rows of actors holding no entry.
  // An entry is a write the register has seen (a row below it, or none, is the entry's own, as
  // readMv adds each dot to its context); a row above it is a later write of that actor, which
  // covers the entry: no state a replica can hold.
  const seen: number[] = [];
  let k = 0;
  for (const row of ctx) {
    while (k < entries.length && actorRank((entries[k] as RawLwwRow).actor) < actorRank(row.actor)) k++;
    const x = entries[k];
    if (x !== undefined && x.actor === row.actor) {
      if (row.ms > x.ms || (row.ms === x.ms && row.logical > x.logical)) r.fail(`LWW entry of ${x.name} below its context`);
      continue;
    }
    seen.push(row.actor, row.ms, row.logical);
  }
  return LwwRegister.ofSorted(entries.map((x) => ({ actor: x.actor, ms: x.ms, logical: x.logical, value: x.value.slice() })), seen);
}

// ---- Causal context ----

function writeActorCounter(w: Writer, field: number, actor: ActorId, counter: number): void {
  const at = w.begin(field);
  writeActor(w, 1, actor);
  w.tag(2, WireType.Varint);
  w.uint(counter);
  w.end(at);
}

export function writeContext(w: Writer, c: CausalContext): void {
  for (let i = 0; i < c.vv.actors.length; i++) writeActorCounter(w, 1, c.vv.actors[i] as ActorId, c.vv.counters[i] as number);
  for (const d of c.cloud) writeActorCounter(w, 2, d.actor, d.counter);
}

export interface RawDot { name: string; actor: ActorId; counter: number }

export function readActorCounter(r: Reader, what: string): RawDot {
  const e: Reader = r.sub(rowBytesMax, what);
  let name: string | null = null;
  let counter = 0;
  while (!e.done) {
    const [g, gt] = e.tag();
    if (g === 1) { e.expect(gt, WireType.Bytes, g); name = readActorName(e); }
    else if (g === 2) { e.expect(gt, WireType.Varint, g); counter = e.uint(); }
    else e.skip(gt);
  }
  if (name === null) e.fail(`${what} without actor`);
  if (counter < 1 || counter > dotCounterMax) e.fail(`${what}: counter ${counter} out of range`);
  return { name, actor: 0 as ActorId, counter };
}

/** Raw (un-interned) context, so a message is validated whole before anything is interned. */
interface RawContext { vv: RawDot[]; cloud: RawDot[] }

/**
 * Reads a context's dots without interning anything. `other` may take a field the context
 * message does not define (the client form's key tag, src/codec/context.ts) and returns true
 * when it did; every other unknown field is skipped.
 */
export function readRawContext(r: Reader, other?: (field: number, wt: number) => boolean): RawContext {
  const vv: RawDot[] = [];
  const cloud: RawDot[] = [];
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 1) {
      r.expect(wt, WireType.Bytes, f);
      if (vv.length >= contextActorsMax) r.fail(`more than ${contextActorsMax} version vector entries`);
      vv.push(readActorCounter(r, "version vector entry"));
    } else if (f === 2) {
      r.expect(wt, WireType.Bytes, f);
      if (cloud.length >= contextCloudDotsMax) r.fail(`more than ${contextCloudDotsMax} cloud dots`);
      cloud.push(readActorCounter(r, "cloud dot"));
    } else if (other === undefined || !other(f, wt)) r.skip(wt);
  }
  return { vv, cloud };
}

function buildContext(r: Reader, raw: RawContext): CausalContext {
  internRows(r, raw.vv);
  const vv = new VersionVector(raw.vv.map((x) => x.actor), raw.vv.map((x) => x.counter));
  const ctx = new CausalContext(vv, []);
  for (const d of raw.cloud) ctx.cloud.push({ actor: intern(r, d.name), counter: d.counter });
  ctx.compact(); // normalises a non-compact (but meaningful) context
  return ctx;
}

export function readContext(r: Reader): CausalContext {
  return buildContext(r, readRawContext(r));
}

// ---- MV-Register ----

export function writeMv(w: Writer, s: MvRegister): void {
  for (const e of s.entries) {
    const at = w.begin(1);
    writeActorCounter(w, 1, e.dot.actor, e.dot.counter);
    if (e.value.length > 0) { w.tag(2, WireType.Bytes); w.bytes(e.value); }
    w.end(at);
  }
  const at = w.begin(2);
  writeContext(w, s.ctx);
  w.end(at);
}

export function readMv(r: Reader): MvRegister {
  const raw: { dot: RawDot; value: Uint8Array }[] = [];
  let rawCtx: RawContext = { vv: [], cloud: [] };
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 1) {
      r.expect(wt, WireType.Bytes, f);
      if (raw.length >= mvSiblingsMax) r.fail(`more than ${mvSiblingsMax} MV siblings`);
      const e: Reader = r.sub(registerValueBytesMax + rowBytesMax + 16, "MV entry");
      let dot: RawDot | null = null;
      let value: Uint8Array = new Uint8Array(0);
      while (!e.done) {
        const [g, gt] = e.tag();
        if (g === 1) { e.expect(gt, WireType.Bytes, g); dot = readActorCounter(e, "dot"); }
        else if (g === 2) { e.expect(gt, WireType.Bytes, g); value = e.bytesView(registerValueBytesMax, "MV value"); }
        else e.skip(gt);
      }
      if (dot === null) e.fail("MV entry without dot");
      raw.push({ dot, value });
    } else if (f === 2) {
      r.expect(wt, WireType.Bytes, f);
      rawCtx = readRawContext(r.sub(stateBytesMax, "causal context"));
    } else r.skip(wt);
  }
  const ctx = buildContext(r, rawCtx);
  const entries: MvEntry[] = raw.map((x) => ({ dot: { actor: intern(r, x.dot.name), counter: x.dot.counter }, value: x.value.slice() }));
  entries.sort((a, b) => dotCompare(a.dot, b.dot));
  for (let i = 1; i < entries.length; i++) {
    if (dotCompare((entries[i] as MvEntry).dot, (entries[i - 1] as MvEntry).dot) === 0) r.fail("duplicate MV dot");
  }
  // Every live entry's dot is part of what the state has seen.
  for (const e of entries) ctx.add(e.dot as Dot);
  return new MvRegister(entries, ctx);
}

// ---- Deadline (src/crdt/deadline.ts) ----

/** Field 1: the register of deadlines (an MvRegister message); field 2: the expired dots (a context). */
export function writeDeadline(w: Writer, s: Deadline): void {
  const form = s.form;
  if (form !== "general") {
    // The compact forms, written from their parts: the same bytes as the general path below.
    if (form === "empty") return;
    const at = w.begin(1);
    if (form === "live") {
      const e = w.begin(1);
      writeActorCounter(w, 1, s.dotActor, s.dotCounter);
      w.tag(2, WireType.Bytes);
      w.bytes(deadlineValue(s.entryAtMs));
      w.end(e);
    }
    const c = w.begin(2);
    writeActorCounter(w, 1, s.dotActor, s.dotCounter);
    w.end(c);
    w.end(at);
    if (form === "executed") {
      const x = w.begin(2);
      writeActorCounter(w, 1, s.dotActor, s.dotCounter);
      w.end(x);
    }
    return;
  }
  if (s.reg.entries.length > 0 || s.reg.ctx.vv.size > 0 || s.reg.ctx.cloud.length > 0) {
    const at = w.begin(1);
    writeMv(w, s.reg);
    w.end(at);
  }
  if (s.expired.vv.size > 0 || s.expired.cloud.length > 0) {
    const at = w.begin(2);
    writeContext(w, s.expired);
    w.end(at);
  }
}

export function readDeadline(r: Reader): Deadline {
  let reg = new MvRegister();
  let expired = new CausalContext();
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 1) {
      r.expect(wt, WireType.Bytes, f);
      reg = readMv(r.sub(stateBytesMax, "deadline register"));
    } else if (f === 2) {
      r.expect(wt, WireType.Bytes, f);
      expired = readContext(r.sub(stateBytesMax, "expired deadlines"));
    } else r.skip(wt);
  }
  for (const e of reg.entries) if (e.value.length !== deadlineValueBytes) r.fail(`a deadline value of ${e.value.length} bytes, not ${deadlineValueBytes}`);
  return new Deadline(reg, expired);
}

// ---- OR-Set ----

export function writeOrSet(w: Writer, s: OrSet): void {
  const n = s.count();
  for (let i = 0; i < n; i++) {
    const at = w.begin(1);
    w.tag(1, WireType.Bytes);
    w.latin1(s.keyAt(i));
    const many = s.manyDotsAt(i);
    if (many === undefined) writeActorCounter(w, 2, s.firstActorAt(i), s.firstCounterAt(i));
    else for (const d of many) writeActorCounter(w, 2, d.actor, d.counter);
    w.end(at);
  }
  const at = w.begin(2);
  writeContext(w, s.ctx);
  w.end(at);
}

/**
 * Decodes an OR-Set: members 1..setMemberBytesMax bytes, at most setMembersMax of them, each
 * once and with 1..contextActorsMax dots; no dot twice, in one member or across two (a dot is
 * one add of one member: no replica makes such a state, and joins never create one); every dot
 * joins the context (it is part of what the state has seen). Entries come out sorted, so any
 * field order decodes to the canonical state.
 */
export function readOrSet(r: Reader): OrSet {
  // Flat arrays, not an object per entry and per dot: a snapshot of 1M members decodes through
  // here, and part of what it allocates on the way stays in the process's RSS (measured in
  // process, 200k members: RSS after the load ~110 B per member before, ~95 after; heap 62).
  const keys: string[] = [];
  /** Entry k's dots are dotNames / dotCounters [dotStart[k], dotStart[k + 1]). */
  const dotStart: number[] = [];
  const dotNames: string[] = [];
  const dotCounters: number[] = [];
  const actorCache: ActorNameCache = { bytes: null, name: "" };
  let rawCtx: RawContext = { vv: [], cloud: [] };
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 1) {
      r.expect(wt, WireType.Bytes, f);
      if (keys.length >= setMembersMax) r.fail(`more than ${setMembersMax} OR-Set members`);
      const e: Reader = r.sub(stateBytesMax, "OR-Set entry");
      let member: Uint8Array | null = null;
      const from = dotNames.length;
      while (!e.done) {
        const [g, gt] = e.tag();
        if (g === 1) {
          e.expect(gt, WireType.Bytes, g);
          if (member !== null) e.fail("OR-Set entry with two members");
          member = e.bytesView(setMemberBytesMax, "OR-Set member");
        } else if (g === 2) {
          e.expect(gt, WireType.Bytes, g);
          if (dotNames.length - from >= contextActorsMax) e.fail(`OR-Set member with more than ${contextActorsMax} dots`);
          readDotInto(e, actorCache, dotNames, dotCounters);
        } else e.skip(gt);
      }
      if (member === null || member.length === 0) e.fail("OR-Set entry without a member (members are 1 or more bytes)");
      if (dotNames.length === from) e.fail("OR-Set member without dots");
      keys.push(memberKey(member));
      dotStart.push(from);
    } else if (f === 2) {
      r.expect(wt, WireType.Bytes, f);
      rawCtx = readRawContext(r.sub(stateBytesMax, "causal context"));
    } else r.skip(wt);
  }
  dotStart.push(dotNames.length);
  const ctx = buildContext(r, rawCtx);
  // Canonical states arrive sorted: sort only when they are not.
  let order: number[] | null = null;
  for (let i = 1; i < keys.length && order === null; i++) {
    if ((keys[i] as string) <= (keys[i - 1] as string)) order = keys.map((_, k) => k).sort((x, y) => ((keys[x] as string) < (keys[y] as string) ? -1 : (keys[x] as string) > (keys[y] as string) ? 1 : 0));
  }
  /** Each actor's counters, to find a dot held twice without a string per dot. */
  const countersOf = new Map<ActorId, number[]>();
  const n = keys.length;
  const sortedKeys = new Array<string>(n);
  const actors = new Array<ActorId>(n);
  const counters = new Array<number>(n);
  let multi: Map<string, readonly Dot[]> | null = null;
  let lastName = "";
  let lastActor = 0 as ActorId;
  for (let k = 0; k < n; k++) {
    const at = order === null ? k : (order[k] as number);
    const key = keys[at] as string;
    if (k > 0 && key === sortedKeys[k - 1]) r.fail("duplicate OR-Set member");
    sortedKeys[k] = key;
    const lo = dotStart[at] as number;
    const hi = dotStart[at + 1] as number;
    const dots: Dot[] | null = hi - lo > 1 ? [] : null;
    for (let d = lo; d < hi; d++) {
      const name = dotNames[d] as string;
      if (name !== lastName) {
        lastActor = intern(r, name);
        lastName = name;
      }
      const counter = dotCounters[d] as number;
      if (dots === null) {
        actors[k] = lastActor;
        counters[k] = counter;
      } else dots.push({ actor: lastActor, counter });
      let cs = countersOf.get(lastActor);
      if (cs === undefined) countersOf.set(lastActor, (cs = []));
      cs.push(counter);
      // Every dot is in the context; one the vector covers needs no cloud entry (compact drops it).
      if (counter > ctx.vv.get(lastActor)) ctx.cloud.push({ actor: lastActor, counter });
    }
    if (dots !== null) {
      dots.sort(dotCompare);
      const first = dots[0] as Dot;
      actors[k] = first.actor;
      counters[k] = first.counter;
      (multi ??= new Map()).set(key, dots);
    }
  }
  for (const [actor, cs] of countersOf) {
    cs.sort((x, y) => x - y);
    for (let i = 1; i < cs.length; i++) if (cs[i] === cs[i - 1]) r.fail(`OR-Set dot ${cs[i] as number} of ${actorName(actor)} on two members, or twice on one`);
  }
  ctx.compact();
  return OrSet.fromColumns(sortedKeys, actors, counters, multi, ctx);
}

/** The last actor id a decoder read, bytes and name, so a run of dots of one actor decodes its name once. */
interface ActorNameCache {
  bytes: Uint8Array | null;
  name: string;
}

/** Reads one Dot message (as readActorCounter does, with its checks) onto the two arrays. */
function readDotInto(r: Reader, cache: ActorNameCache, names: string[], counters: number[]): void {
  const e: Reader = r.sub(rowBytesMax, "dot");
  let name: string | null = null;
  let counter = 0;
  while (!e.done) {
    const [g, gt] = e.tag();
    if (g === 1) {
      e.expect(gt, WireType.Bytes, g);
      const bytes = e.bytesView(actorIdBytesMax, "actor id");
      if (bytes.length === 0) e.fail("actor id is empty");
      const last = cache.bytes;
      if (last === null || !sameBytes(last, bytes)) {
        cache.name = decodeUtf8(e, bytes, "actor id");
        cache.bytes = bytes;
      }
      name = cache.name;
    } else if (g === 2) {
      e.expect(gt, WireType.Varint, g);
      counter = e.uint();
    } else e.skip(gt);
  }
  if (name === null) e.fail("dot without actor");
  if (counter < 1 || counter > dotCounterMax) e.fail(`dot: counter ${counter} out of range`);
  names.push(name);
  counters.push(counter);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- OR-Map (hash) ----

export function writeOrMap(w: Writer, s: OrMap): void {
  const n = s.fieldCount;
  for (let i = 0; i < n; i++) {
    const at = w.begin(1);
    w.tag(1, WireType.Bytes);
    w.latin1(s.nameKeyAt(i));
    const f = s.complexAt(i);
    if (f === undefined) {
      // One entry and nothing else, from the columns (the bytes a HashField of it writes).
      const ea = w.begin(2);
      writeActorCounter(w, 1, s.actorAt(i), s.counterAt(i));
      writeHlc(w, 2, s.msAt(i), s.logicalAt(i));
      const value = s.valueKeyAt(i);
      if (value.length > 0) { w.tag(3, WireType.Bytes); w.latin1(value); }
      w.end(ea);
      w.end(at);
      continue;
    }
    for (const e of f.entries) {
      const ea = w.begin(2);
      writeActorCounter(w, 1, e.dot.actor, e.dot.counter);
      writeHlc(w, 2, e.ms, e.logical);
      if (e.value.length > 0) { w.tag(3, WireType.Bytes); w.bytes(e.value); }
      w.end(ea);
    }
    for (const d of f.dots) writeActorCounter(w, 3, d.actor, d.counter);
    for (const r of f.rows) {
      const ra = w.begin(4);
      writeActor(w, 1, r.actor);
      if (r.p !== 0n) { w.tag(2, WireType.Varint); w.uint64(r.p); }
      if (r.n !== 0n) { w.tag(3, WireType.Varint); w.uint64(r.n); }
      if (r.rp !== 0n) { w.tag(4, WireType.Varint); w.uint64(r.rp); }
      if (r.rn !== 0n) { w.tag(5, WireType.Varint); w.uint64(r.rn); }
      w.end(ra);
    }
    w.end(at);
  }
  const at = w.begin(2);
  writeContext(w, s.ctx);
  w.end(at);
}

interface RawHashEntry { dot: RawDot; ms: number; logical: number; value: Uint8Array }
interface RawHashRow { name: string; actor: ActorId; p: bigint; n: bigint; rp: bigint; rn: bigint }
interface RawHashField { name: Uint8Array; entries: RawHashEntry[]; dots: RawDot[]; rows: RawHashRow[] }

/** Largest encoded hash entry: a maximal value, a dot and a timestamp. */
const hashEntryBytesMax = registerValueBytesMax + rowBytesMax + 32;

function readHashEntry(r: Reader): RawHashEntry {
  const e: Reader = r.sub(hashEntryBytesMax, "hash entry");
  let dot: RawDot | null = null;
  let hi = 0;
  let lo = 0;
  let value: Uint8Array = new Uint8Array(0);
  while (!e.done) {
    const [g, gt] = e.tag();
    if (g === 1) { e.expect(gt, WireType.Bytes, g); dot = readActorCounter(e, "dot"); }
    else if (g === 2) { e.expect(gt, WireType.Fixed64, g); [hi, lo] = e.fixed64(); }
    else if (g === 3) { e.expect(gt, WireType.Bytes, g); value = e.bytesView(registerValueBytesMax, "hash value"); }
    else e.skip(gt);
  }
  if (dot === null) e.fail("hash entry without dot");
  return { dot, ms: hi * 0x10000 + (lo >>> 16), logical: lo & hlcLogicalMax, value };
}

function readHashRow(r: Reader): RawHashRow {
  const e: Reader = r.sub(rowBytesMax, "hash counter row");
  let name: string | null = null;
  const v = [0n, 0n, 0n, 0n];
  while (!e.done) {
    const [g, gt] = e.tag();
    if (g === 1) { e.expect(gt, WireType.Bytes, g); name = readActorName(e); }
    else if (g >= 2 && g <= 5) { e.expect(gt, WireType.Varint, g); v[g - 2] = e.uint64(); }
    else e.skip(gt);
  }
  if (name === null) e.fail("hash counter row without actor");
  const [p, n, rp, rn] = v as [bigint, bigint, bigint, bigint];
  // Every delta that resets a row carries the row it reset, so no state resets more than it counted.
  if (rp > p || rn > n) e.fail("hash counter row resets more than it counts");
  return { name, actor: 0 as ActorId, p, n, rp, rn };
}

/** Reads a whole field message (any shape). */
function readHashField(e: Reader): RawHashField {
  let name: Uint8Array | null = null;
  const entries: RawHashEntry[] = [];
  const dots: RawDot[] = [];
  const rows: RawHashRow[] = [];
  while (!e.done) {
    const [g, gt] = e.tag();
    if (g === 1) {
      e.expect(gt, WireType.Bytes, g);
      name = e.bytesView(hashFieldBytesMax, "hash field name");
    } else if (g === 2) {
      e.expect(gt, WireType.Bytes, g);
      if (entries.length >= hashFieldSiblingsMax) e.fail(`more than ${hashFieldSiblingsMax} values in one hash field`);
      entries.push(readHashEntry(e));
    } else if (g === 3) {
      e.expect(gt, WireType.Bytes, g);
      if (dots.length >= counterActorsMax) e.fail(`more than ${counterActorsMax} counter dots in one hash field`);
      dots.push(readActorCounter(e, "counter dot"));
    } else if (g === 4) {
      e.expect(gt, WireType.Bytes, g);
      if (rows.length >= counterActorsMax) e.fail(`more than ${counterActorsMax} counter rows in one hash field`);
      const row = readHashRow(e);
      if (row.p > 0n || row.n > 0n) rows.push(row);
    } else e.skip(gt);
  }
  if (name === null || name.length === 0) e.fail("hash field without name");
  if (entries.length === 0 && dots.length === 0 && rows.length === 0) e.fail("hash field holding nothing");
  return { name, entries, dots, rows };
}

function internDot(r: Reader, d: RawDot): Dot {
  return { actor: intern(r, d.name), counter: d.counter };
}

/**
 * The decoder's columns: per field its name and, for a field of one entry and nothing else
 * (nearly every field), that entry's actor name, counter, HLC and value; counter 0 for a field
 * read whole (its RawHashField in `whole`, by index).
 */
interface HashColumns {
  keys: string[];
  actorNames: string[];
  counters: number[];
  mss: number[];
  logicals: number[];
  values: string[];
  whole: Map<number, RawHashField>;
}

const emptyBytes = new Uint8Array(0);

/**
 * Reads field message e into the columns when it is a name and one entry, nothing else;
 * returns false, having appended nothing, for any other shape (read it whole then). Checks
 * what readHashField and readHashEntry check, with the same messages.
 */
function readPlainField(e: Reader, cache: ActorNameCache, c: HashColumns): boolean {
  const before = c.actorNames.length;
  const undo = (): false => {
    c.actorNames.length = before;
    c.counters.length = before;
    return false;
  };
  let name: Uint8Array | null = null;
  let entries = 0;
  let ms = 0;
  let logical = 0;
  let value: Uint8Array = emptyBytes;
  while (!e.done) {
    const [g, gt] = e.tag();
    if (g === 1) {
      e.expect(gt, WireType.Bytes, g);
      name = e.bytesView(hashFieldBytesMax, "hash field name");
    } else if (g === 2) {
      e.expect(gt, WireType.Bytes, g);
      if (++entries > 1) return undo();
      const en: Reader = e.sub(hashEntryBytesMax, "hash entry");
      let dot = false;
      let hi = 0;
      let lo = 0;
      while (!en.done) {
        const [h, ht] = en.tag();
        if (h === 1) {
          en.expect(ht, WireType.Bytes, h);
          // A repeated dot field: the last one counts (as readHashEntry).
          if (dot) { c.actorNames.pop(); c.counters.pop(); }
          readDotInto(en, cache, c.actorNames, c.counters);
          dot = true;
        } else if (h === 2) { en.expect(ht, WireType.Fixed64, h); [hi, lo] = en.fixed64(); }
        else if (h === 3) { en.expect(ht, WireType.Bytes, h); value = en.bytesView(registerValueBytesMax, "hash value"); }
        else en.skip(ht);
      }
      if (!dot) en.fail("hash entry without dot");
      ms = hi * 0x10000 + (lo >>> 16);
      logical = lo & hlcLogicalMax;
    } else if (g === 3 || g === 4) return undo();
    else e.skip(gt);
  }
  if (entries === 0) return undo();
  if (name === null || name.length === 0) e.fail("hash field without name");
  c.keys.push(memberKey(name));
  c.mss.push(ms);
  c.logicals.push(logical);
  c.values.push(memberKey(value));
  return true;
}

/** Decodes an OR-Map; refuses duplicate fields, dots and rows, empty fields and anything past the stored bounds. */
export function readOrMap(r: Reader): OrMap {
  // Flat columns, not objects per field, entry and dot (as readOrSet): a snapshot of 1M fields
  // decodes through here, and part of what it allocates on the way stays in the RSS.
  const c: HashColumns = { keys: [], actorNames: [], counters: [], mss: [], logicals: [], values: [], whole: new Map() };
  const cache: ActorNameCache = { bytes: null, name: "" };
  let rawCtx: RawContext = { vv: [], cloud: [] };
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 1) {
      r.expect(wt, WireType.Bytes, f);
      if (c.keys.length >= hashFieldsMax) r.fail(`more than ${hashFieldsMax} hash fields`);
      const e: Reader = r.sub(stateBytesMax, "hash field");
      const start = e.pos;
      if (readPlainField(e, cache, c)) continue;
      const raw = readHashField(new Reader(e.buf, start, e.end));
      c.whole.set(c.keys.length, raw);
      c.keys.push(memberKey(raw.name));
      c.actorNames.push("");
      c.counters.push(0);
      c.mss.push(0);
      c.logicals.push(0);
      c.values.push("");
    } else if (f === 2) {
      r.expect(wt, WireType.Bytes, f);
      rawCtx = readRawContext(r.sub(stateBytesMax, "causal context"));
    } else r.skip(wt);
  }
  const ctx = buildContext(r, rawCtx);
  const keys = c.keys;
  const n = keys.length;
  // Canonical states arrive sorted: sort only when they are not.
  let order: number[] | null = null;
  for (let i = 1; i < n && order === null; i++) {
    if ((keys[i] as string) <= (keys[i - 1] as string)) order = keys.map((_, k) => k).sort((x, y) => ((keys[x] as string) < (keys[y] as string) ? -1 : (keys[x] as string) > (keys[y] as string) ? 1 : 0));
  }
  const names = new Array<string>(n);
  const nums = new Float64Array(n * 3);
  const values = new Array<string>(n);
  let others: Map<string, HashField> | null = null;
  /** Each actor's live counters, to find a dot held twice without an object per dot. */
  const countersOf = new Map<ActorId, number[]>();
  const live = (actor: ActorId, counter: number): void => {
    let cs = countersOf.get(actor);
    if (cs === undefined) countersOf.set(actor, (cs = []));
    cs.push(counter);
    // Every live dot is part of what the state has seen; one the vector covers needs no cloud entry.
    if (counter > ctx.vv.get(actor)) ctx.cloud.push({ actor, counter });
  };
  let lastName = "";
  let lastActor = 0 as ActorId;
  for (let k = 0; k < n; k++) {
    const at = order === null ? k : (order[k] as number);
    const key = keys[at] as string;
    if (k > 0 && key === names[k - 1]) r.fail("duplicate hash field");
    names[k] = key;
    const x = c.whole.get(at);
    if (x === undefined) {
      const name = c.actorNames[at] as string;
      if (name !== lastName) {
        lastActor = intern(r, name);
        lastName = name;
      }
      const counter = c.counters[at] as number;
      OrMap.packInto(nums, k, lastActor, counter, c.mss[at] as number, c.logicals[at] as number);
      values[k] = c.values[at] as string;
      live(lastActor, counter);
      continue;
    }
    const entries: HashEntry[] = x.entries.map((e) => ({ dot: internDot(r, e.dot), ms: e.ms, logical: e.logical, value: e.value.slice() }));
    entries.sort((a, b) => dotCompare(a.dot, b.dot));
    const dots = x.dots.map((d) => internDot(r, d)).sort(dotCompare);
    const rows: HashRow[] = internRows(r, x.rows).map((w) => ({ actor: w.actor, p: w.p, n: w.n, rp: w.rp, rn: w.rn }));
    for (const e of entries) live(e.dot.actor, e.dot.counter);
    for (const d of dots) live(d.actor, d.counter);
    const field: HashField = { name: x.name.slice(), entries, dots, rows };
    if (entries.length === 1 && dots.length === 0 && rows.length === 0) {
      // A plain field written in an unusual way (a zero row, say): kept in the columns.
      const e = entries[0] as HashEntry;
      OrMap.packInto(nums, k, e.dot.actor, e.dot.counter, e.ms, e.logical);
      values[k] = memberKey(e.value);
    } else {
      // nums stays 0: counter 0 marks a field kept whole.
      values[k] = "";
      (others ??= new Map()).set(key, field);
    }
  }
  for (const cs of countersOf.values()) {
    cs.sort((p, q) => p - q);
    for (let i = 1; i < cs.length; i++) if (cs[i] === cs[i - 1]) r.fail("duplicate dot in hash");
  }
  ctx.compact();
  return OrMap.fromColumns(names, nums, values, others, ctx);
}
