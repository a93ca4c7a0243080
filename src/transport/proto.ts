// The embedded .proto files turned into typed codecs and grpc-js service definitions; nothing is read from disk at runtime.
import * as protobuf from "protobufjs";
import type * as grpc from "@grpc/grpc-js";
import imdbProtoText from "../../proto/imdb.proto" with { type: "text" };
import healthProtoText from "../../proto/health.proto" with { type: "text" };

/** An int64 as protobufjs hands it over (Long) or accepts it ({low, high} bits, or a number when small). */
export interface Int64Bits { low: number; high: number; unsigned?: boolean }
export type WireInt64 = Int64Bits | number;

export const int64Min = -(2n ** 63n);
export const int64Max = 2n ** 63n - 1n;
export const uint64Max = 2n ** 64n - 1n;

/** Exact conversion; protobufjs decodes 64-bit fields to Long when the long package is bundled (asserted below). */
export function int64ToBigInt(v: WireInt64 | undefined | null): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v === "number") return BigInt(v);
  const bits = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return v.unsigned === true ? bits : BigInt.asIntN(64, bits);
}

export function bigIntToInt64(v: bigint): Int64Bits {
  const bits = BigInt.asUintN(64, v);
  return { low: Number(bits & 0xffffffffn) | 0, high: Number(bits >> 32n) | 0, unsigned: false };
}

export function uint64ToNumber(v: WireInt64 | undefined | null): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === "number") return v;
  return Number(BigInt.asUintN(64, (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0)));
}

// ---- wire message shapes (protobufjs camelCases field names) ----
// ONLY APPEND to the enum objects; values mirror proto/imdb.proto.
export const CounterTypeWire = { UNSPECIFIED: 0, PNCOUNTER: 1, GCOUNTER: 2 } as const;
export const ValueTypeWire = { UNSPECIFIED: 0, GCOUNTER: 1, PNCOUNTER: 2, LWW: 3, MV: 4, SET: 5, HASH: 6 } as const;
export const RegisterTypeWire = { UNSPECIFIED: 0, LWW: 1, MV: 2 } as const;
export const ExpireConditionWire = { NONE: 0, NX: 1, XX: 2, GT: 3, LT: 4 } as const;
export const MemberStatusWire = { UNSPECIFIED: 0, ALIVE: 1, SUSPECT: 2, DEAD: 3, LEFT: 4 } as const;

export interface IncrementRequestWire { key?: Uint8Array; amount?: WireInt64; type?: number; requestId?: Uint8Array }
export interface DecrementRequestWire { key?: Uint8Array; amount?: WireInt64; requestId?: Uint8Array }
export interface CounterResponseWire { key?: Uint8Array; value?: WireInt64 }
export interface GetRequestWire { key?: Uint8Array }
export interface GetResponseWire {
  key?: Uint8Array; type?: number; counter?: WireInt64; value?: Uint8Array; values?: Uint8Array[]; context?: Uint8Array; conflicts?: GetResponseWire[];
  members?: Uint8Array[];
  fields?: HashFieldWire[];
  ttlMs?: WireInt64; expiresAtUnixMs?: WireInt64;
}
export interface HashFieldWire { field?: Uint8Array; value?: Uint8Array }
export interface HashValueWire { found?: boolean; value?: Uint8Array }
export interface HSetRequestWire { key?: Uint8Array; fields?: HashFieldWire[]; requestId?: Uint8Array }
export interface HSetResponseWire { key?: Uint8Array; added?: WireInt64 }
export interface HGetRequestWire { key?: Uint8Array; field?: Uint8Array }
export interface HGetResponseWire { key?: Uint8Array; value?: HashValueWire | null }
export interface HMGetRequestWire { key?: Uint8Array; fields?: Uint8Array[] }
export interface HMGetResponseWire { key?: Uint8Array; values?: HashValueWire[] }
export interface HDelRequestWire { key?: Uint8Array; fields?: Uint8Array[]; requestId?: Uint8Array }
export interface HDelResponseWire { key?: Uint8Array; removed?: WireInt64 }
export interface HGetAllRequestWire { key?: Uint8Array }
export interface HGetAllResponseWire { key?: Uint8Array; fields?: HashFieldWire[] }
export interface HLenRequestWire { key?: Uint8Array }
export interface HLenResponseWire { key?: Uint8Array; length?: WireInt64 }
export interface HIncrByRequestWire { key?: Uint8Array; field?: Uint8Array; amount?: WireInt64; requestId?: Uint8Array }
export interface HIncrByResponseWire { key?: Uint8Array; value?: WireInt64 }
export interface SetRequestWire {
  key?: Uint8Array; value?: Uint8Array; type?: number; context?: Uint8Array; requestId?: Uint8Array; ttlMs?: WireInt64; keepTtl?: boolean;
}
/** `when` names the oneof member that is set ("ttlMs" | "atUnixMs"), as protobufjs decodes it. */
export interface ExpireRequestWire {
  key?: Uint8Array; ttlMs?: WireInt64 | null; atUnixMs?: WireInt64 | null; condition?: number; requestId?: Uint8Array; when?: string;
}
export interface ExpireResponseWire { key?: Uint8Array; set?: boolean }
export interface PersistRequestWire { key?: Uint8Array; requestId?: Uint8Array }
export interface PersistResponseWire { key?: Uint8Array; cleared?: boolean }
export interface TtlRequestWire { key?: Uint8Array }
export interface TtlResponseWire { key?: Uint8Array; ttlMs?: WireInt64 }
export interface SetResponseWire { key?: Uint8Array; context?: Uint8Array }
export interface DeleteRequestWire { key?: Uint8Array; requestId?: Uint8Array }
export interface DeleteResponseWire { key?: Uint8Array; deleted?: boolean }
export interface ScanRequestWire { prefix?: Uint8Array; type?: number; cursor?: WireInt64; limit?: number; local?: boolean }
export interface HandOffEntryWire { key?: Uint8Array; state?: Uint8Array; offset?: WireInt64; total?: WireInt64 }
export interface HandOffRequestWire { fromId?: string; entries?: HandOffEntryWire[]; stampEpoch?: number; stampConfirms?: WireInt64 }
export interface HandOffResponseWire { merged?: number }
export interface ScanPartRequestWire { fromId?: string; scan?: ScanRequestWire; segment?: number; placementCheck?: number; partitions?: Uint8Array }
export interface ScanResponseWire { keys?: Uint8Array[]; cursor?: WireInt64 }
export interface SAddRequestWire { key?: Uint8Array; members?: Uint8Array[]; requestId?: Uint8Array }
export interface SRemRequestWire { key?: Uint8Array; members?: Uint8Array[]; requestId?: Uint8Array }
export interface SCountResponseWire { key?: Uint8Array; count?: WireInt64 }
export interface SMembersRequestWire { key?: Uint8Array }
export interface SMembersResponseWire { key?: Uint8Array; members?: Uint8Array[] }
export interface SIsMemberRequestWire { key?: Uint8Array; member?: Uint8Array }
export interface SIsMemberResponseWire { key?: Uint8Array; isMember?: boolean }
export interface SCardRequestWire { key?: Uint8Array }
export interface OpWire {
  increment?: IncrementRequestWire | null; decrement?: DecrementRequestWire | null; get?: GetRequestWire | null; set?: SetRequestWire | null;
  delete?: DeleteRequestWire | null; sadd?: SAddRequestWire | null; srem?: SRemRequestWire | null; smembers?: SMembersRequestWire | null;
  sismember?: SIsMemberRequestWire | null; scard?: SCardRequestWire | null;
  hset?: HSetRequestWire | null; hget?: HGetRequestWire | null; hmget?: HMGetRequestWire | null; hdel?: HDelRequestWire | null;
  hgetall?: HGetAllRequestWire | null; hlen?: HLenRequestWire | null; hincrby?: HIncrByRequestWire | null;
  expire?: ExpireRequestWire | null; persist?: PersistRequestWire | null; ttl?: TtlRequestWire | null;
  op?: string;
}
export interface OpResultWire {
  code?: number; message?: string; counter?: CounterResponseWire | null; get?: GetResponseWire | null; set?: SetResponseWire | null;
  delete?: DeleteResponseWire | null; scount?: SCountResponseWire | null; smembers?: SMembersResponseWire | null;
  sismember?: SIsMemberResponseWire | null;
  hset?: HSetResponseWire | null; hget?: HGetResponseWire | null; hmget?: HMGetResponseWire | null; hdel?: HDelResponseWire | null;
  hgetall?: HGetAllResponseWire | null; hlen?: HLenResponseWire | null; hincrby?: HIncrByResponseWire | null;
  expire?: ExpireResponseWire | null; persist?: PersistResponseWire | null; ttl?: TtlResponseWire | null;
  result?: string;
}
export interface BatchRequestWire { ops?: OpWire[]; requestId?: Uint8Array }
export interface BatchResponseWire { results?: OpResultWire[] }
export type EmptyWire = Record<string, never>;
export interface StatusResponseWire {
  nodeId?: string; version?: string; uptimeMs?: WireInt64; keys?: WireInt64; durability?: string;
  membersAlive?: WireInt64; membersTotal?: WireInt64; walLsn?: WireInt64; accel?: string;
}
export interface MemberWire { id?: string; address?: string; status?: number; incarnation?: WireInt64; partitions?: number; hintsPending?: WireInt64; bytesMoving?: WireInt64 }
export interface MembersResponseWire { members?: MemberWire[]; replicationFactor?: number; partitions?: number }
export interface SnapshotResponseWire { path?: string; lsn?: WireInt64; bytes?: WireInt64; keys?: WireInt64; durationMs?: WireInt64 }
export interface StatWire { name?: string; value?: string }
export interface StatsResponseWire { stats?: StatWire[] }
export interface RemoveMemberRequestWire { id?: string }
export interface LeaveResponseWire { heardBy?: string; peers?: number }
export interface BackupChunkWire { data?: Uint8Array; endLsn?: WireInt64; totalBytes?: WireInt64; sha256?: Uint8Array }
export interface PeerEnvelopeWire { fromId?: string; payload?: Uint8Array }
export interface ForwardRequestWire { fromId?: string; batch?: Uint8Array }
export interface HealthCheckRequestWire { service?: string }
export interface HealthCheckResponseWire { status?: number }
export const HealthStatusWire = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;

// ---- codecs ----
export interface Codec<T> { encode(m: T): Buffer; decode(b: Uint8Array): T }

const root = new protobuf.Root();
protobuf.parse(imdbProtoText, root);
protobuf.parse(healthProtoText, root);
root.resolveAll();

if (protobuf.util.Long === undefined || protobuf.util.Long === null) {
  // Without Long, protobufjs would decode int64 to a lossy double: refuse to run rather than corrupt counters.
  throw new Error("protobufjs has no Long implementation: 64-bit fields would lose precision");
}

function codec<T>(name: string): Codec<T> {
  const type = root.lookupType(name);
  return {
    encode: (m: T): Buffer => {
      const bytes = type.encode(m as unknown as protobuf.Message).finish();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    decode: (b: Uint8Array): T => type.decode(b) as unknown as T,
  };
}

/** Identity: for a method whose messages are encoded and decoded by hand (the Batch hot path). */
export const rawCodec: Codec<Uint8Array> = {
  encode: (m: Uint8Array): Buffer => (Buffer.isBuffer(m) ? m : Buffer.from(m.buffer, m.byteOffset, m.byteLength)),
  decode: (b: Uint8Array): Uint8Array => b,
};

export const codecs = {
  IncrementRequest: codec<IncrementRequestWire>("imdb.v1.IncrementRequest"),
  DecrementRequest: codec<DecrementRequestWire>("imdb.v1.DecrementRequest"),
  CounterResponse: codec<CounterResponseWire>("imdb.v1.CounterResponse"),
  GetRequest: codec<GetRequestWire>("imdb.v1.GetRequest"),
  GetResponse: codec<GetResponseWire>("imdb.v1.GetResponse"),
  SetRequest: codec<SetRequestWire>("imdb.v1.SetRequest"),
  SetResponse: codec<SetResponseWire>("imdb.v1.SetResponse"),
  DeleteRequest: codec<DeleteRequestWire>("imdb.v1.DeleteRequest"),
  DeleteResponse: codec<DeleteResponseWire>("imdb.v1.DeleteResponse"),
  ScanRequest: codec<ScanRequestWire>("imdb.v1.ScanRequest"),
  ScanResponse: codec<ScanResponseWire>("imdb.v1.ScanResponse"),
  SAddRequest: codec<SAddRequestWire>("imdb.v1.SAddRequest"),
  SRemRequest: codec<SRemRequestWire>("imdb.v1.SRemRequest"),
  SCountResponse: codec<SCountResponseWire>("imdb.v1.SCountResponse"),
  SMembersRequest: codec<SMembersRequestWire>("imdb.v1.SMembersRequest"),
  SMembersResponse: codec<SMembersResponseWire>("imdb.v1.SMembersResponse"),
  SIsMemberRequest: codec<SIsMemberRequestWire>("imdb.v1.SIsMemberRequest"),
  SIsMemberResponse: codec<SIsMemberResponseWire>("imdb.v1.SIsMemberResponse"),
  SCardRequest: codec<SCardRequestWire>("imdb.v1.SCardRequest"),
  BatchRequest: codec<BatchRequestWire>("imdb.v1.BatchRequest"),
  BatchResponse: codec<BatchResponseWire>("imdb.v1.BatchResponse"),
  OpResult: codec<OpResultWire>("imdb.v1.OpResult"),
  StatusRequest: codec<EmptyWire>("imdb.v1.StatusRequest"),
  StatusResponse: codec<StatusResponseWire>("imdb.v1.StatusResponse"),
  MembersRequest: codec<EmptyWire>("imdb.v1.MembersRequest"),
  MembersResponse: codec<MembersResponseWire>("imdb.v1.MembersResponse"),
  SnapshotRequest: codec<EmptyWire>("imdb.v1.SnapshotRequest"),
  SnapshotResponse: codec<SnapshotResponseWire>("imdb.v1.SnapshotResponse"),
  LeaveRequest: codec<EmptyWire>("imdb.v1.LeaveRequest"),
  LeaveResponse: codec<LeaveResponseWire>("imdb.v1.LeaveResponse"),
  StatsRequest: codec<EmptyWire>("imdb.v1.StatsRequest"),
  StatsResponse: codec<StatsResponseWire>("imdb.v1.StatsResponse"),
  RemoveMemberRequest: codec<RemoveMemberRequestWire>("imdb.v1.RemoveMemberRequest"),
  RemoveMemberResponse: codec<EmptyWire>("imdb.v1.RemoveMemberResponse"),
  BackupRequest: codec<EmptyWire>("imdb.v1.BackupRequest"),
  BackupChunk: codec<BackupChunkWire>("imdb.v1.BackupChunk"),
  PeerEnvelope: codec<PeerEnvelopeWire>("imdb.v1.PeerEnvelope"),
  ForwardRequest: codec<ForwardRequestWire>("imdb.v1.ForwardRequest"),
  ScanPartRequest: codec<ScanPartRequestWire>("imdb.v1.ScanPartRequest"),
  HandOffRequest: codec<HandOffRequestWire>("imdb.v1.HandOffRequest"),
  HandOffResponse: codec<HandOffResponseWire>("imdb.v1.HandOffResponse"),
  HSetRequest: codec<HSetRequestWire>("imdb.v1.HSetRequest"),
  HSetResponse: codec<HSetResponseWire>("imdb.v1.HSetResponse"),
  HGetRequest: codec<HGetRequestWire>("imdb.v1.HGetRequest"),
  HGetResponse: codec<HGetResponseWire>("imdb.v1.HGetResponse"),
  HMGetRequest: codec<HMGetRequestWire>("imdb.v1.HMGetRequest"),
  HMGetResponse: codec<HMGetResponseWire>("imdb.v1.HMGetResponse"),
  HDelRequest: codec<HDelRequestWire>("imdb.v1.HDelRequest"),
  HDelResponse: codec<HDelResponseWire>("imdb.v1.HDelResponse"),
  HGetAllRequest: codec<HGetAllRequestWire>("imdb.v1.HGetAllRequest"),
  HGetAllResponse: codec<HGetAllResponseWire>("imdb.v1.HGetAllResponse"),
  HLenRequest: codec<HLenRequestWire>("imdb.v1.HLenRequest"),
  HLenResponse: codec<HLenResponseWire>("imdb.v1.HLenResponse"),
  HIncrByRequest: codec<HIncrByRequestWire>("imdb.v1.HIncrByRequest"),
  HIncrByResponse: codec<HIncrByResponseWire>("imdb.v1.HIncrByResponse"),
  ExpireRequest: codec<ExpireRequestWire>("imdb.v1.ExpireRequest"),
  ExpireResponse: codec<ExpireResponseWire>("imdb.v1.ExpireResponse"),
  PersistRequest: codec<PersistRequestWire>("imdb.v1.PersistRequest"),
  PersistResponse: codec<PersistResponseWire>("imdb.v1.PersistResponse"),
  TtlRequest: codec<TtlRequestWire>("imdb.v1.TtlRequest"),
  TtlResponse: codec<TtlResponseWire>("imdb.v1.TtlResponse"),
  HealthCheckRequest: codec<HealthCheckRequestWire>("grpc.health.v1.HealthCheckRequest"),
  HealthCheckResponse: codec<HealthCheckResponseWire>("grpc.health.v1.HealthCheckResponse"),
} as const;

// ---- method and service definitions ----
export interface MethodDesc<Req, Res> {
  path: string;
  req: Codec<Req>;
  res: Codec<Res>;
  responseStream: boolean;
}

function m<Req, Res>(service: string, name: string, req: Codec<Req>, res: Codec<Res>, responseStream = false): MethodDesc<Req, Res> {
  return { path: `/${service}/${name}`, req, res, responseStream };
}

const cs = "imdb.v1.ClientService";
const as = "imdb.v1.AdminService";
const ns = "imdb.v1.NodeService";
const hs = "grpc.health.v1.Health";

export const clientMethods = {
  Increment: m(cs, "Increment", codecs.IncrementRequest, codecs.CounterResponse),
  Decrement: m(cs, "Decrement", codecs.DecrementRequest, codecs.CounterResponse),
  Get: m(cs, "Get", codecs.GetRequest, codecs.GetResponse),
  Set: m(cs, "Set", codecs.SetRequest, codecs.SetResponse),
  Batch: m(cs, "Batch", codecs.BatchRequest, codecs.BatchResponse),
  Delete: m(cs, "Delete", codecs.DeleteRequest, codecs.DeleteResponse),
  Scan: m(cs, "Scan", codecs.ScanRequest, codecs.ScanResponse),
  Status: m(cs, "Status", codecs.StatusRequest, codecs.StatusResponse),
  Members: m(cs, "Members", codecs.MembersRequest, codecs.MembersResponse),
  SAdd: m(cs, "SAdd", codecs.SAddRequest, codecs.SCountResponse),
  SRem: m(cs, "SRem", codecs.SRemRequest, codecs.SCountResponse),
  SMembers: m(cs, "SMembers", codecs.SMembersRequest, codecs.SMembersResponse),
  SIsMember: m(cs, "SIsMember", codecs.SIsMemberRequest, codecs.SIsMemberResponse),
  SCard: m(cs, "SCard", codecs.SCardRequest, codecs.SCountResponse),
  HSet: m(cs, "HSet", codecs.HSetRequest, codecs.HSetResponse),
  HGet: m(cs, "HGet", codecs.HGetRequest, codecs.HGetResponse),
  HMGet: m(cs, "HMGet", codecs.HMGetRequest, codecs.HMGetResponse),
  HDel: m(cs, "HDel", codecs.HDelRequest, codecs.HDelResponse),
  HGetAll: m(cs, "HGetAll", codecs.HGetAllRequest, codecs.HGetAllResponse),
  HLen: m(cs, "HLen", codecs.HLenRequest, codecs.HLenResponse),
  HIncrBy: m(cs, "HIncrBy", codecs.HIncrByRequest, codecs.HIncrByResponse),
  Expire: m(cs, "Expire", codecs.ExpireRequest, codecs.ExpireResponse),
  Persist: m(cs, "Persist", codecs.PersistRequest, codecs.PersistResponse),
  Ttl: m(cs, "Ttl", codecs.TtlRequest, codecs.TtlResponse),
} as const;

export const adminMethods = {
  Snapshot: m(as, "Snapshot", codecs.SnapshotRequest, codecs.SnapshotResponse),
  Leave: m(as, "Leave", codecs.LeaveRequest, codecs.LeaveResponse),
  Stats: m(as, "Stats", codecs.StatsRequest, codecs.StatsResponse),
  RemoveMember: m(as, "RemoveMember", codecs.RemoveMemberRequest, codecs.RemoveMemberResponse),
  Backup: m(as, "Backup", codecs.BackupRequest, codecs.BackupChunk, true),
} as const;

export const nodeMethods = {
  Exchange: m(ns, "Exchange", codecs.PeerEnvelope, codecs.PeerEnvelope),
  /** The response is an encoded BatchResponse, handled by batch-codec.ts (served and read as raw bytes). */
  Forward: m(ns, "Forward", codecs.ForwardRequest, rawCodec),
  ScanPart: m(ns, "ScanPart", codecs.ScanPartRequest, codecs.ScanResponse),
  HandOff: m(ns, "HandOff", codecs.HandOffRequest, codecs.HandOffResponse),
} as const;

export const healthMethods = {
  Check: m(hs, "Check", codecs.HealthCheckRequest, codecs.HealthCheckResponse),
  Watch: m(hs, "Watch", codecs.HealthCheckRequest, codecs.HealthCheckResponse, true),
} as const;

/** grpc-js wants a ServiceDefinition keyed by method name; serialisers come from the codecs above. */
export function serviceDefinition(methods: Record<string, MethodDesc<unknown, unknown>>): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, d] of Object.entries(methods)) {
    def[name] = {
      path: d.path,
      requestStream: false,
      responseStream: d.responseStream,
      requestSerialize: (v: unknown) => d.req.encode(v),
      requestDeserialize: (b: Buffer) => d.req.decode(b),
      responseSerialize: (v: unknown) => d.res.encode(v),
      responseDeserialize: (b: Buffer) => d.res.decode(b),
      originalName: name,
    };
  }
  return def;
}
