// OR-Set: byte-string members under dots and a causal context, add-wins (crdt/orset.ts).

import { memberBytes, OrSet } from "../crdt/index.ts";
import { readOrSet, writeOrSet } from "../codec/states.ts";
import type { CrdtKind, TypedValue } from "./kind.ts";
import { contextBytesUpperBound } from "./mv.ts";
import { CrdtType } from "./types.ts";

/** An upper bound of writeOrSet's bytes, without a pass over the members (OrSet keeps its entries' bound). */
function bytesUpperBound(s: OrSet): number {
  return contextBytesUpperBound(s.ctx) + 8 + s.entriesBytes;
}

/**
 * The set's members as a value. Members are strings in the set (crdt/orset.ts), so their byte
 * arrays cost an allocation each; the engine answers every SAdd/SRem with a value, which the
 * node drops (it answers a count), so they are made when first read. The keys are copied now
 * (one array copy), so the value is the set as it was, whatever later writes do.
 */
function setValue(s: OrSet): TypedValue {
  const keys = s.memberKeys();
  let members: Uint8Array[] | null = null;
  return {
    type: "set",
    get members(): Uint8Array[] {
      return (members ??= keys.map(memberBytes));
    },
  };
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
  value: setValue,
  bytesUpperBound,
  countsOutside: (s, b) => {
    if (s.count() > b.setMembers) return `${s.count()} set members, more than ${b.setMembers}`;
    if (s.ctx.vv.actors.length > b.ctxActors) return `a context of ${s.ctx.vv.actors.length} actors, more than ${b.ctxActors}`;
    if (s.ctx.cloud.length > b.cloudDots) return `a context of ${s.ctx.cloud.length} loose dots, more than ${b.cloudDots}`;
    return null;
  },
  countsNear: (a, b, bounds) =>
    a.count() + b.count() > bounds.setMembers
    || a.ctx.vv.actors.length + b.ctx.vv.actors.length > bounds.ctxActors
    || a.ctx.cloud.length + b.ctx.cloud.length > bounds.cloudDots,
  present: (s) => s.count() > 0,
  removeObserved: (s) => {
    if (s.count() === 0) return null;
    // No members and everything seen: joined anywhere, it drops exactly the adds this replica held.
    const delta = new OrSet([], s.ctx.clone());
    s.merge(delta);
    return delta;
  },
};
