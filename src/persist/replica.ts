// Which CRDT actor a node writes as: the pure rules (no I/O, no clock, no randomness of its
// own) shared by the node (src/persist/identity.ts does the file work) and the simulator, so
// both build replicas the same way.
//
// Why an actor is not the node id: every per-actor CRDT row (counter slots, MV dots, LWW
// tie-breaks) assumes an actor never forgets what it wrote. A node that lost part of its data
// (empty folder, --repair, a restored copy, a crash) would count again
// from an older, lower position; peers keep the higher count (a max per row) and its new
// acknowledged writes vanish in the join. So each life of a data folder — an epoch — writes
// as its own actor `<nodeId>/<epoch>`, and any doubt about what the folder remembers starts a
// new epoch. A new epoch is always safe; its only cost is one more actor in per-key metadata.

import type { Durability } from "./wal.ts";
import type { GcDurableState } from "../cluster/gc.ts";
import { formerLivesMax } from "../cluster/wire.ts";

/** Between node id and epoch; node ids are [A-Za-z0-9._-], so the first "/" splits unambiguously. */
export const actorEpochSeparator = "/";
/** Random bytes per epoch: 64 bits, so two lives of one node never pick the same epoch by chance. */
export const epochRandomBytes = 8;
/** Longest node id the config accepts (see config.ts idPattern); actor = id + "/" + 16 hex <= 255 bytes. */
export const nodeIdCharsMax = 64;

/** One life of a data folder: 16 lowercase hex digits. */
export type Epoch = string & { readonly __brand: "Epoch" };

const epochPattern = /^[0-9a-f]{16}$/;
const nodeIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

/** The epoch named by `epochRandomBytes` random bytes (crypto in the node, the seeded rng in the simulator). */
export function epochFromRandom(bytes: Uint8Array): Epoch {
  if (bytes.length !== epochRandomBytes) throw new RangeError(`an epoch needs ${epochRandomBytes} random bytes, got ${bytes.length}`);
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s as Epoch;
}

/** Checks a stored epoch; null when it is not one this build writes. */
export function parseEpoch(s: string): Epoch | null {
  return epochPattern.test(s) ? (s as Epoch) : null;
}

/** The actor a node writes as in one epoch. */
export function replicaActor(nodeId: string, epoch: Epoch): string {
  if (!nodeIdPattern.test(nodeId)) throw new RangeError(`node id ${JSON.stringify(nodeId)} must be 1..${nodeIdCharsMax} chars of [A-Za-z0-9._-]`);
  return `${nodeId}${actorEpochSeparator}${epoch}`;
}

/** The node id and epoch of an actor written by replicaActor, or null for any other actor id. */
export function parseReplicaActor(actor: string): { nodeId: string; epoch: Epoch } | null {
  const at = actor.indexOf(actorEpochSeparator);
  if (at < 0) return null;
  const nodeId = actor.slice(0, at);
  const epoch = parseEpoch(actor.slice(at + 1));
  return nodeIdPattern.test(nodeId) && epoch !== null ? { nodeId, epoch } : null;
}

/** What the node knows about its data folder at start, before recovery reads anything. */
export interface FolderFacts {
  /** The identity the folder holds, or null (empty folder, deleted identity file, older build). */
  stored: { nodeId: string; epoch: Epoch; folderIno: string } | null;
  /** The folder's inode now (as a decimal string): a copy or restore into a new folder has another one. */
  folderIno: string;
  /** The previous run wrote the clean-stop marker (and nothing started since). */
  cleanStop: boolean;
  /** `--repair` was asked: recovery may cut writes this actor already handed out. */
  repair: boolean;
  durability: Durability;
  /** The folder was just filled from a backup (`imdb node --restore`): always a new replica. */
  restored?: boolean;
}

export type NewEpochReason =
  | "empty"
  | "other-node"
  | "copied"
  | "repair"
  | "unclean-stop"
  | "restored";

export type IdentityDecision = { kind: "keep"; epoch: Epoch } | { kind: "new"; reason: NewEpochReason };

/**
 * Keep the folder's epoch only if the folder surely still holds every write this actor ever
 * let a peer see; otherwise start a new one.
 *
 * Only a clean stop proves that. An unclean stop starts a new epoch in every durability mode,
 * `sync` included: under `sync` a crash itself loses nothing acknowledged, but a crash cannot
 * be told apart from a restore of a copy taken while the node ran (a hot copy, a filesystem or
 * volume snapshot: none holds the clean-stop marker), and such a copy is behind what peers
 * hold of this actor. The folder's inode catches copies into a new folder only when the
 * filesystem does not hand the same inode number to the new folder, which it does when the old
 * one was deleted just before (seen in the chaos suite's restore scenario: 3-5 acknowledged
 * increments swallowed per restore while the epoch was kept). A new epoch costs one actor.
 */
export function decideIdentity(f: FolderFacts, nodeId: string): IdentityDecision {
  // A backup is behind what peers hold of the replica it was taken from, however it got here.
  if (f.restored === true) return { kind: "new", reason: "restored" };
  if (f.stored === null) return { kind: "new", reason: "empty" };
  if (f.stored.nodeId !== nodeId) return { kind: "new", reason: "other-node" };
  if (f.stored.folderIno !== f.folderIno) return { kind: "new", reason: "copied" };
  if (f.repair) return { kind: "new", reason: "repair" };
  if (!f.cleanStop) return { kind: "new", reason: "unclean-stop" };
  return { kind: "keep", epoch: f.stored.epoch };
}

/** Why a new epoch started, for the start-up log. */
export function describeNewEpoch(reason: NewEpochReason): string {
  switch (reason) {
    case "empty":
      return "the data folder holds no replica identity (new or emptied folder, identity file deleted, or an older build's folder)";
    case "other-node":
      return "the data folder's identity belongs to another node id";
    case "copied":
      return "the data folder was copied or restored (its inode changed)";
    case "repair":
      return "--repair may drop writes this replica already handed out";
    case "restored":
      return "the data folder was just restored from a backup, which is behind what peers hold of the replica it was taken from";
    case "unclean-stop":
      return "the previous run did not stop cleanly (a crash, or a copy of a running node's folder put back): the folder may be behind what peers hold of this replica";
  }
}

/**
 * Tombstone collection's state for a life starting on a folder (src/cluster/gc.ts), the same rule
 * for the node and the simulator: the lives the data comes from, and whether the data is of
 * doubtful age (quarantined: no writes, no data exchanged, until every member has answered).
 * Under `sync` every write and every collection confirmation was on disk before any peer saw it,
 * so a crash loses nothing a member relied on: only a copy, a restore, a repair or (under
 * interval/none) a crash leaves data older than what this replica confirmed.
 */
export function gcStartState(o: {
  decision: IdentityDecision;
  stored: GcDurableState;
  actor: string;
  /** The folder's data holds at least one key after recovery. */
  hasData: boolean;
  durability: Durability;
}): { durable: GcDurableState; quarantined: boolean } {
  // "empty" with data: the identity file was deleted (docs/operations.md advises it for a copy
  // put back in place) or an older build wrote the folder - the data is of doubtful age, not fresh.
  const fresh = o.decision.kind === "new" && o.decision.reason === "empty" && !o.hasData;
  const quarantined = o.decision.kind === "new" && !fresh && o.hasData && (o.decision.reason !== "unclean-stop" || o.durability.kind !== "sync");
  const lives = fresh ? [o.actor] : o.stored.lives.includes(o.actor) ? o.stored.lives : [...o.stored.lives, o.actor].slice(-formerLivesMax - 1);
  const durable = fresh ? { generation: 0, ownGeneration: 0, departed: [...o.stored.departed], members: [], lives } : { ...o.stored, lives };
  return { durable, quarantined };
}
