// PN-Counter: a G-Counter of increments and one of decrements per actor (crdt/pncounter.ts).

import { PNCounter } from "../crdt/index.ts";
import { readPNCounter, writePNCounter } from "../codec/states.ts";
import { rowBytesMax } from "../limits.ts";
import type { CrdtKind } from "./kind.ts";
import { CrdtType } from "./types.ts";

export const pncounterKind: CrdtKind<PNCounter> = {
  name: "pncounter",
  type: CrdtType.PNCounter,
  label: "PN-Counter",
  empty: () => new PNCounter(),
  join: (into, other) => into.merge(other),
  equals: (a, b) => a.equals(b),
  clone: (s) => s.clone(),
  write: writePNCounter,
  read: readPNCounter,
  value: (s) => ({ type: "pncounter", value: s.value() }),
  bytesUpperBound: (s) => (s.actors.length + (s.resets?.actors.length ?? 0)) * rowBytesMax,
  // Reset rows count like rows: each set holds at most one row per actor (see limits.ts).
  countsOutside: (s, b) => {
    if (s.actors.length > b.counterRows) return `${s.actors.length} counter rows, more than ${b.counterRows}`;
    const resets = s.resets?.actors.length ?? 0;
    return resets > b.counterRows ? `${resets} counter reset rows, more than ${b.counterRows}` : null;
  },
  countsNear: (a, b, bounds) =>
    a.actors.length + b.actors.length > bounds.counterRows
    || (a.resets?.actors.length ?? 0) + (b.resets?.actors.length ?? 0) > bounds.counterRows,
  // Deleted: every actor's rows at or below what a delete observed (crdt/gcounter.ts).
  present: (s) => s.present(),
  removeObserved: (s) => s.removeObserved(),
};
