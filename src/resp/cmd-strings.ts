// Strings and counters: GET/SET and friends on LWW registers, INCR and friends on PN-Counters, as
// Redis Active-Active does them (a counter is its own type; GET reads it as decimal text).
import { type ClientOp, type ValueView } from "../transport/api.ts";
import { setOp } from "../transport/validate.ts";
import { applyMany, applyOne, check, int64Arg, keyArg, textEncoder, tryInt64, word, type Ctx } from "./context.ts";
import {
  array, bulk, errArity, errDecrOverflow, errNoExpiry, errNotCrdt, errNotInteger, errOverflow, errSyntax, errWrongType, int, nullBulk, ok, opErrorText, RespError,
} from "./replies.ts";
import { command, key1, type CommandSpec } from "./table.ts";
import type { Reply } from "./types.ts";

/** A key's value as a Redis string: LWW bytes, a counter's decimal, an MV register's winner; null for sets and hashes. */
export function stringOf(v: ValueView): Uint8Array | string | null {
  switch (v.type) {
    case "lww":
      return v.value;
    case "gcounter":
    case "pncounter":
      return v.value.toString();
    case "mv":
      // Concurrent siblings: the bytewise greatest, so every replica holding the same siblings
      // answers the same (all of them stay readable over gRPC, and a SET of the key is refused:
      // write MV registers with their context there).
      return v.values.reduce<Uint8Array | null>((best, x) => (best === null || Buffer.compare(x, best) > 0 ? x : best), null) ?? new Uint8Array(0);
    case "set":
    case "hash":
      return null;
  }
}

/** What a key holds, for commands that check before they write: absent, a string, or another type. */
type Held = { kind: "absent" } | { kind: "string"; value: Uint8Array | string; type: ValueView["type"] } | { kind: "other" };

async function held(ctx: Ctx, key: string): Promise<Held> {
  const o = await applyOne(ctx, { kind: "get", key });
  if (!o.ok) {
    if (o.error.code === "NOT_FOUND") return { kind: "absent" };
    // A counter merged outside int64 still exists; it is not an LWW string.
    if (o.error.code === "OUT_OF_RANGE") return { kind: "other" };
    throw new RespError(opErrorText(o.error));
  }
  if (o.result.kind !== "value") return { kind: "absent" };
  const s = stringOf(o.result.value);
  return s === null ? { kind: "other" } : { kind: "string", value: s, type: o.result.value.type };
}

async function get(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const o = await applyOne(ctx, { kind: "get", key: keyArg(args[1]) });
  if (!o.ok && o.error.code === "NOT_FOUND") return nullBulk;
  const r = check(o);
  if (r.kind !== "value") return nullBulk;
  const s = stringOf(r.value);
  if (s === null) throw new RespError(errWrongType);
  return bulk(s);
}

async function strlen(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const r = await get(ctx, args);
  if (r.kind !== "bulk" || r.value === null) return int(0);
  return int(typeof r.value === "string" ? Buffer.byteLength(r.value) : r.value.length);
}

type Expiry = "EX" | "PX" | "EXAT" | "PXAT";

interface SetOptions {
  condition: "NX" | "XX" | null;
  get: boolean;
  expiry: Expiry | null;
}

/** SET's options as Redis 7 parses them: each once, NX/XX and the expiry forms exclusive, then the expiry value. */
function setOptions(args: readonly Uint8Array[]): SetOptions {
  const o: SetOptions = { condition: null, get: false, expiry: null };
  let keepTtl = false;
  let expiryArg: Uint8Array | undefined;
  for (let i = 3; i < args.length; i++) {
    const w = word(args[i]);
    if ((w === "NX" || w === "XX") && o.condition === null) o.condition = w;
    else if (w === "GET" && !o.get) o.get = true;
    else if (w === "KEEPTTL" && !keepTtl && o.expiry === null) keepTtl = true;
    else if ((w === "EX" || w === "PX" || w === "EXAT" || w === "PXAT") && o.expiry === null && !keepTtl && i + 1 < args.length) {
      o.expiry = w;
      expiryArg = args[++i];
    } else throw new RespError(errSyntax);
  }
  if (o.expiry !== null) {
    if (int64Arg(expiryArg) <= 0n) throw new RespError("ERR invalid expire time in 'set' command");
    throw new RespError(errNoExpiry(`SET ${o.expiry}`));
  }
  // KEEPTTL keeps a time to live no key has yet: accepted, it changes nothing.
  return o;
}

async function set(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const opts = setOptions(args);
  const op = setOp({ key: args[1], value: args[2] });
  const key = op.key;
  if (opts.condition === null && !opts.get) {
    return await ctx.shared.locks.guard([key], async () => (check(await applyOne(ctx, op)), ok));
  }
  return await ctx.shared.locks.with([key], async () => {
    const before = await held(ctx, key);
    if (opts.get && before.kind === "other") throw new RespError(errWrongType);
    const old = opts.get ? bulk(before.kind === "string" ? before.value : null) : null;
    const exists = before.kind !== "absent";
    if ((opts.condition === "NX" && exists) || (opts.condition === "XX" && !exists)) return old ?? nullBulk;
    check(await applyOne(ctx, op));
    return old ?? ok;
  });
}

async function setnx(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const r = await set(ctx, [args[0] as Uint8Array, args[1] as Uint8Array, args[2] as Uint8Array, textEncoder.encode("NX")]);
  return int(r.kind === "simple" ? 1 : 0);
}

async function getset(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  return await set(ctx, [args[0] as Uint8Array, args[1] as Uint8Array, args[2] as Uint8Array, textEncoder.encode("GET")]);
}

async function getdel(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const key = keyArg(args[1]);
  return await ctx.shared.locks.with([key], async () => {
    const before = await held(ctx, key);
    if (before.kind === "absent") return nullBulk;
    if (before.kind === "other") throw new RespError(errWrongType);
    check(await applyOne(ctx, { kind: "delete", key }));
    return bulk(before.value);
  });
}

async function mget(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const ops: ClientOp[] = args.slice(1).map((k) => ({ kind: "get", key: keyArg(k) }));
  const outs = await applyMany(ctx, ops);
  // As Redis: a key that is missing or not a string reads as nil, never an error.
  return array(outs.map((o) => bulk(o.ok && o.result.kind === "value" ? stringOf(o.result.value) : null)));
}

async function mset(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  if (args.length % 2 === 0) throw new RespError(errArity("mset"));
  const ops: ClientOp[] = [];
  for (let i = 1; i < args.length; i += 2) ops.push(setOp({ key: args[i], value: args[i + 1] }));
  const keys = ops.map((op) => op.key);
  return await ctx.shared.locks.with(keys, async () => {
    // Refuse before writing any key if one is of another type: MSET writes all or none here.
    const before = await applyMany(ctx, keys.map((key): ClientOp => ({ kind: "get", key })));
    for (const o of before) {
      if (o.ok && o.result.kind === "value" && o.result.value.type !== "lww") throw new RespError(errWrongType);
      if (!o.ok && o.error.code !== "NOT_FOUND") throw new RespError(opErrorText(o.error));
    }
    for (const o of await applyMany(ctx, ops)) check(o);
    return ok;
  });
}

/** INCRBY's amount as an op: increments above zero, decrements below, a read for zero. */
async function addToCounter(ctx: Ctx, key: string, amount: bigint): Promise<Reply> {
  if (amount === 0n) {
    // Nothing to add, and no key to create (Redis would create "0"): the current value.
    const before = await held(ctx, key);
    if (before.kind === "absent") return int(0);
    if (before.kind !== "string" || (before.type !== "pncounter" && before.type !== "gcounter")) throw new RespError(errWrongType);
    return int(BigInt(before.value.toString()));
  }
  const op: ClientOp = amount > 0n ? { kind: "increment", key, amount, counter: null } : { kind: "decrement", key, amount: -amount };
  const o = await ctx.shared.locks.guard([key], () => applyOne(ctx, op));
  if (!o.ok && o.error.code === "OUT_OF_RANGE") throw new RespError(errOverflow);
  const r = check(o);
  return int(r.kind === "counter" ? r.value : 0n);
}

const int64Min = -(2n ** 63n);

function incr(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  return addToCounter(ctx, keyArg(args[1]), 1n);
}

function decr(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  return addToCounter(ctx, keyArg(args[1]), -1n);
}

function incrby(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const key = keyArg(args[1]);
  const n = int64Arg(args[2]);
  // -(-2^63) is no int64: no op can carry it (Redis itself would accept it only from 0).
  if (n === int64Min) throw new RespError(errOverflow);
  return addToCounter(ctx, key, n);
}

function decrby(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const key = keyArg(args[1]);
  const n = tryInt64(args[2]);
  if (n === null) throw new RespError(errNotInteger);
  if (n === int64Min) throw new RespError(errDecrOverflow);
  return addToCounter(ctx, key, -n);
}

const why = {
  float: "counters are PN-Counters of 64-bit integers (increments from every replica add up exactly; float sums would differ by the order replicas apply them)",
} as const;

export const stringCommands: readonly CommandSpec[] = [
  command({ name: "get", arity: 2, flags: ["readonly", "fast"], keys: key1, group: "string", summary: "Get the value of a key (a counter as its decimal value)", run: get }),
  command({ name: "strlen", arity: 2, flags: ["readonly", "fast"], keys: key1, group: "string", since: "2.2.0", summary: "Get the length of the value stored in a key", run: strlen }),
  command({ name: "set", arity: -3, flags: ["write", "denyoom"], keys: key1, group: "string", summary: "Set the string value of a key (LWW register; NX/XX decided on this replica)", run: set }),
  command({ name: "setnx", arity: 3, flags: ["write", "denyoom", "fast"], keys: key1, group: "string", summary: "Set the value of a key, only if it does not exist on this replica", run: setnx }),
  command({ name: "getset", arity: 3, flags: ["write", "denyoom", "fast"], keys: key1, group: "string", since: "1.0.0", summary: "Set the string value of a key and return its old value", run: getset }),
  command({ name: "getdel", arity: 2, flags: ["write", "fast"], keys: key1, group: "string", since: "6.2.0", summary: "Get the value of a key and delete the key", run: getdel }),
  command({ name: "mget", arity: -2, flags: ["readonly", "fast"], keys: [1, -1, 1], group: "string", complexity: "O(N) where N is the number of keys to retrieve.", summary: "Get the values of all the given keys", run: mget }),
  command({ name: "mset", arity: -3, flags: ["write", "denyoom"], keys: [1, -1, 2], group: "string", since: "1.0.1", complexity: "O(N) where N is the number of keys to set.", summary: "Set multiple keys to multiple values", run: mset }),
  command({ name: "incr", arity: 2, flags: ["write", "denyoom", "fast"], keys: key1, group: "string", summary: "Increment the integer value of a key by one (PN-Counter)", run: incr }),
  command({ name: "decr", arity: 2, flags: ["write", "denyoom", "fast"], keys: key1, group: "string", summary: "Decrement the integer value of a key by one (PN-Counter)", run: decr }),
  command({ name: "incrby", arity: 3, flags: ["write", "denyoom", "fast"], keys: key1, group: "string", summary: "Increment the integer value of a key by the given amount (PN-Counter)", run: incrby }),
  command({ name: "decrby", arity: 3, flags: ["write", "denyoom", "fast"], keys: key1, group: "string", summary: "Decrement the integer value of a key by the given number (PN-Counter)", run: decrby }),
  command({
    name: "incrbyfloat", arity: 3, flags: ["write"], keys: key1, group: "string", unlisted: true, summary: "Not supported: counters are integers",
    run: () => { throw new RespError(errNotCrdt("INCRBYFLOAT", why.float)); },
  }),
];

export const floatReason = why.float;
