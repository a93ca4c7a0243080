// A typed client for ClientService, AdminService and Health: what `imdb client`, `imdb admin` and the load benchmark speak.
import * as grpc from "@grpc/grpc-js";
import type { ClientOp, CounterKind, ExpireCondition, HashFieldView, LeaveInfo, MemberState, MemberView, NodeStatus, SnapshotInfo, ValueKind, ValueView } from "./api.ts";
import { clientMessageBytesMax, clientResponseBytesMax } from "./api.ts";
import {
  adminMethods, bigIntToInt64, clientMethods, codecs, CounterTypeWire, ExpireConditionWire, healthMethods, int64Max, int64Min, int64ToBigInt, MemberStatusWire,
  rawCodec, RegisterTypeWire, uint64ToNumber, ValueTypeWire,
  type BackupChunkWire, type EmptyWire, type GetResponseWire, type MethodDesc, type OpWire, type ScanRequestWire, type SetRequestWire,
} from "./proto.ts";
import { BadBatchResponse, decodeBatchResponse, valueViewOf, type BatchItem } from "./batch-codec.ts";
import { clientChannelTls, type TlsMaterial } from "./tls.ts";

export const clientDeadlineMsDefault = 10_000;

/** A call that ended with a non-OK gRPC status. codeName is the status name, e.g. "NOT_FOUND". */
export class RpcError extends Error {
  override readonly name = "RpcError";
  constructor(readonly code: grpc.status, readonly details: string) {
    super(`${grpc.status[code] ?? `STATUS_${code}`}: ${details}`);
  }
  get codeName(): string {
    return grpc.status[this.code] ?? `STATUS_${this.code}`;
  }
}

export type KeyInput = string | Uint8Array;

/**
 * A register write's deadline as a caller gives it (SetRequest ttl_ms / keep_ttl): neither clears
 * the key's deadline, as Redis's SET does. Not checked here (the server judges).
 */
export interface SetTtlInput { ttlMs?: number; keepTtl?: boolean }

/**
 * An Expire's deadline: ttlMs (relative; <= 0 expires the key now) or atMs (absolute Unix ms).
 * Giving both or neither is sent as given so the server's refusal can be seen.
 */
export interface ExpireInput { ttlMs?: number; atMs?: number; cond?: ExpireCondition }

/** Ops as a caller writes them; amounts are not checked here so the server's validation can be exercised. */
export type RequestOp =
  | { kind: "increment"; key: KeyInput; amount: bigint; counter?: CounterKind }
  | { kind: "decrement"; key: KeyInput; amount: bigint }
  | { kind: "get"; key: KeyInput }
  | ({ kind: "set"; key: KeyInput; value: Uint8Array } & SetTtlInput)
  | ({ kind: "setMv"; key: KeyInput; value: Uint8Array; context: Uint8Array | null } & SetTtlInput)
  | ({ kind: "expire"; key: KeyInput } & ExpireInput)
  | { kind: "persist"; key: KeyInput }
  | { kind: "ttl"; key: KeyInput }
  | { kind: "delete"; key: KeyInput }
  | { kind: "sadd"; key: KeyInput; members: Uint8Array[] }
  | { kind: "srem"; key: KeyInput; members: Uint8Array[] }
  | { kind: "smembers"; key: KeyInput }
  | { kind: "sismember"; key: KeyInput; member: Uint8Array }
  | { kind: "scard"; key: KeyInput }
  | { kind: "hset"; key: KeyInput; fields: HashFieldView[] }
  | { kind: "hdel"; key: KeyInput; fields: Uint8Array[] }
  | { kind: "hincrby"; key: KeyInput; field: Uint8Array; amount: bigint }
  | { kind: "hget"; key: KeyInput; field: Uint8Array }
  | { kind: "hmget"; key: KeyInput; fields: Uint8Array[] }
  | { kind: "hgetall"; key: KeyInput }
  | { kind: "hlen"; key: KeyInput };

export type { BatchItem };

export interface ClientOptions {
  /** HOST:PORT */
  server: string;
  /** null: plaintext (a node started with --insecure). */
  tls: TlsMaterial | null;
  deadlineMs?: number;
}

const encoder = new TextEncoder();

function keyBytes(k: KeyInput): Uint8Array {
  return typeof k === "string" ? encoder.encode(k) : k;
}

function int64(v: bigint): ReturnType<typeof bigIntToInt64> {
  if (v < int64Min || v > int64Max) throw new RangeError(`${v} does not fit in a signed 64-bit integer`);
  return bigIntToInt64(v);
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(addr);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || m[1] === undefined || port > 65535) throw new Error(`"${addr}" is not HOST:PORT`);
  return { host: m[1], port };
}

export function opWire(op: RequestOp): OpWire {
  switch (op.kind) {
    case "increment":
      return { increment: { key: keyBytes(op.key), amount: int64(op.amount), type: op.counter === undefined ? CounterTypeWire.UNSPECIFIED : op.counter === "gcounter" ? CounterTypeWire.GCOUNTER : CounterTypeWire.PNCOUNTER } };
    case "decrement":
      return { decrement: { key: keyBytes(op.key), amount: int64(op.amount) } };
    case "get":
      return { get: { key: keyBytes(op.key) } };
    case "set":
      return { set: withTtl({ key: keyBytes(op.key), value: op.value, type: RegisterTypeWire.LWW }, op) };
    case "setMv":
      return { set: withTtl({ key: keyBytes(op.key), value: op.value, type: RegisterTypeWire.MV, context: op.context ?? undefined }, op) };
    case "expire": {
      // A oneof member is written whenever it is set, 0 included (ttl 0 expires the key now).
      const req: NonNullable<OpWire["expire"]> = { key: keyBytes(op.key), condition: expireConditionWire(op.cond) };
      if (op.ttlMs !== undefined) req.ttlMs = int64(BigInt(op.ttlMs));
      if (op.atMs !== undefined) req.atUnixMs = int64(BigInt(op.atMs));
      return { expire: req };
    }
    case "persist":
      return { persist: { key: keyBytes(op.key) } };
    case "ttl":
      return { ttl: { key: keyBytes(op.key) } };
    case "delete":
      return { delete: { key: keyBytes(op.key) } };
    case "sadd":
      return { sadd: { key: keyBytes(op.key), members: op.members } };
    case "srem":
      return { srem: { key: keyBytes(op.key), members: op.members } };
    case "smembers":
      return { smembers: { key: keyBytes(op.key) } };
    case "sismember":
      return { sismember: { key: keyBytes(op.key), member: op.member } };
    case "scard":
      return { scard: { key: keyBytes(op.key) } };
    case "hset":
      return { hset: { key: keyBytes(op.key), fields: op.fields } };
    case "hdel":
      return { hdel: { key: keyBytes(op.key), fields: op.fields } };
    case "hincrby":
      return { hincrby: { key: keyBytes(op.key), field: op.field, amount: int64(op.amount) } };
    case "hget":
      return { hget: { key: keyBytes(op.key), field: op.field } };
    case "hmget":
      return { hmget: { key: keyBytes(op.key), fields: op.fields } };
    case "hgetall":
      return { hgetall: { key: keyBytes(op.key) } };
    case "hlen":
      return { hlen: { key: keyBytes(op.key) } };
  }
}

/** A SetRequest with the deadline fields a caller gave (left out: the proto3 default, "clear"). */
function withTtl(req: SetRequestWire, t: SetTtlInput): SetRequestWire {
  if (t.ttlMs !== undefined) req.ttlMs = { ...bigIntToInt64(BigInt(t.ttlMs)), unsigned: true };
  if (t.keepTtl === true) req.keepTtl = true;
  return req;
}

function expireConditionWire(c: ExpireCondition | undefined): number {
  switch (c) {
    case undefined:
      return ExpireConditionWire.NONE;
    case "nx":
      return ExpireConditionWire.NX;
    case "xx":
      return ExpireConditionWire.XX;
    case "gt":
      return ExpireConditionWire.GT;
    case "lt":
      return ExpireConditionWire.LT;
  }
}

const hashValue = (v: { found?: boolean; value?: Uint8Array } | null | undefined): Uint8Array | null =>
  v?.found === true ? (v.value instanceof Uint8Array ? v.value : new Uint8Array(0)) : null;
const hashFields = (fs: { field?: Uint8Array; value?: Uint8Array }[] | undefined): HashFieldView[] =>
  (fs ?? []).map((f) => ({ field: f.field instanceof Uint8Array ? f.field : new Uint8Array(0), value: f.value instanceof Uint8Array ? f.value : new Uint8Array(0) }));

/** GetResponse -> ValueView; a value type this client does not know is INTERNAL. */
export function valueView(r: GetResponseWire): ValueView {
  return asRpcError(() => valueViewOf(r));
}

function asRpcError<T>(run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof BadBatchResponse) throw new RpcError(grpc.status.INTERNAL, err.message);
    throw err;
  }
}

/** A validated op as a client would send it again (a request forwarded to an owner, src/node/forward.ts). */
export function requestOpOf(op: ClientOp): RequestOp {
  switch (op.kind) {
    case "increment":
      return op.counter === null ? { kind: "increment", key: op.key, amount: op.amount } : { kind: "increment", key: op.key, amount: op.amount, counter: op.counter };
    case "expire": {
      const out: Extract<RequestOp, { kind: "expire" }> = { kind: "expire", key: op.key };
      if (op.ttlMs !== null) out.ttlMs = op.ttlMs;
      if (op.atMs !== null) out.atMs = op.atMs;
      if (op.cond !== null) out.cond = op.cond;
      return out;
    }
    default:
      return op;
  }
}

/** A BatchRequest in wire bytes, for callers that send the same request many times (batchRaw). */
export function encodeBatchRequest(ops: readonly RequestOp[], requestId?: Uint8Array): Buffer {
  return codecs.BatchRequest.encode(requestId === undefined ? { ops: ops.map(opWire) } : { ops: ops.map(opWire), requestId });
}

/** A fresh random request id (16 bytes): send it with a write and again with every retry of that write. */
export function newRequestId(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(16));
}

/**
 * Deadline of AdminService.Leave: a partitioned node hands its keys to their next owners before
 * it answers, for up to 10 minutes (src/node/handoff.ts leaveHandOffMs), then drains.
 */
export const leaveCallDeadlineMs = 11 * 60_000;

/** Statuses after which a write may or may not have happened: a retry with the same request id settles it. */
export const retryableCodes: ReadonlySet<grpc.status> = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);

const valueTypeWire: Record<ValueKind, number> = {
  gcounter: ValueTypeWire.GCOUNTER, pncounter: ValueTypeWire.PNCOUNTER, lww: ValueTypeWire.LWW, mv: ValueTypeWire.MV, set: ValueTypeWire.SET, hash: ValueTypeWire.HASH,
};

/** A Scan's query as a client gives it: local lists only the node's own replica (partitioned clusters). */
export interface ScanOptions { prefix?: string; type?: ValueKind | null; cursor?: number; limit?: number; local?: boolean }

/** A ScanRequest's wire form (a client's Scan, a node's ScanPart). */
export function scanRequestWire(q: ScanOptions): ScanRequestWire {
  return {
    prefix: q.prefix === undefined ? undefined : new TextEncoder().encode(q.prefix),
    type: q.type === undefined || q.type === null ? ValueTypeWire.UNSPECIFIED : valueTypeWire[q.type],
    cursor: q.cursor ?? 0,
    limit: q.limit ?? 0,
    ...(q.local === true ? { local: true } : {}),
  };
}

/** Batch with hand-encoded bytes both ways (the server side does the same). */
const rawBatch: MethodDesc<Uint8Array, Uint8Array> = { ...clientMethods.Batch, req: rawCodec, res: rawCodec };

const memberState: Record<number, MemberState> = {
  [MemberStatusWire.ALIVE]: "alive", [MemberStatusWire.SUSPECT]: "suspect", [MemberStatusWire.DEAD]: "dead", [MemberStatusWire.LEFT]: "left",
};

export class ImdbClient {
  private readonly client: grpc.Client;
  private readonly deadlineMs: number;

  constructor(opts: ClientOptions) {
    const { host } = splitHostPort(opts.server);
    const base: grpc.ChannelOptions = {
      "grpc.max_receive_message_length": clientResponseBytesMax,
      // Let the server be the judge of size (it answers RESOURCE_EXHAUSTED above its limit).
      "grpc.max_send_message_length": clientMessageBytesMax * 4,
    };
    if (opts.tls === null) {
      this.client = new grpc.Client(opts.server, grpc.credentials.createInsecure(), base);
    } else {
      const t = clientChannelTls(opts.tls, host);
      this.client = new grpc.Client(opts.server, t.credentials, { ...base, ...t.options });
    }
    this.deadlineMs = opts.deadlineMs ?? clientDeadlineMsDefault;
  }

  private call<Req, Res>(m: MethodDesc<Req, Res>, req: Req, deadlineMs = this.deadlineMs): Promise<Res> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(m.path, (v: Req) => m.req.encode(v), (b: Buffer) => m.res.decode(b), req, { deadline: Date.now() + deadlineMs }, (err, res) => {
        if (err) reject(new RpcError(err.code, err.details));
        else if (res === undefined) reject(new RpcError(grpc.status.INTERNAL, "empty response"));
        else resolve(res);
      });
    });
  }

  /**
   * counter: the type a new key gets (and an existing key must have); undefined: any counter, new keys PN.
   * requestId (every write takes one): a retry with the same id is applied once and answered with the first result.
   */
  async increment(key: KeyInput, amount: bigint, counter?: CounterKind, requestId?: Uint8Array): Promise<bigint> {
    const inc = opWire(counter === undefined ? { kind: "increment", key, amount } : { kind: "increment", key, amount, counter }).increment ?? {};
    if (requestId !== undefined) inc.requestId = requestId;
    return int64ToBigInt((await this.call(clientMethods.Increment, inc)).value);
  }

  async decrement(key: KeyInput, amount: bigint, requestId?: Uint8Array): Promise<bigint> {
    const dec = opWire({ kind: "decrement", key, amount }).decrement ?? {};
    if (requestId !== undefined) dec.requestId = requestId;
    return int64ToBigInt((await this.call(clientMethods.Decrement, dec)).value);
  }

  async get(key: KeyInput): Promise<ValueView> {
    return valueView(await this.call(clientMethods.Get, { key: keyBytes(key) }));
  }

  /** ttl: the key's deadline after the write (none given: cleared, as Redis's SET). */
  async set(key: KeyInput, value: Uint8Array, requestId?: Uint8Array, ttl: SetTtlInput = {}): Promise<void> {
    const set = opWire({ kind: "set", key, value, ...ttl }).set ?? {};
    if (requestId !== undefined) set.requestId = requestId;
    await this.call(clientMethods.Set, set);
  }

  /** Writes an MV register; returns the context after the write. ttl: as in set. */
  async setMv(key: KeyInput, value: Uint8Array, context: Uint8Array | null, requestId?: Uint8Array, ttl: SetTtlInput = {}): Promise<Uint8Array> {
    const set = opWire({ kind: "setMv", key, value, context, ...ttl }).set ?? {};
    if (requestId !== undefined) set.requestId = requestId;
    const res = await this.call(clientMethods.Set, set);
    return res.context ?? new Uint8Array(0);
  }

  /** Deletes key; true if it held something. */
  async delete(key: KeyInput, requestId?: Uint8Array): Promise<boolean> {
    const del = opWire({ kind: "delete", key }).delete ?? {};
    if (requestId !== undefined) del.requestId = requestId;
    return (await this.call(clientMethods.Delete, del)).deleted === true;
  }

  /** One page of present keys; pass the returned cursor back for the next (0: done). */
  async scan(q: ScanOptions): Promise<{ keys: string[]; cursor: number }> {
    const res = await this.call(clientMethods.Scan, scanRequestWire(q));
    const utf8 = new TextDecoder();
    return { keys: (res.keys ?? []).map((k) => utf8.decode(k)), cursor: uint64ToNumber(res.cursor) };
  }

  /** Adds members to a set (a new key becomes one); returns how many were not in it. requestId: as in increment. */
  async sadd(key: KeyInput, members: Uint8Array[], requestId?: Uint8Array): Promise<number> {
    const req = opWire({ kind: "sadd", key, members }).sadd ?? {};
    if (requestId !== undefined) req.requestId = requestId;
    return uint64ToNumber((await this.call(clientMethods.SAdd, req)).count);
  }

  /** Removes the members this node has seen; returns how many were in the set. requestId: as in increment. */
  async srem(key: KeyInput, members: Uint8Array[], requestId?: Uint8Array): Promise<number> {
    const req = opWire({ kind: "srem", key, members }).srem ?? {};
    if (requestId !== undefined) req.requestId = requestId;
    return uint64ToNumber((await this.call(clientMethods.SRem, req)).count);
  }

  /** A set's members, sorted bytewise; a missing key is the empty set. */
  async smembers(key: KeyInput): Promise<Uint8Array[]> {
    return (await this.call(clientMethods.SMembers, { key: keyBytes(key) })).members ?? [];
  }

  async sismember(key: KeyInput, member: Uint8Array): Promise<boolean> {
    return (await this.call(clientMethods.SIsMember, { key: keyBytes(key), member })).isMember === true;
  }

  async scard(key: KeyInput): Promise<number> {
    return uint64ToNumber((await this.call(clientMethods.SCard, { key: keyBytes(key) })).count);
  }

  // ---- hashes (docs/api.md, "Hashes") ----

  /** HSET: returns how many fields were not present before. */
  async hset(key: KeyInput, fields: HashFieldView[], requestId?: Uint8Array): Promise<bigint> {
    const req = opWire({ kind: "hset", key, fields }).hset ?? {};
    if (requestId !== undefined) req.requestId = requestId;
    return int64ToBigInt((await this.call(clientMethods.HSet, req)).added);
  }

  /** HGET: the value, or null if the field (or key) is absent. */
  async hget(key: KeyInput, field: Uint8Array): Promise<Uint8Array | null> {
    return hashValue((await this.call(clientMethods.HGet, opWire({ kind: "hget", key, field }).hget ?? {})).value);
  }

  async hmget(key: KeyInput, fields: Uint8Array[]): Promise<(Uint8Array | null)[]> {
    return ((await this.call(clientMethods.HMGet, opWire({ kind: "hmget", key, fields }).hmget ?? {})).values ?? []).map(hashValue);
  }

  /** HDEL: returns how many of the fields were present. */
  async hdel(key: KeyInput, fields: Uint8Array[], requestId?: Uint8Array): Promise<bigint> {
    const req = opWire({ kind: "hdel", key, fields }).hdel ?? {};
    if (requestId !== undefined) req.requestId = requestId;
    return int64ToBigInt((await this.call(clientMethods.HDel, req)).removed);
  }

  async hgetall(key: KeyInput): Promise<HashFieldView[]> {
    return hashFields((await this.call(clientMethods.HGetAll, { key: keyBytes(key) })).fields);
  }

  async hlen(key: KeyInput): Promise<bigint> {
    return int64ToBigInt((await this.call(clientMethods.HLen, { key: keyBytes(key) })).length);
  }

  /** HINCRBY: returns the value after the increment. */
  async hincrby(key: KeyInput, field: Uint8Array, amount: bigint, requestId?: Uint8Array): Promise<bigint> {
    const req = opWire({ kind: "hincrby", key, field, amount }).hincrby ?? {};
    if (requestId !== undefined) req.requestId = requestId;
    return int64ToBigInt((await this.call(clientMethods.HIncrBy, req)).value);
  }

  // ---- expiry (docs/api.md, "Expiry") ----

  /** PEXPIRE / PEXPIREAT: true if the deadline was set (or the key expired now); false: no key, or the condition failed. */
  async expire(key: KeyInput, when: ExpireInput, requestId?: Uint8Array): Promise<boolean> {
    const req = opWire({ kind: "expire", key, ...when }).expire ?? {};
    if (requestId !== undefined) req.requestId = requestId;
    return (await this.call(clientMethods.Expire, req)).set === true;
  }

  /** PERSIST: true if the key had a deadline. */
  async persist(key: KeyInput, requestId?: Uint8Array): Promise<boolean> {
    const req = opWire({ kind: "persist", key }).persist ?? {};
    if (requestId !== undefined) req.requestId = requestId;
    return (await this.call(clientMethods.Persist, req)).cleared === true;
  }

  /** PTTL: -2 no such key, -1 no deadline, else ms left. */
  async ttl(key: KeyInput): Promise<number> {
    return Number(int64ToBigInt((await this.call(clientMethods.Ttl, { key: keyBytes(key) })).ttlMs));
  }

  /** requestId: the whole batch's (then it may hold only writes). */
  async batch(ops: readonly RequestOp[], requestId?: Uint8Array): Promise<BatchItem[]> {
    const res = await this.batchRaw(encodeBatchRequest(ops, requestId));
    return asRpcError(() => decodeBatchResponse(res));
  }

  /**
   * Sends an encoded BatchRequest (encodeBatchRequest) and returns the encoded BatchResponse, unread:
   * decodeBatchResponse or countBatchErrors (batch-codec.ts) read it. The load benchmark's hot path.
   */
  batchRaw(request: Uint8Array): Promise<Uint8Array> {
    return this.call(rawBatch, request);
  }

  async status(): Promise<NodeStatus> {
    const s = await this.call(clientMethods.Status, {});
    return {
      nodeId: s.nodeId ?? "", version: s.version ?? "", uptimeMs: uint64ToNumber(s.uptimeMs), keys: uint64ToNumber(s.keys),
      durability: s.durability ?? "", membersAlive: uint64ToNumber(s.membersAlive), membersTotal: uint64ToNumber(s.membersTotal),
      walLsn: int64ToBigInt(s.walLsn), accel: s.accel ?? "",
    };
  }

  async members(): Promise<MemberView[]> {
    const res = await this.call(clientMethods.Members, {});
    const partitioned = (res.replicationFactor ?? 0) > 0;
    return (res.members ?? []).map((m) => ({
      id: m.id ?? "", address: m.address ?? "", status: memberState[m.status ?? 0] ?? "dead", incarnation: uint64ToNumber(m.incarnation),
      ...(partitioned ? { partitions: m.partitions ?? 0, hintsPending: uint64ToNumber(m.hintsPending), bytesMoving: uint64ToNumber(m.bytesMoving) } : {}),
    }));
  }

  async snapshot(): Promise<SnapshotInfo> {
    const s = await this.call(adminMethods.Snapshot, {});
    return { path: s.path ?? "", lsn: int64ToBigInt(s.lsn), bytes: uint64ToNumber(s.bytes), keys: uint64ToNumber(s.keys), durationMs: uint64ToNumber(s.durationMs) };
  }

  /** Waits as long as a leave's hand-off may take (leaveCallDeadlineMs), not the client's deadline. */
  async leave(): Promise<LeaveInfo> {
    const r = await this.call(adminMethods.Leave, {}, Math.max(this.deadlineMs, leaveCallDeadlineMs));
    return { heardBy: r.heardBy !== undefined && r.heardBy !== "" ? r.heardBy : null, peers: r.peers ?? 0 };
  }

  /** AdminService.RemoveMember: forget a dead member now and tell the others it left. */
  async removeMember(id: string): Promise<void> {
    await this.call(adminMethods.RemoveMember, { id });
  }

  /**
   * AdminService.Backup: hands each data piece to onData in order (waiting for it), and resolves
   * with the stream's summary. No deadline: a large backup takes as long as it takes. A stream
   * that ends without its summary is DATA_LOSS, never a silently short backup.
   */
  async backup(onData: (b: Uint8Array) => Promise<void> | void): Promise<{ endLsn: bigint; totalBytes: number; sha256: Uint8Array }> {
    const m = adminMethods.Backup;
    const stream = this.client.makeServerStreamRequest(m.path, (v: EmptyWire) => m.req.encode(v), (b: Buffer) => m.res.decode(b), {});
    try {
      for await (const msg of stream as AsyncIterable<BackupChunkWire>) {
        if (msg.data !== undefined && msg.data.byteLength > 0) await onData(msg.data);
        if (msg.sha256 !== undefined && msg.sha256.byteLength > 0) {
          return { endLsn: int64ToBigInt(msg.endLsn), totalBytes: uint64ToNumber(msg.totalBytes), sha256: msg.sha256 };
        }
      }
    } catch (err) {
      const e = err as Partial<grpc.ServiceError>;
      if (typeof e.code === "number") throw new RpcError(e.code, e.details ?? String(err));
      throw err;
    } finally {
      stream.cancel();
    }
    throw new RpcError(grpc.status.DATA_LOSS, "the backup stream ended without its summary");
  }

  async stats(): Promise<{ name: string; value: string }[]> {
    const res = await this.call(adminMethods.Stats, {});
    return (res.stats ?? []).map((s) => ({ name: s.name ?? "", value: s.value ?? "" }));
  }

  /** grpc.health.v1 Check: "SERVING", "NOT_SERVING", ... */
  async health(service = ""): Promise<string> {
    const res = await this.call(healthMethods.Check, { service });
    return ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"][res.status ?? 0] ?? "UNKNOWN";
  }

  close(): void {
    this.client.close();
  }
}
