// Tombstone collection's start state for a life (persist/replica.ts gcStartState): which lives
// start quarantined (data of doubtful age: no writes until every member has told its collection
// generation, a reset if one collected since), for the node and the simulator alike.
import { expect, test } from "bun:test";
import { gcStartState, type IdentityDecision } from "../../src/persist/replica.ts";
import type { GcDurableState } from "../../src/cluster/gc.ts";

const stored: GcDurableState = { generation: 7, ownGeneration: 3, departed: [], members: ["n1", "n2"], lives: ["n0/aaaaaaaaaaaaaaaa"] };
const sync = { kind: "sync" } as const;
const none = { kind: "none" } as const;
const start = (decision: IdentityDecision, hasData: boolean, durability: typeof sync | typeof none = sync) =>
  gcStartState({ decision, stored, actor: "n0/bbbbbbbbbbbbbbbb", hasData, durability });

test("an empty folder is a fresh replica: nothing to doubt, generation 0, no former lives", () => {
  const r = start({ kind: "new", reason: "empty" }, false);
  expect(r.quarantined).toBe(false);
  expect(r.durable.generation).toBe(0);
  expect(r.durable.lives).toEqual(["n0/bbbbbbbbbbbbbbbb"]);
});

test("a folder whose identity file was deleted but that holds data is of doubtful age, not fresh", () => {
  // docs/operations.md advises deleting `identity` from a copy put back in place: that copy may
  // hold deletes' victims collected since, so it must wait for the members and reset if needed.
  const r = start({ kind: "new", reason: "empty" }, true);
  expect(r.quarantined).toBe(true);
  expect(r.durable.generation).toBe(7);
  expect(r.durable.lives).toEqual(["n0/aaaaaaaaaaaaaaaa", "n0/bbbbbbbbbbbbbbbb"]);
});

test("copies, restores and repairs with data are quarantined; an unclean stop only outside sync; a clean restart never", () => {
  for (const reason of ["copied", "repair", "restored", "other-node"] as const) expect(start({ kind: "new", reason }, true).quarantined).toBe(true);
  expect(start({ kind: "new", reason: "unclean-stop" }, true).quarantined).toBe(false);
  expect(start({ kind: "new", reason: "unclean-stop" }, true, none).quarantined).toBe(true);
  expect(start({ kind: "keep", epoch: "bbbbbbbbbbbbbbbb" } as IdentityDecision, true).quarantined).toBe(false);
});
