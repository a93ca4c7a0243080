// Sets as a user meets them: `imdb client sadd / srem / smembers / sismember / scard` (human and
// --json) against a real node through the built binary, WRONG_TYPE and bad members refused, a
// retried SAdd applied once, and removed members staying removed across a SIGKILL restart.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { run, startNode, tempDir, type NodeProc, type RunResult } from "./harness.ts";

setDefaultTimeout(60_000);

const dir = tempDir("sets");
const certs = join(dir.path, "certs");
let node: NodeProc;

const nodeArgs = [
  "--data-dir", join(dir.path, "node-1"), "--tls-dir", certs, "--durability", "sync", "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0",
];
const client = (...args: string[]): Promise<RunResult> => run(["client", "--server", node.clientAddr, "--tls-dir", certs, ...args]);
const ok = (stdout: string): RunResult => ({ code: 0, stdout, stderr: "" });

beforeAll(async () => {
  const made = await run(["certs", "init", "--dir", certs, "--nodes", "node-1", "--clients", "client"]);
  expect(made.code).toBe(0);
  node = await startNode("node-1", nodeArgs);
});

afterAll(() => {
  node?.proc.kill("SIGKILL");
  dir.cleanup();
});

describe("imdb client set commands on a real node", () => {
  test("sadd / srem answer how many members changed; smembers, sismember, scard and get read the set; --json for each", async () => {
    expect(await client("sadd", "tags", "a", "b", "c", "a")).toEqual(ok("3\n"));
    expect(await client("--json", "sadd", "tags", "c", "d")).toEqual(ok('{"key":"tags","added":1}\n'));
    expect(await client("smembers", "tags")).toEqual(ok("a\nb\nc\nd\n"));
    expect(await client("smembers", "tags", "--json")).toEqual(ok('{"key":"tags","members":["a","b","c","d"]}\n'));
    expect(await client("sismember", "tags", "a")).toEqual(ok("true\n"));
    expect(await client("--json", "sismember", "tags", "zz")).toEqual(ok('{"key":"tags","member":"zz","isMember":false}\n'));
    expect(await client("scard", "tags")).toEqual(ok("4\n"));
    expect(await client("scard", "tags", "--json")).toEqual(ok('{"key":"tags","count":4}\n'));
    expect(await client("srem", "tags", "a", "zz")).toEqual(ok("1\n"));
    expect(await client("--json", "srem", "tags", "b")).toEqual(ok('{"key":"tags","removed":1}\n'));
    expect(await client("get", "tags")).toEqual(ok("c\nd\n"));
    expect(await client("get", "tags", "--json")).toEqual(ok('{"key":"tags","type":"set","members":["c","d"]}\n'));
    // Bytes that are not UTF-8 go in and come out as base64.
    expect(await client("sadd", "bin", "--base64", "/wA=", "YQ==")).toEqual(ok("2\n"));
    expect(await client("smembers", "bin")).toEqual(ok("a\nbase64:/wA=\n"));
    expect(await client("smembers", "bin", "--json")).toEqual(ok('{"key":"bin","members":["YQ==","/wA="],"encoding":"base64"}\n'));
    expect(await client("sismember", "bin", "--base64", "/wA=")).toEqual(ok("true\n"));
  });

  test("a missing key reads as the empty set; an srem of it creates nothing", async () => {
    expect(await client("smembers", "nothing")).toEqual(ok("(empty set)\n"));
    expect(await client("scard", "nothing", "--json")).toEqual(ok('{"key":"nothing","count":0}\n'));
    expect(await client("srem", "nothing", "x")).toEqual(ok("0\n"));
    const get = await client("get", "nothing");
    expect(get.code).toBe(1);
    expect(get.stderr).toStartWith("error: NOT_FOUND:");
  });

  test("set commands on another type, and an empty member, are refused (exit 1) and change nothing", async () => {
    expect(await client("incr", "counter", "5")).toEqual(ok("5\n"));
    for (const args of [["sadd", "counter", "x"], ["srem", "counter", "x"], ["smembers", "counter"], ["scard", "counter"], ["sismember", "counter", "x"]]) {
      const r = await client(...args);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toStartWith('error: FAILED_PRECONDITION: key "counter" holds a pncounter, not a set');
    }
    const incr = await client("incr", "tags");
    expect(incr.code).toBe(1);
    expect(incr.stderr).toStartWith("error: FAILED_PRECONDITION:");
    const empty = await client("sadd", "tags", "x", "");
    expect(empty.code).toBe(1);
    expect(empty.stderr).toStartWith("error: INVALID_ARGUMENT:");
    expect(await client("get", "counter")).toEqual(ok("5\n"));
    expect(await client("smembers", "tags")).toEqual(ok("c\nd\n"));
    expect((await client("sadd", "tags")).code).toBe(2); // no member: a usage error
  });

  test("a retried sadd (same request id) is applied once; after a SIGKILL restart the set, its removals and the retry's answer survive", async () => {
    expect(await client("sadd", "tags", "e", "--request-id", "add-e")).toEqual(ok("1\n"));
    expect(await client("sadd", "tags", "e", "--request-id", "add-e")).toEqual(ok("1\n")); // the first answer, not 0
    const reused = await client("sadd", "tags", "f", "--request-id", "add-e");
    expect(reused.code).toBe(1);
    expect(reused.stderr).toStartWith("error: FAILED_PRECONDITION:");
    expect(await client("smembers", "tags")).toEqual(ok("c\nd\ne\n"));
    node.proc.kill("SIGKILL");
    await node.proc.exited;
    node = await startNode("node-1", nodeArgs);
    expect(await client("smembers", "tags")).toEqual(ok("c\nd\ne\n"));
    expect(await client("smembers", "bin", "--json")).toEqual(ok('{"key":"bin","members":["YQ==","/wA="],"encoding":"base64"}\n'));
    expect(await client("sadd", "tags", "e", "--request-id", "add-e")).toEqual(ok("1\n"));
    expect(await client("scard", "tags")).toEqual(ok("3\n"));
  });

  test("keys --type set lists sets; removing the last member or del makes the key absent, and a later sadd starts from nothing", async () => {
    expect(await client("keys", "--type", "set")).toEqual(ok("tags\nbin\n"));
    expect(await client("srem", "--base64", "bin", "YQ==", "/wA=")).toEqual(ok("2\n"));
    expect((await client("get", "bin")).stderr).toStartWith("error: NOT_FOUND:");
    expect(await client("del", "tags", "bin")).toEqual(ok("1\n"));
    expect(await client("smembers", "tags")).toEqual(ok("(empty set)\n"));
    expect(await client("keys", "--type", "set")).toEqual(ok("\n"));
    expect(await client("sadd", "tags", "z")).toEqual(ok("1\n"));
    expect(await client("smembers", "tags")).toEqual(ok("z\n"));
    // A deleted set takes a write of another type too.
    expect(await client("del", "tags")).toEqual(ok("1\n"));
    expect(await client("incr", "tags", "2")).toEqual(ok("2\n"));
  });
});
