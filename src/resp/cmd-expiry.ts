// Key expiry in Redis's words: EXPIRE and its three siblings with NX/XX/GT/LT, PERSIST, TTL/PTTL,
// EXPIRETIME/PEXPIRETIME over the node's expire/persist/ttl ops, and the one reading of an expiry
// argument (Redis 7's overflow rules, then this database's latest deadline) that SET, GETEX and
// SETEX share with them.
import { expiryDeadlineMsMax, type ClientOp, type ExpireCondition } from "../transport/api.ts";
import { applyOne, check, int64Arg, keyArg, text, word, type Ctx } from "./context.ts";
import { int, opErrorText, RespError } from "./replies.ts";
import { command, key1, type CommandSpec } from "./table.ts";
import type { Reply } from "./types.ts";

const int64Max = 2n ** 63n - 1n;
const int64Min = -(2n ** 63n);
const msPerSecond = 1000n;

/** Redis's refusal of an expiry argument that overflows int64 (or, for SET/GETEX/SETEX, is not positive). */
export function errExpireTime(command: string): string {
  return `ERR invalid expire time in '${command}' command`;
}

/**
 * A deadline Redis would take but this database cannot keep: deadlines are hybrid-clock times of
 * 48 bits. Redis's text first (clients that match it still do), then why.
 */
export function errPastLatestDeadline(command: string): string {
  return `${errExpireTime(command)}: the latest deadline is Unix ms ${expiryDeadlineMsMax} (the year 10889)`;
}

/** An expiry argument as the node takes it: ms from the node's now (it reads its own clock), or a Unix ms. */
export type Deadline = { kind: "ttl"; ttlMs: number } | { kind: "at"; atMs: number };

/** The expire op for a deadline (a non-positive TTL or a past time expires the key now, as Redis's EXPIRE). */
export function expireKeyOp(key: string, d: Deadline, cond: ExpireCondition | null): ClientOp {
  return d.kind === "ttl" ? { kind: "expire", key, ttlMs: d.ttlMs, atMs: null, cond } : { kind: "expire", key, ttlMs: null, atMs: d.atMs, cond };
}

/**
 * A time in ms (a relative TTL when `relative`, else a Unix time) checked against this database's
 * latest deadline, with the client's clock standing in for the node's (the node checks again with
 * its own). Non-positive values mean "now" to the node and pass as they are (clamped: only the sign counts).
 */
function ourDeadline(ms: bigint, relative: boolean, command: string): Deadline {
  const latest = BigInt(expiryDeadlineMsMax);
  if (relative) {
    if (ms > latest - BigInt(Date.now())) throw new RespError(errPastLatestDeadline(command));
    return { kind: "ttl", ttlMs: ms <= 0n ? 0 : Number(ms) };
  }
  if (ms > latest) throw new RespError(errPastLatestDeadline(command));
  return { kind: "at", atMs: ms <= 0n ? 0 : Number(ms) };
}

/**
 * EXPIRE's time as Redis 7 reads it (any int64; seconds times 1000 and a TTL plus now must not
 * overflow int64), then as a deadline here.
 */
function expireTime(arg: Uint8Array | undefined, unit: "s" | "ms", relative: boolean, command: string): Deadline {
  let ms = int64Arg(arg);
  if (unit === "s") {
    if (ms > int64Max / msPerSecond || ms < int64Min / msPerSecond) throw new RespError(errExpireTime(command));
    ms *= msPerSecond;
  }
  if (relative && ms > int64Max - BigInt(Date.now())) throw new RespError(errExpireTime(command));
  return ourDeadline(ms, relative, command);
}

/**
 * SET / GETEX / SETEX's time as Redis 7 reads it: positive, seconds times 1000 within int64, a
 * TTL plus now within int64; then as a deadline here. An EXAT/PXAT in the past is taken (the key
 * expires at once).
 */
export function setExpireTime(arg: Uint8Array | undefined, unit: "s" | "ms", relative: boolean, command: string): Deadline {
  let ms = int64Arg(arg);
  if (ms <= 0n || (unit === "s" && ms > int64Max / msPerSecond)) throw new RespError(errExpireTime(command));
  if (unit === "s") ms *= msPerSecond;
  if (relative && ms > int64Max - BigInt(Date.now())) throw new RespError(errExpireTime(command));
  return ourDeadline(ms, relative, command);
}

/** EXPIRE's NX / XX / GT / LT as one node condition; xxLt: XX with LT, which the node's one condition cannot say. */
interface ExpireFlags {
  cond: ExpireCondition | null;
  xxLt: boolean;
}

/** Redis 7's parse: any of the four, repeats allowed, then the incompatible pairs refused. */
function expireFlags(args: readonly Uint8Array[]): ExpireFlags {
  let nx = false, xx = false, gt = false, lt = false;
  for (let i = 3; i < args.length; i++) {
    const w = word(args[i]);
    if (w === "NX") nx = true;
    else if (w === "XX") xx = true;
    else if (w === "GT") gt = true;
    else if (w === "LT") lt = true;
    else throw new RespError(`ERR Unsupported option ${text(args[i] as Uint8Array)}`.replace(/[\r\n]/g, " "));
  }
  if (nx && (xx || gt || lt)) throw new RespError("ERR NX and XX, GT or LT options at the same time are not compatible");
  if (gt && lt) throw new RespError("ERR GT and LT options at the same time are not compatible");
  // GT never applies to a key without a deadline, so XX adds nothing to it.
  if (gt) return { cond: "gt", xxLt: false };
  if (lt) return { cond: "lt", xxLt: xx };
  return { cond: nx ? "nx" : xx ? "xx" : null, xxLt: false };
}

function expireCommand(command: string, unit: "s" | "ms", relative: boolean) {
  return async (ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> => {
    const flags = expireFlags(args);
    const when = expireTime(args[2], unit, relative, command);
    const key = keyArg(args[1]);
    const op = expireKeyOp(key, when, flags.cond);
    if (!flags.xxLt) {
      const r = check(await ctx.shared.locks.guard([key], () => applyOne(ctx, op)));
      return int(r.kind === "changed" && r.value ? 1 : 0);
    }
    // XX LT: LT alone applies to a key without a deadline; XX first asks this replica whether it has one.
    return await ctx.shared.locks.with([key], async () => {
      if ((await ttlMs(ctx, key)) < 0) return int(0);
      const r = check(await applyOne(ctx, op));
      return int(r.kind === "changed" && r.value ? 1 : 0);
    });
  };
}

/** The node's PTTL: -2 no such key, -1 no deadline, else ms left (>= 1). */
async function ttlMs(ctx: Ctx, key: string): Promise<number> {
  const r = check(await applyOne(ctx, { kind: "ttl", key }));
  return r.kind === "ttl" ? r.ttlMs : -2;
}

/** Redis rounds seconds to the nearest (half up): 1500 ms left is TTL 2, 1499 is 1. */
function roundedSeconds(ms: number): number {
  return Math.floor((ms + 500) / 1000);
}

async function ttl(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const ms = await ttlMs(ctx, keyArg(args[1]));
  return int(ms < 0 ? ms : roundedSeconds(ms));
}

async function pttl(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  return int(await ttlMs(ctx, keyArg(args[1])));
}

/** The deadline as a Unix ms: -2 no such key, -1 none. */
async function deadlineMs(ctx: Ctx, key: string): Promise<number> {
  const o = await applyOne(ctx, { kind: "get", key });
  if (o.ok) return o.result.kind === "value" ? (o.result.value.expiresAtMs ?? -1) : -2;
  if (o.error.code === "NOT_FOUND") return -2;
  // A counter merged outside int64 exists but cannot be read as a value: its ms left instead.
  if (o.error.code === "OUT_OF_RANGE") {
    const ms = await ttlMs(ctx, key);
    return ms < 0 ? ms : Date.now() + ms;
  }
  throw new RespError(opErrorText(o.error));
}

async function expiretime(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const at = await deadlineMs(ctx, keyArg(args[1]));
  return int(at < 0 ? at : roundedSeconds(at));
}

async function pexpiretime(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  return int(await deadlineMs(ctx, keyArg(args[1])));
}

async function persist(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const key = keyArg(args[1]);
  const r = check(await ctx.shared.locks.guard([key], () => applyOne(ctx, { kind: "persist", key })));
  return int(r.kind === "changed" && r.value ? 1 : 0);
}

const rule = "(a deadline: concurrent changes resolve to the longest; NX/XX/GT/LT decided on this replica)";

export const expiryCommands: readonly CommandSpec[] = [
  command({ name: "expire", arity: -3, flags: ["write", "fast"], keys: key1, group: "generic", summary: `Set a key's time to live in seconds ${rule}`, run: expireCommand("expire", "s", true) }),
  command({ name: "pexpire", arity: -3, flags: ["write", "fast"], keys: key1, group: "generic", since: "2.6.0", summary: `Set a key's time to live in milliseconds ${rule}`, run: expireCommand("pexpire", "ms", true) }),
  command({ name: "expireat", arity: -3, flags: ["write", "fast"], keys: key1, group: "generic", since: "1.2.0", summary: `Set the expiration for a key as a UNIX timestamp ${rule}`, run: expireCommand("expireat", "s", false) }),
  command({ name: "pexpireat", arity: -3, flags: ["write", "fast"], keys: key1, group: "generic", since: "2.6.0", summary: `Set the expiration for a key as a UNIX timestamp in milliseconds ${rule}`, run: expireCommand("pexpireat", "ms", false) }),
  command({ name: "persist", arity: 2, flags: ["write", "fast"], keys: key1, group: "generic", since: "2.2.0", summary: "Remove the expiration from a key (no deadline wins over concurrent ones)", run: persist }),
  command({ name: "ttl", arity: 2, flags: ["readonly", "fast"], keys: key1, group: "generic", summary: "Get the time to live for a key in seconds (on this replica's clock)", run: ttl }),
  command({ name: "pttl", arity: 2, flags: ["readonly", "fast"], keys: key1, group: "generic", since: "2.6.0", summary: "Get the time to live for a key in milliseconds (on this replica's clock)", run: pttl }),
  command({ name: "expiretime", arity: 2, flags: ["readonly", "fast"], keys: key1, group: "generic", since: "7.0.0", summary: "Get the expiration Unix timestamp for a key", run: expiretime }),
  command({ name: "pexpiretime", arity: 2, flags: ["readonly", "fast"], keys: key1, group: "generic", since: "7.0.0", summary: "Get the expiration Unix timestamp for a key in milliseconds", run: pexpiretime }),
];
