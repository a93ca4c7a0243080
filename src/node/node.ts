// The composition root: config -> accel -> recovery + WAL -> engine -> gRPC servers -> cluster,
// and the lifecycle around them (ready line, SIGTERM drain, SIGHUP certificate reload, fatal stop).
import { mkdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { accel, describeAccel } from "../accel/index.ts";
import { formatDurability, respMaxClientsMax, type NodeConfig } from "../config/config.ts";
import { Engine } from "../engine/index.ts";
import { openStore, SnapshotScheduler, type PersistLog, type Store } from "../persist/index.ts";
import { cryptoEpochBytes, markCleanStop, openIdentity, renewEpochSync } from "../persist/identity.ts";
import { gcStartState } from "../persist/replica.ts";
import { lockDataDir, type FolderLock } from "../persist/lock.ts";
import { actorCount, actorName } from "../crdt/actors.ts";
import { isRead, type AdminHandler, type ClientHandler, type ClientOp, type LeaveInfo, type MemberView, type NodeStatus, type OpOutcome, type PeerHandler } from "../transport/api.ts";
import { OpFailure } from "../transport/api.ts";
import { startClientServer, startPeerServer, type RunningServer, type ServerSecurity } from "../transport/server.ts";
import { loadTlsDir, validateNodeMaterial, type TlsMaterial } from "../transport/tls.ts";
import { version } from "../version.ts";
import { createLogger, type Logger } from "./log.ts";
import { RequestTable } from "./requests.ts";
import { RequestReplay, withRequestTable } from "./request-recovery.ts";
import { WritePath } from "./write-path.ts";
import { Forwarder } from "./forward.ts";
import { ClusterScan } from "./scan.ts";
import { ExpirySweep, type ExpirySweepStats } from "./expiry-sweep.ts";
import { ClusterHost } from "./cluster-host.ts";
import { createNodeMetrics, type FrontDoor } from "./metrics.ts";
import { startMetricsServer } from "./metrics-server.ts";
import { checkPortsFree } from "./ports.ts";
import { addressedHosts, certNamesHost, namesLost } from "./cert-names.ts";
import { certsOf } from "./cert-expiry.ts";
import { consoleMembersMax, type ConsoleState } from "./console/state.ts";
import { buildCommit } from "./runtime-metrics.ts";
import { backupStream } from "./backup.ts";
import { readGcState, writeGcStateSync } from "../persist/gc-state.ts";
import { restoreBackup } from "../persist/backup.ts";
import { startRespServer, type RunningRespServer } from "../resp/server.ts";
import { createRespCommands } from "../resp/commands.ts";
import type { RespBackend, RespInfo } from "../resp/types.ts";
import { returnMemoryNow } from "./memory-return.ts";

/** Merge options of a WAL record replayed at start: this node's own log (one object, not one per record). */

/** How often the node checks whether a snapshot is due. */
const snapshotCheckIntervalMs = 1000;

export interface RunningNode {
  readonly id: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** The bound /metrics port, or null when metricsAddr is empty. */
  readonly metricsPort: number | null;
  /** The bound Redis protocol port, or null when respAddr is empty. */
  readonly respPort: number | null;
  readonly engine: Engine;
  /** The handlers every front door calls (gRPC's ClientService and AdminService; the Redis protocol's command table). */
  readonly client: ClientHandler;
  readonly admin: AdminHandler;
  /** Stops accepting, finishes in-flight requests, flushes the WAL, closes everything. */
  stop(): Promise<void>;
  /** Resolves once the node stopped (drained or fatal); the value is the exit code. */
  readonly stopped: Promise<number>;
}

/**
 * The node stopped because the cluster asked its replica to discard its data (src/cluster/gc.ts):
 * `runNode` moves the data folder aside and starts again, empty, in the same process.
 */
export const replicaResetExitCode = 75;
/**
 * How long a replica that must discard its data lets in-flight calls finish before it starts
 * again empty. Short: it takes no writes (quarantined), so only reads and peers' exchanges are
 * in flight, and their callers retry; waiting drainTimeoutMs (10 s) for connections kept open by
 * busy clients only kept the node out of the cluster (the chaos ci profile's "restore from an old
 * backup under load" agreed 11-15 s after the last write instead of within 5 s when the restored
 * copy predated a collection).
 */
export const replicaResetDrainMs = 500;

/** The node's wall clock; `clockOffsetMs` exists only for chaos tests. */
function makeClock(offsetMs: number): () => number {
  return offsetMs === 0 ? Date.now : () => Date.now() + offsetMs;
}

/** How a node starts beyond its config: `restoreFrom` is a backup file (`imdb node --restore`) to fill the empty data folder from. */
export interface StartOptions {
  restoreFrom?: string;
}

export async function startNode(cfg: NodeConfig, log: Logger, opts: StartOptions = {}): Promise<RunningNode> {
  // One process per folder, before anything in it is read or written.
  await mkdir(cfg.dataDir, { recursive: true });
  const folderLock = lockDataDir(cfg.dataDir, cfg.id);
  try {
    return await startLocked(cfg, log, folderLock, opts);
  } catch (err) {
    folderLock.release();
    throw err;
  }
}

async function startLocked(cfg: NodeConfig, log: Logger, folderLock: FolderLock, opts: StartOptions): Promise<RunningNode> {
  const now = makeClock(cfg.clockOffsetMs);
  const a = accel();
  const metrics = createNodeMetrics({ build: { version } });
  metrics.setAccel(a.choice);
  log.info("starting", { id: cfg.id, version, accel: describeAccel(a), durability: formatDurability(cfg.durability) });
  if (cfg.insecure) log.warn("running WITHOUT TLS (--insecure): any process that can reach the ports can read and write");
  // Before recovery: a taken port should cost a moment, not a WAL replay.
  await checkPortsFree([
    { what: "peerAddr", addr: cfg.peerAddr },
    { what: "clientAddr", addr: cfg.clientAddr },
    { what: "metricsAddr", addr: cfg.metricsAddr },
    { what: "respAddr", addr: cfg.respAddr },
  ]);

  let tls: TlsMaterial | null = null;
  if (!cfg.insecure) {
    tls = await loadTlsDir(cfg.tlsDir, cfg.id);
    validateNodeMaterial(tls, cfg.id);
    const own = tls.cert;
    const unnamed = addressedHosts(cfg).filter((h) => !certNamesHost(own, h));
    if (unnamed.length > 0) {
      log.warn("the node certificate does not name the host(s) this node is dialled by: clients checking hostnames will refuse it (add them with `imdb certs renew --add-hosts`)", { hosts: unnamed.join(","), certificate: join(cfg.tlsDir, `${cfg.id}.crt`) });
    }
  }
  const security = (): ServerSecurity => (tls ? { tls } : { insecure: true });

  if (opts.restoreFrom !== undefined) {
    // After the port checks, into an empty folder only, and without an identity file: the node starts as a new replica (persist/backup.ts).
    const r = await restoreBackup(opts.restoreFrom, cfg.dataDir, a.checksums);
    log.info("restored backup: starting as a new replica", { file: opts.restoreFrom, endLsn: r.endLsn, files: r.files.join(","), bytes: r.bytes });
  }

  let skewEvents = 0;
  const persistLog: PersistLog = (level, message, fields) => log[level](message, fields);
  if (folderLock.kind === "none") log.warn("data folder NOT locked: a second process could use it", { reason: folderLock.why });
  // This life's CRDT actor: a new epoch whenever the folder may have forgotten writes peers saw (persist/replica.ts).
  const identity = await openIdentity({
    dataDir: cfg.dataDir, nodeId: cfg.id, durability: cfg.durability, repair: cfg.repair, random: cryptoEpochBytes, nowMs: Date.now(), log: persistLog,
    restored: opts.restoreFrom !== undefined,
  });
  log.info("replica identity", { replica: identity.actor, epoch: identity.decision.kind === "keep" ? "kept" : `new (${identity.decision.reason})` });
  // deferChanges: digests and hash-tree updates happen once per key per anti-entropy look, not
  // once per write (ClusterHost hands the engine's reportChanges to the cluster).
  // hashSeed: a secret per process, so clients cannot choose keys that collide in the table.
  const [k0, k1] = crypto.getRandomValues(new Uint32Array(2));
  const engine = new Engine({
    actor: identity.actor, maxClockSkewMs: cfg.maxClockSkewMs, hlcRemoteAheadMsMax: cfg.hlcRemoteAheadMsMax, deferChanges: true, hashSeed: [k0 ?? 0, k1 ?? 0],
  });

  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((r) => (resolveStopped = r));
  let fatal: Error | null = null;
  let stopping = false;
  /** `imdb admin leave` stopped writes: they are refused while the last keys go and the deltas drain (ClusterHost.leave). */
  let leaving = false;
  /** `imdb admin leave` began: a partitioned node hands its keys over, and takes none from others. */
  let handingOff = false;
  /** The leave running, if one is (adminHandler.leave). */
  let leaveRunning: Promise<LeaveInfo> | null = null;
  /** The cluster asked this replica to discard its data (see onReplicaReset): stop with replicaResetExitCode. */
  let resetAsked = false;
  const servers: RunningServer[] = [];

  const onFatal = (err: Error, what = "fatal storage error"): void => {
    if (fatal) return;
    fatal = err;
    log.error(`${what}: stopping without acknowledging anything more`, { error: err.message });
    // Nothing more may be acknowledged: drop every connection at once.
    void Promise.all(servers.map((s) => s.shutdown(0))).finally(() => resolveStopped(1));
  };

  // Request ids of writes (safe retries), rebuilt by recovery from request records and snapshots.
  const requests = new RequestTable();
  const replay = new RequestReplay({
    table: requests,
    mergeDelta: (lsn, bytes, start, end) => {
      // This node's own log: a timestamp in it was accepted once and is not refused again.
      const err = engine.replayOwn(bytes, start, end, now());
      if (err !== null) throw new Error(`WAL record ${lsn}: ${err}`);
    },
    nowMs: now,
    warn: (message, fields) => log.warn(message, fields),
  });
  const recoverStart = performance.now();
  // Records loaded from a snapshot count as deleted since the start (their delete's time is not stored).
  const recoveryMs = now();
  const store: Store = await openStore({
    dataDir: join(cfg.dataDir),
    durability: cfg.durability,
    repair: cfg.repair,
    accel: { checksums: a.checksums, appender: metrics.instrumentAppender(a.appender) },
    log: persistLog,
    onFatal,
    walSegmentBytes: cfg.walSegmentBytesMax,
    sink: {
      snapshotEntry: (key, state) => {
        if (replay.snapshotEntry(key, state)) return;
        const r = engine.loadState(key, state.slice(), recoveryMs);
        if (!r.ok) throw new Error(`snapshot entry for key ${JSON.stringify(key.slice(0, 64))}: ${r.error.message}`);
      },
      walRecord: (lsn, body) => replay.walRecord(lsn, body),
      walRecordAt: (lsn, segment, start, end) => replay.walRecordAt(lsn, segment, start, end),
    },
  });
  replay.finish();
  requests.prune(now());
  // Recovery's garbage (segment images, decoded records) is large for big data sets; return it
  // before serving so the node's resident size reflects its data, not its start-up.
  returnMemoryNow(false);
  log.info("recovered", {
    keys: engine.keyCount,
    walRecords: store.recovery.walRecordsReplayed,
    requestIds: requests.size,
    ms: Math.round(performance.now() - recoverStart),
  });

  // Tombstone collection's stored state, and whether this life's data is of doubtful age: a new
  // epoch over data it did not start empty with (a restored copy, a repaired log, an unclean stop
  // under interval/none) may hold writes that deletes removed and members collected since.
  // Such a life takes no writes until every member has told it its collection generation.
  const { durable: gcDurable, quarantined } = gcStartState({ decision: identity.decision, stored: readGcState(cfg.dataDir), actor: identity.actor, hasData: engine.storedKeyCount > 0, durability: cfg.durability });
  writeGcStateSync(cfg.dataDir, gcDurable);
  if (quarantined) log.warn("this replica's data may be older than deletes the cluster has collected: it takes no writes until every member has answered", { generation: gcDurable.generation });
  // The sweep starts after the cluster host; until then it has no backlog.
  let sweepBehind = (): boolean => false;
  /** When the actor's epoch began: renewed by an eviction (ClusterHostOptions.renewActor). */
  let epochStartedAtMs = identity.epochStartedAtMs;
  const cluster = new ClusterHost({
    cfg, engine, store, log, now, tls,
    deferFullGc: () => sweepBehind(),
    renewActor: () => {
      epochStartedAtMs = Date.now();
      return renewEpochSync({ dataDir: cfg.dataDir, nodeId: cfg.id, random: cryptoEpochBytes, nowMs: epochStartedAtMs, log: persistLog });
    },
    onDuplicateId: (address) => onFatal(new Error(`node id ${cfg.id} is in use by a live process at ${address}`), "duplicate node id"),
    gc: { life: identity.actor, quarantined, durable: gcDurable, persist: (st) => writeGcStateSync(cfg.dataDir, st), clocks: a.clocks },
    onReplicaReset: () => {
      if (resetAsked) return;
      resetAsked = true;
      void stop(replicaResetDrainMs);
    },
  });
  const loadedCerts = certsOf(() => tls);
  metrics.setCollectors({
    members: () => cluster.members(),
    keys: () => engine.keyCountAt(now()),
    deletedKeys: () => engine.deletedKeyCount,
    tombstones: () => engine.tombstones(),
    collection: () => cluster.collection(),
    nowMs: now,
    clockSkewEvents: () => skewEvents + cluster.skewEvents(),
    hlcRemoteAheadRefused: () => cluster.counters.clockAheadRefused,
    peers: () => cluster.peerReplication(),
    antiEntropy: () => cluster.antiEntropyTotals(),
    actorsKnown: () => actorCount(),
    epochStartedAtSeconds: () => epochStartedAtMs / 1000,
    typeConflicts: () => cluster.counters.typeConflicts,
    forwarding: () => forwarder.stats,
    partitionsOwned: () => cluster.partitionsOwned(),
    evictions: () => cluster.evictions(),
    tlsCerts: loadedCerts,
    expiry: () => ({ keysWithDeadline: engine.deadlineKeyCount, expiredTotal: engine.expiredTotal, ...(sweepStats ?? { ticks: 0, secondsTotal: 0, lastTickSeconds: 0, maxTickSeconds: 0 }) }),
    respClients: () => respServer?.sessions().length ?? 0,
  });
  let sweepStats: ExpirySweepStats | null = null;

  const writes = new WritePath({ engine, store, cluster, requests, now });
  /** Admits a request, applies its ops and appends their deltas (with its id) in one synchronous step; answers once durable. */
  const applyOps = async (ops: readonly ClientOp[], requestId: Uint8Array | null): Promise<OpOutcome[]> => {
    if (fatal || stopping) throw new OpFailure("UNAVAILABLE", "the node is stopping");
    if (leaving && ops.some((op) => !isRead(op))) throw new OpFailure("UNAVAILABLE", "the node is leaving the cluster (try another node)");
    if (cluster.collection().quarantined && ops.some((op) => !isRead(op))) {
      throw new OpFailure("UNAVAILABLE", "this replica is rejoining: its data may be older than deletes the cluster collected, so it takes writes once every member has answered (try another node)");
    }
    return writes.apply(ops, requestId);
  };

  // Ops on keys this node does not own go to an owner (replicationFactor > 0; forward.ts).
  const forwarder = new Forwarder({
    route: (key, avoid) => cluster.route(key, avoid),
    local: applyOps,
    forward: (to, ops, requestId, deadlineMs) => cluster.forward(to, ops, requestId, deadlineMs),
    member: (id) => cluster.member(id),
    nowMs: () => performance.now(),
  });

  // A Scan lists the whole keyspace; partitioned, a share from each member (scan.ts).
  const scanner = new ClusterScan({
    selfId: cfg.id,
    listing: () => cluster.scanListing(),
    joining: () => cluster.joining,
    partitions: cfg.partitions,
    member: (id) => cluster.member(id),
    local: (q, keep) => {
      // keep given: a partitioned scan's share, with short cursors (scan.ts).
      const cursor = keep === undefined ? q.cursor : engine.fullCursor(q.cursor);
      const page = engine.listKeys(cursor, q.limit, q.prefix, q.type ?? undefined, now(), keep);
      // A cursor a compaction of the key table expired: the client restarts its scan.
      if (!page.ok) throw new OpFailure("INVALID_ARGUMENT", page.error.message);
      return keep === undefined ? page : { keys: page.keys, cursor: engine.shortCursor(page.cursor) };
    },
    remote: (to, q, segment, check, bits) => cluster.scanPart(to, q, segment, check, bits),
  });

  const startedMs = Date.now();
  const status = (): NodeStatus => {
    const members = cluster.members();
    return {
      nodeId: cfg.id,
      version,
      uptimeMs: Date.now() - startedMs,
      keys: engine.keyCountAt(now()),
      durability: formatDurability(cfg.durability),
      membersAlive: members.filter((m) => m.status === "alive").length,
      membersTotal: members.length,
      walLsn: BigInt(store.nextLsn) - 1n,
      accel: describeAccel(a),
    };
  };

  /** The client API as one front door serves it: the same write path for both, counted under its door. */
  const clientHandlerFor = (door: FrontDoor): ClientHandler => ({
    apply: async (op, requestId) => (await metrics.track([op], (ops) => forwarder.apply(ops, requestId), door))[0]!,
    batch: (ops, requestId) => metrics.track(ops, (o) => forwarder.apply(o, requestId), door),
    scan: (q) => scanner.scan(q),
    status,
    members: (): MemberView[] => cluster.members(),
    placementSettings: () => ({ replicationFactor: cfg.replicationFactor, partitions: cfg.partitions }),
  });
  const clientHandler = clientHandlerFor("grpc");

  let snapshotRunning: Promise<unknown> | null = null;
  let lastSnapshot: ConsoleState["snapshot"]["last"] = null;
  const snapshot = async () => {
    if (snapshotRunning) throw new OpFailure("FAILED_PRECONDITION", "a snapshot is already being taken");
    const t0 = performance.now();
    // The request table rides along (taken now, as the snapshot begins), so ids outlive the WAL segments it lets go.
    const requestChunks = requests.exportChunks();
    const run = store.snapshot(withRequestTable(engineEntries(engine), requestChunks));
    snapshotRunning = run;
    try {
      const w = await run;
      metrics.snapshotDone((performance.now() - t0) / 1000, w.bytes);
      lastSnapshot = { atMs: Date.now(), bytes: w.bytes, durationMs: Math.round(performance.now() - t0), keys: w.entries - requestChunks.length };
      return { path: w.file, lsn: BigInt(w.startLsn), bytes: w.bytes, keys: w.entries - requestChunks.length, durationMs: Math.round(performance.now() - t0) };
    } finally {
      snapshotRunning = null;
    }
  };
  const adminHandler: AdminHandler = {
    snapshot,
    // Like `consul leave`: announce the departure, then drain and exit 0.
    // One leave at a time: a second request (an operator whose CLI gave up waiting on a long
    // hand-off runs it again) waits for the one running and gets its outcome. Two running at
    // once would each restart the other's record of keys changed meanwhile, and one failing
    // would reopen writes under the other.
    leave: () => (leaveRunning ??= (async () => {
      // Once stopWrites is called no write is taken (a client's or a forwarded one): what was
      // acknowledged reaches the next owners and the peers before the departure is announced.
      handingOff = true;
      let info: LeaveInfo;
      try {
        info = await cluster.leave(() => (leaving = true));
      } catch (err) {
        // The hand-off was refused or did not finish (cluster-host.ts): nothing was announced.
        leaving = false;
        handingOff = false;
        leaveRunning = null;
        throw err;
      }
      setTimeout(() => void stop(), 50);
      return info;
    })()),
    removeMember: (id) => cluster.removeMember(id),
    backup: () => {
      if (fatal || stopping) throw new OpFailure("UNAVAILABLE", "the node is stopping");
      return backupStream({
        dataDir: cfg.dataDir, sums: a.checksums, nextLsn: () => store.nextLsn, sync: () => store.sync(), generation: () => cluster.collection().generation,
        // A fresh snapshot of its own, after any one in progress.
        snapshot: async () => {
          while (snapshotRunning) await snapshotRunning.catch(() => undefined);
          const s = await snapshot();
          return { file: s.path, startLsn: Number(s.lsn) };
        },
      });
    },
    stats: () =>
      Object.entries({ ...status(), replica: actorName(engine.actor), skewEvents: skewEvents + cluster.skewEvents(), hlcRemoteAheadRefused: cluster.counters.clockAheadRefused, requestIds: requests.size, ...writes.stats, ...cluster.dropCounters() }).map(([name, value]) => ({ name, value: String(value) })),
  };
  const peerHandler: PeerHandler = {
    exchange: (fromId, payload) => cluster.receive(fromId, payload),
    // Applied here whether or not this node owns the keys by its own view (one hop, never again:
    // two members whose views differ for a moment must not bounce a request between them).
    forward: (_fromId, ops, requestId) => {
      // A node that has not heard the cluster's member list yet takes no writes (it could not
      // tell its partitions' other owners): the sender answers UNAVAILABLE and the client retries.
      if (cluster.joining) throw new OpFailure("UNAVAILABLE", `${cfg.id} has not joined the cluster yet; retry later`);
      return applyOps(ops, requestId);
    },
    scanPart: (_fromId, q, partitions) => scanner.part(q, partitions),
    handOff: (fromId, entries, stamp) => {
      if (fatal || stopping) throw new OpFailure("UNAVAILABLE", "the node is stopping");
      // A node leaving too has planned its own hand-off already: keys taken now would leave with
      // it. The sender retries, and its leave fails if this one is gone for good (leave one at a time).
      if (handingOff) throw new OpFailure("UNAVAILABLE", `${cfg.id} is leaving the cluster too: it takes no keys (leave nodes one at a time)`);
      return cluster.handOffReceive(fromId, entries, stamp);
    },
  };

  const onInternalError = (method: string, err: unknown): void => log.error("internal error", { method, error: String(err) });
  const peerServer = await startPeerServer({ addr: cfg.peerAddr, security: security(), nodeId: cfg.id, handler: peerHandler, onInternalError });
  servers.push(peerServer);
  const clientServer = await startClientServer({ addr: cfg.clientAddr, security: security(), handler: clientHandler, admin: adminHandler, onInternalError });
  servers.push(clientServer);
  let respServer: RunningRespServer | null = null;
  if (cfg.respAddr !== "") {
    const backend: RespBackend = {
      client: clientHandlerFor("resp"),
      admin: adminHandler,
      info: () => respInfo(),
      sessions: () => respServer?.sessions() ?? [],
      setMaxClients: (n) => {
        if (!Number.isSafeInteger(n) || n < 1 || n > respMaxClientsMax) return `maxclients must be an integer 1..${respMaxClientsMax}`;
        respServer?.setMaxClients(n);
        return null;
      },
      onInternalError: (command, err) => onInternalError(`resp ${command}`, err),
    };
    const respInfo = (): RespInfo => {
      const members = cluster.members();
      const lag = new Map(cluster.peerReplication().map((p) => [p.peer, p]));
      return {
        nodeId: cfg.id,
        version,
        uptimeSeconds: Math.floor((Date.now() - startedMs) / 1000),
        tcpPort: respServer?.port ?? 0,
        durability: formatDurability(cfg.durability),
        usedMemoryBytes: process.memoryUsage().rss,
        keys: engine.keyCountAt(now()),
        keysWithDeadline: engine.deadlineKeyCount,
        expiredTotal: engine.expiredTotal,
        peers: members.filter((m) => m.id !== cfg.id).map((m) => ({
          id: m.id, address: m.address, status: m.status, lagDeltas: lag.get(m.id)?.backlog ?? 0, conflicts: 0,
        })),
        extra: [
          { name: "replica", value: actorName(engine.actor) },
          { name: "members_alive", value: String(members.filter((m) => m.status === "alive").length) },
          { name: "type_conflicts", value: String(cluster.counters.typeConflicts) },
          { name: "wal_lsn", value: String(BigInt(store.nextLsn) - 1n) },
          { name: "accel", value: describeAccel(a) },
        ],
        maxClients: respServer?.maxClients ?? cfg.respMaxClients,
      };
    };
    respServer = await startRespServer({
      addr: cfg.respAddr,
      security: security(),
      commands: createRespCommands(backend),
      maxClients: cfg.respMaxClients,
      metrics: { commandDone: (command, st) => metrics.respCommandDone(command, st), connectionRefused: (reason) => metrics.respConnectionRefused(reason) },
      onInternalError: (command, err) => onInternalError(`resp ${command}`, err),
    });
    servers.push(respServer);
  }
  cluster.start(peerServer.port);
  // Expiry's background half: executes deadlines that have come, bounded per tick (node/expiry-sweep.ts).
  const sweep = new ExpirySweep({
    engine, now,
    commit: (deltas) => writes.commitOwn(deltas),
    paused: () => stopping || fatal !== null || cluster.collection().quarantined,
    onError: (err) => log.warn("expiry sweep: writing expired keys' deltas failed", { error: String(err) }),
  });
  sweep.start();
  sweepStats = sweep.stats;
  sweepBehind = () => sweep.behind;
  const consoleState = (): ConsoleState => ({
    node: { id: cfg.id, version, commit: buildCommit, uptimeSeconds: (Date.now() - startedMs) / 1000, durability: formatDurability(cfg.durability), accel: describeAccel(a) },
    atMs: Date.now(),
    members: cluster.members().slice(0, consoleMembersMax),
    peers: cluster.peerReplication().slice(0, consoleMembersMax),
    opsTotal: metrics.opsTotal(),
    keys: engine.keyCountAt(now()),
    keysDeleted: engine.deletedKeyCount,
    wal: { nextLsn: Number(store.nextLsn), bytesSinceSnapshot: store.walBytesSinceSnapshot },
    snapshot: { running: snapshotRunning !== null, last: lastSnapshot },
    clock: { skewEvents: skewEvents + cluster.skewEvents(), remoteAheadRefused: cluster.counters.clockAheadRefused, maxClockSkewMs: cfg.maxClockSkewMs },
    certs: [...loadedCerts()],
  });
  const metricsServer = cfg.metricsAddr === "" ? null : await startMetricsServer(cfg.metricsAddr, metrics.registry, { healthy: () => !stopping && fatal === null, console: consoleState });

  const scheduler = new SnapshotScheduler({ intervalMs: cfg.snapshotIntervalMs, walBytesMax: cfg.snapshotWalBytes }, Date.now());
  const snapshotTimer = setInterval(() => {
    if (fatal || stopping || snapshotRunning || !scheduler.due(Date.now(), store.walBytesSinceSnapshot)) return;
    scheduler.started(Date.now());
    void snapshot()
      .catch((err: unknown) => log.warn("snapshot failed; retrying at the next trigger", { error: String(err) }))
      .finally(() => scheduler.finished());
  }, snapshotCheckIntervalMs);
  snapshotTimer.unref();

  /** drainMs: how long in-flight calls may finish (drainTimeoutMs on SIGTERM; short for a replica reset). */
  const stop = async (drainMs = cfg.drainTimeoutMs): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(snapshotTimer);
    await sweep.stop();
    clientServer.setServing(false);
    await cluster.stop();
    await Promise.all(servers.map((s) => s.shutdown(drainMs)));
    if (snapshotRunning) await snapshotRunning.catch(() => undefined);
    if (!fatal) await store.sync();
    await store.close();
    // After the final fsync: the next start may keep this epoch (see persist/replica.ts).
    if (!fatal) await markCleanStop(cfg.dataDir).catch((err: unknown) => log.warn("could not record the clean stop; under interval/none the next start begins a new replica epoch", { error: String(err) }));
    folderLock.release();
    await metricsServer?.close();
    log.info("stopped", { id: cfg.id });
    resolveStopped(fatal ? 1 : resetAsked ? replicaResetExitCode : 0);
  };

  const reloadTls = async (): Promise<void> => {
    if (cfg.insecure) return;
    const next = await loadTlsDir(cfg.tlsDir, cfg.id);
    // Refuse a broken or foreign certificate before swapping: the old one stays in service.
    validateNodeMaterial(next, cfg.id);
    // Nor one that drops a name the node is dialled by (a renewal without its --hosts).
    const lost = tls === null ? [] : namesLost(tls.cert, next.cert, addressedHosts(cfg));
    if (lost.length > 0) {
      throw new Error(`the new certificate does not name ${lost.join(", ")}, which the current one does and this node is dialled by (advertiseAddr/peerAddr, clientAddr, respAddr): clients would fail hostname checks; renew with \`imdb certs renew\`, which keeps the names`);
    }
    tls = next;
    for (const s of servers) s.reloadTls(next);
    cluster.reloadTls(next);
  };

  return {
    id: cfg.id,
    clientPort: clientServer.port,
    peerPort: peerServer.port,
    metricsPort: metricsServer?.port ?? null,
    respPort: respServer?.port ?? null,
    engine,
    client: clientHandler,
    admin: adminHandler,
    stop,
    stopped,
    reloadTls,
  } as RunningNode & { reloadTls: () => Promise<void> };
}

/** The engine's keys and states as a snapshot source, in bounded chunks, while writes go on. */
async function* engineEntries(engine: Engine): AsyncGenerator<readonly [string, Uint8Array]> {
  const scan = engine.scan();
  while (!scan.done) {
    for (const item of scan.next()) yield [item.key, item.state] as const;
    // Let requests run between chunks: the snapshot is fuzzy, writes continue meanwhile.
    await new Promise<void>((r) => setImmediate(r));
  }
}

/** `imdb node`: start, print one ready line, and live until SIGTERM/SIGINT (exit 0) or a fatal error (exit 1). */
export async function runNode(config: NodeConfig, opts: StartOptions = {}): Promise<never> {
  let cfg = config;
  const log = createLogger({ format: cfg.logFormat, level: cfg.logLevel, fields: {} });
  let node: RunningNode & { reloadTls?: () => Promise<void> };
  const start = async (o: StartOptions): Promise<void> => {
    try {
      node = await startNode(cfg, log, o);
    } catch (err) {
      log.error("cannot start", { error: err instanceof Error ? err.message : String(err) });
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    }
  };
  await start(opts);
  const onSignal = (sig: string) => {
    log.info("draining", { signal: sig });
    signalled = true;
    void node.stop();
  };
  let signalled = false;
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGHUP", () => {
    void node.reloadTls?.().then(
      () => log.info("certificates reloaded"),
      (err: unknown) => log.error("certificate reload failed; keeping the old ones", { error: String(err) }),
    );
  });
  const [host] = cfg.clientAddr.split(/:(?=\d+$)/);
  const [peerHost] = cfg.peerAddr.split(/:(?=\d+$)/);
  const [metricsHost] = cfg.metricsAddr.split(/:(?=\d+$)/);
  const [respHost] = cfg.respAddr.split(/:(?=\d+$)/);
  for (;;) {
    const metricsPart = node!.metricsPort === null ? "" : ` metrics ${metricsHost}:${node!.metricsPort}`;
    const respPart = node!.respPort === null ? "" : ` resp ${respHost}:${node!.respPort}`;
    console.log(`imdb node ${cfg.id} ready: client ${host}:${node!.clientPort} peer ${peerHost}:${node!.peerPort}${metricsPart}${respPart}`);
    const code = await node!.stopped;
    if (code !== replicaResetExitCode || signalled) process.exit(code === replicaResetExitCode ? 0 : code);
    // Rejoin as a new, empty replica; the old data stays beside the folder for the operator.
    const kept = await discardDataDir(cfg.dataDir);
    log.warn("replica data moved aside; starting again as a new, empty replica", { movedTo: kept });
    // On the same ports: peers, clients and proxies know this node by them (a port 0 in the
    // config was resolved at the first start).
    cfg = { ...cfg, clientAddr: `${host}:${node!.clientPort}`, peerAddr: `${peerHost}:${node!.peerPort}`, ...(node!.metricsPort === null ? {} : { metricsAddr: `${metricsHost}:${node!.metricsPort}` }), ...(node!.respPort === null ? {} : { respAddr: `${respHost}:${node!.respPort}` }) };
    await start({});
  }
}

/** Renames the data folder to `<folder>.discarded-<time>` and creates it again, empty; returns the new name. */
async function discardDataDir(dataDir: string): Promise<string> {
  const to = `${dataDir.replace(/\/+$/, "")}.discarded-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  await rename(dataDir, to);
  await mkdir(dataDir, { recursive: true });
  return to;
}
