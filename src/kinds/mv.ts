// MV-Register: concurrent values kept as siblings under dots and a causal context (crdt/mvregister.ts).

import { MvRegister, type CausalContext } from "../crdt/index.ts";
import { encodeContext } from "../codec/context.ts";
import { readMv, writeMv } from "../codec/states.ts";
import { rowBytesMax } from "../limits.ts";
import type { CrdtKind, TypedValue } from "./kind.ts";
import { CrdtType } from "./types.ts";

/** Bytes of a context's encoding at most. */
export function contextBytesUpperBound(c: CausalContext): number {
  return (c.vv.actors.length + c.cloud.length) * rowBytesMax;
}

/** An MV register's values with context ctx (the whole register's for a read, the replaced part plus the new dot for a write), bound to the key. */
export function mvValue(s: MvRegister, ctx: CausalContext, keyBytes: Uint8Array): TypedValue {
  return { type: "mv", values: s.entries.map((e) => e.value), context: encodeContext(ctx, keyBytes) };
}

export const mvKind: CrdtKind<MvRegister> = {
  name: "mv",
  type: CrdtType.MvRegister,
  label: "MV-Register",
  empty: () => new MvRegister(),
  join: (into, other) => into.merge(other),
  equals: (a, b) => a.equals(b),
  clone: (s) => s.clone(),
  write: writeMv,
  read: readMv,
  value: (s, keyBytes) => mvValue(s, s.ctx, keyBytes),
  bytesUpperBound: (s) => {
    let n = contextBytesUpperBound(s.ctx) + 8;
    for (const e of s.entries) n += e.value.length + rowBytesMax + 8;
    return n;
  },
  countsOutside: (s, b) => {
    if (s.entries.length > b.siblings) return `${s.entries.length} values, more than ${b.siblings}`;
    if (s.ctx.vv.actors.length > b.ctxActors) return `a context of ${s.ctx.vv.actors.length} actors, more than ${b.ctxActors}`;
    if (s.ctx.cloud.length > b.cloudDots) return `a context of ${s.ctx.cloud.length} loose dots, more than ${b.cloudDots}`;
    return null;
  },
  countsNear: (a, b, bounds) =>
    a.entries.length + b.entries.length > bounds.siblings
    || a.ctx.vv.actors.length + b.ctx.vv.actors.length > bounds.ctxActors
    || a.ctx.cloud.length + b.ctx.cloud.length > bounds.cloudDots,
  present: (s) => s.entries.length > 0,
  removeObserved: (s) => {
    if (s.entries.length === 0) return null;
    // No values and everything seen: joined anywhere, it drops exactly the values this replica held.
    const delta = new MvRegister([], s.ctx.clone());
    s.merge(delta);
    return delta;
  },
};
