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
  bytesUpperBound: (s) => s.actors.length * rowBytesMax,
  countsOutside: (s, b) => (s.actors.length > b.counterRows ? `${s.actors.length} counter rows, more than ${b.counterRows}` : null),
  countsNear: (a, b, bounds) => a.actors.length + b.actors.length > bounds.counterRows,
  present: (s) => s.actors.length > 0,
  // Placeholder until counters and the LWW register carry what a delete observed (issue 13, in progress).
  removeObserved: () => {
    throw new Error("assertion failed: delete of this kind is not implemented yet");
  },
};
