// A key's deadline (crdt/deadline.ts): a typed state beside the key's value that is never shown
// as its type and never makes a key present; the engine reads it for expiry (src/engine/expiry.ts).

import { Deadline } from "../crdt/index.ts";
import { readDeadline, writeDeadline } from "../codec/states.ts";
import { rowBytesMax } from "../limits.ts";
import { contextBytesUpperBound, mvKind } from "./mv.ts";
import type { CrdtKind } from "./kind.ts";
import { CrdtType } from "./types.ts";

export const deadlineKind: CrdtKind<Deadline> = {
  name: "deadline",
  type: CrdtType.Deadline,
  label: "deadline",
  empty: () => new Deadline(),
  join: (into, other) => into.merge(other),
  equals: (a, b) => a.equals(b),
  clone: (s) => s.clone(),
  write: writeDeadline,
  read: readDeadline,
  value: (s) => ({ type: "deadline", atMs: s.atMs() }),
  bytesUpperBound: (s) => mvKind.bytesUpperBound(s.reg) + contextBytesUpperBound(s.expired) + rowBytesMax,
  countsOutside: (s, b) => mvKind.countsOutside(s.reg, b) ?? (s.expired.vv.size > b.ctxActors ? `${s.expired.vv.size} expired deadline rows, more than ${b.ctxActors}` : null),
  countsNear: (a, b, bounds) => mvKind.countsNear(a.reg, b.reg, bounds) || a.expired.vv.size + b.expired.vv.size > bounds.ctxActors,
  // A deadline alone is nothing a read shows: a key with only a deadline left is absent.
  present: () => false,
  removeObserved: (s) => s.removeObserved(),
};
