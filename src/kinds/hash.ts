// Hash: an OR-Map of byte-string fields holding a register or a counter (crdt/ormap.ts).

import { OrMap } from "../crdt/index.ts";
import { readOrMap, writeOrMap } from "../codec/states.ts";
import type { CrdtKind } from "./kind.ts";
import { contextBytesUpperBound } from "./mv.ts";
import { CrdtType } from "./types.ts";

export const hashKind: CrdtKind<OrMap> = {
  name: "hash",
  type: CrdtType.OrMap,
  label: "hash",
  empty: () => new OrMap(),
  join: (into, other) => into.merge(other),
  equals: (a, b) => a.equals(b),
  clone: (s) => s.clone(),
  write: writeOrMap,
  read: readOrMap,
  value: (s) => ({ type: "hash", fields: s.getAll() }),
  // Kept up to date by merge (O(1) per write): per field its name, values, dots, rows and framing.
  bytesUpperBound: (s) => contextBytesUpperBound(s.ctx) + 8 + s.fieldsBytesUpperBound(),
  countsOutside: (s, b) => {
    if (s.fieldCount > b.hashFields) return `${s.fieldCount} hash fields, more than ${b.hashFields}`;
    const w = s.width();
    if (w.siblings > b.fieldSiblings) return `a hash field of ${w.siblings} concurrent values, more than ${b.fieldSiblings}`;
    if (w.rows > b.counterRows) return `a hash field of ${w.rows} counter rows, more than ${b.counterRows}`;
    if (s.ctx.vv.actors.length > b.ctxActors) return `a context of ${s.ctx.vv.actors.length} actors, more than ${b.ctxActors}`;
    if (s.ctx.cloud.length > b.cloudDots) return `a context of ${s.ctx.cloud.length} loose dots, more than ${b.cloudDots}`;
    return null;
  },
  countsNear: (a, b, bounds) => {
    // Upper bounds suffice here: a false "near" only costs the exact check.
    const x = a.widthUpperBound();
    const y = b.widthUpperBound();
    return a.fieldCount + b.fieldCount > bounds.hashFields
      || x.siblings + y.siblings > bounds.fieldSiblings
      || x.rows + y.rows > bounds.counterRows
      || a.ctx.vv.actors.length + b.ctx.vv.actors.length > bounds.ctxActors
      || a.ctx.cloud.length + b.ctx.cloud.length > bounds.cloudDots;
  },
  present: (s) => s.present(),
  removeObserved: (s) => s.removeObserved(),
};
