// The layers below the command line import nothing from it: the node, the engine and the rest
// must build and run without the CLI (issue 16: `version` used to live in cli/ and node/ reached
// up for it). Any import, static or dynamic, of a path under src/cli from these folders fails.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const src = resolve(import.meta.dir, "..", "..", "src");
const cliDir = join(src, "cli");
/** Folders that must not depend on src/cli. */
const lowerLayers = ["node", "engine", "cluster", "persist", "crdt", "codec", "transport", "kinds", "accel", "config", "sim"];

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return p.endsWith(".ts") ? [p] : [];
  });
}

/** Module specifiers of `import ... from "x"`, `export ... from "x"`, `import("x")` and `import "x"`. */
function specifiers(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm)) out.push(m[1] as string);
  return out;
}

/** Imports of files under src/cli made by `file`. */
function cliImports(file: string): string[] {
  return specifiers(readFileSync(file, "utf8")).filter((s) => {
    if (!s.startsWith(".")) return false;
    const target = resolve(dirname(file), s);
    return target === cliDir || target.startsWith(`${cliDir}/`);
  });
}

test("the specifier scan sees static, re-export, side-effect and dynamic imports", () => {
  const text = `import { a } from "../cli/self.ts";\nexport { b } from '../cli/x.ts';\nimport "../cli/y.ts";\nconst z = await import("../cli/z.ts");\n`;
  expect(specifiers(text)).toEqual(["../cli/self.ts", "../cli/x.ts", "../cli/y.ts", "../cli/z.ts"]);
});

for (const layer of lowerLayers) {
  test(`src/${layer} imports nothing from src/cli`, () => {
    const offenders = tsFiles(join(src, layer)).flatMap((f) => cliImports(f).map((s) => `${relative(src, f)} -> ${s}`));
    expect(offenders).toEqual([]);
  });
}
