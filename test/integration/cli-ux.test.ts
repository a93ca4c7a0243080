// The CLI a user expects (issue 16), through the built binary against a real node: 1 MiB values
// from stdin and from a file, JSON errors on stderr, hints for the peer port and a stopped node,
// mget, and batch mode with a malformed line refused before anything is sent.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureBinary, startNode, tempDir, type NodeProc } from "./harness.ts";

setDefaultTimeout(90_000);

const dir = tempDir("cli-ux");
let node: NodeProc;

interface Ran { code: number; out: string; err: string }

/** `imdb ARGS` with stdin from a file (or nothing), stdout kept as bytes too. */
async function imdb(args: string[], stdinFile?: string): Promise<Ran & { outBytes: Uint8Array }> {
  const proc = Bun.spawn([ensureBinary(), ...args], {
    stdin: stdinFile === undefined ? "ignore" : Bun.file(stdinFile), stdout: "pipe", stderr: "pipe", env: { ...process.env, IMDB_SERVER: "", IMDB_TLS_DIR: "" },
  });
  const [outBytes, err, code] = await Promise.all([new Response(proc.stdout).bytes(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: new TextDecoder().decode(outBytes), outBytes, err };
}

const client = (args: string[], stdinFile?: string) => imdb(["client", "--insecure", "--server", node.clientAddr, ...args], stdinFile);

beforeAll(async () => {
  node = await startNode("ux-1", ["--insecure", "--data-dir", join(dir.path, "data"), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0"]);
});

afterAll(() => {
  node?.proc.kill("SIGKILL");
  dir.cleanup();
});

/** 1 MiB of bytes that are not UTF-8 text, so get prints them as base64. */
function mebibyte(seed: number): Uint8Array {
  const b = new Uint8Array(1024 * 1024);
  let x = seed;
  for (let i = 0; i < b.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  b[0] = 0xff;
  return b;
}

describe("values from stdin or a file", () => {
  test("a 1 MiB value round-trips through set KEY - (stdin) and set KEY --file F", async () => {
    const a = mebibyte(1);
    const b = mebibyte(2);
    const fa = join(dir.path, "a.bin");
    const fb = join(dir.path, "b.bin");
    writeFileSync(fa, a);
    writeFileSync(fb, b);
    expect(await client(["set", "big-stdin", "-"], fa)).toMatchObject({ code: 0, out: "OK\n" });
    expect(await client(["set", "big-file", "--file", fb])).toMatchObject({ code: 0, out: "OK\n" });
    const ga = await client(["--json", "get", "big-stdin"]);
    const gb = await client(["--json", "get", "big-file"]);
    expect(ga.code).toBe(0);
    expect(Buffer.from(JSON.parse(ga.out).value, "base64").equals(Buffer.from(a))).toBe(true);
    expect(Buffer.from(JSON.parse(gb.out).value, "base64").equals(Buffer.from(b))).toBe(true);
  });

  test("hset with a VALUE of - reads it from stdin", async () => {
    const f = join(dir.path, "h.txt");
    writeFileSync(f, "x".repeat(300 * 1024));
    expect(await client(["hset", "h", "doc", "-"], f)).toMatchObject({ code: 0, out: "1\n" });
    expect((await client(["hget", "h", "doc"])).out).toBe(`${"x".repeat(300 * 1024)}\n`);
  });

  test("a value over the 1 MiB limit, both forms at once, or a missing file: exit 2 before anything is sent", async () => {
    const f = join(dir.path, "over.bin");
    writeFileSync(f, new Uint8Array(1024 * 1024 + 1));
    const over = await client(["set", "over", "--file", f]);
    expect(over.code).toBe(2);
    expect(over.err).toContain("over the limit of 1048576 bytes");
    expect((await client(["set", "over", "-"], f)).code).toBe(2);
    expect((await client(["set", "over", "v", "--file", f])).err).toContain("not both");
    const missing = await client(["set", "over", "--file", join(dir.path, "nope")]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain("ENOENT");
    expect((await client(["get", "over"])).code).toBe(1);
  });
});

describe("errors", () => {
  test("--json: one JSON object on stderr with the status name and the key; stdout stays empty", async () => {
    const r = await client(["--json", "get", "absent"]);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(JSON.parse(r.err)).toEqual({ error: { code: "NOT_FOUND", message: "key not found", key: "absent" } });
  });

  test("human: names the key, no usage text", async () => {
    const r = await client(["get", "absent"]);
    expect(r).toMatchObject({ code: 1, out: "", err: 'error: NOT_FOUND: key not found (key "absent")\n' });
  });

  test("the peer port instead of the client port: a hint to use the client port", async () => {
    const r = await imdb(["client", "--insecure", "--server", node.peerAddr, "get", "k"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("UNIMPLEMENTED");
    expect(r.err).toContain("hint: ");
    expect(r.err).toContain("peer port");
    expect(r.err).not.toContain("Usage:");
    const j = await imdb(["client", "--insecure", "--server", node.peerAddr, "--json", "get", "k"]);
    expect(JSON.parse(j.err).error).toMatchObject({ code: "UNIMPLEMENTED", key: "k" });
    expect(JSON.parse(j.err).error.hint).toContain("client port");
  });

  test("a usage error prints no usage text either, and is JSON with --json", async () => {
    const r = await client(["incr", "c", "abc"]);
    expect(r.code).toBe(2);
    expect(r.err).toBe('error: N must be an integer, got "abc" (key "c")\n');
    const j = await client(["--json", "incr", "c", "abc"]);
    expect(JSON.parse(j.err).error).toMatchObject({ code: "INVALID_ARGUMENT", key: "c" });
    // Commander's own usage errors too: one line and a pointer to --help, or JSON.
    const missing = await client(["get"]);
    expect(missing).toMatchObject({ code: 2, err: "error: missing required argument 'key'\n(add --help for usage)\n" });
    const missingJson = await client(["--json", "get"]);
    expect(missingJson.code).toBe(2);
    expect(JSON.parse(missingJson.err)).toEqual({ error: { code: "INVALID_ARGUMENT", message: "missing required argument 'key'", usage: true } });
  });
});

describe("mget", () => {
  test("prints each key's value, (nil) for a missing one; --json has null", async () => {
    await client(["set", "m1", "one"]);
    await client(["incr", "m2", "7"]);
    expect(await client(["mget", "m1", "missing", "m2"])).toMatchObject({ code: 0, out: "one\n(nil)\n7\n" });
    const j = await client(["--json", "mget", "m1", "missing"]);
    expect(JSON.parse(j.out)).toEqual({ values: [{ key: "m1", type: "lww", value: "one" }, { key: "missing", value: null }] });
  });
});

describe("batch", () => {
  test("one result line per op, in order, through chunks of Batch; an op's error is its line and exit 1", async () => {
    const lines = ["# a comment", 'set "b key" "two words"', "get 'b key'", "", "get b-missing", ...Array.from({ length: 1500 }, () => "incr b-count")];
    const f = join(dir.path, "ops.txt");
    writeFileSync(f, `${lines.join("\n")}\n`);
    const r = await client(["batch"], f);
    expect(r.code).toBe(1);
    const out = r.out.trimEnd().split("\n");
    expect(out.length).toBe(1503);
    expect(out.slice(0, 3)).toEqual(["OK", "two words", 'error: NOT_FOUND: key not found (key "b-missing", line 5)']);
    expect(out[1502]).toBe("1500");
    expect((await client(["get", "b-count"])).out).toBe("1500\n");
  });

  test("--json: one object per op with its line number", async () => {
    const f = join(dir.path, "ops-json.txt");
    writeFileSync(f, "sadd bs a b\nsmembers bs\nhset bh f v\nhget bh f\n");
    const r = await client(["--json", "batch"], f);
    expect(r.code).toBe(0);
    expect(r.out.trimEnd().split("\n").map((l) => JSON.parse(l))).toEqual([
      { line: 1, key: "bs", added: 2 }, { line: 2, key: "bs", members: ["a", "b"] }, { line: 3, key: "bh", added: 1 }, { line: 4, key: "bh", field: "f", value: "v" },
    ]);
  });

  test("a malformed line is named with its number and nothing is sent", async () => {
    const f = join(dir.path, "ops-bad.txt");
    writeFileSync(f, 'incr bad-count\nincr bad-count x\nset k "unterminated\nfrob k\n');
    const r = await client(["batch"], f);
    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err).toContain('error: line 2: N must be an integer, got "x"');
    expect(r.err).toContain("error: line 3: unterminated \" quote");
    expect(r.err).toContain('error: line 4: unknown command "frob"');
    expect(r.err).toContain("nothing was sent");
    expect((await client(["get", "bad-count"])).code).toBe(1);
    const j = await client(["--json", "batch"], f);
    const first = JSON.parse(j.err.split("\n")[0] ?? "");
    expect(first).toEqual({ error: { code: "INVALID_ARGUMENT", message: 'N must be an integer, got "x"', line: 2 } });
  });
});

describe("a server that is down", () => {
  test("says nothing listens there and hints at the address, as text and as JSON", async () => {
    const n = await startNode("ux-down", ["--insecure", "--data-dir", join(dir.path, "down"), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0"]);
    n.proc.kill("SIGTERM");
    await n.proc.exited;
    const r = await imdb(["client", "--insecure", "--server", n.clientAddr, "get", "k"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("UNAVAILABLE");
    expect(r.err).toContain(`hint: nothing listens at ${n.clientAddr}: is the node running`);
    const j = await imdb(["client", "--insecure", "--server", n.clientAddr, "--json", "get", "k"]);
    expect(JSON.parse(j.err).error).toMatchObject({ code: "UNAVAILABLE", key: "k" });
  });
});
