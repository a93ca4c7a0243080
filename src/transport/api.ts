// The ports between the gRPC edge and the node: typed, validated requests in, typed results or typed errors out.

import { hashFieldBytesMax, registerValueBytesMax } from "../limits.ts";
export { expiryDeadlineMsMax, setMemberBytesMax, setMembersWriteMax } from "../limits.ts";

/** Limits checked at the edge before a handler sees a request (defined in src/limits.ts). */
export {
  batchOpsMax, clientMessageBytesMax, clientResponseBytesMax, keyBytesMax, mvContextBytesMax, peerMessageBytesMax,
} from "../limits.ts";
export const valueBytesMax = registerValueBytesMax;
/** Longest hash field name (src/limits.ts). */
export const fieldBytesMax = hashFieldBytesMax;
/** Longest client-chosen request id (a UUID's 16 bytes, or its 36-character text, fit easily). */
export const requestIdBytesMax = 64;

/** Operating errors a handler may report; each becomes the gRPC status of the same name. ONLY APPEND. */
export const opErrorCodes = [
  "INVALID_ARGUMENT",
  "FAILED_PRECONDITION",
  "OUT_OF_RANGE",
  "NOT_FOUND",
  "RESOURCE_EXHAUSTED",
  "UNAVAILABLE",
  "INTERNAL",
  "PERMISSION_DENIED",
] as const;
export type OpErrorCode = (typeof opErrorCodes)[number];

export interface OpError { code: OpErrorCode; message: string }

/** Thrown by a handler (or by the edge itself) to answer with a status instead of INTERNAL. */
export class OpFailure extends Error {
  override readonly name = "OpFailure";
  constructor(readonly code: OpErrorCode, message: string) {
    super(message);
  }
}

export type CounterKind = "pncounter" | "gcounter";
export type ValueKind = "gcounter" | "pncounter" | "lww" | "mv" | "set" | "hash";
/** Redis's EXPIRE options: NX no deadline yet, XX has one, GT/LT later/earlier than the current one (none counts as infinitely late). */
export type ExpireCondition = "nx" | "xx" | "gt" | "lt";

/**
 * A register write's deadline (docs/api.md, "Expiry"), as Redis's SET: neither field clears any
 * deadline (SET), ttlMs sets one ttlMs after the receiving node's clock (SET PX; 1..expiryDeadlineMsMax,
 * the node refuses one that reaches past expiryDeadlineMsMax), keepTtl leaves it (SET KEEPTTL). Never both.
 */
export interface SetTtl { ttlMs?: number; keepTtl?: true }

/** A client operation after edge validation: key is 1..keyBytesMax bytes of UTF-8, amount >= 1, value <= valueBytesMax. */
export type ClientOp =
  /** counter null: the caller did not say; an existing counter of either kind, a new key becomes a PN-Counter. */
  | { kind: "increment"; key: string; amount: bigint; counter: CounterKind | null }
  | { kind: "decrement"; key: string; amount: bigint }
  | { kind: "get"; key: string }
  | ({ kind: "set"; key: string; value: Uint8Array } & SetTtl)
  | ({ kind: "setMv"; key: string; value: Uint8Array; context: Uint8Array | null } & SetTtl)
  /** Sets: members 1..setMembersWriteMax of them, each 1..setMemberBytesMax bytes (repeats allowed, counted once). */
  | { kind: "sadd"; key: string; members: Uint8Array[] }
  | { kind: "srem"; key: string; members: Uint8Array[] }
  | { kind: "smembers"; key: string }
  | { kind: "sismember"; key: string; member: Uint8Array }
  | { kind: "scard"; key: string }
  | { kind: "delete"; key: string }
  /** Hashes: fields are 1..fieldBytesMax bytes, values <= valueBytesMax; lists hold at least one field. */
  | { kind: "hset"; key: string; fields: HashFieldView[] }
  | { kind: "hdel"; key: string; fields: Uint8Array[] }
  | { kind: "hincrby"; key: string; field: Uint8Array; amount: bigint }
  | { kind: "hget"; key: string; field: Uint8Array }
  | { kind: "hmget"; key: string; fields: Uint8Array[] }
  | { kind: "hgetall"; key: string }
  | { kind: "hlen"; key: string }
  /**
   * Expiry: exactly one of ttlMs (relative to the receiving node's clock, which turns it into a
   * deadline once; <= 0 expires the key now, as Redis's EXPIRE; at most expiryDeadlineMsMax) and
   * atMs (absolute Unix ms <= expiryDeadlineMsMax; at or before now expires the key now).
   */
  | { kind: "expire"; key: string; ttlMs: number | null; atMs: number | null; cond: ExpireCondition | null }
  | { kind: "persist"; key: string }
  | { kind: "ttl"; key: string };

/** The ops that only read (a request with an id holds none of them). */
export type ReadOp = Extract<ClientOp, { kind: "get" | "smembers" | "sismember" | "scard" | "hget" | "hmget" | "hgetall" | "hlen" | "ttl" }>;
export type WriteOp = Exclude<ClientOp, ReadOp>;

export function isRead(op: ClientOp): op is ReadOp {
  switch (op.kind) {
    case "get": case "smembers": case "sismember": case "scard": case "hget": case "hmget": case "hgetall": case "hlen": case "ttl":
      return true;
    default:
      return false;
  }
}

/** Reads change nothing: they may not go in a batch with a request id, and never wait for the WAL. */
export const isReadOp = isRead;

export type HashOpKind = "hset" | "hdel" | "hincrby" | "hget" | "hmget" | "hgetall" | "hlen";
export type HashClientOp = Extract<ClientOp, { kind: HashOpKind }>;

export function isHashOp(op: ClientOp): op is HashClientOp {
  switch (op.kind) {
    case "hset": case "hdel": case "hincrby": case "hget": case "hmget": case "hgetall": case "hlen":
      return true;
    default:
      return false;
  }
}

export interface HashFieldView { field: Uint8Array; value: Uint8Array }

/** One typed state's value. */
export type TypedView =
  | { type: "gcounter" | "pncounter"; value: bigint }
  | { type: "lww"; value: Uint8Array }
  | { type: "mv"; values: Uint8Array[]; context: Uint8Array }
  /** members sorted bytewise. */
  | { type: "set"; members: Uint8Array[] }
  | { type: "hash"; fields: HashFieldView[] };

/**
 * A key's visible value; conflicts: its states of other types after a type conflict (absent when
 * none); ttlMs / expiresAtMs: its deadline as ms left (>= 1) and as Unix ms, on the answering
 * node's clock (both absent when it has none).
 */
export type ValueView = TypedView & { conflicts?: TypedView[]; ttlMs?: number; expiresAtMs?: number };

/**
 * increment/decrement -> counter (value after the op); get -> value; set/setMv -> written (MV:
 * new context); delete -> deleted; sadd/srem/scard -> count (members added, removed, held);
 * smembers -> members; sismember -> isMember; expire/persist -> changed; ttl -> ttl.
 */
export type OpResult =
  | { kind: "counter"; value: bigint }
  | { kind: "value"; value: ValueView }
  | { kind: "written"; context: Uint8Array | null }
  | { kind: "deleted"; deleted: boolean }
  | { kind: "count"; value: number }
  | { kind: "members"; members: Uint8Array[] }
  | { kind: "isMember"; value: boolean }
  /** hset: fields added; hdel: fields removed; hlen: present fields. (hincrby answers "counter".) */
  | { kind: "hashCount"; count: bigint }
  /** hget: the value, null if the field or key is absent. */
  | { kind: "hashValue"; value: Uint8Array | null }
  /** hmget: one per requested field, in request order. */
  | { kind: "hashValues"; values: (Uint8Array | null)[] }
  /** hgetall: present fields, bytewise by field. */
  | { kind: "hashFields"; fields: HashFieldView[] }
  /** expire: the deadline was set (or the key expired now); persist: a deadline was cleared. */
  | { kind: "changed"; value: boolean }
  /** ttl: -2 no such key, -1 no deadline, else ms left (>= 1), as Redis's PTTL. */
  | { kind: "ttl"; ttlMs: number };

/** A Scan request after edge validation (limit within 1..scanLimitMax). */
/**
 * local: in a partitioned cluster, only this node's replica (see ScanRequest.local); absent or
 * false, the whole keyspace (src/node/scan.ts).
 */
export interface ScanQuery { prefix: string; type: ValueKind | null; cursor: number; limit: number; local?: boolean }
export interface ScanPage { keys: string[]; cursor: number }
/** Most keys one Scan page returns, and the page size when the client gives none. */
export const scanLimitMax = 10_000;
export const scanLimitDefault = 1000;

export type OpOutcome = { ok: true; result: OpResult } | { ok: false; error: OpError };

export interface NodeStatus {
  nodeId: string;
  version: string;
  uptimeMs: number;
  keys: number;
  durability: string;
  membersAlive: number;
  membersTotal: number;
  walLsn: bigint;
  accel: string;
}

export type MemberState = "alive" | "suspect" | "dead" | "left";
/**
 * partitions: the partition replicas the member owns; hintsPending and bytesMoving: what is on its
 * way between the answering node and it (see Member in proto/imdb.proto). Present only when the
 * cluster is partitioned (replicationFactor > 0).
 */
export interface MemberView { id: string; address: string; status: MemberState; incarnation: number; partitions?: number; hintsPending?: number; bytesMoving?: number }

type Maybe<T> = T | Promise<T>;

/**
 * What the node supplies for ClientService. Resolve only when the op is as durable as the node's
 * durability mode promises. Errors: return {ok:false,error} or throw OpFailure; any other throw is INTERNAL.
 */
export interface ClientHandler {
  /**
   * requestId: the client's id for a write (1..requestIdBytesMax bytes), or null. A retry with the
   * same id is applied once and answered with the first outcome (docs/api.md, "Safe retries").
   */
  apply(op: ClientOp, requestId: Uint8Array | null): Maybe<OpOutcome>;
  /** Ops in request order, one outcome each, same order. requestId: as in apply (only writes then). */
  batch(ops: readonly ClientOp[], requestId: Uint8Array | null): Maybe<OpOutcome[]>;
  /** One page of present keys (see ScanRequest in proto/imdb.proto). */
  scan(q: ScanQuery): Maybe<ScanPage>;
  status(): Maybe<NodeStatus>;
  members(): Maybe<MemberView[]>;
  /** replicationFactor and partitions, sent with members when the cluster is partitioned. */
  placementSettings?(): { replicationFactor: number; partitions: number };
}

export interface SnapshotInfo { path: string; lsn: bigint; bytes: number; keys: number; durationMs: number }

/**
 * How a leave's announcement went: `heardBy`, the first peer seen holding it; null with
 * `peers` > 0 when none was within leaveAnnounceMs (the others may see a crash: remove the
 * node with `imdb admin member remove` once they show it dead); `peers` 0: nobody to tell.
 */
export interface LeaveInfo { heardBy: string | null; peers: number }

/** AdminService, reachable only with an admin certificate. Errors: throw OpFailure. */
export interface AdminHandler {
  snapshot(): Maybe<SnapshotInfo>;
  leave(): Maybe<LeaveInfo>;
  stats(): Maybe<{ name: string; value: string }[]>;
  /** Forgets a dead member now and tells the others it left. Absent: RemoveMember answers FAILED_PRECONDITION. */
  removeMember?(id: string): Maybe<void>;
  /** A consistent backup, as data pieces then its summary. Absent: Backup answers FAILED_PRECONDITION. */
  backup?(): AsyncIterable<BackupPiece>;
}

/** One message of AdminService.Backup: a piece of the backup file, or (last) the summary of the whole stream. */
export type BackupPiece =
  | { kind: "data"; bytes: Uint8Array }
  | { kind: "end"; endLsn: bigint; totalBytes: number; sha256: Uint8Array };

/**
 * NodeService: one opaque cluster message in, one reply out. `fromId` is already checked against the
 * sender's certificate. Errors: throw OpFailure (e.g. UNAVAILABLE while draining).
 */
export interface PeerHandler {
  exchange(fromId: string, payload: Uint8Array): Maybe<Uint8Array>;
  /** A client request another node forwarded here (NodeService.Forward): applied here, never forwarded again. */
  forward(fromId: string, ops: readonly ClientOp[], requestId: Uint8Array | null): Maybe<OpOutcome[]>;
  /** One page of a partitioned Scan another node runs (NodeService.ScanPart; src/node/scan.ts). */
  scanPart(fromId: string, q: ScanQuery, partitions: Uint8Array): Maybe<ScanPage>;
  /**
   * States a leaving member hands over (NodeService.HandOff; src/cluster/handoff.ts), read under
   * `stamp`; resolve once they are as durable as this node's writes. Returns whole states merged.
   */
  handOff(fromId: string, entries: readonly HandOffEntry[], stamp: { epoch: number; confirms: number }): Maybe<number>;
}

/** A key's state in a hand-off, whole (total 0) or a piece of it at offset (see HandOffEntry in proto/imdb.proto). */
export interface HandOffEntry { key: string; state: Uint8Array; offset: number; total: number }
/** Most entries one HandOff call carries. */
export const handOffEntriesMax = 100_000;
