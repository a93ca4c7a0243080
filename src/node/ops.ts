// Translation between the gRPC edge's typed ops/results and the engine's: one place decides
// which engine error becomes which gRPC status, and where a relative TTL becomes a deadline.
import { compareBytes } from "../crdt/index.ts";
import type { EngineError, EngineOp, HashOp, KeyValue, ManyOp, ManyResult, SetExpiry, TypedValue } from "../engine/index.ts";
import {
  expiryDeadlineMsMax, isHashOp, isRead, OpFailure, type ClientOp, type HashClientOp, type HashFieldView, type OpError, type OpOutcome, type ReadOp,
  type SetTtl, type TypedView, type ValueView, type WriteOp,
} from "../transport/api.ts";

/** The encoding of an empty causal context. */
const emptyContext = new Uint8Array(0);

/**
 * The deadline `ttlMs` after nowMs, Unix ms: the one place a relative TTL becomes absolute, from
 * the wall clock of the node that received the request (nowMs, the same instant the engine is
 * given). One reaching past expiryDeadlineMsMax is refused (the edge checked ttlMs alone).
 */
function deadlineAfter(ttlMs: number, nowMs: number, name: string): number {
  const atMs = nowMs + ttlMs;
  if (atMs > expiryDeadlineMsMax) {
    throw new OpFailure("INVALID_ARGUMENT", `${name} ${ttlMs} reaches past the latest deadline (Unix ms ${expiryDeadlineMsMax}): at most ${expiryDeadlineMsMax - nowMs} now`);
  }
  return atMs;
}

/** A register write's deadline for the engine: none given clears it (as Redis's SET). */
function setExpiry(t: SetTtl, nowMs: number): SetExpiry | undefined {
  if (t.keepTtl === true) return { kind: "keep" };
  if (t.ttlMs !== undefined) return { kind: "at", atMs: deadlineAfter(t.ttlMs, nowMs, "ttl_ms") };
  return undefined;
}

/** Expire's deadline: a TTL <= 0 or a time at or before now expires the key now (as Redis's EXPIRE / EXPIREAT). */
function expireAt(op: Extract<ClientOp, { kind: "expire" }>, nowMs: number): number {
  if (op.ttlMs !== null) return op.ttlMs <= 0 ? nowMs : deadlineAfter(op.ttlMs, nowMs, "ttl_ms");
  const atMs = op.atMs ?? nowMs;
  return atMs <= nowMs ? nowMs : atMs;
}

/** nowMs: the node's wall clock for this request (a relative TTL counts from it). */
export function toEngineOp(op: Exclude<WriteOp, { kind: "delete" | "expire" | "persist" }>, nowMs: number): EngineOp | HashOp {
  switch (op.kind) {
    case "hset":
      return { kind: "hset", key: op.key, pairs: op.fields };
    case "hdel":
      return { kind: "hdel", key: op.key, fields: op.fields };
    case "hincrby":
      return { kind: "hincrby", key: op.key, field: op.field, amount: op.amount };
    case "increment":
      return op.counter === null ? { kind: "incr", key: op.key, amount: op.amount } : { kind: "incr", key: op.key, amount: op.amount, counter: op.counter };
    case "decrement":
      return { kind: "decr", key: op.key, amount: op.amount };
    case "set": {
      const expiry = setExpiry(op, nowMs);
      return expiry === undefined ? { kind: "set", key: op.key, value: op.value } : { kind: "set", key: op.key, value: op.value, expiry };
    }
    case "setMv": {
      // A write without a context has read nothing, so it replaces nothing: its value joins the
      // current ones as a sibling (as a blind write in Riak). Replacing "whatever this node has
      // seen" instead would drop concurrent acknowledged writes the client never read.
      const expiry = setExpiry(op, nowMs);
      const mv = { kind: "setMv" as const, key: op.key, value: op.value, context: op.context ?? emptyContext };
      return expiry === undefined ? mv : { ...mv, expiry };
    }
    case "sadd":
      return { kind: "sadd", key: op.key, members: op.members };
    case "srem":
      return { kind: "srem", key: op.key, members: op.members };
  }
}

/** WRONG_TYPE is the client asking for something the key's state forbids: FAILED_PRECONDITION. */
export function engineErrorToOp(e: EngineError): OpError {
  switch (e.code) {
    case "WRONG_TYPE":
    case "LIMIT_EXCEEDED":
      return { code: "FAILED_PRECONDITION", message: e.message };
    case "OUT_OF_RANGE":
      return { code: "OUT_OF_RANGE", message: e.message };
    case "INVALID":
      return { code: "INVALID_ARGUMENT", message: e.message };
  }
}

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;

/**
 * Concurrent increments on two nodes can merge to a sum outside int64. The wire type is int64,
 * so such a value is reported as OUT_OF_RANGE rather than wrapped or clamped (either would be a
 * wrong answer). Only a read can meet it: the engine refuses, before changing anything, every
 * incr/decr whose result would lie outside int64, so an applied op is never answered
 * OUT_OF_RANGE (which would invite a retry that counts it twice).
 */
export function counterOutOfRange(value: bigint): OpError | null {
  return value < int64Min || value > int64Max
    ? { code: "OUT_OF_RANGE", message: `the counter's value ${value} is outside int64 (concurrent increments on several nodes)` }
    : null;
}

/** nowMs: the clock the key's deadline is read against (its ms left). */
export function valueView(v: KeyValue, nowMs: number): ValueView {
  const main: ValueView = typedView(v);
  if (v.expiresAtMs !== undefined) {
    // A key is absent once its deadline passed, so >= 1 ms is left; the floor guards the wire's "0: none".
    main.ttlMs = Math.max(1, v.expiresAtMs - nowMs);
    main.expiresAtMs = v.expiresAtMs;
  }
  if (v.conflicts === undefined) return main;
  // A conflict side's counter outside int64 cannot be sent as one: it is left out, not wrapped.
  const sides = v.conflicts.filter((c) => !((c.type === "gcounter" || c.type === "pncounter") && counterOutOfRange(c.value) !== null));
  return sides.length > 0 ? { ...main, conflicts: sides.map(typedView) } : main;
}

function typedView(v: TypedValue): TypedView {
  switch (v.type) {
    case "gcounter":
    case "pncounter":
      return { type: v.type, value: v.value };
    case "lww":
      return { type: "lww", value: v.value };
    case "mv":
      return { type: "mv", values: v.values, context: v.context };
    case "set":
      return { type: "set", members: v.members };
    case "hash":
      return { type: "hash", fields: v.fields };
    case "deadline":
      // The engine reports a deadline as KeyValue.expiresAtMs; a side of this kind is never shown.
      throw new Error("assertion failed: a deadline shown as a key's value");
  }
}

/**
 * The engine op of `op`; nowMs: the node's wall clock for this request, the instant the engine is
 * given too (a relative TTL counts from it). Throws OpFailure for a TTL reaching past expiryDeadlineMsMax.
 */
export function toManyOp(op: ClientOp, nowMs: number): ManyOp {
  switch (op.kind) {
    case "ttl":
      return { kind: "ttl", key: op.key };
    case "expire":
      return { kind: "expire", key: op.key, atMs: expireAt(op, nowMs), cond: op.cond };
    case "persist":
      return { kind: "persist", key: op.key };
    case "delete":
      return { kind: "del", key: op.key };
    default:
      // Every other read is a get of the key; outcomeOf shapes the answer the op asked for.
      return isRead(op) ? { kind: "get", key: op.key } : toEngineOp(op, nowMs);
  }
}

/** A hash op's outcome: writes answer the engine's integer; reads pick from the key's value (a missing key reads as an empty hash, as in Redis). */
function hashOutcome(op: HashClientOp, r: Extract<ManyResult, { ok: true }>): OpOutcome {
  switch (op.kind) {
    case "hset":
    case "hdel":
      return { ok: true, result: { kind: "hashCount", count: r.reply ?? 0n } };
    case "hincrby":
      return { ok: true, result: { kind: "counter", value: r.reply ?? 0n } };
    default:
      break;
  }
  const v = r.value;
  if (v !== undefined && v.type !== "hash") {
    return { ok: false, error: { code: "FAILED_PRECONDITION", message: `key "${op.key.slice(0, 64)}" holds a ${v.type}, not a hash` } };
  }
  const fields: HashFieldView[] = v === undefined ? [] : v.fields;
  const lookup = (name: Uint8Array): Uint8Array | null => fields.find((f) => Buffer.compare(f.field, name) === 0)?.value ?? null;
  switch (op.kind) {
    case "hget":
      return { ok: true, result: { kind: "hashValue", value: lookup(op.field) } };
    case "hmget":
      return { ok: true, result: { kind: "hashValues", values: op.fields.map(lookup) } };
    case "hgetall":
      return { ok: true, result: { kind: "hashFields", fields } };
    case "hlen":
      return { ok: true, result: { kind: "hashCount", count: BigInt(fields.length) } };
  }
}

const notFound: OpOutcome = { ok: false, error: { code: "NOT_FOUND", message: "key not found" } };

/** The client-facing outcome of one applyMany result for `op`; nowMs: as given to toManyOp (a Get's ms left count from it). */
export function outcomeOf(op: ClientOp, r: ManyResult, nowMs: number): OpOutcome {
  if (!r.ok) return { ok: false, error: engineErrorToOp(r.error) };
  if (op.kind === "delete") return { ok: true, result: { kind: "deleted", deleted: r.deleted === true } };
  if (op.kind === "expire" || op.kind === "persist") return { ok: true, result: { kind: "changed", value: r.count === 1 } };
  if (op.kind === "ttl") return { ok: true, result: { kind: "ttl", ttlMs: Number(r.reply ?? -2n) } };
  if (op.kind === "sadd" || op.kind === "srem") return { ok: true, result: { kind: "count", value: r.count ?? 0 } };
  if (op.kind === "smembers" || op.kind === "sismember" || op.kind === "scard") return setReadOutcome(op, r.value);
  if (isHashOp(op)) return hashOutcome(op, r);
  const v = r.value;
  if (v === undefined) return notFound;
  if (v.type === "gcounter" || v.type === "pncounter") {
    const range = counterOutOfRange(v.value);
    if (range !== null) return { ok: false, error: range };
    if (op.kind !== "get") return { ok: true, result: { kind: "counter", value: v.value } };
  }
  if (op.kind === "get") return { ok: true, result: { kind: "value", value: valueView(v, nowMs) } };
  return { ok: true, result: { kind: "written", context: v.type === "mv" ? v.context : null } };
}

/** A set read of a key whose value (undefined: missing) is v: a missing key reads as the empty set, as in Redis. */
function setReadOutcome(op: Extract<ReadOp, { kind: "smembers" | "sismember" | "scard" }>, v: KeyValue | undefined): OpOutcome {
  if (v !== undefined && v.type !== "set") {
    return { ok: false, error: { code: "FAILED_PRECONDITION", message: `key "${op.key.slice(0, 64)}" holds a ${v.type}, not a set` } };
  }
  const members = v === undefined ? [] : v.members;
  switch (op.kind) {
    case "smembers":
      return { ok: true, result: { kind: "members", members } };
    case "scard":
      return { ok: true, result: { kind: "count", value: members.length } };
    case "sismember":
      return { ok: true, result: { kind: "isMember", value: hasMember(members, op.member) } };
  }
}

/** Binary search: a set's members come sorted bytewise (src/crdt/orset.ts). */
function hasMember(members: readonly Uint8Array[], member: Uint8Array): boolean {
  let lo = 0;
  let hi = members.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareBytes(members[mid] as Uint8Array, member);
    if (c === 0) return true;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return false;
}
