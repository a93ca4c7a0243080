// The port through which the cluster layer reads and merges replica data; the engine (or the simulator's store) implements it.

/**
 * Keys are strings; deltas and states are opaque bytes encoded by the engine. Merging is
 * a CRDT join, so duplicates, reordering and re-sending are harmless. Whenever a key's
 * state changes (local write or merge), the implementation must report the key's new
 * digest through `Cluster.keyChanged(key, digest)` so the hash tree stays current.
 */
export interface ReplicaStore {
  /** The 64-bit digest of a key's current state, or undefined if the key does not exist. */
  digest(key: string): bigint | undefined;
  /** Full states of the given keys; keys that do not exist are left out. */
  states(keys: readonly string[]): Array<[string, Uint8Array]>;
  /** Joins full states received from a peer (anti-entropy). */
  mergeStates(entries: ReadonlyArray<readonly [string, Uint8Array]>): void;
  /** Joins deltas received from a peer, in the order given. */
  mergeDeltas(batch: readonly Uint8Array[]): void;
  /**
   * Optional: one delta per state, in order, that carries it whole (a state joined as a delta), for the stray
   * keys the cluster pushes to their owners through the acknowledged delta stream
   * (Cluster.pushStrays). Absent: stray keys are left to anti-entropy.
   */
  deltasOfStates?(entries: ReadonlyArray<readonly [string, Uint8Array]>): Uint8Array[];
  /**
   * Optional, for a store that reports changes lazily (the engine's deferChanges): report
   * every change not yet reported, now. The cluster calls it right before it reads its hash
   * tree, so anti-entropy never compares a stale tree.
   */
  reportChanges?(): void;
  /**
   * Optional (tombstone collection, src/cluster/gc.ts): up to `limit` deleted keys' records
   * from position `cursor` on, with their current digests; cursor 0 when the end was reached.
   */
  absentKeys?(cursor: number, limit: number): { items: Array<{ key: string; state: Uint8Array; digest: bigint }>; cursor: number };
  /** Optional: how many deleted keys' records there are (0 spares a scan for them). */
  absentCount?(): number;
  /** Optional: drops a deleted key's record if its digest is still `digest`; true if dropped. */
  collect?(key: string, digest: bigint): boolean;
  /**
   * Optional (eviction, Cluster.evictStrays): drops each key whose digest is still the one given,
   * as if it had never been here - no delta, no record - because the partition's owners hold it;
   * returns how many it dropped. The store must first make sure none of its later writes can
   * claim what it drops as removed (Engine.evict renews the actor), and drop no deleted key's
   * record (the collector's to drop). null: it cannot now (tried again later). Absent: nothing
   * is evicted.
   */
  evict?(entries: ReadonlyArray<{ key: string; digest: bigint }>): number | null;
  /**
   * Optional: how many merges (deltas or states) the store refused so far (a clock too far
   * behind a timestamp, a bound exceeded) without throwing; the cluster then keeps none of the
   * sender's strays (Cluster.keepsStraysOf). A store that throws on a refusal needs none.
   */
  refusals?(): number;
  /** Optional: the collected key's record need not be kept any longer (Engine.forgetCollected). */
  forgetCollected?(key: string): void;
}
