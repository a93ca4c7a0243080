// docs/api.md's Redis command tables stay in step with the command table: every command served
// is documented with its conflict rule, every refused one with its reason, and nothing else.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { commandTable } from "../../src/resp/commands.ts";

const api = readFileSync(join(import.meta.dir, "..", "..", "docs", "api.md"), "utf8");

/** Command names (upper-case words in backticks) in the first cells of the table after `heading`. */
function documented(heading: string): string[] {
  const lines = api.split("\n");
  const at = lines.indexOf(heading);
  if (at < 0) throw new Error(`heading "${heading}" not found`);
  const names: string[] = [];
  let inTable = false;
  for (const line of lines.slice(at + 1)) {
    if (!line.startsWith("|")) {
      if (inTable) break;
      continue;
    }
    inTable = true;
    const first = line.split("|")[1] ?? "";
    for (const m of first.matchAll(/`([A-Z_]+(?: [A-Z_]+)?)`/g)) names.push(m[1] as string);
  }
  return names.sort();
}

/** Listed: what COMMAND offers (a container's subcommands, COMMAND itself); else the refusing ones. */
function served(listed: boolean): string[] {
  const out: string[] = [];
  for (const spec of commandTable) {
    const top = spec.name.toUpperCase();
    if (spec.unlisted === true) {
      if (!listed) out.push(top);
      continue;
    }
    if (listed && spec.run !== undefined) out.push(top);
    for (const sub of spec.subcommands ?? []) if ((sub.unlisted !== true) === listed) out.push(`${top} ${sub.name.toUpperCase()}`);
  }
  return out.sort();
}

test("the Redis commands table names exactly the commands COMMAND lists", () => {
  expect(documented("### Redis commands")).toEqual(served(true));
});

test("the Not supported table names exactly the commands that answer why they cannot run", () => {
  expect(documented("### Not supported")).toEqual(served(false));
});
