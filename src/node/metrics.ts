// Prometheus metrics for one node: one private prom-client Registry holding every imdb_* family,
// with hot-path methods that cost a few array/number updates and gauges pulled at scrape time.
//
// Hot path: opDone/opsCounted/track update plain numbers (materialised into prom-client only
// when /metrics is scraped) plus one histogram observation per request. Members, per-peer
// backlog and lag, anti-entropy totals and clock-skew counts are read from callbacks
// (setCollectors) during a scrape, so nothing on the request path pays for them.

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { AccelChoice, AccelPath, AppendStats, CountedAppender, CountedDurableFile } from "../accel/index.ts";
import { recordHeaderBytes, walMagic } from "../persist/format.ts";
import { OpFailure, type ClientOp, type OpOutcome } from "../transport/api.ts";
import { buildCommit, registerRuntimeMetrics, type BuildInfo } from "./runtime-metrics.ts";

/** Distinct (op, status) pairs counted; further pairs are counted under op="other". */
export const opLabelPairsMax = 128;
/** Distinct request labels in the latency histogram; further ones are observed as "other". */
export const requestLabelsMax = 32;
/** Peers exported per scrape (the rest are left out: the series count stays bounded). */
export const peerSeriesMax = 256;
/** Length of a label value taken from outside (peer ids, op names); longer ones are cut. */
export const labelValueCharsMax = 64;

/** Which front door a client request came through: gRPC (ClientService) or the Redis protocol. ONLY APPEND. */
export type FrontDoor = "grpc" | "resp";

export const memberStates = ["alive", "suspect", "dead", "left"] as const;
export const accelPrimitives = ["checksum", "clocks", "append"] as const satisfies readonly (keyof AccelChoice)[];
const accelPaths: readonly AccelPath[] = ["native", "ts"];

/** Latency buckets (seconds) for client requests: 100 us .. 2.5 s. */
export const opDurationBucketsSeconds = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** fdatasync latency buckets (seconds): 50 us .. 1 s. */
export const fsyncDurationBucketsSeconds = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** WAL records made durable by one fdatasync. */
export const groupRecordsBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384];
/** Snapshot durations (seconds): 10 ms .. 10 min. */
export const snapshotDurationBucketsSeconds = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export interface PeerReplication {
  peer: string;
  /** Deltas queued for the peer and not yet acknowledged. */
  backlog: number;
  /** Age of the oldest unacknowledged delta, in seconds (0 when the backlog is empty). */
  lagSeconds: number;
  /** The peer's member state (alive, suspect, dead, left), when known. */
  status?: string;
  /** State bytes anti-entropy shipped to and from the peer since start (hand-offs and repairs). */
  stateBytesSent?: number;
  stateBytesReceived?: number;
}

/** Cumulative totals since the node started (pulled at scrape time). */
export interface AntiEntropyTotals {
  rounds: number;
  bytesSent: number;
  bytesReceived: number;
  keysRepaired: number;
}

/** Read at scrape time; each is optional (a missing one leaves its family empty or at 0). */
export interface MetricsCollectors {
  members?: () => readonly { status: string }[];
  peers?: () => readonly PeerReplication[];
  antiEntropy?: () => AntiEntropyTotals;
  /** Cumulative clock-skew events (remote HLC timestamps too far ahead). */
  clockSkewEvents?: () => number;
  /** Cumulative peer LWW writes refused for a timestamp beyond hlcRemoteAheadMsMax. */
  hlcRemoteAheadRefused?: () => number;
  /** Cumulative type conflicts merged here (a key came to hold a second type). */
  typeConflicts?: () => number;
  /** Ops forwarded to their keys' owners (src/node/forward.ts). */
  forwarding?: () => { opsForwarded: number; opsForwardFailed: number; opsNoOwner: number; opsOverloaded: number; opsRetried: number; opsUnsettled: number };
  /** Partition replicas this node owns (every partition when every member holds every key). */
  partitionsOwned?: () => number;
  /** Keys and partitions dropped because their owners hold them (Cluster.evictStrays). */
  evictions?: () => { keys: number; partitions: number };
  keys?: () => number;
  deletedKeys?: () => number;
  /** Deleted keys' records not collected yet (Engine.tombstones); oldestMs on the node's wall clock. */
  tombstones?: () => { count: number; bytes: number; oldestMs: number | null };
  /** Tombstone collection (src/cluster/gc.ts). */
  collection?: () => { quarantined: boolean; generation: number; keysCollected: number; roundsCompleted: number; roundsAbandoned: number; statesDroppedAsStale: number };
  /** The node's wall clock (ms), for ages. */
  nowMs?: () => number;
  /** Actor ids this process has interned (src/crdt/actors.ts): grows by one per replica epoch of any node. */
  actorsKnown?: () => number;
  /** When this node's replica epoch began (Unix seconds). */
  epochStartedAtSeconds?: () => number;
  /** The certificates the node serves with now (its own and the CA's), with their expiry. */
  tlsCerts?: () => readonly LoadedCert[];
  /** Expiry (Engine deadline counts, node/expiry-sweep.ts stats). */
  expiry?: () => { keysWithDeadline: number; expiredTotal: number; ticks: number; secondsTotal: number; lastTickSeconds: number; maxTickSeconds: number };
  /** Redis protocol connections open now. */
  respClients?: () => number;
}

/** A loaded certificate: `cert` says which (node, ca), `subject` its CN. */
export interface LoadedCert {
  cert: string;
  subject: string;
  /** notAfter, Unix seconds. */
  notAfterSeconds: number;
}

/** Certificates exported per scrape (a CA bundle could be long). */
export const certSeriesMax = 16;

export interface NodeMetrics {
  readonly registry: Registry;
  /** One op finished with `status` ("OK" or a gRPC status name) after `seconds`. */
  opDone(op: string, status: string, seconds: number, door?: FrontDoor): void;
  /** Counts `n` ops without a latency (e.g. the ops inside one Batch). */
  opsCounted(op: string, status: string, n: number, door?: FrontDoor): void;
  /** Every op counted since start, whatever its outcome (the console's ops/s). */
  opsTotal(): number;
  /**
   * Runs `run(ops)`, counts each op by kind and outcome and observes the request latency under
   * the op's kind (one op) or "batch" (several). A thrown OpFailure counts as its code, anything
   * else as INTERNAL; the error is rethrown. `door` (default grpc) labels both.
   */
  track(ops: readonly ClientOp[], run: (ops: readonly ClientOp[]) => Promise<OpOutcome[]>, door?: FrontDoor): Promise<OpOutcome[]>;
  /** One Redis protocol command answered: its name (lower case) and "OK" or its error's code word (ERR, WRONGTYPE). */
  respCommandDone(command: string, status: string): void;
  /** A Redis protocol connection refused or closed by the node, and why. */
  respConnectionRefused(reason: string): void;
  /** One fdatasync made `records` WAL records durable and took `seconds`. */
  walSynced(records: number, seconds: number): void;
  /** A snapshot of `bytes` bytes was written in `seconds`. */
  snapshotDone(seconds: number, bytes: number): void;
  antiEntropyRound(): void;
  antiEntropyBytes(direction: "sent" | "received", bytes: number): void;
  antiEntropyRepaired(keys: number): void;
  clockSkewEvent(count?: number): void;
  /** Marks which path serves each accel primitive (1 active, 0 not). */
  setAccel(choice: AccelChoice): void;
  /** Replaces the scrape-time callbacks. */
  setCollectors(collectors: MetricsCollectors): void;
  /**
   * Wraps the WAL's appender so its fdatasyncs (times from the accel file's AppendStats) and
   * group-commit rounds (records answered together) reach the two WAL histograms. Interim until
   * persist reports walSynced itself.
   */
  instrumentAppender(inner: CountedAppender): CountedAppender;
}

export interface NodeMetricsOptions {
  /** Process and runtime metrics (CPU, memory, JS heap, event loop; runtime-metrics.ts). Default true. */
  processMetrics?: boolean;
  /** What imdb_build_info reports. Default: version "unknown", the commit the binary was built from. */
  build?: Partial<BuildInfo>;
  /** Monotonic clock in ms for request latency. Default performance.now. */
  nowMs?: () => number;
}

function cut(s: string): string {
  return s.length > labelValueCharsMax ? s.slice(0, labelValueCharsMax) : s;
}

const nonNegative = (n: number): number => (Number.isFinite(n) && n > 0 ? n : 0);

/** One (op, door) series of a RequestHistogram: per-bucket counts (the last is +Inf), sum and count. */
interface HistogramSeries {
  readonly op: string;
  readonly door: string;
  readonly counts: Float64Array;
  sum: number;
  count: number;
  observe(seconds: number): void;
}

/**
 * The request latency histogram, observed once per request on the hot path: a bucket search
 * and three number updates per observation (prom-client's Histogram hashes its label values on
 * every observe, about a microsecond a request). Registered with the prom-client Registry as a
 * metric of its own, exported in the same text format (cumulative le buckets, _sum, _count).
 */
class RequestHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly all: HistogramSeries[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  series(op: string, door: string): HistogramSeries {
    const existing = this.all.find((x) => x.op === op && x.door === door);
    if (existing !== undefined) return existing;
    const bounds = this.bounds;
    const s: HistogramSeries = {
      op, door, counts: new Float64Array(bounds.length + 1), sum: 0, count: 0,
      observe(seconds: number): void {
        let i = 0;
        while (i < bounds.length && seconds > (bounds[i] as number)) i++;
        s.counts[i]! += 1;
        s.sum += seconds;
        s.count += 1;
      },
    };
    this.all.push(s);
    return s;
  }

  reset(): void {
    for (const s of this.all) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }

  /** What prom-client's Registry formats: the cumulative buckets, the sum and the count of each series. */
  get(): { name: string; help: string; type: string; aggregator: string; values: { metricName: string; labels: Record<string, string | number>; value: number }[] } {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const s of this.all) {
      let cumulative = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        cumulative += s.counts[i] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { op: s.op, door: s.door, le: i < this.bounds.length ? (this.bounds[i] as number) : "+Inf" }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels: { op: s.op, door: s.door }, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: { op: s.op, door: s.door }, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** Counts kept as plain numbers on the hot path, copied into a prom-client Counter at scrape. */
class PairCounts {
  private readonly counts = new Map<string, { op: string; status: string; door: FrontDoor; n: number }>();
  /**
   * The same entries by door, op and status: a lookup without building a key string (the Redis
   * front door counts every command here, and the concatenated key showed in its profiles).
   */
  private readonly index = new Map<FrontDoor, Map<string, Map<string, { n: number }>>>();
  /** Counted under op="other", status="other" once opLabelPairsMax pairs exist. */
  private overflow = 0;
  add(op: string, status: string, n: number, door: FrontDoor = "grpc"): void {
    const known = this.index.get(door)?.get(op)?.get(status);
    if (known !== undefined) {
      known.n += n;
      return;
    }
    if (this.counts.size >= opLabelPairsMax) {
      this.overflow += n;
      return;
    }
    const e = { op: cut(op), status: cut(status), door, n };
    this.counts.set(op + "\u0000" + status + "\u0000" + door, e);
    let byOp = this.index.get(door);
    if (byOp === undefined) this.index.set(door, (byOp = new Map()));
    let byStatus = byOp.get(op);
    if (byStatus === undefined) byOp.set(op, (byStatus = new Map()));
    byStatus.set(status, e);
  }
  total(): number {
    let n = this.overflow;
    for (const e of this.counts.values()) n += e.n;
    return n;
  }
  *entries(): Iterable<{ op: string; status: string; door: FrontDoor | "other"; n: number }> {
    yield* this.counts.values();
    if (this.overflow > 0) yield { op: "other", status: "other", door: "other", n: this.overflow };
  }
}

export function createNodeMetrics(opts: NodeMetricsOptions = {}): NodeMetrics {
  const registry = new Registry();
  if (opts.processMetrics ?? true) registerRuntimeMetrics(registry, { version: opts.build?.version ?? "unknown", commit: opts.build?.commit ?? buildCommit });
  const nowMs = opts.nowMs ?? (() => performance.now());
  let collectors: MetricsCollectors = {};
  const registers = [registry];

  const pairs = new PairCounts();
  new Counter({
    name: "imdb_ops_total",
    help: "Client operations by kind (increment, decrement, get, set, setMv, sadd, srem, smembers, sismember, scard, h*), outcome (OK or the gRPC status name) and front door (grpc, resp: the Redis protocol's data commands).",
    labelNames: ["op", "status", "door"],
    registers,
    collect() {
      this.reset();
      for (const e of pairs.entries()) this.labels(e.op, e.status, e.door).inc(e.n);
    },
  });

  // The Redis protocol's own view: every command (PING and CLIENT too, which are no ops), by name.
  const respCommands = new PairCounts();
  new Counter({
    name: "imdb_resp_commands_total",
    help: "Redis protocol commands answered, by command (lower case; unknown for one the node does not know) and outcome (OK or the error's code word: ERR, WRONGTYPE, ...).",
    labelNames: ["command", "status"],
    registers,
    collect() {
      this.reset();
      for (const e of respCommands.entries()) this.labels(e.op, e.status).inc(e.n);
    },
  });
  const respRefused = new Map<string, number>();
  new Counter({
    name: "imdb_resp_connections_refused_total",
    help: "Redis protocol connections refused or closed by the node: maxclients (over respMaxClients), protocol (a protocol error or a bound of docs/api.md exceeded), certificate (no usable client certificate), handshake (no TLS handshake within the deadline).",
    labelNames: ["reason"],
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of respRefused) this.labels(reason).inc(n);
    },
  });
  new Gauge({
    name: "imdb_resp_clients",
    help: "Redis protocol connections open now.",
    registers,
    collect() {
      this.set(nonNegative(collectors.respClients?.() ?? 0));
    },
  });

  const opDuration = new RequestHistogram(
    "imdb_op_duration_seconds",
    "Client request latency inside the node, from handler entry to the answer (durable per the durability mode); op is the op kind, or batch; door the front door (grpc, resp).",
    opDurationBucketsSeconds,
  );
  registry.registerMetric(opDuration as unknown as Parameters<Registry["registerMetric"]>[0]);
  const durationChildren = new Map<string, HistogramSeries>();
  const observeRequest = (op: string, seconds: number, door: FrontDoor = "grpc"): void => {
    const key = door === "grpc" ? op : op + "\u0000" + door;
    let child = durationChildren.get(key);
    if (child === undefined) {
      child = durationChildren.size >= requestLabelsMax ? opDuration.series("other", "other") : opDuration.series(cut(op), door);
      if (durationChildren.size < requestLabelsMax) durationChildren.set(key, child);
    }
    child.observe(nonNegative(seconds));
  };

  const fsyncDuration = new Histogram({
    name: "imdb_wal_fsync_duration_seconds",
    help: "Time one WAL fdatasync took.",
    buckets: fsyncDurationBucketsSeconds,
    registers,
  });
  const groupRecords = new Histogram({
    name: "imdb_wal_group_records",
    help: "WAL records made durable by one fdatasync (group commit: every record queued while the previous fdatasync ran).",
    buckets: groupRecordsBuckets,
    registers,
  });

  const snapshotDuration = new Histogram({
    name: "imdb_snapshot_duration_seconds",
    help: "Time to write, fsync and publish one snapshot.",
    buckets: snapshotDurationBucketsSeconds,
    registers,
  });
  const snapshotBytes = new Gauge({ name: "imdb_snapshot_bytes", help: "Size of the most recent snapshot file.", registers });

  new Gauge({
    name: "imdb_members",
    help: "Cluster members as this node sees them (itself included), by state.",
    labelNames: ["state"],
    registers,
    collect() {
      const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
      for (const m of collectors.members?.() ?? []) if (m.status in counts) counts[m.status] = (counts[m.status] ?? 0) + 1;
      for (const s of memberStates) this.labels(s).set(counts[s] ?? 0);
    },
  });

  const peersNow = (): readonly PeerReplication[] => (collectors.peers?.() ?? []).slice(0, peerSeriesMax);
  new Gauge({
    name: "imdb_peer_delta_backlog",
    help: "Deltas queued for a peer and not yet acknowledged (on overflow the peer is repaired by anti-entropy).",
    labelNames: ["peer"],
    registers,
    collect() {
      this.reset();
      for (const p of peersNow()) this.labels(cut(p.peer)).set(nonNegative(p.backlog));
    },
  });
  new Gauge({
    name: "imdb_peer_replication_lag_seconds",
    help: "Age of the oldest delta not yet acknowledged by a peer (0 when it has everything).",
    labelNames: ["peer"],
    registers,
    collect() {
      this.reset();
      for (const p of peersNow()) this.labels(cut(p.peer)).set(nonNegative(p.lagSeconds));
    },
  });

  new Counter({
    name: "imdb_peer_state_bytes_total",
    help: "State bytes anti-entropy shipped to (sent) and from (received) a peer: partitions handed off after a membership change, and repairs. Its rate is the bytes moving.",
    labelNames: ["peer", "direction"],
    registers,
    collect() {
      this.reset();
      for (const p of peersNow()) {
        this.labels(cut(p.peer), "sent").inc(nonNegative(p.stateBytesSent ?? 0));
        this.labels(cut(p.peer), "received").inc(nonNegative(p.stateBytesReceived ?? 0));
      }
    },
  });
  new Gauge({
    name: "imdb_hints_pending",
    help: "Deltas held for members this node cannot reach now (suspect), handed to them when they answer; a member declared dead is repaired by anti-entropy instead.",
    registers,
    collect() {
      let n = 0;
      for (const p of peersNow()) if (p.status === "suspect") n += nonNegative(p.backlog);
      this.set(n);
    },
  });
  new Gauge({
    name: "imdb_peer_alive",
    help: "1 while a peer is alive as this node sees it, 0 once suspect, dead or left; the series stays until the member is reaped or removed.",
    labelNames: ["peer"],
    registers,
    collect() {
      this.reset();
      for (const p of peersNow()) if (p.status !== undefined) this.labels(cut(p.peer)).set(p.status === "alive" ? 1 : 0);
    },
  });

  const pushed = { rounds: 0, bytesSent: 0, bytesReceived: 0, keysRepaired: 0, skew: 0 };
  const aeNow = (): AntiEntropyTotals => collectors.antiEntropy?.() ?? { rounds: 0, bytesSent: 0, bytesReceived: 0, keysRepaired: 0 };
  new Counter({
    name: "imdb_antientropy_rounds_total",
    help: "Anti-entropy rounds started with a peer.",
    registers,
    collect() {
      this.reset();
      this.inc(pushed.rounds + nonNegative(aeNow().rounds));
    },
  });
  new Counter({
    name: "imdb_antientropy_bytes_total",
    help: "Anti-entropy payload bytes by direction (sent, received).",
    labelNames: ["direction"],
    registers,
    collect() {
      this.reset();
      const ae = aeNow();
      this.labels("sent").inc(pushed.bytesSent + nonNegative(ae.bytesSent));
      this.labels("received").inc(pushed.bytesReceived + nonNegative(ae.bytesReceived));
    },
  });
  new Counter({
    name: "imdb_antientropy_keys_repaired_total",
    help: "Keys shipped or received by anti-entropy because replicas differed.",
    registers,
    collect() {
      this.reset();
      this.inc(pushed.keysRepaired + nonNegative(aeNow().keysRepaired));
    },
  });
  new Counter({
    name: "imdb_clock_skew_events_total",
    help: "Remote HLC timestamps further ahead of the local clock than maxClockSkewMs (merged anyway).",
    registers,
    collect() {
      this.reset();
      this.inc(pushed.skew + nonNegative(collectors.clockSkewEvents?.() ?? 0));
    },
  });
  new Counter({
    name: "imdb_hlc_remote_ahead_refused_total",
    help: "Peer LWW writes refused because their timestamp was more than hlcRemoteAheadMsMax ahead of the local clock.",
    registers,
    collect() {
      this.reset();
      this.inc(nonNegative(collectors.hlcRemoteAheadRefused?.() ?? 0));
    },
  });
  new Counter({
    name: "imdb_type_conflicts_total",
    help: "Keys that came to hold a second type on this node (two nodes created them with different types; every type is kept, see docs/api.md).",
    registers,
    collect() {
      this.reset();
      this.inc(nonNegative(collectors.typeConflicts?.() ?? 0));
    },
  });
  new Gauge({
    name: "imdb_partitions_owned",
    help: "Partition replicas this node owns in the placement of its current members (replicationFactor > 0); every partition when every member holds every key.",
    registers,
    collect() {
      this.set(nonNegative(collectors.partitionsOwned?.() ?? 0));
    },
  });
  new Counter({
    name: "imdb_keys_evicted_total",
    help: "Keys this node dropped from partitions it no longer owns, once every owner had acknowledged holding them (replicationFactor > 0): the memory a join gives back.",
    registers,
    collect() {
      this.reset();
      this.inc(nonNegative(collectors.evictions?.().keys ?? 0));
    },
  });
  new Counter({
    name: "imdb_forwarded_ops_total",
    help: "Client ops this node sent to their keys' owners (replicationFactor > 0), by result: sent (every forwarded op), failed (its call to the owner failed), no_owner (refused: every owner was down), overloaded (refused: too many ops were being forwarded), retried (reads whose call failed, sent to another owner), unsettled (retried writes refused: the owner that may hold their first attempt is down).",
    labelNames: ["result"],
    registers,
    collect() {
      this.reset();
      const f = collectors.forwarding?.();
      this.inc({ result: "sent" }, nonNegative(f?.opsForwarded ?? 0));
      this.inc({ result: "failed" }, nonNegative(f?.opsForwardFailed ?? 0));
      this.inc({ result: "no_owner" }, nonNegative(f?.opsNoOwner ?? 0));
      this.inc({ result: "overloaded" }, nonNegative(f?.opsOverloaded ?? 0));
      this.inc({ result: "retried" }, nonNegative(f?.opsRetried ?? 0));
      this.inc({ result: "unsettled" }, nonNegative(f?.opsUnsettled ?? 0));
    },
  });
  new Gauge({
    name: "imdb_keys",
    help: "Keys present on this node (deleted keys not counted).",
    registers,
    collect() {
      this.set(nonNegative(collectors.keys?.() ?? 0));
    },
  });
  new Gauge({
    name: "imdb_keys_deleted",
    help: "Deleted keys this node still holds the record of (what their delete removed, so nothing comes back), until every member holds it and it is collected.",
    registers,
    collect() {
      this.set(nonNegative(collectors.deletedKeys?.() ?? 0));
    },
  });

  new Gauge({
    name: "imdb_keys_with_deadline",
    help: "Keys carrying a deadline (expiry) on this node.",
    registers,
    collect() {
      this.set(nonNegative(collectors.expiry?.().keysWithDeadline ?? 0));
    },
  });
  new Counter({
    name: "imdb_keys_expired_total",
    help: "Deadlines this node executed since start: by the background sweep, on a write to the key, or on learning another node had.",
    registers,
    collect() {
      this.reset();
      this.inc(nonNegative(collectors.expiry?.().expiredTotal ?? 0));
    },
  });
  new Counter({
    name: "imdb_expiry_sweep_seconds_total",
    help: "Time the expiry sweep spent executing deadlines since start (with imdb_expiry_sweep_ticks_total: the mean per tick).",
    registers,
    collect() {
      this.reset();
      this.inc(nonNegative(collectors.expiry?.().secondsTotal ?? 0));
    },
  });
  new Counter({
    name: "imdb_expiry_sweep_ticks_total",
    help: "Expiry sweep ticks since start.",
    registers,
    collect() {
      this.reset();
      this.inc(nonNegative(collectors.expiry?.().ticks ?? 0));
    },
  });
  new Gauge({
    name: "imdb_expiry_sweep_tick_seconds",
    help: "Time the last expiry sweep tick took (bounded by the sweep's budget per tick).",
    registers,
    collect() {
      this.set(nonNegative(collectors.expiry?.().lastTickSeconds ?? 0));
    },
  });
  new Gauge({
    name: "imdb_expiry_sweep_tick_seconds_max",
    help: "The longest expiry sweep tick since start.",
    registers,
    collect() {
      this.set(nonNegative(collectors.expiry?.().maxTickSeconds ?? 0));
    },
  });
  new Gauge({
    name: "imdb_tombstones",
    help: "Deleted keys' records not collected yet (the same keys as imdb_keys_deleted).",
    registers,
    collect() {
      this.set(nonNegative(collectors.tombstones?.().count ?? 0));
    },
  });
  new Gauge({
    name: "imdb_tombstone_bytes",
    help: "Estimated bytes held by deleted keys' records not collected yet.",
    registers,
    collect() {
      this.set(nonNegative(collectors.tombstones?.().bytes ?? 0));
    },
  });
  new Gauge({
    name: "imdb_tombstone_oldest_age_seconds",
    help: "Age of the oldest deleted key's record not collected yet (0 when there is none): a member down or not answering holds collection back.",
    registers,
    collect() {
      const oldest = collectors.tombstones?.().oldestMs ?? null;
      const now = collectors.nowMs?.() ?? Date.now();
      this.set(oldest === null ? 0 : nonNegative((now - oldest) / 1000));
    },
  });
  new Counter({
    name: "imdb_tombstones_collected_total",
    help: "Deleted keys' records collected since start (every member held them).",
    registers,
    collect() {
      this.reset();
      this.inc(nonNegative(collectors.collection?.().keysCollected ?? 0));
    },
  });
  new Counter({
    name: "imdb_collection_rounds_abandoned_total",
    help: "Tombstone collection rounds dropped (a member did not confirm in time, or membership changed); their records are probed again.",
    registers,
    collect() {
      this.reset();
      this.inc(nonNegative(collectors.collection?.().roundsAbandoned ?? 0));
    },
  });
  new Gauge({
    name: "imdb_collection_generation",
    help: "Tombstone collection generation this node knows (raised by every collection, stored with the data).",
    registers,
    collect() {
      this.set(nonNegative(collectors.collection?.().generation ?? 0));
    },
  });
  new Gauge({
    name: "imdb_replica_quarantined",
    help: "1 while this replica, started from data of doubtful age, waits for every member's answer before taking writes.",
    registers,
    collect() {
      this.set(collectors.collection?.().quarantined === true ? 1 : 0);
    },
  });

  new Gauge({
    name: "imdb_actors_known",
    help: "Distinct CRDT actors (node id + replica epoch) this process knows; each wipe, repair, restore or unclean stop under interval/none adds one cluster-wide.",
    registers,
    collect() {
      this.set(nonNegative(collectors.actorsKnown?.() ?? 0));
    },
  });
  new Gauge({
    name: "imdb_replica_epoch_start_seconds",
    help: "Unix time at which this node's current replica epoch (its CRDT actor) began.",
    registers,
    collect() {
      this.set(nonNegative(collectors.epochStartedAtSeconds?.() ?? 0));
    },
  });

  new Gauge({
    name: "imdb_tls_cert_expiry_timestamp_seconds",
    help: "When each certificate the node serves with expires (Unix time): cert is node (its own) or ca; subject is its CN. Follows SIGHUP reloads.",
    labelNames: ["cert", "subject"],
    registers,
    collect() {
      this.reset();
      for (const c of (collectors.tlsCerts?.() ?? []).slice(0, certSeriesMax)) this.labels(cut(c.cert), cut(c.subject)).set(nonNegative(c.notAfterSeconds));
    },
  });

  const accelPath = new Gauge({
    name: "imdb_accel_path",
    help: "Which implementation serves each accel primitive's batch function: 1 for the active path (native or ts), 0 otherwise.",
    labelNames: ["primitive", "path"],
    registers,
  });

  const sink: SyncSink = {
    fsync: (seconds) => fsyncDuration.observe(nonNegative(seconds)),
    group: (records) => groupRecords.observe(nonNegative(records)),
  };

  const metrics: NodeMetrics = {
    registry,
    opDone(op, status, seconds, door = "grpc") {
      pairs.add(op, status, 1, door);
      observeRequest(op, seconds, door);
    },
    opsCounted(op, status, n, door = "grpc") {
      if (n > 0) pairs.add(op, status, n, door);
    },
    opsTotal: () => pairs.total(),
    respCommandDone(command, status) {
      respCommands.add(command, status, 1);
    },
    respConnectionRefused(reason) {
      respRefused.set(reason, (respRefused.get(reason) ?? 0) + 1);
    },
    async track(ops, run, door = "grpc") {
      const t0 = nowMs();
      const request = ops.length === 1 ? (ops[0] as ClientOp).kind : "batch";
      let outcomes: OpOutcome[];
      try {
        outcomes = await run(ops);
      } catch (err) {
        const code = err instanceof OpFailure ? err.code : "INTERNAL";
        for (const op of ops) pairs.add(op.kind, code, 1, door);
        observeRequest(request, (nowMs() - t0) / 1000, door);
        throw err;
      }
      // Counted per run of equal (op, status) pairs: a Batch of 1000 increments is one add.
      let runOp = "";
      let runStatus = "";
      let same = 0;
      for (let i = 0; i < ops.length; i++) {
        const o = outcomes[i];
        const op = (ops[i] as ClientOp).kind;
        const status = o === undefined ? "INTERNAL" : o.ok ? "OK" : o.error.code;
        if (op === runOp && status === runStatus) {
          same++;
          continue;
        }
        if (same > 0) pairs.add(runOp, runStatus, same, door);
        runOp = op;
        runStatus = status;
        same = 1;
      }
      if (same > 0) pairs.add(runOp, runStatus, same, door);
      observeRequest(request, (nowMs() - t0) / 1000, door);
      return outcomes;
    },
    walSynced(records, seconds) {
      sink.fsync(seconds);
      sink.group(records);
    },
    snapshotDone(seconds, bytes) {
      snapshotDuration.observe(nonNegative(seconds));
      snapshotBytes.set(nonNegative(bytes));
    },
    antiEntropyRound() {
      pushed.rounds++;
    },
    antiEntropyBytes(direction, bytes) {
      if (direction === "sent") pushed.bytesSent += nonNegative(bytes);
      else pushed.bytesReceived += nonNegative(bytes);
    },
    antiEntropyRepaired(keys) {
      pushed.keysRepaired += nonNegative(keys);
    },
    clockSkewEvent(count = 1) {
      pushed.skew += nonNegative(count);
    },
    setAccel(choice) {
      for (const primitive of accelPrimitives) {
        for (const path of accelPaths) accelPath.labels(primitive, path).set(choice[primitive] === path ? 1 : 0);
      }
    },
    setCollectors(c) {
      collectors = c;
    },
    instrumentAppender(inner) {
      return {
        open: async (path) => new SyncReportingFile(await inner.open(path), sink),
      };
    },
  };
  return metrics;
}

/**
 * WAL records in buffers handed to DurableFile.append: each buffer is a run of records
 * `u32 length | u32 crc | payload` (persist/format.ts), or a segment header (0 records).
 */
export function walRecordsIn(buffers: readonly Uint8Array[]): number {
  let n = 0;
  for (const b of buffers) {
    if (b.byteLength >= walMagic.byteLength && walMagic.every((c, i) => b[i] === c)) continue;
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let at = 0;
    while (at + recordHeaderBytes <= b.byteLength) {
      n++;
      at += recordHeaderBytes + view.getUint32(at, true);
    }
  }
  return n;
}

/** What the appender wrapper reports: fdatasync times and group sizes, separately. */
interface SyncSink {
  fsync(seconds: number): void;
  group(records: number): void;
}

/**
 * A DurableFile that reports the fdatasyncs of the file it wraps. Callers of one group-commit
 * round are answered together (one burst of promise settlements), so a microtask after the
 * first answer of a burst it reports the burst as one group: the records of its sync appends
 * plus those appended without sync since the last group (durability interval), and every
 * fdatasync the inner AppendStats counted since the last look, each with their mean time.
 */
class SyncReportingFile implements CountedDurableFile {
  private seen: AppendStats;
  private burstRecords = 0;
  private burstSynced = false;
  private unsyncedRecords = 0;
  private lookScheduled = false;

  constructor(
    private readonly inner: CountedDurableFile,
    private readonly sink: SyncSink,
  ) {
    this.seen = inner.stats();
  }

  get size(): number {
    return this.inner.size;
  }

  stats(): AppendStats {
    return this.inner.stats();
  }

  append(records: readonly Uint8Array[], sync: boolean): Promise<void> {
    const count = walRecordsIn(records);
    return this.watch(this.inner.append(records, sync), count, sync);
  }

  sync(): Promise<void> {
    return this.watch(this.inner.sync(), 0, true);
  }

  idle(): boolean {
    return this.inner.idle();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private watch(p: Promise<void>, records: number, sync: boolean): Promise<void> {
    return p.then(() => {
      if (sync) {
        this.burstRecords += records;
        this.burstSynced = true;
      } else {
        this.unsyncedRecords += records;
      }
      if (this.lookScheduled) return;
      this.lookScheduled = true;
      queueMicrotask(() => this.look());
    });
  }

  private look(): void {
    this.lookScheduled = false;
    const now = this.inner.stats();
    const syncs = now.fdatasyncs - this.seen.fdatasyncs;
    if (syncs > 0) {
      const seconds = (now.fdatasyncMs - this.seen.fdatasyncMs) / syncs / 1000;
      for (let i = 0; i < syncs; i++) this.sink.fsync(seconds);
      this.seen = now;
    }
    if (this.burstSynced) {
      this.sink.group(this.burstRecords + this.unsyncedRecords);
      this.burstRecords = 0;
      this.unsyncedRecords = 0;
      this.burstSynced = false;
    }
  }
}
