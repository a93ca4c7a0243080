// OR-Set: byte-string members under dots and a causal context, add-wins (crdt/orset.ts).

import { actorUtf8, OrSet } from "../crdt/index.ts";
import { readOrSet, writeOrSet } from "../codec/states.ts";
import type { CrdtKind } from "./kind.ts";
import { contextBytesUpperBound } from "./mv.ts";
import { CrdtType } from "./types.ts";

/** Bytes of one dot's encoding at most: tags and lengths, the actor id, a 64-bit counter. */
const dotBytesOver = 16;

/** An upper bound of writeOrSet's bytes, from lengths alone (one pass over the members). */
function bytesUpperBound(s: OrSet): number {
  let n = contextBytesUpperBound(s.ctx) + 8;
  for (const e of s.entries) {
    n += e.member.length + 12;
    for (const d of e.dots) n += actorUtf8(d.actor).length + dotBytesOver;
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
