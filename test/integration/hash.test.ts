// Hashes through the built binary: every `imdb client h*` command with human and --json output,
// Redis's answers (counts, (nil), "hash value is not an integer"), WRONGTYPE as
// FAILED_PRECONDITION, a two-node cluster converging on the observed-remove rules, and a
// restarted node recovering its hashes from the WAL.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { run, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";

setDefaultTimeout(90_000);

const dir = tempDir("hash");
const certs = join(dir.path, "certs");
let n1: NodeProc;
let n2: NodeProc;

const nodeArgs = (id: string, seed: string | null) => [
  "--data-dir", join(dir.path, id), "--tls-dir", certs, "--durability", "sync",
  "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", ...(seed === null ? [] : ["--seeds", seed]),
];

const client = (n: NodeProc, args: string[]) => run(["client", "--server", n.clientAddr, "--tls-dir", certs, ...args]);

/** Runs a client command that must succeed; its stdout, trimmed. */
async function ok(n: NodeProc, args: string[]): Promise<string> {
  const r = await client(n, args);
  if (r.code !== 0) throw new Error(`imdb client ${args.join(" ")}: exit ${r.code}\n${r.stderr}`);
  return r.stdout.trim();
}

async function json(n: NodeProc, args: string[]): Promise<Record<string, unknown>> {
  return JSON.parse(await ok(n, ["--json", ...args])) as Record<string, unknown>;
}

beforeAll(async () => {
  const made = await run(["certs", "init", "--dir", certs, "--nodes", "node-1,node-2", "--clients", "client"]);
  expect(made.code).toBe(0);
  n1 = await startNode("node-1", nodeArgs("node-1", null));
  n2 = await startNode("node-2", nodeArgs("node-2", n1.peerAddr));
});

afterAll(() => {
  n1?.proc.kill("SIGKILL");
  n2?.proc.kill("SIGKILL");
  dir.cleanup();
});

describe("imdb client hash commands", () => {
  test("hset, hget, hmget, hlen, hgetall, hincrby, hdel answer as Redis, in text and --json", async () => {
    expect(await ok(n1, ["hset", "user:1", "name", "Ada", "lang", "en"])).toBe("2");
    expect(await json(n1, ["hset", "user:1", "name", "Ada L.", "visits", "10"])).toEqual({ key: "user:1", added: 1 });
    expect(await ok(n1, ["hget", "user:1", "name"])).toBe("Ada L.");
    expect(await ok(n1, ["hget", "user:1", "nope"])).toBe("(nil)");
    expect(await json(n1, ["hget", "user:1", "nope"])).toEqual({ key: "user:1", field: "nope", value: null });
    expect(await ok(n1, ["hincrby", "user:1", "visits", "5"])).toBe("15");
    expect(await json(n1, ["hincrby", "user:1", "visits", "--", "-20"])).toEqual({ key: "user:1", field: "visits", value: -5 });
    expect(await ok(n1, ["hmget", "user:1", "lang", "nope", "visits"])).toBe("en\n(nil)\n-5");
    expect(await json(n1, ["hmget", "user:1", "lang", "nope"])).toEqual({ key: "user:1", values: ["en", null] });
    expect(await ok(n1, ["hlen", "user:1"])).toBe("3");
    expect(await ok(n1, ["hgetall", "user:1"])).toBe("lang\ten\nname\tAda L.\nvisits\t-5");
    expect(await json(n1, ["hgetall", "user:1"])).toEqual({
      key: "user:1", fields: [{ field: "lang", value: "en" }, { field: "name", value: "Ada L." }, { field: "visits", value: "-5" }],
    });
    expect(await json(n1, ["get", "user:1"])).toEqual({
      key: "user:1", type: "hash", fields: [{ field: "lang", value: "en" }, { field: "name", value: "Ada L." }, { field: "visits", value: "-5" }],
    });
    expect(await json(n1, ["hdel", "user:1", "lang", "nope"])).toEqual({ key: "user:1", removed: 1 });
    expect(await ok(n1, ["hlen", "user:1"])).toBe("2");
    // A missing key reads as an empty hash.
    expect(await ok(n1, ["hlen", "nokey"])).toBe("0");
    expect(await json(n1, ["hgetall", "nokey"])).toEqual({ key: "nokey", fields: [] });
    expect(await ok(n1, ["hdel", "nokey", "f"])).toBe("0");
  });

  test("errors: a non-integer field, a counter key, an odd hset, an empty field", async () => {
    await ok(n1, ["hset", "e:1", "word", "hello"]);
    const notInt = await client(n1, ["hincrby", "e:1", "word", "1"]);
    expect(notInt.code).toBe(1);
    expect(notInt.stderr).toContain("INVALID_ARGUMENT: hash value is not an integer");
    await ok(n1, ["incr", "e:counter"]);
    const wrong = await client(n1, ["hset", "e:counter", "f", "v"]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("FAILED_PRECONDITION");
    const wrongRead = await client(n1, ["hgetall", "e:counter"]);
    expect(wrongRead.stderr).toContain("FAILED_PRECONDITION");
    const odd = await client(n1, ["hset", "e:1", "a", "1", "b"]);
    expect(odd.code).toBe(2);
    const empty = await client(n1, ["hset", "e:1", "", "v"]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain("INVALID_ARGUMENT");
    expect(await ok(n1, ["hgetall", "e:1"])).toBe("word\thello");
  });

  test("two nodes: a field set on node-2 while node-1 deleted it survives, a deleted counter keeps the increment the delete did not see", async () => {
    await ok(n1, ["hset", "t:1", "f", "v1"]);
    await ok(n1, ["hincrby", "t:1", "hits", "5"]);
    await waitFor("node-2 to see t:1", async () => (await ok(n2, ["hlen", "t:1"])) === "2");
    // Concurrent: neither waits for the other's write to arrive first, so with replication in
    // flight either order can happen; the outcome must be the same on both nodes either way.
    const [del, set, inc] = await Promise.all([
      client(n1, ["hdel", "t:1", "f", "hits"]),
      client(n2, ["hset", "t:1", "f", "v2"]),
      client(n2, ["hincrby", "t:1", "hits", "2"]),
    ]);
    expect([del.code, set.code, inc.code]).toEqual([0, 0, 0]);
    const settled = async (n: NodeProc) => ok(n, ["hgetall", "t:1"]);
    const final = await waitFor("both nodes to agree", async () => {
      const [a, b] = [await settled(n1), await settled(n2)];
      return a === b ? a : undefined;
    });
    // node-2's HSET survives unless node-1's HDEL had seen it (then f is gone). hits counts
    // from zero after the HDEL: 2 if the HDEL missed node-2's increment, absent if it saw it.
    const lines = final.split("\n").filter((l) => l !== "");
    for (const l of lines) expect(["f\tv2", "hits\t2"]).toContain(l);
    expect(lines).not.toContain("hits\t7");
  });

  test("a restarted node recovers its hashes from the WAL", async () => {
    await ok(n1, ["hset", "r:1", "a", "1"]);
    await ok(n1, ["hincrby", "r:1", "n", "3"]);
    await ok(n1, ["hdel", "r:1", "a"]);
    n1.proc.kill("SIGKILL");
    await n1.proc.exited;
    n1 = await startNode("node-1", nodeArgs("node-1", n2.peerAddr));
    expect(await ok(n1, ["hgetall", "r:1"])).toBe("n\t3");
    expect(await ok(n1, ["hincrby", "r:1", "n", "1"])).toBe("4");
  });
});
