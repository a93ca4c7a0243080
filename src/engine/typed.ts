// A key created with more than one type (two replicas that had not seen each other's write):
// it keeps one state per type, so a type conflict never destroys an acknowledged write, and
// every replica shows the same one. The rule, and why, is in docs/architecture.md.
//
// The key's state is a product of per-type CRDTs, each paired with a creation stamp (the HLC
// milliseconds of that type's first write; a join keeps the least). Joining two such products
// joins type by type, so it stays commutative, associative and idempotent. The visible type is
// the one with the least stamp, ties to the lower type number: a function of the joined state,
// hence the same on every replica holding the same sides.

import type { TypedState } from "../codec/index.ts";
import type { Deadline } from "../crdt/index.ts";
import { CrdtType, crdtTypeOf, kindOf, type CrdtState } from "../kinds/index.ts";

function isPresent(s: TypedState): boolean {
  return kindOf(s.state).present(s.state);
}

/** Is side a shown before side b (least stamp, then lower type number)? */
export function visibleBefore(a: TypedState, b: TypedState): boolean {
  return a.createdMs < b.createdMs || (a.createdMs === b.createdMs && a.type < b.type);
}

/** The states of a key holding two or more types; the engine keeps it in the key's object slot. */
export class Conflicted {
  /** Tells a conflicted key's object from a state's (see src/kinds). */
  get kind(): "conflicted" {
    return "conflicted";
  }

  /** Ordered by type number; two to four sides, each type once. */
  readonly sides: TypedState[];

  constructor(sides: TypedState[]) {
    if (sides.length < 2) throw new Error("assertion failed: a conflict needs two sides");
    this.sides = sides.sort((a, b) => a.type - b.type);
  }

  /**
   * The side a read shows: the earliest-created among the sides holding something (a deleted
   * side holds nothing and steps aside, so a deleted key written again with another type shows
   * that type); the earliest-created of all when none does (the key is deleted).
   */
  visible(): TypedState {
    let best: TypedState | undefined;
    for (const s of this.sides) if (isPresent(s) && (best === undefined || visibleBefore(s, best))) best = s;
    if (best !== undefined) return best;
    // A key's deadline (wire 7, sorted last) is never its type: it shows only when nothing else is left.
    for (const s of this.sides) if (s.type !== CrdtType.Deadline && (best === undefined || visibleBefore(s, best))) best = s;
    return best ?? (this.sides[0] as TypedState);
  }

  /** The key's deadline state, if it has one. */
  deadline(): Deadline | undefined {
    const last = this.sides[this.sides.length - 1] as TypedState;
    return last.state.kind === "deadline" ? last.state : undefined;
  }

  /** The sides other than the visible one that hold something, in type order. */
  hidden(): TypedState[] {
    const v = this.visible();
    return this.sides.filter((s) => s !== v && isPresent(s));
  }

  /** Every side but the visible one, in type order, deleted ones included: what an encoding carries. */
  others(): TypedState[] {
    const v = this.visible();
    return this.sides.filter((s) => s !== v);
  }

  /** Does any side hold something a read shows? */
  present(): boolean {
    return this.sides.some(isPresent);
  }

  side(type: CrdtType): TypedState | undefined {
    for (const s of this.sides) if (s.type === type) return s;
    return undefined;
  }

  /** Replaces the side of s's type (which exists) with s, keeping its stamp: a local op on the visible state. */
  put(s: CrdtState): void {
    const side = this.side(crdtTypeOf(s));
    if (side === undefined) throw new Error("assertion failed: storing a type the key does not hold");
    side.state = s;
  }
}
