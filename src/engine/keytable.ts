// The engine's memory-lean keyspace: an open-addressing hash table over UTF-8 key bytes kept
// in one arena, with per-key columns in typed arrays. A counter with one actor row (every
// counter written through one node, the common case) lives entirely in the columns - no JS
// object per key - and only other states are held as objects. That is what brings the cost
// of a counter key near Redis's instead of ~5x it (a Map<string, object> entry alone costs
// ~160 bytes of RSS in Bun).
//
// Entry indices are assigned in insertion order, so a scan by index tolerates concurrent
// inserts and updates. A removed entry (a collected delete record) stays in place, flagged
// Flag.Free and out of the hash table, until compact() rebuilds the table densely; the engine
// maps scan positions and cursors across that (Engine.compact). Keys are
// chosen by clients, so the table hashes them with a keyed hash under a per-process secret
// seed (keyhash.ts): nobody can pick keys that collide.

import type { CrdtState } from "../kinds/index.ts";
import type { Conflicted } from "./typed.ts";

/** What a key's object slot holds. */
export type StoredObject = CrdtState | Conflicted;

import { keyBytesMax } from "../codec/index.ts";
import { halfSipHash13, type KeyHashSeed } from "./keyhash.ts";

/** Most keys one engine holds (entry indices and arena offsets are u32). */
export const engineKeysMax = 100_000_000;
/** Largest key arena (u32 offsets). */
export const keyArenaBytesMax = 0xffff_ffff;

/** Storage kind of an entry. */
export const Slot = {
  /** The state is a JS object in `objects`. */
  Object: 0,
  /** A G-Counter with at most one row: actor, p. */
  GCounter: 1,
  /** A PN-Counter with at most one row: actor, p, n. */
  PNCounter: 2,
} as const;
export type Slot = (typeof Slot)[keyof typeof Slot];

/** Bits of the flags column. */
export const Flag = {
  /** Retired (digests are no longer stored); the bit stays unused. */
  DigestStale: 1,
  /** The change has not been reported to onChange yet (the entry is in the pending list). */
  ReportPending: 2,
  /** applyMany holds this compact counter's delta back until the end of the call. */
  DeltaDeferred: 4,
  /** The key holds nothing a read shows (deleted): it keeps its states as the record of what the delete removed. */
  Absent: 8,
  /** Removed (collected): no key, out of the hash table, skipped by every scan until compact() drops it. */
  Free: 16,
  /** An absent entry (always a state object) whose p and n columns hold its tombstone's ms and bytes (tombstones.ts). */
  Tomb: 32,
  /**
   * A compact counter whose row started at its life's base: it holds the reset row (b, b) for
   * its actor, b = dotBase(the entry's creation stamp) (crdt/clocks.ts), everything below reset.
   * Derived from the stamp rather than kept in a column: 8 bytes per key less.
   */
  Based: 64,
} as const;

/** Fewest entries a table's columns are sized for. */
const entriesCapacityMin = 1024;
/** Smallest key arena. */
const arenaBytesMin = 64 * 1024;
/** Fewest hash table slots. */
const hashSlotsMin = 4096;

/** Actor column value of a compact counter with no rows. */
export const noActor = 0xffff_ffff;

export class KeyTable {
  /** Entries in use, free ones included (the next insert's index). */
  count = 0;
  /** Entries flagged Flag.Free (removed, awaiting compact()). */
  free = 0;
  private capacity = entriesCapacityMin;
  private arena = new Uint8Array(arenaBytesMin);
  private arenaUsed = 0;
  keyOffset = new Uint32Array(this.capacity);
  keyLength = new Uint16Array(this.capacity);
  keyHash = new Uint32Array(this.capacity);
  slot = new Uint8Array(this.capacity);
  actor = new Uint32Array(this.capacity);
  /** Compact counters' p and n: exact integers <= 2^53 - 1. */
  p = new Float64Array(this.capacity);
  n = new Float64Array(this.capacity);
  /** Per-entry bits of the engine's lazy change tracking (Flag). */
  flags = new Uint8Array(this.capacity);
  /** States of Slot.Object entries. */
  /** A state of any kind, or a Conflicted (engine/typed.ts): anything with a `kind`. */
  objects = new Map<number, StoredObject>();
  /** Hash table: entry index + 1, 0 = empty. Size is a power of two, load <= 1/2. */
  private table = new Int32Array(hashSlotsMin);

  private readonly k0: number;
  private readonly k1: number;

  /** seed: the secret key of the table hash; give each process its own (see keyhash.ts). */
  constructor(seed: KeyHashSeed = [0, 0]) {
    this.k0 = seed[0] | 0;
    this.k1 = seed[1] | 0;
  }

  /** Index of the key given as UTF-8 in buf[0, len), or -1. Sets lastHash for insert(). */
  lastHash = 0;

  find(buf: Uint8Array, len: number): number {
    const h = halfSipHash13(this.k0, this.k1, buf, len);
    this.lastHash = h;
    const mask = this.table.length - 1;
    const arena = this.arena;
    for (let pos = h & mask; ; pos = (pos + 1) & mask) {
      const v = this.table[pos] as number;
      if (v === 0) return -1;
      const i = v - 1;
      if (this.keyHash[i] === h && this.keyLength[i] === len) {
        const off = this.keyOffset[i] as number;
        let k = 0;
        while (k < len && arena[off + k] === buf[k]) k++;
        if (k === len) return i;
      }
    }
  }

  /** Table slots a lookup of buf[0, len) examines (what hash flooding would drive up; for tests). */
  probes(buf: Uint8Array, len: number): number {
    const mask = this.table.length - 1;
    let n = 1;
    for (let pos = halfSipHash13(this.k0, this.k1, buf, len) & mask; this.table[pos] !== 0; pos = (pos + 1) & mask) n++;
    return n;
  }

  /** Adds a key known to be absent (call find() first: it computes the hash). */
  insert(buf: Uint8Array, len: number): number {
    if (this.count >= engineKeysMax) throw new Error(`assertion failed: more than ${engineKeysMax} keys`);
    if (len < 1 || len > keyBytesMax) throw new Error("assertion failed: key length");
    const i = this.count++;
    if (i >= this.capacity) this.grow();
    if (this.arenaUsed + len > this.arena.length) {
      let size = this.arena.length * 2;
      while (size < this.arenaUsed + len) size *= 2;
      if (size > keyArenaBytesMax) throw new Error("assertion failed: key arena full");
      const a = new Uint8Array(size);
      a.set(this.arena.subarray(0, this.arenaUsed));
      this.arena = a;
    }
    // A byte loop, not arena.set(buf.subarray(...)): the view it needs was a tenth of WAL replay.
    const arena = this.arena;
    const at = this.arenaUsed;
    for (let k = 0; k < len; k++) arena[at + k] = buf[k] as number;
    this.keyOffset[i] = this.arenaUsed;
    this.keyLength[i] = len;
    this.keyHash[i] = this.lastHash;
    this.arenaUsed += len;
    if (this.count * 2 > this.table.length) this.rehash();
    else this.place(i);
    return i;
  }

  /** The key of entry i as UTF-8 (a view; copy before keeping). */
  keyBytes(i: number): Uint8Array {
    const off = this.keyOffset[i] as number;
    return this.arena.subarray(off, off + (this.keyLength[i] as number));
  }

  private place(i: number): void {
    const mask = this.table.length - 1;
    let pos = (this.keyHash[i] as number) & mask;
    while (this.table[pos] !== 0) pos = (pos + 1) & mask;
    this.table[pos] = i + 1;
  }

  private rehash(): void {
    this.table = new Int32Array(this.table.length * 2);
    for (let i = 0; i < this.count; i++) if (((this.flags[i] as number) & Flag.Free) === 0) this.place(i);
  }

  /**
   * Takes entry i out of the hash table and flags it Free (its columns and key bytes stay until
   * compact()). Linear probing with backward-shift deletion: the entries after it in its probe
   * run move back, so lookups need no tombstone slots.
   */
  remove(i: number): void {
    const mask = this.table.length - 1;
    let hole = (this.keyHash[i] as number) & mask;
    while (this.table[hole] !== i + 1) {
      if (this.table[hole] === 0) throw new Error("assertion failed: removing an entry not in the hash table");
      hole = (hole + 1) & mask;
    }
    this.table[hole] = 0;
    for (let j = (hole + 1) & mask; this.table[j] !== 0; j = (j + 1) & mask) {
      const v = this.table[j] as number;
      const home = (this.keyHash[v - 1] as number) & mask;
      // v may fill the hole if the hole lies on its probe path (from home to j).
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        this.table[hole] = v;
        this.table[j] = 0;
        hole = j;
      }
    }
    this.flags[i] = Flag.Free | ((this.flags[i] as number) & Flag.ReportPending);
    this.slot[i] = Slot.Object;
    this.free++;
  }

  /**
   * Rebuilds the table without its free entries, in index order: new columns sized near the
   * live count, a new arena holding only live keys, a new hash table. Returns each old index's
   * new one (-1 for a removed entry) and the removed indices, ascending.
   */
  compact(): { newIndex: Int32Array; removed: Uint32Array } {
    const oldCount = this.count;
    const live = oldCount - this.free;
    const newIndex = new Int32Array(oldCount);
    const removed = new Uint32Array(this.free);
    let liveBytes = 0;
    for (let i = 0, r = 0, n = 0; i < oldCount; i++) {
      if (((this.flags[i] as number) & Flag.Free) !== 0) {
        newIndex[i] = -1;
        removed[r++] = i;
      } else {
        newIndex[i] = n++;
        liveBytes += this.keyLength[i] as number;
      }
    }
    const c = Math.max(entriesCapacityMin, Math.ceil(live * 1.25));
    const keyOffset = new Uint32Array(c);
    const keyLength = new Uint16Array(c);
    const keyHash = new Uint32Array(c);
    const slot = new Uint8Array(c);
    const actor = new Uint32Array(c);
    const p = new Float64Array(c);
    const n = new Float64Array(c);
    const flags = new Uint8Array(c);
    let arenaSize = arenaBytesMin;
    while (arenaSize < liveBytes * 1.25) arenaSize *= 2;
    const arena = new Uint8Array(arenaSize);
    let used = 0;
    const old = this.arena;
    for (let i = 0; i < oldCount; i++) {
      const j = newIndex[i] as number;
      if (j < 0) continue;
      const off = this.keyOffset[i] as number;
      const len = this.keyLength[i] as number;
      // A byte loop, as in insert(): no view object per key.
      for (let k = 0; k < len; k++) arena[used + k] = old[off + k] as number;
      keyOffset[j] = used;
      used += len;
      keyLength[j] = len;
      keyHash[j] = this.keyHash[i] as number;
      slot[j] = this.slot[i] as number;
      actor[j] = this.actor[i] as number;
      p[j] = this.p[i] as number;
      n[j] = this.n[i] as number;
      flags[j] = this.flags[i] as number;
    }
    this.keyOffset = keyOffset;
    this.keyLength = keyLength;
    this.keyHash = keyHash;
    this.slot = slot;
    this.actor = actor;
    this.p = p;
    this.n = n;
    this.flags = flags;
    this.arena = arena;
    this.arenaUsed = used;
    this.capacity = c;
    this.count = live;
    this.free = 0;
    let slots = hashSlotsMin;
    while (live * 2 > slots) slots *= 2;
    this.table = new Int32Array(slots);
    for (let i = 0; i < live; i++) this.place(i);
    const objects = new Map<number, StoredObject>();
    for (const [i, o] of this.objects) {
      const j = newIndex[i] as number;
      if (j >= 0) objects.set(j, o);
    }
    // A new Map, not the old one cleared: the old one's storage is sized for its peak.
    this.objects = objects;
    return { newIndex, removed };
  }

  /** Sizes of the storage, for tests and metrics: entries the columns hold room for, arena bytes, hash table slots. */
  sizes(): { entriesCapacity: number; arenaBytes: number; hashSlots: number } {
    return { entriesCapacity: this.capacity, arenaBytes: this.arena.length, hashSlots: this.table.length };
  }

  private grow(): void {
    const c = this.capacity * 2;
    const g32 = (a: Uint32Array) => { const b = new Uint32Array(c); b.set(a); return b; };
    const g64 = (a: Float64Array) => { const b = new Float64Array(c); b.set(a); return b; };
    this.keyOffset = g32(this.keyOffset);
    this.keyHash = g32(this.keyHash);
    this.actor = g32(this.actor);
    this.p = g64(this.p);
    this.n = g64(this.n);
    const kl = new Uint16Array(c);
    kl.set(this.keyLength);
    this.keyLength = kl;
    const s = new Uint8Array(c);
    s.set(this.slot);
    this.slot = s;
    const f = new Uint8Array(c);
    f.set(this.flags);
    this.flags = f;
    this.capacity = c;
  }
}
