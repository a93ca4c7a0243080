// The gRPC servers: ClientService (+ AdminService, Health) on the client port and NodeService (+ Health) on the peer port, with graceful shutdown.
import * as grpc from "@grpc/grpc-js";
import {
  clientMessageBytesMax, clientResponseBytesMax, OpFailure, peerMessageBytesMax,
  type AdminHandler, type ClientHandler, type ClientOp, type OpErrorCode, type OpOutcome, type OpResult, type PeerHandler, type ValueView,
} from "./api.ts";
import {
  adminMethods, bigIntToInt64, clientMethods, HealthStatusWire, healthMethods, MemberStatusWire, nodeMethods, rawCodec, serviceDefinition,
  type CounterResponseWire, type GetResponseWire, type HealthCheckRequestWire, type HealthCheckResponseWire,
  type DeleteResponseWire, type MethodDesc, type RemoveMemberRequestWire, type HandOffRequestWire, type ScanPartRequestWire, type ScanRequestWire, type SCountResponseWire, type SetResponseWire,
  type SIsMemberResponseWire, type SMembersResponseWire, type BackupChunkWire,
} from "./proto.ts";
import {
  decrementOp, deleteOp, expireOp, getOp, hdelOp, hgetallOp, hgetOp, hincrbyOp, hlenOp, hmgetOp, hsetOp, incrementOp, persistOp, requestIdOf, saddOp,
  scanQuery, scardOp, setOp, sismemberOp, smembersOp, sremOp, ttlOp, handOffRequest,
} from "./validate.ts";

const utf8Encoder = new TextEncoder();
import { checkResultKind, decodeBatch, encodeBatchResponse, expiryResultWire, getResponseWire, hashResultWire } from "./batch-codec.ts";
import { callerIdentity, ReloadableServerCredentials, type PeerIdentity, type TlsMaterial } from "./tls.ts";
import { addReflection } from "./reflection.ts";

/** How long shutdown waits for in-flight calls before cancelling them. */
export const shutdownGraceMsDefault = 5000;

export type ServerSecurity = { tls: TlsMaterial } | { insecure: true };

export interface RunningServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** Health reported by grpc.health.v1.Health for "" and each service. */
  setServing(serving: boolean): void;
  /** Swap certificate/key/CA for new connections (SIGHUP rotation). Throws on an insecure server. */
  reloadTls(material: TlsMaterial): void;
  /** Stop accepting, let in-flight calls finish for up to graceMs, then cancel the rest. */
  shutdown(graceMs?: number): Promise<void>;
}

export interface ServerCommon {
  /** HOST:PORT; port 0 picks a free one. */
  addr: string;
  security: ServerSecurity;
  /** Called for a handler error that is not an OpFailure (reported to the caller as INTERNAL). Default: stderr. */
  onInternalError?: (method: string, err: unknown) => void;
}

export interface ClientServerOptions extends ServerCommon {
  handler: ClientHandler;
  admin?: AdminHandler;
}

export interface PeerServerOptions extends ServerCommon {
  /** This node's id, sent back as from_id in replies. */
  nodeId: string;
  handler: PeerHandler;
}

type UnaryImpl = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;
type Errorish = (method: string, err: unknown) => void;

const defaultInternal: Errorish = (method, err) => {
  console.error(`imdb: internal error in ${method}:`, err);
};

export function statusOf(code: OpErrorCode): grpc.status {
  return grpc.status[code];
}

function serviceError(method: string, err: unknown, onInternal: Errorish): Partial<grpc.ServiceError> {
  if (err instanceof OpFailure) return { code: statusOf(err.code), details: err.message };
  onInternal(method, err);
  return { code: grpc.status.INTERNAL, details: "internal error" };
}

/** Adapts an async-or-sync function to a grpc-js unary handler; every failure becomes a status. */
function unary<Req, Res>(method: string, onInternal: Errorish, run: (req: Req, call: grpc.ServerUnaryCall<unknown, unknown>) => Res | Promise<Res>): UnaryImpl {
  return (call, callback) => {
    let out: Res | Promise<Res>;
    try {
      out = run(call.request as Req, call);
    } catch (err) {
      callback(serviceError(method, err, onInternal));
      return;
    }
    if (out instanceof Promise) {
      out.then((res) => callback(null, res), (err: unknown) => callback(serviceError(method, err, onInternal)));
    } else {
      callback(null, out);
    }
  };
}

function requireCaller(call: grpc.ServerUnaryCall<unknown, unknown>, secure: boolean, allowed: readonly PeerIdentity["role"][]): PeerIdentity | null {
  if (!secure) return null;
  const who = callerIdentity(call);
  if (who === null) throw new OpFailure("PERMISSION_DENIED", "no usable client certificate");
  if (!allowed.includes(who.role)) throw new OpFailure("PERMISSION_DENIED", `a ${who.role} certificate may not call this service`);
  return who;
}

// ---- result encoding ----

function getResponse(key: Uint8Array | undefined, v: ValueView): GetResponseWire {
  return getResponseWire(key, v);
}

function unwrap(op: ClientOp, outcome: OpOutcome): OpResult {
  if (!outcome.ok) throw new OpFailure(outcome.error.code, outcome.error.message);
  checkResultKind(op, outcome.result);
  return outcome.result;
}

type ResultWire =
  | CounterResponseWire | GetResponseWire | SetResponseWire | DeleteResponseWire | SCountResponseWire | SMembersResponseWire | SIsMemberResponseWire;

/** The unary response message of result r (checkResultKind tied its kind to the method's op). */
function resultWire(key: Uint8Array | undefined, r: OpResult): ResultWire {
  switch (r.kind) {
    case "counter":
      return { key, value: bigIntToInt64(r.value) };
    case "value":
      return getResponse(key, r.value);
    case "written":
      return { key, context: r.context ?? undefined };
    case "count":
      return { key, count: r.value };
    case "members":
      return { key, members: r.members };
    case "isMember":
      return { key, isMember: r.value };
    case "deleted":
      return { key, deleted: r.deleted };
    case "hashCount":
    case "hashValue":
    case "hashValues":
    case "hashFields":
    case "changed":
    case "ttl":
      throw new Error(`assertion failed: a ${r.kind} result goes through unaryResponse`);
  }
}

/** The unary response of op: a hash or expiry op's own message (with its key), else resultWire's. */
function unaryResponse(op: ClientOp, key: Uint8Array | undefined, r: OpResult): unknown {
  const hash = hashResultWire(op, r);
  if (hash !== null) {
    const msg = hash.hset ?? hash.hdel ?? hash.hlen ?? hash.hincrby ?? hash.hget ?? hash.hmget ?? hash.hgetall;
    if (msg === undefined || msg === null) throw new Error(`assertion failed: no hash result for ${op.kind}`);
    return { ...msg, key };
  }
  const expiry = expiryResultWire(op, r);
  if (expiry !== null) {
    const msg = expiry.expire ?? expiry.persist ?? expiry.ttl;
    if (msg === undefined || msg === null) throw new Error(`assertion failed: no expiry result for ${op.kind}`);
    return { ...msg, key };
  }
  return resultWire(key, r);
}

// ---- services ----

const emptyResponse = Buffer.alloc(0);

/** ClientService as served: Batch takes and returns bytes, so batch-codec.ts (not protobufjs) handles them. */
const clientServiceMethods: Record<string, MethodDesc<unknown, unknown>> = {
  ...clientMethods,
  Batch: { ...clientMethods.Batch, req: rawCodec, res: rawCodec } as MethodDesc<unknown, unknown>,
};

function clientImpl(h: ClientHandler, secure: boolean, onInternal: Errorish): grpc.UntypedServiceImplementation {
  const roles = ["node", "client", "admin"] as const;
  const single = <Req extends { key?: Uint8Array; requestId?: Uint8Array }>(method: string, toOp: (req: Req) => ClientOp) =>
    unary(method, onInternal, async (req: Req, call) => {
      requireCaller(call, secure, roles);
      const op = toOp(req);
      const r = unwrap(op, await h.apply(op, requestIdOf(req.requestId)));
      return unaryResponse(op, req.key, r);
    });
  return {
    Increment: single("Increment", incrementOp),
    Decrement: single("Decrement", decrementOp),
    Get: single("Get", getOp),
    Set: single("Set", setOp),
    Delete: single("Delete", deleteOp),
    Scan: unary("Scan", onInternal, async (req: ScanRequestWire, call) => {
      requireCaller(call, secure, roles);
      const page = await h.scan(scanQuery(req));
      return { keys: page.keys.map((k) => utf8Encoder.encode(k)), cursor: page.cursor };
    }),
    SAdd: single("SAdd", saddOp),
    SRem: single("SRem", sremOp),
    SMembers: single("SMembers", smembersOp),
    SIsMember: single("SIsMember", sismemberOp),
    SCard: single("SCard", scardOp),
    HSet: single("HSet", hsetOp),
    HGet: single("HGet", hgetOp),
    HMGet: single("HMGet", hmgetOp),
    HDel: single("HDel", hdelOp),
    HGetAll: single("HGetAll", hgetallOp),
    HLen: single("HLen", hlenOp),
    HIncrBy: single("HIncrBy", hincrbyOp),
    Expire: single("Expire", expireOp),
    Persist: single("Persist", persistOp),
    Ttl: single("Ttl", ttlOp),
    // Raw bytes both ways (see clientServiceMethods): the hand-written codec replaces protobufjs here.
    Batch: unary("Batch", onInternal, async (req: Uint8Array, call) => {
      requireCaller(call, secure, roles);
      const { ops, requestId } = decodeBatch(req);
      if (ops.length === 0) return emptyResponse;
      return encodeBatchResponse(ops, await h.batch(ops, requestId));
    }),
    Status: unary("Status", onInternal, async (_req: unknown, call) => {
      requireCaller(call, secure, roles);
      const s = await h.status();
      return {
        nodeId: s.nodeId, version: s.version, uptimeMs: s.uptimeMs, keys: s.keys, durability: s.durability,
        membersAlive: s.membersAlive, membersTotal: s.membersTotal, walLsn: bigIntToInt64(s.walLsn), accel: s.accel,
      };
    }),
    Members: unary("Members", onInternal, async (_req: unknown, call) => {
      requireCaller(call, secure, roles);
      const ms = await h.members();
      const status = { alive: MemberStatusWire.ALIVE, suspect: MemberStatusWire.SUSPECT, dead: MemberStatusWire.DEAD, left: MemberStatusWire.LEFT };
      const partitioned = ms.some((m) => m.partitions !== undefined);
      return {
        members: ms.map((m) => ({ id: m.id, address: m.address, status: status[m.status], incarnation: m.incarnation, partitions: m.partitions ?? 0, hintsPending: m.hintsPending ?? 0, bytesMoving: m.bytesMoving ?? 0 })),
        ...(partitioned ? h.placementSettings?.() ?? {} : {}),
      };
    }),
  };
}

function adminImpl(h: AdminHandler, secure: boolean, onInternal: Errorish): grpc.UntypedServiceImplementation {
  const roles = ["admin"] as const;
  return {
    Snapshot: unary("Snapshot", onInternal, async (_req: unknown, call) => {
      requireCaller(call, secure, roles);
      const s = await h.snapshot();
      return { path: s.path, lsn: bigIntToInt64(s.lsn), bytes: s.bytes, keys: s.keys, durationMs: s.durationMs };
    }),
    Leave: unary("Leave", onInternal, async (_req: unknown, call) => {
      requireCaller(call, secure, roles);
      const r = await h.leave();
      return { heardBy: r.heardBy ?? "", peers: r.peers };
    }),
    Stats: unary("Stats", onInternal, async (_req: unknown, call) => {
      requireCaller(call, secure, roles);
      return { stats: await h.stats() };
    }),
    RemoveMember: unary("RemoveMember", onInternal, async (req: RemoveMemberRequestWire, call) => {
      requireCaller(call, secure, roles);
      const id = req.id ?? "";
      if (id === "") throw new OpFailure("INVALID_ARGUMENT", "id: the member to remove is required");
      if (h.removeMember === undefined) throw new OpFailure("FAILED_PRECONDITION", "this server cannot remove members");
      await h.removeMember(id);
      return {};
    }),
    Backup: (call: grpc.ServerWritableStream<unknown, unknown>) => void streamBackup(h, call, secure, onInternal),
  };
}

/** AdminService.Backup: writes each piece as it comes (waiting for the client when its window is full); a failure ends the stream with its status. */
async function streamBackup(h: AdminHandler, call: grpc.ServerWritableStream<unknown, unknown>, secure: boolean, onInternal: Errorish): Promise<void> {
  let cancelled = false;
  call.on("cancelled", () => (cancelled = true));
  try {
    requireCaller(call as unknown as grpc.ServerUnaryCall<unknown, unknown>, secure, ["admin"]);
    if (h.backup === undefined) throw new OpFailure("FAILED_PRECONDITION", "this server cannot take backups");
    for await (const piece of h.backup()) {
      if (cancelled) return;
      const msg: BackupChunkWire = piece.kind === "data"
        ? { data: piece.bytes }
        : { endLsn: bigIntToInt64(piece.endLsn), totalBytes: piece.totalBytes, sha256: piece.sha256 };
      if (!call.write(msg)) await drained(call);
    }
    call.end();
  } catch (err) {
    if (!cancelled) call.emit("error", serviceError("Backup", err, onInternal));
  }
}

/** Resolves when the stream can take more, or is gone; leaves no listener behind (a backup waits here once per piece). */
function drained(call: grpc.ServerWritableStream<unknown, unknown>): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      call.off("drain", done);
      call.off("cancelled", done);
      call.off("close", done);
      resolve();
    };
    call.on("drain", done);
    call.on("cancelled", done);
    call.on("close", done);
  });
}

/** The peer's node id, checked against its certificate (when TLS is on). */
function peerId(call: grpc.ServerUnaryCall<unknown, unknown>, secure: boolean, fromId: string | undefined): string {
  const who = requireCaller(call, secure, ["node"]);
  const id = fromId ?? "";
  if (who !== null && who.role === "node" && who.id !== id) {
    throw new OpFailure("PERMISSION_DENIED", `from_id "${id}" does not match the certificate's node id "${who.id}"`);
  }
  if (id.length === 0) throw new OpFailure("INVALID_ARGUMENT", "from_id is empty");
  return id;
}

function peerImpl(nodeId: string, h: PeerHandler, secure: boolean, onInternal: Errorish): grpc.UntypedServiceImplementation {
  return {
    Exchange: unary("Exchange", onInternal, async (req: { fromId?: string; payload?: Uint8Array }, call) => {
      const fromId = peerId(call, secure, req.fromId);
      const reply = await h.exchange(fromId, req.payload ?? new Uint8Array(0));
      return { fromId: nodeId, payload: reply };
    }),
    Forward: unary("Forward", onInternal, async (req: { fromId?: string; batch?: Uint8Array }, call) => {
      const fromId = peerId(call, secure, req.fromId);
      // The same decoding, checks and limits as a client's Batch.
      const { ops, requestId } = decodeBatch(req.batch ?? new Uint8Array(0));
      return encodeBatchResponse(ops, await h.forward(fromId, ops, requestId));
    }),
    HandOff: unary("HandOff", onInternal, async (req: HandOffRequestWire, call) => {
      const fromId = peerId(call, secure, req.fromId);
      const { entries, stamp } = handOffRequest(req);
      return { merged: await h.handOff(fromId, entries, stamp) };
    }),
    ScanPart: unary("ScanPart", onInternal, async (req: ScanPartRequestWire, call) => {
      const fromId = peerId(call, secure, req.fromId);
      const page = await h.scanPart(fromId, scanQuery(req.scan ?? {}), req.partitions ?? new Uint8Array(0));
      return { keys: page.keys.map((k) => utf8Encoder.encode(k)), cursor: page.cursor };
    }),
  };
}

/** grpc.health.v1.Health: "" and every registered service report the same serving flag. */
class Health {
  private serving = true;
  private readonly watchers = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  constructor(private readonly services: ReadonlySet<string>) {}

  set(serving: boolean): void {
    if (serving === this.serving) return;
    this.serving = serving;
    for (const w of this.watchers) w.write(this.statusFor((w.request as HealthCheckRequestWire).service ?? ""));
  }

  private statusFor(service: string): HealthCheckResponseWire {
    if (service !== "" && !this.services.has(service)) return { status: HealthStatusWire.SERVICE_UNKNOWN };
    return { status: this.serving ? HealthStatusWire.SERVING : HealthStatusWire.NOT_SERVING };
  }

  impl(onInternal: Errorish): grpc.UntypedServiceImplementation {
    return {
      Check: unary("Check", onInternal, (req: HealthCheckRequestWire) => {
        const s = this.statusFor(req.service ?? "");
        if (s.status === HealthStatusWire.SERVICE_UNKNOWN) throw new OpFailure("NOT_FOUND", `unknown service "${req.service}"`);
        return s;
      }),
      Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        this.watchers.add(call);
        call.write(this.statusFor((call.request as HealthCheckRequestWire).service ?? ""));
        call.on("cancelled", () => this.watchers.delete(call));
        call.on("close", () => this.watchers.delete(call));
      },
    };
  }

  endAll(): void {
    for (const w of this.watchers) w.end();
    this.watchers.clear();
  }
}

function serverOptions(receiveBytesMax: number, sendBytesMax: number): grpc.ServerOptions {
  return {
    "grpc.max_receive_message_length": receiveBytesMax,
    "grpc.max_send_message_length": sendBytesMax,
  };
}

type Services = { name: string; methods: Record<string, MethodDesc<unknown, unknown>>; impl: grpc.UntypedServiceImplementation }[];

async function start(common: ServerCommon, receiveBytesMax: number, sendBytesMax: number, services: Services): Promise<RunningServer> {
  const onInternal = common.onInternalError ?? defaultInternal;
  const server = new grpc.Server(serverOptions(receiveBytesMax, sendBytesMax));
  const health = new Health(new Set(services.map((s) => s.name)));
  for (const s of services) server.addService(serviceDefinition(s.methods), s.impl);
  server.addService(serviceDefinition(healthMethods), health.impl(onInternal));
  // Reflection lists what this port serves (so grpcurl needs no .proto files); it reveals the schema only.
  addReflection(server, [...services.map((s) => s.name), "grpc.health.v1.Health"]);
  const creds = "tls" in common.security ? new ReloadableServerCredentials(common.security.tls) : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(common.addr, creds, (err, p) => (err ? reject(new Error(`cannot listen on ${common.addr}: ${err.message}`)) : resolve(p)));
  });
  let stopping: Promise<void> | null = null;
  return {
    port,
    setServing: (serving) => health.set(serving),
    reloadTls: (material) => {
      if (!(creds instanceof ReloadableServerCredentials)) throw new Error("server is insecure: nothing to reload");
      creds.reload(material);
    },
    shutdown: (graceMs = shutdownGraceMsDefault) => {
      stopping ??= new Promise<void>((resolve) => {
        health.set(false);
        health.endAll();
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return stopping;
    },
  };
}

function isSecure(s: ServerSecurity): boolean {
  return "tls" in s;
}

/** Client port: ClientService for node/client/admin certificates, AdminService for admin ones, Health for all. */
export function startClientServer(opts: ClientServerOptions): Promise<RunningServer> {
  const secure = isSecure(opts.security);
  const onInternal = opts.onInternalError ?? defaultInternal;
  const services: Services = [{ name: "imdb.v1.ClientService", methods: clientServiceMethods, impl: clientImpl(opts.handler, secure, onInternal) }];
  if (opts.admin !== undefined) {
    services.push({ name: "imdb.v1.AdminService", methods: adminMethods, impl: adminImpl(opts.admin, secure, onInternal) });
  }
  return start(opts, clientMessageBytesMax, clientResponseBytesMax, services);
}

/** Peer port: NodeService for node certificates whose id matches from_id, and Health. */
export function startPeerServer(opts: PeerServerOptions): Promise<RunningServer> {
  const secure = isSecure(opts.security);
  const onInternal = opts.onInternalError ?? defaultInternal;
  return start(opts, peerMessageBytesMax, peerMessageBytesMax, [
    { name: "imdb.v1.NodeService", methods: nodeMethods, impl: peerImpl(opts.nodeId, opts.handler, secure, onInternal) },
  ]);
}

