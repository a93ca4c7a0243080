// OR-Set: byte-string members under dots and a causal context, add-wins (crdt/orset.ts).

import { actorUtf8, OrSet } from "../crdt/index.ts";
import { readOrSet, writeOrSet } from "../codec/states.ts";
import type { CrdtKind } from "./kind.ts";
import { contextBytesUpperBound } from "./mv.ts";
import { CrdtType } from "./types.ts";

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
 * Bytes of one dot's encoding at most: its actor id and counter, plus the dot's tag and length
 * (<= 2 bytes: a dot is under 16 KiB), the actor's tag and length (<= 2) and the counter's tag.
 */
export function dotBytesUpperBound(actorBytes: number, counter: number): number {
  return actorBytes + varintBytes(counter) + 7;
}

/** Bytes an entry adds besides its member and dots: its tag and length (<= 6: an entry with many dots passes 2 MiB), the member's tag and length (<= 4). */
export const entryBytesOver = 10;

/**
 * An upper bound of writeOrSet's bytes (one pass over the members, no encoding). Kept close to
 * the real size, so the engine decides almost every write from it without encoding the set.
 */
function bytesUpperBound(s: OrSet): number {
  let n = contextBytesUpperBound(s.ctx) + 8;
  for (const e of s.entries) {
    n += e.member.length + entryBytesOver;
    for (const d of e.dots) n += dotBytesUpperBound(actorUtf8(d.actor).length, d.counter);
  }
  return n;
}

export const orsetKind: CrdtKind<OrSet> = {
  name: "set",
  type: CrdtType.OrSet,
  label: "OR-Set",
  empty: () => new OrSet(),
  join: (into, other) => into.merge(other),
  equals: (a, b) => a.equals(b),
  clone: (s) => s.clone(),
  write: writeOrSet,
  read: readOrSet,
  value: (s) => ({ type: "set", members: s.members() }),
  bytesUpperBound,
  countsOutside: (s, b) => {
    if (s.entries.length > b.setMembers) return `${s.entries.length} set members, more than ${b.setMembers}`;
    if (s.ctx.vv.actors.length > b.ctxActors) return `a context of ${s.ctx.vv.actors.length} actors, more than ${b.ctxActors}`;
    if (s.ctx.cloud.length > b.cloudDots) return `a context of ${s.ctx.cloud.length} loose dots, more than ${b.cloudDots}`;
    return null;
  },
  countsNear: (a, b, bounds) =>
    a.entries.length + b.entries.length > bounds.setMembers
    || a.ctx.vv.actors.length + b.ctx.vv.actors.length > bounds.ctxActors
    || a.ctx.cloud.length + b.ctx.cloud.length > bounds.cloudDots,
  present: (s) => s.entries.length > 0,
  removeObserved: (s) => {
    if (s.entries.length === 0) return null;
    // No members and everything seen: joined anywhere, it drops exactly the adds this replica held.
    const delta = new OrSet([], s.ctx.clone());
    s.merge(delta);
    return delta;
  },
};
