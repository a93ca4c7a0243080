// Jepsen-style judges of a recorded history: counters stay within what was acknowledged and
// attempted, LWW never loses an acknowledged write to a causally earlier one, MV keeps every
// acknowledged write unless a write that read it replaced it, and healed replicas agree.
import type { FinalRead, Op, TtlFinal } from "./history.ts";
import { isDeletableKey } from "./workload.ts";

export type CheckerName = "counter" | "lww" | "mv" | "convergence" | "delete" | "set" | "expiry";

export interface Violation {
  checker: CheckerName;
  key: string;
  message: string;
}

/** Distinct subset sums tracked for the final-counter check; beyond it the check falls back to a range. */
export const subsetSumStatesMax = 200_000;
/** Violations reported per checker and key; one is enough to fail, a few help to debug. */
export const violationsPerKeyMax = 5;

function byKey<T extends { key: string }>(items: readonly T[]): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const list = m.get(it.key);
    if (list === undefined) m.set(it.key, [it]);
    else list.push(it);
  }
  return m;
}

type AddOp = Extract<Op, { kind: "add" }>;

/** Prefix sums over ops sorted by a time, answering "sum of f over ops with time < t" by binary search. */
class PrefixSums {
  private readonly times: number[];
  private readonly sums: bigint[];
  constructor(ops: readonly AddOp[], time: (o: AddOp) => number, f: (o: AddOp) => bigint) {
    const sorted = [...ops].sort((a, b) => time(a) - time(b));
    this.times = sorted.map(time);
    this.sums = [0n];
    for (const o of sorted) this.sums.push((this.sums[this.sums.length - 1] as bigint) + f(o));
  }
  /** Sum over ops whose time is strictly below t. */
  below(t: number): bigint {
    return this.upTo(t, false);
  }
  /** Sum over ops whose time is at most t (equal clock readings cannot order two events). */
  atOrBelow(t: number): bigint {
    return this.upTo(t, true);
  }
  private upTo(t: number, inclusive: boolean): bigint {
    let lo = 0;
    let hi = this.times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const x = this.times[mid] as number;
      if (x < t || (inclusive && x === t)) lo = mid + 1;
      else hi = mid;
    }
    return this.sums[lo] as bigint;
  }
}

const neg = (a: bigint): bigint => (a < 0n ? a : 0n);
const pos = (a: bigint): bigint => (a > 0n ? a : 0n);

/** Whether target - base is the sum of some subset of amounts (exact up to subsetSumStatesMax states, else a range test). */
export function isSubsetSum(amounts: readonly bigint[], gap: bigint): { ok: boolean; exact: boolean } {
  let reach = new Set<bigint>([0n]);
  for (const a of amounts) {
    const next = new Set(reach);
    for (const r of reach) next.add(r + a);
    if (next.size > subsetSumStatesMax) {
      const lo = amounts.reduce((s, x) => s + neg(x), 0n);
      const hi = amounts.reduce((s, x) => s + pos(x), 0n);
      return { ok: gap >= lo && gap <= hi, exact: false };
    }
    reach = next;
  }
  return { ok: reach.has(gap), exact: true };
}

/** Keys whose final reads differ between nodes, one violation per key. */
export function checkConvergence(finals: readonly FinalRead[]): Violation[] {
  const out: Violation[] = [];
  for (const [key, reads] of byKey(finals)) {
    const shown = reads.map((r) => `${r.node}=${describeFinal(r)}`);
    if (new Set(reads.map(describeFinal)).size > 1) out.push({ checker: "convergence", key, message: `nodes disagree after heal: ${shown.join(", ")}` });
  }
  return out;
}

function describeFinal(r: FinalRead): string {
  if (r.set !== undefined) return JSON.stringify([...r.set].sort());
  if (r.mv !== undefined) return JSON.stringify([...r.mv].sort());
  if (r.counter !== undefined) return String(r.counter ?? 0n);
  return JSON.stringify(r.lww ?? null);
}

/** Acknowledged adds of one node, as prefix sums by end time. */
class AckedOnNode {
  readonly all: PrefixSums;
  readonly neg: PrefixSums;
  readonly pos: PrefixSums;
  constructor(acked: readonly AddOp[]) {
    this.all = new PrefixSums(acked, (a) => a.endMs, (a) => a.amount);
    this.neg = new PrefixSums(acked, (a) => a.endMs, (a) => neg(a.amount));
    this.pos = new PrefixSums(acked, (a) => a.endMs, (a) => pos(a.amount));
  }
}

type CounterRead = Extract<Op, { kind: "readCounter" }>;

/**
 * Per node process, in real-time order: a read that began after another ended never shows less
 * (grow-only keys). Only reads known to come from one process are compared: a restarted process
 * may no longer have a value it showed before the crash but never acknowledged.
 */
function monotonicReads(key: string, reads: readonly CounterRead[]): Violation[] {
  const out: Violation[] = [];
  const known = reads.filter((r) => r.incarnation !== undefined);
  for (const [node, list] of byKey(known.map((r) => ({ ...r, key: `${r.node} (process ${r.incarnation})` })))) {
    const byStart = [...list].sort((a, b) => a.startMs - b.startMs);
    const byEnd = [...list].sort((a, b) => a.endMs - b.endMs);
    let j = 0;
    let best: CounterRead | null = null;
    for (const r of byStart) {
      while (j < byEnd.length && (byEnd[j] as CounterRead).endMs < r.startMs) {
        const e = byEnd[j] as CounterRead;
        if (best === null || (e.value ?? 0n) > (best.value ?? 0n)) best = e;
        j += 1;
      }
      if (best !== null && (r.value ?? 0n) < (best.value ?? 0n)) {
        out.push({ checker: "counter", key, message: `${node} went backwards: read ${r.value ?? 0n} at ${r.startMs.toFixed(1)}ms after reading ${best.value ?? 0n} at ${best.startMs.toFixed(1)}ms` });
      }
    }
  }
  return out;
}

/**
 * Counters. Every ok read lies within [what the read node acknowledged before the read started,
 * everything attempted anywhere before it ended] (decrements the other way round): a node need not
 * have received another node's writes yet, but it never loses its own, and it never shows what
 * nobody attempted. With increments only, a node's reads never go backwards. After heal all
 * nodes agree on the acknowledged sum plus a subset of the indeterminate ops.
 */
export function checkCounters(ops: readonly Op[], finals: readonly FinalRead[]): Violation[] {
  const out: Violation[] = [];
  const finalsByKey = byKey(finals.filter((f) => f.counter !== undefined));
  const keys = new Set<string>([...ops.filter((o) => o.kind === "add" || o.kind === "readCounter").map((o) => o.key), ...finalsByKey.keys()]);
  for (const key of keys) {
    const found: Violation[] = [];
    const keyOps = ops.filter((o) => o.key === key);
    const adds = keyOps.filter((o): o is AddOp => o.kind === "add" && o.outcome !== "failed");
    const acked = adds.filter((a) => a.outcome === "ok");
    const ackedBy = new Map<string, AckedOnNode>();
    for (const [node, list] of byKey(acked.map((a) => ({ ...a, key: a.node })))) ackedBy.set(node, new AckedOnNode(list));
    const none = new AckedOnNode([]);
    const startedNeg = new PrefixSums(adds, (a) => a.startMs, (a) => neg(a.amount));
    const startedPos = new PrefixSums(adds, (a) => a.startMs, (a) => pos(a.amount));
    const reads = keyOps.filter((o): o is CounterRead => o.kind === "readCounter" && o.outcome === "ok");
    for (const r of reads) {
      const v = r.value ?? 0n;
      const own = ackedBy.get(r.node) ?? none;
      // Certain: acknowledged by this node strictly before the read began. Possible: anything else begun by the time it ended.
      const certain = own.all.below(r.startMs);
      const lo = certain + startedNeg.atOrBelow(r.endMs) - own.neg.below(r.startMs);
      const hi = certain + startedPos.atOrBelow(r.endMs) - own.pos.below(r.startMs);
      if (v < lo) found.push({ checker: "counter", key, message: `${r.process} read ${v} on ${r.node} at ${r.startMs.toFixed(1)}ms, below ${lo} that node acknowledged: an acknowledged write was lost` });
      else if (v > hi) found.push({ checker: "counter", key, message: `${r.process} read ${v} on ${r.node} at ${r.startMs.toFixed(1)}ms, above ${hi} ever attempted: over-count` });
    }
    if (adds.every((a) => a.amount > 0n)) found.push(...monotonicReads(key, reads));
    const fin = finalsByKey.get(key) ?? [];
    const values = new Set(fin.map((f) => f.counter ?? 0n));
    if (values.size === 1) {
      const value = [...values][0] as bigint;
      const ackedSum = acked.reduce((s, a) => s + a.amount, 0n);
      const maybe = adds.filter((a) => a.outcome === "indeterminate").map((a) => a.amount);
      const fit = isSubsetSum(maybe, value - ackedSum);
      if (!fit.ok) {
        found.push({ checker: "counter", key, message: `final value ${value} is not the acknowledged sum ${ackedSum} plus a subset of the ${maybe.length} indeterminate ops${fit.exact ? "" : " (range test)"}` });
      }
    }
    out.push(...found.slice(0, violationsPerKeyMax));
  }
  return out;
}

type SetOp = Extract<Op, { kind: "set" }>;
type MvSetOp = Extract<Op, { kind: "setMv" }>;

/**
 * Writes that happened after `root` (causally): a node has seen root once root was acknowledged on
 * it or a read there returned root or a later write; every write begun on that node afterwards
 * follows root. Iterated to a fixpoint.
 */
export function causalDescendants(root: SetOp, writes: readonly SetOp[], ops: readonly Op[]): Set<SetOp> {
  const seenAt = new Map<string, number>();
  const note = (node: string, t: number): boolean => {
    const cur = seenAt.get(node);
    if (cur !== undefined && cur <= t) return false;
    seenAt.set(node, t);
    return true;
  };
  if (root.outcome === "ok") note(root.node, root.endMs);
  const reads = ops.filter((o): o is Extract<Op, { kind: "readLww" }> => o.kind === "readLww" && o.outcome === "ok" && o.key === root.key);
  const desc = new Set<SetOp>();
  const values = new Set<string>([root.value]);
  for (let changed = true; changed; ) {
    changed = false;
    for (const r of reads) if (r.value !== null && values.has(r.value)) changed = note(r.node, r.endMs) || changed;
    for (const w of writes) {
      if (w === root || desc.has(w)) continue;
      const t = seenAt.get(w.node);
      if (t === undefined || w.startMs <= t) continue;
      desc.add(w);
      values.add(w.value);
      if (w.outcome === "ok") changed = note(w.node, w.endMs) || changed;
      changed = true;
    }
  }
  return desc;
}

/**
 * LWW registers: every read and the final value are values that were written (not by a failed
 * op), and no acknowledged write is causally after the write that won.
 */
export function checkLww(ops: readonly Op[], finals: readonly FinalRead[]): Violation[] {
  const out: Violation[] = [];
  const finalsByKey = byKey(finals.filter((f) => f.lww !== undefined));
  const keys = new Set<string>([...ops.filter((o) => o.kind === "set" || o.kind === "readLww").map((o) => o.key), ...finalsByKey.keys()]);
  for (const key of keys) {
    const found: Violation[] = [];
    const writes = ops.filter((o): o is SetOp => o.kind === "set" && o.key === key && o.outcome !== "failed");
    const byValue = new Map(writes.map((w) => [w.value, w]));
    for (const r of ops) {
      if (r.kind !== "readLww" || r.key !== key || r.outcome !== "ok" || r.value === null) continue;
      if (!byValue.has(r.value)) found.push({ checker: "lww", key, message: `${r.process} read ${JSON.stringify(r.value)} on ${r.node}, which no (unfailed) write wrote: phantom value` });
    }
    const fin = finalsByKey.get(key) ?? [];
    const values = new Set(fin.map((f) => f.lww ?? null));
    if (values.size === 1) {
      const value = [...values][0] ?? null;
      const winner = value === null ? undefined : byValue.get(value);
      if (value === null) {
        const acked = writes.find((w) => w.outcome === "ok");
        if (acked !== undefined) found.push({ checker: "lww", key, message: `no value after heal although ${JSON.stringify(acked.value)} was acknowledged` });
      } else if (winner === undefined) {
        found.push({ checker: "lww", key, message: `final value ${JSON.stringify(value)} was never written: phantom value` });
      } else {
        for (const w of causalDescendants(winner, writes, ops)) {
          if (w.outcome === "ok") found.push({ checker: "lww", key, message: `acknowledged write ${JSON.stringify(w.value)} (${w.process} on ${w.node}) lost to the causally earlier ${JSON.stringify(winner.value)}` });
        }
      }
    }
    out.push(...found.slice(0, violationsPerKeyMax));
  }
  return out;
}

/**
 * MV registers: reads and final values are written values; every acknowledged write is in the final
 * set or was read by a later (unfailed) write that replaced it; and no value that an acknowledged
 * write replaced is still there.
 */
export function checkMv(ops: readonly Op[], finals: readonly FinalRead[]): Violation[] {
  const out: Violation[] = [];
  const finalsByKey = byKey(finals.filter((f) => f.mv !== undefined));
  const keys = new Set<string>([...ops.filter((o) => o.kind === "setMv" || o.kind === "readMv").map((o) => o.key), ...finalsByKey.keys()]);
  for (const key of keys) {
    const found: Violation[] = [];
    const writes = ops.filter((o): o is MvSetOp => o.kind === "setMv" && o.key === key && o.outcome !== "failed");
    const written = new Set(writes.map((w) => w.value));
    const replacedBy = new Map<string, MvSetOp[]>();
    for (const w of writes) for (const v of w.observed) replacedBy.set(v, [...(replacedBy.get(v) ?? []), w]);
    for (const r of ops) {
      if (r.kind !== "readMv" || r.key !== key || r.outcome !== "ok") continue;
      for (const v of r.values) if (!written.has(v)) found.push({ checker: "mv", key, message: `${r.process} read ${JSON.stringify(v)} on ${r.node}, which no (unfailed) write wrote: phantom value` });
    }
    const fin = finalsByKey.get(key) ?? [];
    const shapes = new Set(fin.map((f) => JSON.stringify([...(f.mv ?? [])].sort())));
    if (shapes.size === 1) {
      const present = new Set(fin[0]?.mv ?? []);
      for (const v of present) {
        if (!written.has(v)) found.push({ checker: "mv", key, message: `final value ${JSON.stringify(v)} was never written: phantom value` });
        const ackedReplacer = (replacedBy.get(v) ?? []).find((w) => w.outcome === "ok");
        if (ackedReplacer !== undefined) found.push({ checker: "mv", key, message: `${JSON.stringify(v)} is still present although the acknowledged ${JSON.stringify(ackedReplacer.value)} replaced it` });
      }
      for (const w of writes) {
        if (w.outcome !== "ok" || present.has(w.value) || replacedBy.has(w.value)) continue;
        found.push({ checker: "mv", key, message: `acknowledged write ${JSON.stringify(w.value)} (${w.process} on ${w.node}) is gone and no write read it` });
      }
    }
    out.push(...found.slice(0, violationsPerKeyMax));
  }
  return out;
}

type DelOp = Extract<Op, { kind: "del" }>;
type LwwRead = Extract<Op, { kind: "readLww" }>;

/**
 * The read that sealed a delete: the same process's op just before it, a read of the same key
 * served by the same node process as the delete. That process removed at least what it showed.
 */
function sealingReads(ops: readonly Op[], key: string): { read: CounterRead | LwwRead; del: DelOp }[] {
  const out: { read: CounterRead | LwwRead; del: DelOp }[] = [];
  const lastOf = new Map<string, Op>();
  for (const o of ops) {
    const prev = lastOf.get(o.process);
    lastOf.set(o.process, o);
    if (o.kind !== "del" || o.key !== key || o.outcome !== "ok" || o.incarnation === undefined) continue;
    if (prev === undefined || prev.key !== key || prev.outcome !== "ok" || prev.node !== o.node || prev.incarnation !== o.incarnation) continue;
    if (prev.kind === "readCounter" || prev.kind === "readLww") out.push({ read: prev, del: o });
  }
  return out;
}

/**
 * Keys that are written and deleted (observed-remove, add-wins). Counters: the final value is at
 * least what was acknowledged after every delete had ended (nothing could have observed it), and
 * at most everything attempted minus what any sealed delete removed (a delete served by the
 * process that had just read the value removed at least that, and it never comes back).
 * Registers: the final value was written, and is not one a sealed delete removed.
 */
export function checkDeletes(ops: readonly Op[], finals: readonly FinalRead[]): Violation[] {
  const out: Violation[] = [];
  for (const [key, fin] of byKey(finals)) {
    const found: Violation[] = [];
    const keyOps = ops.filter((o) => o.key === key);
    const dels = keyOps.filter((o): o is DelOp => o.kind === "del" && o.outcome !== "failed");
    // An indeterminate delete may still be applied after its client gave up: it bounds nothing.
    const lastDelEnd = dels.some((d) => d.outcome === "indeterminate") ? Infinity : dels.reduce((m, d) => Math.max(m, d.endMs), -Infinity);
    const sealed = sealingReads(ops, key);
    if (fin.some((f) => f.counter !== undefined)) {
      const value = fin[0]?.counter ?? 0n;
      const adds = keyOps.filter((o): o is AddOp => o.kind === "add" && o.outcome !== "failed");
      const total = adds.reduce((s, a) => s + a.amount, 0n);
      const floor = adds.filter((a) => a.outcome === "ok" && a.startMs > lastDelEnd).reduce((s, a) => s + a.amount, 0n);
      const removed = sealed.reduce((m, p) => {
        const v = p.read.kind === "readCounter" ? p.read.value ?? 0n : 0n;
        return v > m ? v : m;
      }, 0n);
      if (value < floor) found.push({ checker: "delete", key, message: `final ${value} is below the ${floor} acknowledged after the last delete ended: an acknowledged increment was lost` });
      if (value > total - removed) {
        found.push({ checker: "delete", key, message: `final ${value} exceeds the ${total} attempted minus the ${removed} a delete removed (it had read them just before): deleted increments came back` });
      }
    } else if (fin.some((f) => f.lww !== undefined)) {
      const value = fin[0]?.lww ?? null;
      const written = new Set(keyOps.filter((o) => o.kind === "set" && o.outcome !== "failed").map((o) => (o as SetOp).value));
      if (value !== null && !written.has(value)) found.push({ checker: "delete", key, message: `final value ${JSON.stringify(value)} was never written: phantom value` });
      for (const p of sealed) {
        if (p.read.kind === "readLww" && p.read.value !== null && p.read.value === value) {
          found.push({ checker: "delete", key, message: `${JSON.stringify(value)} is back: ${p.del.process} read it on ${p.del.node} and deleted it there at ${p.del.startMs.toFixed(1)}ms` });
        }
      }
      const lateAck = keyOps.find((o) => o.kind === "set" && o.outcome === "ok" && o.startMs > lastDelEnd);
      if (value === null && lateAck !== undefined) found.push({ checker: "delete", key, message: `absent after heal although ${JSON.stringify((lateAck as SetOp).value)} was acknowledged after every delete had ended` });
    }
    out.push(...found.slice(0, violationsPerKeyMax));
  }
  return out;
}

type SetAdd = Extract<Op, { kind: "sadd" }>;
type SetRemove = Extract<Op, { kind: "srem" }>;

/**
 * Sets (add-wins OR-Set), Jepsen-style: after heal, every acknowledged add of a member that no
 * remove of that member could have observed (every such remove ended before the add began) is
 * present; nothing is present, and no read showed anything, that no (unfailed) add added.
 */
export function checkSets(ops: readonly Op[], finals: readonly FinalRead[]): Violation[] {
  const out: Violation[] = [];
  for (const [key, fin] of byKey(finals.filter((f) => f.set !== undefined))) {
    const found: Violation[] = [];
    const keyOps = ops.filter((o) => o.key === key);
    const adds = keyOps.filter((o): o is SetAdd => o.kind === "sadd" && o.outcome !== "failed");
    const removes = keyOps.filter((o): o is SetRemove => o.kind === "srem" && o.outcome !== "failed");
    const added = new Set(adds.map((a) => a.member));
    for (const r of keyOps) {
      if (r.kind !== "readSet" || r.outcome !== "ok") continue;
      for (const m of r.members) if (!added.has(m)) found.push({ checker: "set", key, message: `${r.process} read member ${JSON.stringify(m)} on ${r.node}, which no (unfailed) add added: phantom member` });
    }
    const shapes = new Set(fin.map((f) => JSON.stringify([...(f.set ?? [])].sort())));
    if (shapes.size === 1) {
      const present = new Set(fin[0]?.set ?? []);
      for (const m of present) if (!added.has(m)) found.push({ checker: "set", key, message: `final member ${JSON.stringify(m)} was never added: phantom member` });
      for (const a of adds) {
        if (a.outcome !== "ok" || present.has(a.member)) continue;
        // An indeterminate remove may still be applied after its client gave up (a retry, or a
        // request the node took late): it could have observed any add, as a delete could (above).
        const couldObserve = removes.some((r) => r.member === a.member && (r.outcome === "indeterminate" || r.endMs >= a.startMs));
        if (!couldObserve) found.push({ checker: "set", key, message: `acknowledged add of ${JSON.stringify(a.member)} (${a.process} on ${a.node} at ${a.startMs.toFixed(1)}ms) is gone, and no remove of it came after` });
      }
    }
    out.push(...found.slice(0, violationsPerKeyMax));
  }
  return out;
}

/** What a Ttl answer says about the key: -2 missing (or expired), -1 no deadline, else a live deadline. */
export type TtlClass = "missing" | "none" | "deadline";

export function ttlClass(ttlMs: number): TtlClass {
  return ttlMs === -2 ? "missing" : ttlMs === -1 ? "none" : "deadline";
}

/** One Batch's two answers agree: members shown iff the key exists (Ttl -1 or ms left >= 1), as Redis. */
function readAgrees(members: readonly string[], ttlMs: number): boolean {
  return members.length > 0 ? ttlMs === -1 || ttlMs >= 1 : ttlMs === -2;
}

export interface ExpiryPhases {
  /** Ops begun at or after this time are phase C: fresh adds, after every deadline was executed everywhere. */
  phaseCFromMs: number;
}

type ReadTtl = Extract<Op, { kind: "readTtl" }>;

/**
 * TTL keys (sets) under skew and partitions, Jepsen-style, after docs/api.md "Expiry": (1) no
 * phantom: every member a read or a final read shows was added by an ok or indeterminate SAdd of
 * that key; (2) nothing written after expiry is lost: every ok add of phase C is on every node at
 * the end; (3) a node never shows a key whose deadline passed on its own clock: a read (SMembers
 * and Ttl in one Batch) that shows members answers Ttl -1 or > 0, one that shows none answers -2;
 * (4) the nodes agree on every key (members and Ttl class), and no deadline is live at the end
 * unless an expire was issued in phase C.
 */
export function checkExpiry(ops: readonly Op[], finals: readonly TtlFinal[], phases: ExpiryPhases): Violation[] {
  const out: Violation[] = [];
  const keys = new Set<string>([...finals.map((f) => f.key), ...ops.filter((o) => o.kind === "readTtl" || o.kind === "expire" || o.kind === "persist").map((o) => o.key)]);
  for (const key of keys) {
    const found: Violation[] = [];
    const v = (message: string) => found.push({ checker: "expiry", key, message });
    const keyOps = ops.filter((o) => o.key === key);
    const adds = keyOps.filter((o): o is SetAdd => o.kind === "sadd" && o.outcome !== "failed");
    const added = new Set(adds.map((a) => a.member));
    const reads = keyOps.filter((o): o is ReadTtl => o.kind === "readTtl" && o.outcome === "ok");
    const fin = finals.filter((f) => f.key === key);
    for (const r of reads) {
      for (const m of r.members) if (!added.has(m)) v(`${r.process} read member ${JSON.stringify(m)} on ${r.node} at ${r.startMs.toFixed(1)}ms, which no (unfailed) add added: phantom member`);
      if (!readAgrees(r.members, r.ttlMs)) v(`${r.process} read ${r.members.length} members with ttl ${r.ttlMs} on ${r.node} at ${r.startMs.toFixed(1)}ms: ${r.members.length > 0 ? "a key shown after its deadline passed on that node's clock" : "a key with no members has a ttl"}`);
    }
    for (const f of fin) {
      for (const m of f.members) if (!added.has(m)) v(`final member ${JSON.stringify(m)} on ${f.node} was never added: phantom member`);
      if (!readAgrees(f.members, f.ttlMs)) v(`final read on ${f.node}: ${f.members.length} members with ttl ${f.ttlMs}`);
    }
    for (const a of adds) {
      if (a.outcome !== "ok" || a.startMs < phases.phaseCFromMs) continue;
      const missing = fin.filter((f) => !f.members.includes(a.member)).map((f) => f.node);
      if (missing.length > 0) v(`acknowledged add of ${JSON.stringify(a.member)} after every deadline had been executed (${a.process} on ${a.node} at ${a.startMs.toFixed(1)}ms) is gone on ${missing.join(", ")}: a write after expiry was lost`);
    }
    const shape = (f: TtlFinal) => JSON.stringify([[...f.members].sort(), ttlClass(f.ttlMs)]);
    if (new Set(fin.map(shape)).size > 1) v(`nodes disagree at the end: ${fin.map((f) => `${f.node}=${shape(f)}`).join(", ")}`);
    const lateExpire = keyOps.some((o) => o.kind === "expire" && o.outcome !== "failed" && o.startMs >= phases.phaseCFromMs);
    const live = fin.filter((f) => ttlClass(f.ttlMs) === "deadline");
    if (!lateExpire && live.length > 0) v(`a deadline is live at the end (${live.map((f) => `${f.node} ttl ${f.ttlMs}`).join(", ")}) though every one had been executed before phase C and none was set since`);
    out.push(...found.slice(0, violationsPerKeyMax));
  }
  return out;
}

/** Every checker over one history and its final reads; deletable keys (see workload.ts) go to checkDeletes only. */
export function checkAll(ops: readonly Op[], finals: readonly FinalRead[]): Violation[] {
  const plainOps = ops.filter((o) => !isDeletableKey(o.key));
  const plainFinals = finals.filter((f) => !isDeletableKey(f.key));
  const delOps = ops.filter((o) => isDeletableKey(o.key));
  const delFinals = finals.filter((f) => isDeletableKey(f.key));
  return [
    ...checkConvergence(finals), ...checkCounters(plainOps, plainFinals), ...checkLww(plainOps, plainFinals), ...checkMv(plainOps, plainFinals),
    ...checkDeletes(delOps, delFinals), ...checkSets(ops, finals),
  ];
}
