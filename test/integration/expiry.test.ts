// Expiry through the built binary (issue 14, the API): `set --ttl` and `ttl`, `get --json`'s
// ttl_ms, `persist`, `expire` with NX/XX/GT/LT, Ttl's -2/-1, an expire of 0 deleting, a key gone
// once its deadline passed (real time, polled against a deadline), and a retried expire with the
// same request id applied once. Needs the engine's expiry (the lead's); until it lands the engine
// answers these ops INVALID_ARGUMENT "expiry is not implemented yet".
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { expiryDeadlineMsMax } from "../../src/limits.ts";
import { run, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";

setDefaultTimeout(120_000);

const dir = tempDir("expiry");
let node: NodeProc;

const client = (args: string[]) => run(["client", "--server", node.clientAddr, "--insecure", ...args]);
/** stdout of a client command that must succeed. */
async function out(args: string[]): Promise<string> {
  const r = await client(args);
  if (r.code !== 0) throw new Error(`imdb client ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}
const ttlOf = async (key: string): Promise<number> => Number(JSON.parse(await out(["--json", "ttl", key])).ttl_ms);

beforeAll(async () => {
  node = await startNode("node-1", [
    "--data-dir", join(dir.path, "node-1"), "--insecure", "--durability", "sync", "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0",
  ]);
});

afterAll(() => {
  node?.proc.kill("SIGKILL");
  dir.cleanup();
});

describe("expiry through the binary", () => {
  test("set --ttl: ttl shows the ms left; get --json shows ttl_ms and expires_at_unix_ms; an MV set takes a TTL too", async () => {
    const before = Date.now();
    expect(await out(["set", "s", "v", "--ttl", "1h"])).toBe("OK");
    const left = await ttlOf("s");
    expect(left).toBeGreaterThan(3_500_000);
    expect(left).toBeLessThanOrEqual(3_600_000);
    const human = await out(["ttl", "s"]);
    expect(Number(human)).toBeLessThanOrEqual(left);
    const got = JSON.parse(await out(["--json", "get", "s"]));
    expect(got).toMatchObject({ key: "s", type: "lww", value: "v" });
    expect(got.ttl_ms).toBeGreaterThan(3_500_000);
    expect(got.ttl_ms).toBeLessThanOrEqual(3_600_000);
    // One node: its clock is this machine's, so the deadline lies an hour after the set was sent.
    expect(got.expires_at_unix_ms).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(got.expires_at_unix_ms).toBeLessThanOrEqual(Date.now() + 3_600_000);
    expect(await out(["get", "s"])).toBe("v");
    expect((await client(["set", "--mv", "m", "v1", "--ttl", "10m"])).code).toBe(0);
    expect(await ttlOf("m")).toBeGreaterThan(500_000);
  });

  test("ttl: -2 for a missing key, -1 for a key without a deadline (whose get --json has no ttl_ms); a plain set clears a deadline, --keep-ttl keeps it", async () => {
    expect(await out(["ttl", "nope"])).toBe("-2 (no such key)");
    expect(await out(["--json", "ttl", "nope"])).toBe('{"key":"nope","ttl_ms":-2}');
    expect(await out(["set", "plain", "v"])).toBe("OK");
    expect(await out(["ttl", "plain"])).toBe("-1 (no deadline)");
    expect(await out(["--json", "get", "plain"])).toBe('{"key":"plain","type":"lww","value":"v"}');
    expect(await out(["set", "kept", "v", "--ttl", "1h"])).toBe("OK");
    expect(await out(["set", "kept", "w", "--keep-ttl"])).toBe("OK");
    expect(await ttlOf("kept")).toBeGreaterThan(3_500_000);
    expect(await out(["set", "kept", "x"])).toBe("OK");
    expect(await out(["ttl", "kept"])).toBe("-1 (no deadline)");
  });

  test("persist: 1 and the deadline is gone, then 0", async () => {
    expect(await out(["set", "p", "v", "--ttl", "1h"])).toBe("OK");
    expect(await out(["persist", "p"])).toBe("1");
    expect(await out(["ttl", "p"])).toBe("-1 (no deadline)");
    expect(await out(["--json", "persist", "p"])).toBe('{"key":"p","cleared":false}');
    expect(await out(["persist", "nope"])).toBe("0");
  });

  test("expire NX / XX / GT / LT answer as Redis's (no deadline counts as the latest)", async () => {
    expect(await out(["incr", "e"])).toBe("1");
    expect(await out(["expire", "e", "1h", "--xx"])).toBe("0");
    expect(await out(["expire", "e", "1h", "--gt"])).toBe("0");
    expect(await out(["ttl", "e"])).toBe("-1 (no deadline)");
    expect(await out(["expire", "e", "1h", "--nx"])).toBe("1");
    expect(await out(["expire", "e", "2h", "--nx"])).toBe("0");
    expect(await out(["expire", "e", "2h", "--gt"])).toBe("1");
    expect(await ttlOf("e")).toBeGreaterThan(7_100_000);
    expect(await out(["expire", "e", "1m", "--gt"])).toBe("0");
    expect(await out(["expire", "e", "1m", "--lt"])).toBe("1");
    expect(await ttlOf("e")).toBeLessThanOrEqual(60_000);
    expect(await out(["expire", "e", "2h", "--lt"])).toBe("0");
    expect(await out(["expire", "e", "30m", "--xx"])).toBe("1");
    expect(await ttlOf("e")).toBeGreaterThan(1_700_000);
    expect(await out(["--json", "expire", "e", "--at", String(Date.now() + 3_600_000)])).toBe('{"key":"e","set":true}');
    expect(await ttlOf("e")).toBeGreaterThan(3_500_000);
    expect(await out(["expire", "nope", "1h"])).toBe("0");
    // A key without a deadline takes LT (any deadline is earlier than none).
    expect(await out(["incr", "e2"])).toBe("1");
    expect(await out(["expire", "e2", "1h", "--lt"])).toBe("1");
  });

  test("expire with a TTL of 0 (or less, or a time in the past) deletes the key now", async () => {
    expect(await out(["set", "z", "v"])).toBe("OK");
    expect(await out(["expire", "z", "0s"])).toBe("1");
    const gone = await client(["get", "z"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("NOT_FOUND");
    expect(await out(["ttl", "z"])).toBe("-2 (no such key)");
    expect(await out(["set", "z2", "v"])).toBe("OK");
    expect(await out(["expire", "z2", "--", "-5s"])).toBe("1");
    expect(await out(["ttl", "z2"])).toBe("-2 (no such key)");
    expect(await out(["set", "z3", "v"])).toBe("OK");
    expect(await out(["expire", "z3", "--at", "1000"])).toBe("1");
    expect(await out(["ttl", "z3"])).toBe("-2 (no such key)");
    expect(await out(["keys", "--prefix", "z"])).toBe("");
  });

  test("a key is gone once its deadline passed: get NOT_FOUND, ttl -2, not listed (real time, 2 s TTL)", async () => {
    const start = Date.now();
    expect(await out(["set", "short", "v", "--ttl", "2s"])).toBe("OK");
    const seen = await client(["get", "short"]);
    // Still there before its deadline (unless this machine took 2 s to run one command).
    if (Date.now() - start < 1500) expect(seen.stdout).toBe("v\n");
    await waitFor("the key to expire", async () => (await client(["get", "short"])).code === 1, 20_000, 100);
    expect(Date.now() - start).toBeGreaterThanOrEqual(2000);
    expect((await client(["get", "short"])).stderr).toContain("NOT_FOUND");
    expect(await out(["ttl", "short"])).toBe("-2 (no such key)");
    expect((await out(["keys", "--prefix", "short"])).split("\n").filter((k) => k !== "")).toEqual([]);
  });

  test("a retried expire with the same request id is applied once: the retry answers the first result and changes nothing", async () => {
    expect(await out(["set", "r", "v"])).toBe("OK");
    expect(await out(["expire", "r", "1h", "--request-id", "expire-r-1"])).toBe("1");
    expect(await out(["persist", "r"])).toBe("1");
    // Were the retry applied again, r would have its hour back.
    expect(await out(["expire", "r", "1h", "--request-id", "expire-r-1"])).toBe("1");
    expect(await out(["ttl", "r"])).toBe("-1 (no deadline)");
    const other = await client(["expire", "r", "2h", "--request-id", "expire-r-1"]);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain("FAILED_PRECONDITION");
    expect(await out(["ttl", "r"])).toBe("-1 (no deadline)");
  });

  test("batch lines carry expiry ops", async () => {
    const proc = Bun.spawn([join(import.meta.dir, "..", "..", "dist", "imdb"), "client", "--server", node.clientAddr, "--insecure", "batch"], {
      stdin: new TextEncoder().encode("set bt v --ttl 1h\nexpire bt 2h --gt\npersist bt\nttl bt\nttl bt-none\n"), stdout: "pipe", stderr: "pipe",
    });
    const [stdout, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect({ code, stdout }).toEqual({ code: 0, stdout: "OK\n1\n1\n-1 (no deadline)\n-2 (no such key)\n" });
  });
});

describe("bounds the node checks against its own clock (no engine expiry needed)", () => {
  test("a TTL reaching past the latest deadline is INVALID_ARGUMENT and writes nothing", async () => {
    const r = await client(["set", "far", "v", "--ttl", `${expiryDeadlineMsMax}ms`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("INVALID_ARGUMENT");
    expect(r.stderr).toContain("reaches past the latest deadline");
    expect((await client(["get", "far"])).code).toBe(1);
    const e = await client(["expire", "far", `${expiryDeadlineMsMax}ms`]);
    expect(e.code).toBe(1);
    expect(e.stderr).toContain("reaches past the latest deadline");
  });
});
