// The operator docs stay in step with the code: the config reference names exactly the fields
// of NodeConfig with their real defaults and flags, the metrics table names every imdb_* family
// the registry exposes, api.md covers every CLI command and every RPC, and links resolve.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import type { Command } from "commander";
import { applyOverrides, configFields, defaultNodeConfig } from "../../src/config/config.ts";
import { buildProgram } from "../../src/cli/main.ts";
import { createNodeMetrics } from "../../src/node/metrics.ts";

const docsDir = join(import.meta.dir, "..", "..", "docs");
const read = (name: string): string => readFileSync(join(docsDir, name), "utf8");

/** Rows of the first Markdown table after `heading` (cells trimmed, header and rule dropped). */
function tableAfter(text: string, heading: string): string[][] {
  const lines = text.split("\n");
  const at = lines.findIndex((l) => l.trim() === heading);
  if (at < 0) throw new Error(`heading "${heading}" not found`);
  const rows: string[][] = [];
  let inTable = false;
  for (const line of lines.slice(at + 1)) {
    if (line.startsWith("#")) break;
    if (line.startsWith("|")) {
      inTable = true;
      rows.push(line.slice(1, line.trimEnd().endsWith("|") ? line.trimEnd().length - 1 : undefined).split("|").map((c) => c.trim()));
    } else if (inTable) {
      break;
    }
  }
  return rows.slice(2);
}

const unquote = (cell: string): string | undefined => /^`([^`]*)`$/.exec(cell)?.[1];

describe("docs/operations.md configuration reference", () => {
  const rows = tableAfter(read("operations.md"), "## Configuration reference");
  const fields = rows.map((r) => unquote(r[0] ?? ""));

  test("lists every NodeConfig field exactly once, in the type's order", () => {
    expect(fields).toEqual(Object.keys(configFields));
  });

  test("each default is the real default", () => {
    for (const r of rows) {
      const field = unquote(r[0] ?? "") as keyof typeof configFields;
      const raw = unquote(r[2] ?? "");
      expect(raw, `default of ${field}`).toBeDefined();
      const parsed: unknown = parseYaml(raw as string);
      const cfg = applyOverrides({ ...defaultNodeConfig, seeds: [] }, { [field]: parsed });
      expect(cfg[field], `default of ${field}`).toEqual(defaultNodeConfig[field]);
    }
  });

  test("the flag column matches `imdb node`'s options", () => {
    const node = buildProgram().commands.find((c) => c.name() === "node") as Command;
    // --restore is a one-time start action, not a config field (api.md documents it with `imdb node`).
    const nodeFlags = node.options.map((o) => o.long).filter((f): f is string => f !== undefined && f !== "--config" && f !== "--restore");
    const documented = rows.map((r) => unquote(r[1] ?? "")).filter((f): f is string => f !== undefined);
    expect([...documented].sort()).toEqual([...nodeFlags].sort());
    for (const r of rows) {
      const flag = unquote(r[1] ?? "");
      if (flag === undefined) expect(r[1]).toBe("(YAML only)");
      else expect(flag).toMatch(/^--[a-z-]+$/);
    }
  });

  test("every row says what the field means", () => {
    for (const r of rows) expect((r[4] ?? "").length).toBeGreaterThan(20);
  });
});

describe("docs/operations.md metrics table", () => {
  test("names every imdb_* family the node's registry exposes", async () => {
    // Process and runtime families included: each is documented on its own row (issue 16).
    const m = createNodeMetrics();
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
    expect(names.length).toBeGreaterThanOrEqual(15);
    const documented = tableAfter(read("operations.md"), "## Metrics and logs").map((r) => unquote(r[0] ?? ""));
    for (const n of names) expect(documented).toContain(n);
  });
});

describe("docs/api.md", () => {
  const api = read("api.md");

  /** Every runnable command path, e.g. "client incr", "bench load", "certs init". */
  function leaves(cmd: Command, prefix: string[]): string[] {
    const out: string[] = [];
    for (const c of cmd.commands) {
      const path = [...prefix, c.name()];
      if (c.commands.length === 0) out.push(path.join(" "));
      else out.push(...leaves(c, path));
    }
    return out;
  }

  test("documents every CLI command as a heading", () => {
    const commands = leaves(buildProgram(), []);
    expect(commands).toContain("client incr");
    for (const c of commands) expect(api).toMatch(new RegExp(`^#+ .*\`imdb ${c}[\` ]`, "m"));
  });

  test("documents every RPC of proto/imdb.proto and the health service", () => {
    const proto = readFileSync(join(import.meta.dir, "..", "..", "proto", "imdb.proto"), "utf8");
    const rpcs = [...proto.matchAll(/^\s*rpc (\w+)\(/gm)].map((m) => m[1] as string);
    expect(rpcs.length).toBeGreaterThanOrEqual(11);
    for (const rpc of rpcs) expect(api).toContain(`\`${rpc}\``);
    expect(api).toContain("grpc.health.v1.Health");
  });
});

describe("docs links", () => {
  for (const name of ["architecture.md", "operations.md", "api.md", "benchmarks.md"]) {
    test(`${name}: relative links point at files that exist`, () => {
      const text = read(name);
      for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1] as string;
        if (/^[a-z]+:/.test(target)) continue;
        expect(existsSync(resolve(dirname(join(docsDir, name)), target)), `${name} -> ${target}`).toBe(true);
      }
    });
  }
});
