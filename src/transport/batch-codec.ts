// Hand-written codec for the hot Batch path (BatchRequest in, BatchResponse out): protobufjs objects and Longs cost more than the engine on 1000-op batches.
//
// Decoding: a strict fast parser accepts only the plain encoding of a fully valid request (each
// field once, known fields, short varints, nesting exact). Anything else — an invalid op, an unknown
// field, a repeated field, odd varints, truncation — goes to protobufjs + batchRequest, so every
// refusal (code and message) is theirs by construction. protobufjs decode errors (RangeError
// "index out of range", "invalid wire type", "invalid varint encoding", ...) become INVALID_ARGUMENT.
// Encoding: byte-identical to protobufjs on BatchResponse (fields in id order, proto3 defaults
// omitted); the few shapes not written by hand (non-ASCII messages) are handed to protobufjs.
import { status as grpcStatus } from "@grpc/grpc-js";
import {
  batchOpsMax, expiryDeadlineMsMax, isRead, keyBytesMax, mvContextBytesMax, OpFailure, requestIdBytesMax, valueBytesMax, type ClientOp, type HashFieldView, type OpOutcome,
  type OpResult, type TypedView, type ValueView,
} from "./api.ts";
import {
  bigIntToInt64, codecs, int64ToBigInt, uint64ToNumber, ValueTypeWire, type GetResponseWire, type HashFieldWire, type HashValueWire, type OpResultWire,
} from "./proto.ts";
import { batchRequest } from "./validate.ts";

const empty = new Uint8Array(0);
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---- request decoding (server) ----

/** Position after the last varint read by shortVarint / amountVarint. */
let at = 0;

/** A varint of 1..4 bytes (< 2^28: lengths, small enums) in [p, end), or -1 (caller falls back). */
function shortVarint(b: Uint8Array, p: number, end: number): number {
  let x = 0;
  for (let i = 0; i < 4 && p + i < end; i++) {
    const c = b[p + i] as number;
    x |= (c & 0x7f) << (7 * i);
    if (c < 0x80) {
      at = p + i + 1;
      return x;
    }
  }
  return -1;
}

/** A varint of 1..7 bytes (< 2^49, exact as a number) in [p, end), or -1. */
function amountVarint(b: Uint8Array, p: number, end: number): number {
  let x = 0;
  let scale = 1;
  for (let i = 0; i < 7 && p + i < end; i++) {
    const c = b[p + i] as number;
    x += (c & 0x7f) * scale;
    if (c < 0x80) {
      at = p + i + 1;
      return x;
    }
    scale *= 128;
  }
  return -1;
}

/** A valid key as a string, or null (empty, too long, not UTF-8: the slow path words the refusal). */
function keyString(b: Buffer, s: number, e: number): string | null {
  const n = e - s;
  if (n < 1 || n > keyBytesMax) return null;
  for (let i = s; i < e; i++) {
    if ((b[i] as number) >= 0x80) {
      try {
        return utf8.decode(b.subarray(s, e));
      } catch {
        return null;
      }
    }
  }
  return b.toString("latin1", s, e);
}

// Field tags (field number << 3 | wire type) of the request messages.
const tagOp = 0x0a;
const tagRequestId = 0x12;
const tagIncrement = 0x0a;
const tagDecrement = 0x12;
const tagGet = 0x1a;
const tagSet = 0x22;
const tagKey = 0x0a;
const tagAmount = 0x10;
const tagType = 0x18;
const tagValue = 0x12;
const tagContext = 0x22;
const tagTtl = 0x30;
const tagKeepTtl = 0x38;

/** Fields of one request message in [s, e): each at most once, else null. ttl 0 / keep false: absent (proto3 defaults). */
interface Fields { key: string | null; amount: number; type: number; vs: number; ve: number; cs: number; ce: number; ttl: number; keep: boolean }
const f: Fields = { key: null, amount: -1, type: 0, vs: -1, ve: -1, cs: -1, ce: -1, ttl: 0, keep: false };

/**
 * Reads the fields allowed by `allowed` (bit per field number) into f; false: fall back. Field 2 is
 * value in a Set, amount otherwise; fields 6 and 7 (ttl_ms, keep_ttl) only in a Set.
 */
function readFields(b: Buffer, s: number, e: number, allowed: number, isSet: boolean): boolean {
  f.key = null; f.amount = -1; f.type = 0; f.vs = -1; f.ve = -1; f.cs = -1; f.ce = -1; f.ttl = 0; f.keep = false;
  let seen = 0;
  let p = s;
  while (p < e) {
    const tag = b[p] as number;
    const field = tag >>> 3;
    const bit = 1 << field;
    if (field > 7 || (allowed & bit) === 0 || (seen & bit) !== 0) return false;
    seen |= bit;
    p++;
    if (tag === tagKey || (isSet && (tag === tagValue || tag === tagContext))) {
      const n = shortVarint(b, p, e);
      if (n < 0 || at + n > e) return false;
      p = at + n;
      if (tag === tagKey) {
        f.key = keyString(b, at, p);
        if (f.key === null) return false;
      } else if (tag === tagValue) {
        f.vs = at; f.ve = p;
      } else {
        f.cs = at; f.ce = p;
      }
    } else if (tag === tagAmount && !isSet) {
      const n = amountVarint(b, p, e);
      if (n < 1) return false;
      f.amount = n;
      p = at;
    } else if (tag === tagType) {
      if (p >= e || (b[p] as number) > 2) return false;
      f.type = b[p] as number;
      p++;
    } else if (tag === tagTtl && isSet) {
      // Within the bound only (< 2^49 read exactly); anything else is worded by the slow path.
      const n = amountVarint(b, p, e);
      if (n < 0 || n > expiryDeadlineMsMax) return false;
      f.ttl = n;
      p = at;
    } else if (tag === tagKeepTtl && isSet) {
      if (p >= e || (b[p] as number) > 1) return false;
      f.keep = b[p] === 1;
      p++;
    } else {
      return false;
    }
  }
  return f.key !== null;
}

const one = 1n;
const amountOf = (n: number): bigint => (n === 1 ? one : BigInt(n));

/** One Op in [s, e) (exactly one oneof member filling it), or null. */
function fastOp(b: Buffer, s: number, e: number): ClientOp | null {
  if (s >= e) return null;
  const tag = b[s] as number;
  const n = shortVarint(b, s + 1, e);
  if (n < 0 || at + n !== e) return null;
  const is = at;
  switch (tag) {
    case tagIncrement:
      if (!readFields(b, is, e, 0b1110, false) || f.amount < 1) return null;
      return { kind: "increment", key: f.key as string, amount: amountOf(f.amount), counter: f.type === 0 ? null : f.type === 1 ? "pncounter" : "gcounter" };
    case tagDecrement:
      if (!readFields(b, is, e, 0b0110, false) || f.amount < 1) return null;
      return { kind: "decrement", key: f.key as string, amount: amountOf(f.amount) };
    case tagGet:
      if (!readFields(b, is, e, 0b0010, false)) return null;
      return { kind: "get", key: f.key as string };
    case tagSet: {
      // Fields 1..4, 6, 7 (5, request_id, belongs on the BatchRequest: the slow path refuses it).
      if (!readFields(b, is, e, 0b11011110, true)) return null;
      const value = f.vs < 0 ? empty : b.subarray(f.vs, f.ve);
      if (value.length > valueBytesMax) return null;
      if (f.keep && f.ttl > 0) return null;
      const contextBytes = f.cs < 0 ? 0 : f.ce - f.cs;
      if (f.type === 2) {
        if (contextBytes > mvContextBytesMax) return null;
        const mv: ClientOp = { kind: "setMv", key: f.key as string, value, context: contextBytes > 0 ? b.subarray(f.cs, f.ce) : null };
        return withSetTtl(mv);
      }
      if (contextBytes > 0) return null;
      return withSetTtl({ kind: "set", key: f.key as string, value });
    }
    default:
      return null;
  }
}

/** A Set op with f's deadline fields, shaped as validate.ts's setOp shapes them (absent unless given). */
function withSetTtl(op: Extract<ClientOp, { kind: "set" | "setMv" }>): ClientOp {
  if (f.keep) op.keepTtl = true;
  else if (f.ttl > 0) op.ttlMs = f.ttl;
  return op;
}

/** A decoded BatchRequest: its ops and its request id (null: none). */
export interface DecodedBatch {
  ops: ClientOp[];
  requestId: Uint8Array | null;
}

/** The ops and id of a plainly encoded, fully valid request, or null. */
function fastBatch(b: Buffer): DecodedBatch | null {
  const ops: ClientOp[] = [];
  let requestId: Uint8Array | null = null;
  const end = b.length;
  let p = 0;
  while (p < end) {
    const tag = b[p];
    if (tag === tagRequestId) {
      // Once, 1..requestIdBytesMax bytes; anything else is worded by the slow path.
      const n = shortVarint(b, p + 1, end);
      if (requestId !== null || n < 1 || n > requestIdBytesMax || at + n > end) return null;
      requestId = b.subarray(at, at + n);
      p = at + n;
      continue;
    }
    if (tag !== tagOp || ops.length === batchOpsMax) return null;
    const n = shortVarint(b, p + 1, end);
    if (n < 0 || at + n > end) return null;
    const s = at;
    p = s + n;
    const op = fastOp(b, s, p);
    if (op === null) return null;
    ops.push(op);
  }
  // A batch with an id holds only writes: leave the refusal's wording to the slow path.
  if (requestId !== null) for (const op of ops) if (isRead(op)) return null;
  return { ops, requestId };
}

/** The fast parser alone: ops, or null where decodeBatchRequest falls back (exported for tests). */
export function decodeBatchRequestFast(bytes: Uint8Array): ClientOp[] | null {
  return fastBatch(asBuffer(bytes))?.ops ?? null;
}

/** The fast parser alone, with the request id: null where decodeBatch falls back (exported for tests). */
export function decodeBatchFast(bytes: Uint8Array): DecodedBatch | null {
  return fastBatch(asBuffer(bytes));
}

/** protobufjs + batchRequest: the reference semantics, and every refusal's wording. */
export function decodeBatchSlow(bytes: Uint8Array): DecodedBatch {
  let req;
  try {
    req = codecs.BatchRequest.decode(bytes);
  } catch (err) {
    throw new OpFailure("INVALID_ARGUMENT", `malformed BatchRequest: ${err instanceof Error ? err.message : String(err)}`);
  }
  return batchRequest(req);
}

/** Same ops and id, or the same OpFailure, as decodeBatchSlow; malformed bytes are INVALID_ARGUMENT. */
export function decodeBatch(bytes: Uint8Array): DecodedBatch {
  const b = asBuffer(bytes);
  return fastBatch(b) ?? decodeBatchSlow(b);
}

/** decodeBatchSlow's ops (the reference the fast parser's ops must match). */
export function decodeBatchRequestSlow(bytes: Uint8Array): ClientOp[] {
  return decodeBatchSlow(bytes).ops;
}

/** decodeBatch's ops. */
export function decodeBatchRequest(bytes: Uint8Array): ClientOp[] {
  return decodeBatch(bytes).ops;
}

// ---- response encoding (server) ----

/** A growable output buffer; protobuf writing helpers below append to it. */
class Out {
  buf: Buffer;
  pos = 0;
  constructor(bytes: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, bytes));
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  /** varint of a non-negative safe integer; caller ensured room (10 bytes max). */
  varint(n: number): void {
    const b = this.buf;
    while (n >= 0x80) {
      b[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    b[this.pos++] = n;
  }
  varint64(lo: number, hi: number): void {
    const b = this.buf;
    while (hi !== 0) {
      b[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    while (lo > 0x7f) {
      b[this.pos++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    b[this.pos++] = lo;
  }
  bytes(tag: number, v: Uint8Array): void {
    this.ensure(6 + v.length);
    this.buf[this.pos++] = tag;
    this.varint(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

function varintBytes(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** An int64 as protobufjs writes it: two's-complement 64 bits, 1..10 varint bytes. */
class Int64 {
  lo = 0;
  hi = 0;
  small = 0;
  /** -1 when the value needs lo/hi. */
  set(v: bigint): number {
    const n = Number(v);
    if (n >= 0 && Number.isSafeInteger(n)) {
      this.small = n;
      return varintBytes(n);
    }
    const u = BigInt.asUintN(64, v);
    this.lo = Number(u & 0xffffffffn);
    this.hi = Number(u >> 32n);
    this.small = -1;
    let size = 1;
    let lo = this.lo;
    let hi = this.hi;
    while (hi !== 0 || lo > 0x7f) {
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
      size++;
    }
    return size;
  }
  write(out: Out): void {
    if (this.small >= 0) out.varint(this.small);
    else out.varint64(this.lo, this.hi);
  }
}
const int64 = new Int64();

function expectedResult(op: ClientOp): OpResult["kind"] {
  switch (op.kind) {
    case "increment":
    case "decrement":
      return "counter";
    case "get":
      return "value";
    case "set":
    case "setMv":
      return "written";
    case "delete":
      return "deleted";
    case "sadd":
    case "srem":
    case "scard":
      return "count";
    case "smembers":
      return "members";
    case "sismember":
      return "isMember";
    case "hset":
    case "hdel":
    case "hlen":
      return "hashCount";
    case "hincrby":
      return "counter";
    case "hget":
      return "hashValue";
    case "hmget":
      return "hashValues";
    case "hgetall":
      return "hashFields";
    case "expire":
    case "persist":
      return "changed";
    case "ttl":
      return "ttl";
  }
}

/** The handler answered with a result of the wrong kind for its op: a programmer error (INTERNAL). */
export function checkResultKind(op: ClientOp, r: OpResult): void {
  if (r.kind !== expectedResult(op)) throw new Error(`handler answered ${op.kind} with a ${r.kind} result`);
}

// OpResult fields.
const tagResult = 0x0a;
const tagCode = 0x08;
const tagMessage = 0x12;
const tagCounter = 0x1a;
const tagGetResult = 0x22;
const tagSetResult = 0x2a;
const tagDeleteResult = 0x32;
const tagSCountResult = 0x52;
const tagSMembersResult = 0x5a;
const tagSIsMemberResult = 0x62;

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

function writeError(out: Out, code: number, message: string): void {
  if (!isAscii(message)) {
    // protobufjs writes short non-ASCII strings with its own UTF-8 writer (lone surrogates differ): let it.
    out.bytes(tagResult, codecs.OpResult.encode({ code, message }));
    return;
  }
  const m = message.length;
  const body = 1 + varintBytes(code) + (m > 0 ? 1 + varintBytes(m) + m : 0);
  out.ensure(1 + 5 + body);
  out.buf[out.pos++] = tagResult;
  out.varint(body);
  out.buf[out.pos++] = tagCode;
  out.varint(code);
  if (m > 0) {
    out.buf[out.pos++] = tagMessage;
    out.varint(m);
    out.pos += out.buf.write(message, out.pos, m, "latin1");
  }
}

function writeCounter(out: Out, value: bigint): void {
  const vb = value === 0n ? 0 : int64.set(value);
  const inner = vb === 0 ? 0 : 1 + vb;
  out.ensure(4 + inner);
  const buf = out.buf;
  buf[out.pos++] = tagResult;
  buf[out.pos++] = 2 + inner; // inner <= 11: one-byte lengths
  buf[out.pos++] = tagCounter;
  buf[out.pos++] = inner;
  if (vb > 0) {
    buf[out.pos++] = 0x10;
    int64.write(out);
  }
}

const delimited = (n: number): number => 1 + varintBytes(n) + n;

const valueTypeWire: Record<ValueView["type"], number> = {
  gcounter: ValueTypeWire.GCOUNTER, pncounter: ValueTypeWire.PNCOUNTER, lww: ValueTypeWire.LWW, mv: ValueTypeWire.MV, set: ValueTypeWire.SET, hash: ValueTypeWire.HASH,
};

const hashValueWire = (v: Uint8Array | null): HashValueWire => (v === null ? {} : { found: true, value: v });
const hashValueOf = (w: HashValueWire | undefined | null): Uint8Array | null => (w?.found === true ? bytesOrEmpty(w.value) : null);
const hashFieldOf = (w: HashFieldWire): HashFieldView => ({ field: bytesOrEmpty(w.field), value: bytesOrEmpty(w.value) });

/**
 * A hash op's OpResult as protobufjs writes it (the field of the op's kind): not hand-written,
 * as hash ops are not on the counter/register hot path. Null for any other op.
 */
export function hashResultWire(op: ClientOp, r: OpResult): OpResultWire | null {
  switch (op.kind) {
    case "hset":
      return r.kind === "hashCount" ? { hset: { added: bigIntToInt64(r.count) } } : null;
    case "hdel":
      return r.kind === "hashCount" ? { hdel: { removed: bigIntToInt64(r.count) } } : null;
    case "hlen":
      return r.kind === "hashCount" ? { hlen: { length: bigIntToInt64(r.count) } } : null;
    case "hincrby":
      return r.kind === "counter" ? { hincrby: { value: bigIntToInt64(r.value) } } : null;
    case "hget":
      return r.kind === "hashValue" ? { hget: { value: hashValueWire(r.value) } } : null;
    case "hmget":
      return r.kind === "hashValues" ? { hmget: { values: r.values.map(hashValueWire) } } : null;
    case "hgetall":
      return r.kind === "hashFields" ? { hgetall: { fields: r.fields } } : null;
    default:
      return null;
  }
}

/**
 * An expiry op's OpResult as protobufjs writes it (the field of the op's kind; not on the hot
 * path). Null for any other op.
 */
export function expiryResultWire(op: ClientOp, r: OpResult): OpResultWire | null {
  switch (op.kind) {
    case "expire":
      return r.kind === "changed" ? { expire: { set: r.value } } : null;
    case "persist":
      return r.kind === "changed" ? { persist: { cleared: r.value } } : null;
    case "ttl":
      return r.kind === "ttl" ? { ttl: { ttlMs: r.ttlMs } } : null;
    default:
      return null;
  }
}

/** A GetResponse as protobufjs encodes it (the unary Get, and Batch results with conflict sides). */
export function getResponseWire(key: Uint8Array | undefined, v: ValueView): GetResponseWire {
  const base: GetResponseWire = { key, type: valueTypeWire[v.type] };
  if (v.conflicts !== undefined && v.conflicts.length > 0) base.conflicts = v.conflicts.map((c) => getResponseWire(undefined, c));
  // 0 (left out) is "no deadline"; a key with one has >= 1 ms left.
  if (v.ttlMs !== undefined) base.ttlMs = v.ttlMs;
  if (v.expiresAtMs !== undefined) base.expiresAtUnixMs = v.expiresAtMs;
  switch (v.type) {
    case "gcounter":
    case "pncounter":
      return { ...base, counter: bigIntToInt64(v.value) };
    case "lww":
      return { ...base, value: v.value };
    case "mv":
      return { ...base, values: v.values, context: v.context };
    case "set":
      return { ...base, members: v.members };
    case "hash":
      return { ...base, fields: v.fields };
  }
}

function writeValue(out: Out, v: ValueView): void {
  if ((v.conflicts !== undefined && v.conflicts.length > 0) || v.type === "set" || v.type === "hash") {
    // A key after a type conflict (rare), a set or a hash: protobufjs writes them (they have their own ops).
    out.bytes(tagResult, codecs.OpResult.encode({ get: getResponseWire(undefined, v) }));
    return;
  }
  // GetResponse: type = 2 (varint), counter = 3 (int64), value = 4, values = 5 (repeated), context = 6.
  let inner = 2;
  let vb = 0;
  switch (v.type) {
    case "gcounter":
    case "pncounter":
      vb = v.value === 0n ? 0 : int64.set(v.value);
      if (vb > 0) inner += 1 + vb;
      break;
    case "lww":
      if (v.value.length > 0) inner += delimited(v.value.length);
      break;
    case "mv":
      for (const x of v.values) inner += delimited(x.length);
      if (v.context.length > 0) inner += delimited(v.context.length);
      break;
  }
  // ttl_ms = 10 and expires_at_unix_ms = 11 (int64), after every other field; left out when 0 (no deadline).
  const ttl = v.ttlMs ?? 0;
  const at = v.expiresAtMs ?? 0;
  if (ttl > 0) inner += 1 + varintBytes(ttl);
  if (at > 0) inner += 1 + varintBytes(at);
  out.ensure(2 * 6 + 2);
  out.buf[out.pos++] = tagResult;
  out.varint(delimited(inner));
  out.buf[out.pos++] = tagGetResult;
  out.varint(inner);
  out.buf[out.pos++] = 0x10;
  switch (v.type) {
    case "gcounter":
    case "pncounter":
      out.buf[out.pos++] = v.type === "gcounter" ? ValueTypeWire.GCOUNTER : ValueTypeWire.PNCOUNTER;
      if (vb > 0) {
        out.ensure(11);
        out.buf[out.pos++] = 0x18;
        int64.write(out);
      }
      break;
    case "lww":
      out.buf[out.pos++] = ValueTypeWire.LWW;
      if (v.value.length > 0) out.bytes(0x22, v.value);
      break;
    case "mv":
      out.buf[out.pos++] = ValueTypeWire.MV;
      for (const x of v.values) out.bytes(0x2a, x);
      if (v.context.length > 0) out.bytes(0x32, v.context);
      break;
  }
  if (ttl > 0 || at > 0) {
    out.ensure(2 * 11);
    if (ttl > 0) {
      out.buf[out.pos++] = 0x50;
      out.varint(ttl);
    }
    if (at > 0) {
      out.buf[out.pos++] = 0x58;
      out.varint(at);
    }
  }
}

/** OpResult.delete = DeleteResponse { deleted = 2 } (false is the proto3 default: left out). */
function writeDeleted(out: Out, deleted: boolean): void {
  const inner = deleted ? 2 : 0;
  out.ensure(8);
  out.buf[out.pos++] = tagResult;
  out.varint(delimited(inner));
  out.buf[out.pos++] = tagDeleteResult;
  out.varint(inner);
  if (deleted) {
    out.buf[out.pos++] = 0x10;
    out.buf[out.pos++] = 1;
  }
}

function writeWritten(out: Out, context: Uint8Array | null): void {
  const c = context === null ? 0 : context.length;
  const inner = c > 0 ? delimited(c) : 0;
  out.ensure(12);
  out.buf[out.pos++] = tagResult;
  out.varint(delimited(inner));
  out.buf[out.pos++] = tagSetResult;
  out.varint(inner);
  if (context !== null && c > 0) out.bytes(0x12, context); // SetResponse.context = 2
}

/**
 * Byte-identical to protobufjs encoding of the BatchResponse the server used to build: one OpResult per
 * op, keys left out. Throws (INTERNAL) if the handler broke its contract (count or result kind).
 */
export function encodeBatchResponse(ops: readonly ClientOp[], outcomes: readonly OpOutcome[]): Buffer {
  if (outcomes.length !== ops.length) throw new Error(`batch handler returned ${outcomes.length} outcomes for ${ops.length} ops`);
  const out = new Out(ops.length * 8);
  for (let i = 0; i < ops.length; i++) {
    const outcome = outcomes[i] as OpOutcome;
    if (!outcome.ok) {
      writeError(out, grpcStatus[outcome.error.code], outcome.error.message);
      continue;
    }
    const r = outcome.result;
    checkResultKind(ops[i] as ClientOp, r);
    const own = hashResultWire(ops[i] as ClientOp, r) ?? expiryResultWire(ops[i] as ClientOp, r);
    if (own !== null) {
      out.bytes(tagResult, codecs.OpResult.encode(own));
      continue;
    }
    switch (r.kind) {
      case "counter":
        writeCounter(out, r.value);
        break;
      case "value":
        writeValue(out, r.value);
        break;
      case "written":
        writeWritten(out, r.context);
        break;
      case "deleted":
        writeDeleted(out, r.deleted);
        break;
      // Set results: protobufjs writes them (not on the counter hot path).
      case "count":
        out.bytes(tagResult, codecs.OpResult.encode({ scount: { count: r.value } }));
        break;
      case "members":
        out.bytes(tagResult, codecs.OpResult.encode({ smembers: { members: r.members } }));
        break;
      case "isMember":
        out.bytes(tagResult, codecs.OpResult.encode({ sismember: { isMember: r.value } }));
        break;
      case "hashCount":
      case "hashValue":
      case "hashValues":
      case "hashFields":
      case "changed":
      case "ttl":
        // checkResultKind tied these to their ops, which hashResultWire / expiryResultWire wrote.
        throw new Error(`assertion failed: a ${r.kind} result for ${(ops[i] as ClientOp).kind}`);
    }
  }
  return out.finish();
}

// ---- response decoding (client) ----

/** One op's outcome as the client reports it: code is the gRPC status name. */
export type BatchItem = { ok: true; result: OpResult } | { ok: false; code: string; message: string };

/** The server sent something a client cannot make sense of (the client reports it as INTERNAL). */
export class BadBatchResponse extends Error {
  override readonly name = "BadBatchResponse";
}

function statusName(code: number): string {
  return grpcStatus[code] ?? `STATUS_${code}`;
}

function bytesOrEmpty(v: Uint8Array | undefined | null): Uint8Array {
  return v instanceof Uint8Array ? v : empty;
}

/** GetResponse -> ValueView (with its conflict sides, if any); an unknown type is BadBatchResponse. */
export function valueViewOf(r: GetResponseWire): ValueView {
  const v: ValueView = typedViewOf(r);
  if (r.conflicts !== undefined && r.conflicts.length > 0) v.conflicts = r.conflicts.map(typedViewOf);
  // 0 (absent, or a server without expiry) is "no deadline".
  const ttl = int64ToBigInt(r.ttlMs);
  const at = int64ToBigInt(r.expiresAtUnixMs);
  if (ttl > 0n) v.ttlMs = Number(ttl);
  if (at > 0n) v.expiresAtMs = Number(at);
  return v;
}

function typedViewOf(r: GetResponseWire): TypedView {
  switch (r.type) {
    case ValueTypeWire.GCOUNTER:
      return { type: "gcounter", value: int64ToBigInt(r.counter) };
    case ValueTypeWire.PNCOUNTER:
      return { type: "pncounter", value: int64ToBigInt(r.counter) };
    case ValueTypeWire.LWW:
      return { type: "lww", value: bytesOrEmpty(r.value) };
    case ValueTypeWire.MV:
      return { type: "mv", values: r.values ?? [], context: bytesOrEmpty(r.context) };
    case ValueTypeWire.SET:
      return { type: "set", members: r.members ?? [] };
    case ValueTypeWire.HASH:
      return { type: "hash", fields: (r.fields ?? []).map(hashFieldOf) };
    default:
      throw new BadBatchResponse(`server sent unknown value type ${r.type}`);
  }
}

export function batchItemOf(r: OpResultWire): BatchItem {
  const code = r.code ?? 0;
  if (code !== 0) return { ok: false, code: statusName(code), message: r.message ?? "" };
  switch (r.result) {
    case "counter":
      return { ok: true, result: { kind: "counter", value: int64ToBigInt(r.counter?.value) } };
    case "get":
      return { ok: true, result: { kind: "value", value: valueViewOf(r.get ?? {}) } };
    case "set":
      return { ok: true, result: { kind: "written", context: r.set?.context?.length ? r.set.context : null } };
    case "delete":
      return { ok: true, result: { kind: "deleted", deleted: r.delete?.deleted === true } };
    case "scount":
      return { ok: true, result: { kind: "count", value: uint64ToNumber(r.scount?.count) } };
    case "smembers":
      return { ok: true, result: { kind: "members", members: r.smembers?.members ?? [] } };
    case "sismember":
      return { ok: true, result: { kind: "isMember", value: r.sismember?.isMember === true } };
    case "hset":
      return { ok: true, result: { kind: "hashCount", count: int64ToBigInt(r.hset?.added) } };
    case "hdel":
      return { ok: true, result: { kind: "hashCount", count: int64ToBigInt(r.hdel?.removed) } };
    case "hlen":
      return { ok: true, result: { kind: "hashCount", count: int64ToBigInt(r.hlen?.length) } };
    case "hincrby":
      return { ok: true, result: { kind: "counter", value: int64ToBigInt(r.hincrby?.value) } };
    case "hget":
      return { ok: true, result: { kind: "hashValue", value: hashValueOf(r.hget?.value) } };
    case "hmget":
      return { ok: true, result: { kind: "hashValues", values: (r.hmget?.values ?? []).map(hashValueOf) } };
    case "hgetall":
      return { ok: true, result: { kind: "hashFields", fields: (r.hgetall?.fields ?? []).map(hashFieldOf) } };
    case "expire":
      return { ok: true, result: { kind: "changed", value: r.expire?.set === true } };
    case "persist":
      return { ok: true, result: { kind: "changed", value: r.persist?.cleared === true } };
    case "ttl":
      return { ok: true, result: { kind: "ttl", ttlMs: Number(int64ToBigInt(r.ttl?.ttlMs)) } };
    default:
      throw new BadBatchResponse("server sent an op result without a result");
  }
}

function decodeBatchResponseWire(bytes: Uint8Array): OpResultWire[] {
  try {
    return codecs.BatchResponse.decode(bytes).results ?? [];
  } catch (err) {
    throw new BadBatchResponse(`malformed BatchResponse: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** protobufjs + batchItemOf: the reference the fast decoder must match. */
export function decodeBatchResponseSlow(bytes: Uint8Array): BatchItem[] {
  return decodeBatchResponseWire(bytes).map(batchItemOf);
}

/** A 1..10-byte varint in [p, end) as int64 (protobufjs' reading), or null; sets `at`. */
function int64Varint(b: Uint8Array, p: number, end: number): bigint | null {
  const n = amountVarint(b, p, end);
  if (n >= 0) return BigInt(n);
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < 10 && p + i < end; i++) {
    const c = (b[p + i] as number) & 0x7f;
    if (i < 4) lo |= c << (7 * i);
    else if (i === 4) {
      lo |= c << 28;
      hi |= c >>> 4;
    } else hi |= c << (7 * (i - 5) + 3);
    if ((b[p + i] as number) < 0x80) {
      if (i === 9 && c > 1) return null;
      at = p + i + 1;
      return BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
    }
  }
  return null;
}

const zero = 0n;

/** CounterResponse [s, e) -> value, or null (anything but one value field). */
function fastCounterValue(b: Uint8Array, s: number, e: number): bigint | null {
  if (s === e) return zero;
  if (b[s] !== 0x10) return null;
  const v = int64Varint(b, s + 1, e);
  return v !== null && at === e ? v : null;
}

/** One OpResult [s, e) in the shapes the server writes (code, message, one result), or null. */
function fastItem(b: Buffer, s: number, e: number): BatchItem | null {
  let code = 0;
  let message = "";
  let p = s;
  if (p < e && b[p] === tagCode) {
    code = shortVarint(b, p + 1, e);
    if (code < 0) return null;
    p = at;
  }
  if (p < e && b[p] === tagMessage) {
    const n = shortVarint(b, p + 1, e);
    if (n < 0 || at + n > e) return null;
    for (let i = at; i < at + n; i++) if ((b[i] as number) >= 0x80) return null;
    message = b.toString("latin1", at, at + n);
    p = at + n;
  }
  if (code !== 0) return p === e ? { ok: false, code: statusName(code), message } : null;
  if (p >= e) return null;
  const tag = b[p] as number;
  const n = shortVarint(b, p + 1, e);
  if (n < 0 || at + n !== e) return null;
  const is = at;
  if (tag === tagCounter) {
    const value = fastCounterValue(b, is, e);
    return value === null ? null : { ok: true, result: { kind: "counter", value } };
  }
  if (tag === tagSetResult) {
    if (is === e) return { ok: true, result: { kind: "written", context: null } };
    if (b[is] !== 0x12) return null;
    const c = shortVarint(b, is + 1, e);
    if (c < 0 || at + c !== e) return null;
    return { ok: true, result: { kind: "written", context: c > 0 ? b.subarray(at, e) : null } };
  }
  if (tag === tagGetResult) {
    const value = fastValueView(b, is, e);
    return value === null ? null : { ok: true, result: { kind: "value", value } };
  }
  if (tag === tagDeleteResult) {
    if (is === e) return { ok: true, result: { kind: "deleted", deleted: false } };
    if (is + 2 === e && b[is] === 0x10 && b[is + 1] === 1) return { ok: true, result: { kind: "deleted", deleted: true } };
    return null;
  }
  if (tag === tagSCountResult) {
    // SCountResponse: count = 2 (uint64), absent when 0.
    if (is === e) return { ok: true, result: { kind: "count", value: 0 } };
    if (b[is] !== 0x10) return null;
    const value = amountVarint(b, is + 1, e);
    return value < 0 || at !== e ? null : { ok: true, result: { kind: "count", value } };
  }
  if (tag === tagSIsMemberResult) {
    // SIsMemberResponse: is_member = 2 (bool), absent when false.
    if (is === e) return { ok: true, result: { kind: "isMember", value: false } };
    if (b[is] !== 0x10 || is + 2 !== e || (b[is + 1] as number) >= 0x80) return null;
    return { ok: true, result: { kind: "isMember", value: b[is + 1] !== 0 } };
  }
  if (tag === tagSMembersResult) {
    // SMembersResponse: members = 2 (repeated bytes).
    const members: Uint8Array[] = [];
    let q = is;
    while (q < e) {
      if (b[q] !== 0x12 || !delimitedAt(b, q + 1, e)) return null;
      members.push(b.subarray(span, at));
      q = at;
    }
    return { ok: true, result: { kind: "members", members } };
  }
  return null;
}

/** A delimited field's [start, end) at p (tag already read at p - 1), or false; sets `at` to the end. */
function delimitedAt(b: Uint8Array, p: number, e: number): boolean {
  const n = shortVarint(b, p, e);
  if (n < 0 || at + n > e) return false;
  span = at;
  at += n;
  return true;
}
let span = 0;

/** GetResponse [s, e) with fields in id order (type, counter, value, values..., context, members...), or null. */
function fastValueView(b: Buffer, s: number, e: number): ValueView | null {
  let p = s;
  if (p + 1 >= e || b[p] !== 0x10) return null;
  const type = b[p + 1] as number;
  if (type < ValueTypeWire.GCOUNTER || type > ValueTypeWire.SET) return null;
  p += 2;
  let counter = zero;
  let value: Uint8Array = empty;
  const values: Uint8Array[] = [];
  let context: Uint8Array = empty;
  if (p < e && b[p] === 0x18) {
    const v = int64Varint(b, p + 1, e);
    if (v === null) return null;
    counter = v;
    p = at;
  }
  if (p < e && b[p] === 0x22) {
    if (!delimitedAt(b, p + 1, e)) return null;
    value = b.subarray(span, at);
    p = at;
  }
  while (p < e && b[p] === 0x2a) {
    if (!delimitedAt(b, p + 1, e)) return null;
    values.push(b.subarray(span, at));
    p = at;
  }
  if (p < e && b[p] === 0x32) {
    if (!delimitedAt(b, p + 1, e)) return null;
    context = b.subarray(span, at);
    p = at;
  }
  const members: Uint8Array[] = [];
  while (p < e && b[p] === 0x42) {
    if (!delimitedAt(b, p + 1, e)) return null;
    members.push(b.subarray(span, at));
    p = at;
  }
  // ttl_ms = 10, expires_at_unix_ms = 11: positive (< 2^49) when present; anything else falls back.
  let ttlMs = 0;
  let expiresAtMs = 0;
  if (p < e && b[p] === 0x50) {
    ttlMs = amountVarint(b, p + 1, e);
    if (ttlMs < 1) return null;
    p = at;
  }
  if (p < e && b[p] === 0x58) {
    expiresAtMs = amountVarint(b, p + 1, e);
    if (expiresAtMs < 1) return null;
    p = at;
  }
  if (p !== e) return null;
  const v = fastTypedView(type, counter, value, values, context, members);
  if (ttlMs > 0) v.ttlMs = ttlMs;
  if (expiresAtMs > 0) v.expiresAtMs = expiresAtMs;
  return v;
}

function fastTypedView(type: number, counter: bigint, value: Uint8Array, values: Uint8Array[], context: Uint8Array, members: Uint8Array[]): ValueView {
  switch (type) {
    case ValueTypeWire.GCOUNTER:
      return { type: "gcounter", value: counter };
    case ValueTypeWire.PNCOUNTER:
      return { type: "pncounter", value: counter };
    case ValueTypeWire.LWW:
      return { type: "lww", value };
    case ValueTypeWire.MV:
      return { type: "mv", values, context };
    default:
      return { type: "set", members };
  }
}

/** The fast reader alone: items, or null where decodeBatchResponse falls back (exported for tests). */
export function decodeBatchResponseFast(bytes: Uint8Array): BatchItem[] | null {
  const b = asBuffer(bytes);
  const items: BatchItem[] = [];
  const end = b.length;
  let p = 0;
  while (p < end) {
    if (b[p] !== tagResult) return null;
    const n = shortVarint(b, p + 1, end);
    if (n < 0 || at + n > end) return null;
    const s = at;
    p = s + n;
    const item = fastItem(b, s, p);
    if (item === null) return null;
    items.push(item);
  }
  return items;
}

/** Same items (or BadBatchResponse) as decodeBatchResponseSlow. */
export function decodeBatchResponse(bytes: Uint8Array): BatchItem[] {
  return decodeBatchResponseFast(bytes) ?? decodeBatchResponseSlow(bytes);
}

/**
 * How many results a BatchResponse holds and how many are errors (code != 0), without building them.
 * Reads code only as an OpResult's first field, where this server (and protobufjs) writes it.
 */
export function countBatchErrors(bytes: Uint8Array): { results: number; errors: number } {
  const end = bytes.length;
  let results = 0;
  let errors = 0;
  let p = 0;
  while (p < end) {
    if (bytes[p] !== tagResult) return countSlow(bytes);
    const n = shortVarint(bytes, p + 1, end);
    if (n < 0 || at + n > end) return countSlow(bytes);
    const s = at;
    p = s + n;
    results++;
    // The server writes code first and omits it when 0.
    if (n > 0 && bytes[s] === tagCode) {
      const code = shortVarint(bytes, s + 1, p);
      if (code < 0) return countSlow(bytes);
      if (code !== 0) errors++;
    }
  }
  return { results, errors };
}

function countSlow(bytes: Uint8Array): { results: number; errors: number } {
  const rs = decodeBatchResponseWire(bytes);
  let errors = 0;
  for (const r of rs) if ((r.code ?? 0) !== 0) errors++;
  return { results: rs.length, errors };
}
