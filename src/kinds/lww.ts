// LWW-Register: bytes ordered by (HLC timestamp, actor) (crdt/lww.ts).

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
  bytesUpperBound: (s) => s.value.length + rowBytesMax,
  // One value, each decoded within bounds: the join is one of the two.
  countsOutside: () => null,
  countsNear: () => false,
  present: (s) => s.isSet,
  // Placeholder until counters and the LWW register carry what a delete observed (issue 13, in progress).
  removeObserved: () => {
    throw new Error("assertion failed: delete of this kind is not implemented yet");
  },
};
