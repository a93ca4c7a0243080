// One interface every CRDT kind implements (state, join, canonical bytes, value, limits), so
// the engine, codec and bounds dispatch on a state's `kind` instead of testing classes. A new
// kind is one module in this folder plus one line in index.ts; the shared law suite
// (test/crdt/kind-laws.test.ts) then runs over it with no further change.

import type { Reader, Writer } from "../codec/wire.ts";
import type { CrdtType } from "./types.ts";

/** The name of every kind: the `kind` discriminant each state object carries. */
export type KindName = "gcounter" | "pncounter" | "lww" | "mv" | "set" | "hash" | "deadline";
/** The kinds a key can show as its type (a deadline is never one: it rides beside the value). */
export type ValueKindName = Exclude<KindName, "deadline">;

/** The value of one typed state, as clients see it. */
export type TypedValue =
  | { type: "gcounter" | "pncounter"; value: bigint }
  | { type: "lww"; value: Uint8Array; timestampMs: number; logical: number; actor: string }
  | { type: "mv"; values: Uint8Array[]; context: Uint8Array }
  /** members sorted bytewise (shared buffers: do not modify). */
  | { type: "set"; members: Uint8Array[] }
  /** Present fields in bytewise order; a counter field's value is its decimal text (as Redis answers). */
  | { type: "hash"; fields: { field: Uint8Array; value: Uint8Array }[] }
  /** Never a key's visible value: the engine reports a deadline as KeyValue.expiresAtMs. */
  | { type: "deadline"; atMs: number | null };

/** Size bounds a state is checked against (src/engine/bounds.ts: one set for writes, one for merges). */
export interface Bounds {
  what: string;
  stateBytes: number;
  siblings: number;
  ctxActors: number;
  cloudDots: number;
  counterRows: number;
  /** Most OR-Set members. */
  setMembers: number;
  /** Field records of a hash (src/crdt/ormap.ts). */
  hashFields: number;
  /** Concurrent values of one hash field. */
  fieldSiblings: number;
}

export interface CrdtKind<S> {
  readonly name: KindName;
  /** Wire number (proto CrdtType). */
  readonly type: CrdtType;
  /** For messages: "PN-Counter". */
  readonly label: string;
  /** The bottom of the lattice: what a key of this kind holds before its first write. */
  empty(): S;
  /** Joins other into into (commutative, associative, idempotent); true if into changed. */
  join(into: S, other: S): boolean;
  equals(a: S, b: S): boolean;
  clone(s: S): S;
  /** Canonical bytes (equal states, equal bytes): the state message of proto/crdt.proto. */
  write(w: Writer, s: S): void;
  /** Decodes a state message; throws DecodeError for anything outside the stored bounds. */
  read(r: Reader): S;
  /** What a read answers; keyBytes binds contexts to their key (src/codec/context.ts). */
  value(s: S, keyBytes: Uint8Array): TypedValue;
  /** An upper bound of write()'s byte count, from counts and lengths alone (cheap). */
  bytesUpperBound(s: S): number;
  /** Why s's counts (rows, siblings, context) are outside b, or null. Bytes are checked by the caller. */
  countsOutside(s: S, b: Bounds): string | null;
  /** Could joining a and b pass b's counts? (false lets a merge skip the exact check). */
  countsNear(a: S, b: S, bounds: Bounds): boolean;
  /**
   * Does s hold anything a read shows? A deleted key keeps its states (what the delete
   * observed, so nothing it removed can come back) but none of them is present.
   */
  present(s: S): boolean;
  /**
   * Delete (observed-remove): removes from s everything it holds and returns the delta that
   * removes exactly that on any replica, so a concurrent write s has not seen survives
   * (add-wins); null if s holds nothing present. Joining the delta into s again is a no-op.
   */
  removeObserved(s: S): S | null;
}
