// How the command table uses the node's client path: multi-key commands go as batches of at most
// 1000 ops, node errors become Redis's texts, MV registers read deterministically, and a bug in a
// handler answers an error (and is reported) instead of breaking the connection.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createRespCommands } from "../../src/resp/commands.ts";
import { isWrongType, opErrorText } from "../../src/resp/replies.ts";
import type { ClientOp } from "../../src/transport/api.ts";
import type { RespBackend, RespSession } from "../../src/resp/types.ts";
import { call, plain, startTestNode, type TestNode } from "./harness.ts";

setDefaultTimeout(60_000);

let t: TestNode;
let s: RespSession;
const enc = new TextEncoder();

beforeAll(async () => {
  t = await startTestNode();
  s = t.session();
});
afterAll(async () => {
  await t?.stop();
});

describe("batches", () => {
  test("MSET, MGET, DEL and EXISTS of 2500 keys go to the node as batches of at most 1000 ops", async () => {
    const calls: { kind: "apply" | "batch"; ops: number }[] = [];
    const real = t.backend.client;
    const counted: RespBackend = {
      ...t.backend,
      client: {
        ...real,
        apply: (op, id) => (calls.push({ kind: "apply", ops: 1 }), real.apply(op, id)),
        batch: (ops, id) => (calls.push({ kind: "batch", ops: ops.length }), real.batch(ops, id)),
        scan: (q) => real.scan(q),
        status: () => real.status(),
        members: () => real.members(),
      },
    };
    const cmds = createRespCommands(counted);
    const run = async (...args: string[]) => plain(await cmds.execute(s, args.map((a) => enc.encode(a))));
    const keys = Array.from({ length: 2500 }, (_, i) => `b:${i}`);
    expect(await run("MSET", ...keys.flatMap((k) => [k, "v"]))).toBe("+OK");
    // A type check of every key (3 read batches), then the writes (3 batches).
    expect(calls).toEqual([1000, 1000, 500, 1000, 1000, 500].map((ops) => ({ kind: "batch", ops })));
    calls.length = 0;
    const values = await run("MGET", ...keys);
    expect(Array.isArray(values) ? values.length : -1).toBe(2500);
    expect(await run("EXISTS", ...keys)).toBe(2500);
    expect(await run("DEL", ...keys)).toBe(2500);
    expect(calls).toEqual([1000, 1000, 500, 1000, 1000, 500, 1000, 1000, 500].map((ops) => ({ kind: "batch", ops })));
  });
});

describe("MV registers (written over gRPC)", () => {
  test("GET answers the bytewise greatest sibling, on every read; TYPE string; SET is WRONGTYPE", async () => {
    for (const v of ["apple", "pear", "banana"]) {
      const o = await t.backend.client.apply({ kind: "setMv", key: "mv:1", value: enc.encode(v), context: null } satisfies ClientOp, null);
      expect(o.ok).toBe(true);
    }
    expect(await call(t, s, "GET", "mv:1")).toBe("pear");
    expect(await call(t, s, "MGET", "mv:1")).toEqual(["pear"]);
    expect(await call(t, s, "TYPE", "mv:1")).toBe("+string");
    expect(await call(t, s, "SET", "mv:1", "x")).toBe("-WRONGTYPE Operation against a key holding the wrong kind of value");
    expect(await call(t, s, "INCR", "mv:1")).toBe("-WRONGTYPE Operation against a key holding the wrong kind of value");
    expect(await call(t, s, "INCRBY", "mv:1", "0")).toBe("-WRONGTYPE Operation against a key holding the wrong kind of value");
    expect(await call(t, s, "GETDEL", "mv:1")).toBe("pear");
    expect(await call(t, s, "EXISTS", "mv:1")).toBe(0);
  });

  test("a G-Counter (written over gRPC) reads as its decimal and takes INCR, not DECR", async () => {
    await t.backend.client.apply({ kind: "increment", key: "g:1", amount: 5n, counter: "gcounter" }, null);
    expect(await call(t, s, "GET", "g:1")).toBe("5");
    expect(await call(t, s, "INCR", "g:1")).toBe(6);
    expect(await call(t, s, "DECR", "g:1")).toBe("-WRONGTYPE Operation against a key holding the wrong kind of value");
    expect(await call(t, s, "TYPE", "g:1")).toBe("+string");
  });
});

describe("node errors in Redis's words", () => {
  test("the engine's wrong-type refusals are WRONGTYPE; limits and the rest are ERR with the node's message", () => {
    expect(isWrongType({ code: "FAILED_PRECONDITION", message: 'key "k" holds a pncounter, not a set' })).toBe(true);
    expect(isWrongType({ code: "FAILED_PRECONDITION", message: 'key "a b" holds a LWW register, not a counter' })).toBe(true);
    expect(isWrongType({ code: "FAILED_PRECONDITION", message: 'key "k": the set would hold more than 100000 members' })).toBe(false);
    expect(isWrongType({ code: "INVALID_ARGUMENT", message: 'key "k" holds a pncounter, not a set' })).toBe(false);
    expect(opErrorText({ code: "RESOURCE_EXHAUSTED", message: "the node is serving 200000 ops (limit 200000); retry later" }))
      .toBe("ERR the node is serving 200000 ops (limit 200000); retry later");
    expect(opErrorText({ code: "UNAVAILABLE", message: "the node is stopping" })).toBe("ERR the node is stopping");
    expect(opErrorText({ code: "PERMISSION_DENIED", message: "admin only" })).toBe("NOPERM admin only");
    expect(opErrorText({ code: "INTERNAL", message: "boom\r\nx" })).toBe("ERR internal error: boom  x");
    expect(opErrorText({ code: "OUT_OF_RANGE", message: "the counter's value is outside int64" })).toBe("ERR the counter's value is outside int64");
  });

  test("a limit the engine enforces reaches the client as ERR and changes nothing", async () => {
    const big = new Uint8Array(1024 * 1024);
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await call(t, s, "HSET", "lim:h", `f${i}`, big));
    // A hash's state is bounded by 4 MiB: the fourth or fifth field is refused.
    const refused = answers.filter((a) => typeof a === "string" && a.startsWith("-ERR "));
    expect(refused.length).toBeGreaterThan(0);
    expect(answers.every((a) => a === 1 || (typeof a === "string" && a.startsWith("-ERR ") && !a.startsWith("-WRONGTYPE")))).toBe(true);
    expect(await call(t, s, "HLEN", "lim:h")).toBe(answers.filter((a) => a === 1).length);
  });

  test("a handler that throws unexpectedly answers ERR internal error and is reported", async () => {
    const reported: string[] = [];
    const broken: RespBackend = {
      ...t.backend,
      client: { ...t.backend.client, scan: () => { throw new TypeError("scan exploded"); } },
      onInternalError: (command, err) => reported.push(`${command}: ${String(err)}`),
    };
    const cmds = createRespCommands(broken);
    const r = plain(await cmds.execute(s, [enc.encode("SCAN"), enc.encode("0")]));
    expect(r).toBe("-ERR internal error in 'scan': scan exploded");
    expect(reported).toEqual(["scan: TypeError: scan exploded"]);
    // The table keeps serving.
    expect(plain(await cmds.execute(s, [enc.encode("PING")]))).toBe("+PONG");
  });

  test("HELLO reads every option before it authenticates (a syntax error wins, as in Redis)", async () => {
    const h = t.session();
    expect(await call(t, h, "HELLO", "3", "AUTH", "nobody", "pw", "BAD")).toBe("-ERR Syntax error in HELLO option 'BAD'");
    expect(await call(t, h, "HELLO", "3", "AUTH", "nobody", "pw", "SETNAME", "x")).toBe("-WRONGPASS invalid username-password pair or user is disabled.");
    expect([h.protocol, h.name]).toEqual([2, null]);
  });
});
