// `imdb certs`, `imdb client`, `imdb admin` and `imdb bench load` as processes against a real mTLS server: outputs and exit codes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startClientServer, type RunningServer } from "../../src/transport/server.ts";
import { loadTlsDir } from "../../src/transport/tls.ts";
import { FakeNode } from "./fake-node.ts";

const entry = join(import.meta.dir, "cli-entry.ts");
let dir = "";
let certDir = "";
let srv: RunningServer;
let server = "";
const fake = new FakeNode();

interface Run { code: number; out: string; err: string }

async function imdb(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const proc = Bun.spawn([process.execPath, entry, ...args], {
    stdout: "pipe", stderr: "pipe", env: { ...process.env, IMDB_SERVER: "", IMDB_TLS_DIR: "", ...env },
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out, err };
}

const client = (...args: string[]): Promise<Run> => imdb(["client", "--server", server, "--tls-dir", certDir, ...args]);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "imdb-cli-"));
  certDir = join(dir, "certs");
  const made = await imdb(["certs", "init", "--dir", certDir, "--nodes", "a,b", "--admins", "ops", "--hosts", "db.example,10.1.2.3"]);
  expect(made.code).toBe(0);
  srv = await startClientServer({ addr: "127.0.0.1:0", security: { tls: await loadTlsDir(certDir, "a") }, handler: fake, admin: new FakeNode() });
  server = `127.0.0.1:${srv.port}`;
});

afterAll(async () => {
  await srv?.shutdown(1000);
  await rm(dir, { recursive: true, force: true });
});

describe("imdb certs init", () => {
  test("writes every file, keys 0600, and never overwrites without --force", async () => {
    for (const f of ["ca", "a", "b", "client", "ops"]) {
      expect((await stat(join(certDir, `${f}.crt`))).isFile()).toBe(true);
      expect((await stat(join(certDir, `${f}.key`))).mode & 0o777).toBe(0o600);
    }
    const before = await Bun.file(join(certDir, "a.crt")).text();
    const again = await imdb(["certs", "init", "--dir", certDir, "--nodes", "a"]);
    expect(again.code).toBe(2);
    expect(again.err).toContain("--force");
    expect(await Bun.file(join(certDir, "a.crt")).text()).toBe(before);
    const bad = await imdb(["certs", "init", "--dir", join(dir, "x"), "--nodes", "a,a"]);
    expect(bad.code).toBe(2);
  });

  test("signs just a client or admin with an existing CA; a new CA needs a node", async () => {
    const ca = await Bun.file(join(certDir, "ca.crt")).text();
    const one = await imdb(["certs", "init", "--dir", certDir, "--clients", "app"]);
    expect(one.code).toBe(0);
    expect(one.out).toContain("signed with the existing CA");
    expect((await stat(join(certDir, "app.key"))).mode & 0o777).toBe(0o600);
    const admin = await imdb(["certs", "init", "--dir", certDir, "--clients", "", "--admins", "ops2"]);
    expect(admin.code).toBe(0);
    expect(await Bun.file(join(certDir, "ca.crt")).text()).toBe(ca);
    const fresh = await imdb(["certs", "init", "--dir", join(dir, "fresh"), "--clients", "app"]);
    expect(fresh.code).toBe(2);
    expect(fresh.err).toContain("a new CA needs at least one --nodes id");
    const nothing = await imdb(["certs", "init", "--dir", certDir, "--clients", ""]);
    expect(nothing.code).toBe(2);
    expect(nothing.err).toContain("nothing to sign");
  });
});

describe("imdb client", () => {
  test("incr / decr / get, human and --json, exact int64", async () => {
    expect(await client("incr", "c")).toEqual({ code: 0, out: "1\n", err: "" });
    expect(await client("--json", "incr", "c", "41")).toEqual({ code: 0, out: '{"key":"c","value":42}\n', err: "" });
    expect((await client("decr", "c", "50", "--json")).out).toBe('{"key":"c","value":-8}\n');
    expect((await client("get", "c")).out).toBe("-8\n");
    expect(JSON.parse((await client("get", "c", "--json")).out)).toEqual({ key: "c", type: "pncounter", value: -8 });
    expect((await client("incr", "g", "9223372036854775807", "--type", "gcounter", "--json")).out).toBe('{"key":"g","value":9223372036854775807}\n');
    expect((await client("get", "g", "--json")).out).toBe('{"key":"g","type":"gcounter","value":9223372036854775807}\n');
  });

  test("set / get LWW text and bytes; MV with context", async () => {
    expect(await client("set", "s", "héllo")).toEqual({ code: 0, out: "OK\n", err: "" });
    expect((await client("get", "s")).out).toBe("héllo\n");
    expect(JSON.parse((await client("--json", "get", "s")).out)).toEqual({ key: "s", type: "lww", value: "héllo" });
    await client("set", "bin", "--base64", "/wA=");
    expect((await client("get", "bin")).out).toBe("base64:/wA=\n");
    expect(JSON.parse((await client("get", "bin", "--json")).out)).toEqual({ key: "bin", type: "lww", value: "/wA=", encoding: "base64" });
    expect((await client("set", "--mv", "m", "v1")).code).toBe(0);
    await client("set", "--mv", "m", "v2");
    const got = JSON.parse((await client("get", "m", "--json")).out) as { values: string[]; context: string; type: string };
    expect(got.type).toBe("mv");
    expect(got.values).toEqual(["v1", "v2"]);
    expect((await client("get", "m")).out).toBe(`v1\nv2\ncontext: ${got.context}\n`);
    expect((await client("set", "--mv", "m", "v3", "--context", got.context)).code).toBe(0);
    expect(JSON.parse((await client("get", "m", "--json")).out).values).toEqual(["v3"]);
  });

  test("writes carry a fresh request id; UNAVAILABLE is retried with the same id, --request-id sets it", async () => {
    const before = fake.requestIds.length;
    fake.unavailableNext = 2;
    const r = await client("incr", "retried", "5");
    expect(r.code).toBe(0);
    expect(r.out).toBe("5\n");
    expect(r.err).toContain("retrying (UNAVAILABLE) with the same request id");
    const ids = fake.requestIds.slice(before);
    expect(ids.length).toBe(3);
    expect(ids[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(1);
    // The next command gets a new id; --request-id names it (as UTF-8 bytes).
    expect((await client("set", "s2", "v")).code).toBe(0);
    expect((await client("decr", "retried", "--request-id", "op-7")).code).toBe(0);
    const [setId, decrId] = fake.requestIds.slice(-2);
    expect(setId).not.toBe(ids[0]);
    expect(decrId).toBe(Buffer.from("op-7").toString("hex"));
    expect((await client("incr", "x", "--request-id", "a".repeat(65))).code).toBe(2);
    // Retries give up after a bound, with the status.
    fake.unavailableNext = 10;
    const gaveUp = await client("incr", "retried");
    fake.unavailableNext = 0;
    expect(gaveUp.code).toBe(1);
    expect(gaveUp.err).toContain("error: UNAVAILABLE");
  });

  test("status and members", async () => {
    const st = JSON.parse((await client("status", "--json")).out) as Record<string, unknown>;
    expect(st.nodeId).toBe("a");
    expect((await client("status")).out).toContain("node:        a");
    expect(JSON.parse((await client("members", "--json")).out)).toEqual({
      members: [
        { id: "a", address: "127.0.0.1:7000", status: "alive", incarnation: 3 },
        { id: "b", address: "127.0.0.1:7001", status: "suspect", incarnation: 1 },
      ],
    });
    expect((await client("members")).out.split("\n")[0]).toMatch(/^ID\s+ADDRESS\s+STATUS\s+INCARNATION$/);
  });

  test("server errors exit 1 and name the status on stderr; stdout stays empty", async () => {
    expect(await client("get", "nope")).toEqual({ code: 1, out: "", err: 'error: NOT_FOUND: key not found (key "nope")\n' });
    expect(await client("get", "nope", "--json")).toEqual({ code: 1, out: "", err: '{"error":{"code":"NOT_FOUND","message":"key not found","key":"nope"}}\n' });
    expect((await client("incr", "c", "0")).err).toStartWith("error: INVALID_ARGUMENT:");
    expect((await client("incr", "")).err).toStartWith("error: INVALID_ARGUMENT:");
    expect((await client("decr", "g")).err).toStartWith("error: FAILED_PRECONDITION:");
    const down = await imdb(["client", "--server", "127.0.0.1:1", "--tls-dir", certDir, "get", "k"]);
    expect(down.code).toBe(1);
    expect(down.err).toStartWith("error: UNAVAILABLE:");
  });

  test("TLS mistakes get a hint: a node certificate from another CA, a client certificate the node refuses, plaintext against TLS", async () => {
    const other = join(dir, "other-ca");
    expect((await imdb(["certs", "init", "--dir", other, "--nodes", "z"])).code).toBe(0);
    const untrusted = await imdb(["client", "--server", server, "--tls-dir", other, "get", "k"]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.err).toContain("hint: the node's certificate is not signed by your CA");
    // The cluster's CA, but a client certificate signed by another one.
    const mixed = join(dir, "mixed");
    await Bun.write(join(mixed, "ca.crt"), Bun.file(join(certDir, "ca.crt")));
    await Bun.write(join(mixed, "client.crt"), Bun.file(join(other, "client.crt")));
    await Bun.write(join(mixed, "client.key"), Bun.file(join(other, "client.key")));
    const refused = await imdb(["client", "--server", server, "--tls-dir", mixed, "--json", "get", "k"]);
    expect(refused.code).toBe(1);
    const e = JSON.parse(refused.err).error;
    expect(e).toMatchObject({ code: "UNAVAILABLE", key: "k" });
    expect(e.hint).toContain("refused the TLS handshake");
    const plain = await imdb(["client", "--server", server, "--insecure", "get", "k"]);
    expect(plain.code).toBe(1);
    expect(plain.err).toContain("drop --insecure");
  });

  test("usage errors exit 2", async () => {
    expect((await client("incr", "c", "abc")).code).toBe(2);
    expect((await client("frobnicate")).code).toBe(2);
    expect((await client("set", "k", "v", "--context", "AQ==")).code).toBe(2);
    expect((await client("set", "--mv", "k", "v", "--context", "not base64!")).code).toBe(2);
    const noTls = await imdb(["client", "--server", server, "get", "c"]);
    expect(noTls.code).toBe(2);
    expect(noTls.err).toContain("--tls-dir");
    expect((await imdb(["client", "--server", "nohostport", "--insecure", "get", "c"])).code).toBe(2);
  });

  test("IMDB_SERVER and IMDB_TLS_DIR are the defaults", async () => {
    expect(await imdb(["client", "get", "c"], { IMDB_SERVER: server, IMDB_TLS_DIR: certDir })).toEqual({ code: 0, out: "-8\n", err: "" });
  });
});

describe("imdb admin", () => {
  test("works with an admin certificate, PERMISSION_DENIED with a client one", async () => {
    const ok = await imdb(["admin", "--server", server, "--tls-dir", certDir, "--name", "ops", "--json", "snapshot"]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toEqual({ path: "/data/snap-1", lsn: 42, bytes: 4096, keys: 0, durationMs: 7 });
    const denied = await imdb(["admin", "--server", server, "--tls-dir", certDir, "--name", "client", "stats"]);
    expect(denied.code).toBe(1);
    expect(denied.err).toStartWith("error: PERMISSION_DENIED:");
  });
});

describe("imdb bench load", () => {
  test("reports ops/s and latency percentiles as one JSON object, progress on stderr", async () => {
    const r = await imdb(["bench", "load", "--server", server, "--tls-dir", certDir, "--seconds", "1", "--clients", "2", "--batch", "10", "--op", "mixed", "--json"]);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.out) as { ops: number; opsPerSec: number; errors: number; latencyMs: { p50: number; p99: number } };
    expect(res.ops).toBeGreaterThan(0);
    expect(res.errors).toBe(0);
    expect(res.opsPerSec).toBeGreaterThan(0);
    expect(res.latencyMs.p99).toBeGreaterThanOrEqual(res.latencyMs.p50);
    expect(r.err).toContain("load: ");
  });
});
