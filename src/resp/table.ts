// The one description of every command the Redis front door serves (name, arity, flags, keys,
// docs, handler): dispatch, arity errors, COMMAND, COMMAND INFO/DOCS/COUNT/LIST all read it.
import type { Ctx } from "./context.ts";
import { array, bulk, int, simple } from "./replies.ts";
import type { Reply } from "./types.ts";

export type CommandFlag = "write" | "readonly" | "denyoom" | "admin" | "noscript" | "loading" | "stale" | "fast" | "no_auth" | "allow_busy";
export type CommandGroup = "connection" | "generic" | "string" | "set" | "hash" | "server" | "scripting";

export type Handler = (ctx: Ctx, args: readonly Uint8Array[]) => Reply | Promise<Reply>;

/**
 * A hot command's handler through callbacks instead of a promise (GET, SET, INCR, ...: each
 * promise and microtask per command showed in profiles): the reply now, or null and exactly one
 * of `later` (the reply) or `failed` (what a Handler would throw) once it is known. It may throw
 * as a Handler does.
 */
export type CallbackHandler = (ctx: Ctx, args: readonly Uint8Array[], later: (reply: Reply) => void, failed: (err: unknown) => void) => Reply | null;

export interface CommandSpec {
  /** Lower case; a subcommand's own word ("get" under "config"). */
  readonly name: string;
  /** Redis's arity, the command name included: n exactly n arguments, -n at least n. */
  readonly arity: number;
  readonly flags: readonly CommandFlag[];
  /** Positions of keys in the arguments (Redis's first key, last key (-1: the last argument), step); 0 0 0 when none. */
  readonly keys: readonly [first: number, last: number, step: number];
  readonly group: CommandGroup;
  readonly summary: string;
  readonly since: string;
  readonly complexity: string;
  /** Absent on a container (CLIENT, CONFIG, ...): its subcommands run. */
  readonly run?: Handler;
  /** When present, runs instead of `run` (which stays the same command as a promise). */
  readonly runNow?: CallbackHandler;
  readonly subcommands?: readonly CommandSpec[];
  /** Only for sessions with the admin role (an admin certificate, or a node run with --insecure). */
  readonly adminOnly?: boolean;
  /** Left out of COMMAND: it only answers why it cannot run (no CRDT equivalent). */
  readonly unlisted?: boolean;
}

type SpecInput = Omit<CommandSpec, "since" | "complexity" | "keys" | "flags"> & Partial<Pick<CommandSpec, "since" | "complexity" | "keys" | "flags">>;

/** A spec with Redis's usual defaults: no keys, no flags, since 1.0.0, O(1). */
export function command(s: SpecInput): CommandSpec {
  return { since: "1.0.0", complexity: "O(1)", keys: [0, 0, 0], flags: [], ...s };
}

/** One key in argument 1 (GET, SADD, HSET, ...). */
export const key1: readonly [number, number, number] = [1, 1, 1];

/** A spec's name as Redis reports it in errors and COMMAND: "get", "config|get". */
export function fullName(spec: CommandSpec, parent: CommandSpec | null): string {
  return parent === null ? spec.name : `${parent.name}|${spec.name}`;
}

/** Whether `argc` arguments (the command name, and a subcommand's word, included) fit the arity. */
export function arityFits(arity: number, argc: number): boolean {
  return arity >= 0 ? argc === arity : argc >= -arity;
}

/** Redis's ACL categories follow from the flags and group. */
function categories(spec: CommandSpec): string[] {
  const out: string[] = [];
  if (spec.flags.includes("write")) out.push("@write");
  if (spec.flags.includes("readonly")) out.push("@read");
  if (spec.group !== "server" && spec.group !== "generic") out.push(`@${spec.group}`);
  if (spec.group === "generic") out.push("@keyspace");
  out.push(spec.flags.includes("fast") ? "@fast" : "@slow");
  if (spec.flags.includes("admin")) out.push("@admin", "@dangerous");
  return out;
}

/** One COMMAND INFO entry: name, arity, flags, first key, last key, step, ACL categories, tips, key specs, subcommands. */
export function commandInfo(spec: CommandSpec, parent: CommandSpec | null = null): Reply {
  const [first, last, step] = spec.keys;
  return array([
    bulk(fullName(spec, parent)),
    int(spec.arity),
    { kind: "set", items: spec.flags.map(simple) },
    int(first),
    int(last),
    int(step),
    { kind: "set", items: categories(spec).map(simple) },
    { kind: "set", items: [] },
    { kind: "set", items: [] },
    { kind: "set", items: (spec.subcommands ?? []).map((s) => commandInfo(s, spec)) },
  ]);
}

/** One COMMAND DOCS entry (without arguments: clients that ask use summary, since and group). */
export function commandDocs(spec: CommandSpec, parent: CommandSpec | null = null): Reply {
  const entries: [Reply, Reply][] = [
    [bulk("summary"), bulk(spec.summary)],
    [bulk("since"), bulk(spec.since)],
    [bulk("group"), bulk(spec.group)],
    [bulk("complexity"), bulk(spec.complexity)],
  ];
  if (spec.subcommands !== undefined) {
    entries.push([bulk("subcommands"), { kind: "map", entries: spec.subcommands.map((s) => [bulk(fullName(s, spec)), commandDocs(s, spec)]) }]);
  }
  return { kind: "map", entries };
}

/** The HELP reply of a container: one line per subcommand, as Redis lists them. */
export function helpLines(spec: CommandSpec): Reply {
  const lines = [`${spec.name.toUpperCase()} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:`];
  for (const s of spec.subcommands ?? []) lines.push(s.name.toUpperCase(), `    ${s.summary}`);
  return array(lines.map(simple));
}
