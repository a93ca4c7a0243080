// Expiry in the CLI: durations as people type them, exclusive flags refused before anything is sent,
// batch lines, and `set --ttl` / `expire` / `persist` / `ttl` / `get --json` as processes against a
// FakeNode with a fixed clock (exact outputs; the real engine's runs are test/integration/expiry.test.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { isWrite, parseLine } from "../../src/cli/batch-lines.ts";
import { DurationError, parseDurationMs } from "../../src/cli/duration.ts";
import { expiryDeadlineMsMax } from "../../src/limits.ts";
import { startClientServer, type RunningServer } from "../../src/transport/server.ts";
import { FakeNode } from "./fake-node.ts";

function durationError(text: string, allowNegative = false): string {
  try {
    return `ok ${parseDurationMs(text, "--ttl", allowNegative)}`;
  } catch (err) {
    if (err instanceof DurationError) return err.message;
    throw err;
  }
}

describe("parseDurationMs", () => {
  test("integers with a unit (ms, s, m, h, d), parts adding up", () => {
    expect(parseDurationMs("500ms", "x")).toBe(500);
    expect(parseDurationMs("10s", "x")).toBe(10_000);
    expect(parseDurationMs("2m", "x")).toBe(120_000);
    expect(parseDurationMs("2h", "x")).toBe(7_200_000);
    expect(parseDurationMs("1d", "x")).toBe(86_400_000);
    expect(parseDurationMs("1h30m", "x")).toBe(5_400_000);
    expect(parseDurationMs("1s500ms", "x")).toBe(1500);
    expect(parseDurationMs("0s", "x")).toBe(0);
    expect(parseDurationMs("-2s", "TTL", true)).toBe(-2000);
  });

  test("no unit, a fraction, an unknown unit, a sign where none is allowed, too long: each refused with how to write it", () => {
    const hint = (t: string) => `--ttl must be a duration with a unit, like 10s, 500ms, 2h or 1h30m (units ms, s, m, h, d), got "${t}"`;
    for (const t of ["10", "1.5s", "10x", "", "s", "10 s", "1h-5m", "+5s"]) expect(durationError(t)).toBe(hint(t));
    expect(durationError("-5s")).toBe('--ttl must not be negative, got "-5s"');
    expect(durationError(`${expiryDeadlineMsMax + 1}ms`)).toContain("--ttl is too long: at most");
    expect(durationError(`${"9".repeat(40)}d`)).toContain("--ttl is too long");
    expect(durationError(`${expiryDeadlineMsMax}ms`)).toBe(`ok ${expiryDeadlineMsMax}`);
  });
});

describe("batch lines", () => {
  const op = (t: string) => {
    const p = parseLine(t, 3);
    if (p.kind !== "op") throw new Error(JSON.stringify(p));
    return p.op;
  };
  const err = (t: string): string => {
    const p = parseLine(t, 3);
    return p.kind === "error" ? p.message : `parsed: ${JSON.stringify(p)}`;
  };
  test("set --ttl / --keep-ttl, expire (TTL or --at, one condition), persist, ttl", () => {
    expect(op("set k v --ttl 10s").op).toEqual({ kind: "set", key: "k", value: new TextEncoder().encode("v"), ttlMs: 10_000 });
    expect(op("set k v --keep-ttl --mv").op).toMatchObject({ kind: "setMv", key: "k", keepTtl: true });
    expect(op("expire k 1h30m --nx").op).toEqual({ kind: "expire", key: "k", ttlMs: 5_400_000, cond: "nx" });
    expect(op("expire k -1s").op).toEqual({ kind: "expire", key: "k", ttlMs: -1000 });
    expect(op("expire k --at 1700000000000 --gt").op).toEqual({ kind: "expire", key: "k", atMs: 1_700_000_000_000, cond: "gt" });
    expect(op("persist k").op).toEqual({ kind: "persist", key: "k" });
    expect(op("ttl k").op).toEqual({ kind: "ttl", key: "k" });
    expect([op("expire k 1s"), op("persist k"), op("ttl k")].map(isWrite)).toEqual([true, true, false]);
  });

  test("malformed expiry lines say what is wrong", () => {
    expect(err("set k v --ttl 10s --keep-ttl")).toBe("--ttl and --keep-ttl exclude each other");
    expect(err("set k v --ttl 10")).toContain("--ttl must be a duration with a unit");
    expect(err("set k v --ttl 0s")).toBe("--ttl must be at least 1ms (to remove a key now, use del)");
    expect(err("expire k")).toBe("give the TTL (like 10s) or --at UNIX_MS");
    expect(err("expire k 10s --at 5")).toBe("give a TTL or --at UNIX_MS, not both");
    expect(err("expire k 10s --nx --xx")).toBe("--nx, --xx exclude each other: give at most one condition");
    expect(err("expire k --at soon")).toBe('--at must be an integer (Unix ms), got "soon"');
    expect(err("expire k 10s --request-id x")).toBe("expire does not take --request-id in a batch (each chunk gets one)");
    expect(err("ttl k 5s")).toBe("usage: ttl KEY");
    expect(err("persist")).toBe("usage: persist KEY");
  });
});

describe("imdb client, against a FakeNode with a fixed clock", () => {
  const entry = join(import.meta.dir, "cli-entry.ts");
  const fake = new FakeNode();
  const now = 1_700_000_000_000;
  fake.now = () => now;
  let srv: RunningServer;
  let server = "";

  beforeAll(async () => {
    srv = await startClientServer({ addr: "127.0.0.1:0", security: { insecure: true }, handler: fake });
    server = `127.0.0.1:${srv.port}`;
  });
  afterAll(async () => {
    await srv.shutdown(1000);
  });

  async function client(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
    const proc = Bun.spawn([process.execPath, entry, "client", "--server", server, "--insecure", ...args], {
      stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe", env: { ...process.env, IMDB_SERVER: "" },
    });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, out, err };
  }

  test("set --ttl, ttl (human and --json), get --json with ttl_ms, persist, expire with conditions, ttl 0 deletes", async () => {
    expect(await client(["set", "k", "v", "--ttl", "10s"])).toEqual({ code: 0, out: "OK\n", err: "" });
    expect((await client(["ttl", "k"])).out).toBe("10000\n");
    expect((await client(["--json", "ttl", "k"])).out).toBe('{"key":"k","ttl_ms":10000}\n');
    expect((await client(["--json", "get", "k"])).out).toBe(`{"key":"k","type":"lww","value":"v","ttl_ms":10000,"expires_at_unix_ms":${now + 10_000}}\n`);
    expect((await client(["get", "k"])).out).toBe("v\n");
    expect((await client(["ttl", "nope"])).out).toBe("-2 (no such key)\n");
    expect((await client(["--json", "ttl", "nope"])).out).toBe('{"key":"nope","ttl_ms":-2}\n');
    expect((await client(["expire", "k", "1m", "--nx"])).out).toBe("0\n");
    expect((await client(["expire", "k", "1m", "--gt"])).out).toBe("1\n");
    expect((await client(["expire", "k", "5s", "--gt"])).out).toBe("0\n");
    expect((await client(["--json", "expire", "k", "5s", "--lt"])).out).toBe('{"key":"k","set":true}\n');
    expect((await client(["ttl", "k"])).out).toBe("5000\n");
    expect((await client(["persist", "k"])).out).toBe("1\n");
    expect((await client(["--json", "persist", "k"])).out).toBe('{"key":"k","cleared":false}\n');
    expect((await client(["ttl", "k"])).out).toBe("-1 (no deadline)\n");
    expect((await client(["--json", "get", "k"])).out).toBe('{"key":"k","type":"lww","value":"v"}\n');
    expect((await client(["expire", "k", "--at", String(now + 7000), "--xx"])).out).toBe("0\n");
    expect((await client(["expire", "k", "--at", String(now + 7000)])).out).toBe("1\n");
    expect((await client(["ttl", "k"])).out).toBe("7000\n");
    // A set without --ttl clears the deadline (as Redis's SET); --keep-ttl keeps it.
    expect((await client(["set", "k", "w", "--keep-ttl"])).code).toBe(0);
    expect((await client(["ttl", "k"])).out).toBe("7000\n");
    expect((await client(["set", "k", "w"])).code).toBe(0);
    expect((await client(["ttl", "k"])).out).toBe("-1 (no deadline)\n");
    expect((await client(["expire", "k", "0s"])).out).toBe("1\n");
    expect((await client(["ttl", "k"])).out).toBe("-2 (no such key)\n");
    expect((await client(["set", "k2", "v"])).code).toBe(0);
    expect((await client(["expire", "k2", "--", "-1s"])).out).toBe("1\n");
    expect((await client(["get", "k2"])).code).toBe(1);
  });

  test("usage errors (exit 2, nothing sent): a TTL without a unit, exclusive flags, no deadline, two deadlines", async () => {
    const applied = fake.applied;
    const cases: [string[], string][] = [
      [["set", "k", "v", "--ttl", "10"], '--ttl must be a duration with a unit, like 10s, 500ms, 2h or 1h30m (units ms, s, m, h, d), got "10"'],
      [["set", "k", "v", "--ttl", "1s", "--keep-ttl"], "--ttl and --keep-ttl exclude each other"],
      [["set", "k", "v", "--ttl", "0ms"], "--ttl must be at least 1ms (to remove a key now, use del)"],
      [["expire", "k"], "give the TTL (like 10s) or --at UNIX_MS"],
      [["expire", "k", "10s", "--at", "5"], "give a TTL or --at UNIX_MS, not both"],
      [["expire", "k", "10s", "--gt", "--lt"], "--gt, --lt exclude each other: give at most one condition"],
      [["expire", "k", "--at", "tomorrow"], '--at must be an integer (Unix ms), got "tomorrow"'],
    ];
    for (const [args, message] of cases) {
      const r = await client(args);
      expect({ args, code: r.code, err: r.err }).toEqual({ args, code: 2, err: expect.stringContaining(message) as unknown as string });
    }
    expect(fake.applied).toBe(applied);
  });

  test("batch lines: expire / persist / ttl results, one line each (human and --json)", async () => {
    const lines = "set b v --ttl 3s\nttl b\nexpire b 1m --gt\npersist b\nttl b\nttl none\n";
    expect((await client(["batch"], lines)).out).toBe("OK\n3000\n1\n1\n-1 (no deadline)\n-2 (no such key)\n");
    const json = await client(["--json", "batch"], "expire b 2s\nttl b\n");
    expect(json.out).toBe('{"line":1,"key":"b","set":true}\n{"line":2,"key":"b","ttl_ms":2000}\n');
  });
});
