// Key expiry over the Redis command table on a real node: EXPIRE and its siblings with Redis 7's
// conditions and errors, TTL rounding, SET/GETEX/SETEX deadlines, this database's latest deadline,
// and an expired key gone from every read (the exact replies are also compared with redis-server
// in redis-shapes.test.ts).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { RespSession } from "../../src/resp/types.ts";
import { expiryDeadlineMsMax } from "../../src/transport/api.ts";
import { call, startTestNode, type Plain, type TestNode } from "./harness.ts";

setDefaultTimeout(60_000);

let t: TestNode;
let s: RespSession;
const r = (...args: (string | Uint8Array)[]): Promise<Plain> => call(t, s, ...args);
const notInteger = "-ERR value is not an integer or out of range";
const wrongType = "-WRONGTYPE Operation against a key holding the wrong kind of value";

beforeAll(async () => {
  t = await startTestNode();
  s = t.session();
});

afterAll(async () => {
  await t?.stop();
});

/** Polls `probe` until it answers `want` or `withinMs` passes; answers the last reply. */
async function eventually(probe: () => Promise<Plain>, want: Plain, withinMs: number): Promise<Plain> {
  const deadline = Date.now() + withinMs;
  let got = await probe();
  while (!Bun.deepEquals(got, want) && Date.now() < deadline) {
    await Bun.sleep(20);
    got = await probe();
  }
  return got;
}

describe("EXPIRE family", () => {
  test("EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT set the deadline; TTL, PTTL, EXPIRETIME, PEXPIRETIME read it", async () => {
    await r("SET", "e:a", "v");
    expect(await r("TTL", "e:a")).toBe(-1);
    expect(await r("PTTL", "e:a")).toBe(-1);
    expect(await r("EXPIRETIME", "e:a")).toBe(-1);
    expect(await r("TTL", "e:none")).toBe(-2);
    expect(await r("PTTL", "e:none")).toBe(-2);
    expect(await r("PEXPIRETIME", "e:none")).toBe(-2);
    expect(await r("EXPIRE", "e:a", "100")).toBe(1);
    expect(await r("TTL", "e:a")).toBe(100);
    const pttl = (await r("PTTL", "e:a")) as number;
    expect(pttl).toBeGreaterThan(90_000);
    expect(pttl).toBeLessThanOrEqual(100_000);
    expect(await r("PEXPIRE", "e:a", "50000")).toBe(1);
    expect(await r("TTL", "e:a")).toBe(50);
    // Absolute times are kept exactly (SET EXAT/PXAT too): PEXPIRETIME answers what was given.
    expect(await r("PEXPIREAT", "e:a", "4000000000999")).toBe(1);
    expect(await r("PEXPIRETIME", "e:a")).toBe(4000000000999);
    // Seconds round to the nearest, half up, as Redis 7.0 does.
    expect(await r("EXPIRETIME", "e:a")).toBe(4000000001);
    expect(await r("PEXPIREAT", "e:a", "4000000000499")).toBe(1);
    expect(await r("EXPIRETIME", "e:a")).toBe(4000000000);
    expect(await r("EXPIREAT", "e:a", "4000000000")).toBe(1);
    expect(await r("PEXPIRETIME", "e:a")).toBe(4000000000000);
    expect(await r("EXPIRE", "e:none", "10")).toBe(0);
    expect(await r("EXISTS", "e:none")).toBe(0);
  });

  test("TTL rounds ms left to the nearest second, half up (1800 ms left: 2, 1200: 1)", async () => {
    await r("SET", "e:round", "v");
    await r("PEXPIRE", "e:round", "1800");
    expect(await r("TTL", "e:round")).toBe(2);
    await r("PEXPIRE", "e:round", "1200");
    expect(await r("TTL", "e:round")).toBe(1);
    await r("PEXPIRE", "e:round", "400");
    expect(await r("TTL", "e:round")).toBe(0);
  });

  test("PERSIST clears a deadline (1), else 0; the key stays", async () => {
    await r("SET", "e:p", "v", "EX", "100");
    expect(await r("PERSIST", "e:p")).toBe(1);
    expect(await r("PERSIST", "e:p")).toBe(0);
    expect(await r("PERSIST", "e:nope")).toBe(0);
    expect(await r("TTL", "e:p")).toBe(-1);
    expect(await r("GET", "e:p")).toBe("v");
  });

  test("NX, XX, GT, LT as Redis 7: no deadline counts as infinitely late; XX with LT needs a deadline", async () => {
    await r("SET", "e:c", "v");
    expect(await r("EXPIRE", "e:c", "100", "XX")).toBe(0);
    expect(await r("EXPIRE", "e:c", "100", "GT")).toBe(0);
    expect(await r("EXPIRE", "e:c", "100", "XX", "GT")).toBe(0);
    expect(await r("EXPIRE", "e:c", "500", "XX", "LT")).toBe(0);
    expect(await r("TTL", "e:c")).toBe(-1);
    expect(await r("EXPIRE", "e:c", "100", "nx", "NX")).toBe(1);
    expect(await r("EXPIRE", "e:c", "200", "NX")).toBe(0);
    expect(await r("EXPIRE", "e:c", "50", "GT")).toBe(0);
    expect(await r("EXPIRE", "e:c", "200", "XX", "GT")).toBe(1);
    expect(await r("EXPIRE", "e:c", "300", "LT")).toBe(0);
    expect(await r("EXPIRE", "e:c", "300", "XX", "LT")).toBe(0);
    expect(await r("EXPIRE", "e:c", "150", "XX", "LT")).toBe(1);
    expect(await r("TTL", "e:c")).toBe(150);
    await r("PERSIST", "e:c");
    expect(await r("EXPIRE", "e:c", "60", "LT")).toBe(1);
    expect(await r("TTL", "e:c")).toBe(60);
    expect(await r("EXPIRE", "e:missing", "60", "LT")).toBe(0);
  });

  test("a TTL <= 0 or a time in the past deletes the key and answers 1, unless the condition fails", async () => {
    await r("SET", "e:d", "v");
    expect(await r("EXPIRE", "e:d", "0")).toBe(1);
    expect(await r("EXISTS", "e:d")).toBe(0);
    await r("SADD", "e:d", "m");
    expect(await r("PEXPIRE", "e:d", "-5")).toBe(1);
    expect(await r("SMEMBERS", "e:d")).toEqual({ set: [] });
    await r("HSET", "e:d2", "f", "v");
    expect(await r("EXPIREAT", "e:d2", "1")).toBe(1);
    expect(await r("HGETALL", "e:d2")).toEqual({ map: [] });
    await r("INCR", "e:d3");
    expect(await r("PEXPIREAT", "e:d3", "-9223372036854775808")).toBe(1);
    expect(await r("GET", "e:d3")).toBe(null);
    await r("SET", "e:d4", "v");
    expect(await r("EXPIRE", "e:d4", "-1", "GT")).toBe(0);
    expect(await r("EXISTS", "e:d4")).toBe(1);
    await r("EXPIRE", "e:d4", "100");
    expect(await r("EXPIRE", "e:d4", "-1", "LT")).toBe(1);
    expect(await r("EXISTS", "e:d4")).toBe(0);
  });

  test("errors: Redis 7's texts, options checked before the time, nothing changed", async () => {
    await r("SET", "e:x", "v");
    expect(await r("EXPIRE", "e:x", "10", "NX", "XX")).toBe("-ERR NX and XX, GT or LT options at the same time are not compatible");
    expect(await r("EXPIRE", "e:x", "10", "NX", "GT")).toBe("-ERR NX and XX, GT or LT options at the same time are not compatible");
    expect(await r("EXPIRE", "e:x", "10", "LT", "NX")).toBe("-ERR NX and XX, GT or LT options at the same time are not compatible");
    expect(await r("EXPIRE", "e:x", "10", "GT", "LT")).toBe("-ERR GT and LT options at the same time are not compatible");
    expect(await r("PEXPIRE", "e:x", "y", "Foo")).toBe("-ERR Unsupported option Foo");
    expect(await r("EXPIRE", "e:x", "y", "NX")).toBe(notInteger);
    expect(await r("EXPIRE", "e:x", "1.5")).toBe(notInteger);
    expect(await r("EXPIRE", "e:x", "9223372036854775807")).toBe("-ERR invalid expire time in 'expire' command");
    expect(await r("EXPIRE", "e:x", "-9223372036854775808")).toBe("-ERR invalid expire time in 'expire' command");
    expect(await r("PEXPIRE", "e:x", "9223372036854775807")).toBe("-ERR invalid expire time in 'pexpire' command");
    expect(await r("EXPIREAT", "e:x", "9223372036854775807")).toBe("-ERR invalid expire time in 'expireat' command");
    expect(await r("EXPIRE", "e:x")).toBe("-ERR wrong number of arguments for 'expire' command");
    expect(await r("TTL", "e:x", "y")).toBe("-ERR wrong number of arguments for 'ttl' command");
    expect(await r("PERSIST")).toBe("-ERR wrong number of arguments for 'persist' command");
    expect(await r("TTL", "e:x")).toBe(-1);
  });

  test("a deadline past Unix ms 2^48-1 (the year 10889), which Redis would take, is refused with why", async () => {
    await r("SET", "e:far", "v");
    const past = (cmd: string): string => `-ERR invalid expire time in '${cmd}' command: the latest deadline is Unix ms ${expiryDeadlineMsMax} (the year 10889)`;
    expect(await r("PEXPIREAT", "e:far", String(expiryDeadlineMsMax + 1))).toBe(past("pexpireat"));
    expect(await r("PEXPIREAT", "e:far", "9223372036854775807")).toBe(past("pexpireat"));
    expect(await r("EXPIREAT", "e:far", String(Math.floor(expiryDeadlineMsMax / 1000) + 1))).toBe(past("expireat"));
    expect(await r("PEXPIRE", "e:far", String(expiryDeadlineMsMax))).toBe(past("pexpire"));
    expect(await r("SET", "e:far", "w", "PXAT", String(expiryDeadlineMsMax + 1))).toBe(past("set"));
    expect(await r("SET", "e:far", "w", "EX", "9000000000000")).toBe(past("set"));
    expect(await r("SETEX", "e:far", "9000000000000", "w")).toBe(past("setex"));
    expect(await r("GETEX", "e:far", "PXAT", String(expiryDeadlineMsMax + 1))).toBe(past("getex"));
    expect(await r("GET", "e:far")).toBe("v");
    expect(await r("TTL", "e:far")).toBe(-1);
    // The latest deadline itself is taken.
    expect(await r("PEXPIREAT", "e:far", String(expiryDeadlineMsMax))).toBe(1);
    expect(await r("PEXPIRETIME", "e:far")).toBe(expiryDeadlineMsMax);
  });
});

describe("strings with deadlines", () => {
  test("SET EX/PX/EXAT/PXAT set one, KEEPTTL keeps it, a plain SET clears it; repeats as Redis", async () => {
    expect(await r("SET", "x:a", "v", "EX", "100")).toBe("+OK");
    expect(await r("TTL", "x:a")).toBe(100);
    expect(await r("SET", "x:a", "w", "KEEPTTL")).toBe("+OK");
    expect(await r("TTL", "x:a")).toBe(100);
    expect(await r("GET", "x:a")).toBe("w");
    expect(await r("SET", "x:a", "v")).toBe("+OK");
    expect(await r("TTL", "x:a")).toBe(-1);
    expect(await r("SET", "x:a", "v2", "PX", "50000", "GET")).toBe("v");
    expect(await r("TTL", "x:a")).toBe(50);
    expect(await r("SET", "x:a", "v", "EX", "10", "EX", "20")).toBe("+OK");
    expect(await r("TTL", "x:a")).toBe(20);
    expect(await r("SET", "x:a", "v", "NX", "NX")).toBe(null);
    expect(await r("SET", "x:a", "v", "PXAT", "4000000000999")).toBe("+OK");
    expect(await r("PEXPIRETIME", "x:a")).toBe(4000000000999);
    expect(await r("SET", "x:a", "v", "EXAT", "4000000000")).toBe("+OK");
    expect(await r("PEXPIRETIME", "x:a")).toBe(4000000000000);
    expect(await r("SET", "x:b", "v", "XX", "EX", "10")).toBe(null);
    expect(await r("EXISTS", "x:b")).toBe(0);
    expect(await r("SET", "x:b", "v", "NX", "EX", "10")).toBe("+OK");
    expect(await r("TTL", "x:b")).toBe(10);
    // A time in the past: written, then expired at once (Redis answers OK and the key is gone).
    expect(await r("SET", "x:b", "v", "EXAT", "1")).toBe("+OK");
    expect(await r("EXISTS", "x:b")).toBe(0);
    expect(await r("SET", "x:b", "v", "PXAT", "1", "GET")).toBe(null);
    expect(await r("GET", "x:b")).toBe(null);
  });

  test("SET with a deadline over a set or hash is WRONGTYPE and leaves the key and its deadline alone", async () => {
    await r("SADD", "x:held", "m");
    await r("HSET", "x:hash", "f", "v");
    expect(await r("EXPIRE", "x:hash", "100")).toBe(1);
    for (const opts of [["PXAT", "1"], ["EXAT", "4000000000"], ["EX", "10"], ["PX", "1", "GET"], ["KEEPTTL"], ["EXAT", "1", "NX"]]) {
      expect(await r("SET", "x:held", "v", ...opts)).toBe(opts.includes("NX") ? null : wrongType);
      expect(await r("SET", "x:hash", "v", ...opts)).toBe(opts.includes("NX") ? null : wrongType);
    }
    expect(await r("SETEX", "x:held", "10", "v")).toBe(wrongType);
    expect(await r("SMEMBERS", "x:held")).toEqual({ set: ["m"] });
    expect(await r("TTL", "x:held")).toBe(-1);
    expect(await r("HGETALL", "x:hash")).toEqual({ map: [["f", "v"]] });
    expect(await r("TTL", "x:hash")).toBe(100);
  });

  test("SET's bad combinations and times: Redis 7's texts, nothing written", async () => {
    await r("SET", "x:e", "keep");
    for (const opts of [["EX", "10", "PX", "100"], ["KEEPTTL", "EX", "1"], ["EX", "1", "KEEPTTL"], ["EXAT", "1", "PXAT", "1"], ["PERSIST"], ["EX"], ["NX", "XX"]]) {
      expect(await r("SET", "x:e", "v", ...opts)).toBe("-ERR syntax error");
    }
    for (const opts of [["EX", "0"], ["EX", "-1"], ["PX", "0"], ["EXAT", "0"], ["PXAT", "-5"], ["EX", "9223372036854775807"], ["PX", "9223372036854775807"], ["GET", "EX", "0"]]) {
      expect(await r("SET", "x:e", "v", ...opts)).toBe("-ERR invalid expire time in 'set' command");
    }
    expect(await r("SET", "x:e", "v", "EX", "1.5")).toBe(notInteger);
    expect(await r("GET", "x:e")).toBe("keep");
    expect(await r("TTL", "x:e")).toBe(-1);
  });

  test("GETEX reads, then sets or clears the deadline; SETEX and PSETEX", async () => {
    await r("SET", "x:g", "v");
    expect(await r("GETEX", "x:g")).toBe("v");
    expect(await r("GETEX", "x:g", "EX", "100")).toBe("v");
    expect(await r("TTL", "x:g")).toBe(100);
    expect(await r("GETEX", "x:g", "PX", "20000", "PX", "30000")).toBe("v");
    expect(await r("TTL", "x:g")).toBe(30);
    expect(await r("GETEX", "x:g", "PXAT", "4000000000999")).toBe("v");
    expect(await r("PEXPIRETIME", "x:g")).toBe(4000000000999);
    expect(await r("GETEX", "x:g", "PERSIST")).toBe("v");
    expect(await r("TTL", "x:g")).toBe(-1);
    expect(await r("GETEX", "x:g", "EXAT", "1")).toBe("v");
    expect(await r("EXISTS", "x:g")).toBe(0);
    // A missing key is nil before its time is read; another type WRONGTYPE.
    expect(await r("GETEX", "x:g", "EX", "0")).toBe(null);
    expect(await r("GETEX", "x:g", "EX", "y")).toBe(null);
    await r("SADD", "x:set", "m");
    expect(await r("GETEX", "x:set", "EX", "0")).toBe(wrongType);
    await r("INCRBY", "x:ctr", "7");
    expect(await r("GETEX", "x:ctr", "EX", "100")).toBe("7");
    expect(await r("TTL", "x:ctr")).toBe(100);
    await r("SET", "x:g", "v");
    expect(await r("GETEX", "x:g", "EX", "0")).toBe("-ERR invalid expire time in 'getex' command");
    expect(await r("GETEX", "x:g", "EX", "y")).toBe(notInteger);
    for (const opts of [["PERSIST", "EX", "10"], ["EX", "10", "PERSIST"], ["KEEPTTL"], ["NX"], ["GET"], ["FOO"], ["EX"]]) {
      expect(await r("GETEX", "x:g", ...opts)).toBe("-ERR syntax error");
    }
    expect(await r("TTL", "x:g")).toBe(-1);

    expect(await r("SETEX", "x:s", "100", "v")).toBe("+OK");
    expect(await r("TTL", "x:s")).toBe(100);
    expect(await r("GET", "x:s")).toBe("v");
    expect(await r("PSETEX", "x:s", "50000", "w")).toBe("+OK");
    expect(await r("TTL", "x:s")).toBe(50);
    expect(await r("SETEX", "x:s", "0", "v")).toBe("-ERR invalid expire time in 'setex' command");
    expect(await r("PSETEX", "x:s", "-1", "v")).toBe("-ERR invalid expire time in 'psetex' command");
    expect(await r("SETEX", "x:s", "y", "v")).toBe(notInteger);
    expect(await r("SETEX", "x:s", "10")).toBe("-ERR wrong number of arguments for 'setex' command");
    expect(await r("GET", "x:s")).toBe("w");
  });
});

describe("an expired key", () => {
  test("a key with a 1 s TTL is gone after it from GET, EXISTS, TYPE, KEYS, SCAN, TTL and DBSIZE", async () => {
    await r("FLUSHALL");
    await r("SET", "gone:str", "v", "EX", "1");
    await r("SADD", "gone:set", "m");
    expect(await r("PEXPIRE", "gone:set", "1000")).toBe(1);
    await r("SET", "stays", "v");
    expect(await r("DBSIZE")).toBe(3);
    expect(await r("INFO", "keyspace")).toBe("# Keyspace\r\ndb0:keys=3,expires=2,avg_ttl=0\r\n");
    expect(await r("GET", "gone:str")).toBe("v");
    const expiredBefore = t.node.engine.expiredTotal;
    // Reads hide the key as soon as its deadline passes on this node's clock.
    expect(await eventually(() => r("EXISTS", "gone:str", "gone:set"), 0, 5_000)).toBe(0);
    expect(await r("GET", "gone:str")).toBe(null);
    expect(await r("TYPE", "gone:set")).toBe("+none");
    expect(await r("SMEMBERS", "gone:set")).toEqual({ set: [] });
    expect(await r("TTL", "gone:str")).toBe(-2);
    expect(await r("PTTL", "gone:set")).toBe(-2);
    expect(await r("EXPIRETIME", "gone:str")).toBe(-2);
    expect(await r("PERSIST", "gone:str")).toBe(0);
    expect(await r("EXPIRE", "gone:str", "100")).toBe(0);
    expect(await r("KEYS", "*")).toEqual(["stays"]);
    expect(await r("SCAN", "0", "COUNT", "100")).toEqual(["0", ["stays"]]);
    // DBSIZE and INFO count a key until the node's sweep executes its deadline (a tick is 50 ms).
    expect(await eventually(() => r("DBSIZE"), 1, 5_000)).toBe(1);
    expect(await eventually(() => r("INFO", "keyspace"), "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n", 5_000)).toBe("# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n");
    const stats = (await r("INFO", "stats")) as string;
    expect(stats).toContain(`expired_keys:${expiredBefore + 2}\r\n`);
    // A write after the expiry starts a fresh key, without the old deadline.
    expect(await r("SADD", "gone:set", "fresh")).toBe(1);
    expect(await r("SMEMBERS", "gone:set")).toEqual({ set: ["fresh"] });
    expect(await r("TTL", "gone:set")).toBe(-1);
  });
});
