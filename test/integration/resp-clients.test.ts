// Two Redis client libraries (issue 15: ioredis and node-redis, devDependencies) against the built
// binary's Redis port, over TLS with client certificates from `imdb certs init`, as an
// application would use them: their handshakes, strings and counters, sets, hashes, expiry,
// errors, pipelines and SCAN iteration.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Redis from "ioredis";
import { createClient } from "redis";
import { run, startNode, tempDir, type NodeProc } from "./harness.ts";

const dir = tempDir("resp-clients");
const certs = join(dir.path, "certs");
let node: NodeProc;
let port = 0;

function tlsFiles(who: string): { ca: Buffer; cert: Buffer; key: Buffer } {
  return { ca: readFileSync(join(certs, "ca.crt")), cert: readFileSync(join(certs, `${who}.crt`)), key: readFileSync(join(certs, `${who}.key`)) };
}

beforeAll(async () => {
  const made = await run(["certs", "init", "--dir", certs, "--nodes", "c1", "--clients", "app"]);
  expect(made.code).toBe(0);
  node = await startNode("c1", ["--tls-dir", certs, "--data-dir", join(dir.path, "c1"), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", "--resp-addr", "127.0.0.1:0"]);
  port = Number(node.respAddr?.split(":").at(-1));
}, 90_000);

afterAll(async () => {
  node?.proc.kill("SIGTERM");
  await node?.proc.exited;
  dir.cleanup();
});

describe("ioredis over TLS with a client certificate", () => {
  test("strings, counters, sets, hashes, expiry, WRONGTYPE, a pipeline and scanStream", async () => {
    // servername: the node certificate names 127.0.0.1 (an IP SAN); ioredis checks it.
    const r = new Redis({ host: "127.0.0.1", port, tls: { ...tlsFiles("app"), servername: "localhost" }, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await r.connect();
      expect(await r.ping()).toBe("PONG");
      expect(await r.set("io:s", "v")).toBe("OK");
      expect(await r.get("io:s")).toBe("v");
      expect(await r.incrby("io:c", 5)).toBe(5);
      expect(await r.decr("io:c")).toBe(4);
      expect(await r.get("io:c")).toBe("4");
      expect(await r.sadd("io:set", "a", "b", "a")).toBe(2);
      expect((await r.smembers("io:set")).sort()).toEqual(["a", "b"]);
      expect(await r.hset("io:h", { f1: "x", f2: "y" })).toBe(2);
      expect(await r.hgetall("io:h")).toEqual({ f1: "x", f2: "y" });
      expect(await r.hincrby("io:h", "n", 3)).toBe(3);
      await expect(r.incr("io:set")).rejects.toThrow(/^WRONGTYPE Operation against a key holding the wrong kind of value/);
      expect(await r.expire("io:s", 100)).toBe(1);
      const ttl = await r.ttl("io:s");
      expect(ttl).toBeGreaterThan(95);
      expect(ttl).toBeLessThanOrEqual(100);
      expect(await r.persist("io:s")).toBe(1);
      expect(await r.ttl("io:s")).toBe(-1);
      // A pipeline of 200 commands: answered in order.
      const p = r.pipeline();
      for (let i = 0; i < 100; i++) p.set(`io:p:${i}`, String(i)).incr("io:pc");
      const out = await p.exec();
      expect(out?.length).toBe(200);
      expect(out?.every(([err]) => err === null)).toBe(true);
      expect(out?.[199]?.[1]).toBe(100);
      // SCAN iteration: every io:p:* key exactly once.
      const seen: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const s = r.scanStream({ match: "io:p:*", count: 7 });
        s.on("data", (keys: string[]) => seen.push(...keys));
        s.on("end", () => resolve());
        s.on("error", reject);
      });
      expect(seen.length).toBe(100);
      expect(new Set(seen).size).toBe(100);
    } finally {
      r.disconnect();
    }
  }, 60_000);
});

describe("node-redis over TLS with a client certificate", () => {
  for (const RESP of [2, 3] as const) {
    test(`RESP${RESP}: its handshake (HELLO, CLIENT SETINFO), commands, errors, a multi-command pipeline and scanIterator`, async () => {
      const c = createClient({ RESP, socket: { host: "127.0.0.1", port, tls: true, servername: "localhost", ...tlsFiles("app"), reconnectStrategy: false } });
      c.on("error", () => undefined);
      await c.connect();
      try {
        expect(await c.ping()).toBe("PONG");
        expect(await c.set(`nr${RESP}:s`, "v")).toBe("OK");
        expect(await c.get(`nr${RESP}:s`)).toBe("v");
        expect(await c.incrBy(`nr${RESP}:c`, 7)).toBe(7);
        expect(await c.sAdd(`nr${RESP}:set`, ["a", "b"])).toBe(2);
        expect(await c.sIsMember(`nr${RESP}:set`, "a")).toBeTruthy();
        expect(await c.hSet(`nr${RESP}:h`, { f: "1" })).toBe(1);
        expect(await c.hGet(`nr${RESP}:h`, "f")).toBe("1");
        await expect(c.sAdd(`nr${RESP}:s`, "x")).rejects.toThrow(/WRONGTYPE/);
        // Commands sent without awaiting each other go out as one pipeline.
        const many = await Promise.all(Array.from({ length: 50 }, (_, i) => c.set(`nr${RESP}:k:${i}`, String(i))));
        expect(many.every((x) => x === "OK")).toBe(true);
        const keys: string[] = [];
        for await (const batch of c.scanIterator({ MATCH: `nr${RESP}:k:*`, COUNT: 9 })) keys.push(...(Array.isArray(batch) ? batch : [batch]));
        expect(keys.length).toBe(50);
        expect(new Set(keys).size).toBe(50);
        expect(await c.dbSize()).toBeGreaterThanOrEqual(54);
      } finally {
        await c.quit().catch(() => c.disconnect());
      }
    }, 60_000);
  }
});
