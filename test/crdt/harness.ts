// A small world of replicas for each CRDT type, driven by fast-check commands: it yields
// realistic states (unique dots, monotonic clocks) for the law and convergence properties,
// and tracks a simple reference model of what the value must be.
//
// The model is observed-remove: every write, increment and decrement is an event; each
// replica knows the events it has observed; a delete covers the events its replica had
// observed, and so does a register write (it replaces what it saw). The value is built from
// the events nobody covered: counters sum them, an LWW register shows the greatest by
// (timestamp, actor), an MV register shows them all. A set's add is an event per member that
// covers the adds of that member its replica had observed (it re-dots them); a set remove is
// a delete of just those members' adds; a set shows the members of its uncovered adds.

import fc from "fast-check";
import {
  actorName, CausalContext, Deadline, deadlineOf, GCounter, HybridClock, internActor, LwwRegister, MvRegister, OrMap, OrSet, PNCounter, CrdtError,
  type ActorId,
} from "../../src/crdt/index.ts";
import { HashModel, hashOpArb, hex, type HashOp } from "./hash-model.ts";
import { decodeState, encodeState } from "../../src/codec/index.ts";
import { allKinds, joinStates, kindOf, type CrdtState, type KindName } from "../../src/kinds/index.ts";

// Actor ids biased to collisions and to order edge cases (non-ASCII, prefixes).
export const actorPool: ActorId[] = ["a", "b", "c", "ab", "é-node", "z"].map(internActor);

/** A value drawn from a small set, so equal values are common. */
export const valueArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.constantFrom(new Uint8Array(0), Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(1, 2)),
  fc.uint8Array({ maxLength: 8 }),
);

export type Op =
  | { t: "inc"; amount: bigint }
  | { t: "dec"; amount: bigint }
  | { t: "set"; value: Uint8Array; advanceMs: number }
  | { t: "mv"; value: Uint8Array; stale: boolean }
  | { t: "sadd"; members: Uint8Array[] }
  | { t: "srem"; members: Uint8Array[] }
  | { t: "del" }
  /** A key's deadline (src/crdt/deadline.ts): set one (null: "no deadline"), or execute it. */
  | { t: "dl"; atMs: number | null }
  | { t: "dlexp" }
  | HashOp;

/** Set members from a pool of three, so one member is added and removed on several replicas at once. */
export const memberPool: Uint8Array[] = [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(1, 2)];
const membersArb = fc.array(fc.constantFrom(...memberPool), { minLength: 1, maxLength: 3 });
const memberText = (m: Uint8Array): string => Array.from(m).join(",");

export interface TypeSpec {
  /** The registered kind (src/kinds) this spec drives. */
  kind: KindName;
  name: string;
  create(): CrdtState;
  opArb: fc.Arbitrary<Op>;
}

const amountArb = fc.oneof(fc.constantFrom(1n, 2n), fc.bigInt({ min: 1n, max: 1000n }));
// Time advances of 0 are common, so equal HLC milliseconds (and logical tie-breaks) happen.
const advanceArb = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 }));

/** Each kind's ops, with deletes mixed in often enough that several replicas delete the same events. */
function withDeletes(ops: fc.Arbitrary<Op>): fc.Arbitrary<Op> {
  return fc.oneof({ weight: 4, arbitrary: ops }, { weight: 1, arbitrary: fc.constant({ t: "del" } as Op) });
}

/** A spec per registered kind: the compiler refuses a kind without one (the Record's keys are KindName). */
const specByKind: Record<KindName, TypeSpec> = {
  gcounter: { kind: "gcounter", name: "GCounter", create: () => new GCounter(), opArb: withDeletes(amountArb.map((amount) => ({ t: "inc", amount }) as Op)) },
  pncounter: {
    kind: "pncounter",
    name: "PNCounter",
    create: () => new PNCounter(),
    opArb: withDeletes(fc.oneof(amountArb.map((amount) => ({ t: "inc", amount }) as Op), amountArb.map((amount) => ({ t: "dec", amount }) as Op))),
  },
  lww: {
    kind: "lww",
    name: "LwwRegister",
    create: () => new LwwRegister(),
    opArb: withDeletes(fc.record({ value: valueArb, advanceMs: advanceArb }).map((x) => ({ t: "set", ...x }) as Op)),
  },
  mv: {
    kind: "mv",
    name: "MvRegister",
    create: () => new MvRegister(),
    opArb: withDeletes(fc.record({ value: valueArb, stale: fc.boolean() }).map((x) => ({ t: "mv", ...x }) as Op)),
  },
  set: {
    kind: "set",
    name: "OrSet",
    create: () => new OrSet(),
    opArb: withDeletes(fc.oneof(
      { weight: 3, arbitrary: membersArb.map((members) => ({ t: "sadd", members }) as Op) },
      { weight: 2, arbitrary: membersArb.map((members) => ({ t: "srem", members }) as Op) },
    )),
  },
  hash: { kind: "hash", name: "OrMap (hash)", create: () => new OrMap(), opArb: hashOpArb },
  deadline: {
    kind: "deadline",
    name: "Deadline",
    create: () => new Deadline(),
    // Few distinct deadlines, so equal ones and "none" beside others are common.
    opArb: withDeletes(fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(null, 5_000, 7_000, 9_000).map((atMs) => ({ t: "dl", atMs }) as Op) },
      { weight: 1, arbitrary: fc.constant({ t: "dlexp" } as Op) },
    )),
  },
};

/** Every registered kind's spec, in the registry's order: the law suite runs over all of them. */
export const specs: TypeSpec[] = allKinds.map((k) => specByKind[k.name]);

export function clone(s: CrdtState): CrdtState {
  return kindOf(s).clone(s);
}

export function merge(a: CrdtState, b: CrdtState): boolean {
  return joinStates(a, b);
}

export function join(a: CrdtState, b: CrdtState): CrdtState {
  const c = clone(a);
  merge(c, b);
  return c;
}

/** Equality both ways: the type's equals and equal canonical bytes. */
export function same(a: CrdtState, b: CrdtState): boolean {
  const eq = a.kind === b.kind && kindOf(a).equals(a, b);
  const bytesEq = Buffer.from(encodeState(a)).equals(Buffer.from(encodeState(b)));
  if (eq !== bytesEq) throw new Error(`equals (${eq}) disagrees with canonical bytes (${bytesEq})`);
  return eq;
}

export function roundTrip(s: CrdtState): CrdtState {
  return decodeState(kindOf(s).type, encodeState(s));
}

/** One replica: its state, its actor, its HLC and local time, and the events it has observed (model). */
export interface Replica {
  actor: ActorId;
  state: CrdtState;
  clock: HybridClock;
  nowMs: number;
  /** Reference model: ids of the events (writes, increments, decrements) this replica has observed. */
  seen: Set<number>;
  /** A stale read context kept for "stale" MV writes. */
  staleCtx: CausalContext | null;
  staleSeen: Set<number>;
}

/** One event of the reference model. */
export interface Event {
  id: number;
  t: "inc" | "dec" | "write" | "del";
  /** A set add's member (its value), or a set remove's members (a "del" of just their adds). */
  actor: ActorId;
  /** inc, dec: the amount. */
  amount: bigint;
  /** write: the value and (LWW) its timestamp. */
  value: Uint8Array;
  ms: number;
  logical: number;
  /** write, del: ids of the events this one replaces or removes (what its replica had observed). */
  covers: Set<number>;
}

export interface Delta {
  state: CrdtState;
  /** Reference model: the events joining this delta makes its receiver observe. */
  seen: Set<number>;
}

export class World {
  readonly replicas: Replica[];
  readonly events: Event[] = [];
  /** Hash reference model; replicas' `seen` hold the ids of its events they received. */
  readonly hash = new HashModel();

  constructor(readonly spec: TypeSpec, n: number, skewMs: number[] = []) {
    this.replicas = [];
    for (let i = 0; i < n; i++) {
      this.replicas.push({
        actor: actorPool[i % actorPool.length] as ActorId,
        state: spec.create(),
        clock: new HybridClock(60_000),
        nowMs: 1_000_000 + (skewMs[i] ?? 0),
        seen: new Set(),
        staleCtx: null,
        staleSeen: new Set(),
      });
    }
  }

  /** Applies op at replica i; returns the delta (or null if refused, or a delete of nothing). */
  apply(i: number, op: Op): Delta | null {
    const r = this.replicas[i] as Replica;
    const s = r.state;
    const id = this.events.length;
    const event = (t: Event["t"], more: Partial<Event> = {}): Event => {
      const e: Event = { id, t, actor: r.actor, amount: 0n, value: new Uint8Array(0), ms: 0, logical: 0, covers: new Set(), ...more };
      this.events.push(e);
      return e;
    };
    // A counter row carries all of its actor's increments and decrements so far: a prefix.
    const ownSoFar = (t: "inc" | "dec"): Set<number> => {
      const out = new Set<number>();
      for (const e of this.events) if (e.t === t && e.actor === r.actor) out.add(e.id);
      return out;
    };
    try {
      if (op.t === "inc" && (s.kind === "gcounter" || s.kind === "pncounter")) {
        const d = s.inc(r.actor, op.amount);
        event("inc", { amount: op.amount });
        r.seen.add(id);
        // The delta is the actor's whole row: its decrements so far too (PNCounter bump).
        return { state: d, seen: s.kind === "pncounter" ? new Set([...ownSoFar("inc"), ...ownSoFar("dec")]) : ownSoFar("inc") };
      }
      if (op.t === "dec" && s.kind === "pncounter") {
        const d = s.dec(r.actor, op.amount);
        event("dec", { amount: op.amount });
        r.seen.add(id);
        return { state: d, seen: new Set([...ownSoFar("inc"), ...ownSoFar("dec")]) };
      }
      if (op.t === "set" && s.kind === "lww") {
        r.nowMs += op.advanceMs;
        const ts = r.clock.now(r.nowMs);
        const covers = new Set(r.seen);
        const d = s.set(r.actor, op.value, ts);
        event("write", { value: op.value, ms: ts.ms, logical: ts.logical, covers });
        r.seen.add(id);
        return { state: d, seen: new Set([...covers, id]) };
      }
      if (op.t === "mv" && s.kind === "mv") {
        const useStale = op.stale && r.staleCtx !== null;
        const covers = new Set(useStale ? r.staleSeen : r.seen);
        const d = s.write(r.actor, op.value, useStale ? r.staleCtx : null);
        event("write", { value: op.value, covers });
        r.seen = new Set([...r.seen, ...covers, id]);
        // Remember this read for a later stale write.
        r.staleCtx = s.read().context;
        r.staleSeen = new Set(r.seen);
        return { state: d, seen: new Set([...covers, id]) };
      }
      if ((op.t === "sadd" || op.t === "srem") && s.kind === "set") {
        // Each covers the adds of its members this replica observed (a superset of the dots it
        // holds of them: the rest were covered already).
        const names = new Set(op.members.map(memberText));
        const covers = new Set<number>();
        for (const e of this.events) if (e.t === "write" && names.has(memberText(e.value)) && r.seen.has(e.id)) covers.add(e.id);
        const d = op.t === "sadd" ? s.add(r.actor, op.members) : s.remove(op.members);
        const seen = new Set(covers);
        if (op.t === "srem") event("del", { covers });
        else {
          for (const member of names) {
            const add = event("write", { id: this.events.length, value: Uint8Array.from(member.split(",").map(Number)), covers });
            seen.add(add.id);
            r.seen.add(add.id);
          }
        }
        return { state: d, seen };
      }
      if ((op.t === "dl" || op.t === "dlexp") && s.kind === "deadline") {
        // Setting replaces what this replica saw (an MV write); executing removes it (a delete that also marks).
        const covers = new Set(r.seen);
        if (op.t === "dlexp") {
          const d = s.expire();
          event("del", { covers });
          return d === null ? null : { state: d, seen: covers };
        }
        const d = s.set(r.actor, op.atMs);
        event("write", { value: deadlineValueOf(op.atMs), covers });
        r.seen.add(id);
        return { state: d, seen: new Set([...covers, id]) };
      }
      if (op.t === "del") {
        // Covers what this replica observed, whether or not anything of it is still present
        // (if the state says nothing is, the model must agree: the delete changes nothing).
        const covers = new Set(r.seen);
        const d = kindOf(s).removeObserved(s);
        event("del", { covers });
        return d === null ? null : { state: d, seen: covers };
      }
      if (s.kind === "hash" && (op.t === "hset" || op.t === "hincrby" || op.t === "hdel" || op.t === "hclear")) return this.applyHash(r, s, op);
    } catch (e) {
      if (e instanceof CrdtError) return null;
      throw e;
    }
    throw new Error(`op ${op.t} does not fit ${this.spec.name}`);
  }

  /**
   * A hash op at r: first checks r shows what the model says a replica that received r.seen
   * shows, then applies the op to both; a refusal must be the model's too.
   */
  private applyHash(r: Replica, s: OrMap, op: HashOp): Delta | null {
    const want = this.hash.render(r.seen);
    const got = renderHash(s);
    if (got !== want) throw new Error(`replica ${actorName(r.actor)} shows ${got}, the model ${want}`);
    let ids: number[] | "refused";
    let delta: OrMap | null;
    switch (op.t) {
      case "hset": {
        r.nowMs += op.advanceMs;
        const ts = r.clock.now(r.nowMs);
        ids = this.hash.hset(r.seen, r.actor, ts, op.pairs);
        delta = s.set(r.actor, ts, op.pairs).delta;
        break;
      }
      case "hincrby":
        ids = this.hash.hincrby(r.seen, r.actor, op.field, op.amount);
        try {
          delta = s.incr(r.actor, op.field, op.amount).delta;
        } catch (e) {
          if (e instanceof CrdtError && ids === "refused") return null;
          throw e;
        }
        if (ids === "refused") throw new Error(`HINCRBY was applied; the model refuses it (shown ${got})`);
        break;
      case "hdel":
        ids = this.hash.hdel(r.seen, r.actor, op.fields);
        delta = s.del(op.fields).delta;
        break;
      case "hclear":
        ids = this.hash.hclear(r.seen, r.actor);
        delta = s.removeObserved();
        break;
    }
    if ((delta === null) !== (ids.length === 0)) throw new Error(`${op.t}: the implementation's delta is ${delta === null ? "null" : "not null"}, the model made ${ids.length} events`);
    for (const id of ids) r.seen.add(id);
    return delta === null ? null : { state: delta, seen: new Set(ids) };
  }

  deliver(i: number, d: Delta): void {
    const r = this.replicas[i] as Replica;
    merge(r.state, d.state);
    if (d.state.kind === "lww") {
      const top = d.state.maxTimestamp();
      if (top !== null) r.clock.observe(top, r.nowMs);
    }
    if (d.state.kind === "hash") for (const f of d.state.fields) for (const e of f.entries) r.clock.observe({ ms: e.ms, logical: e.logical }, r.nowMs);
    for (const x of d.seen) r.seen.add(x);
  }

  /** Everyone's full state to replica 0, then replica 0's to everyone. */
  fullExchange(): void {
    const r0 = this.replicas[0] as Replica;
    for (const r of this.replicas.slice(1)) {
      merge(r0.state, r.state);
      for (const x of r.seen) r0.seen.add(x);
    }
    for (const r of this.replicas.slice(1)) {
      merge(r.state, r0.state);
      r.seen = new Set(r0.seen);
    }
  }

  /** Ids of the events some write or delete covered. */
  private covered(): Set<number> {
    const out = new Set<number>();
    for (const e of this.events) for (const c of e.covers) out.add(c);
    return out;
  }

  /** The events nobody covered: what the converged state must show. */
  private live(): Event[] {
    const covered = this.covered();
    return this.events.filter((e) => e.t !== "del" && !covered.has(e.id));
  }

  /** The reference model's value, in the form `observed` returns. */
  expected(): string {
    const live = this.live();
    switch (this.spec.kind) {
      case "gcounter":
      case "pncounter": {
        let v = 0n;
        for (const e of live) v += e.t === "inc" ? e.amount : -e.amount;
        return String(v);
      }
      case "lww": {
        let best: Event | null = null;
        for (const w of live) {
          if (best === null || w.ms > best.ms || (w.ms === best.ms && (w.logical > best.logical || (w.logical === best.logical && actorName(w.actor) > actorName(best.actor))))) best = w;
        }
        return best === null ? "unset" : Array.from(best.value).join(",");
      }
      case "mv":
        return live.map((w) => Array.from(w.value).join(",")).sort().join("|");
      case "set":
        // Present iff some add of it was observed by no later add, remove or delete (add wins).
        return [...new Set(live.map((w) => memberText(w.value)))].sort().join("|");
      case "hash":
        return this.hash.render(this.hash.all());
      case "deadline":
        return deadlineText(live.map((w) => deadlineOf(w.value)));
    }
  }

  /** Whether the converged state must be present (src/kinds present()): some event is uncovered. */
  expectedPresent(): boolean {
    if (this.spec.kind === "deadline") return false; // a deadline alone never makes a key present
    if (this.spec.kind === "hash") return this.hash.render(this.hash.all()) !== "";
    return this.live().length > 0;
  }
}

export function observed(s: CrdtState): string {
  switch (s.kind) {
    case "gcounter":
    case "pncounter":
      return String(s.value());
    case "lww":
      return s.isSet ? Array.from(s.value).join(",") : "unset";
    case "mv":
      return s.read().values.map((v) => Array.from(v).join(",")).sort().join("|");
    case "set":
      return s.members().map(memberText).sort().join("|");
    case "hash":
      return renderHash(s);
    case "deadline":
      return deadlineText(s.reg.entries.map((e) => deadlineOf(e.value)));
  }
}

function deadlineValueOf(atMs: number | null): Uint8Array {
  const d = new Deadline();
  d.set(internActor("model"), atMs);
  return (d.reg.entries[0] as { value: Uint8Array }).value;
}

/** The deadline in force among live entries, as text: the longest, "none" beating any. */
function deadlineText(values: (number | null)[]): string {
  if (values.length === 0 || values.includes(null)) return "none";
  return String(Math.max(...(values as number[])));
}

/** A hash's present fields as the model renders them: hex(field)=value bytes, sorted. */
export function renderHash(s: OrMap): string {
  return s.getAll().map((p) => `${hex(p.field)}=${Array.from(p.value).join(",")}`).sort().join(";");
}

/** A command for the convergence world: an op at a replica, or a delivery of a pending delta. */
export type Cmd =
  | { c: "op"; replica: number; op: Op }
  | { c: "deliver"; pick: number; replica: number; keep: boolean }
  | { c: "drop"; pick: number };

export function cmdArb(spec: TypeSpec): fc.Arbitrary<Cmd> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ c: fc.constant("op" as const), replica: fc.nat(4), op: spec.opArb }) },
    { weight: 4, arbitrary: fc.record({ c: fc.constant("deliver" as const), pick: fc.nat(), replica: fc.nat(4), keep: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ c: fc.constant("drop" as const), pick: fc.nat() }) },
  );
}

/**
 * Runs commands in a world of n replicas; pending deltas may be duplicated (keep), reordered,
 * dropped. `after` (optional) runs after each command, e.g. to check every replica.
 */
export function runWorld(world: World, cmds: Cmd[], after?: () => void): void {
  const n = world.replicas.length;
  const pending: Delta[] = [];
  for (const cmd of cmds) {
    after?.();
    if (cmd.c === "op") {
      const d = world.apply(cmd.replica % n, cmd.op);
      if (d !== null) pending.push(d);
    } else if (pending.length > 0) {
      const k = cmd.pick % pending.length;
      if (cmd.c === "deliver") {
        world.deliver(cmd.replica % n, pending[k] as Delta);
        if (!cmd.keep) pending.splice(k, 1);
      } else pending.splice(k, 1);
    }
  }
}
