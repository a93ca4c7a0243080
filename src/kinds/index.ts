// The registry of CRDT kinds: the one place a kind is added. Everything that handles a state of
// any kind (engine, codec, bounds, transport, CLI) dispatches through kindOf / kindByType or a
// switch on `kind`, so the compiler points at every place a new kind must be handled.

import type { Deadline, GCounter, LwwRegister, MvRegister, OrMap, OrSet, PNCounter } from "../crdt/index.ts";
import { deadlineKind } from "./deadline.ts";
import { gcounterKind } from "./gcounter.ts";
import { hashKind } from "./hash.ts";
import type { CrdtKind, KindName } from "./kind.ts";
import { lwwKind } from "./lww.ts";
import { mvKind } from "./mv.ts";
import { orsetKind } from "./orset.ts";
import { pncounterKind } from "./pncounter.ts";
import { CrdtType } from "./types.ts";

export * from "./kind.ts";
export * from "./types.ts";
export { contextBytesUpperBound, mvValue } from "./mv.ts";
export { dotBytesUpperBound, entryBytesOver } from "../crdt/orset.ts";

/** A state of any kind. */
export type CrdtState = GCounter | PNCounter | LwwRegister | MvRegister | OrSet | OrMap | Deadline;

/** Every kind, by name. */
export const kinds: { readonly [K in KindName]: CrdtKind<Extract<CrdtState, { kind: K }>> } = {
  gcounter: gcounterKind,
  pncounter: pncounterKind,
  lww: lwwKind,
  mv: mvKind,
  set: orsetKind,
  hash: hashKind,
  deadline: deadlineKind,
};

/** Every kind, in wire-number order (for laws and docs). */
export const allKinds: readonly CrdtKind<CrdtState>[] = (Object.values(kinds) as CrdtKind<CrdtState>[]).sort((a, b) => a.type - b.type);

const byType = new Map<number, CrdtKind<CrdtState>>(allKinds.map((k) => [k.type, k]));

/** The kind of a state. */
export function kindOf(s: CrdtState): CrdtKind<CrdtState> {
  return kinds[s.kind] as CrdtKind<CrdtState>;
}

/** The kind with wire number `type` (which isCrdtType accepted). */
export function kindByType(type: CrdtType): CrdtKind<CrdtState> {
  const k = byType.get(type);
  if (k === undefined) throw new Error(`assertion failed: no kind has wire number ${type}`);
  return k;
}

/** The kind with this name. */
export function kindByName(name: KindName): CrdtKind<CrdtState> {
  return kinds[name] as CrdtKind<CrdtState>;
}

export function crdtTypeOf(s: CrdtState): CrdtType {
  return kindOf(s).type;
}

/** Joins b into a (same kind); true if a changed. */
export function joinStates(a: CrdtState, b: CrdtState): boolean {
  if (a.kind !== b.kind) throw new Error(`assertion failed: joining a ${b.kind} into a ${a.kind}`);
  return kindOf(a).join(a, b);
}
