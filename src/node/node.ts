// The composition root: config -> accel -> recovery + WAL -> engine -> gRPC servers -> cluster,
// and the lifecycle around them (ready line, SIGTERM drain, SIGHUP certificate reload, fatal stop).
import { join } from "node:path";
import { accel, describeAccel } from "../accel/index.ts";
import { formatDurability, type NodeConfig } from "../config/config.ts";
import { Engine, type ManyResult } from "../engine/index.ts";
import { openStore, SnapshotScheduler, type PersistLog, type Store } from "../persist/index.ts";
import type { AdminHandler, ClientHandler, ClientOp, MemberView, NodeStatus, OpOutcome, PeerHandler } from "../transport/api.ts";
import { OpFailure } from "../transport/api.ts";
import { startClientServer, startPeerServer, type RunningServer, type ServerSecurity } from "../transport/server.ts";
import { loadTlsDir, validateNodeMaterial, type TlsMaterial } from "../transport/tls.ts";
import { version } from "../cli/self.ts";
import { createLogger, type Logger } from "./log.ts";
import { outcomeOf, toManyOp } from "./ops.ts";
import { ClusterHost } from "./cluster-host.ts";
import { createNodeMetrics } from "./metrics.ts";
import { startMetricsServer } from "./metrics-server.ts";

/** How often the node checks whether a snapshot is due. */
const snapshotCheckIntervalMs = 1000;

export interface RunningNode {
  readonly id: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** The bound /metrics port, or null when metricsAddr is empty. */
  readonly metricsPort: number | null;
  readonly engine: Engine;
  /** Stops accepting, finishes in-flight requests, flushes the WAL, closes everything. */
  stop(): Promise<void>;
  /** Resolves once the node stopped (drained or fatal); the value is the exit code. */
  readonly stopped: Promise<number>;
}

/** The node's wall clock; `clockOffsetMs` exists only for chaos tests. */
function makeClock(offsetMs: number): () => number {
  return offsetMs === 0 ? Date.now : () => Date.now() + offsetMs;
}

export async function startNode(cfg: NodeConfig, log: Logger): Promise<RunningNode> {
  const now = makeClock(cfg.clockOffsetMs);
  const a = accel();
  const metrics = createNodeMetrics();
  metrics.setAccel(a.choice);
  log.info("starting", { id: cfg.id, version, accel: describeAccel(a), durability: formatDurability(cfg.durability) });
  if (cfg.insecure) log.warn("running WITHOUT TLS (--insecure): any process that can reach the ports can read and write");

  let tls: TlsMaterial | null = null;
  if (!cfg.insecure) {
    tls = await loadTlsDir(cfg.tlsDir, cfg.id);
    validateNodeMaterial(tls, cfg.id);
  }
  const security = (): ServerSecurity => (tls ? { tls } : { insecure: true });

  let skewEvents = 0;
  // deferChanges: digests and hash-tree updates happen once per key per anti-entropy look, not
  // once per write (ClusterHost hands the engine's reportChanges to the cluster).
  // hashSeed: a secret per process, so clients cannot choose keys that collide in the table.
  const [k0, k1] = crypto.getRandomValues(new Uint32Array(2));
  const engine = new Engine({ actor: cfg.id, maxClockSkewMs: cfg.maxClockSkewMs, deferChanges: true, hashSeed: [k0 ?? 0, k1 ?? 0] });
  const persistLog: PersistLog = (level, message, fields) => log[level](message, fields);

  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((r) => (resolveStopped = r));
  let fatal: Error | null = null;
  let stopping = false;
  const servers: RunningServer[] = [];

  const onFatal = (err: Error): void => {
    if (fatal) return;
    fatal = err;
    log.error("fatal storage error: stopping without acknowledging anything more", { error: err.message });
    // Nothing more may be acknowledged: drop every connection at once.
    void Promise.all(servers.map((s) => s.shutdown(0))).finally(() => resolveStopped(1));
  };

  const recoverStart = performance.now();
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
        const r = engine.loadState(key, state.slice());
        if (!r.ok) throw new Error(`snapshot entry for key ${JSON.stringify(key.slice(0, 64))}: ${r.error.message}`);
      },
      walRecord: (lsn, body) => {
        const r = engine.mergeDelta(body, now());
        if (!r.ok) throw new Error(`WAL record ${lsn}: ${r.error.message}`);
      },
    },
  });
  // Recovery's garbage (segment images, decoded records) is large for big data sets; return it
  // before serving so the node's resident size reflects its data, not its start-up.
  Bun.gc(true);
  log.info("recovered", {
    keys: engine.keyCount,
    walRecords: store.recovery.walRecordsReplayed,
    ms: Math.round(performance.now() - recoverStart),
  });

  const cluster = new ClusterHost({ cfg, engine, store, log, now, tls });
  metrics.setCollectors({
    members: () => cluster.members(),
    keys: () => engine.keyCount,
    clockSkewEvents: () => skewEvents + cluster.skewEvents(),
    peers: () => cluster.peerReplication(),
    antiEntropy: () => cluster.antiEntropyTotals(),
  });

  /** Applies ops to the engine and appends their deltas in one synchronous step; answers after the WAL says durable. */
  const applyOps = async (ops: readonly ClientOp[]): Promise<OpOutcome[]> => {
    if (fatal || stopping) throw new OpFailure("UNAVAILABLE", "the node is stopping");
    const { results, deltas } = engine.applyMany(ops.map(toManyOp), now());
    const outcomes = new Array<OpOutcome>(ops.length);
    for (let k = 0; k < ops.length; k++) outcomes[k] = outcomeOf(ops[k] as ClientOp, results[k] as ManyResult);
    if (deltas.length > 0) {
      const appended = store.append(deltas);
      cluster.localAppend(appended);
      try {
        await appended;
      } catch (err) {
        // The WAL failed: these writes are not acknowledged (onFatal stops the node).
        throw new OpFailure("UNAVAILABLE", `write not durable: ${(err as Error).message}`);
      }
      // Peers hear of a write only once it is as durable as the node promises. A delta sent
      // earlier could outlive a SIGKILL that lost it here: this node would restart with its
      // own row behind what peers hold, reuse those counts for new acknowledged increments,
      // and the join (a max per row) would swallow them.
      cluster.broadcast(deltas);
    } else {
      // A read-only request may show other requests' writes that are not yet in the WAL. As
      // Redis flushes replies only after its AOF write, answer once those appends settled
      // (at most one WAL round), so a value a client saw cannot vanish in a SIGKILL.
      const pending = cluster.settled();
      if (pending !== null) await pending;
    }
    return outcomes;
  };

  const startedMs = Date.now();
  const status = (): NodeStatus => {
    const members = cluster.members();
    return {
      nodeId: cfg.id,
      version,
      uptimeMs: Date.now() - startedMs,
      keys: engine.keyCount,
      durability: formatDurability(cfg.durability),
      membersAlive: members.filter((m) => m.status === "alive").length,
      membersTotal: members.length,
      walLsn: BigInt(store.nextLsn) - 1n,
      accel: describeAccel(a),
    };
  };

  const clientHandler: ClientHandler = {
    apply: async (op) => (await metrics.track([op], applyOps))[0]!,
    batch: (ops) => metrics.track(ops, applyOps),
    status,
    members: (): MemberView[] => cluster.members(),
  };

  let snapshotRunning: Promise<unknown> | null = null;
  const snapshot = async () => {
    if (snapshotRunning) throw new OpFailure("FAILED_PRECONDITION", "a snapshot is already being taken");
    const t0 = performance.now();
    const run = store.snapshot(engineEntries(engine));
    snapshotRunning = run;
    try {
      const w = await run;
      metrics.snapshotDone((performance.now() - t0) / 1000, w.bytes);
      return { path: w.file, lsn: BigInt(w.startLsn), bytes: w.bytes, keys: w.entries, durationMs: Math.round(performance.now() - t0) };
    } finally {
      snapshotRunning = null;
    }
  };
  const adminHandler: AdminHandler = {
    snapshot,
    // Like `consul leave`: announce the departure, then drain and exit 0.
    leave: async () => {
      await cluster.leave();
      setTimeout(() => void stop(), 50);
    },
    stats: () =>
      Object.entries({ ...status(), skewEvents: skewEvents + cluster.skewEvents() }).map(([name, value]) => ({ name, value: String(value) })),
  };
  const peerHandler: PeerHandler = { exchange: (fromId, payload) => cluster.receive(fromId, payload) };

  const onInternalError = (method: string, err: unknown): void => log.error("internal error", { method, error: String(err) });
  const peerServer = await startPeerServer({ addr: cfg.peerAddr, security: security(), nodeId: cfg.id, handler: peerHandler, onInternalError });
  servers.push(peerServer);
  const clientServer = await startClientServer({ addr: cfg.clientAddr, security: security(), handler: clientHandler, admin: adminHandler, onInternalError });
  servers.push(clientServer);
  cluster.start(peerServer.port);
  const metricsServer = cfg.metricsAddr === "" ? null : await startMetricsServer(cfg.metricsAddr, metrics.registry, { healthy: () => !stopping && fatal === null });

  const scheduler = new SnapshotScheduler({ intervalMs: cfg.snapshotIntervalMs, walBytesMax: cfg.snapshotWalBytes }, Date.now());
  const snapshotTimer = setInterval(() => {
    if (fatal || stopping || snapshotRunning || !scheduler.due(Date.now(), store.walBytesSinceSnapshot)) return;
    scheduler.started(Date.now());
    void snapshot()
      .catch((err: unknown) => log.warn("snapshot failed; retrying at the next trigger", { error: String(err) }))
      .finally(() => scheduler.finished());
  }, snapshotCheckIntervalMs);
  snapshotTimer.unref();

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(snapshotTimer);
    clientServer.setServing(false);
    await cluster.stop();
    await Promise.all(servers.map((s) => s.shutdown(cfg.drainTimeoutMs)));
    if (snapshotRunning) await snapshotRunning.catch(() => undefined);
    if (!fatal) await store.sync();
    await store.close();
    await metricsServer?.close();
    log.info("stopped", { id: cfg.id });
    resolveStopped(fatal ? 1 : 0);
  };

  const reloadTls = async (): Promise<void> => {
    if (cfg.insecure) return;
    const next = await loadTlsDir(cfg.tlsDir, cfg.id);
    // Refuse a broken or foreign certificate before swapping: the old one stays in service.
    validateNodeMaterial(next, cfg.id);
    tls = next;
    for (const s of servers) s.reloadTls(next);
    cluster.reloadTls(next);
  };

  return {
    id: cfg.id,
    clientPort: clientServer.port,
    peerPort: peerServer.port,
    metricsPort: metricsServer?.port ?? null,
    engine,
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
export async function runNode(cfg: NodeConfig): Promise<never> {
  const log = createLogger({ format: cfg.logFormat, level: cfg.logLevel, fields: {} });
  let node: RunningNode & { reloadTls?: () => Promise<void> };
  try {
    node = await startNode(cfg, log);
  } catch (err) {
    log.error("cannot start", { error: err instanceof Error ? err.message : String(err) });
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
  const onSignal = (sig: string) => {
    log.info("draining", { signal: sig });
    void node.stop();
  };
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
  const metricsPart = node.metricsPort === null ? "" : ` metrics ${metricsHost}:${node.metricsPort}`;
  console.log(`imdb node ${cfg.id} ready: client ${host}:${node.clientPort} peer ${peerHost}:${node.peerPort}${metricsPart}`);
  const code = await node.stopped;
  process.exit(code);
}
