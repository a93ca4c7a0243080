// A leaving node's hand-off (issue 17): before `imdb admin leave` announces the departure of a
// node in a partitioned cluster, every key it holds is handed to the owners the key will have
// once it is gone, and the leave goes on only when each of them has confirmed it holds them
// durably. Without it, writes only the leaving node had (another owner was down, or its deltas
// were still on their way) left with it.
//
// The plan is a pure function of the membership and the keys held (the node and the simulator
// run this same code): the placement without the leaving node (the members it places over
// now, less itself), and for each key the alive owners of its partition there. A key none of
// whose future owners is alive refuses the leave: its only reachable copy would go. The states
// travel over NodeService.HandOff (src/node/handoff-sender.ts), each call answered once the
// receiver's WAL holds what it merged, and are merged as anti-entropy merges states: joins,
// through the same tombstone-collection gate (a state read before a collection that relied on
// the sender is refused and read again; a key collected at the receiver is not re-created from
// its old record).

import { Placement, partitionOf } from "./placement.ts";
import type { NodeId } from "./types.ts";

export interface HandOffTarget {
  id: NodeId;
  addr: string;
  /** The keys to hand to it, in the hash tree's order. */
  keys: string[];
}

export type HandOffPlan =
  | { kind: "plan"; targets: HandOffTarget[]; keys: number }
  | { kind: "refused"; reason: string };

export interface HandOffInputs {
  self: NodeId;
  /** The members the current placement is made of (Placement.members). */
  members: readonly NodeId[];
  partitions: number;
  replicationFactor: number;
  /** Alive members' peer addresses (others are not handed anything). */
  alive: ReadonlyMap<NodeId, string>;
  /** Every key this node holds (present or deleted records). */
  keys: Iterable<string>;
}

/** Shows at most this many partitions in a refusal. */
const refusalPartitionsShown = 5;

export function planHandOff(x: HandOffInputs): HandOffPlan {
  const rest = x.members.filter((m) => m !== x.self);
  if (rest.length === 0) return { kind: "refused", reason: "this node is the only member: there is no one to hand its keys to" };
  const future = Placement.of(rest, { partitions: x.partitions, replicationFactor: x.replicationFactor });
  const byTarget = new Map<NodeId, HandOffTarget>();
  const stranded = new Map<number, readonly NodeId[]>();
  let keys = 0;
  for (const key of x.keys) {
    keys++;
    const p = partitionOf(key, x.partitions);
    const owners = future.owners(p);
    let any = false;
    for (const id of owners) {
      const addr = x.alive.get(id);
      if (addr === undefined) continue;
      any = true;
      let t = byTarget.get(id);
      if (t === undefined) {
        t = { id, addr, keys: [] };
        byTarget.set(id, t);
      }
      t.keys.push(key);
    }
    if (!any && !stranded.has(p)) stranded.set(p, owners);
  }
  if (stranded.size > 0) {
    const shown = [...stranded].slice(0, refusalPartitionsShown).map(([p, o]) => `${p} (owners then: ${o.join(", ")})`).join("; ");
    return {
      kind: "refused",
      reason: `${stranded.size} partition(s) this node holds keys of would have no owner alive once it leaves: ${shown}. Bring those members back and leave again, or stop this node (its data stays on its disk) instead of leaving`,
    };
  }
  return { kind: "plan", targets: [...byTarget.values()], keys };
}
