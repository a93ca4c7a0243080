// The versioned per-key envelopes (KeyState, KeyDelta in proto/crdt.proto): format version,
// CRDT type, key and the type's state. What the WAL, snapshots and replication carry.

import { GCounter, LwwRegister, MvRegister, PNCounter } from "../crdt/index.ts";
import { DecodeError } from "./errors.ts";
import {
  decodeUtf8, readContext, readGCounter, readLww, readMv, readPNCounter, stateBytesMax, writeContext, writeGCounter,
  writeLww, writeMv, writePNCounter,
} from "./states.ts";
import { Reader, WireType, Writer } from "./wire.ts";
import { keyBytesMax, keyEnvelopeBytesMax } from "../limits.ts";
import type { CausalContext } from "../crdt/index.ts";

/** The envelope format this code writes and the only one it reads. */
export const formatVersionCurrent = 1;
/** Longest key, in UTF-8 bytes (see src/limits.ts). */
export { keyBytesMax };
/** Largest encoded envelope (a state plus key and header). */
export const envelopeBytesMax = keyEnvelopeBytesMax;

/** Wire values of proto CrdtType. ONLY APPEND TO THIS LIST. */
export const CrdtType = { GCounter: 1, PNCounter: 2, LwwRegister: 3, MvRegister: 4 } as const;
export type CrdtType = (typeof CrdtType)[keyof typeof CrdtType];

export type CrdtState = GCounter | PNCounter | LwwRegister | MvRegister;

export function crdtTypeOf(s: CrdtState): CrdtType {
  if (s instanceof GCounter) return CrdtType.GCounter;
  if (s instanceof PNCounter) return CrdtType.PNCounter;
  if (s instanceof LwwRegister) return CrdtType.LwwRegister;
  return CrdtType.MvRegister;
}

export function isCrdtType(n: number): n is CrdtType {
  return n === 1 || n === 2 || n === 3 || n === 4;
}

/** Writes the state message of s (without envelope). */
export function writeState(w: Writer, s: CrdtState): void {
  if (s instanceof GCounter) writeGCounter(w, s);
  else if (s instanceof PNCounter) writePNCounter(w, s);
  else if (s instanceof LwwRegister) writeLww(w, s);
  else writeMv(w, s);
}

export function readState(type: CrdtType, r: Reader): CrdtState {
  switch (type) {
    case CrdtType.GCounter: return readGCounter(r);
    case CrdtType.PNCounter: return readPNCounter(r);
    case CrdtType.LwwRegister: return readLww(r);
    case CrdtType.MvRegister: return readMv(r);
  }
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
export function beginEnvelope(w: Writer, keyBytes: Uint8Array, type: CrdtType): number {
  w.tag(1, WireType.Varint);
  w.uint(formatVersionCurrent);
  w.tag(2, WireType.Varint);
  w.uint(type);
  w.tag(3, WireType.Bytes);
  w.bytes(keyBytes);
  return w.begin(4);
}

/** Writes a KeyState / KeyDelta envelope (identical layouts) into w. */
export function writeEnvelope(w: Writer, keyBytes: Uint8Array, s: CrdtState): void {
  const at = beginEnvelope(w, keyBytes, crdtTypeOf(s));
  writeState(w, s);
  w.end(at);
}

/** Encodes a KeyState or KeyDelta envelope. keyBytes: the key's UTF-8 (see keyUtf8). */
export function encodeEnvelope(keyBytes: Uint8Array, s: CrdtState): Uint8Array {
  scratch.reset();
  writeEnvelope(scratch, keyBytes, s);
  return scratch.finish();
}

export interface KeyEnvelope {
  type: CrdtType;
  key: string;
  state: CrdtState;
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
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 1) { r.expect(wt, WireType.Varint, f); version = r.uint(); }
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
  if (version !== formatVersionCurrent) throw new DecodeError(`unsupported format version ${version}`, 0);
  if (!isCrdtType(type)) throw new DecodeError(`unknown CRDT type ${type}`, 0);
  if (key === null) throw new DecodeError("envelope without key", 0);
  const state = stateStart < 0 ? readState(type, new Reader(new Uint8Array(0))) : readState(type, new Reader(bytes, stateStart, stateEnd));
  return { type, key, state };
}

/** Canonical bytes of a causal context (what MV reads hand to clients). */
export function encodeContext(c: CausalContext): Uint8Array {
  scratch.reset();
  writeContext(scratch, c);
  return scratch.finish();
}

export function decodeContext(bytes: Uint8Array): CausalContext {
  if (bytes.length > stateBytesMax) throw new DecodeError(`context of ${bytes.length} bytes exceeds ${stateBytesMax}`, 0);
  return readContext(new Reader(bytes));
}
