// Canonical protobuf encodings of each CRDT state (messages in proto/crdt.proto) and their
// decoders. Decoding any bytes either returns a valid state or throws DecodeError.

import {
  actorIdBytesMax, actorName, actorUtf8, CausalContext, dotCounterMax, GCounter, hlcLogicalMax, internActor, LwwRegister,
  MvRegister, OrSet, PNCounter, registerValueBytesMax, VersionVector, compareBytes, dotCompare, actorRank,
  type ActorId, type Dot, type MvEntry, type OrSetEntry,
} from "../crdt/index.ts";
import { DecodeError } from "./errors.ts";
import { Reader, WireType, Writer } from "./wire.ts";

import {
  contextActorsMax, contextCloudDotsMax, counterActorsMax, keyStateBytesMax, mvSiblingsMax, rowBytesMax, setMemberBytesMax, setMembersMax,
} from "../limits.ts";

// The decoders accept every state a replica may store (src/limits.ts: the stored bounds).
/** Most per-actor rows of a counter; most MV siblings; most version-vector entries and cloud dots of a context; most OR-Set members and longest member. */
export { contextActorsMax, contextCloudDotsMax, counterActorsMax, mvSiblingsMax, setMemberBytesMax, setMembersMax };
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

// ---- G-Counter ----

export function writeGCounter(w: Writer, s: GCounter): void {
  for (let i = 0; i < s.actors.length; i++) {
    const at = w.begin(1);
    writeActor(w, 1, s.actors[i] as ActorId);
    w.tag(2, WireType.Varint);
    w.uint64(s.counts[i] as bigint);
    w.end(at);
  }
}

export function readGCounter(r: Reader): GCounter {
  const rows: { name: string; actor: ActorId; count: bigint }[] = [];
  while (!r.done) {
    const [f, wt] = r.tag();
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
  return new GCounter(rows.map((x) => x.actor), rows.map((x) => x.count));
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
}

export function readPNCounter(r: Reader): PNCounter {
  const rows: { name: string; actor: ActorId; p: bigint; n: bigint }[] = [];
  while (!r.done) {
    const [f, wt] = r.tag();
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
  return new PNCounter(rows.map((x) => x.actor), rows.map((x) => x.p), rows.map((x) => x.n));
}

// ---- LWW-Register ----

export function writeLww(w: Writer, s: LwwRegister): void {
  if (s.actor === null) return;
  if (s.ms !== 0 || s.logical !== 0) {
    // ms << 16 | logical as two u32 halves.
    const hi = Math.floor(s.ms / 0x10000);
    const lo = ((s.ms % 0x10000) * 0x10000 + s.logical) >>> 0;
    w.tag(1, WireType.Fixed64);
    w.fixed64(hi, lo);
  }
  writeActor(w, 2, s.actor);
  if (s.value.length > 0) { w.tag(3, WireType.Bytes); w.bytes(s.value); }
}

export function readLww(r: Reader): LwwRegister {
  let hi = 0;
  let lo = 0;
  let name: string | null = null;
  let value: Uint8Array = new Uint8Array(0);
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 1) { r.expect(wt, WireType.Fixed64, f); [hi, lo] = r.fixed64(); }
    else if (f === 2) { r.expect(wt, WireType.Bytes, f); name = readActorName(r); }
    else if (f === 3) { r.expect(wt, WireType.Bytes, f); value = r.bytesView(registerValueBytesMax, "register value"); }
    else r.skip(wt);
  }
  if (name === null) {
    if (hi !== 0 || lo !== 0 || value.length > 0) r.fail("LWW-Register with timestamp or value but no actor");
    return new LwwRegister();
  }
  const ms = hi * 0x10000 + (lo >>> 16);
  const logical = lo & hlcLogicalMax;
  return new LwwRegister(ms, logical, intern(r, name), value.slice());
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

// ---- OR-Set ----

export function writeOrSet(w: Writer, s: OrSet): void {
  for (const e of s.entries) {
    const at = w.begin(1);
    w.tag(1, WireType.Bytes);
    w.bytes(e.member);
    for (const d of e.dots) writeActorCounter(w, 2, d.actor, d.counter);
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
  const raw: { member: Uint8Array; dots: RawDot[] }[] = [];
  let rawCtx: RawContext = { vv: [], cloud: [] };
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 1) {
      r.expect(wt, WireType.Bytes, f);
      if (raw.length >= setMembersMax) r.fail(`more than ${setMembersMax} OR-Set members`);
      const e: Reader = r.sub(stateBytesMax, "OR-Set entry");
      let member: Uint8Array | null = null;
      const dots: RawDot[] = [];
      while (!e.done) {
        const [g, gt] = e.tag();
        if (g === 1) {
          e.expect(gt, WireType.Bytes, g);
          if (member !== null) e.fail("OR-Set entry with two members");
          member = e.bytesView(setMemberBytesMax, "OR-Set member");
        } else if (g === 2) {
          e.expect(gt, WireType.Bytes, g);
          if (dots.length >= contextActorsMax) e.fail(`OR-Set member with more than ${contextActorsMax} dots`);
          dots.push(readActorCounter(e, "dot"));
        } else e.skip(gt);
      }
      if (member === null || member.length === 0) e.fail("OR-Set entry without a member (members are 1 or more bytes)");
      if (dots.length === 0) e.fail("OR-Set member without dots");
      raw.push({ member, dots });
    } else if (f === 2) {
      r.expect(wt, WireType.Bytes, f);
      rawCtx = readRawContext(r.sub(stateBytesMax, "causal context"));
    } else r.skip(wt);
  }
  const ctx = buildContext(r, rawCtx);
  raw.sort((a, b) => compareBytes(a.member, b.member));
  const entries: OrSetEntry[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < raw.length; i++) {
    const x = raw[i] as { member: Uint8Array; dots: RawDot[] };
    if (i > 0 && compareBytes(x.member, (raw[i - 1] as { member: Uint8Array }).member) === 0) r.fail("duplicate OR-Set member");
    const dots: Dot[] = x.dots.map((d) => ({ actor: intern(r, d.name), counter: d.counter }));
    dots.sort(dotCompare);
    for (const d of dots) {
      const key = `${d.actor as number}:${d.counter}`;
      if (seen.has(key)) r.fail(`OR-Set dot ${d.counter} of ${actorName(d.actor)} on two members, or twice on one`);
      seen.add(key);
      ctx.cloud.push(d);
    }
    entries.push({ member: x.member.slice(), dots });
  }
  ctx.compact();
  return new OrSet(entries, ctx);
}
