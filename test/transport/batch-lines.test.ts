// `imdb client batch` input lines (src/cli/batch-lines.ts): words and quotes as a shell splits
// them, the commands' own flags, and a clear message for each kind of malformed line.
import { describe, expect, test } from "bun:test";
import { parseLine, splitWords } from "../../src/cli/batch-lines.ts";

describe("splitWords", () => {
  test("blanks separate; '...' is literal; \"...\" and a bare backslash escape", () => {
    expect(splitWords(`set "a key" 'it''s' x\\ y "q\\"\\n" ''`)).toEqual(["set", "a key", "its", "x y", 'q"\n', ""]);
    expect(splitWords(`set k "open`)).toBe('unterminated " quote');
    expect(splitWords(`set k 'open`)).toBe("unterminated ' quote");
    expect(splitWords("set k v\\")).toBe("a \\ at the end of the line");
  });
});

describe("parseLine", () => {
  test("commands become the ops the single commands send", () => {
    const op = (t: string) => {
      const p = parseLine(t, 7);
      if (p.kind !== "op") throw new Error(JSON.stringify(p));
      return p.op;
    };
    expect(op("incr c 5 --type gcounter").op).toEqual({ kind: "increment", key: "c", amount: 5n, counter: "gcounter" });
    expect(op("decr c").op).toEqual({ kind: "decrement", key: "c", amount: 1n });
    expect(op("set k aGk= --base64").op).toEqual({ kind: "set", key: "k", value: new Uint8Array([0x68, 0x69]) });
    expect(op("hset h f v g w").op).toMatchObject({ kind: "hset", key: "h" });
    expect(op("hincrby h f -- -3").op).toMatchObject({ kind: "hincrby", amount: -3n });
    expect(op("del k")).toMatchObject({ line: 7, command: "del", key: "k" });
    expect(parseLine("   ", 1)).toEqual({ kind: "skip" });
    expect(parseLine("# note", 1)).toEqual({ kind: "skip" });
  });

  test("each malformed line names what is wrong", () => {
    const err = (t: string): string => {
      const p = parseLine(t, 3);
      return p.kind === "error" ? `${p.line}: ${p.message}` : "parsed";
    };
    expect(err("frob k")).toStartWith('3: unknown command "frob"');
    expect(err("incr c x")).toBe('3: N must be an integer, got "x"');
    expect(err("incr c 99999999999999999999")).toBe("3: N must fit in a signed 64-bit integer");
    expect(err("get")).toBe("3: usage: get KEY");
    expect(err("hset h f")).toBe("3: usage: hset KEY FIELD VALUE [FIELD VALUE ...]");
    expect(err("hset h f v g")).toBe("3: hset takes FIELD VALUE pairs: the last FIELD has no VALUE");
    expect(err("set k v --request-id x")).toBe("3: set does not take --request-id in a batch (each chunk gets one)");
    expect(err("set k -")).toStartWith("3: a batch line cannot read its value from stdin");
    expect(err("set k v --context AQ==")).toBe("3: --context needs --mv");
    expect(err("set k !! --base64")).toBe("3: VALUE must be base64 (--base64)");
    expect(err("incr c --type lww")).toBe("3: --type must be pncounter or gcounter");
  });
});
