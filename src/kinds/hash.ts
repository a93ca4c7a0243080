// Hash: an OR-Map of byte-string fields holding a register or a counter (crdt/ormap.ts).

import { OrMap } from "../crdt/index.ts";
import { readOrMap, writeOrMap } from "../codec/states.ts";
import { rowBytesMax } from "../limits.ts";
import type { CrdtKind } from "./kind.ts";
import { contextBytesUpperBound } from "./mv.ts";
import { CrdtType } from "./types.ts";

/** Most values one field of s holds, and most counter rows. */
function widest(s: OrMap): { siblings: number; rows: number } {
  let siblings = 0;
  let rows = 0;
  for (const f of s.fields) {
    if (f.entries.length > siblings) siblings = f.entries.length;
    if (f.rows.length > rows) rows = f.rows.length;
  }
  return { siblings, rows };
}

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
  bytesUpperBound: (s) => {
    // Per field: name and framing; per value: a dot, a timestamp and framing; per dot or row: a row.
    let n = contextBytesUpperBound(s.ctx) + 8;
    for (const f of s.fields) {
      n += f.name.length + 16 + (f.dots.length + f.rows.length) * rowBytesMax;
      for (const e of f.entries) n += e.value.length + rowBytesMax + 24;
    }
    return n;
  },
  countsOutside: (s, b) => {
    if (s.fields.length > b.hashFields) return `${s.fields.length} hash fields, more than ${b.hashFields}`;
    const w = widest(s);
    if (w.siblings > b.fieldSiblings) return `a hash field of ${w.siblings} concurrent values, more than ${b.fieldSiblings}`;
    if (w.rows > b.counterRows) return `a hash field of ${w.rows} counter rows, more than ${b.counterRows}`;
    if (s.ctx.vv.actors.length > b.ctxActors) return `a context of ${s.ctx.vv.actors.length} actors, more than ${b.ctxActors}`;
    if (s.ctx.cloud.length > b.cloudDots) return `a context of ${s.ctx.cloud.length} loose dots, more than ${b.cloudDots}`;
    return null;
  },
  countsNear: (a, b, bounds) => {
    const x = widest(a);
    const y = widest(b);
    return a.fields.length + b.fields.length > bounds.hashFields
      || x.siblings + y.siblings > bounds.fieldSiblings
      || x.rows + y.rows > bounds.counterRows
      || a.ctx.vv.actors.length + b.ctx.vv.actors.length > bounds.ctxActors
      || a.ctx.cloud.length + b.ctx.cloud.length > bounds.cloudDots;
  },
  present: (s) => s.present(),
  removeObserved: (s) => s.removeObserved(),
};
