// A new user's path through the built binary: certs -> node -> every client command, human and
// --json; validation errors with their gRPC status; refused certificates; restart keeps the data;
// SIGTERM drains and exits 0.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { initCerts, validityFromDays } from "../../src/transport/certs.ts";
import { run, startNode, tempDir, type NodeProc } from "./harness.ts";

setDefaultTimeout(60_000);

const dir = tempDir("node");
const certs = join(dir.path, "certs");
const dataDir = join(dir.path, "data");
let node: NodeProc;

const client = (args: string[], env: Record<string, string> = {}) =>
  run(["client", "--server", node.clientAddr, "--tls-dir", certs, ...args], { env });

beforeAll(async () => {
  const made = await run(["certs", "init", "--dir", certs, "--nodes", "node-1", "--clients", "client", "--admins", "admin"]);
  expect(made.code).toBe(0);
  node = await startNode("node-1", ["--data-dir", dataDir, "--tls-dir", certs, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0"]);
});

afterAll(() => {
  node?.proc.kill("SIGKILL");
  dir.cleanup();
});

describe("imdb certs init", () => {
  test("never overwrites without --force", async () => {
    const again = await run(["certs", "init", "--dir", certs, "--nodes", "node-1"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/overwrite|exist/);
  });
});

describe("client commands", () => {
  test("incr/decr on a PN-Counter, human and --json, negative values", async () => {
    expect((await client(["incr", "c1", "5"])).stdout.trim()).toBe("5");
    const j = await client(["--json", "decr", "c1", "8"]);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual({ key: "c1", value: -3 });
    const g = await client(["--json", "get", "c1"]);
    expect(JSON.parse(g.stdout)).toEqual({ key: "c1", type: "pncounter", value: -3 });
  });

  test("incr --type gcounter makes a grow-only counter that refuses decr", async () => {
    expect((await client(["incr", "--type", "gcounter", "g1"])).code).toBe(0);
    const g = await client(["--json", "get", "g1"]);
    expect(JSON.parse(g.stdout)).toMatchObject({ key: "g1", type: "gcounter", value: 1 });
    const d = await client(["decr", "g1"]);
    expect(d.code).toBe(1);
    expect(d.stderr).toContain("FAILED_PRECONDITION");
  });

  test("set/get LWW", async () => {
    expect((await client(["set", "name", "hello world"])).code).toBe(0);
    expect((await client(["get", "name"])).stdout.trim()).toContain("hello world");
    const j = await client(["--json", "get", "name"]);
    expect(JSON.parse(j.stdout)).toEqual({ key: "name", type: "lww", value: "hello world" });
  });

  test("set --mv keeps siblings until a write carries the context", async () => {
    expect((await client(["set", "--mv", "cart", "apple"])).code).toBe(0);
    const r1 = JSON.parse((await client(["--json", "get", "cart"])).stdout) as { type: string; values: string[]; context: string };
    expect(r1.type).toBe("mv");
    expect(r1.values).toEqual(["apple"]);
    expect((await client(["set", "--mv", "cart", "pear", "--context", r1.context])).code).toBe(0);
    const r2 = JSON.parse((await client(["--json", "get", "cart"])).stdout) as { values: string[] };
    expect(r2.values).toEqual(["pear"]);
  });

  test("status and members", async () => {
    const s = await client(["status"]);
    expect(s.code).toBe(0);
    expect(s.stdout).toContain("node-1");
    const m = JSON.parse((await client(["--json", "members"])).stdout) as { members: Array<{ id: string; status: string; address: string; incarnation: number }> };
    expect(m.members.some((x) => x.id === "node-1" && x.status === "alive")).toBe(true);
  });
});

describe("validation at the edge: status named, state unchanged", () => {
  test("get of a missing key is NOT_FOUND, exit 1", async () => {
    const r = await client(["get", "no-such-key"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("NOT_FOUND");
  });

  test("wrong type is FAILED_PRECONDITION and changes nothing", async () => {
    const r = await client(["incr", "name"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("FAILED_PRECONDITION");
    expect(JSON.parse((await client(["--json", "get", "name"])).stdout).value).toBe("hello world");
  });

  test("a key over 1024 bytes is INVALID_ARGUMENT", async () => {
    const r = await client(["incr", "k".repeat(1025)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("INVALID_ARGUMENT");
  });

  test("overflow past int64 is OUT_OF_RANGE and changes nothing", async () => {
    expect((await client(["incr", "big", "9223372036854775807"])).code).toBe(0);
    const r = await client(["incr", "big", "1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("OUT_OF_RANGE");
    expect((await client(["get", "big"])).stdout.trim()).toBe("9223372036854775807");
  });

  test("N < 1 is INVALID_ARGUMENT from the server", async () => {
    const r = await client(["incr", "k", "0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("INVALID_ARGUMENT");
    expect((await client(["get", "k"])).stderr).toContain("NOT_FOUND");
  });

  test("usage errors exit 2", async () => {
    expect((await client(["incr"])).code).toBe(2);
    expect((await client(["incr", "k", "abc"])).code).toBe(2);
    expect((await client(["frobnicate"])).code).toBe(2);
  });
});

describe("mutual TLS", () => {
  test("no client certificate: refused, node still serving", async () => {
    const r = await run(["client", "--server", node.clientAddr, "--ca", join(certs, "ca.crt"), "get", "name"]);
    expect(r.code).not.toBe(0);
    expect((await client(["get", "name"])).code).toBe(0);
  });

  test("a certificate from another CA: refused", async () => {
    const other = join(dir.path, "other");
    await initCerts({ dir: other, nodes: ["x"], clients: ["client"], admins: [], hosts: [], days: 1, force: false });
    const r = await run(["client", "--server", node.clientAddr, "--ca", join(certs, "ca.crt"), "--cert", join(other, "client.crt"), "--key", join(other, "client.key"), "get", "name"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("UNAVAILABLE");
    expect((await client(["get", "name"])).code).toBe(0);
  });

  test("an expired certificate from the right CA: refused", async () => {
    const expiredDir = join(dir.path, "expired");
    // Same CA: copy it and issue an expired client certificate from it.
    const { copyFileSync, mkdirSync } = await import("node:fs");
    mkdirSync(expiredDir, { recursive: true });
    copyFileSync(join(certs, "ca.crt"), join(expiredDir, "ca.crt"));
    copyFileSync(join(certs, "ca.key"), join(expiredDir, "ca.key"));
    const past = new Date(Date.now() - 10 * 86_400_000);
    await initCerts({ dir: expiredDir, nodes: [], clients: ["old"], admins: [], hosts: [], days: 1, force: false, validity: validityFromDays(past, 1) });
    const r = await run(["client", "--server", node.clientAddr, "--ca", join(certs, "ca.crt"), "--cert", join(expiredDir, "old.crt"), "--key", join(expiredDir, "old.key"), "get", "name"]);
    expect(r.code).toBe(1);
    expect((await client(["get", "name"])).code).toBe(0);
  });
});

describe("lifecycle", () => {
  test("SIGTERM drains and exits 0; a restart keeps every acknowledged write", async () => {
    node.proc.kill("SIGTERM");
    expect(await node.proc.exited).toBe(0);
    node = await startNode("node-1", ["--data-dir", dataDir, "--tls-dir", certs, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0"]);
    expect(JSON.parse((await client(["--json", "get", "c1"])).stdout).value).toBe(-3);
    expect(JSON.parse((await client(["--json", "get", "name"])).stdout).value).toBe("hello world");
    expect(JSON.parse((await client(["--json", "get", "cart"])).stdout).values).toEqual(["pear"]);
    expect((await client(["get", "big"])).stdout.trim()).toBe("9223372036854775807");
  });

  test("SIGKILL then restart keeps every acknowledged write (durability sync)", async () => {
    for (let i = 0; i < 20; i++) expect((await client(["incr", "k-kill"])).code).toBe(0);
    node.proc.kill("SIGKILL");
    await node.proc.exited;
    node = await startNode("node-1", ["--data-dir", dataDir, "--tls-dir", certs, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0"]);
    expect((await client(["get", "k-kill"])).stdout.trim()).toBe("20");
  });

  test("a config error names the field and exits 2", async () => {
    const r = await run(["node", "--id", "x", "--insecure", "--durability", "sometimes"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("durability");
    const r2 = await run(["node", "--id", "x"]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain("tlsDir");
  });
});
