// The ops Redis-protocol commands send in one event-loop turn reach the node as few batches, in
// order, with each command's answer its own (src/resp/batch.ts). A manual scheduler stands in
// for the turn's end, so every test decides exactly what one turn holds.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { batchPayloadBytesMax, OpBatcher, opPayloadBytes } from "../../src/resp/batch.ts";
import { createRespCommands, type RespCommandTable } from "../../src/resp/commands.ts";
import { expiryDeadlineMsMax, type ClientHandler, type ClientOp, type OpOutcome } from "../../src/transport/api.ts";
import type { RespBackend, RespSession } from "../../src/resp/types.ts";
import { plain, startTestNode, type Plain, type TestNode } from "./harness.ts";

setDefaultTimeout(60_000);

let t: TestNode;
const enc = new TextEncoder();

beforeAll(async () => {
  t = await startTestNode();
});
afterAll(async () => {
  await t?.stop();
});

/** A node client that records every call it gets (apply: 1 op; batch: its ops' kinds). */
function counting(real: ClientHandler, calls: string[][]): ClientHandler {
  return {
    ...real,
    apply: (op, id) => (calls.push([op.kind]), real.apply(op, id)),
    batch: (ops, id) => (calls.push(["batch", ...ops.map((o) => o.kind)]), real.batch(ops, id)),
    scan: (q) => real.scan(q),
    status: () => real.status(),
    members: () => real.members(),
  };
}

/** A command table whose turn ends only when the test says so (endTurn). */
function manualTurns(): { cmds: RespCommandTable; calls: string[][]; endTurn(): void; session: RespSession } {
  const calls: string[][] = [];
  const due: (() => void)[] = [];
  const backend: RespBackend = { ...t.backend, client: counting(t.backend.client, calls) };
  const cmds = createRespCommands(backend, (fn) => due.push(fn));
  return { cmds, calls, endTurn: () => due.splice(0).forEach((fn) => fn()), session: t.session() };
}

function send(m: ReturnType<typeof manualTurns>, ...args: string[]): Promise<Plain> {
  return Promise.resolve(m.cmds.execute(m.session, args.map((a) => enc.encode(a)))).then(plain);
}

describe("one turn's commands", () => {
  test("16 pipelined SETs reach the node as one batch, each answered OK, and are all applied", async () => {
    const m = manualTurns();
    const replies = Array.from({ length: 16 }, (_, i) => send(m, "SET", `p:${i}`, `v${i}`));
    expect(m.calls).toEqual([]);
    m.endTurn();
    expect(await Promise.all(replies)).toEqual(Array.from({ length: 16 }, () => "+OK"));
    expect(m.calls).toEqual([["batch", ...Array.from({ length: 16 }, () => "set")]]);
    const reads = Array.from({ length: 16 }, (_, i) => send(m, "GET", `p:${i}`));
    m.endTurn();
    expect(await Promise.all(reads)).toEqual(Array.from({ length: 16 }, (_, i) => `v${i}`));
  });

  test("commands of many connections in one turn share a batch; reads and writes keep their order, never in one batch", async () => {
    const m = manualTurns();
    const other = t.session();
    const replies = [
      send(m, "SET", "o:a", "1"),
      Promise.resolve(m.cmds.execute(other, ["INCR", "o:n"].map((a) => enc.encode(a)))).then(plain),
      send(m, "GET", "o:a"),
      send(m, "GET", "o:n"),
      send(m, "INCR", "o:n"),
      send(m, "GET", "o:n"),
    ];
    m.endTurn();
    expect(await Promise.all(replies)).toEqual(["+OK", 1, "1", "1", 2, "2"]);
    expect(m.calls).toEqual([["batch", "set", "increment"], ["batch", "get", "get"], ["increment"], ["get"]]);
  });

  test("KEYS, SCAN, DBSIZE and INFO in the same turn see the writes sent before them", async () => {
    const m = manualTurns();
    const before = (await t.node.client.status()).keys;
    const replies = [
      send(m, "SET", "seen:1", "x"),
      send(m, "KEYS", "seen:*"),
      send(m, "SADD", "seen:2", "m"),
      send(m, "SCAN", "0", "MATCH", "seen:*", "COUNT", "100"),
      send(m, "DBSIZE"),
      send(m, "INFO", "keyspace"),
      send(m, "DEL", "seen:1", "seen:2"),
    ];
    m.endTurn();
    const [set, keys, sadd, scan, dbsize, info, del] = await Promise.all(replies);
    expect([set, keys, sadd]).toEqual(["+OK", ["seen:1"], 1]);
    expect(Array.isArray(scan) ? [...(scan[1] as string[])].sort() : scan).toEqual(["seen:1", "seen:2"]);
    expect(dbsize).toBe(before + 2);
    expect(String(info)).toContain(`db0:keys=${before + 2},`);
    expect(del).toBe(2);
  });
});

/** Answers to wait for at most: the node's WAL thread may be slow to get a core on a loaded machine. */
const answersDeadlineMs = 30_000;

/** Ends turns until every reply came (a command waiting for a key's lock needs more than one turn). */
async function untilAnswered(m: ReturnType<typeof manualTurns>, replies: Promise<Plain>[]): Promise<Plain[]> {
  let done = false;
  const all = Promise.all(replies).finally(() => (done = true));
  const deadline = Date.now() + answersDeadlineMs;
  while (!done) {
    if (Date.now() > deadline) throw new Error(`replies not all answered within ${answersDeadlineMs} ms`);
    m.endTurn();
    // Lets the node's own I/O (its WAL appends) answer between turns.
    await new Promise((r) => setImmediate(r));
  }
  return await all;
}

describe("hot commands (answered through callbacks) and keys other commands hold", () => {
  test("SET and INCR sent while GETDEL holds the key wait for it: they land after its delete", async () => {
    const m = manualTurns();
    await untilAnswered(m, [send(m, "SET", "held:s", "old"), send(m, "INCR", "held:n")]);
    const replies = [send(m, "GETDEL", "held:s"), send(m, "SET", "held:s", "new"), send(m, "GETDEL", "held:n"), send(m, "INCR", "held:n")];
    expect(await untilAnswered(m, replies)).toEqual(["old", "+OK", "1", 1]);
    expect(await untilAnswered(m, [send(m, "GET", "held:s"), send(m, "GET", "held:n")])).toEqual(["new", "1"]);
  });

  test("SADD and HSET sent while MSET holds the key wait for it: MSET writes, then they find a string", async () => {
    const m = manualTurns();
    const wrongType = "-WRONGTYPE Operation against a key holding the wrong kind of value";
    const replies = [send(m, "MSET", "held:set", "x", "held:hash", "y"), send(m, "SADD", "held:set", "m"), send(m, "HSET", "held:hash", "f", "v")];
    expect(await untilAnswered(m, replies)).toEqual(["+OK", wrongType, wrongType]);
    expect(await untilAnswered(m, [send(m, "GET", "held:set"), send(m, "GET", "held:hash")])).toEqual(["x", "y"]);
  });

  test("their errors are Redis's: WRONGTYPE, overflow, arity, a bad key", async () => {
    const m = manualTurns();
    const replies = [
      send(m, "SADD", "err:set", "a"),
      send(m, "GET", "err:set"),
      send(m, "INCR", "err:set"),
      send(m, "HSET", "err:set", "f", "v"),
      send(m, "SET", "err:set", "x"),
      send(m, "INCRBY", "err:max", "9223372036854775807"),
      send(m, "INCR", "err:max"),
      send(m, "HSET", "err:h", "f"),
      send(m, "GET", ""),
    ];
    const wrongType = "-WRONGTYPE Operation against a key holding the wrong kind of value";
    const got = await untilAnswered(m, replies);
    expect(got.slice(0, 5)).toEqual([1, wrongType, wrongType, wrongType, wrongType]);
    expect(got.slice(5, 7)).toEqual([9223372036854775807n, "-ERR increment or decrement would overflow"]);
    expect(got[7]).toBe("-ERR wrong number of arguments for 'hset' command");
    expect(String(got[8]).startsWith("-ERR key must be 1..")).toBe(true);
  });
});

describe("OpBatcher", () => {
  test("an op the node refuses as a whole request is refused alone; the ops around it are applied", async () => {
    const calls: string[][] = [];
    const due: (() => void)[] = [];
    const b = new OpBatcher(counting(t.backend.client, calls), (fn) => due.push(fn));
    const ops: ClientOp[] = [
      { kind: "set", key: "alone:1", value: enc.encode("a") },
      // Past the latest deadline once counted from the node's clock: the write path refuses the request.
      { kind: "set", key: "alone:2", value: enc.encode("b"), ttlMs: expiryDeadlineMsMax },
      { kind: "set", key: "alone:3", value: enc.encode("c") },
    ];
    const outs = ops.map((op) => b.apply(op).then((o): OpOutcome | string => o, (err: unknown) => `refused: ${err instanceof Error ? err.message : String(err)}`));
    due.splice(0).forEach((fn) => fn());
    const [a, refused, c] = await Promise.all(outs);
    expect(a).toEqual({ ok: true, result: { kind: "written", context: null } });
    expect(typeof refused === "string" && refused.startsWith("refused: ttl_ms")).toBe(true);
    expect(c).toEqual({ ok: true, result: { kind: "written", context: null } });
    expect(calls).toEqual([["set"], ["set"], ["set"]]);
    const read = await t.backend.client.batch(["alone:1", "alone:2", "alone:3"].map((key): ClientOp => ({ kind: "get", key })), null);
    expect(read.map((o) => o.ok)).toEqual([true, false, true]);
  });

  test("a turn's big writes go in batches of at most batchPayloadBytesMax bytes (what a gRPC Batch may carry), all applied", async () => {
    const calls: string[][] = [];
    const sizes: number[] = [];
    const due: (() => void)[] = [];
    const client = counting(t.backend.client, calls);
    const b = new OpBatcher({ ...client, batch: (ops, id) => (sizes.push(ops.reduce((n, op) => n + opPayloadBytes(op), 0)), client.batch(ops, id)) }, (fn) => due.push(fn));
    const value = new Uint8Array(1024 * 1024).fill(118);
    // Ten 1 MiB SETs (as many connections' SETs read in one turn would be) and an MSET-like group of ten more.
    const ones = Array.from({ length: 10 }, (_, i) => b.apply({ kind: "set", key: `big:${i}`, value }));
    const group = b.applyAll(Array.from({ length: 10 }, (_, i): ClientOp => ({ kind: "set", key: `big:m:${i}`, value })));
    due.splice(0).forEach((fn) => fn());
    const outs = [...(await Promise.all(ones)), ...(await group)];
    expect(outs.every((o) => o.ok)).toBe(true);
    expect(sizes.length).toBeGreaterThan(1);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(batchPayloadBytesMax);
    expect(calls.map((c) => c.length - 1).reduce((x, y) => x + y, 0) + calls.filter((c) => c[0] !== "batch").length).toBe(20);
  });

  test("a callback that throws is reported; the other ops of its batch are still answered", async () => {
    const due: (() => void)[] = [];
    const reported: string[] = [];
    const b = new OpBatcher(t.backend.client, (fn) => due.push(fn), (err) => reported.push(String(err)));
    const answered: string[] = [];
    b.applyThen({ kind: "get", key: "cb:1" }, () => { throw new Error("bug in a command"); }, () => undefined);
    const rest = Promise.all([
      new Promise<void>((resolve) => b.applyThen({ kind: "get", key: "cb:2" }, () => (answered.push("cb:2"), resolve()), () => resolve())),
      b.apply({ kind: "get", key: "cb:3" }).then(() => void answered.push("cb:3")),
    ]);
    due.splice(0).forEach((fn) => fn());
    await rest;
    expect(answered).toEqual(["cb:2", "cb:3"]);
    expect(reported).toEqual(["Error: bug in a command"]);
  });

  test("a batch the node refuses fails each of its ops, and applyAll once", async () => {
    const due: (() => void)[] = [];
    const refusing: Pick<ClientHandler, "apply" | "batch"> = {
      apply: () => Promise.reject(new Error("stopping")),
      batch: () => Promise.reject(new Error("stopping")),
    };
    const b = new OpBatcher(refusing, (fn) => due.push(fn));
    const one = b.apply({ kind: "get", key: "x" }).then(() => "answered", (e: unknown) => String(e));
    const many = b.applyAll([{ kind: "get", key: "x" }, { kind: "get", key: "y" }]).then(() => "answered", (e: unknown) => String(e));
    due.splice(0).forEach((fn) => fn());
    expect(await Promise.all([one, many])).toEqual(["Error: stopping", "Error: stopping"]);
  });
});
