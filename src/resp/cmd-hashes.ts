// Hash commands on the observed-remove map (field registers and counters): HSET/HDEL/HINCRBY write,
// the rest read this replica's fields (bytewise by field), with Redis's reply shapes.
import { hdelOp, hgetallOp, hgetOp, hincrbyOp, hlenOp, hmgetOp, hsetOp } from "../transport/validate.ts";
import { bigIntToInt64 } from "../transport/proto.ts";
import type { ClientOp, HashFieldView, OpOutcome } from "../transport/api.ts";
import { applyOne, applyThen, check, int64Arg, type Ctx } from "./context.ts";
import { cursorArg, scanOptions } from "./cmd-keys.ts";
import { floatReason } from "./cmd-strings.ts";
import { globMatch } from "./glob.ts";
import { array, bulk, errArity, errNotCrdt, errOverflow, int, nullBulk, ok, RespError } from "./replies.ts";
import { command, key1, type CommandSpec } from "./table.ts";
import type { Reply } from "./types.ts";

/** HSET's op: an odd count of field/value arguments is Redis's arity error for the command as named. */
function fieldsOp(args: readonly Uint8Array[], name: string): ClientOp {
  if (args.length % 2 !== 0) throw new RespError(errArity(name));
  const fields: { field: Uint8Array; value: Uint8Array }[] = [];
  for (let i = 2; i < args.length; i += 2) fields.push({ field: args[i] as Uint8Array, value: args[i + 1] as Uint8Array });
  return hsetOp({ key: args[1], fields });
}

function addedOf(o: OpOutcome): bigint {
  const r = check(o);
  return r.kind === "hashCount" ? r.count : 0n;
}

async function writeFields(ctx: Ctx, args: readonly Uint8Array[], name: string): Promise<bigint> {
  const op = fieldsOp(args, name);
  return addedOf(await ctx.shared.locks.guard([op.key], () => applyOne(ctx, op)));
}

async function hset(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  return int(await writeFields(ctx, args, "hset"));
}

/** HSET through callbacks, unless another command holds the key. */
function hsetNow(ctx: Ctx, args: readonly Uint8Array[], later: (r: Reply) => void, failed: (err: unknown) => void): null {
  const op = fieldsOp(args, "hset");
  if (ctx.shared.locks.isFree(op.key)) return applyThen(ctx, op, (o) => int(addedOf(o)), later, failed);
  hset(ctx, args).then(later, failed);
  return null;
}

async function hmset(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  await writeFields(ctx, args, "hmset");
  return ok;
}

async function hget(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const r = check(await applyOne(ctx, hgetOp({ key: args[1], field: args[2] })));
  return r.kind === "hashValue" ? bulk(r.value) : nullBulk;
}

async function hexists(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const r = check(await applyOne(ctx, hgetOp({ key: args[1], field: args[2] })));
  return int(r.kind === "hashValue" && r.value !== null ? 1 : 0);
}

async function hmget(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const r = check(await applyOne(ctx, hmgetOp({ key: args[1], fields: args.slice(2) })));
  return array(r.kind === "hashValues" ? r.values.map(bulk) : []);
}

async function hdel(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const op = hdelOp({ key: args[1], fields: args.slice(2) });
  const r = check(await ctx.shared.locks.guard([op.key], () => applyOne(ctx, op)));
  return int(r.kind === "hashCount" ? r.count : 0n);
}

async function fieldsOf(ctx: Ctx, key: Uint8Array | undefined): Promise<HashFieldView[]> {
  const r = check(await applyOne(ctx, hgetallOp({ key })));
  return r.kind === "hashFields" ? r.fields : [];
}

async function hgetall(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  return { kind: "map", entries: (await fieldsOf(ctx, args[1])).map((f): [Reply, Reply] => [bulk(f.field), bulk(f.value)]) };
}

async function hkeys(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  return array((await fieldsOf(ctx, args[1])).map((f) => bulk(f.field)));
}

async function hvals(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  return array((await fieldsOf(ctx, args[1])).map((f) => bulk(f.value)));
}

async function hlen(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const r = check(await applyOne(ctx, hlenOp({ key: args[1] })));
  return int(r.kind === "hashCount" ? r.count : 0n);
}

async function hincrby(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const amount = int64Arg(args[3]);
  const op = hincrbyOp({ key: args[1], field: args[2], amount: bigIntToInt64(amount) });
  const o = await ctx.shared.locks.guard([op.key], () => applyOne(ctx, op));
  if (!o.ok && o.error.code === "OUT_OF_RANGE") throw new RespError(errOverflow);
  const r = check(o);
  return int(r.kind === "counter" ? r.value : 0n);
}

/** HSCAN answers every (matching) field and value at once with cursor 0 (see SSCAN in cmd-sets.ts). */
async function hscan(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const cursor = cursorArg(args[2]);
  const o = scanOptions(args, 3, false);
  const all = cursor === 0 ? await fieldsOf(ctx, args[1]) : [];
  const pattern = o.pattern;
  const found = pattern === null ? all : all.filter((f) => globMatch(pattern, f.field));
  return array([bulk("0"), array(found.flatMap((f) => [bulk(f.field), bulk(f.value)]))]);
}

export const hashCommands: readonly CommandSpec[] = [
  command({ name: "hset", arity: -4, flags: ["write", "denyoom", "fast"], keys: key1, group: "hash", since: "2.0.0", complexity: "O(1) for each field/value pair added", summary: "Set the string value of hash fields", run: hset, runNow: hsetNow }),
  command({ name: "hmset", arity: -4, flags: ["write", "denyoom", "fast"], keys: key1, group: "hash", since: "2.0.0", complexity: "O(N) where N is the number of fields being set.", summary: "Set multiple hash fields to multiple values (answers OK)", run: hmset }),
  command({ name: "hget", arity: 3, flags: ["readonly", "fast"], keys: key1, group: "hash", since: "2.0.0", summary: "Get the value of a hash field", run: hget }),
  command({ name: "hmget", arity: -3, flags: ["readonly", "fast"], keys: key1, group: "hash", since: "2.0.0", complexity: "O(N) where N is the number of fields being requested.", summary: "Get the values of all the given hash fields", run: hmget }),
  command({ name: "hdel", arity: -3, flags: ["write", "fast"], keys: key1, group: "hash", since: "2.0.0", complexity: "O(N) where N is the number of fields to be removed.", summary: "Delete hash fields (as this replica has seen them)", run: hdel }),
  command({ name: "hgetall", arity: 2, flags: ["readonly"], keys: key1, group: "hash", since: "2.0.0", complexity: "O(N) where N is the size of the hash.", summary: "Get all the fields and values in a hash", run: hgetall }),
  command({ name: "hkeys", arity: 2, flags: ["readonly"], keys: key1, group: "hash", since: "2.0.0", complexity: "O(N) where N is the size of the hash.", summary: "Get all the fields in a hash", run: hkeys }),
  command({ name: "hvals", arity: 2, flags: ["readonly"], keys: key1, group: "hash", since: "2.0.0", complexity: "O(N) where N is the size of the hash.", summary: "Get all the values in a hash", run: hvals }),
  command({ name: "hlen", arity: 2, flags: ["readonly", "fast"], keys: key1, group: "hash", since: "2.0.0", summary: "Get the number of fields in a hash", run: hlen }),
  command({ name: "hexists", arity: 3, flags: ["readonly", "fast"], keys: key1, group: "hash", since: "2.0.0", summary: "Determine if a hash field exists", run: hexists }),
  command({ name: "hincrby", arity: 4, flags: ["write", "denyoom", "fast"], keys: key1, group: "hash", since: "2.0.0", summary: "Increment the integer value of a hash field by the given number (a counter field)", run: hincrby }),
  command({ name: "hscan", arity: -3, flags: ["readonly"], keys: key1, group: "hash", since: "2.8.0", complexity: "O(N) where N is the size of the hash (one call answers all).", summary: "Iterate hash fields and associated values", run: hscan }),
  command({
    name: "hincrbyfloat", arity: 4, flags: ["write"], keys: key1, group: "hash", unlisted: true, summary: "Not supported: counters are integers",
    run: () => { throw new RespError(errNotCrdt("HINCRBYFLOAT", floatReason)); },
  }),
];
