// Config mistakes are reported the way an operator fixes them: every problem at once, each
// naming its file (or flag) and field, the closest known field for a typo, the YAML parser's
// whole message, and no prefix said twice.
import { describe, expect, test } from "bun:test";
import { parseDocument } from "yaml";
import { closestField, ConfigError, resolveNodeConfig, type ConfigInput } from "../../src/config/config.ts";

function errorOf(input: ConfigInput): ConfigError {
  try {
    resolveNodeConfig(input);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("no ConfigError");
}

const file = (text: string, path = "/etc/imdb/db2.yaml") => ({ path, text });

describe("a config file with several mistakes", () => {
  const text = ["id: db2", "peerAdr: 127.0.0.1:7000", "durability: fast", "logLevel: loud", "seeds: [a:1, b]", "insecure: true", ""].join("\n");
  const err = errorOf({ file: file(text), flags: {} });

  test("reports every one at once, each naming the file and field", () => {
    expect(err.issues.map((i) => i.field)).toEqual(["peerAdr", "durability", "logLevel", "seeds[1]"]);
    const lines = err.message.split("\n");
    expect(lines[0]).toBe("config: 4 problems:");
    expect(lines.slice(1)).toEqual([
      "  /etc/imdb/db2.yaml: peerAdr: unknown field (did you mean peerAddr?)",
      '  /etc/imdb/db2.yaml: durability: "fast" is not sync, none or interval:MS (1..60000)',
      "  /etc/imdb/db2.yaml: logLevel: must be one of debug, info, warn, error",
      '  /etc/imdb/db2.yaml: seeds[1]: "b" is not HOST:PORT',
    ]);
  });

  test("bad flags are reported with the file's problems, named as flags", () => {
    const both = errorOf({ file: file(text), flags: { logFormat: "xml", clockOffsetMs: "soon" } });
    expect(both.issues).toHaveLength(6);
    expect(both.message).toContain("\n  --log-format: must be one of text, json");
    expect(both.message).toContain("\n  --clock-offset-ms: must be an integer");
  });
});

describe("one mistake", () => {
  test("is one line naming the file, with no prefix said twice", () => {
    const err = errorOf({ file: file("peer_addr: 127.0.0.1:7000\ninsecure: true\n", "x.yaml"), flags: {} });
    expect(err.message).toBe("config: x.yaml: peer_addr: unknown field (did you mean peerAddr?)");
  });

  for (const [what, input] of [
    ["an unreadable file", { file: { path: "/nope.yaml", readError: "ENOENT" }, flags: {} }],
    ["invalid YAML", { file: file("a: [", "x.yaml"), flags: {} }],
    ["a file too large", { file: file("#".repeat(2 * 1024 * 1024), "big.yaml"), flags: {} }],
    ["a file that is a list", { file: file("- a\n- b\n", "list.yaml"), flags: {} }],
    ["a missing tlsDir", { flags: {} }],
  ] as const) {
    test(`${what}: "config:" once`, () => {
      const err = errorOf(input);
      expect(err.message.startsWith("config: ")).toBe(true);
      expect(err.message).not.toMatch(/config: config|config:.*config:/);
    });
  }
});

describe("invalid YAML", () => {
  test("every parser error is reported whole, with its line, column and excerpt", () => {
    const text = "a: [\nb: 1\n  c: 2\n";
    const parserMessages = parseDocument(text).errors.map((e) => e.message);
    expect(parserMessages.length).toBeGreaterThan(1);
    const err = errorOf({ file: file(text, "x.yaml"), flags: {} });
    expect(err.issues).toHaveLength(parserMessages.length);
    for (const m of parserMessages) {
      // Every line of the parser's message survives (indented under its problem).
      for (const line of m.trimEnd().split("\n")) if (line.trim() !== "") expect(err.message).toContain(line);
    }
    expect(err.message).toContain("at line 2, column 1");
  });
});

describe("typo suggestions", () => {
  test.each([
    ["peerAdr", "peerAddr"],
    ["peer_addr", "peerAddr"],
    ["PeerAddr", "peerAddr"],
    ["peer-addr", "peerAddr"],
    ["snapshotInterval", "snapshotIntervalMs"],
    ["durabilty", "durability"],
    ["seed", "seeds"],
  ])("%s -> %s", (typo, field) => {
    expect(closestField(typo) as string | undefined).toBe(field);
  });

  test.each(["zzzzzz", "replicas", "password"])("%s has no suggestion", (name) => {
    expect(closestField(name)).toBeUndefined();
    expect(errorOf({ file: file(`${name}: 1\n`), flags: {} }).message).toEndWith(`${name}: unknown field`);
  });
});

describe("a huge field name or value", () => {
  test("is quoted cut short, and costs no suggestion search", () => {
    const long = "x".repeat(200_000);
    const t0 = performance.now();
    const err = errorOf({ file: file(`? ${long}\n: 1\ndurability: ${long}\n`), flags: {} });
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(err.issues).toHaveLength(2);
    expect(err.message.length).toBeLessThan(600);
    expect(err.message).toContain("(200002 chars)");
  });
});

describe("fields related to each other", () => {
  test("are checked once the file and flags are merged, every problem at once", () => {
    const err = errorOf({ file: file("maxClockSkewMs: 60000\nhlcRemoteAheadMsMax: 1000\n"), flags: { peerAddr: "127.0.0.1:7000", clientAddr: "127.0.0.1:7000" } });
    expect(err.issues.map((i) => i.field)).toEqual(["tlsDir", "clientAddr", "hlcRemoteAheadMsMax"]);
    expect(err.message).toContain("hlcRemoteAheadMsMax: must be >= maxClockSkewMs (60000)");
  });
});

describe("respAddr (the Redis port)", () => {
  test("a malformed one, or one that is another port's address, is refused naming the field", () => {
    expect(errorOf({ flags: { insecure: true, respAddr: "localhost" } }).message).toBe('config: --resp-addr: "localhost" is not HOST:PORT');
    expect(errorOf({ flags: { insecure: true, respAddr: "127.0.0.1:7100" } }).message).toBe("config: respAddr: must differ from peerAddr, clientAddr and metricsAddr");
    expect(errorOf({ flags: { insecure: true, respMaxClients: "0" } }).message).toBe("config: --resp-max-clients: must be >= 1");
  });

  test("empty (the default) serves no Redis port; HOST:PORT and maxclients are taken", () => {
    expect(resolveNodeConfig({ flags: { insecure: true } }).respAddr).toBe("");
    const cfg = resolveNodeConfig({ file: file("respAddr: 127.0.0.1:6379\nrespMaxClients: 50\ninsecure: true\n"), flags: {} });
    expect([cfg.respAddr, cfg.respMaxClients]).toEqual(["127.0.0.1:6379", 50]);
  });
});
