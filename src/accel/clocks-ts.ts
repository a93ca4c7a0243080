// Pure-TypeScript vector clock comparison over the packed representation: the fallback and
// the reference the native path must match.

import { ClockOrder, type Clocks, type PackedClocks } from "./api.ts";
import { AccelError, AccelErrorCode } from "./errors.ts";

/**
 * Order of clock a[aStart..aEnd) vs b[bStart..bEnd); a missing actor counts as 0.
 * The native compare in native/clocks.cc is a line-for-line copy of this walk.
 */
function compareRange(
  aActors: Uint32Array, aCounters: Float64Array, aStart: number, aEnd: number,
  bActors: Uint32Array, bCounters: Float64Array, bStart: number, bEnd: number,
): ClockOrder {
  let aLess = false; // some entry of a is below b's
  let aMore = false; // some entry of a is above b's
  let i = aStart;
  let j = bStart;
  while (i < aEnd || j < bEnd) {
    let x: number;
    let y: number;
    if (j >= bEnd || (i < aEnd && (aActors[i] as number) < (bActors[j] as number))) {
      x = aCounters[i] as number; y = 0; i++;
    } else if (i >= aEnd || (bActors[j] as number) < (aActors[i] as number)) {
      x = 0; y = bCounters[j] as number; j++;
    } else {
      x = aCounters[i] as number; y = bCounters[j] as number; i++; j++;
    }
    if (x < y) aLess = true;
    else if (x > y) aMore = true;
    if (aLess && aMore) return ClockOrder.Concurrent;
  }
  if (aLess) return ClockOrder.Before;
  if (aMore) return ClockOrder.After;
  return ClockOrder.Equal;
}

function checkClock(actors: Uint32Array, counters: Float64Array, what: string): void {
  if (actors.length !== counters.length) {
    throw new AccelError(AccelErrorCode.BadClock, `${what}: actors (${actors.length}) and counters (${counters.length}) differ in length`);
  }
}

/** Checks a packed clock set structurally (never reads out of bounds); returns the clock count. */
export function checkPacked(p: PackedClocks, what: string): number {
  checkClock(p.actors, p.counters, what);
  const o = p.offsets;
  if (o.length === 0 || o[0] !== 0) throw new AccelError(AccelErrorCode.BadOffsets, `${what}: offsets must start with 0`);
  let prev = 0;
  for (let i = 1; i < o.length; i++) {
    const v = o[i] as number;
    if (v < prev) throw new AccelError(AccelErrorCode.BadOffsets, `${what}: offsets must be non-decreasing (index ${i})`);
    prev = v;
  }
  if (prev > p.actors.length) throw new AccelError(AccelErrorCode.BadOffsets, `${what}: last offset ${prev} is past the end (${p.actors.length})`);
  return o.length - 1;
}

export function compareTs(aActors: Uint32Array, aCounters: Float64Array, bActors: Uint32Array, bCounters: Float64Array): ClockOrder {
  checkClock(aActors, aCounters, "compare a");
  checkClock(bActors, bCounters, "compare b");
  return compareRange(aActors, aCounters, 0, aActors.length, bActors, bCounters, 0, bActors.length);
}

export function compareManyTs(a: PackedClocks, b: PackedClocks): Uint8Array {
  const n = checkPacked(a, "compareMany a");
  const m = checkPacked(b, "compareMany b");
  if (n !== m) throw new AccelError(AccelErrorCode.BadClock, `compareMany: a holds ${n} clocks, b holds ${m}`);
  const out = new Uint8Array(n);
  const ao = a.offsets;
  const bo = b.offsets;
  for (let k = 0; k < n; k++) {
    out[k] = compareRange(
      a.actors, a.counters, ao[k] as number, ao[k + 1] as number,
      b.actors, b.counters, bo[k] as number, bo[k + 1] as number,
    );
  }
  return out;
}

export const tsClocks: Clocks = { compare: compareTs, compareMany: compareManyTs };
