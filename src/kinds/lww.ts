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
  bytesUpperBound: (s) => {
    let n = s.ctx.size * (rowBytesMax + 16);
    for (const e of s.entries) n += e.value.length + rowBytesMax + 24;
    return n;
  },
  // Concurrent writes nobody has seen together are kept as entries, one per actor: bounded as
  // MV siblings are; the context has one row per actor that wrote, as an MV context's vector.
  countsOutside: (s, b) => {
    if (s.entries.length > b.siblings) return `${s.entries.length} concurrent values, more than ${b.siblings}`;
    if (s.ctx.size > b.ctxActors) return `a context of ${s.ctx.size} actors, more than ${b.ctxActors}`;
    return null;
  },
  countsNear: (a, b, bounds) => a.entries.length + b.entries.length > bounds.siblings || a.ctx.size + b.ctx.size > bounds.ctxActors,
  present: (s) => s.isSet,
  removeObserved: (s) => s.removeObserved(),
};
