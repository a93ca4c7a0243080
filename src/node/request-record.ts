// The bytes a write with a request id leaves behind: one WAL record kind that carries the write's
// deltas together with its id and first outcome (so recovery replays the write and remembers the id
// together or not at all), the table chunks a snapshot carries, and the fingerprint that tells a
// retry from a different request reusing an id.
//
// WAL record bodies were, and for writes without an id still are, bare KeyDelta envelopes, which
// begin with the protobuf tag of their field 1 (0x08). A body that begins with 0x00 (never the first
// byte of a protobuf message: field 0 does not exist) is one of the node's own records:
//
//   0x00 | kind (1 byte, ONLY APPEND) | version (1 byte) | kind-specific payload
//
// Kind 1, version 1, a request part: a write's records are consecutive in one WAL append (LSNs are
// assigned synchronously), part i of n; only the last part carries the entry (id, fingerprint,
// accepted time, outcomes). Replay applies a group's deltas when its last part arrives, so a group
// torn at the tail of the WAL (never acknowledged) is dropped whole.
import { createHash } from "node:crypto";
import { DecodeError, Reader, Writer } from "../codec/index.ts";
import { opErrorCodes, requestIdBytesMax, type ClientOp, type OpOutcome, type SetTtl } from "../transport/api.ts";

/** First byte of a node record; a KeyDelta envelope starts with 0x08. */
export const nodeRecordMarker = 0x00;
/** Kinds of node records. ONLY APPEND TO THIS LIST. */
export const NodeRecordKind = { RequestPart: 1 } as const;
/** The request part format this code writes and reads. */
export const requestPartVersion = 1;
/** Version byte of a snapshot's request-table chunk. */
export const requestChunkVersion = 1;
/** Bytes of a request fingerprint (SHA-256, truncated: a retry is told from another request by it). */
export const fingerprintBytes = 16;
/** Most parts one request's group may have (a 4 MiB request fits in a few). */
export const requestPartsMax = 64;
/** Most outcomes one entry holds (a Batch's op count bound, with room). */
const outcomesMax = 10_000;
/** Most deltas one part holds. */
const partDeltasMax = 100_000;
/** Largest delta or outcome field read back. */
const fieldBytesMax = 64 * 1024 * 1024;

/** What the node remembers of one write with a request id. */
export interface RequestEntryData {
  id: Uint8Array;
  fingerprint: Uint8Array;
  /** Wall-clock ms at which the first attempt was accepted (the window counts from here). */
  acceptedAtMs: number;
  /** The first attempt's outcomes, one per op. */
  outcomes: OpOutcome[];
}

export interface RequestPart {
  id: Uint8Array;
  index: number;
  count: number;
  deltas: Uint8Array[];
  /** On the last part only. */
  entry: RequestEntryData | null;
}

export type WalRecordKind = "delta" | "request-part";

/** Which kind of WAL record a body is (bare KeyDelta envelopes are older and id-less writes). */
export function walRecordKind(body: Uint8Array): WalRecordKind {
  return body[0] === nodeRecordMarker ? "request-part" : "delta";
}

/**
 * SHA-256 (truncated) over a canonical encoding of the ops: equal requests, equal fingerprints.
 * One text line per op (kind, key with its length, amount, counter type, byte lengths), then the
 * value and context bytes in op order: the lengths in the text make the whole unambiguous.
 */
export function fingerprintOf(ops: readonly ClientOp[]): Uint8Array {
  const h = createHash("sha256");
  const lines = new Array<string>(ops.length);
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as ClientOp;
    const head = `${op.kind}|${op.key.length}|${op.key}|`;
    switch (op.kind) {
      case "increment":
        lines[i] = `${head}${op.amount}|${op.counter ?? ""}`;
        break;
      case "decrement":
        lines[i] = `${head}${op.amount}`;
        break;
      case "get":
      case "delete":
      case "smembers":
      case "scard":
        lines[i] = head;
        break;
      case "sismember":
        lines[i] = `${head}${op.member.length}`;
        break;
      case "sadd":
      case "srem":
        lines[i] = `${head}${op.members.length}|${op.members.map((m) => m.length).join(",")}`;
        break;
      // A deadline is added only when given, so a set without one keeps the fingerprint it had
      // before expiry existed (a retry across an upgrade still matches).
      case "set":
        lines[i] = `${head}${op.value.length}${ttlPart(op)}`;
        break;
      case "setMv":
        // null (no context) and an empty one mean the same to the engine, but keep them apart anyway.
        lines[i] = `${head}${op.value.length}|${op.context === null ? "-" : op.context.length}${ttlPart(op)}`;
        break;
      // The TTL as sent (relative): a retry repeats it, and the first attempt's deadline is kept.
      case "expire":
        lines[i] = `${head}${op.ttlMs === null ? "at" : "ttl"}|${op.ttlMs ?? op.atMs}|${op.cond ?? ""}`;
        break;
      case "persist":
      case "ttl":
        lines[i] = head;
        break;
      // Hashes: the lengths of every field (and value) in order; their bytes follow below.
      case "hset":
        lines[i] = `${head}${op.fields.map((f) => `${f.field.length},${f.value.length}`).join(";")}`;
        break;
      case "hdel":
      case "hmget":
        lines[i] = `${head}${op.fields.map((f) => f.length).join(";")}`;
        break;
      case "hincrby":
        lines[i] = `${head}${op.amount}|${op.field.length}`;
        break;
      case "hget":
        lines[i] = `${head}${op.field.length}`;
        break;
      case "hgetall":
      case "hlen":
        lines[i] = head;
        break;
    }
  }
  h.update(`${ops.length}\n${lines.join("\n")}`);
  for (const op of ops) {
    if (op.kind === "set" || op.kind === "setMv") h.update(op.value);
    if (op.kind === "setMv" && op.context !== null) h.update(op.context);
    if (op.kind === "sadd" || op.kind === "srem") for (const m of op.members) h.update(m);
    if (op.kind === "sismember") h.update(op.member);
    if (op.kind === "hset") for (const f of op.fields) { h.update(f.field); h.update(f.value); }
    if (op.kind === "hdel" || op.kind === "hmget") for (const f of op.fields) h.update(f);
    if (op.kind === "hincrby" || op.kind === "hget") h.update(op.field);
  }
  return new Uint8Array(h.digest().subarray(0, fingerprintBytes));
}

/** A register write's deadline in its fingerprint line: "" when it has none. */
function ttlPart(t: SetTtl): string {
  return t.keepTtl === true ? "|keepttl" : t.ttlMs !== undefined ? `|ttl${t.ttlMs}` : "";
}

const utf8 = new TextEncoder();
const utf8Decode = new TextDecoder("utf-8", { fatal: true });

/**
 * ONLY APPEND. HashCount: an HSET's fields added or an HDEL's removed (HINCRBY is Counter);
 * Changed / Unchanged: an Expire's or a Persist's answer.
 */
const OutcomeTag = { Error: 0, Counter: 1, Written: 2, WrittenContext: 3, Deleted: 4, NotDeleted: 5, Count: 6, HashCount: 7, Changed: 8, Unchanged: 9 } as const;

function writeOutcomes(w: Writer, outcomes: readonly OpOutcome[]): void {
  w.uint(outcomes.length);
  for (const o of outcomes) {
    if (!o.ok) {
      w.uint(OutcomeTag.Error);
      w.uint(opErrorCodes.indexOf(o.error.code));
      w.bytes(utf8.encode(o.error.message));
      continue;
    }
    const r = o.result;
    switch (r.kind) {
      case "counter":
        w.uint(OutcomeTag.Counter);
        w.uint(r.value < 0n ? 1 : 0);
        w.uint64(r.value < 0n ? -r.value : r.value);
        break;
      case "written":
        if (r.context === null) {
          w.uint(OutcomeTag.Written);
        } else {
          w.uint(OutcomeTag.WrittenContext);
          w.bytes(r.context);
        }
        break;
      case "deleted":
        w.uint(r.deleted ? OutcomeTag.Deleted : OutcomeTag.NotDeleted);
        break;
      case "count":
        // SAdd / SRem: how many members were added / removed.
        w.uint(OutcomeTag.Count);
        w.uint(r.value);
        break;
      case "hashCount":
        w.uint(OutcomeTag.HashCount);
        w.uint64(r.count);
        break;
      case "changed":
        w.uint(r.value ? OutcomeTag.Changed : OutcomeTag.Unchanged);
        break;
      case "ttl":
      case "value":
      case "members":
      case "isMember":
      case "hashValue":
      case "hashValues":
      case "hashFields":
        // Requests with an id hold only writes (checked at the edge and in WritePath).
        throw new Error("a read's outcome cannot be remembered under a request id");
    }
  }
}

function readU64(r: Reader): bigint {
  // Reader.uint stops at 2^53; counters need the full int64 range.
  let v = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (r.pos >= r.end) r.fail("truncated varint");
    const b = r.buf[r.pos++] as number;
    v |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return v;
    shift += 7n;
  }
  return r.fail("varint longer than 10 bytes");
}

function readOutcomes(r: Reader): OpOutcome[] {
  const n = r.uint();
  if (n > outcomesMax) r.fail(`${n} outcomes exceed ${outcomesMax}`);
  const out: OpOutcome[] = [];
  for (let i = 0; i < n; i++) {
    const tag = r.uint();
    switch (tag) {
      case OutcomeTag.Error: {
        const code = opErrorCodes[r.uint()];
        if (code === undefined) r.fail("unknown error code");
        const message = utf8Decode.decode(r.bytesView(fieldBytesMax, "message"));
        out.push({ ok: false, error: { code, message } });
        break;
      }
      case OutcomeTag.Counter: {
        const negative = r.uint() === 1;
        const magnitude = readU64(r);
        out.push({ ok: true, result: { kind: "counter", value: negative ? -magnitude : magnitude } });
        break;
      }
      case OutcomeTag.Written:
        out.push({ ok: true, result: { kind: "written", context: null } });
        break;
      case OutcomeTag.WrittenContext:
        out.push({ ok: true, result: { kind: "written", context: r.bytesView(fieldBytesMax, "context").slice() } });
        break;
      case OutcomeTag.Deleted:
      case OutcomeTag.NotDeleted:
        out.push({ ok: true, result: { kind: "deleted", deleted: tag === OutcomeTag.Deleted } });
        break;
      case OutcomeTag.Count:
        out.push({ ok: true, result: { kind: "count", value: r.uint() } });
        break;
      case OutcomeTag.HashCount:
        out.push({ ok: true, result: { kind: "hashCount", count: readU64(r) } });
        break;
      case OutcomeTag.Changed:
      case OutcomeTag.Unchanged:
        out.push({ ok: true, result: { kind: "changed", value: tag === OutcomeTag.Changed } });
        break;
      default:
        r.fail(`unknown outcome tag ${tag}`);
    }
  }
  return out;
}

function writeEntry(w: Writer, e: RequestEntryData): void {
  w.bytes(e.fingerprint);
  w.uint(Math.max(0, Math.floor(e.acceptedAtMs)));
  writeOutcomes(w, e.outcomes);
}

function readEntry(r: Reader, id: Uint8Array): RequestEntryData {
  const fingerprint = r.bytesView(fingerprintBytes, "fingerprint").slice();
  if (fingerprint.length !== fingerprintBytes) r.fail(`fingerprint of ${fingerprint.length} bytes`);
  const acceptedAtMs = r.uint();
  return { id, fingerprint, acceptedAtMs, outcomes: readOutcomes(r) };
}

function readId(r: Reader): Uint8Array {
  const id = r.bytesView(requestIdBytesMax, "request id").slice();
  if (id.length === 0) r.fail("empty request id");
  return id;
}

/** Approximate encoded size of the entry's outcomes (for packing parts). */
export function outcomesBytes(outcomes: readonly OpOutcome[]): number {
  let n = 8;
  for (const o of outcomes) {
    n += 12;
    if (!o.ok) n += o.error.message.length * 3;
    else if (o.result.kind === "written" && o.result.context !== null) n += o.result.context.length;
  }
  return n;
}

/**
 * The WAL records of one write with a request id: its deltas packed into parts of at most
 * `partBytesMax` (one delta larger than that gets a part of its own), the entry on the last one.
 */
export function encodeRequestRecords(entry: RequestEntryData, deltas: readonly Uint8Array[], partBytesMax: number): Uint8Array[] {
  // Part boundaries, filled from the end so the last part (which carries the entry) is counted with it.
  const starts: number[] = [];
  let size = 64 + entry.id.length + outcomesBytes(entry.outcomes);
  let partLength = 0;
  for (let i = deltas.length - 1; i >= 0; i--) {
    const d = (deltas[i] as Uint8Array).length + 8;
    if (partLength > 0 && size + d > partBytesMax) {
      starts.push(i + 1);
      size = 64 + entry.id.length;
      partLength = 0;
    }
    size += d;
    partLength++;
  }
  starts.push(0);
  starts.reverse();
  const count = starts.length;
  if (count > requestPartsMax) throw new Error(`a request of ${deltas.length} deltas needs ${count} WAL records (limit ${requestPartsMax})`);
  const out: Uint8Array[] = [];
  for (let p = 0; p < count; p++) {
    const from = starts[p] as number;
    const to = p + 1 < count ? (starts[p + 1] as number) : deltas.length;
    const w = new Writer(1024);
    w.uint(nodeRecordMarker);
    w.uint(NodeRecordKind.RequestPart);
    w.uint(requestPartVersion);
    w.uint(p);
    w.uint(count);
    w.bytes(entry.id);
    w.uint(to - from);
    for (let i = from; i < to; i++) w.bytes(deltas[i] as Uint8Array);
    if (p === count - 1) writeEntry(w, entry);
    out.push(w.buf.subarray(0, w.pos));
  }
  return out;
}

/** Decodes a request part; throws DecodeError (naming the problem) for anything else. */
export function decodeRequestPart(body: Uint8Array): RequestPart {
  const r = new Reader(body);
  if (r.uint() !== nodeRecordMarker) r.fail("not a node record");
  const kind = r.uint();
  if (kind !== NodeRecordKind.RequestPart) r.fail(`node record kind ${kind} is unknown to this build (written by a newer one?)`);
  const version = r.uint();
  if (version !== requestPartVersion) r.fail(`request record version ${version} is unknown to this build (reads ${requestPartVersion})`);
  const index = r.uint();
  const count = r.uint();
  if (count < 1 || count > requestPartsMax || index >= count) r.fail(`part ${index} of ${count}`);
  const id = readId(r);
  const n = r.uint();
  if (n > partDeltasMax) r.fail(`${n} deltas in one part exceed ${partDeltasMax}`);
  const deltas: Uint8Array[] = [];
  for (let i = 0; i < n; i++) deltas.push(r.bytesView(fieldBytesMax, "delta"));
  const entry = index === count - 1 ? readEntry(r, id) : null;
  if (!r.done) r.fail("trailing bytes after a request part");
  return { id, index, count, deltas, entry };
}

/** A snapshot chunk of the request table: entries in the table's order. */
export function encodeRequestChunk(entries: readonly RequestEntryData[]): Uint8Array {
  const w = new Writer(1024);
  w.uint(requestChunkVersion);
  w.uint(entries.length);
  for (const e of entries) {
    w.bytes(e.id);
    writeEntry(w, e);
  }
  return w.finish();
}

export function decodeRequestChunk(bytes: Uint8Array): RequestEntryData[] {
  const r = new Reader(bytes);
  const version = r.uint();
  if (version !== requestChunkVersion) r.fail(`request table chunk version ${version} is unknown to this build (reads ${requestChunkVersion})`);
  const n = r.uint();
  const out: RequestEntryData[] = [];
  for (let i = 0; i < n; i++) out.push(readEntry(r, readId(r)));
  if (!r.done) r.fail("trailing bytes after a request table chunk");
  return out;
}

export { DecodeError };
