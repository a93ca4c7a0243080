// Set commands on the add-wins OR-Set: SADD/SREM write, SMEMBERS/SISMEMBER/SMISMEMBER/SCARD/SSCAN
// read this replica's members (sorted bytewise), with Redis's reply shapes.
import type { ClientOp, OpOutcome } from "../transport/api.ts";
import { saddOp, sismemberOp, sremOp } from "../transport/validate.ts";
import { applyMany, applyOne, applyThen, check, keyArg, type Ctx } from "./context.ts";
import { cursorArg, scanOptions } from "./cmd-keys.ts";
import { globMatch } from "./glob.ts";
import { array, bulk, int } from "./replies.ts";
import { command, key1, type CommandSpec } from "./table.ts";
import type { Reply } from "./types.ts";

function countReply(o: OpOutcome): Reply {
  const r = check(o);
  return int(r.kind === "count" ? r.value : 0);
}

async function sadd(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const op = saddOp({ key: args[1], members: args.slice(2) });
  return countReply(await ctx.shared.locks.guard([op.key], () => applyOne(ctx, op)));
}

/** SADD through callbacks, unless another command holds the key. */
function saddNow(ctx: Ctx, args: readonly Uint8Array[], later: (r: Reply) => void, failed: (err: unknown) => void): null {
  const op = saddOp({ key: args[1], members: args.slice(2) });
  if (ctx.shared.locks.isFree(op.key)) return applyThen(ctx, op, countReply, later, failed);
  sadd(ctx, args).then(later, failed);
  return null;
}

async function srem(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const op = sremOp({ key: args[1], members: args.slice(2) });
  const r = check(await ctx.shared.locks.guard([op.key], () => applyOne(ctx, op)));
  return int(r.kind === "count" ? r.value : 0);
}

async function members(ctx: Ctx, key: string): Promise<Uint8Array[]> {
  const r = check(await applyOne(ctx, { kind: "smembers", key }));
  return r.kind === "members" ? r.members : [];
}

async function smembers(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  return { kind: "set", items: (await members(ctx, keyArg(args[1]))).map(bulk) };
}

async function sismember(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const r = check(await applyOne(ctx, sismemberOp({ key: args[1], member: args[2] })));
  return int(r.kind === "isMember" && r.value ? 1 : 0);
}

async function smismember(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const ops: ClientOp[] = args.slice(2).map((m) => sismemberOp({ key: args[1], member: m }));
  const outs = await applyMany(ctx, ops);
  return array(outs.map((o) => {
    const r = check(o);
    return int(r.kind === "isMember" && r.value ? 1 : 0);
  }));
}

async function scard(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const r = check(await applyOne(ctx, { kind: "scard", key: keyArg(args[1]) }));
  return int(r.kind === "count" ? r.value : 0);
}

/**
 * SSCAN answers every (matching) member at once with cursor 0, as Redis does for a small set: a
 * set is bounded (src/limits.ts), and an offset into a list that concurrent adds shift could
 * skip or repeat members, which SCAN's contract forbids.
 */
async function sscan(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const key = keyArg(args[1]);
  const cursor = cursorArg(args[2]);
  const o = scanOptions(args, 3, false);
  const all = cursor === 0 ? await members(ctx, key) : [];
  const pattern = o.pattern;
  const found = pattern === null ? all : all.filter((m) => globMatch(pattern, m));
  return array([bulk("0"), array(found.map(bulk))]);
}

export const setCommands: readonly CommandSpec[] = [
  command({ name: "sadd", arity: -3, flags: ["write", "denyoom", "fast"], keys: key1, group: "set", complexity: "O(1) for each element added", summary: "Add members to a set (add-wins OR-Set)", run: sadd, runNow: saddNow }),
  command({ name: "srem", arity: -3, flags: ["write", "fast"], keys: key1, group: "set", complexity: "O(N) where N is the number of members to be removed.", summary: "Remove members from a set (the adds this replica has seen)", run: srem }),
  command({ name: "smembers", arity: 2, flags: ["readonly"], keys: key1, group: "set", complexity: "O(N) where N is the set cardinality.", summary: "Get all the members in a set", run: smembers }),
  command({ name: "sismember", arity: 3, flags: ["readonly", "fast"], keys: key1, group: "set", summary: "Determine if a given value is a member of a set", run: sismember }),
  command({ name: "smismember", arity: -3, flags: ["readonly", "fast"], keys: key1, group: "set", since: "6.2.0", complexity: "O(N) where N is the number of elements being checked for membership", summary: "Returns the membership associated with the given elements for a set", run: smismember }),
  command({ name: "scard", arity: 2, flags: ["readonly", "fast"], keys: key1, group: "set", summary: "Get the number of members in a set", run: scard }),
  command({ name: "sscan", arity: -3, flags: ["readonly"], keys: key1, group: "set", since: "2.8.0", complexity: "O(N) where N is the set cardinality (one call answers all).", summary: "Iterate Set elements", run: sscan }),
];
