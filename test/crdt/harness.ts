// A small world of replicas for each CRDT type, driven by fast-check commands: it yields
// realistic states (unique dots, monotonic clocks) for the law and convergence properties,
// and tracks a simple reference model of what the value must be.

import fc from "fast-check";
import {
  actorName, CausalContext, GCounter, HybridClock, internActor, LwwRegister, MvRegister, OrMap, PNCounter, CrdtError,
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
  | HashOp;

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

/** A spec per registered kind: the compiler refuses a kind without one (the Record's keys are KindName). */
const specByKind: Record<KindName, TypeSpec> = {
  gcounter: { kind: "gcounter", name: "GCounter", create: () => new GCounter(), opArb: amountArb.map((amount) => ({ t: "inc", amount }) as Op) },
  pncounter: {
    kind: "pncounter",
    name: "PNCounter",
    create: () => new PNCounter(),
    opArb: fc.oneof(amountArb.map((amount) => ({ t: "inc", amount }) as Op), amountArb.map((amount) => ({ t: "dec", amount }) as Op)),
  },
  lww: {
    kind: "lww",
    name: "LwwRegister",
    create: () => new LwwRegister(),
    opArb: fc.record({ value: valueArb, advanceMs: advanceArb }).map((x) => ({ t: "set", ...x }) as Op),
  },
  mv: {
    kind: "mv",
    name: "MvRegister",
    create: () => new MvRegister(),
    opArb: fc.record({ value: valueArb, stale: fc.boolean() }).map((x) => ({ t: "mv", ...x }) as Op),
  },
  hash: { kind: "hash", name: "OrMap (hash)", create: () => new OrMap(), opArb: hashOpArb },
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

/** One replica: its state, its actor, its HLC and local time, and what it has seen (MV model). */
export interface Replica {
  actor: ActorId;
  state: CrdtState;
  clock: HybridClock;
  nowMs: number;
  /** MV reference model: ids of the writes this replica has seen. */
  seen: Set<number>;
  /** A stale read context kept for "stale" MV writes. */
  staleCtx: CausalContext | null;
  staleSeen: Set<number>;
}

export interface Write {
  id: number;
  actor: ActorId;
  value: Uint8Array;
  ms: number;
  logical: number;
  /** MV: ids of writes this one replaces. */
  covers: Set<number>;
}

export interface Delta {
  state: CrdtState;
  /** MV reference model: the write id and what it covers. */
  writeId: number;
  seen: Set<number>;
}

export class World {
  readonly replicas: Replica[];
  readonly writes: Write[] = [];
  incTotal = 0n;
  decTotal = 0n;
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

  /** Applies op at replica i; returns the delta (or null if refused). */
  apply(i: number, op: Op): Delta | null {
    const r = this.replicas[i] as Replica;
    const s = r.state;
    const id = this.writes.length;
    try {
      if (op.t === "inc" && (s.kind === "gcounter" || s.kind === "pncounter")) {
        const d = s.inc(r.actor, op.amount);
        this.incTotal += op.amount;
        return { state: d, writeId: -1, seen: new Set() };
      }
      if (op.t === "dec" && s.kind === "pncounter") {
        const d = s.dec(r.actor, op.amount);
        this.decTotal += op.amount;
        return { state: d, writeId: -1, seen: new Set() };
      }
      if (op.t === "set" && s.kind === "lww") {
        r.nowMs += op.advanceMs;
        const ts = r.clock.now(r.nowMs);
        const d = s.set(r.actor, op.value, ts);
        this.writes.push({ id, actor: r.actor, value: op.value, ms: ts.ms, logical: ts.logical, covers: new Set() });
        return { state: d, writeId: id, seen: new Set() };
      }
      if (op.t === "mv" && s.kind === "mv") {
        const useStale = op.stale && r.staleCtx !== null;
        const covers = new Set(useStale ? r.staleSeen : r.seen);
        const d = s.write(r.actor, op.value, useStale ? r.staleCtx : null);
        this.writes.push({ id, actor: r.actor, value: op.value, ms: 0, logical: 0, covers });
        r.seen = new Set([...r.seen, ...covers, id]);
        // Remember this read for a later stale write.
        r.staleCtx = s.read().context;
        r.staleSeen = new Set(r.seen);
        return { state: d, writeId: id, seen: new Set([...covers, id]) };
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
    return delta === null ? null : { state: delta, writeId: -1, seen: new Set(ids) };
  }

  deliver(i: number, d: Delta): void {
    const r = this.replicas[i] as Replica;
    merge(r.state, d.state);
    if (d.state.kind === "lww" && d.state.isSet) r.clock.observe(d.state.timestamp(), r.nowMs);
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

  /** The reference model's value, in the form `observed` returns. */
  expected(): string {
    switch (this.spec.kind) {
      case "gcounter":
      case "pncounter":
        return String(this.incTotal - this.decTotal);
      case "lww": {
        let best: Write | null = null;
        for (const w of this.writes) {
          if (best === null) { best = w; continue; }
          const key = (x: Write): [number, number, string, string] => [x.ms, x.logical, actorName(x.actor), Array.from(x.value).map((b) => (b + 256).toString(16)).join("")];
          const a = key(w);
          const b = key(best);
          if (a[0] > b[0] || (a[0] === b[0] && (a[1] > b[1] || (a[1] === b[1] && (a[2] > b[2] || (a[2] === b[2] && a[3] > b[3])))))) best = w;
        }
        return best === null ? "unset" : Array.from(best.value).join(",");
      }
      case "mv": {
        const covered = new Set<number>();
        for (const w of this.writes) for (const c of w.covers) covered.add(c);
        return this.writes.filter((w) => !covered.has(w.id)).map((w) => Array.from(w.value).join(",")).sort().join("|");
      }
      case "hash":
        return this.hash.render(this.hash.all());
    }
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
    case "hash":
      return renderHash(s);
  }
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
