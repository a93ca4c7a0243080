// COMMAND and its subcommands, answered from the command table itself, so what clients learn about
// commands (arity, flags, key positions, docs) is exactly what dispatch enforces.
import { text, type Ctx } from "./context.ts";
import { array, bulk, int, RespError } from "./replies.ts";
import { command, commandDocs, commandInfo, helpLines, type CommandSpec } from "./table.ts";
import type { Reply } from "./types.ts";

/** A name as COMMAND INFO/DOCS take it: "get" or "config|get". */
function lookup(ctx: Ctx, name: string): { spec: CommandSpec; parent: CommandSpec | null } | null {
  const [top, sub] = name.toLowerCase().split("|", 2);
  const spec = ctx.shared.commands.find(top ?? "");
  if (spec === undefined || spec.unlisted === true) return null;
  if (sub === undefined) return { spec, parent: null };
  const child = spec.subcommands?.find((s) => s.name === sub);
  return child === undefined || child.unlisted === true ? null : { spec: child, parent: spec };
}

function all(ctx: Ctx): Reply {
  return array(ctx.shared.commands.listed.map((s) => commandInfo(s)));
}

function info(ctx: Ctx, args: readonly Uint8Array[]): Reply {
  if (args.length === 2) return all(ctx);
  return array(args.slice(2).map((a) => {
    const found = lookup(ctx, text(a));
    return found === null ? { kind: "null" } : commandInfo(found.spec, found.parent);
  }));
}

function docs(ctx: Ctx, args: readonly Uint8Array[]): Reply {
  const names = args.length === 2 ? ctx.shared.commands.listed.map((s) => s.name) : args.slice(2).map(text);
  const entries: [Reply, Reply][] = [];
  for (const n of names) {
    const found = lookup(ctx, n);
    // As Redis: an unknown name is left out.
    if (found !== null) entries.push([bulk(n.toLowerCase()), commandDocs(found.spec, found.parent)]);
  }
  return { kind: "map", entries };
}

function list(ctx: Ctx, args: readonly Uint8Array[]): Reply {
  if (args.length > 2) throw new RespError("ERR syntax error");
  return array(ctx.shared.commands.listed.map((s) => bulk(s.name)));
}

function help(ctx: Ctx, args: readonly Uint8Array[]): Reply {
  const spec = ctx.shared.commands.find(text(args[0] as Uint8Array).toLowerCase());
  return spec === undefined ? array([]) : helpLines(spec);
}

const subcommands: readonly CommandSpec[] = [
  command({ name: "count", arity: 2, flags: ["loading", "stale"], group: "server", since: "2.8.13", summary: "Get total number of Redis commands", run: (ctx) => int(ctx.shared.commands.listed.length) }),
  command({ name: "info", arity: -2, flags: ["loading", "stale"], group: "server", since: "2.8.13", complexity: "O(N) where N is the number of commands to look up", summary: "Get array of specific Redis command details, or all when no argument is given.", run: info }),
  command({ name: "docs", arity: -2, flags: ["loading", "stale"], group: "server", since: "7.0.0", complexity: "O(N) where N is the number of commands to look up", summary: "Get array of specific Redis command documentation", run: docs }),
  command({ name: "list", arity: -2, flags: ["loading", "stale"], group: "server", since: "7.0.0", complexity: "O(N) where N is the total number of Redis commands", summary: "Get an array of Redis command names", run: list }),
  command({ name: "help", arity: 2, flags: ["loading", "stale"], group: "server", since: "5.0.0", summary: "Show helpful text about the different subcommands", run: help }),
];

export const commandCommand: CommandSpec = command({
  name: "command", arity: -1, flags: ["loading", "stale"], group: "server", since: "2.8.13", complexity: "O(N) where N is the total number of Redis commands",
  summary: "Get array of Redis command details", run: all, subcommands,
});

/** HELP for every container: one spec per container, sharing the HELP handler above. */
export function helpSubcommand(): CommandSpec {
  return command({ name: "help", arity: 2, flags: ["loading", "stale"], group: "server", since: "5.0.0", summary: "Show helpful text about the different subcommands", run: help });
}
