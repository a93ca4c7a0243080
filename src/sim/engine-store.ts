// The real engine (src/engine) behind the cluster's ReplicaStore port, so the simulator can run the production CRDTs.

import type { ReplicaStore } from "../cluster/store.ts";
import { Engine } from "../engine/index.ts";
import { decodeEnvelope } from "../codec/index.ts";
import { findActor, GCounter } from "../crdt/gcounter.ts";
import { PNCounter } from "../crdt/pncounter.ts";
import { actorName } from "../crdt/actors.ts";

/**
 * What a simulated node's replica offers the harness: the cluster port plus a client
 * increment, a counter read and a way to re-report every key after a restart.
 */
export interface SimStore extends ReplicaStore {
  /** The actor it writes as now (an eviction may renew it: Engine.evict). */
  readonly actor: string;
  /** How an eviction starts a new epoch (the simulated disk's identity): as the node's renewEpochSync. */
  setRenewActor?(fn: () => string): void;
  increment(key: string, by: number): Uint8Array;
  value(key: string): number;
  keys(): string[];
  /** Re-reports every key's digest (what recovery does before the node rejoins). */
  reportAll(): void;
  setOnChange(fn: (key: string, digest: bigint | undefined) => void): void;
  /** Per-actor counts, if the store can tell (needed to account for a wiped disk). */
  actors?(key: string): string[];
  actorCount?(key: string, actor: string): number;
}

/** Engine-backed replica: counters are PN-Counters, deltas and states are the engine's encodings. */
export class EngineStore implements SimStore {
  readonly engine: Engine;
  private onChange: (key: string, digest: bigint | undefined) => void = () => {};
  private renewActor: (() => string) | null = null;

  constructor(actor: string, private readonly nowMs: () => number, hashSeed: readonly [number, number] = [0, 0]) {
    this.engine = new Engine({ actor, onChange: (k, d) => this.onChange(k, d), hashSeed });
  }

  get actor(): string {
    return actorName(this.engine.actor);
  }

  setRenewActor(fn: () => string): void {
    this.renewActor = fn;
  }

  /** As the node's: the engine drops them, renewing the actor through the harness's disk first if it must. */
  evict(entries: ReadonlyArray<{ key: string; digest: bigint }>): number {
    const renew = this.renewActor;
    if (renew === null) return 0;
    return this.engine.evict(entries, renew);
  }

  setOnChange(fn: (key: string, digest: bigint | undefined) => void): void {
    this.onChange = fn;
  }

  increment(key: string, by: number): Uint8Array {
    const r = this.engine.apply({ kind: "incr", key, amount: BigInt(by) }, this.nowMs());
    if (!r.ok) throw new Error(`engine refused an increment: ${r.error.code} ${r.error.message}`);
    return r.delta;
  }

  value(key: string): number {
    const v = this.engine.get(key);
    if (v === undefined) return 0;
    if (v.type !== "gcounter" && v.type !== "pncounter") throw new Error(`key ${key} is a ${v.type}`);
    return Number(v.value);
  }

  keys(): string[] {
    const out: string[] = [];
    const scan = this.engine.scan();
    while (!scan.done) for (const item of scan.next()) out.push(item.key);
    return out.sort();
  }

  reportAll(): void {
    for (const k of this.keys()) {
      const d = this.engine.digest(k);
      if (d !== undefined) this.onChange(k, d);
    }
  }

  digest(key: string): bigint | undefined {
    return this.engine.digest(key);
  }

  /** Actors with increments on a counter key, read from its encoded state (so wipes can be accounted). */
  actors(key: string): string[] {
    return [...this.increments(key).keys()];
  }

  actorCount(key: string, actor: string): number {
    return this.increments(key).get(actor) ?? 0;
  }

  private increments(key: string): Map<string, number> {
    const out = new Map<string, number>();
    const bytes = this.engine.encodeState(key);
    if (bytes === undefined) return out;
    const st = decodeEnvelope(bytes).state;
    // What each actor's row counts above its reset row: a row starts at its life's base, reset
    // up to there (crdt/clocks.ts dotBase).
    const above = (x: bigint, r: bigint): number => Number(x > r ? x - r : 0n);
    if (st.kind === "pncounter") {
      const r = st.resets;
      st.actors.forEach((a, i) => out.set(actorName(a), above(st.p[i] as bigint, r === null ? 0n : (r.p[findActor(r.actors, a)] ?? 0n))));
    }
    else if (st.kind === "gcounter") st.actors.forEach((a, i) => out.set(actorName(a), above(st.counts[i] as bigint, st.resets?.get(a) ?? 0n)));
    else throw new Error(`key ${key} is not a counter`);
    return out;
  }

  states(keys: readonly string[]): Array<[string, Uint8Array]> {
    const out: Array<[string, Uint8Array]> = [];
    for (const k of keys) {
      const s = this.engine.encodeState(k);
      if (s !== undefined) out.push([k, s]);
    }
    return out;
  }

  /** Merges every entry; if some were refused, throws once at the end naming how many. */
  mergeStates(entries: ReadonlyArray<readonly [string, Uint8Array]>): void {
    let refused = 0;
    let last = "";
    for (const [k, s] of entries) {
      const r = this.engine.mergeState(k, s, this.nowMs());
      if (!r.ok) {
        refused++;
        last = r.error.message;
      }
    }
    if (refused > 0) throw new Error(`${refused} states refused, last: ${last}`);
  }

  absentKeys(cursor: number, limit: number): { items: Array<{ key: string; state: Uint8Array; digest: bigint }>; cursor: number } {
    return this.engine.absentKeys(cursor, limit);
  }

  absentCount(): number {
    return this.engine.deletedKeyCount;
  }

  collect(key: string, digest: bigint): boolean {
    return this.engine.collect(key, digest);
  }

  forgetCollected(key: string): void {
    this.engine.forgetCollected(key);
  }

  /** A state is a KeyState envelope that names its key: mergeDelta joins it as it is. */
  deltasOfStates(entries: ReadonlyArray<readonly [string, Uint8Array]>): Uint8Array[] {
    return entries.map(([, state]) => state);
  }

  mergeDeltas(batch: readonly Uint8Array[]): void {
    let refused = 0;
    let last = "";
    for (const d of batch) {
      const r = this.engine.mergeDelta(d, this.nowMs());
      if (!r.ok) {
        refused++;
        last = r.error.message;
      }
    }
    if (refused > 0) throw new Error(`${refused} deltas refused, last: ${last}`);
  }
}
