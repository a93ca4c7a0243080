// The versioned per-key envelopes (KeyState, KeyDelta in proto/crdt.proto): format version,
// CRDT type, key and the type's state, its creation stamp and, after a type conflict, the key's
// states of other types. What the WAL, snapshots and replication carry.

import { hlcMsMax } from "../crdt/index.ts";
import { crdtTypeOf, isCrdtType, kindByType, kindOf, type CrdtState, CrdtType } from "../kinds/index.ts";
import { DecodeError } from "./errors.ts";
import { decodeUtf8, stateBytesMax } from "./states.ts";
import { Reader, WireType, Writer } from "./wire.ts";
import { keyBytesMax, keyEnvelopeBytesMax, keyTypesMax } from "../limits.ts";

/**
 * Envelope versions. 1: one typed state, optionally with its created_ms (a field older readers
 * skip: they lose only the stamp, which then reads as 0 - "created first" - and converges). The
 * previous release wrote version 1 without the stamp. 2: the key holds several types
 * (`conflicts`); a reader older than 2 refuses it instead of silently dropping a side.
 */
export const formatVersionLegacy = 1;
export const formatVersionCurrent = 2;
/** Most states one key can hold: one per CRDT type (see src/limits.ts). */
export { keyTypesMax };
/** Longest key, in UTF-8 bytes (see src/limits.ts). */
export { keyBytesMax };
/** Largest encoded envelope (a state plus key and header). */
export const envelopeBytesMax = keyEnvelopeBytesMax;

export { CrdtType, crdtTypeOf, isCrdtType, type CrdtState };

/** Writes the state message of s (without envelope). */
export function writeState(w: Writer, s: CrdtState): void {
  kindOf(s).write(w, s);
}

export function readState(type: CrdtType, r: Reader): CrdtState {
  return kindByType(type).read(r);
}

const scratch = new Writer(4096);

/** Canonical bytes of a state message (equal states give equal bytes). */
export function encodeState(s: CrdtState): Uint8Array {
  scratch.reset();
  writeState(scratch, s);
  return scratch.finish();
}

/** Decodes a state message of the given type; throws DecodeError. */
export function decodeState(type: CrdtType, bytes: Uint8Array): CrdtState {
  if (bytes.length > stateBytesMax) throw new DecodeError(`state of ${bytes.length} bytes exceeds ${stateBytesMax}`, 0);
  return readState(type, new Reader(bytes));
}

const keyEncoder = new TextEncoder();

/** The key's UTF-8, or null if that is not within 1..keyBytesMax bytes. */
export function keyUtf8(key: string): Uint8Array | null {
  if (key.length === 0 || key.length > keyBytesMax) return null;
  const b = keyEncoder.encode(key);
  return b.length <= keyBytesMax ? b : null;
}

/**
 * Writes an envelope's version, type and key, and opens its state field: write the state
 * message next, then call w.end() with the returned position.
 */
export function beginEnvelope(w: Writer, keyBytes: Uint8Array, type: CrdtType, createdMs = 0, withConflicts = false): number {
  w.tag(1, WireType.Varint);
  w.uint(withConflicts ? formatVersionCurrent : formatVersionLegacy);
  w.tag(2, WireType.Varint);
  w.uint(type);
  w.tag(3, WireType.Bytes);
  w.bytes(keyBytes);
  // created_ms (5) goes before the state (4) so the state can be written last, straight into w.
  if (createdMs !== 0) {
    w.tag(5, WireType.Varint);
    w.uint(createdMs);
  }
  return w.begin(4);
}

/** One of a key's typed states with its creation stamp (HLC ms of its first write; 0 = unknown, before version 2). */
export interface TypedState {
  type: CrdtType;
  createdMs: number;
  state: CrdtState;
}

/** Appends the conflict sides (field 6) of an envelope whose state was just closed. */
export function writeConflicts(w: Writer, sides: readonly TypedState[]): void {
  for (const c of sides) {
    const at = w.begin(6);
    w.tag(1, WireType.Varint);
    w.uint(c.type);
    if (c.createdMs !== 0) {
      w.tag(2, WireType.Varint);
      w.uint(c.createdMs);
    }
    const st = w.begin(3);
    writeState(w, c.state);
    w.end(st);
    w.end(at);
  }
}

/** Writes a KeyState / KeyDelta envelope (identical layouts) into w. */
export function writeEnvelope(w: Writer, keyBytes: Uint8Array, s: CrdtState, createdMs = 0, conflicts: readonly TypedState[] = []): void {
  const at = beginEnvelope(w, keyBytes, crdtTypeOf(s), createdMs, conflicts.length > 0);
  writeState(w, s);
  w.end(at);
  writeConflicts(w, conflicts);
}

/** Encodes a KeyState or KeyDelta envelope. keyBytes: the key's UTF-8 (see keyUtf8). */
export function encodeEnvelope(keyBytes: Uint8Array, s: CrdtState, createdMs = 0, conflicts: readonly TypedState[] = []): Uint8Array {
  scratch.reset();
  writeEnvelope(scratch, keyBytes, s, createdMs, conflicts);
  return scratch.finish();
}

export interface KeyEnvelope {
  type: CrdtType;
  key: string;
  state: CrdtState;
  /** The state's creation stamp; 0 in a version-1 record. */
  createdMs: number;
  /** The key's states of other types (each type at most once, none of `type`); empty in version 1. */
  conflicts: TypedState[];
}

/** A stamp field: a 48-bit HLC millisecond count. */
function readStamp(r: Reader): number {
  const v = r.uint();
  if (v > hlcMsMax) r.fail(`creation stamp ${v} exceeds ${hlcMsMax}`);
  return v;
}

function readConflict(r: Reader): TypedState {
  let type = 0;
  let createdMs = 0;
  let stateStart = -1;
  let stateEnd = -1;
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 1) { r.expect(wt, WireType.Varint, f); type = r.uint(); }
    else if (f === 2) { r.expect(wt, WireType.Varint, f); createdMs = readStamp(r); }
    else if (f === 3) {
      r.expect(wt, WireType.Bytes, f);
      const len = r.length(stateBytesMax, "conflict state");
      stateStart = r.pos;
      stateEnd = r.pos + len;
      r.pos = stateEnd;
    } else r.skip(wt);
  }
  if (!isCrdtType(type)) r.fail(`conflict side of unknown CRDT type ${type}`);
  const state = readState(type, stateStart < 0 ? new Reader(new Uint8Array(0)) : new Reader(r.buf, stateStart, stateEnd));
  return { type, createdMs, state };
}

/** Decodes a KeyState or KeyDelta envelope; throws DecodeError for anything else. */
export function decodeEnvelope(bytes: Uint8Array): KeyEnvelope {
  if (bytes.length > envelopeBytesMax) throw new DecodeError(`envelope of ${bytes.length} bytes exceeds ${envelopeBytesMax}`, 0);
  const r = new Reader(bytes);
  let version = 0;
  let type = 0;
  let key: string | null = null;
  let stateStart = -1;
  let stateEnd = -1;
  let createdMs = 0;
  const conflicts: TypedState[] = [];
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 1) { r.expect(wt, WireType.Varint, f); version = r.uint(); }
    else if (f === 5) { r.expect(wt, WireType.Varint, f); createdMs = readStamp(r); }
    else if (f === 6) {
      r.expect(wt, WireType.Bytes, f);
      if (conflicts.length >= keyTypesMax - 1) r.fail(`more than ${keyTypesMax - 1} conflict sides`);
      conflicts.push(readConflict(r.sub(stateBytesMax + 32, "conflict side")));
    }
    else if (f === 2) { r.expect(wt, WireType.Varint, f); type = r.uint(); }
    else if (f === 3) {
      r.expect(wt, WireType.Bytes, f);
      const kb = r.bytesView(keyBytesMax, "key");
      if (kb.length === 0) r.fail("empty key");
      key = decodeUtf8(r, kb, "key");
    } else if (f === 4) {
      r.expect(wt, WireType.Bytes, f);
      const len = r.length(stateBytesMax, "state");
      stateStart = r.pos;
      stateEnd = r.pos + len;
      r.pos = stateEnd;
    } else r.skip(wt);
  }
  if (version !== formatVersionLegacy && version !== formatVersionCurrent) throw new DecodeError(`unsupported format version ${version}`, 0);
  if (!isCrdtType(type)) throw new DecodeError(`unknown CRDT type ${type}`, 0);
  if (key === null) throw new DecodeError("envelope without key", 0);
  if (version === formatVersionLegacy && conflicts.length > 0) throw new DecodeError("a version-1 envelope with conflict sides", 0);
  const seen = new Set<CrdtType>([type]);
  for (const c of conflicts) {
    if (seen.has(c.type)) throw new DecodeError(`two states of CRDT type ${c.type} for one key`, 0);
    seen.add(c.type);
  }
  const state = stateStart < 0 ? readState(type, new Reader(new Uint8Array(0))) : readState(type, new Reader(bytes, stateStart, stateEnd));
  return { type, key, state, createdMs, conflicts };
}

/** A varint at `at` in `b`: [value, next offset], or null past the end or beyond 2^53. */
function varint(b: Uint8Array, at: number): [number, number] | null {
  let v = 0;
  let mul = 1;
  for (let i = at; i < b.length && i < at + 8; i++) {
    const x = b[i] as number;
    v += (x & 0x7f) * mul;
    if (x < 0x80) return [v, i + 1];
    mul *= 128;
  }
  return null;
}

/**
 * The key's UTF-8 bytes of an encoded KeyState or KeyDelta (a view into `bytes`), read without
 * decoding the state: the cluster places a delta on its key's owners by it. Null when the bytes
 * are not an envelope with a key.
 */
export function envelopeKeyBytes(bytes: Uint8Array): Uint8Array | null {
  let at = 0;
  while (at < bytes.length) {
    const tag = varint(bytes, at);
    if (tag === null) return null;
    at = tag[1];
    const field = Math.floor(tag[0] / 8);
    switch (tag[0] % 8) {
      case 0: {
        const v = varint(bytes, at);
        if (v === null) return null;
        at = v[1];
        break;
      }
      case 2: {
        const len = varint(bytes, at);
        if (len === null || len[1] + len[0] > bytes.length) return null;
        if (field === 3) return len[0] >= 1 && len[0] <= keyBytesMax ? bytes.subarray(len[1], len[1] + len[0]) : null;
        at = len[1] + len[0];
        break;
      }
      case 1:
        at += 8;
        break;
      case 5:
        at += 4;
        break;
      default:
        return null;
    }
  }
  return null;
}
