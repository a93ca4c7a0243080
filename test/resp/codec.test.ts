// The RESP codec: what a request stream parses to (whole, split anywhere, or broken), and the
// bytes each reply encodes to in RESP2 and RESP3.
import { describe, expect, test } from "bun:test";
import { argCopyBytesMax, defaultParserLimits, encodeReplies, RespParser, type ParserLimits } from "../../src/resp/codec.ts";
import type { Reply } from "../../src/resp/types.ts";
import { Rng } from "../../src/sim/rng.ts";

const seed = Number(process.env.IMDB_SEED ?? Math.floor(Math.random() * 2 ** 31));
const enc = new TextEncoder();
const dec = new TextDecoder();

function bytes(s: string): Uint8Array {
  return enc.encode(s);
}

/** Every command of `chunks` fed in order, as strings, and the failure if the input broke a rule. */
function parseAll(chunks: readonly Uint8Array[], limits?: Partial<ParserLimits>): { commands: string[][]; failure: string | null } {
  const p = new RespParser({ ...defaultParserLimits, ...limits });
  const commands: string[][] = [];
  for (const c of chunks) {
    p.feed(c);
    for (let args = p.next(); args !== null; args = p.next()) commands.push(args.map((a) => dec.decode(a)));
  }
  return { commands, failure: p.failure };
}

function multibulk(args: readonly (string | Uint8Array)[]): Uint8Array {
  const parts: Uint8Array[] = [bytes(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === "string" ? bytes(a) : a;
    parts.push(bytes(`$${b.length}\r\n`), b, bytes("\r\n"));
  }
  return Buffer.concat(parts);
}

describe("request parsing", () => {
  test("multibulk commands, pipelined in one chunk", () => {
    const stream = Buffer.concat([multibulk(["SET", "k", "v"]), multibulk(["GET", "k"]), multibulk(["ECHO", ""])]);
    expect(parseAll([stream])).toEqual({ commands: [["SET", "k", "v"], ["GET", "k"], ["ECHO", ""]], failure: null });
  });

  test("binary arguments come back byte for byte: short ones copied, long ones as views of the input (no copy)", () => {
    const value = new Uint8Array([0, 13, 10, 255, 42, 36]);
    const long = new Uint8Array(argCopyBytesMax + 1).map((_, i) => (i * 7) & 255);
    const stream = multibulk(["SET", "k", value, long]);
    const p = new RespParser();
    p.feed(stream);
    const args = p.next()!;
    expect([...args[2]!]).toEqual([...value]);
    expect([...args[3]!]).toEqual([...long]);
    expect(args[2]!.buffer).not.toBe(stream.buffer);
    expect(args[3]!.buffer).toBe(stream.buffer);
    // A copy does not change with the input (nor keeps it alive).
    stream.fill(0);
    expect([...args[2]!]).toEqual([...value]);
  });

  test("inline commands as telnet sends them, with Redis's quoting", () => {
    const r = parseAll([bytes('PING\r\nECHO "a b\\x41\\n" \'it\\\'s\'\n\r\n   \r\nset  k   v\r\n')]);
    expect(r).toEqual({ commands: [["PING"], ["ECHO", "a bA\n", "it's"], ["set", "k", "v"]], failure: null });
  });

  test("inline commands: blank lines skipped, words split on spaces and tabs", () => {
    expect(parseAll([bytes("\r\n\tset  k \t v\r\n")]).commands).toEqual([["set", "k", "v"]]);
  });

  test("empty multibulk commands (*0, *-1) are skipped as Redis does", () => {
    expect(parseAll([bytes("*0\r\n*-1\r\n"), multibulk(["PING"])]).commands).toEqual([["PING"]]);
  });

  test("an incomplete command waits for the rest", () => {
    const p = new RespParser();
    p.feed(bytes("*2\r\n$4\r\nECHO\r\n$5\r\nhel"));
    expect(p.next()).toBeNull();
    expect(p.failure).toBeNull();
    p.feed(bytes("lo\r\n"));
    expect(p.next()!.map((a) => dec.decode(a))).toEqual(["ECHO", "hello"]);
    expect(p.next()).toBeNull();
  });

  const broken: [string, string, Partial<ParserLimits>?][] = [
    ["*2\r\n+x\r\n", "Protocol error: expected '$', got '+'"],
    ["*x\r\n", "Protocol error: invalid multibulk length"],
    ["*01\r\n", "Protocol error: invalid multibulk length"],
    ["*5\r\n", "Protocol error: invalid multibulk length", { argsMax: 4 }],
    ["*1\r\n$-1\r\n", "Protocol error: invalid bulk length"],
    ["*1\r\n$abc\r\n", "Protocol error: invalid bulk length"],
    ["*1\r\n$11\r\n", "Protocol error: invalid bulk length", { bulkBytesMax: 10 }],
    ['ECHO "abc\r\n', "Protocol error: unbalanced quotes in request"],
    ["ECHO 'a'b\r\n", "Protocol error: unbalanced quotes in request"],
    ["x".repeat(100), "Protocol error: too big inline request", { inlineBytesMax: 64 }],
    ["*" + "1".repeat(100), "Protocol error: too big mbulk count string", { inlineBytesMax: 64 }],
    ["*1\r\n$" + "1".repeat(100), "Protocol error: too big bulk count string", { inlineBytesMax: 64 }],
  ];
  for (const [input, failure, limits] of broken) {
    test(`${JSON.stringify(input.slice(0, 24))} fails: ${failure}`, () => {
      expect(parseAll([bytes(input)], limits)).toEqual({ commands: [], failure });
    });
  }

  test("the commands before a protocol error are still returned; nothing after it", () => {
    expect(parseAll([Buffer.concat([multibulk(["PING"]), bytes("*1\r\n:1\r\n"), multibulk(["PING"])])])).toEqual({
      commands: [["PING"]],
      failure: "Protocol error: expected '$', got ':'",
    });
  });

  test("unparsed input beyond the query buffer limit fails the connection", () => {
    const p = new RespParser({ ...defaultParserLimits, queryBytesMax: 1000, bulkBytesMax: 5000 });
    p.feed(bytes("*2\r\n$4\r\nECHO\r\n$3000\r\n"));
    expect(p.next()).toBeNull();
    expect(p.failure).toBeNull();
    for (let i = 0; i < 20 && p.failure === null; i++) p.feed(new Uint8Array(100));
    expect(p.failure).toBe("Protocol error: query buffer limit of 1000 bytes reached");
  });

  test("a big argument in many small chunks is joined once it is all there (linear, not quadratic)", () => {
    const value = new Uint8Array(1 << 20).fill(120);
    const stream = multibulk(["SET", "k", value]);
    const p = new RespParser();
    let got: Uint8Array[] | null = null;
    for (let at = 0; at < stream.length; at += 1000) {
      p.feed(stream.subarray(at, Math.min(stream.length, at + 1000)));
      got = p.next() ?? got;
    }
    expect(got?.[2]?.length).toBe(value.length);
  });
});

/** A random command of printable, binary and empty arguments, encoded as a client would. */
function randomCommand(rng: Rng): { args: Uint8Array[]; wire: Uint8Array; inline: boolean } {
  const inline = rng.int(5) === 0;
  const n = 1 + rng.int(6);
  const args: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const len = rng.int(4) === 0 ? rng.int(300) : rng.int(12);
    const a = new Uint8Array(inline ? Math.max(1, len) : len);
    for (let j = 0; j < a.length; j++) a[j] = inline ? 97 + rng.int(26) : rng.int(256);
    args.push(a);
  }
  if (!inline) return { args, wire: multibulk(args), inline };
  const line = args.map((a) => dec.decode(a)).join(" ".repeat(1 + rng.int(3)));
  return { args, wire: bytes(line + (rng.int(2) === 0 ? "\r\n" : "\n")), inline };
}

function argsEqual(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a.length === b.length && a.every((x, i) => Buffer.from(x).equals(b[i]!));
}

describe(`fuzz (seed ${seed}; IMDB_SEED=${seed} repeats it)`, () => {
  test("a valid pipeline split at every byte boundary parses to the same commands", () => {
    const rng = new Rng(seed);
    const cmds = Array.from({ length: 12 }, () => randomCommand(rng));
    const stream = Buffer.concat(cmds.map((c) => c.wire));
    const want = cmds.map((c) => c.args);
    for (let cut = 0; cut <= stream.length; cut++) {
      const p = new RespParser();
      const got: Uint8Array[][] = [];
      for (const part of [stream.subarray(0, cut), stream.subarray(cut)]) {
        p.feed(part);
        for (let a = p.next(); a !== null; a = p.next()) got.push(a);
      }
      if (!(got.length === want.length && got.every((g, i) => argsEqual(g, want[i]!)))) throw new Error(`seed ${seed}: split at ${cut} parsed differently`);
    }
  });

  test("valid pipelines cut into random pieces (down to single bytes) parse to the same commands", () => {
    const rng = new Rng(seed + 1);
    for (let round = 0; round < 300; round++) {
      const cmds = Array.from({ length: 1 + rng.int(30) }, () => randomCommand(rng));
      const stream = Buffer.concat(cmds.map((c) => c.wire));
      const p = new RespParser();
      const got: Uint8Array[][] = [];
      for (let at = 0; at < stream.length; ) {
        const len = rng.int(3) === 0 ? 1 : 1 + rng.int(200);
        p.feed(stream.subarray(at, at + len));
        at += len;
        for (let a = p.next(); a !== null; a = p.next()) got.push(a);
      }
      expect(p.failure).toBeNull();
      if (!(got.length === cmds.length && got.every((g, i) => argsEqual(g, cmds[i]!.args)))) throw new Error(`seed ${seed}: round ${round} parsed differently`);
    }
  });

  test("random bytes never throw, never loop, and end in commands, a wait or a protocol error", () => {
    const rng = new Rng(seed + 2);
    const limits = { ...defaultParserLimits, inlineBytesMax: 256, bulkBytesMax: 1024, argsMax: 64, queryBytesMax: 8192 };
    const alphabet = bytes("*$\r\n-0123456789 \"'\\xab");
    for (let round = 0; round < 2000; round++) {
      const p = new RespParser(limits);
      const len = rng.int(400);
      const input = new Uint8Array(len);
      // Mostly protocol characters, so the fuzz reaches deep states rather than failing on byte one.
      for (let i = 0; i < len; i++) input[i] = rng.int(4) === 0 ? rng.int(256) : alphabet[rng.int(alphabet.length)]!;
      let commands = 0;
      for (let at = 0; at < len; ) {
        const n = 1 + rng.int(50);
        p.feed(input.subarray(at, at + n));
        at += n;
        for (let a = p.next(); a !== null; a = p.next()) {
          if (a.length === 0 || a.length > limits.argsMax) throw new Error(`seed ${seed}: round ${round} gave ${a.length} args`);
          if (++commands > len) throw new Error(`seed ${seed}: round ${round} gave more commands than bytes`);
        }
      }
      if (p.failure !== null) expect(p.failure.startsWith("Protocol error: ")).toBe(true);
      expect(p.bufferedBytes).toBeLessThanOrEqual(limits.queryBytesMax + 50);
    }
  });
});

describe("reply encoding", () => {
  const cases: [string, Reply, string, string][] = [
    ["simple", { kind: "simple", text: "OK" }, "+OK\r\n", "+OK\r\n"],
    ["error", { kind: "error", text: "ERR unknown command 'x'" }, "-ERR unknown command 'x'\r\n", "-ERR unknown command 'x'\r\n"],
    ["a line break in a simple string cannot end it early", { kind: "error", text: "ERR a\r\nb" }, "-ERR a b\r\n", "-ERR a b\r\n"],
    ["int", { kind: "int", value: -42 }, ":-42\r\n", ":-42\r\n"],
    ["bigint", { kind: "int", value: 9223372036854775807n }, ":9223372036854775807\r\n", ":9223372036854775807\r\n"],
    ["bulk bytes", { kind: "bulk", value: new Uint8Array([104, 0, 105]) }, "$3\r\nh\0i\r\n", "$3\r\nh\0i\r\n"],
    ["bulk text is UTF-8", { kind: "bulk", value: "é" }, "$2\r\né\r\n", "$2\r\né\r\n"],
    ["null bulk", { kind: "bulk", value: null }, "$-1\r\n", "_\r\n"],
    ["null array", { kind: "array", items: null }, "*-1\r\n", "_\r\n"],
    ["array", { kind: "array", items: [{ kind: "int", value: 1 }, { kind: "bulk", value: "a" }] }, "*2\r\n:1\r\n$1\r\na\r\n", "*2\r\n:1\r\n$1\r\na\r\n"],
    ["map", { kind: "map", entries: [[{ kind: "bulk", value: "k" }, { kind: "int", value: 1 }]] }, "*2\r\n$1\r\nk\r\n:1\r\n", "%1\r\n$1\r\nk\r\n:1\r\n"],
    ["set", { kind: "set", items: [{ kind: "bulk", value: "m" }] }, "*1\r\n$1\r\nm\r\n", "~1\r\n$1\r\nm\r\n"],
    ["double", { kind: "double", value: 1.5 }, "$3\r\n1.5\r\n", ",1.5\r\n"],
    ["infinite double", { kind: "double", value: -Infinity }, "$4\r\n-inf\r\n", ",-inf\r\n"],
    ["bool", { kind: "bool", value: true }, ":1\r\n", "#t\r\n"],
    ["false", { kind: "bool", value: false }, ":0\r\n", "#f\r\n"],
    ["null", { kind: "null" }, "$-1\r\n", "_\r\n"],
    ["verbatim", { kind: "verbatim", format: "txt", text: "hi" }, "$2\r\nhi\r\n", "=6\r\ntxt:hi\r\n"],
  ];
  for (const [name, reply, resp2, resp3] of cases) {
    test(name, () => {
      expect(dec.decode(encodeReplies([reply], 2))).toBe(resp2);
      expect(dec.decode(encodeReplies([reply], 3))).toBe(resp3);
    });
  }

  test("integers of every size and sign: the decimal digits JavaScript's own formatting gives", () => {
    const values: (number | bigint)[] = [0, 1, -1, 9, 10, -10, 99, 100, 12345, -67890, 2 ** 31, -(2 ** 31), Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER,
      0n, -5n, 2n ** 53n - 1n, 2n ** 53n, -(2n ** 53n), 2n ** 63n - 1n, -(2n ** 63n)];
    for (const value of values) expect(dec.decode(encodeReplies([{ kind: "int", value }], 2))).toBe(`:${value}\r\n`);
    const lengths = [0, 9, 10, 99, 100, 1000];
    for (const n of lengths) expect(dec.decode(encodeReplies([{ kind: "bulk", value: new Uint8Array(n).fill(120) }], 2))).toBe(`$${n}\r\n${"x".repeat(n)}\r\n`);
  });

  test("replies larger than the writer's first buffer", () => {
    const big = new Uint8Array(100_000).fill(97);
    const out = encodeReplies([{ kind: "bulk", value: big }, { kind: "simple", text: "OK" }], 2);
    expect(out.length).toBe(`$100000\r\n`.length + 100_000 + 2 + 5);
    expect(dec.decode(out.subarray(out.length - 5))).toBe("+OK\r\n");
  });
});
