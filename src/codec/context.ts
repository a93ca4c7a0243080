// The causal contexts handed to clients (an MV Get's or Set's `context`) and taken back from
// them: bound to their key, and decoded without trusting or interning anything they name.
//
// A client context is a CausalContext message plus a key tag (field 3, fixed64): two 32-bit
// hashes of the key's UTF-8, fixed (unseeded) so a context read on one node is accepted by
// every other. The tag is a guard against mistakes (a context passed for the wrong key), not
// against forgery: what a forged context can do is bounded by the clamp in MvRegister.write,
// which keeps only dots the replica has seen for that key.

import { CausalContext, knownActor } from "../crdt/index.ts";
import { DecodeError } from "./errors.ts";
import { readRawContext, stateBytesMax, writeContext } from "./states.ts";
import { Reader, WireType, Writer } from "./wire.ts";

/** Field number of the key tag in a client's CausalContext. */
const keyTagField = 3;

/** Largest client context accepted, in bytes. */
export const contextBytesMax = stateBytesMax;

/** The key tag of keyBytes: FNV-1a 32 and a multiply-xorshift 32, as [hi, lo]. */
export function contextKeyTag(keyBytes: Uint8Array): [number, number] {
  let h1 = 0x811c9dc5;
  let h2 = 0x9747b28c ^ keyBytes.length;
  for (let i = 0; i < keyBytes.length; i++) {
    const b = keyBytes[i] as number;
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ b, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  h2 = Math.imul(h2 ^ (h2 >>> 13), 0xc2b2ae35);
  return [h1 >>> 0, (h2 ^ (h2 >>> 16)) >>> 0];
}

const scratch = new Writer(4096);

/** The bytes a client gets for context c of the key whose UTF-8 is keyBytes. */
export function encodeContext(c: CausalContext, keyBytes: Uint8Array): Uint8Array {
  scratch.reset();
  writeContext(scratch, c);
  const [hi, lo] = contextKeyTag(keyBytes);
  scratch.tag(keyTagField, WireType.Fixed64);
  scratch.fixed64(hi, lo);
  return scratch.finish();
}

/**
 * A client's context for the key whose UTF-8 is keyBytes, normalised: repeated, unsorted or
 * covered dots give the same context as their canonical form. Dots of actors this process has
 * never interned are dropped (no state here can hold them) and nothing is interned. Empty
 * bytes are the empty context ("read nothing"). Throws DecodeError for malformed bytes, a
 * context of another key, or a non-empty context without a key tag.
 */
export function decodeContext(bytes: Uint8Array, keyBytes: Uint8Array): CausalContext {
  if (bytes.length > contextBytesMax) throw new DecodeError(`context of ${bytes.length} bytes exceeds ${contextBytesMax}`, 0);
  const r = new Reader(bytes);
  let tag: [number, number] | null = null;
  const { vv, cloud } = readRawContext(r, (f, wt) => {
    if (f !== keyTagField) return false;
    r.expect(wt, WireType.Fixed64, f);
    tag = r.fixed64();
    return true;
  });
  if (tag === null) {
    if (vv.length + cloud.length > 0) throw new DecodeError("context is not bound to a key (pass the context a Get or Set of this key returned)", 0);
  } else {
    const [hi, lo] = contextKeyTag(keyBytes);
    if (tag[0] !== hi || tag[1] !== lo) throw new DecodeError("context was read from another key", 0);
  }
  const ctx = new CausalContext();
  // raise() keeps the highest of repeated vector entries: the union of their dots.
  for (const d of vv) {
    const a = knownActor(d.name);
    if (a !== undefined) ctx.vv.raise(a, d.counter);
  }
  for (const d of cloud) {
    const a = knownActor(d.name);
    if (a !== undefined) ctx.cloud.push({ actor: a, counter: d.counter });
  }
  ctx.compact();
  return ctx;
}
