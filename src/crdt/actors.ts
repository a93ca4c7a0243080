// Interns actor ids (node ids, strings on the wire) to small integers for the packed in-memory
// representation, and gives them u32 ranks that follow the ids' canonical (string) order.
//
// Why ranks: every CRDT keeps its per-actor entries sorted by rank, so merges are linear
// merge-joins over integers, canonical encodings come out sorted without a sort, and the
// rank arrays are already in the ascending-actor form src/accel's packed clocks require.
// A rank never changes the relative order of two actors, so stored sorted arrays stay sorted
// when a new actor is interned between two others (ranks are spread out and renumbered, in
// order, only when a gap runs out).
//
// The table is process-wide (one per process, like a string intern pool); it holds only ids,
// never reads the clock, and is bounded by `actorsMax`.

import { CrdtError, CrdtErrorCode } from "./errors.ts";

import { actorIdBytesMax, actorsMax } from "../limits.ts";

/** Longest actor id, in UTF-8 bytes; most distinct actor ids one process interns (see src/limits.ts). */
export { actorIdBytesMax, actorsMax };

/** An interned actor: an index into the process-wide table. */
export type ActorId = number & { readonly __brand: "ActorId" };

const rankGap = 1 << 12;
const rankLimit = 0xffff_ffff;

const encoder = new TextEncoder();
const names: string[] = [];
const utf8: Uint8Array[] = [];
/** rank[actor]: canonical-order key. Exposed for hot loops through `actorRank`. */
let ranks = new Float64Array(1024);
const byName = new Map<string, ActorId>();
/** Actors sorted by name, to find neighbours when interning. */
const sorted: ActorId[] = [];

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { n += 4; i++; } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Checks an actor id (1..actorIdBytesMax UTF-8 bytes); returns a message or null. */
export function actorIdProblem(name: string): string | null {
  if (name.length === 0) return "actor id is empty";
  if (name.length > actorIdBytesMax || utf8Length(name) > actorIdBytesMax) return `actor id longer than ${actorIdBytesMax} bytes`;
  return null;
}

function renumber(): void {
  const step = Math.max(1, Math.min(rankGap, Math.floor(rankLimit / (sorted.length + 1))));
  for (let i = 0; i < sorted.length; i++) ranks[sorted[i] as number] = (i + 1) * step;
}

/** Returns the interned id of `name`, interning it if new. Throws CrdtError(INVALID) for a bad id or a full table. */
export function internActor(name: string): ActorId {
  const known = byName.get(name);
  if (known !== undefined) return known;
  const problem = actorIdProblem(name);
  if (problem !== null) throw new CrdtError(CrdtErrorCode.Invalid, problem);
  if (names.length >= actorsMax) throw new CrdtError(CrdtErrorCode.Invalid, `more than ${actorsMax} distinct actor ids`);
  const id = names.length as ActorId;
  names.push(name);
  utf8.push(encoder.encode(name));
  byName.set(name, id);
  if (id >= ranks.length) {
    const bigger = new Float64Array(ranks.length * 2);
    bigger.set(ranks);
    ranks = bigger;
  }
  // Binary search for the insertion point in name order.
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((names[sorted[mid] as number] as string) < name) lo = mid + 1;
    else hi = mid;
  }
  sorted.splice(lo, 0, id);
  const below = lo > 0 ? (ranks[sorted[lo - 1] as number] as number) : 0;
  const above = lo + 1 < sorted.length ? (ranks[sorted[lo + 1] as number] as number) : below + 2 * rankGap;
  if (above - below >= 2 && above <= rankLimit) ranks[id] = Math.floor((below + above) / 2);
  else renumber();
  return id;
}

/**
 * The interned id of `name`, or undefined if it was never interned - without interning it.
 * For input that may name actors nobody wrote as (a client's causal context): such an actor
 * cannot occur in any state here, and interning it would let a client fill the table.
 */
export function knownActor(name: string): ActorId | undefined {
  return byName.get(name);
}

/** The id string of an interned actor. */
export function actorName(a: ActorId): string {
  return names[a] as string;
}

/** The UTF-8 bytes of an interned actor id (shared; do not modify). */
export function actorUtf8(a: ActorId): Uint8Array {
  return utf8[a] as Uint8Array;
}

/** Canonical-order key of an actor; a < b in id string order iff rank(a) < rank(b). */
export function actorRank(a: ActorId): number {
  return ranks[a] as number;
}

/** Number of interned actors. */
export function actorCount(): number {
  return names.length;
}

/**
 * Index of actor in `actors` (sorted by actor rank), or ~(where it would go): the lookup of
 * every per-actor table (version vectors, LWW contexts).
 */
export function actorIndex(actors: readonly ActorId[], actor: ActorId): number {
  const r = actorRank(actor);
  let lo = 0;
  let hi = actors.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const m = actors[mid] as ActorId;
    if (m === actor) return mid;
    if (actorRank(m) < r) lo = mid + 1;
    else hi = mid;
  }
  return ~lo;
}
