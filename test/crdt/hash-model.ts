// Reference model of the hash (observed-remove map of register or counter fields) for the law
// suite: a log of events with what each one covered and reset, evaluated over the set of
// events a replica has received. It decides what each replica shows without looking at the
// implementation, so the harness can compare every replica before every op and at the end.

import fc from "fast-check";
import { actorName, type ActorId, type HashPair, type Hlc } from "../../src/crdt/index.ts";

/** Field names biased to collisions and byte order edge cases (a prefix, a high byte). */
export const hashFieldPool: Uint8Array[] = [Uint8Array.of(0x66), Uint8Array.of(0x66, 0x67), Uint8Array.of(0x67), Uint8Array.of(0xff)];
/** Register values: integers (so HINCRBY converts them), non-integers (so it refuses), random bytes. */
export const hashValueArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.constantFrom("7", "-3", "0", "x", "", "01", "-0").map((s) => new TextEncoder().encode(s)),
  fc.uint8Array({ maxLength: 4 }),
);

export type HashOp =
  | { t: "hset"; pairs: HashPair[]; advanceMs: number }
  | { t: "hincrby"; field: Uint8Array; amount: bigint }
  | { t: "hdel"; fields: Uint8Array[] }
  | { t: "hclear" };

// Mostly two fields, so concurrent writes, increments and deletes meet on the same field.
const fieldArb = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...hashFieldPool.slice(0, 2)) }, { weight: 1, arbitrary: fc.constantFrom(...hashFieldPool) });
export const hashOpArb: fc.Arbitrary<HashOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ pairs: fc.array(fc.record({ field: fieldArb, value: hashValueArb }), { minLength: 1, maxLength: 2 }), advanceMs: fc.constantFrom(0, 0, 1) }).map((x) => ({ t: "hset", ...x }) as HashOp) },
  { weight: 4, arbitrary: fc.record({ field: fieldArb, amount: fc.oneof(fc.constantFrom(1n, -1n, 0n), fc.bigInt({ min: -50n, max: 50n })) }).map((x) => ({ t: "hincrby", ...x }) as HashOp) },
  { weight: 3, arbitrary: fc.array(fieldArb, { minLength: 1, maxLength: 2 }).map((fields) => ({ t: "hdel", fields }) as HashOp) },
  { weight: 1, arbitrary: fc.constant({ t: "hclear" } as HashOp) },
);

export function hex(b: Uint8Array): string {
  return Array.from(b).map((x) => x.toString(16).padStart(2, "0")).join("");
}

interface HashEvent {
  id: number;
  kind: "set" | "incr" | "del" | "clear";
  /** hex of the field; "" for clear (every field). */
  field: string;
  actor: ActorId;
  value: Uint8Array;
  ms: number;
  logical: number;
  /** incr: the effective amount (a conversion adds the register's integer) and the actor's index on the field. */
  amount: bigint;
  index: number;
  /** Ids of the events whose dots this event's delta context holds (its own, for set and incr). */
  ctx: Set<number>;
  /** Removals: per `${field}/${actor}` the actor's increment index on that field this event reset up to. */
  resetUpTo: Map<string, number>;
}

/** What one field shows in a view. */
interface FieldView {
  liveSets: HashEvent[];
  liveIncrs: HashEvent[];
  counter: bigint;
}

export class HashModel {
  readonly events: HashEvent[] = [];
  private readonly incrIndex = new Map<string, number>();

  private liveIn(seen: ReadonlySet<number>): Set<number> {
    const covered = new Set<number>();
    for (const id of seen) for (const c of (this.events[id] as HashEvent).ctx) if (c !== id) covered.add(c);
    const live = new Set<number>();
    for (const id of seen) {
      const e = this.events[id] as HashEvent;
      if ((e.kind === "set" || e.kind === "incr") && !covered.has(id)) live.add(id);
    }
    return live;
  }

  /** Highest increment index of actor on field whose row the view holds (its own events or rows a removal carried). */
  private rowIndex(seen: ReadonlySet<number>, field: string, actor: ActorId): number {
    let k = 0;
    for (const id of seen) {
      const e = this.events[id] as HashEvent;
      if (e.kind === "incr" && e.field === field && e.actor === actor && e.index > k) k = e.index;
      const r = e.resetUpTo.get(`${field}/${actor as number}`);
      if (r !== undefined && r > k) k = r;
    }
    return k;
  }

  private view(seen: ReadonlySet<number>): Map<string, FieldView> {
    const live = this.liveIn(seen);
    const out = new Map<string, FieldView>();
    const of = (f: string): FieldView => {
      let v = out.get(f);
      if (v === undefined) { v = { liveSets: [], liveIncrs: [], counter: 0n }; out.set(f, v); }
      return v;
    };
    for (const id of live) {
      const e = this.events[id] as HashEvent;
      if (e.kind === "set") of(e.field).liveSets.push(e);
      else of(e.field).liveIncrs.push(e);
    }
    // Counter: increments of the view not reset by any removal of the view.
    const reset = new Map<string, number>();
    for (const id of seen) {
      for (const [k, r] of (this.events[id] as HashEvent).resetUpTo) if (r > (reset.get(k) ?? 0)) reset.set(k, r);
    }
    const counted = new Set<string>();
    for (const id of seen) {
      const e = this.events[id] as HashEvent;
      if (e.kind !== "incr") continue;
      const key = `${e.field}/${e.actor as number}`;
      if (counted.has(key)) continue;
      counted.add(key);
      const upTo = this.rowIndex(seen, e.field, e.actor);
      const from = reset.get(key) ?? 0;
      for (const x of this.events) {
        if (x.kind === "incr" && x.field === e.field && x.actor === e.actor && x.index > from && x.index <= upTo) of(e.field).counter += x.amount;
      }
    }
    return out;
  }

  private static shown(v: FieldView): Uint8Array | null {
    if (v.liveIncrs.length > 0) return new TextEncoder().encode(String(v.counter));
    let best: HashEvent | null = null;
    for (const e of v.liveSets) {
      if (best === null || e.ms > best.ms || (e.ms === best.ms && (e.logical > best.logical || (e.logical === best.logical && actorName(e.actor) > actorName(best.actor))))) best = e;
    }
    return best === null ? null : best.value;
  }

  /** What a replica that received `seen` shows, in the form `renderHash` gives. */
  render(seen: ReadonlySet<number>): string {
    const rows: string[] = [];
    for (const [f, v] of this.view(seen)) {
      const shown = HashModel.shown(v);
      if (shown !== null) rows.push(`${f}=${Array.from(shown).join(",")}`);
    }
    return rows.sort().join(";");
  }

  private add(e: Omit<HashEvent, "id">): number {
    const id = this.events.length;
    this.events.push({ ...e, id });
    if (e.kind === "set" || e.kind === "incr") e.ctx.add(id);
    return id;
  }

  private resets(seen: ReadonlySet<number>, field: string, into: Map<string, number>): void {
    const actors = new Set<ActorId>();
    for (const id of seen) {
      const e = this.events[id] as HashEvent;
      if (e.kind === "incr" && e.field === field) actors.add(e.actor);
      for (const k of e.resetUpTo.keys()) if (k.startsWith(`${field}/`)) actors.add(Number(k.slice(field.length + 1)) as ActorId);
    }
    // A removal carries (and resets) only rows with counts not yet reset in its view: the
    // increments past the view's reset index of that row, when one of them is not 0.
    for (const a of actors) {
      const key = `${field}/${a as number}`;
      const k = this.rowIndex(seen, field, a);
      let from = 0;
      for (const id of seen) from = Math.max(from, (this.events[id] as HashEvent).resetUpTo.get(key) ?? 0);
      const unreset = this.events.some((x) => x.kind === "incr" && x.field === field && x.actor === a && x.index > from && x.index <= k && x.amount !== 0n);
      if (unreset) into.set(key, k);
    }
  }

  private liveOn(seen: ReadonlySet<number>, field: string): HashEvent[] {
    return [...this.liveIn(seen)].map((id) => this.events[id] as HashEvent).filter((e) => e.field === field);
  }

  private none(): Pick<HashEvent, "value" | "ms" | "logical" | "amount" | "index"> {
    return { value: new Uint8Array(0), ms: 0, logical: 0, amount: 0n, index: 0 };
  }

  /** HSET at a replica that received `seen`; returns the new event ids. */
  hset(seen: ReadonlySet<number>, actor: ActorId, ts: Hlc, pairs: readonly HashPair[]): number[] {
    const last = new Map<string, Uint8Array>();
    for (const p of pairs) last.set(hex(p.field), p.value);
    const ids: number[] = [];
    for (const [field, value] of last) {
      const resetUpTo = new Map<string, number>();
      this.resets(seen, field, resetUpTo);
      const ctx = new Set(this.liveOn(seen, field).map((e) => e.id));
      ids.push(this.add({ kind: "set", field, actor, ...this.none(), value, ms: ts.ms, logical: ts.logical, ctx, resetUpTo }));
    }
    return ids;
  }

  /**
   * HINCRBY: the event ids, or "refused" when the field shows a register value that is not an
   * integer (the implementation must refuse too).
   */
  hincrby(seen: ReadonlySet<number>, actor: ActorId, field: Uint8Array, amount: bigint): number[] | "refused" {
    const f = hex(field);
    const v = this.view(seen).get(f);
    const ctx = new Set<number>();
    const resetUpTo = new Map<string, number>();
    let effective = amount;
    if (v !== undefined && v.liveIncrs.length > 0) {
      for (const e of v.liveSets) ctx.add(e.id);
      for (const e of v.liveIncrs) if (e.actor === actor) ctx.add(e.id);
    } else {
      if (v !== undefined && v.liveSets.length > 0) {
        const text = new TextDecoder().decode(HashModel.shown(v) as Uint8Array);
        if (!/^(0|-?[1-9][0-9]*)$/.test(text) || BigInt(text) > (1n << 63n) - 1n || BigInt(text) < -(1n << 63n)) return "refused";
        effective += BigInt(text);
        for (const e of v.liveSets) ctx.add(e.id);
      }
      this.resets(seen, f, resetUpTo);
    }
    const key = `${f}/${actor as number}`;
    // The delta carries the actor's whole row, its reset counts included.
    let from = 0;
    for (const id of seen) from = Math.max(from, (this.events[id] as HashEvent).resetUpTo.get(key) ?? 0);
    if (from > (resetUpTo.get(key) ?? 0)) resetUpTo.set(key, from);
    const index = (this.incrIndex.get(key) ?? 0) + 1;
    this.incrIndex.set(key, index);
    return [this.add({ kind: "incr", field: f, actor, ...this.none(), amount: effective, index, ctx, resetUpTo })];
  }

  /** HDEL: one event per field present in the view (none: the op changes nothing). */
  hdel(seen: ReadonlySet<number>, actor: ActorId, fields: readonly Uint8Array[]): number[] {
    const ids: number[] = [];
    for (const f of new Set(fields.map(hex))) {
      const live = this.liveOn(seen, f);
      if (live.length === 0) continue;
      const resetUpTo = new Map<string, number>();
      this.resets(seen, f, resetUpTo);
      ids.push(this.add({ kind: "del", field: f, actor, ...this.none(), ctx: new Set(live.map((e) => e.id)), resetUpTo }));
    }
    return ids;
  }

  /** Whole-key delete: covers everything the replica's context holds, resets every field. */
  hclear(seen: ReadonlySet<number>, actor: ActorId): number[] {
    if (this.liveIn(seen).size === 0) return [];
    const ctx = new Set<number>();
    const fields = new Set<string>();
    for (const id of seen) {
      const e = this.events[id] as HashEvent;
      for (const c of e.ctx) ctx.add(c);
      if (e.field !== "") fields.add(e.field);
      for (const k of e.resetUpTo.keys()) fields.add(k.slice(0, k.indexOf("/")));
    }
    const resetUpTo = new Map<string, number>();
    for (const f of fields) this.resets(seen, f, resetUpTo);
    return [this.add({ kind: "clear", field: "", actor, ...this.none(), ctx, resetUpTo })];
  }

  /** The view of a replica that received every event. */
  all(): Set<number> {
    return new Set(this.events.map((e) => e.id));
  }
}
