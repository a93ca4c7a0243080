// LWW-Register: bytes ordered by (HLC timestamp, actor), writes kept as dotted entries so a delete removes what it saw (crdt/lww.ts).

import { actorName, LwwRegister } from "../crdt/index.ts";
import { readLww, writeLww } from "../codec/states.ts";
import { rowBytesMax } from "../limits.ts";
import type { CrdtKind } from "./kind.ts";
import { CrdtType } from "./types.ts";

export const lwwKind: CrdtKind<LwwRegister> = {
  name: "lww",
  type: CrdtType.LwwRegister,
  label: "LWW-Register",
  empty: () => new LwwRegister(),
  join: (into, other) => into.merge(other),
  equals: (a, b) => a.equals(b),
  clone: (s) => s.clone(),
  write: writeLww,
  read: readLww,
  value: (s) => ({ type: "lww", value: s.value, timestampMs: s.ms, logical: s.logical, actor: s.actor === null ? "" : actorName(s.actor) }),
  bytesUpperBound: (s) => s.valueBytes + s.entryCount * (rowBytesMax + 24) + s.contextSize * (rowBytesMax + 16),
  // Concurrent writes nobody has seen together are kept as entries, one per actor: bounded as
  // MV siblings are; the context has one row per actor that wrote, as an MV context's vector.
  countsOutside: (s, b) => {
    if (s.entryCount > b.siblings) return `${s.entryCount} concurrent values, more than ${b.siblings}`;
    if (s.contextSize > b.ctxActors) return `a context of ${s.contextSize} actors, more than ${b.ctxActors}`;
    return null;
  },
  countsNear: (a, b, bounds) => a.entryCount + b.entryCount > bounds.siblings || a.contextSize + b.contextSize > bounds.ctxActors,
  present: (s) => s.isSet,
  removeObserved: (s) => s.removeObserved(),
};
