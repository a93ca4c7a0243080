// Edge validation: wire messages become typed ClientOps or an INVALID_ARGUMENT / RESOURCE_EXHAUSTED OpFailure, before any handler runs.
import {
  batchOpsMax, expiryDeadlineMsMax, fieldBytesMax, isRead, keyBytesMax, mvContextBytesMax, OpFailure, requestIdBytesMax, scanLimitDefault, scanLimitMax,
  setMemberBytesMax, setMembersWriteMax, valueBytesMax,
  type ClientOp, type CounterKind, type ExpireCondition, type HandOffEntry, type HashFieldView, type ScanQuery, type SetTtl, type ValueKind,
  handOffEntriesMax,
} from "./api.ts";
import { keyEnvelopeBytesMax } from "../limits.ts";
import {
  CounterTypeWire, ExpireConditionWire, int64ToBigInt, RegisterTypeWire, uint64ToNumber, ValueTypeWire,
  type BatchRequestWire, type DecrementRequestWire, type DeleteRequestWire, type ExpireRequestWire, type GetRequestWire, type HDelRequestWire,
  type HGetAllRequestWire, type PersistRequestWire, type TtlRequestWire, type WireInt64,
  type HGetRequestWire, type HIncrByRequestWire, type HLenRequestWire, type HMGetRequestWire, type HSetRequestWire, type IncrementRequestWire,
  type OpWire, type SAddRequestWire, type ScanRequestWire, type SCardRequestWire, type SetRequestWire, type SIsMemberRequestWire,
  type SMembersRequestWire, type SRemRequestWire, type HandOffRequestWire,
} from "./proto.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const empty = new Uint8Array(0);

function bytesOrEmpty(v: Uint8Array | undefined): Uint8Array {
  return v instanceof Uint8Array ? v : empty;
}

export function decodeKey(raw: Uint8Array | undefined): string {
  const bytes = raw ?? empty;
  if (bytes.length < 1 || bytes.length > keyBytesMax) {
    throw new OpFailure("INVALID_ARGUMENT", `key must be 1..${keyBytesMax} bytes, got ${bytes.length}`);
  }
  try {
    return utf8.decode(bytes);
  } catch {
    throw new OpFailure("INVALID_ARGUMENT", "key is not valid UTF-8");
  }
}

function amountOf(req: { amount?: Parameters<typeof int64ToBigInt>[0] }): bigint {
  const amount = int64ToBigInt(req.amount);
  if (amount < 1n) throw new OpFailure("INVALID_ARGUMENT", `amount must be >= 1, got ${amount}`);
  return amount;
}

function counterKind(type: number | undefined): CounterKind | null {
  switch (type ?? 0) {
    case CounterTypeWire.UNSPECIFIED:
      return null;
    case CounterTypeWire.PNCOUNTER:
      return "pncounter";
    case CounterTypeWire.GCOUNTER:
      return "gcounter";
    default:
      throw new OpFailure("INVALID_ARGUMENT", `unknown counter type ${type}`);
  }
}

function checkValue(value: Uint8Array): Uint8Array {
  if (value.length > valueBytesMax) {
    throw new OpFailure("RESOURCE_EXHAUSTED", `value is ${value.length} bytes, the limit is ${valueBytesMax}`);
  }
  return value;
}

/** A request's id: null when absent (empty), else 1..requestIdBytesMax bytes. */
export function requestIdOf(raw: Uint8Array | undefined): Uint8Array | null {
  const id = bytesOrEmpty(raw);
  if (id.length === 0) return null;
  if (id.length > requestIdBytesMax) throw new OpFailure("INVALID_ARGUMENT", `request_id is ${id.length} bytes, the limit is ${requestIdBytesMax}`);
  return id;
}

/** An op inside a Batch: the id belongs to the BatchRequest, where it covers every op. */
function noInnerRequestId(raw: Uint8Array | undefined): void {
  if (bytesOrEmpty(raw).length > 0) throw new OpFailure("INVALID_ARGUMENT", "request_id goes on the BatchRequest, not on one of its ops");
}

export function incrementOp(req: IncrementRequestWire): ClientOp {
  return { kind: "increment", key: decodeKey(req.key), amount: amountOf(req), counter: counterKind(req.type) };
}

export function decrementOp(req: DecrementRequestWire): ClientOp {
  return { kind: "decrement", key: decodeKey(req.key), amount: amountOf(req) };
}

export function getOp(req: GetRequestWire): ClientOp {
  return { kind: "get", key: decodeKey(req.key) };
}

export function setOp(req: SetRequestWire): ClientOp {
  const key = decodeKey(req.key);
  // protobufjs leaves an absent bytes field as a shared empty Array, not a Uint8Array: normalise.
  const value = checkValue(bytesOrEmpty(req.value));
  const context = bytesOrEmpty(req.context);
  const ttl = setTtlOf(req);
  switch (req.type ?? 0) {
    case RegisterTypeWire.UNSPECIFIED:
    case RegisterTypeWire.LWW:
      if (context.length > 0) throw new OpFailure("INVALID_ARGUMENT", "context is only for MV registers");
      return { kind: "set", key, value, ...ttl };
    case RegisterTypeWire.MV:
      if (context.length > mvContextBytesMax) {
        throw new OpFailure("RESOURCE_EXHAUSTED", `context is ${context.length} bytes, the limit is ${mvContextBytesMax}`);
      }
      return { kind: "setMv", key, value, context: context.length > 0 ? context : null, ...ttl };
    default:
      throw new OpFailure("INVALID_ARGUMENT", `unknown register type ${req.type}`);
  }
}

/**
 * An LWW write of raw key and value bytes without a deadline, checked as setOp checks them: the
 * Redis front door's SET, which has no wire request to read (setOp's was 10% of its time).
 */
export function lwwSetOp(key: Uint8Array | undefined, value: Uint8Array | undefined): Extract<ClientOp, { kind: "set" }> {
  return { kind: "set", key: decodeKey(key), value: checkValue(value ?? empty) };
}

/**
 * A Set's deadline fields: ttl_ms 1..expiryDeadlineMsMax (0: none; the node refuses one that,
 * added to its clock, passes expiryDeadlineMsMax), keep_ttl, never both.
 */
function setTtlOf(req: SetRequestWire): SetTtl {
  const ttl = int64ToBigInt(req.ttlMs);
  if (ttl > BigInt(expiryDeadlineMsMax)) throw new OpFailure("INVALID_ARGUMENT", `ttl_ms must be at most ${expiryDeadlineMsMax}, got ${ttl}`);
  const keep = req.keepTtl === true;
  if (keep && ttl > 0n) throw new OpFailure("INVALID_ARGUMENT", "ttl_ms and keep_ttl exclude each other: a write sets a deadline or keeps the current one");
  if (keep) return { keepTtl: true };
  return ttl > 0n ? { ttlMs: Number(ttl) } : {};
}

function expireCondition(c: number | undefined): ExpireCondition | null {
  switch (c ?? 0) {
    case ExpireConditionWire.NONE:
      return null;
    case ExpireConditionWire.NX:
      return "nx";
    case ExpireConditionWire.XX:
      return "xx";
    case ExpireConditionWire.GT:
      return "gt";
    case ExpireConditionWire.LT:
      return "lt";
    default:
      throw new OpFailure("INVALID_ARGUMENT", `unknown expire condition ${c}`);
  }
}

/** An int64 deadline field at most expiryDeadlineMsMax, as a number (any negative value is clamped to -1: it only means "the past"). */
function deadlineField(v: WireInt64 | null | undefined, name: string): number {
  const n = int64ToBigInt(v);
  if (n > BigInt(expiryDeadlineMsMax)) {
    throw new OpFailure("INVALID_ARGUMENT", `${name} must be at most ${expiryDeadlineMsMax} (Unix ms of the latest deadline, the year 10889), got ${n}`);
  }
  return n < 0n ? -1 : Number(n);
}

/** An Expire: exactly one of ttl_ms and at_unix_ms, each at most expiryDeadlineMsMax; a known condition. */
export function expireOp(req: ExpireRequestWire): ClientOp {
  const key = decodeKey(req.key);
  const cond = expireCondition(req.condition);
  switch (req.when) {
    case "ttlMs":
      return { kind: "expire", key, ttlMs: deadlineField(req.ttlMs, "ttl_ms"), atMs: null, cond };
    case "atUnixMs":
      return { kind: "expire", key, ttlMs: null, atMs: deadlineField(req.atUnixMs, "at_unix_ms"), cond };
    default:
      throw new OpFailure("INVALID_ARGUMENT", "give ttl_ms or at_unix_ms (the deadline to set)");
  }
}

export function persistOp(req: PersistRequestWire): ClientOp {
  return { kind: "persist", key: decodeKey(req.key) };
}

export function ttlOp(req: TtlRequestWire): ClientOp {
  return { kind: "ttl", key: decodeKey(req.key) };
}

export function deleteOp(req: DeleteRequestWire): ClientOp {
  return { kind: "delete", key: decodeKey(req.key) };
}

function valueKind(type: number | undefined): ValueKind | null {
  switch (type ?? 0) {
    case ValueTypeWire.UNSPECIFIED:
      return null;
    case ValueTypeWire.GCOUNTER:
      return "gcounter";
    case ValueTypeWire.PNCOUNTER:
      return "pncounter";
    case ValueTypeWire.LWW:
      return "lww";
    case ValueTypeWire.MV:
      return "mv";
    case ValueTypeWire.SET:
      return "set";
    case ValueTypeWire.HASH:
      return "hash";
    default:
      throw new OpFailure("INVALID_ARGUMENT", `unknown value type ${type}`);
  }
}

/** A Scan request: prefix (UTF-8, at most a key long), type filter, cursor, page size. */
export function scanQuery(req: ScanRequestWire): ScanQuery {
  const raw = bytesOrEmpty(req.prefix);
  if (raw.length > keyBytesMax) throw new OpFailure("INVALID_ARGUMENT", `prefix must be at most ${keyBytesMax} bytes, got ${raw.length}`);
  let prefix: string;
  try {
    prefix = utf8.decode(raw);
  } catch {
    throw new OpFailure("INVALID_ARGUMENT", "prefix is not valid UTF-8");
  }
  const limit = req.limit ?? 0;
  if (limit > scanLimitMax) throw new OpFailure("INVALID_ARGUMENT", `limit must be at most ${scanLimitMax}, got ${limit}`);
  const cursor = uint64ToNumber(req.cursor);
  if (!Number.isSafeInteger(cursor)) throw new OpFailure("INVALID_ARGUMENT", "cursor is not one this server returned");
  return { prefix, type: valueKind(req.type), cursor, limit: limit === 0 ? scanLimitDefault : limit, local: req.local === true };
}

/** One set member: 1..setMemberBytesMax bytes. */
function checkMember(raw: Uint8Array | undefined, what: string): Uint8Array {
  const m = bytesOrEmpty(raw);
  if (m.length === 0) throw new OpFailure("INVALID_ARGUMENT", `${what} is empty (a member is 1 or more bytes)`);
  if (m.length > setMemberBytesMax) throw new OpFailure("RESOURCE_EXHAUSTED", `${what} is ${m.length} bytes, the limit is ${setMemberBytesMax}`);
  return m;
}

/** An SAdd/SRem's members: 1..setMembersWriteMax of them, each checked. */
function membersOf(raw: Uint8Array[] | undefined): Uint8Array[] {
  const list = raw ?? [];
  if (list.length === 0) throw new OpFailure("INVALID_ARGUMENT", "members is empty (name at least one)");
  if (list.length > setMembersWriteMax) throw new OpFailure("RESOURCE_EXHAUSTED", `${list.length} members, the limit is ${setMembersWriteMax} per request`);
  return list.map((m, i) => checkMember(m, `member ${i}`));
}

export function saddOp(req: SAddRequestWire): ClientOp {
  return { kind: "sadd", key: decodeKey(req.key), members: membersOf(req.members) };
}

export function sremOp(req: SRemRequestWire): ClientOp {
  return { kind: "srem", key: decodeKey(req.key), members: membersOf(req.members) };
}

export function smembersOp(req: SMembersRequestWire): ClientOp {
  return { kind: "smembers", key: decodeKey(req.key) };
}

export function sismemberOp(req: SIsMemberRequestWire): ClientOp {
  return { kind: "sismember", key: decodeKey(req.key), member: checkMember(req.member, "member") };
}

export function scardOp(req: SCardRequestWire): ClientOp {
  return { kind: "scard", key: decodeKey(req.key) };
}

// ---- hashes ----

function checkField(raw: Uint8Array | undefined): Uint8Array {
  const field = bytesOrEmpty(raw);
  if (field.length < 1 || field.length > fieldBytesMax) throw new OpFailure("INVALID_ARGUMENT", `field must be 1..${fieldBytesMax} bytes, got ${field.length}`);
  return field;
}

function checkFields(raw: Uint8Array[] | undefined): Uint8Array[] {
  const list = raw ?? [];
  if (list.length === 0) throw new OpFailure("INVALID_ARGUMENT", "give at least one field");
  return list.map(checkField);
}

export function hsetOp(req: HSetRequestWire): ClientOp {
  const key = decodeKey(req.key);
  const wire = req.fields ?? [];
  if (wire.length === 0) throw new OpFailure("INVALID_ARGUMENT", "give at least one field and value");
  const fields: HashFieldView[] = wire.map((f) => ({ field: checkField(f.field), value: checkValue(bytesOrEmpty(f.value)) }));
  return { kind: "hset", key, fields };
}

export function hdelOp(req: HDelRequestWire): ClientOp {
  return { kind: "hdel", key: decodeKey(req.key), fields: checkFields(req.fields) };
}

export function hincrbyOp(req: HIncrByRequestWire): ClientOp {
  // Any int64 (negative decrements, 0 creates the field), as Redis's HINCRBY.
  return { kind: "hincrby", key: decodeKey(req.key), field: checkField(req.field), amount: int64ToBigInt(req.amount) };
}

export function hgetOp(req: HGetRequestWire): ClientOp {
  return { kind: "hget", key: decodeKey(req.key), field: checkField(req.field) };
}

export function hmgetOp(req: HMGetRequestWire): ClientOp {
  return { kind: "hmget", key: decodeKey(req.key), fields: checkFields(req.fields) };
}

export function hgetallOp(req: HGetAllRequestWire): ClientOp {
  return { kind: "hgetall", key: decodeKey(req.key) };
}

export function hlenOp(req: HLenRequestWire): ClientOp {
  return { kind: "hlen", key: decodeKey(req.key) };
}

function batchOp(op: OpWire): ClientOp {
  switch (op.op) {
    case "increment":
      noInnerRequestId(op.increment?.requestId);
      return incrementOp(op.increment ?? {});
    case "decrement":
      noInnerRequestId(op.decrement?.requestId);
      return decrementOp(op.decrement ?? {});
    case "get":
      return getOp(op.get ?? {});
    case "set":
      noInnerRequestId(op.set?.requestId);
      return setOp(op.set ?? {});
    case "delete":
      noInnerRequestId(op.delete?.requestId);
      return deleteOp(op.delete ?? {});
    case "sadd":
      noInnerRequestId(op.sadd?.requestId);
      return saddOp(op.sadd ?? {});
    case "srem":
      noInnerRequestId(op.srem?.requestId);
      return sremOp(op.srem ?? {});
    case "smembers":
      return smembersOp(op.smembers ?? {});
    case "sismember":
      return sismemberOp(op.sismember ?? {});
    case "scard":
      return scardOp(op.scard ?? {});
    case "hset":
      noInnerRequestId(op.hset?.requestId);
      return hsetOp(op.hset ?? {});
    case "hdel":
      noInnerRequestId(op.hdel?.requestId);
      return hdelOp(op.hdel ?? {});
    case "hincrby":
      noInnerRequestId(op.hincrby?.requestId);
      return hincrbyOp(op.hincrby ?? {});
    case "hget":
      return hgetOp(op.hget ?? {});
    case "hmget":
      return hmgetOp(op.hmget ?? {});
    case "hgetall":
      return hgetallOp(op.hgetall ?? {});
    case "hlen":
      return hlenOp(op.hlen ?? {});
    case "expire":
      noInnerRequestId(op.expire?.requestId);
      return expireOp(op.expire ?? {});
    case "persist":
      noInnerRequestId(op.persist?.requestId);
      return persistOp(op.persist ?? {});
    case "ttl":
      return ttlOp(op.ttl ?? {});
    default:
      throw new OpFailure("INVALID_ARGUMENT", "op is empty");
  }
}

/** A Batch is validated as a whole: one bad op refuses the request and nothing is applied. */
export function batchOps(req: BatchRequestWire): ClientOp[] {
  const wire = req.ops ?? [];
  if (wire.length > batchOpsMax) throw new OpFailure("RESOURCE_EXHAUSTED", `batch has ${wire.length} ops, the limit is ${batchOpsMax}`);
  const ops: ClientOp[] = new Array<ClientOp>(wire.length);
  for (let i = 0; i < wire.length; i++) {
    try {
      ops[i] = batchOp(wire[i] ?? {});
    } catch (err) {
      if (err instanceof OpFailure) throw new OpFailure(err.code, `op ${i}: ${err.message}`);
      throw err;
    }
  }
  return ops;
}

/** A Batch's ops and its request id; a batch with an id holds only writes (a read has no first result to keep). */
export function batchRequest(req: BatchRequestWire): { ops: ClientOp[]; requestId: Uint8Array | null } {
  const ops = batchOps(req);
  const requestId = requestIdOf(req.requestId);
  if (requestId !== null) checkWritesOnly(ops);
  return { ops, requestId };
}

/** Refuses a read (Get, SMembers, SIsMember, SCard, HGet, HMGet, HGetAll, HLen, Ttl) in a batch that carries a request id. */
export function checkWritesOnly(ops: readonly ClientOp[]): void {
  for (let i = 0; i < ops.length; i++) {
    if (isRead(ops[i] as ClientOp)) throw new OpFailure("INVALID_ARGUMENT", `op ${i}: a batch with a request_id holds only writes (send reads separately)`);
  }
}

/** A HandOff's entries and stamp: keys as a client's, each piece within its state, states within keyEnvelopeBytesMax. */
export function handOffRequest(req: HandOffRequestWire): { entries: HandOffEntry[]; stamp: { epoch: number; confirms: number } } {
  const raw = req.entries ?? [];
  if (raw.length > handOffEntriesMax) throw new OpFailure("INVALID_ARGUMENT", `at most ${handOffEntriesMax} entries per hand-off call, got ${raw.length}`);
  const entries = raw.map((e): HandOffEntry => {
    const key = decodeKey(e.key);
    const state = bytesOrEmpty(e.state);
    const offset = uint64ToNumber(e.offset);
    const total = uint64ToNumber(e.total);
    if (total > keyEnvelopeBytesMax) throw new OpFailure("INVALID_ARGUMENT", `state of ${total} bytes for ${JSON.stringify(key.slice(0, 64))}: the limit is ${keyEnvelopeBytesMax}`);
    if (total === 0 ? offset !== 0 || state.length === 0 : state.length === 0 || offset + state.length > total) {
      throw new OpFailure("INVALID_ARGUMENT", `piece [${offset}, +${state.length}) of a ${total}-byte state for ${JSON.stringify(key.slice(0, 64))} is not within it`);
    }
    return { key, state, offset, total };
  });
  return { entries, stamp: { epoch: req.stampEpoch ?? 0, confirms: uint64ToNumber(req.stampConfirms) } };
}
