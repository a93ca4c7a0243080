// The layers below the command line import nothing from it or from the bench harness: the node,
// the engine and the rest must build and run without them (issue 16: `version` used to live in
// cli/ and node/ reached up for it). Any import, static or dynamic, of a path under src/cli or
// src/bench from these folders fails.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const src = resolve(import.meta.dir, "..", "..", "src");
const upperDirs = [join(src, "cli"), join(src, "bench")];
/** Folders that must not depend on src/cli or src/bench. */
const lowerLayers = ["node", "engine", "cluster", "persist", "crdt", "codec", "transport", "kinds", "accel", "config", "sim", "resp"];

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

/** Imports of files under src/cli or src/bench made by `file`. */
function upwardImports(file: string): string[] {
  return specifiers(readFileSync(file, "utf8")).filter((s) => {
    if (!s.startsWith(".")) return false;
    const target = resolve(dirname(file), s);
    return upperDirs.some((d) => target === d || target.startsWith(`${d}/`));
  });
}

test("the specifier scan sees static, re-export, side-effect and dynamic imports", () => {
  const text = `import { a } from "../cli/self.ts";\nexport { b } from '../cli/x.ts';\nimport "../cli/y.ts";\nconst z = await import("../cli/z.ts");\n`;
  expect(specifiers(text)).toEqual(["../cli/self.ts", "../cli/x.ts", "../cli/y.ts", "../cli/z.ts"]);
});

for (const layer of lowerLayers) {
  test(`src/${layer} imports nothing from src/cli or src/bench`, () => {
    const offenders = tsFiles(join(src, layer)).flatMap((f) => upwardImports(f).map((s) => `${relative(src, f)} -> ${s}`));
    expect(offenders).toEqual([]);
  });
}
