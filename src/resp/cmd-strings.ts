// Strings and counters: GET/SET and friends on LWW registers, INCR and friends on PN-Counters, as
// Redis Active-Active does them (a counter is its own type; GET reads it as decimal text).
import { type ClientOp, type OpOutcome, type ValueView } from "../transport/api.ts";
import { lwwSetOp } from "../transport/validate.ts";
import { expireKeyOp, setExpireTime, type Deadline } from "./cmd-expiry.ts";
import { applyMany, applyOne, applyThen, check, int64Arg, keyArg, textEncoder, tryInt64, word, type Ctx } from "./context.ts";
import {
  array, bulk, errArity, errDecrOverflow, errNotCrdt, errNotInteger, errOverflow, errSyntax, errWrongType, int, nullBulk, ok, opErrorText, RespError,
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

/** GET's reply to the node's outcome of a get. */
function getReply(o: OpOutcome): Reply {
  if (!o.ok && o.error.code === "NOT_FOUND") return nullBulk;
  const r = check(o);
  if (r.kind !== "value") return nullBulk;
  const s = stringOf(r.value);
  if (s === null) throw new RespError(errWrongType);
  return bulk(s);
}

async function get(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  return getReply(await applyOne(ctx, { kind: "get", key: keyArg(args[1]) }));
}

function getNow(ctx: Ctx, args: readonly Uint8Array[], later: (r: Reply) => void, failed: (err: unknown) => void): null {
  return applyThen(ctx, { kind: "get", key: keyArg(args[1]) }, getReply, later, failed);
}

async function strlen(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const r = await get(ctx, args);
  if (r.kind !== "bulk" || r.value === null) return int(0);
  return int(typeof r.value === "string" ? Buffer.byteLength(r.value) : r.value.length);
}

type ExpiryForm = "EX" | "PX" | "EXAT" | "PXAT";

function isExpiryForm(w: string): w is ExpiryForm {
  return w === "EX" || w === "PX" || w === "EXAT" || w === "PXAT";
}

/** SET's and GETEX's options; expiry holds the form and its argument, read once the rest parsed. */
interface StringOptions {
  condition: "NX" | "XX" | null;
  get: boolean;
  keepTtl: boolean;
  persist: boolean;
  expiry: { form: ExpiryForm; arg: Uint8Array } | null;
}

/**
 * SET's options (from argument 3) or GETEX's (from 2) as Redis 7 parses them: any may repeat
 * (the last expiry value counts), but NX and XX, and KEEPTTL / PERSIST and the expiry forms, and
 * two different expiry forms, exclude each other; SET takes NX, XX, GET, KEEPTTL, GETEX PERSIST.
 */
function stringOptions(args: readonly Uint8Array[], from: number, forSet: boolean): StringOptions {
  const o: StringOptions = { condition: null, get: false, keepTtl: false, persist: false, expiry: null };
  for (let i = from; i < args.length; i++) {
    const w = word(args[i]);
    const next = args[i + 1];
    if (forSet && w === "NX" && o.condition !== "XX") o.condition = "NX";
    else if (forSet && w === "XX" && o.condition !== "NX") o.condition = "XX";
    else if (forSet && w === "GET") o.get = true;
    else if (forSet && w === "KEEPTTL" && o.expiry === null) o.keepTtl = true;
    else if (!forSet && w === "PERSIST" && o.expiry === null) o.persist = true;
    else if (isExpiryForm(w) && !o.keepTtl && !o.persist && (o.expiry === null || o.expiry.form === w) && next !== undefined) {
      o.expiry = { form: w, arg: next };
      i++;
    } else throw new RespError(errSyntax);
  }
  return o;
}

/** An expiry option's deadline: EX/PX count from now, EXAT/PXAT are Unix times. */
function deadlineOf(e: { form: ExpiryForm; arg: Uint8Array }, command: string): Deadline {
  switch (e.form) {
    case "EX":
      return setExpireTime(e.arg, "s", true, command);
    case "PX":
      return setExpireTime(e.arg, "ms", true, command);
    case "EXAT":
      return setExpireTime(e.arg, "s", false, command);
    case "PXAT":
      return setExpireTime(e.arg, "ms", false, command);
  }
}

type LwwSet = Extract<ClientOp, { kind: "set" }>;

/** An LWW write, key and value checked as the gRPC edge checks them. */
function lwwSet(key: Uint8Array | undefined, value: Uint8Array | undefined): LwwSet {
  return lwwSetOp(key, value);
}

/**
 * A SET's ops: the write with its TTL (none clears the deadline, as Redis's SET), or KEEPTTL; an
 * EXAT/PXAT is the write then an expire at that time, so the deadline is exactly the one given
 * (the node's Set takes a TTL, which it counts from its own clock).
 */
function setOps(op: LwwSet, when: Deadline | null, keepTtl: boolean): ClientOp[] {
  if (keepTtl) return [{ ...op, keepTtl: true }];
  if (when === null) return [op];
  if (when.kind === "ttl") return [{ ...op, ttlMs: when.ttlMs }];
  return [op, expireKeyOp(op.key, when, null)];
}

/**
 * Applies a SET's ops one after another, stopping at the first refusal: not as one batch, whose
 * ops the node applies each on its own, so an expire after a WRONGTYPE write would still expire
 * (delete) the set or hash the write was refused for. The caller holds the key.
 */
async function write(ctx: Ctx, ops: readonly ClientOp[]): Promise<void> {
  for (const op of ops) check(await applyOne(ctx, op));
}

function okReply(o: OpOutcome): Reply {
  check(o);
  return ok;
}

/** SET without options through callbacks; with options (or its key held by another command), the promise path. */
function setNow(ctx: Ctx, args: readonly Uint8Array[], later: (r: Reply) => void, failed: (err: unknown) => void): null {
  if (args.length === 3) {
    const op = lwwSet(args[1], args[2]);
    if (ctx.shared.locks.isFree(op.key)) return applyThen(ctx, op, okReply, later, failed);
  }
  set(ctx, args).then(later, failed);
  return null;
}

async function set(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  if (args.length === 3) {
    // No options (the usual SET): one write, no deadline.
    const op = lwwSet(args[1], args[2]);
    check(await ctx.shared.locks.guard([op.key], () => applyOne(ctx, op)));
    return ok;
  }
  const opts = stringOptions(args, 3, true);
  // As Redis: the expiry value is checked before anything is read.
  const when = opts.expiry === null ? null : deadlineOf(opts.expiry, "set");
  const base = lwwSet(args[1], args[2]);
  const key = base.key;
  const ops = setOps(base, when, opts.keepTtl);
  if (opts.condition === null && !opts.get && ops.length === 1) {
    return await ctx.shared.locks.guard([key], async () => (await write(ctx, ops), ok));
  }
  return await ctx.shared.locks.with([key], async () => {
    const before = await held(ctx, key);
    if (opts.get && before.kind === "other") throw new RespError(errWrongType);
    const old = opts.get ? bulk(before.kind === "string" ? before.value : null) : null;
    const exists = before.kind !== "absent";
    if ((opts.condition === "NX" && exists) || (opts.condition === "XX" && !exists)) return old ?? nullBulk;
    await write(ctx, ops);
    return old ?? ok;
  });
}

/** SETEX / PSETEX: SET with EX / PX, the time first. */
function setex(command: string, unit: "s" | "ms") {
  return async (ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> => {
    const when = setExpireTime(args[2], unit, true, command);
    const base = lwwSet(args[1], args[3]);
    const ops = setOps(base, when, false);
    return await ctx.shared.locks.guard([base.key], async () => (await write(ctx, ops), ok));
  };
}

/**
 * GETEX: GET, then an expire or persist of the key, both on this replica (as SET GET). As
 * Redis, a missing key answers nil and a key of another type WRONGTYPE before the time is checked.
 */
async function getex(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const opts = stringOptions(args, 2, false);
  const key = keyArg(args[1]);
  return await ctx.shared.locks.with([key], async () => {
    const before = await held(ctx, key);
    if (before.kind === "absent") return nullBulk;
    if (before.kind === "other") throw new RespError(errWrongType);
    if (opts.expiry !== null) check(await applyOne(ctx, expireKeyOp(key, deadlineOf(opts.expiry, "getex"), null)));
    else if (opts.persist) check(await applyOne(ctx, { kind: "persist", key }));
    return bulk(before.value);
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
  for (let i = 1; i < args.length; i += 2) ops.push(lwwSetOp(args[i], args[i + 1]));
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
  return counterReply(await ctx.shared.locks.guard([key], () => applyOne(ctx, counterOp(key, amount))));
}

/** An increment for an amount above zero, a decrement below. */
function counterOp(key: string, amount: bigint): ClientOp {
  return amount > 0n ? { kind: "increment", key, amount, counter: null } : { kind: "decrement", key, amount: -amount };
}

function counterReply(o: OpOutcome): Reply {
  if (!o.ok && o.error.code === "OUT_OF_RANGE") throw new RespError(errOverflow);
  const r = check(o);
  return int(r.kind === "counter" ? r.value : 0n);
}

/** INCR / DECR through callbacks (by one: never the zero amount's read), unless another command holds the key. */
function stepNow(amount: 1n | -1n) {
  return (ctx: Ctx, args: readonly Uint8Array[], later: (r: Reply) => void, failed: (err: unknown) => void): null => {
    const key = keyArg(args[1]);
    if (ctx.shared.locks.isFree(key)) return applyThen(ctx, counterOp(key, amount), counterReply, later, failed);
    addToCounter(ctx, key, amount).then(later, failed);
    return null;
  };
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
  command({ name: "get", arity: 2, flags: ["readonly", "fast"], keys: key1, group: "string", summary: "Get the value of a key (a counter as its decimal value)", run: get, runNow: getNow }),
  command({ name: "strlen", arity: 2, flags: ["readonly", "fast"], keys: key1, group: "string", since: "2.2.0", summary: "Get the length of the value stored in a key", run: strlen }),
  command({ name: "set", arity: -3, flags: ["write", "denyoom"], keys: key1, group: "string", summary: "Set the string value of a key (LWW register; NX/XX decided on this replica)", run: set, runNow: setNow }),
  command({ name: "setex", arity: 4, flags: ["write", "denyoom"], keys: key1, group: "string", since: "2.0.0", summary: "Set the value and expiration of a key", run: setex("setex", "s") }),
  command({ name: "psetex", arity: 4, flags: ["write", "denyoom"], keys: key1, group: "string", since: "2.6.0", summary: "Set the value and expiration in milliseconds of a key", run: setex("psetex", "ms") }),
  command({ name: "getex", arity: -2, flags: ["write", "fast"], keys: key1, group: "string", since: "6.2.0", summary: "Get the value of a key and set or remove its expiration (decided on this replica)", run: getex }),
  command({ name: "setnx", arity: 3, flags: ["write", "denyoom", "fast"], keys: key1, group: "string", summary: "Set the value of a key, only if it does not exist on this replica", run: setnx }),
  command({ name: "getset", arity: 3, flags: ["write", "denyoom", "fast"], keys: key1, group: "string", since: "1.0.0", summary: "Set the string value of a key and return its old value", run: getset }),
  command({ name: "getdel", arity: 2, flags: ["write", "fast"], keys: key1, group: "string", since: "6.2.0", summary: "Get the value of a key and delete the key", run: getdel }),
  command({ name: "mget", arity: -2, flags: ["readonly", "fast"], keys: [1, -1, 1], group: "string", complexity: "O(N) where N is the number of keys to retrieve.", summary: "Get the values of all the given keys", run: mget }),
  command({ name: "mset", arity: -3, flags: ["write", "denyoom"], keys: [1, -1, 2], group: "string", since: "1.0.1", complexity: "O(N) where N is the number of keys to set.", summary: "Set multiple keys to multiple values", run: mset }),
  command({ name: "incr", arity: 2, flags: ["write", "denyoom", "fast"], keys: key1, group: "string", summary: "Increment the integer value of a key by one (PN-Counter)", run: incr, runNow: stepNow(1n) }),
  command({ name: "decr", arity: 2, flags: ["write", "denyoom", "fast"], keys: key1, group: "string", summary: "Decrement the integer value of a key by one (PN-Counter)", run: decr, runNow: stepNow(-1n) }),
  command({ name: "incrby", arity: 3, flags: ["write", "denyoom", "fast"], keys: key1, group: "string", summary: "Increment the integer value of a key by the given amount (PN-Counter)", run: incrby }),
  command({ name: "decrby", arity: 3, flags: ["write", "denyoom", "fast"], keys: key1, group: "string", summary: "Decrement the integer value of a key by the given number (PN-Counter)", run: decrby }),
  command({
    name: "incrbyfloat", arity: 3, flags: ["write"], keys: key1, group: "string", unlisted: true, summary: "Not supported: counters are integers",
    run: () => { throw new RespError(errNotCrdt("INCRBYFLOAT", why.float)); },
  }),
];

export const floatReason = why.float;
