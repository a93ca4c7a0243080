// The simulator's replica store: grow-only counters per key, a minimal CRDT behind the cluster's ReplicaStore port.
//
// A key's state is a map actor -> count; merge takes the per-actor maximum, so a delta
// (one actor's new count) may be duplicated, reordered or dropped-then-repaired freely.

import { keyHash } from "../cluster/hashtree.ts";
import type { SimStore } from "./engine-store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class CounterStore implements SimStore {
  private readonly data = new Map<string, Map<string, number>>();
  /** Called with every key whose state changed (the cluster's keyChanged). */
  onChange: (key: string, digest: bigint | undefined) => void = () => {};

  constructor(readonly actor: string) {}

  setOnChange(fn: (key: string, digest: bigint | undefined) => void): void {
    this.onChange = fn;
  }

  /** A local increment; returns the delta to broadcast. */
  increment(key: string, by: number): Uint8Array {
    const m = this.entry(key);
    const next = (m.get(this.actor) ?? 0) + by;
    m.set(this.actor, next);
    this.changed(key);
    return encoder.encode(JSON.stringify([key, this.actor, next]));
  }

  value(key: string): number {
    let sum = 0;
    for (const c of this.data.get(key)?.values() ?? []) sum += c;
    return sum;
  }

  /** One actor's count for a key (to account for increments lost with a wiped disk). */
  actorCount(key: string, actor: string): number {
    return this.data.get(key)?.get(actor) ?? 0;
  }

  /** Actors with a count for the key. */
  actors(key: string): string[] {
    return [...(this.data.get(key)?.keys() ?? [])];
  }

  keys(): string[] {
    return [...this.data.keys()].sort();
  }

  digest(key: string): bigint | undefined {
    const m = this.data.get(key);
    if (m === undefined) return undefined;
    const [lo, hi] = keyHash(this.canonical(m));
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  states(keys: readonly string[]): Array<[string, Uint8Array]> {
    const out: Array<[string, Uint8Array]> = [];
    for (const k of keys) {
      const m = this.data.get(k);
      if (m !== undefined) out.push([k, encoder.encode(this.canonical(m))]);
    }
    return out;
  }

  mergeStates(entries: ReadonlyArray<readonly [string, Uint8Array]>): void {
    for (const [key, bytes] of entries) {
      const pairs = JSON.parse(decoder.decode(bytes)) as Array<[string, number]>;
      if (!Array.isArray(pairs)) throw new TypeError("counter state is not a list");
      let changed = false;
      for (const [actor, count] of pairs) changed = this.join(key, actor, count) || changed;
      if (changed) this.changed(key);
    }
  }

  mergeDeltas(batch: readonly Uint8Array[]): void {
    for (const bytes of batch) {
      const d = JSON.parse(decoder.decode(bytes)) as [string, string, number];
      if (!Array.isArray(d) || typeof d[0] !== "string" || typeof d[1] !== "string" || typeof d[2] !== "number") {
        throw new TypeError("counter delta malformed");
      }
      if (this.join(d[0], d[1], d[2])) this.changed(d[0]);
    }
  }

  /** Re-reports every key (what a restarted engine does after recovery). */
  reportAll(): void {
    for (const k of this.data.keys()) this.changed(k);
  }

  private join(key: string, actor: string, count: number): boolean {
    const m = this.entry(key);
    if ((m.get(actor) ?? 0) >= count) return false;
    m.set(actor, count);
    return true;
  }

  private entry(key: string): Map<string, number> {
    let m = this.data.get(key);
    if (m === undefined) {
      m = new Map();
      this.data.set(key, m);
    }
    return m;
  }

  private changed(key: string): void {
    const d = this.digest(key);
    if (d !== undefined) this.onChange(key, d);
  }

  private canonical(m: Map<string, number>): string {
    return JSON.stringify([...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
  }
}
