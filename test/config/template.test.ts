// The operator's config reference (configs/node-template.yaml) must name exactly the fields of
// NodeConfig, parse to the defaults, and every bad value must be refused naming its field.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  applyOverrides,
  ConfigError,
  configFields,
  defaultNodeConfig,
  finishConfig,
  parseConfigYaml,
} from "../../src/config/config.ts";
import { loadNodeConfig } from "../../src/cli/node.ts";
import { nodeConfigTemplate } from "../../src/config/template.ts";

const templatePath = join(import.meta.dir, "..", "..", "configs", "node-template.yaml");

describe("configs/node-template.yaml", () => {
  const raw = parseConfigYaml(readFileSync(templatePath, "utf8"), templatePath);

  test("names exactly the fields of NodeConfig", () => {
    expect(Object.keys(raw).sort()).toEqual(Object.keys(configFields).sort());
    expect(Object.keys(defaultNodeConfig).sort()).toEqual(Object.keys(configFields).sort());
  });

  test("its values are the defaults", () => {
    const parsed = applyOverrides({ ...defaultNodeConfig, seeds: [] }, raw);
    expect(parsed).toEqual({ ...defaultNodeConfig, seeds: [] });
  });

  test("is what `imdb config template` prints (embedded byte for byte)", () => {
    expect(nodeConfigTemplate).toBe(readFileSync(templatePath, "utf8"));
  });

  test("every field has a comment above it", () => {
    const lines = readFileSync(templatePath, "utf8").split("\n");
    for (const field of Object.keys(configFields)) {
      const i = lines.findIndex((l) => l.startsWith(`${field}:`));
      expect(i).toBeGreaterThan(0);
      expect(lines[i - 1]?.startsWith("#")).toBe(true);
    }
  });
});

describe("config errors name the field", () => {
  const bad: Array<[string, unknown]> = [
    ["peerAddr", "nope"],
    ["clientAddr", "host:99999"],
    ["seeds", ["a:1", "b"]],
    ["durability", "interval:0"],
    ["durability", "fast"],
    ["logFormat", "xml"],
    ["snapshotIntervalMs", -1],
    ["walSegmentBytesMax", 10],
    ["insecure", "yes"],
    ["unknownField", 1],
  ];
  for (const [field, value] of bad) {
    test(`${field} = ${JSON.stringify(value)}`, () => {
      const base = { ...defaultNodeConfig, seeds: [] };
      let err: unknown;
      try {
        applyOverrides(base, { [field]: value });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      // A bad list entry is named with its index (seeds[1]).
      expect((err as ConfigError).field.replace(/\[\d+\]$/, "")).toBe(field);
      expect((err as Error).message).toContain(field);
    });
  }

  test("missing tlsDir without insecure is refused", () => {
    expect(() => finishConfig({ ...defaultNodeConfig, seeds: [] })).toThrow(/tlsDir/);
  });

  test("flags override YAML, YAML overrides defaults", () => {
    const cfg = loadNodeConfig({ id: "n7", insecure: true, durability: "interval:20", seeds: "127.0.0.1:1,127.0.0.1:2" });
    expect(cfg.id).toBe("n7");
    expect(cfg.dataDir).toBe("./data/n7");
    expect(cfg.durability).toEqual({ kind: "interval", ms: 20 });
    expect(cfg.seeds).toEqual(["127.0.0.1:1", "127.0.0.1:2"]);
  });

  test("invalid YAML names the file", () => {
    expect(() => parseConfigYaml("a: [", "x.yaml")).toThrow(/x\.yaml/);
  });
});
