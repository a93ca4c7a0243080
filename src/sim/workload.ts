// The product's client ops inside the simulator: every CRDT kind, plus the inputs issue 12 found
// destroying acknowledged writes (stray other-type ops on lagging nodes, blind MV storms,
// over-range counters, contexts forged from another key), with a history and the checks that no
// acknowledged write is lost, nothing phantom appears, and a refused op changes nothing.
//
// It drives the real engine of each simulated node through the node's own op path (src/node/ops.ts
// toManyOp -> Engine.applyMany -> outcomeOf, as applyOps in src/node/node.ts), so an op counts as
// acknowledged exactly when a client would have been told so, and publishes the deltas the way
// the node does after its WAL append.

import type { Engine, ManyOp, ManyResult } from "../engine/index.ts";
import { outcomeOf, toManyOp } from "../node/ops.ts";
import type { ClientOp } from "../transport/api.ts";
import type { Rng } from "./rng.ts";

/** What the workload needs from the harness that runs it (the Simulation). */
export interface ProductHost {
  readonly nodeCount: number;
  /** The node is up and not stalled: it can take a client op now. */
  canServe(i: number): boolean;
  engine(i: number): Engine;
  /** Sends a local op's delta to the peers, as the node does once its WAL append is durable. */
  publish(i: number, delta: Uint8Array): void;
  /** The node's process is up (its engine holds its data), stalled or not. */
  isRunning(i: number): boolean;
  /**
   * Nodes i and j are members of one cluster now: each lists the other alive and merges its
   * data (an anti-entropy round between them could finish). After a partition longer than the
   * reap timeout two sides can each run on without the other until they meet again.
   */
  connected(i: number, j: number): boolean;
  nowMs(): number;
}

/** Keys per family; small so ops collide. */
const counterKeys = 3;
const bigCounterKeys = 1;
const registerKeys = 3;
const mvKeys = 3;
/** Keys that are deleted and rewritten with any type. */
const deletableKeys = 3;
/** Set keys that carry deadlines (expiry churn, issue 14). */
const ttlKeys = 2;
/** Nodes' clocks differ by up to this much either way, for expiry decisions (issue 14: ±60 s). */
const ttlSkewMsMax = 60_000;
/** 2^62: two concurrent increments by it on different replicas merge past int64 max. */
const bigStep = 1n << 62n;

type Family = "counter" | "big" | "lww" | "mv";

interface Written {
  /** Which life of which node acknowledged it: `n<i>#<life>`; a life ends when its data is lost. */
  life: string;
  ok: boolean;
}

interface CounterOp extends Written {
  key: string;
  amount: bigint; // signed
}

interface RegisterWrite extends Written {
  key: string;
  value: string;
  ms: number;
  logical: number;
}

interface MvWrite extends Written {
  key: string;
  value: string;
  /** Values the context this write carried was read with (it may replace exactly those). */
  read: readonly string[];
}

interface StrayWrite extends Written {
  key: string;
  kind: ClientOp["kind"];
}

/**
 * An op on a deletable key, in issue order. A "sealed" delete ran on a replica that had first
 * merged every running replica's state of the key: it observed every write that existed, so no
 * write before it may ever show again.
 */
interface DeletableOp extends Written {
  key: string;
  what: "incr" | "set" | "setMv" | "sadd" | "srem" | "del" | "sealed";
  value: string;
  amount: bigint;
}

/** An acknowledged-or-refused op on a TTL key; adds carry a unique member. */
interface TtlOp extends Written {
  key: string;
  what: "add" | "expire" | "persist";
  member: string;
}

const dec = new TextDecoder();
const enc = new TextEncoder();

export class ProductWorkload {
  readonly violations: string[] = [];
  private readonly counters: CounterOp[] = [];
  private readonly registers: RegisterWrite[] = [];
  private readonly mvs: MvWrite[] = [];
  private readonly strays: StrayWrite[] = [];
  private readonly deletables: DeletableOp[] = [];
  private readonly ttlOps: TtlOp[] = [];
  /** Each node's clock offset for expiry (deadlines are set and executed on the node's own clock). */
  private readonly skews: number[];
  /** Deadlines executed by the nodes' sweeps. */
  expiriesSwept = 0;
  /** Lives whose data was lost (a wiped or restored disk): their unreplicated writes may be gone. */
  private readonly lostLives = new Set<string>();
  private readonly lives: number[];
  private seq = 0;
  opsRefused = 0;

  constructor(
    private readonly host: ProductHost,
    private readonly rng: Rng,
  ) {
    this.lives = Array.from({ length: host.nodeCount }, () => 0);
    this.skews = Array.from({ length: host.nodeCount }, () => rng.int(2 * ttlSkewMsMax + 1) - ttlSkewMsMax);
  }

  /**
   * Node i's clock for expiry: virtual time plus its offset, shifted by ttlSkewMsMax so it is
   * never negative (virtual time starts at 0). Within the HLC's remote-ahead bound (10 min).
   */
  private clock(i: number): number {
    return this.host.nowMs() + ttlSkewMsMax + (this.skews[i] as number);
  }

  private life(i: number): string {
    return `n${i}#${this.lives[i]}`;
  }

  /** Each node's life when the established keys were written (see everyEstablishedCopyLost). */
  private livesAtEstablish: string[] = [];

  /**
   * Every node's data was destroyed at least once since the keys were established: the
   * established keys may be gone everywhere, and a stray op may have created one afresh with
   * another type. Only then is "established as X" not required.
   *
   * A product reset counts as well as an injected loss (wiped, restored, repaired): a reaped
   * member that returns discards its data (src/cluster/gc.ts), and when the scenario had
   * already destroyed every other copy, the reset one was the last (seed 441841004: n0 wiped,
   * n1 restored then reset, then n2, partitioned away with the only counter, reaped and reset;
   * a stray SET on the emptied n1 is then the only state of the key left anywhere).
   */
  private everyEstablishedCopyLost(): boolean {
    return this.livesAtEstablish.length > 0 && this.livesAtEstablish.every((l) => this.lostLives.has(l));
  }

  /**
   * Node i lost its data: its current life ends. The scenario wiped or replaced its disk, or the
   * product discarded the data itself (a replica reset, src/cluster/gc.ts), which may lose the
   * life's unreplicated writes but never what other nodes still hold.
   */
  dataLost(i: number): void {
    this.lostLives.add(this.life(i));
    this.lives[i] = (this.lives[i] as number) + 1;
  }

  /** Creates every key once on node 0, so later writes of another type are strays on established keys. */
  establish(): void {
    this.livesAtEstablish = Array.from({ length: this.host.nodeCount }, (_, i) => this.life(i));
    for (let k = 0; k < counterKeys; k++) this.counter(0, `c${k}`, 1n);
    for (let k = 0; k < bigCounterKeys; k++) this.counter(0, `b${k}`, 1n);
    for (let k = 0; k < registerKeys; k++) this.set(0, `r${k}`);
    for (let k = 0; k < mvKeys; k++) this.mvWrite(0, `m${k}`, "blind");
  }

  /** One random client op on a random node (skipped if that node cannot serve). */
  step(): void {
    const i = this.rng.int(this.host.nodeCount);
    if (!this.host.canServe(i)) return;
    const r = this.rng.next();
    if (r < 0.3) this.counter(i, `c${this.rng.int(counterKeys)}`, BigInt(this.rng.int(9) - 3 || 1));
    else if (r < 0.36) this.counter(i, `b${this.rng.int(bigCounterKeys)}`, this.rng.chance(0.7) ? bigStep : -bigStep);
    else if (r < 0.6) this.set(i, `r${this.rng.int(registerKeys)}`);
    else if (r < 0.85) this.mvWrite(i, `m${this.rng.int(mvKeys)}`, this.rng.pick(["blind", "read", "read", "forged"] as const));
    else if (r < 0.88) this.stray(i);
    else if (r < 0.96) this.deletableWrite(i, `x${this.rng.int(deletableKeys)}`);
    else this.deletableDelete(i, `x${this.rng.int(deletableKeys)}`, this.rng.chance(0.3));
    if (this.rng.chance(0.06)) this.ttlStep(this.rng.int(this.host.nodeCount));
  }

  /**
   * Expiry churn on a random TTL key at node i, on i's skewed clock: an add of a unique member,
   * a deadline 0-20 s ahead (some already past), a persist, or the node's sweep (as its
   * background tick: executes what has come and publishes the deltas).
   */
  private ttlStep(i: number): void {
    if (!this.host.canServe(i)) return;
    const key = `t${this.rng.int(ttlKeys)}`;
    const r = this.rng.next();
    const now = this.clock(i);
    if (r < 0.25) {
      const { deltas } = this.host.engine(i).expireDue(now, 1000);
      this.expiriesSwept += deltas.length;
      for (const d of deltas) this.host.publish(i, d);
      return;
    }
    if (r < 0.7) {
      const member = `t${++this.seq}@n${i}`;
      this.ttlOps.push({ life: this.life(i), ok: this.applyAt(i, { kind: "sadd", key, members: [enc.encode(member)] }, now), key, what: "add", member });
    } else if (r < 0.92) {
      const atMs = now + this.rng.int(20_000) - 2_000;
      const cond = this.rng.pick([null, null, "nx", "xx", "gt", "lt"] as const);
      this.ttlOps.push({ life: this.life(i), ok: this.applyAt(i, { kind: "expire", key, atMs, cond }, now), key, what: "expire", member: "" });
    } else {
      this.ttlOps.push({ life: this.life(i), ok: this.applyAt(i, { kind: "persist", key }, now), key, what: "persist", member: "" });
    }
  }

  /** An engine op at node i at time nowMs, published as the node does; true if it succeeded. */
  private applyAt(i: number, op: ManyOp, nowMs: number): boolean {
    const e = this.host.engine(i);
    const before = e.encodeState(op.key);
    const { results, deltas } = e.applyMany([op], nowMs);
    const r = results[0] as ManyResult;
    if (!r.ok) {
      this.opsRefused++;
      if (deltas.length > 0 || !sameBytes(before, e.encodeState(op.key))) this.violation(`n${i}: ${op.kind} ${op.key} was refused (${r.error.message}) but changed the key`);
      return false;
    }
    for (const d of deltas) this.host.publish(i, d);
    return true;
  }

  /** A write of a random type to a deletable key (refused while the key shows another type). */
  private deletableWrite(i: number, key: string): void {
    const what = this.rng.pick(["incr", "set", "setMv", "sadd", "sadd", "srem"] as const);
    // Set members come from a small pool so adds and removes of one member meet.
    const value = what === "sadd" || what === "srem" ? `e${this.rng.int(4)}` : `x${++this.seq}@n${i}`;
    const amount = BigInt(1 + this.rng.int(5));
    const op: ClientOp = what === "incr" ? { kind: "increment", key, amount, counter: null }
      : what === "set" ? { kind: "set", key, value: enc.encode(value) }
      : what === "sadd" ? { kind: "sadd", key, members: [enc.encode(value)] }
      : what === "srem" ? { kind: "srem", key, members: [enc.encode(value)] }
      : { kind: "setMv", key, value: enc.encode(value), context: null };
    this.deletables.push({ life: this.life(i), ok: this.apply(i, op), key, what, value, amount });
  }

  /**
   * A delete; sealed: only when every node is running and in one cluster with this one, after
   * merging each one's state of the key (as a finished anti-entropy round would), so it observes
   * every write that exists.
   */
  private deletableDelete(i: number, key: string, sealed: boolean): void {
    const e = this.host.engine(i);
    let seal = sealed;
    for (let j = 0; j < this.host.nodeCount && seal; j++) if (!this.host.isRunning(j) || (j !== i && !this.host.connected(i, j))) seal = false;
    if (seal) {
      for (let j = 0; j < this.host.nodeCount; j++) {
        if (j === i) continue;
        const st = this.host.engine(j).encodeState(key);
        if (st !== undefined && !e.mergeState(key, st, this.host.nowMs()).ok) seal = false;
      }
    }
    this.deletables.push({ life: this.life(i), ok: this.apply(i, { kind: "delete", key }), key, what: seal ? "sealed" : "del", value: "", amount: 0n });
  }

  /**
   * Runs `op` on node i as the node would; true if the client would be told it succeeded. A
   * refused op must leave the key exactly as it was and produce no delta.
   */
  private apply(i: number, op: ClientOp): boolean {
    const e = this.host.engine(i);
    const before = e.encodeState(op.key);
    const nowMs = this.host.nowMs();
    const { results, deltas } = e.applyMany([toManyOp(op, nowMs)], nowMs);
    const outcome = outcomeOf(op, results[0]!, nowMs);
    if (!outcome.ok) {
      this.opsRefused++;
      if (deltas.length > 0 || !sameBytes(before, e.encodeState(op.key))) {
        this.violation(`n${i}: ${op.kind} ${op.key} was answered ${outcome.error.code} (${outcome.error.message}) but changed the key`);
      }
      return false;
    }
    for (const d of deltas) this.host.publish(i, d);
    return true;
  }

  private counter(i: number, key: string, amount: bigint): void {
    const op: ClientOp = amount > 0n ? { kind: "increment", key, amount, counter: null } : { kind: "decrement", key, amount: -amount };
    this.counters.push({ life: this.life(i), ok: this.apply(i, op), key, amount });
  }

  private set(i: number, key: string): void {
    const value = `v${++this.seq}@n${i}`;
    const ok = this.apply(i, { kind: "set", key, value: enc.encode(value) });
    // The write just won on this replica, so the register holds its timestamp now.
    const v = this.host.engine(i).get(key);
    this.registers.push({ life: this.life(i), ok, key, value, ms: ok && v?.type === "lww" ? v.timestampMs : 0, logical: ok && v?.type === "lww" ? v.logical : 0 });
  }

  private mvWrite(i: number, key: string, how: "blind" | "read" | "forged"): void {
    const value = `m${++this.seq}@n${i}`;
    let context: Uint8Array | null = null;
    let read: string[] = [];
    if (how !== "blind") {
      // "forged": the context of another key, as a careless or hostile client would send.
      const from = how === "read" ? key : `m${(Number(key.slice(1)) + 1) % mvKeys}`;
      const got = this.host.engine(i).get(from);
      if (got?.type === "mv") {
        context = got.context;
        if (how === "read") read = got.values.map((b) => dec.decode(b));
      }
    }
    this.mvs.push({ life: this.life(i), ok: this.apply(i, { kind: "setMv", key, value: enc.encode(value), context }), key, value, read });
  }

  /** An op of another type on an established key: a lagging or wiped node may accept it. */
  private stray(i: number): void {
    const pick = this.rng.int(3);
    const key = pick === 0 ? `r${this.rng.int(registerKeys)}` : pick === 1 ? `m${this.rng.int(mvKeys)}` : `c${this.rng.int(counterKeys)}`;
    const op: ClientOp = pick === 2 ? { kind: "set", key, value: enc.encode(`stray${++this.seq}`) } : { kind: "increment", key, amount: 1n, counter: null };
    this.strays.push({ life: this.life(i), ok: this.apply(i, op), key, kind: op.kind });
  }

  private violation(msg: string): void {
    if (this.violations.length < 50) this.violations.push(msg);
  }

  /**
   * Checks a converged replica: every key keeps its established type; counters equal the
   * acknowledged ops (exactly, except for what lives that lost their data may have lost);
   * registers hold a written value no older than any surviving acknowledged write; MV siblings
   * are written values, and an acknowledged value is gone only if a write that read it replaced it.
   */
  check(e: Engine): string[] {
    const out: string[] = [];
    const lost = (w: Written) => this.lostLives.has(w.life);
    for (const family of ["counter", "big"] as Family[]) {
      const n = family === "counter" ? counterKeys : bigCounterKeys;
      for (let k = 0; k < n; k++) {
        const key = `${family === "counter" ? "c" : "b"}${k}`;
        const got = e.get(key);
        if (got === undefined || (got.type !== "pncounter" && got.type !== "gcounter")) {
          if (this.everyEstablishedCopyLost()) continue;
          out.push(`${key}: established as a counter, now ${got === undefined ? "missing" : `a ${got.type}`}`);
          continue;
        }
        let lo = 0n;
        let hi = 0n;
        for (const op of this.counters) {
          if (op.key !== key || !op.ok) continue;
          if (!lost(op)) { lo += op.amount; hi += op.amount; }
          else if (op.amount > 0n) hi += op.amount;
          else lo += op.amount;
        }
        if (got.value < lo || got.value > hi) out.push(`${key} = ${got.value}, acknowledged ops allow ${lo === hi ? `exactly ${lo}` : `${lo}..${hi}`}`);
      }
    }
    for (let k = 0; k < registerKeys; k++) {
      const key = `r${k}`;
      const got = e.get(key);
      if (got?.type !== "lww") {
        if (this.everyEstablishedCopyLost()) continue;
        out.push(`${key}: established as an LWW register, now ${got === undefined ? "missing" : `a ${got.type}`}`);
        continue;
      }
      const value = dec.decode(got.value);
      const writes = this.registers.filter((w) => w.key === key && w.ok);
      if (!writes.some((w) => w.value === value)) out.push(`${key} holds "${value}", which no acknowledged write wrote`);
      for (const w of writes) {
        if (lost(w)) continue;
        if (got.timestampMs < w.ms || (got.timestampMs === w.ms && got.logical < w.logical)) {
          out.push(`${key}: acknowledged "${w.value}" at ${w.ms}.${w.logical} lost to "${value}" at ${got.timestampMs}.${got.logical}`);
          break;
        }
      }
    }
    for (let k = 0; k < mvKeys; k++) {
      const key = `m${k}`;
      const got = e.get(key);
      if (got?.type !== "mv") {
        if (this.everyEstablishedCopyLost()) continue;
        out.push(`${key}: established as an MV register, now ${got === undefined ? "missing" : `a ${got.type}`}`);
        continue;
      }
      const values = new Set(got.values.map((b) => dec.decode(b)));
      const writes = this.mvs.filter((w) => w.key === key && w.ok);
      const written = new Set(writes.map((w) => w.value));
      for (const v of values) if (!written.has(v)) out.push(`${key} holds "${v}", which no acknowledged write wrote`);
      const replaced = new Set(writes.flatMap((w) => w.read));
      for (const w of writes) {
        if (lost(w) || values.has(w.value) || replaced.has(w.value)) continue;
        out.push(`${key}: acknowledged "${w.value}" (n${w.life}) is gone, and no acknowledged write read it`);
      }
    }
    out.push(...this.checkDeletables(e));
    out.push(...this.checkTtl(e));
    return out;
  }

  /**
   * TTL keys: a converged replica shows only members some acknowledged add wrote, and never a
   * key whose deadline (the one it holds) has passed. That every replica holds the same state,
   * deadline included, is the scenario's convergence check.
   */
  private checkTtl(e: Engine): string[] {
    const out: string[] = [];
    const now = this.host.nowMs() + ttlSkewMsMax;
    for (let k = 0; k < ttlKeys; k++) {
      const key = `t${k}`;
      const got = e.get(key, now);
      if (got === undefined) continue;
      if (got.expiresAtMs !== undefined && got.expiresAtMs <= now) out.push(`${key} is readable at ${now}, past its deadline ${got.expiresAtMs}`);
      if (got.type !== "set") {
        out.push(`${key}: a TTL set key became a ${got.type}`);
        continue;
      }
      for (const b of got.members) {
        const v = dec.decode(b);
        if (!this.ttlOps.some((o) => o.key === key && o.ok && o.what === "add" && o.member === v)) out.push(`${key} shows "${v}", which no acknowledged add wrote`);
      }
    }
    return out;
  }

  /**
   * Deletable keys: what a replica shows comes only from acknowledged writes issued after the
   * key's last sealed delete (nothing that delete observed comes back, through any fault), and
   * a counter lies within what those writes allow.
   */
  private checkDeletables(e: Engine): string[] {
    const out: string[] = [];
    for (let k = 0; k < deletableKeys; k++) {
      const key = `x${k}`;
      const ops = this.deletables.filter((o) => o.key === key && o.ok);
      // A delete acknowledged by a life that later lost its data (a node that left, or was cut
      // off, then wiped before its delta went out) may be lost like any of its writes: only a
      // surviving sealed delete bounds what may show.
      let from = 0;
      for (let n = 0; n < ops.length; n++) {
        const o = ops[n] as DeletableOp;
        if (o.what === "sealed" && !this.lostLives.has(o.life)) from = n + 1;
      }
      const after = ops.slice(from);
      const got = e.get(key);
      if (got === undefined) continue;
      for (const side of [got, ...(got.conflicts ?? [])]) {
        switch (side.type) {
          case "lww": {
            const v = dec.decode(side.value);
            if (!after.some((o) => o.what === "set" && o.value === v)) out.push(`${key} shows "${v}", not written since its last sealed delete (${from} ops back)`);
            break;
          }
          case "mv":
            for (const b of side.values) {
              const v = dec.decode(b);
              if (!after.some((o) => o.what === "setMv" && o.value === v)) out.push(`${key} shows MV value "${v}", not written since its last sealed delete`);
            }
            break;
          case "set":
            for (const b of side.members) {
              const v = dec.decode(b);
              if (!after.some((o) => o.what === "sadd" && o.value === v)) out.push(`${key} shows set member "${v}", not added since its last sealed delete`);
            }
            break;
          case "gcounter":
          case "pncounter": {
            const hi = after.reduce((sum, o) => (o.what === "incr" ? sum + o.amount : sum), 0n);
            if (side.value < 0n || side.value > hi) out.push(`${key} = ${side.value}, increments since its last sealed delete allow 0..${hi}`);
            break;
          }
        }
      }
    }
    return out;
  }

  counts(): { acked: number; refused: number; strays: number } {
    const all: Written[] = [...this.counters, ...this.registers, ...this.mvs, ...this.strays, ...this.deletables, ...this.ttlOps];
    return { acked: all.filter((w) => w.ok).length, refused: this.opsRefused, strays: this.strays.filter((w) => w.ok).length };
  }
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
