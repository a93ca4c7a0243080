// The Redis command table against a real node in this process: every command group's reply shapes
// and error texts, as a Redis client sees them (the encoding to RESP is the connection layer's).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { RespSession } from "../../src/resp/types.ts";
import { call, startTestNode, type Plain, type TestNode } from "./harness.ts";

setDefaultTimeout(60_000);

let t: TestNode;
let s: RespSession;
const r = (...args: (string | Uint8Array)[]): Promise<Plain> => call(t, s, ...args);
const wrongType = "-WRONGTYPE Operation against a key holding the wrong kind of value";
const notInteger = "-ERR value is not an integer or out of range";

beforeAll(async () => {
  t = await startTestNode();
  s = t.session();
});

afterAll(async () => {
  await t?.stop();
});

describe("connection", () => {
  test("PING, ECHO, SELECT, QUIT, RESET", async () => {
    expect(await r("PING")).toBe("+PONG");
    expect(await r("ping", "hi")).toBe("hi");
    expect(await r("PING", "a", "b")).toBe("-ERR wrong number of arguments for 'ping' command");
    expect(await r("ECHO", "x y")).toBe("x y");
    expect(await r("ECHO")).toBe("-ERR wrong number of arguments for 'echo' command");
    expect(await r("SELECT", "0")).toBe("+OK");
    expect(await r("SELECT", "1")).toBe("-ERR DB index is out of range");
    expect(await r("SELECT", "-1")).toBe("-ERR DB index is out of range");
    expect(await r("SELECT", "x")).toBe(notInteger);
    const q = t.session();
    expect(await call(t, q, "QUIT")).toBe("+OK");
    expect(q.closeAfterReply).toBe(true);
    const z = t.session();
    await call(t, z, "HELLO", "3", "SETNAME", "app");
    expect(await call(t, z, "RESET")).toBe("+RESET");
    expect(z.protocol).toBe(2);
    expect(z.name).toBe(null);
  });

  test("HELLO answers Redis 7's map, switches protocol, sets the name; NOPROTO and option errors", async () => {
    const h = t.session();
    expect(await call(t, h, "HELLO", "3")).toEqual({
      map: [["server", "redis"], ["version", "7.0.0"], ["proto", 3], ["id", h.id], ["mode", "standalone"], ["role", "master"], ["modules", []]],
    });
    expect(h.protocol).toBe(3);
    const bare = await call(t, h, "HELLO");
    expect(bare).toEqual(expect.objectContaining({ map: expect.arrayContaining([["proto", 3]]) }));
    expect(await call(t, h, "HELLO", "4")).toBe("-NOPROTO unsupported protocol version");
    expect(await call(t, h, "HELLO", "x")).toBe("-ERR Protocol version is not an integer or out of range");
    expect(await call(t, h, "HELLO", "3", "FOO")).toBe("-ERR Syntax error in HELLO option 'FOO'");
    expect(await call(t, h, "HELLO", "2", "SETNAME", "a b")).toBe("-ERR Client names cannot contain spaces, newlines or special characters.");
    expect(h.protocol).toBe(3);
    expect(await call(t, h, "HELLO", "2", "AUTH", "default", "anything", "SETNAME", "svc")).toEqual(expect.objectContaining({ map: expect.arrayContaining([["proto", 2]]) }));
    expect(h.protocol).toBe(2);
    expect(h.name).toBe("svc");
    expect(await call(t, h, "HELLO", "3", "AUTH", "alice", "pw")).toBe("-WRONGPASS invalid username-password pair or user is disabled.");
    expect(h.protocol).toBe(2);
  });

  test("AUTH as Redis with no password configured (connections authenticate by certificate)", async () => {
    expect(await r("AUTH", "pw")).toBe("-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
    expect(await r("AUTH", "default", "pw")).toBe("+OK");
    expect(await r("AUTH", "bob", "pw")).toBe("-WRONGPASS invalid username-password pair or user is disabled.");
  });

  test("CLIENT SETNAME/GETNAME/ID/INFO/LIST/SETINFO", async () => {
    const c = t.session();
    expect(await call(t, c, "CLIENT", "GETNAME")).toBe(null);
    expect(await call(t, c, "CLIENT", "SETNAME", "worker-1")).toBe("+OK");
    expect(await call(t, c, "client", "getname")).toBe("worker-1");
    expect(await call(t, c, "CLIENT", "SETNAME", "bad name")).toBe("-ERR Client names cannot contain spaces, newlines or special characters.");
    expect(await call(t, c, "CLIENT", "ID")).toBe(c.id);
    expect(await call(t, c, "CLIENT", "SETINFO", "LIB-NAME", "ioredis")).toBe("+OK");
    expect(await call(t, c, "CLIENT", "SETINFO", "lib-ver", "5.4.1")).toBe("+OK");
    expect([c.libName, c.libVersion]).toEqual(["ioredis", "5.4.1"]);
    expect(await call(t, c, "CLIENT", "SETINFO", "LIB-FOO", "x")).toBe("-ERR Unrecognized option 'LIB-FOO'");
    const info = await call(t, c, "CLIENT", "INFO");
    expect(info).toBe(`id=${c.id} addr=${c.remote} name=worker-1 age=0 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=client|info user=default redir=-1 resp=2 lib-name=ioredis lib-ver=5.4.1\n`);
    const list = await call(t, c, "CLIENT", "LIST");
    expect(typeof list === "string" ? list.split("\n").filter((l) => l.startsWith(`id=${c.id} `)).length : -1).toBe(1);
    expect(await call(t, c, "CLIENT", "LIST", "ID", String(c.id))).toBe((info as string).replace("cmd=client|info", "cmd=client|list"));
    expect(await call(t, c, "CLIENT", "LIST", "TYPE", "pubsub")).toBe("");
    expect(await call(t, c, "CLIENT", "NOPE")).toBe("-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.");
    expect(await call(t, c, "CLIENT")).toBe("-ERR wrong number of arguments for 'client' command");
    expect(await call(t, c, "CLIENT", "SETNAME")).toBe("-ERR wrong number of arguments for 'client|setname' command");
  });

  test("COMMAND COUNT/INFO/DOCS/LIST come from the one table", async () => {
    const count = await r("COMMAND", "COUNT");
    const all = await r("COMMAND");
    expect(Array.isArray(all) ? all.length : -1).toBe(count as number);
    const names = await r("COMMAND", "LIST");
    expect(names).toEqual(expect.arrayContaining(["get", "set", "incr", "hset", "sadd", "scan", "client", "config", "hello"]));
    // Unsupported commands are not offered; the expiry family is.
    expect(names).not.toContain("multi");
    expect(names).toEqual(expect.arrayContaining(["expire", "pexpire", "expireat", "pexpireat", "persist", "ttl", "pttl", "expiretime", "pexpiretime", "getex", "setex", "psetex"]));
    expect(await r("COMMAND", "INFO", "get", "nosuch", "mset", "config|get")).toEqual([
      ["get", 2, { set: ["+readonly", "+fast"] }, 1, 1, 1, { set: ["+@read", "+@string", "+@fast"] }, { set: [] }, { set: [] }, { set: [] }],
      null,
      ["mset", -3, { set: ["+write", "+denyoom"] }, 1, -1, 2, { set: ["+@write", "+@string", "+@slow"] }, { set: [] }, { set: [] }, { set: [] }],
      ["config|get", -3, { set: ["+loading", "+stale"] }, 0, 0, 0, { set: ["+@slow"] }, { set: [] }, { set: [] }, { set: [] }],
    ]);
    const docs = await r("COMMAND", "DOCS", "get", "nosuch");
    expect(docs).toEqual({ map: [["get", { map: [["summary", expect.any(String)], ["since", "1.0.0"], ["group", "string"], ["complexity", "O(1)"]] }]] });
    expect(await r("COMMAND", "FOO")).toBe("-ERR unknown subcommand 'FOO'. Try COMMAND HELP.");
  });

  test("unknown commands are worded as Redis 7 words them", async () => {
    expect(await r("FOO", "bar", "baz")).toBe("-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' ");
    expect(await r("nosuch")).toBe("-ERR unknown command 'nosuch', with args beginning with: ");
    // Arguments are quoted up to 128 bytes in all; CR and LF become spaces.
    const long = "x".repeat(200);
    expect(await r("FOO", long, "y")).toBe(`-ERR unknown command 'FOO', with args beginning with: '${"x".repeat(128)}' `);
    expect(await r("FOO", "a\r\nb")).toBe("-ERR unknown command 'FOO', with args beginning with: 'a  b' ");
  });

  test("commands with no CRDT meaning say why", async () => {
    expect(await r("MULTI")).toStartWith("-ERR MULTI is not supported by a CRDT database: transactions need one serial order");
    expect(await r("EXEC")).toStartWith("-ERR EXEC is not supported by a CRDT database: ");
    expect(await r("WATCH", "k")).toStartWith("-ERR WATCH is not supported by a CRDT database: ");
    expect(await r("EVAL", "return 1", "0")).toStartWith("-ERR EVAL is not supported by a CRDT database: there is no scripting");
    expect(await r("SUBSCRIBE", "ch")).toStartWith("-ERR SUBSCRIBE is not supported by a CRDT database: there is no pub/sub");
    expect(await r("SCRIPT", "LOAD", "return 1")).toStartWith("-ERR SCRIPT LOAD is not supported by a CRDT database: ");
    expect(await r("INCRBYFLOAT", "k", "1.5")).toStartWith("-ERR INCRBYFLOAT is not supported by a CRDT database: counters are PN-Counters of 64-bit integers");
    expect(await r("HINCRBYFLOAT", "h", "f", "1.5")).toStartWith("-ERR HINCRBYFLOAT is not supported by a CRDT database: ");
  });
});

describe("strings and counters", () => {
  test("SET/GET/GETDEL/MGET/MSET/SETNX/GETSET", async () => {
    expect(await r("GET", "s:missing")).toBe(null);
    expect(await r("SET", "s:a", "1")).toBe("+OK");
    expect(await r("GET", "s:a")).toBe("1");
    expect(await r("SET", "s:a", "2", "NX")).toBe(null);
    expect(await r("SET", "s:b", "2", "XX")).toBe(null);
    expect(await r("GET", "s:b")).toBe(null);
    expect(await r("SET", "s:a", "3", "XX", "GET")).toBe("1");
    expect(await r("SET", "s:b", "b", "NX", "GET")).toBe(null);
    expect(await r("GET", "s:b")).toBe("b");
    expect(await r("SET", "s:a", "4", "KEEPTTL")).toBe("+OK");
    expect(await r("SET", "s:a", "4", "NX", "XX")).toBe("-ERR syntax error");
    expect(await r("SET", "s:a", "4", "EX", "10", "PX", "5")).toBe("-ERR syntax error");
    expect(await r("SET", "s:a", "4", "EX")).toBe("-ERR syntax error");
    expect(await r("SET", "s:a", "4", "EX", "0")).toBe("-ERR invalid expire time in 'set' command");
    expect(await r("SET", "s:a", "4", "EX", "x")).toBe(notInteger);
    expect(await r("GET", "s:a")).toBe("4");
    expect(await r("STRLEN", "s:a")).toBe(1);
    expect(await r("STRLEN", "s:missing")).toBe(0);
    expect(await r("SETNX", "s:a", "x")).toBe(0);
    expect(await r("SETNX", "s:c", "c")).toBe(1);
    expect(await r("GETSET", "s:c", "c2")).toBe("c");
    expect(await r("GETDEL", "s:c")).toBe("c2");
    expect(await r("GETDEL", "s:c")).toBe(null);
    expect(await r("MSET", "m:1", "a", "m:2", "b")).toBe("+OK");
    expect(await r("MGET", "m:1", "nope", "m:2")).toEqual(["a", null, "b"]);
    expect(await r("MSET", "m:1")).toBe("-ERR wrong number of arguments for 'mset' command");
    expect(await r("MSET", "m:1", "a", "m:2")).toBe("-ERR wrong number of arguments for 'mset' command");
    expect(await r("GET")).toBe("-ERR wrong number of arguments for 'get' command");
  });

  test("keys and values are checked as over gRPC (1..1024 bytes of UTF-8, values up to 1 MiB)", async () => {
    expect(await r("SET", "", "v")).toBe("-ERR key must be 1..1024 bytes, got 0");
    expect(await r("SET", "k".repeat(1025), "v")).toBe("-ERR key must be 1..1024 bytes, got 1025");
    expect(await r("GET", new Uint8Array([0xff, 0xfe]))).toBe("-ERR key is not valid UTF-8");
    expect(await r("SET", "big", new Uint8Array(1024 * 1024 + 1))).toBe(`-ERR value is ${1024 * 1024 + 1} bytes, the limit is ${1024 * 1024}`);
    expect(await r("GET", "big")).toBe(null);
    // Binary values are kept byte for byte.
    const bin = new Uint8Array([0, 255, 13, 10, 128]);
    expect(await r("SET", "bin", bin)).toBe("+OK");
    const back = await t.commands.execute(s, [new TextEncoder().encode("GET"), new TextEncoder().encode("bin")]);
    expect(back.kind === "bulk" && back.value instanceof Uint8Array ? [...back.value] : []).toEqual([...bin]);
  });

  test("INCR family on a PN-Counter; GET answers its decimal; errors as Redis words them", async () => {
    expect(await r("INCR", "c:1")).toBe(1);
    expect(await r("INCRBY", "c:1", "41")).toBe(42);
    expect(await r("DECR", "c:1")).toBe(41);
    expect(await r("DECRBY", "c:1", "50")).toBe(-9);
    expect(await r("INCRBY", "c:1", "-1")).toBe(-10);
    expect(await r("DECRBY", "c:1", "-10")).toBe(0);
    expect(await r("INCRBY", "c:1", "0")).toBe(0);
    expect(await r("INCRBY", "c:none", "0")).toBe(0);
    expect(await r("EXISTS", "c:none")).toBe(0);
    expect(await r("GET", "c:1")).toBe("0");
    expect(await r("TYPE", "c:1")).toBe("+string");
    expect(await r("INCRBY", "c:1", "1.5")).toBe(notInteger);
    expect(await r("INCRBY", "c:1", "01")).toBe(notInteger);
    expect(await r("INCRBY", "c:1", "+1")).toBe(notInteger);
    expect(await r("INCRBY", "c:1", "9223372036854775808")).toBe(notInteger);
    expect(await r("INCRBY", "c:max", "9223372036854775807")).toBe(9223372036854775807n);
    expect(await r("INCR", "c:max")).toBe("-ERR increment or decrement would overflow");
    expect(await r("GET", "c:max")).toBe("9223372036854775807");
    expect(await r("DECRBY", "c:1", "-9223372036854775808")).toBe("-ERR decrement would overflow");
    // A string is not a counter (as in Redis Active-Active, where counters are their own type).
    expect(await r("SET", "c:str", "5")).toBe("+OK");
    expect(await r("INCR", "c:str")).toBe(wrongType);
    expect(await r("GET", "c:str")).toBe("5");
    // And a counter is not a string register.
    expect(await r("SET", "c:1", "x")).toBe(wrongType);
    expect(await r("SET", "c:1", "x", "GET")).toBe(wrongType);
    expect(await r("SET", "c:1", "x", "XX")).toBe(wrongType);
    expect(await r("GET", "c:1")).toBe("0");
    expect(await r("GETDEL", "c:1")).toBe("0");
    expect(await r("GET", "c:1")).toBe(null);
  });

  test("MSET writes all or none: a key of another type refuses the whole command", async () => {
    await r("SADD", "ms:set", "x");
    expect(await r("MSET", "ms:a", "1", "ms:set", "2")).toBe(wrongType);
    expect(await r("MGET", "ms:a", "ms:set")).toEqual([null, null]);
  });

  test("GET and friends on a set or hash answer WRONGTYPE; SET NX on one answers nil", async () => {
    await r("SADD", "w:set", "m");
    await r("HSET", "w:hash", "f", "v");
    for (const k of ["w:set", "w:hash"]) {
      expect(await r("GET", k)).toBe(wrongType);
      expect(await r("INCR", k)).toBe(wrongType);
      expect(await r("GETDEL", k)).toBe(wrongType);
      expect(await r("SET", k, "v", "GET")).toBe(wrongType);
      expect(await r("SET", k, "v", "NX")).toBe(null);
      expect(await r("SET", k, "v")).toBe(wrongType);
    }
    expect(await r("SMEMBERS", "w:hash")).toBe(wrongType);
    expect(await r("HGETALL", "w:set")).toBe(wrongType);
    expect(await r("SADD", "w:hash", "x")).toBe(wrongType);
    expect(await r("HSET", "w:set", "f", "v")).toBe(wrongType);
  });

  test("SET NX decided on this replica is atomic among Redis-protocol clients of the node", async () => {
    const sessions = Array.from({ length: 20 }, () => t.session());
    const answers = await Promise.all(sessions.map((x, i) => call(t, x, "SET", "nx:race", `v${i}`, "NX")));
    expect(answers.filter((a) => a === "+OK").length).toBe(1);
    const winner = answers.indexOf("+OK");
    // Without the per-key ordering every NX would read "absent" before any wrote, and all would win.
    expect(await r("GET", "nx:race")).toBe(`v${winner}`);
  });

  test("a plain SET sent while a SET NX of the key is between its check and its write waits for it", async () => {
    for (let i = 0; i < 20; i++) {
      const key = `nx:order:${i}`;
      const [nx, plainSet] = await Promise.all([call(t, t.session(), "SET", key, "nx", "NX"), call(t, t.session(), "SET", key, "plain")]);
      expect(plainSet).toBe("+OK");
      // Serial orders only: NX then SET (the SET's value stays) or SET then NX (the NX finds the key).
      // Without the ordering the SET lands between the NX's read and write, and the NX's value stays.
      const value = await r("GET", key);
      expect({ nx, value }).toEqual(nx === "+OK" ? { nx, value: "plain" } : { nx: null, value: "plain" });
    }
  });
});

describe("keys", () => {
  test("DEL/UNLINK count what was there; EXISTS counts repeats; TYPE names Redis types", async () => {
    await r("MSET", "d:1", "a", "d:2", "b");
    await r("SADD", "d:set", "m");
    await r("HSET", "d:hash", "f", "v");
    expect(await r("EXISTS", "d:1", "d:1", "d:none", "d:set")).toBe(3);
    expect(await r("TYPE", "d:1")).toBe("+string");
    expect(await r("TYPE", "d:set")).toBe("+set");
    expect(await r("TYPE", "d:hash")).toBe("+hash");
    expect(await r("TYPE", "d:none")).toBe("+none");
    expect(await r("DEL", "d:1", "d:none", "d:set")).toBe(2);
    expect(await r("UNLINK", "d:2", "d:hash", "d:2")).toBe(2);
    expect(await r("EXISTS", "d:1", "d:2", "d:set", "d:hash")).toBe(0);
    expect(await r("DEL")).toBe("-ERR wrong number of arguments for 'del' command");
  });

  test("KEYS and SCAN with MATCH, COUNT and TYPE; DBSIZE", async () => {
    await r("MSET", "k:user:1", "a", "k:user:2", "b", "k:other", "c");
    await r("INCR", "k:user:ctr");
    await r("SADD", "k:user:set", "m");
    await r("HSET", "k:user:hash", "f", "v");
    const sorted = (p: Plain): Plain => (Array.isArray(p) ? [...p].sort() : p);
    expect(sorted(await r("KEYS", "k:user:*"))).toEqual(["k:user:1", "k:user:2", "k:user:ctr", "k:user:hash", "k:user:set"]);
    expect(sorted(await r("KEYS", "k:user:[12]"))).toEqual(["k:user:1", "k:user:2"]);
    expect(await r("KEYS", "k:nomatch*")).toEqual([]);
    const scanAll = async (...opts: string[]): Promise<string[]> => {
      const out: string[] = [];
      let cursor = "0";
      for (let i = 0; i < 1000; i++) {
        const page = await r("SCAN", cursor, ...opts);
        if (!Array.isArray(page)) throw new Error(`SCAN answered ${JSON.stringify(page)}`);
        cursor = page[0] as string;
        out.push(...(page[1] as string[]));
        if (cursor === "0") break;
      }
      return out.sort();
    };
    expect(await scanAll("MATCH", "k:user:*", "COUNT", "2")).toEqual(["k:user:1", "k:user:2", "k:user:ctr", "k:user:hash", "k:user:set"]);
    expect(await scanAll("MATCH", "k:*", "TYPE", "string")).toEqual(["k:other", "k:user:1", "k:user:2", "k:user:ctr"]);
    expect(await scanAll("MATCH", "k:*", "TYPE", "set")).toEqual(["k:user:set"]);
    expect(await scanAll("MATCH", "k:*", "TYPE", "hash")).toEqual(["k:user:hash"]);
    expect(await scanAll("MATCH", "k:*", "TYPE", "zset")).toEqual([]);
    expect(await r("SCAN", "abc")).toBe("-ERR invalid cursor");
    expect(await r("SCAN", "0", "COUNT", "0")).toBe("-ERR syntax error");
    expect(await r("SCAN", "0", "COUNT", "x")).toBe(notInteger);
    expect(await r("SCAN", "0", "FOO", "1")).toBe("-ERR syntax error");
    expect(await r("SCAN", "0", "MATCH")).toBe("-ERR syntax error");
    const keysNow = (await r("KEYS", "*")) as string[];
    expect(await r("DBSIZE")).toBe(keysNow.length);
  });
});

describe("sets", () => {
  test("SADD/SREM/SMEMBERS/SISMEMBER/SMISMEMBER/SCARD/SSCAN", async () => {
    expect(await r("SADD", "set:1", "b", "a", "c", "a")).toBe(3);
    expect(await r("SADD", "set:1", "c", "d")).toBe(1);
    expect(await r("SMEMBERS", "set:1")).toEqual({ set: ["a", "b", "c", "d"] });
    expect(await r("SISMEMBER", "set:1", "a")).toBe(1);
    expect(await r("SISMEMBER", "set:1", "z")).toBe(0);
    expect(await r("SMISMEMBER", "set:1", "a", "z", "d")).toEqual([1, 0, 1]);
    expect(await r("SCARD", "set:1")).toBe(4);
    expect(await r("SREM", "set:1", "a", "z")).toBe(1);
    expect(await r("SSCAN", "set:1", "0")).toEqual(["0", ["b", "c", "d"]]);
    expect(await r("SSCAN", "set:1", "0", "MATCH", "[bc]", "COUNT", "1")).toEqual(["0", ["b", "c"]]);
    expect(await r("SSCAN", "set:1", "x")).toBe("-ERR invalid cursor");
    expect(await r("SMEMBERS", "set:none")).toEqual({ set: [] });
    expect(await r("SCARD", "set:none")).toBe(0);
    expect(await r("SREM", "set:1", "b", "c", "d")).toBe(3);
    // A set whose last member went is deleted, as in Redis.
    expect(await r("EXISTS", "set:1")).toBe(0);
    expect(await r("SADD", "set:1")).toBe("-ERR wrong number of arguments for 'sadd' command");
    expect(await r("SADD", "set:1", "")).toBe("-ERR member 0 is empty (a member is 1 or more bytes)");
  });
});

describe("hashes", () => {
  test("HSET/HMSET/HGET/HMGET/HDEL/HGETALL/HKEYS/HVALS/HLEN/HEXISTS/HINCRBY/HSCAN", async () => {
    expect(await r("HSET", "h:1", "name", "ada", "lang", "en")).toBe(2);
    expect(await r("HSET", "h:1", "name", "bob")).toBe(0);
    expect(await r("HMSET", "h:1", "x", "1")).toBe("+OK");
    expect(await r("HGET", "h:1", "name")).toBe("bob");
    expect(await r("HGET", "h:1", "nope")).toBe(null);
    expect(await r("HMGET", "h:1", "lang", "nope", "x")).toEqual(["en", null, "1"]);
    expect(await r("HGETALL", "h:1")).toEqual({ map: [["lang", "en"], ["name", "bob"], ["x", "1"]] });
    expect(await r("HKEYS", "h:1")).toEqual(["lang", "name", "x"]);
    expect(await r("HVALS", "h:1")).toEqual(["en", "bob", "1"]);
    expect(await r("HLEN", "h:1")).toBe(3);
    expect(await r("HEXISTS", "h:1", "lang")).toBe(1);
    expect(await r("HEXISTS", "h:1", "nope")).toBe(0);
    expect(await r("HINCRBY", "h:1", "x", "5")).toBe(6);
    expect(await r("HINCRBY", "h:1", "hits", "-2")).toBe(-2);
    expect(await r("HINCRBY", "h:1", "name", "1")).toBe("-ERR hash value is not an integer");
    expect(await r("HINCRBY", "h:1", "x", "y")).toBe(notInteger);
    expect(await r("HINCRBY", "h:1", "x", "9223372036854775807")).toBe("-ERR increment or decrement would overflow");
    expect(await r("HDEL", "h:1", "lang", "nope")).toBe(1);
    expect(await r("HSCAN", "h:1", "0", "MATCH", "h*")).toEqual(["0", ["hits", "-2"]]);
    expect(await r("HSCAN", "h:1", "0")).toEqual(["0", ["hits", "-2", "name", "bob", "x", "6"]]);
    expect(await r("HGETALL", "h:none")).toEqual({ map: [] });
    expect(await r("HLEN", "h:none")).toBe(0);
    expect(await r("HSET", "h:1", "a")).toBe("-ERR wrong number of arguments for 'hset' command");
    expect(await r("HSET", "h:1", "a", "1", "b")).toBe("-ERR wrong number of arguments for 'hset' command");
    expect(await r("HMSET", "h:1", "a", "1", "b")).toBe("-ERR wrong number of arguments for 'hmset' command");
  });
});

describe("server", () => {
  test("INFO sections, keyspace line and the crdt section", async () => {
    t.infoExtra.peers = [{ id: "node-2", address: "10.0.0.2:7000", status: "alive", lagDeltas: 3, conflicts: 1 }];
    t.infoExtra.maxClients = 10_000;
    const all = await r("INFO");
    expect(typeof all).toBe("string");
    const text = all as string;
    for (const h of ["# Server", "# Clients", "# Memory", "# Persistence", "# Stats", "# Replication", "# Keyspace", "# CRDT"]) expect(text).toContain(`${h}\r\n`);
    expect(text).toContain("redis_version:7.0.0\r\n");
    expect(text).toContain("loading:0\r\n");
    expect(text).toContain("maxclients:10000\r\n");
    expect(text).toMatch(/\r\ndb0:keys=\d+,expires=\d+,avg_ttl=0\r\n/);
    expect(text).toContain("crdt_members:2\r\ncrdt_peer_0:id=node-2,address=10.0.0.2:7000,status=alive,lag_deltas=3,conflicts=1\r\n");
    const keyspace = await r("INFO", "keyspace");
    expect(keyspace).toBe(`# Keyspace\r\ndb0:keys=${t.node.engine.keyCount},expires=${t.node.engine.deadlineKeyCount},avg_ttl=0\r\n`);
    expect(await r("INFO", "nosuch")).toBe("");
    const two = (await r("INFO", "REPLICATION", "crdt")) as string;
    expect(two).toStartWith("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n# CRDT\r\n");
  });

  test("TIME answers seconds and microseconds near now", async () => {
    const [sec, usec] = (await r("TIME")) as [string, string];
    expect(Math.abs(Number(sec) - Date.now() / 1000)).toBeLessThan(5);
    expect(Number(usec)).toBeGreaterThanOrEqual(0);
    expect(Number(usec)).toBeLessThan(1_000_000);
  });

  test("CONFIG GET maps our settings; CONFIG SET refuses what cannot change; RESETSTAT", async () => {
    expect(await r("CONFIG", "GET", "append*")).toEqual({ map: [["appendonly", "yes"], ["appendfsync", "no"]] });
    expect(await r("CONFIG", "GET", "save", "databases")).toEqual({ map: [["databases", "1"], ["save", ""]] });
    expect(await r("CONFIG", "GET", "MAXCLIENTS")).toEqual({ map: [["maxclients", "10000"]] });
    expect(await r("CONFIG", "GET", "nosuch")).toEqual({ map: [] });
    expect(await r("CONFIG", "GET")).toBe("-ERR wrong number of arguments for 'config|get' command");
    expect(await r("CONFIG", "SET", "nosuch", "1")).toBe("-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'");
    expect(await r("CONFIG", "SET", "appendonly", "no")).toBe("-ERR CONFIG SET failed (possibly related to argument 'appendonly') - can't set immutable config");
    expect(await r("CONFIG", "SET", "maxclients", "abc")).toBe("-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer");
    expect(await r("CONFIG", "SET", "maxclients", "10")).toBe("-ERR CONFIG SET failed (possibly related to argument 'maxclients') - can't set immutable config");
    let applied = 0;
    t.backend.setMaxClients = (n) => ((applied = n), null);
    expect(await r("CONFIG", "SET", "maxclients", "10")).toBe("+OK");
    expect(applied).toBe(10);
    delete t.backend.setMaxClients;
    expect(await r("CONFIG", "SET", "maxclients", "10", "x")).toBe("-ERR syntax error");
    expect(await r("CONFIG", "RESETSTAT")).toBe("+OK");
    expect(await r("INFO", "stats")).toContain("total_commands_processed:1\r\n");
    expect(await r("CONFIG", "NOPE")).toBe("-ERR unknown subcommand 'NOPE'. Try CONFIG HELP.");
    expect(await r("FUNCTION", "FLUSH")).toBe("+OK");
    expect(await r("SCRIPT", "FLUSH", "ASYNC")).toBe("+OK");
    expect(await r("SCRIPT", "FLUSH", "LATER")).toBe("-ERR syntax error");
  });

  test("FLUSHALL deletes every key for admin sessions only; a client session gets NOPERM", async () => {
    const client = t.session("client");
    await r("MSET", "f:1", "a", "f:2", "b");
    expect(await call(t, client, "FLUSHALL")).toBe("-NOPERM this user has no permissions to run the 'flushall' command");
    expect(await call(t, client, "CONFIG", "SET", "maxclients", "1")).toBe("-NOPERM this user has no permissions to run the 'config|set' command");
    expect(await call(t, client, "GET", "f:1")).toBe("a");
    expect(await r("FLUSHALL", "NOW")).toBe("-ERR syntax error");
    expect(await r("FLUSHALL", "SYNC")).toBe("+OK");
    expect(await r("DBSIZE")).toBe(0);
    expect(await r("KEYS", "*")).toEqual([]);
    expect(await r("INFO", "keyspace")).toBe("# Keyspace\r\n");
    expect(await r("FLUSHDB")).toBe("+OK");
  });
});
