// Checks that a key's state stays within src/limits.ts before the engine changes it: a local
// write within the write bounds, a merge within the stored bounds (what every decoder accepts),
// so that every state the engine holds can be logged, snapshotted, recovered and shipped.
//
// The common case costs a few additions: an upper bound of the encoded size from counts and
// value lengths. Only a state near a bound is copied, changed and encoded to decide exactly.

import { actorUtf8, nextDot, type ActorId, type CausalContext, type MvRegister, type OrMap, type OrSet } from "../crdt/index.ts";
import { encodeState, type TypedState } from "../codec/index.ts";
import { contextBytesUpperBound, dotBytesUpperBound, entryBytesOver, joinStates, kindOf, type Bounds, type CrdtState } from "../kinds/index.ts";
import {
  contextActorsMax, contextActorsWriteMax, contextCloudDotsMax, contextCloudDotsWriteMax, counterActorsMax, hashFieldSiblingsMax,
  hashFieldsMax, hashFieldsWriteMax, keyStateBytesMax, keyStateWriteBytesMax, mvSiblingsMax, mvSiblingsWriteMax, rowBytesMax, setMembersMax,
  setMembersWriteMax,
} from "../limits.ts";

/** A local write may leave at most this (MV siblings are bounded inside MvRegister.write). */
export const writeBounds: Bounds = {
  what: "a local write",
  stateBytes: keyStateWriteBytesMax,
  siblings: mvSiblingsWriteMax,
  ctxActors: contextActorsWriteMax,
  cloudDots: contextCloudDotsWriteMax,
  counterRows: counterActorsMax,
  setMembers: setMembersWriteMax,
  hashFields: hashFieldsWriteMax,
  // A local HSET leaves one value in its field; the stored bound is what a merge may keep.
  fieldSiblings: hashFieldSiblingsMax,
};

/** A merge may leave at most this: exactly what the decoders accept. */
export const storedBounds: Bounds = {
  what: "a merge",
  stateBytes: keyStateBytesMax,
  siblings: mvSiblingsMax,
  ctxActors: contextActorsMax,
  cloudDots: contextCloudDotsMax,
  counterRows: counterActorsMax,
  setMembers: setMembersMax,
  hashFields: hashFieldsMax,
  fieldSiblings: hashFieldSiblingsMax,
};

/** Bytes of a state's canonical encoding at most (without the envelope). */
export function stateBytesUpperBound(s: CrdtState): number {
  return kindOf(s).bytesUpperBound(s);
}

/** Why `s` is outside `b`, exactly (encodes s if its upper bound does not settle it), or null. */
function outside(s: CrdtState, b: Bounds): string | null {
  const counts = kindOf(s).countsOutside(s, b);
  if (counts !== null) return counts;
  if (stateBytesUpperBound(s) <= b.stateBytes) return null;
  const bytes = encodeState(s).length;
  return bytes > b.stateBytes ? `a state of ${bytes} bytes, more than ${b.stateBytes}` : null;
}

/**
 * Null if `actor` writing `value` with `context` into `state` leaves it within the write bounds;
 * else the refusal to return. Decides on a copy: `state` is not changed. Throws what
 * MvRegister.write throws (the sibling bound).
 */
export function mvWriteRefusal(state: MvRegister, actor: ActorId, value: Uint8Array, context: CausalContext | null, base: number): string | null {
  const ctx = context ?? state.ctx;
  const ub = stateBytesUpperBound(state) + value.length + 2 * rowBytesMax + 16 + contextBytesUpperBound(ctx);
  const actors = state.ctx.vv.actors.length + ctx.vv.actors.length + 1;
  const cloud = state.ctx.cloud.length + ctx.cloud.length + 1;
  if (ub <= writeBounds.stateBytes && actors <= writeBounds.ctxActors && cloud <= writeBounds.cloudDots) return null;
  const next = state.clone();
  next.write(actor, value, context, base);
  const why = outside(next, writeBounds);
  return why === null ? null : `the key would hold ${why}; read it and write with the context you read, which replaces the values you saw`;
}

/**
 * Null if `actor` adding `members` to `state` leaves it within the write bounds; else the
 * refusal to return. Decides on a copy: `state` is not changed. Throws what OrSet.add throws
 * (an empty or oversized member).
 */
export function setAddRefusal(state: OrSet, actor: ActorId, members: readonly Uint8Array[], base: number): string | null {
  // Each member adds at most itself, one dot and its framing; the context at most one dot per member.
  const dot = dotBytesUpperBound(actorUtf8(actor).length, nextDot(state.ctx, actor, base).first + members.length);
  let adds = 0;
  for (const m of members) adds += m.length + entryBytesOver + 2 * dot;
  const ub = stateBytesUpperBound(state) + adds;
  const fits = state.count() + members.length <= writeBounds.setMembers
    && state.ctx.vv.actors.length + 1 <= writeBounds.ctxActors
    && state.ctx.cloud.length <= writeBounds.cloudDots;
  if (fits && ub <= writeBounds.stateBytes) return null;
  const next = state.clone();
  next.add(actor, members, base);
  const why = outside(next, writeBounds);
  return why === null ? null : `the set would hold ${why}`;
}

/**
 * Null if applying a hash op (`write`, which may throw CrdtError as the real write would) to
 * `state` leaves it within the write bounds; else the refusal. `addsBytes` bounds what the op
 * adds (its fields and values, a row and a dot each), `addsDots` its new dots. Decides on a
 * copy: `state` is not changed.
 */
export function hashWriteRefusal(state: OrMap, addsBytes: number, addsDots: number, write: (s: OrMap) => void): string | null {
  if (stateBytesUpperBound(state) + addsBytes <= writeBounds.stateBytes && state.ctx.vv.actors.length + 1 <= writeBounds.ctxActors
    && state.ctx.cloud.length + addsDots <= writeBounds.cloudDots) return null;
  const next = state.clone();
  write(next);
  const why = outside(next, writeBounds);
  return why === null ? null : `the key would hold ${why}`;
}

/** Null if merging `incoming` into `state` leaves it within the stored bounds; else the refusal. `state` is not changed. */
export function mergeRefusal(state: CrdtState, incoming: CrdtState): string | null {
  const kind = kindOf(state);
  if (stateBytesUpperBound(state) + stateBytesUpperBound(incoming) <= storedBounds.stateBytes && !kind.countsNear(state, incoming, storedBounds)) return null;
  const next = kind.clone(state);
  joinStates(next, incoming);
  const why = outside(next, storedBounds);
  return why === null ? null : `merged, the key would hold ${why}`;
}

/**
 * A key holding several types (a type conflict) keeps all their states in one envelope, so
 * their sum stays within the stored bound. Null if joining `incoming` sides into `existing`
 * keeps it there; else the refusal. Nothing is changed.
 */
export function sidesMergeRefusal(existing: readonly TypedState[], incoming: readonly TypedState[]): string | null {
  // The common merge (one type on both sides, the same) allocates nothing here.
  const only = existing[0]?.type;
  if (existing.length <= 1 && incoming.every((s) => s.type === only)) return null;
  const types = new Set([...existing.map((s) => s.type), ...incoming.map((s) => s.type)]);
  if (types.size < 2) return null;
  let ub = 0;
  for (const s of existing) ub += stateBytesUpperBound(s.state);
  for (const s of incoming) ub += stateBytesUpperBound(s.state);
  if (ub <= storedBounds.stateBytes) return null;
  let bytes = 0;
  for (const type of types) {
    const have = existing.find((s) => s.type === type);
    const got = incoming.find((s) => s.type === type);
    let joined = have?.state;
    if (joined === undefined) joined = got?.state;
    else if (got !== undefined) {
      joined = kindOf(joined).clone(joined);
      joinStates(joined, got.state);
    }
    if (joined !== undefined) bytes += encodeState(joined).length;
  }
  return bytes > storedBounds.stateBytes ? `merged, the key's ${types.size} typed states would hold ${bytes} bytes, more than ${storedBounds.stateBytes}` : null;
}

/**
 * Null if a local write of `valueBytes` to the visible side of a key holding several types
 * keeps all its states within the stored bound (an upper bound of what the write adds: its
 * value and two rows); else the refusal. Nothing is changed.
 */
export function sidesWriteRefusal(sides: readonly TypedState[], valueBytes: number): string | null {
  if (sides.length < 2) return null;
  const adds = valueBytes + 2 * rowBytesMax + 64;
  let ub = adds;
  for (const s of sides) ub += stateBytesUpperBound(s.state);
  if (ub <= storedBounds.stateBytes) return null;
  let bytes = adds;
  for (const s of sides) bytes += encodeState(s.state).length;
  return bytes > storedBounds.stateBytes
    ? `the key holds ${sides.length} typed states (a type conflict) of ${bytes - adds} bytes together; this write could take them past ${storedBounds.stateBytes}`
    : null;
}
