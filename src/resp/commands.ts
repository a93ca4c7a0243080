// The command table of the Redis front door: one parsed command in, one reply out, through the
// node's client path (the one gRPC uses). Dispatch, arity and permission checks live here; what
// each command does lives in the cmd-*.ts file of its group.
import { OpBatcher, type TurnScheduler } from "./batch.ts";
import { commandCommand } from "./cmd-command.ts";
import { connectionCommands } from "./cmd-connection.ts";
import { expiryCommands } from "./cmd-expiry.ts";
import { hashCommands } from "./cmd-hashes.ts";
import { keyCommands } from "./cmd-keys.ts";
import { serverCommands, unsupportedCommands } from "./cmd-server.ts";
import { setCommands } from "./cmd-sets.ts";
import { stringCommands } from "./cmd-strings.ts";
import { KeyLocks, type Ctx, type Shared } from "./context.ts";
import { commandLabelCharsMax, commandName } from "./names.ts";
import { errArity, errNoPerm, errorReply, errUnknownCommand, errUnknownSubcommand, failureText } from "./replies.ts";
import { arityFits, fullName, type CommandSpec } from "./table.ts";
import type { Reply, RespBackend, RespCommands, RespSession } from "./types.ts";

/** Every command, in the order COMMAND lists them. */
export const commandTable: readonly CommandSpec[] = [
  ...connectionCommands, commandCommand, ...keyCommands, ...expiryCommands, ...stringCommands, ...setCommands, ...hashCommands, ...serverCommands, ...unsupportedCommands,
];

/** A command or subcommand word, lower-cased (ASCII), or null when it cannot name one (longer ones are unknown without being lowered). */
function lowerName(b: Uint8Array | undefined): string | null {
  if (b === undefined || b.length === 0 || b.length > commandLabelCharsMax) return null;
  return commandName(b);
}

type Resolved = { spec: CommandSpec; name: string } | { error: string };

function resolve(byName: ReadonlyMap<string, CommandSpec>, session: RespSession, args: readonly Uint8Array[]): Resolved {
  const top = byName.get(lowerName(args[0]) ?? "");
  if (top === undefined) return { error: errUnknownCommand(args) };
  let spec = top;
  let name = top.name;
  if (top.subcommands !== undefined && (args.length >= 2 || top.run === undefined)) {
    if (!arityFits(top.arity, args.length)) return { error: errArity(name) };
    const sub = top.subcommands.find((s) => s.name === lowerName(args[1]));
    if (sub === undefined) return { error: errUnknownSubcommand(args[1] as Uint8Array, top.name) };
    spec = sub;
    name = fullName(sub, top);
  }
  if (!arityFits(spec.arity, args.length)) return { error: errArity(name) };
  if (spec.adminOnly === true && session.role !== "admin") return { error: errNoPerm(name) };
  return { spec, name };
}

/** The command table; execute() answers one command as a value or a promise (for tests and tools). */
export interface RespCommandTable extends RespCommands {
  execute(session: RespSession, args: readonly Uint8Array[]): Reply | Promise<Reply>;
}

/**
 * schedule: when the ops commands queued are sent to the node (src/resp/batch.ts); default
 * setImmediate, which runs once every connection readable in this event-loop turn was read.
 */
export function createRespCommands(backend: RespBackend, schedule: TurnScheduler = setImmediate): RespCommandTable {
  const byName = new Map<string, CommandSpec>();
  for (const spec of commandTable) {
    if (byName.has(spec.name)) throw new Error(`command ${spec.name} is in the table twice`);
    byName.set(spec.name, spec);
  }
  const listed = commandTable.filter((s) => s.unlisted !== true);
  const shared: Shared = {
    stats: { commandsProcessed: 0, errorReplies: 0 },
    locks: new KeyLocks(),
    batcher: new OpBatcher(backend.client, schedule, (err) => backend.onInternalError?.("batch", err)),
    activity: new WeakMap(),
    startedAtMs: Date.now(),
    commands: { listed, find: (name) => byName.get(name) },
  };

  const finish = (r: Reply): Reply => {
    if (r.kind === "error") shared.stats.errorReplies++;
    return r;
  };
  const fail = (name: string, err: unknown): Reply => {
    const text = failureText(err);
    if (text !== null) return finish(errorReply(text));
    backend.onInternalError?.(name, err);
    return finish(errorReply(`ERR internal error in '${name}': ${err instanceof Error ? err.message : String(err)}`.replace(/[\r\n]/g, " ")));
  };

  /** A command's failure as its reply to `later`; `failed` only if even that broke. */
  const failLater = (name: string, err: unknown, later: (reply: Reply) => void, failed: (err: unknown) => void): void => {
    let reply: Reply;
    try {
      reply = fail(name, err);
    } catch (e) {
      failed(e);
      return;
    }
    later(reply);
  };

  const start = (session: RespSession, args: readonly Uint8Array[], later: (reply: Reply) => void, failed: (err: unknown) => void): Reply | null => {
    shared.stats.commandsProcessed++;
    const found = resolve(byName, session, args);
    if ("error" in found) return finish(errorReply(found.error));
    const seen = shared.activity.get(session);
    if (seen === undefined) shared.activity.set(session, { lastCommand: found.name, lastAtMs: Date.now() });
    else {
      seen.lastCommand = found.name;
      seen.lastAtMs = Date.now();
    }
    const ctx: Ctx = { session, backend, shared };
    const now = found.spec.runNow;
    if (now !== undefined) {
      try {
        const r = now(ctx, args, (x) => later(finish(x)), (err) => failLater(found.name, err, later, failed));
        return r === null ? null : finish(r);
      } catch (err) {
        return fail(found.name, err);
      }
    }
    const handler = found.spec.run;
    if (handler === undefined) return fail(found.name, new Error("container without a handler"));
    let r: Reply | Promise<Reply>;
    try {
      r = handler(ctx, args);
    } catch (err) {
      return fail(found.name, err);
    }
    if (!(r instanceof Promise)) return finish(r);
    r.then((x) => later(finish(x)), (err: unknown) => failLater(found.name, err, later, failed));
    return null;
  };

  return {
    start,
    execute(session: RespSession, args: readonly Uint8Array[]): Reply | Promise<Reply> {
      let later!: (reply: Reply) => void;
      let failed!: (err: unknown) => void;
      const answer = new Promise<Reply>((resolve, reject) => {
        later = resolve;
        failed = reject;
      });
      return start(session, args, later, failed) ?? answer;
    },
  };
}
