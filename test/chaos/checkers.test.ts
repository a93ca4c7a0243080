// The checkers against hand-made histories: ones that must pass, and ones with a lost write, a
// phantom value, an over-count, or a key shown past its deadline that must fail; plus a seeded property over random counter runs.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { checkAll, checkConvergence, checkCounters, checkExpiry, checkLww, checkMv, isSubsetSum } from "./checkers.ts";
import type { FinalRead, Op, Outcome, TtlFinal } from "./history.ts";

const add = (amount: number, startMs: number, endMs: number, outcome: Outcome = "ok", node = "n1", key = "c"): Op => ({ kind: "add", process: "p", node, key, amount: BigInt(amount), outcome, startMs, endMs });
const readC = (value: number | null, startMs: number, endMs: number, node = "n1", key = "c"): Op => ({ kind: "readCounter", process: "r", node, key, value: value === null ? null : BigInt(value), outcome: "ok", startMs, endMs });
const finalC = (values: number[], key = "c"): FinalRead[] => values.map((v, i) => ({ node: `n${i + 1}`, key, counter: BigInt(v) }));

const set = (value: string, node: string, startMs: number, endMs: number, outcome: Outcome = "ok", key = "r"): Op => ({ kind: "set", process: `p-${node}`, node, key, value, outcome, startMs, endMs });
const readL = (value: string | null, node: string, startMs: number, endMs: number, key = "r"): Op => ({ kind: "readLww", process: `q-${node}`, node, key, value, outcome: "ok", startMs, endMs });
const finalL = (value: string | null, nodes = 3, key = "r"): FinalRead[] => Array.from({ length: nodes }, (_, i) => ({ node: `n${i + 1}`, key, lww: value }));

const setMv = (value: string, observed: string[], node: string, startMs: number, endMs: number, outcome: Outcome = "ok", key = "m"): Op => ({ kind: "setMv", process: `p-${node}`, node, key, value, observed, outcome, startMs, endMs });
const finalM = (values: string[], nodes = 3, key = "m"): FinalRead[] => Array.from({ length: nodes }, (_, i) => ({ node: `n${i + 1}`, key, mv: values }));

describe("counter checker", () => {
  test("passes: sequential acknowledged adds, reads in bounds, agreed final sum", () => {
    const ops = [readC(null, 0, 1), add(1, 2, 3), add(2, 4, 5), readC(3, 6, 7), add(3, 8, 9), readC(6, 10, 11)];
    expect(checkCounters(ops, finalC([6, 6, 6]))).toEqual([]);
  });

  test("passes: a read overlapping an add may see it or not; decrements bound the other way", () => {
    const ops = [add(5, 0, 1), add(4, 2, 30), add(-2, 3, 25), readC(5, 10, 20), readC(9, 10, 20), readC(3, 10, 20), readC(7, 10, 20)];
    expect(checkCounters(ops, finalC([7, 7]))).toEqual([]);
  });

  test("passes: the final value includes any subset of the indeterminate adds", () => {
    const ops = [add(1, 0, 1), add(5, 2, 3, "indeterminate"), add(10, 4, 5, "indeterminate"), add(100, 6, 7, "failed")];
    for (const v of [1, 6, 11, 16]) expect(checkCounters(ops, finalC([v, v]))).toEqual([]);
    for (const v of [0, 2, 101, 116]) expect(checkCounters(ops, finalC([v, v])).length).toBe(1);
  });

  test("fails: a lost acknowledged write (read below the acknowledged sum)", () => {
    const v = checkCounters([add(5, 0, 10), readC(0, 20, 21)], []);
    expect(v.length).toBe(1);
    expect(v[0]?.message).toContain("lost");
  });

  test("passes: another node may not have a write yet; fails: the acknowledging node lost it", () => {
    const ops = [add(5, 0, 10, "ok", "n1"), readC(0, 20, 21, "n2"), readC(5, 22, 23, "n2")];
    expect(checkCounters(ops, [])).toEqual([]);
    expect(checkCounters([...ops, readC(0, 24, 25, "n1")], []).map((v) => v.message).join()).toContain("lost");
  });

  test("fails: a node process whose reads go backwards (increments only); a restart may forget the unacknowledged", () => {
    const inc = (op: Op, incarnation: number): Op => ({ ...op, incarnation });
    const ops = [add(5, 0, 10, "ok", "n1"), inc(readC(5, 20, 21, "n2"), 1), inc(readC(0, 22, 23, "n2"), 1)];
    const v = checkCounters(ops, []);
    expect(v.length).toBe(1);
    expect(v[0]?.message).toContain("went backwards");
    // n1 showed an increment still in flight, crashed, and came back without it: allowed.
    const restart = [add(5, 0, 30, "indeterminate", "n1"), inc(readC(5, 10, 11, "n1"), 1), inc(readC(0, 40, 41, "n1"), 2)];
    expect(checkCounters(restart, [])).toEqual([]);
  });

  test("fails: an over-count (read above everything attempted, a failed op counted)", () => {
    const v = checkCounters([add(5, 0, 10), add(3, 11, 12, "failed"), readC(8, 20, 21)], []);
    expect(v.length).toBe(1);
    expect(v[0]?.message).toContain("over-count");
  });

  test("fails: a final value missing an acknowledged add, or with a phantom one", () => {
    const ops = [add(2, 0, 1), add(3, 2, 3)];
    expect(checkCounters(ops, finalC([2, 2])).length).toBe(1);
    expect(checkCounters(ops, finalC([6, 6])).length).toBe(1);
  });

  test("subset sums: exact for small sets, a range test beyond the state bound", () => {
    expect(isSubsetSum([1n, 5n, 10n], 15n)).toEqual({ ok: true, exact: true });
    expect(isSubsetSum([1n, 5n, 10n], 12n)).toEqual({ ok: false, exact: true });
    const many = Array.from({ length: 40 }, (_, i) => BigInt(2 ** (i % 30)) + 7n);
    expect(isSubsetSum(many, -1n).ok).toBe(false);
  });

  const seed = process.env.IMDB_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.IMDB_SEED);
  const numRuns = Math.max(1, Math.floor(Number(process.env.IMDB_PROPERTY_RUNS ?? 1000) / 5));
  test(`property: any linearisable run passes; off-by-one finals fail (seed ${seed})`, () => {
    // Each op takes effect at one instant inside its interval (an indeterminate one maybe never);
    // reads return the sum at their instant: the checker must accept every such run.
    const opArb = fc.record({
      read: fc.boolean(),
      start: fc.integer({ min: 0, max: 1000 }),
      len: fc.integer({ min: 0, max: 200 }),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      amount: fc.integer({ min: 1, max: 20 }),
      outcome: fc.constantFrom<Outcome>("ok", "ok", "ok", "failed", "indeterminate"),
      applied: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (raw) => {
        const effects: { t: number; amount: bigint }[] = [];
        for (const r of raw) {
          if (r.read || r.outcome === "failed" || (r.outcome === "indeterminate" && !r.applied)) continue;
          effects.push({ t: r.start + r.at * r.len, amount: BigInt(r.amount) });
        }
        const sumAt = (t: number) => effects.filter((e) => e.t <= t).reduce((s, e) => s + e.amount, 0n);
        const ops: Op[] = raw.map((r) =>
          r.read
            ? { kind: "readCounter", process: "r", node: "n1", key: "c", value: sumAt(r.start + r.at * r.len), outcome: "ok", startMs: r.start, endMs: r.start + r.len }
            : { kind: "add", process: "w", node: "n1", key: "c", amount: BigInt(r.amount), outcome: r.outcome, startMs: r.start, endMs: r.start + r.len },
        );
        const total = effects.reduce((s, e) => s + e.amount, 0n);
        const fin = (v: bigint): FinalRead[] => [{ node: "n1", key: "c", counter: v }, { node: "n2", key: "c", counter: v }];
        if (checkCounters(ops, fin(total)).length !== 0) return false;
        const acked = ops.reduce((s, o) => s + (o.kind === "add" && o.outcome === "ok" ? o.amount : 0n), 0n);
        const attempted = ops.reduce((s, o) => s + (o.kind === "add" && o.outcome !== "failed" ? o.amount : 0n), 0n);
        return checkCounters(ops, fin(attempted + 1n)).length > 0 && (acked === 0n || checkCounters(ops, fin(acked - 1n)).length > 0);
      }),
      { seed, numRuns },
    );
  });
});

describe("LWW checker", () => {
  test("passes: the later write on the same node wins", () => {
    const ops = [set("a", "n1", 0, 1), set("b", "n1", 2, 3), readL("b", "n2", 4, 5)];
    expect(checkLww(ops, finalL("b"))).toEqual([]);
  });

  test("fails: an acknowledged write lost to a causally earlier one (same node)", () => {
    const v = checkLww([set("a", "n1", 0, 1), set("b", "n1", 2, 3)], finalL("a"));
    expect(v.length).toBe(1);
    expect(v[0]?.message).toContain("lost to the causally earlier");
  });

  test("fails: causality through a read on another node", () => {
    const ops = [set("a", "n1", 0, 1), readL("a", "n2", 2, 3), set("b", "n2", 4, 5)];
    expect(checkLww(ops, finalL("a")).length).toBe(1);
    expect(checkLww(ops, finalL("b"))).toEqual([]);
  });

  test("fails: transitively, a→(read)→b→(read)→c, final a", () => {
    const ops = [set("a", "n1", 0, 1), readL("a", "n2", 2, 3), set("b", "n2", 4, 5, "indeterminate"), readL("b", "n3", 6, 7), set("c", "n3", 8, 9)];
    expect(checkLww(ops, finalL("a")).map((x) => x.message).join()).toContain('"c"');
  });

  test("passes: concurrent writes (no causal path, e.g. skewed clocks) may go either way", () => {
    const ops = [set("a", "n1", 0, 1), set("b", "n2", 5, 6)];
    expect(checkLww(ops, finalL("a"))).toEqual([]);
    expect(checkLww(ops, finalL("b"))).toEqual([]);
  });

  test("fails: phantom values (final or read), and a failed write's value", () => {
    expect(checkLww([set("a", "n1", 0, 1)], finalL("zzz")).length).toBe(1);
    expect(checkLww([set("a", "n1", 0, 1), readL("zzz", "n2", 2, 3)], finalL("a")).length).toBe(1);
    expect(checkLww([set("a", "n1", 0, 1, "failed")], finalL("a")).length).toBe(1);
    expect(checkLww([set("a", "n1", 0, 1)], finalL(null)).length).toBe(1);
  });
});

describe("MV checker", () => {
  test("passes: concurrent writes stay siblings; a write that read both replaces them", () => {
    const ops = [setMv("a", [], "n1", 0, 1), setMv("b", [], "n2", 0, 1)];
    expect(checkMv(ops, finalM(["a", "b"]))).toEqual([]);
    expect(checkMv([...ops, setMv("c", ["a", "b"], "n3", 2, 3)], finalM(["c"]))).toEqual([]);
  });

  test("fails: an acknowledged write gone without a write that read it", () => {
    const v = checkMv([setMv("a", [], "n1", 0, 1), setMv("b", [], "n2", 0, 1)], finalM(["b"]));
    expect(v.length).toBe(1);
    expect(v[0]?.message).toContain('"a"');
  });

  test("fails: a value an acknowledged write replaced is still there", () => {
    const v = checkMv([setMv("a", [], "n1", 0, 1), setMv("c", ["a"], "n1", 2, 3)], finalM(["a", "c"]));
    expect(v.length).toBe(1);
    expect(v[0]?.message).toContain("still present");
  });

  test("fails: a phantom value", () => {
    expect(checkMv([setMv("a", [], "n1", 0, 1)], finalM(["a", "x"])).length).toBe(1);
  });
});

describe("convergence", () => {
  test("nodes that disagree after heal are one violation per key", () => {
    expect(checkConvergence(finalC([5, 5, 5]))).toEqual([]);
    expect(checkConvergence([...finalC([5, 6]), ...finalL("a"), ...finalM(["x", "y"]).map((f, i) => (i === 0 ? { ...f, mv: ["y", "x"] } : f))]).length).toBe(1);
    expect(checkAll([add(5, 0, 1)], finalC([5, 6])).map((v) => v.checker)).toEqual(["convergence"]);
  });
});

describe("delete checker (deletable counters and registers)", () => {
  const P = "w1";
  const dAdd = (amount: number, startMs: number, endMs: number, outcome: Outcome = "ok", node = "n1"): Op => ({ kind: "add", process: "adder", node, key: "dctr-0", amount: BigInt(amount), outcome, startMs, endMs });
  const dRead = (value: number | null, startMs: number, endMs: number, node = "n1", incarnation = 1): Op => ({ kind: "readCounter", process: P, node, key: "dctr-0", value: value === null ? null : BigInt(value), outcome: "ok", startMs, endMs, incarnation });
  const del = (key: string, startMs: number, endMs: number, outcome: Outcome = "ok", node = "n1", incarnation: number | undefined = 1): Op => ({ kind: "del", process: P, node, key, outcome, startMs, endMs, ...(incarnation === undefined ? {} : { incarnation }) });
  const fin = (v: number): FinalRead[] => [{ node: "n1", key: "dctr-0", counter: BigInt(v) }, { node: "n2", key: "dctr-0", counter: BigInt(v) }];

  test("passes: a delete removes what it read; a concurrent unobserved increment survives; later increments count", () => {
    const ops = [dAdd(5, 0, 1), dRead(5, 2, 3), del("dctr-0", 4, 5), dAdd(2, 4, 6, "ok", "n2"), dAdd(3, 10, 11)];
    // 5 removed; the +2 on n2 concurrent with the delete may survive or not; +3 after it must count.
    for (const v of [3, 5]) expect(checkAll(ops, fin(v))).toEqual([]);
  });

  test("fails: the deleted increments come back (the delete had read them on the same process)", () => {
    const ops = [dAdd(5, 0, 1), dRead(5, 2, 3), del("dctr-0", 4, 5), dAdd(3, 10, 11)];
    const v = checkAll(ops, fin(8));
    expect(v.map((x) => x.checker)).toEqual(["delete"]);
    expect(v[0]?.message).toContain("came back");
  });

  test("fails: an increment acknowledged after every delete ended is lost", () => {
    const ops = [dAdd(5, 0, 1), dRead(5, 2, 3), del("dctr-0", 4, 5), dAdd(3, 10, 11)];
    expect(checkAll(ops, fin(0))[0]?.message).toContain("lost");
  });

  test("an indeterminate delete, or one served by another process than the read, bounds nothing", () => {
    const late = [dAdd(5, 0, 1), dRead(5, 2, 3), del("dctr-0", 4, 5, "indeterminate", "n1", undefined), dAdd(3, 10, 11)];
    for (const v of [0, 3, 8]) expect(checkAll(late, fin(v))).toEqual([]);
    const restarted = [dAdd(5, 0, 1), dRead(5, 2, 3), del("dctr-0", 4, 5, "ok", "n1", 2), dAdd(3, 10, 11)];
    expect(checkAll(restarted, fin(8))).toEqual([]);
  });

  test("registers: a value a sealed delete removed must not be the final one; phantoms and lost late writes fail", () => {
    const w = (value: string, startMs: number, endMs: number): Op => ({ kind: "set", process: "writer", node: "n2", key: "dlww-0", value, outcome: "ok", startMs, endMs });
    const r = (value: string | null, startMs: number, endMs: number): Op => ({ kind: "readLww", process: P, node: "n1", key: "dlww-0", value, outcome: "ok", startMs, endMs, incarnation: 1 });
    const f = (value: string | null): FinalRead[] => [{ node: "n1", key: "dlww-0", lww: value }, { node: "n2", key: "dlww-0", lww: value }];
    const ops = [w("a", 0, 1), r("a", 2, 3), del("dlww-0", 4, 5), w("b", 4, 6)];
    expect(checkAll(ops, f("b"))).toEqual([]);
    expect(checkAll(ops, f(null))).toEqual([]); // "b" may have reached n1 before the delete
    expect(checkAll(ops, f("a"))[0]?.message).toContain("is back");
    expect(checkAll(ops, f("zzz"))[0]?.message).toContain("phantom");
    const late = [...ops, w("c", 10, 11)];
    expect(checkAll(late, f(null))[0]?.message).toContain("acknowledged after every delete");
  });
});

describe("set checker", () => {
  const sadd = (member: string, startMs: number, endMs: number, outcome: Outcome = "ok", node = "n1"): Op => ({ kind: "sadd", process: `a-${node}`, node, key: "set-0", member, outcome, startMs, endMs });
  const srem = (member: string, startMs: number, endMs: number, outcome: Outcome = "ok", node = "n2"): Op => ({ kind: "srem", process: `r-${node}`, node, key: "set-0", member, outcome, startMs, endMs });
  const readS = (members: string[], startMs: number, endMs: number, node = "n2"): Op => ({ kind: "readSet", process: `r-${node}`, node, key: "set-0", members, outcome: "ok", startMs, endMs });
  const fin = (members: string[]): FinalRead[] => [{ node: "n1", key: "set-0", set: members }, { node: "n2", key: "set-0", set: members }];

  test("passes: a remove that could have observed an add may take it; a later add survives", () => {
    const ops = [sadd("a", 0, 1), readS(["a"], 2, 3), srem("a", 4, 5), sadd("b", 6, 7), sadd("a", 8, 9)];
    expect(checkAll(ops, fin(["a", "b"]))).toEqual([]);
    // The second add of "a" started after the remove ended: "a" must be there.
    const v = checkAll(ops, fin(["b"]));
    expect(v.map((x) => x.checker)).toEqual(["set"]);
    expect(v[0]?.message).toContain("is gone");
  });

  test("passes: an add concurrent with a remove of the same member may or may not survive", () => {
    const ops = [sadd("a", 0, 1), readS(["a"], 2, 3), srem("a", 4, 8), sadd("a", 5, 6, "ok", "n3")];
    expect(checkAll(ops, fin([]))).toEqual([]);
    expect(checkAll(ops, fin(["a"]))).toEqual([]);
  });

  test("fails: a phantom member, in a read or at the end; a lost acknowledged add", () => {
    expect(checkAll([sadd("a", 0, 1), readS(["a", "zz"], 2, 3)], fin(["a"]))[0]?.message).toContain("phantom");
    expect(checkAll([sadd("a", 0, 1)], fin(["a", "q"]))[0]?.message).toContain("phantom");
    expect(checkAll([sadd("a", 0, 1), sadd("b", 2, 3)], fin(["b"]))[0]?.message).toContain("is gone");
    // A failed add is not owed; an indeterminate one may go either way.
    expect(checkAll([sadd("a", 0, 1, "failed"), sadd("b", 2, 3, "indeterminate")], fin([]))).toEqual([]);
  });

  test("passes: an indeterminate remove that ended (its client gave up) before an add began may still take it; an ok one may not", () => {
    const ops = [sadd("a", 0, 1), srem("a", 2, 3, "indeterminate"), sadd("a", 5, 6, "ok", "n3")];
    expect(checkAll(ops, fin([]))).toEqual([]);
    const settled = [sadd("a", 0, 1), srem("a", 2, 3, "ok"), sadd("a", 5, 6, "ok", "n3")];
    expect(checkAll(settled, fin([]))[0]?.message).toContain("is gone");
  });

  test("fails: nodes disagree after heal", () => {
    const v = checkAll([sadd("a", 0, 1)], [{ node: "n1", key: "set-0", set: ["a"] }, { node: "n2", key: "set-0", set: [] }]);
    expect(v.map((x) => x.checker)).toEqual(["convergence"]);
  });
});

describe("expiry checker (TTL keys)", () => {
  // Phase A before 100, phase C from 100 (after every deadline was executed everywhere).
  const phases = { phaseCFromMs: 100 };
  const sadd = (member: string, startMs: number, endMs: number, outcome: Outcome = "ok", node = "n1"): Op => ({ kind: "sadd", process: `a-${node}`, node, key: "ttl-0", member, outcome, startMs, endMs });
  const expire = (ttlMs: number, startMs: number, endMs: number, node = "n2"): Op => ({ kind: "expire", process: `e-${node}`, node, key: "ttl-0", ttlMs, applied: true, outcome: "ok", startMs, endMs });
  const read = (members: string[], ttlMs: number, startMs: number, endMs: number, node = "n3"): Op => ({ kind: "readTtl", process: `r-${node}`, node, key: "ttl-0", members, ttlMs, outcome: "ok", startMs, endMs });
  const fin = (members: string[], ttlMs = -1, nodes = 3): TtlFinal[] => Array.from({ length: nodes }, (_, i) => ({ node: `n${i + 1}`, key: "ttl-0", members, ttlMs }));
  // a1 added, a deadline set, read live, then read gone; c1 and c2 added in phase C (c2 indeterminate).
  const history = [sadd("a1", 0, 1), expire(2000, 2, 3), read(["a1"], 1500, 4, 5), read([], -2, 30, 31), sadd("a2", 40, 41, "ok", "n3"), sadd("c1", 100, 101), sadd("c2", 102, 103, "indeterminate")];
  const messages = (v: { message: string }[]) => v.map((x) => x.message).join(" | ");

  test("passes: expired members gone, a concurrent add survives or not, fresh adds everywhere, an indeterminate one either way", () => {
    expect(checkExpiry(history, fin(["c1"]), phases)).toEqual([]);
    expect(checkExpiry(history, fin(["a2", "c1", "c2"]), phases)).toEqual([]);
    // With phase C drawn later, c1 is a phase-A add that an expiry may have taken too.
    expect(checkExpiry(history, fin([], -2), { phaseCFromMs: 1000 })).toEqual([]);
  });

  test("fails (1): a phantom member, at the end, in a read, or from a failed add", () => {
    const atEnd = checkExpiry(history, fin(["c1", "zz"]), phases);
    expect(atEnd.map((v) => v.message.includes('"zz"') && v.message.includes("phantom"))).toEqual([true, true, true]); // one per node
    const inRead = checkExpiry([...history, read(["a1", "zz"], 900, 50, 51)], fin(["c1"]), phases);
    expect(inRead.length).toBe(1);
    expect(inRead[0]?.message).toContain("phantom");
    const failed = checkExpiry([...history, sadd("f1", 42, 43, "failed")], fin(["c1", "f1"]), phases);
    expect(messages(failed)).toContain('"f1"');
  });

  test("fails (2): an acknowledged add made after every deadline was executed is lost, on every node or on one", () => {
    const everywhere = checkExpiry(history, fin([], -2), phases);
    expect(everywhere.length).toBe(1);
    expect(everywhere[0]?.message).toContain("a write after expiry was lost");
    expect(everywhere[0]?.message).toContain("n1, n2, n3");
    const onOne = checkExpiry(history, [...fin(["c1"], -1, 2), { node: "n3", key: "ttl-0", members: [], ttlMs: -2 }], phases);
    expect(messages(onOne)).toContain("is gone on n3");
    expect(messages(onOne)).toContain("disagree");
  });

  test("fails (3): a read shows members of a key whose Ttl says it is gone, or a Ttl for a key with no members", () => {
    const shown = checkExpiry([...history, read(["a1"], -2, 20, 21)], fin(["c1"]), phases);
    expect(shown.length).toBe(1);
    expect(shown[0]?.message).toContain("after its deadline passed");
    const ghost = checkExpiry([...history, read([], 700, 20, 21)], fin(["c1"]), phases);
    expect(ghost.length).toBe(1);
    expect(ghost[0]?.message).toContain("no members has a ttl");
    const atEnd = checkExpiry(history, fin(["c1"], -2), phases);
    expect(messages(atEnd)).toContain("final read on n1: 1 members with ttl -2");
  });

  test("fails (4): nodes disagree on members or on the Ttl class; a deadline is live at the end", () => {
    const members = checkExpiry(history, [...fin(["c1"], -1, 2), { node: "n3", key: "ttl-0", members: ["a2", "c1"], ttlMs: -1 }], phases);
    expect(members.length).toBe(1);
    expect(members[0]?.message).toContain("disagree");
    const cls = checkExpiry(history, [...fin(["c1"], -1, 2), { node: "n3", key: "ttl-0", members: ["c1"], ttlMs: 4000 }], phases);
    expect(messages(cls)).toContain("disagree");
    expect(messages(cls)).toContain("live at the end");
    // Every node agrees on a live deadline: none was set in phase C, so one came back.
    const back = checkExpiry(history, fin(["c1"], 4000), phases);
    expect(back.length).toBe(1);
    expect(back[0]?.message).toContain("live at the end");
    // ... unless an expire was issued in phase C.
    expect(checkExpiry([...history, expire(9000, 110, 111)], fin(["c1"], 4000), phases)).toEqual([]);
  });
});
