// The cluster layer's one documented config: every knob an operator can turn, its unit and its trade-off.

import { peerEnvelopeBytesMax, peerEnvelopeTargetBytesMax } from "../limits.ts";
import { partitionsDefault, partitionsMax, replicationFactorMax } from "./placement.ts";

/** Most bytes of membership updates piggybacked on one message: part of the envelope's slack (src/limits.ts). */
export const piggybackBytesCeiling = 64 * 1024;

/**
 * Timing and sizing of membership (SWIM + Lifeguard), dissemination, delta push and
 * anti-entropy. Modelled on hashicorp/memberlist's Config; `defaultLanConfig()` gives values
 * for a LAN, where round trips are well under a millisecond.
 */
export interface ClusterConfig {
  // ---- failure detection (SWIM) ----
  /**
   * Time between two probes of one node (ms). Each node probes one member per period, in a
   * shuffled round-robin order. Lower detects failures sooner (a dead node is first probed
   * after ~probeIntervalMs / 1 on average, whatever the cluster size) at the cost of
   * 2 messages per node per period. Scaled by local health (see awarenessMaxMultiplier).
   */
  probeIntervalMs: number;
  /**
   * How long a direct ping waits for its ack before indirect probes start (ms). Should be
   * the 99th percentile of the round trip; must be below probeIntervalMs, because the rest
   * of the period is what indirect probes get. Scaled by local health.
   */
  probeTimeoutMs: number;
  /**
   * Members asked to ping a target that did not answer directly (k in SWIM). More checks
   * make false alarms from one bad path rarer, at k extra messages per failed probe.
   */
  indirectChecks: number;
  /**
   * Indirect probes this node relays for others at once (ping-reqs whose ping is in flight,
   * each held for probeTimeoutMs). A ping-req beyond it is dropped and counted: the requester
   * still has its other helpers, and memory stays bounded whatever peers send. With every
   * member sending indirectChecks ping-reqs per probeIntervalMs, 1024 covers clusters far
   * beyond membersMax / 10 failing probes at once.
   */
  relayedProbesMax: number;
  // ---- suspicion (Lifeguard) ----
  /**
   * Suspicion timeout multiplier. The minimum suspicion timeout is
   * `suspicionMult * max(1, log10(N)) * probeIntervalMs` (N = live members incl. self);
   * a suspect is declared dead after the timeout unless it refutes. Also sets how many
   * independent confirmations shrink the timeout to the minimum: suspicionMult - 2.
   * Higher gives a slow (stalled, overloaded) node more time to refute; lower detects sooner.
   */
  suspicionMult: number;
  /**
   * The suspicion timeout starts at `suspicionMaxTimeoutMult * min` and shrinks towards
   * `min` as independent members confirm the suspicion (Lifeguard's dynamic suspicion):
   * timeout = max - (max - min) * log(c + 1) / log(k + 1) for c confirmations. A lone
   * suspecter (itself maybe unhealthy) thus waits long; a suspicion shared by many is quick.
   */
  suspicionMaxTimeoutMult: number;
  /**
   * Upper bound of the local health multiplier (Lifeguard's LHM). A node that misses acks
   * or must refute suspicions of itself raises its score (0 .. max-1) and multiplies its
   * own probe interval and probe timeout by score + 1: a struggling node judges others
   * more slowly instead of accusing them. 8 as in memberlist.
   */
  awarenessMaxMultiplier: number;
  // ---- dissemination ----
  /**
   * Membership updates are retransmitted `retransmitMult * ceil(log10(N + 1))` times
   * (piggybacked on pings, acks and gossip). Higher spreads more reliably under loss, at the
   * cost of bytes in every message.
   */
  retransmitMult: number;
  /** Time between gossip rounds (ms); a round sends pending updates to gossipNodes members. */
  gossipIntervalMs: number;
  /** Random members a gossip round goes to (fan-out). */
  gossipNodes: number;
  /**
   * A dead member still receives gossip for this long (ms), so that a node wrongly declared
   * dead hears it and refutes.
   */
  gossipToTheDeadMs: number;
  /** Bytes of membership updates piggybacked on one message. */
  piggybackBytesMax: number;
  /** Pending membership updates kept (oldest-most-sent dropped first beyond it). */
  broadcastQueueMax: number;
  // ---- state exchange, join and rejoin ----
  /**
   * Full membership push-pull with one random live member every this many ms, scaled up
   * by log2(N / 32) above 32 members as in memberlist. Repairs anything gossip missed.
   * Each round also push-pulls with one seed address no live member has, so that two
   * halves of a cluster that formed apart merge as long as the seed addresses are stable.
   */
  pushPullIntervalMs: number;
  /**
   * Every this many ms, a push-pull is tried with one random dead (not left) member, so a
   * healed partition or a node that came back reconnects without an operator. It bounds how
   * long after a partition heals the two sides find each other (and so the convergence time):
   * 1 s here, against Serf's 30 s, because the chaos suite holds us to convergence within 5 s
   * of heal; the cost is one small message per node per second while any member is dead.
   */
  reconnectIntervalMs: number;
  /** While no other member is alive, the seeds are contacted again every this many ms. */
  joinRetryIntervalMs: number;
  /** Dead members are forgotten this long after they died (ms); until then they are listed and retried. */
  deadReapAfterMs: number;
  /** Members that left gracefully are forgotten this long after leaving (ms). */
  leftReapAfterMs: number;
  /** Members known at most; a push-pull or alive beyond it is refused. */
  membersMax: number;
  // ---- CRDT delta push ----
  /** Pending deltas are pushed to every live peer every this many ms (as many batches per peer as the in-flight window admits). */
  deltaPushIntervalMs: number;
  /** Deltas in one batch. */
  deltaBatchEntriesMax: number;
  /** Bytes of deltas in one batch (a single larger delta still goes alone). */
  deltaBatchBytesMax: number;
  /** Deltas sent but not yet acknowledged to one peer; pushing pauses beyond it. */
  deltaInflightEntriesMax: number;
  /**
   * Bytes of deltas sent but not yet acknowledged to one peer; pushing pauses beyond it (one
   * delta larger than this still goes alone). Without it, 1 MiB writes put hundreds of MiB on
   * the wire to a peer that acknowledges a few per round trip, and the resends of what is
   * still in transit starve everything else.
   */
  deltaInflightBytesMax: number;
  /**
   * Unacknowledged deltas are resent after this many ms without ack progress; each resend
   * without progress since doubles the wait, up to deltaRetransmitMaxMs (TCP's backoff). An
   * ack waits for the receiver's WAL (it promises durability), so under a slow disk or a
   * loaded host the round trip can exceed the first timeout: the backoff stops a resend storm.
   * The cap (2 s) bounds how long a peer that dropped batches (a short partition) waits for
   * the resend; anti-entropy repairs it meanwhile anyway.
   */
  deltaRetransmitMs: number;
  deltaRetransmitMaxMs: number;
  /**
   * Deltas queued for one peer (entries / bytes). On overflow the peer's whole backlog is
   * dropped and the peer is repaired by anti-entropy instead: memory stays bounded and a
   * slow or partitioned peer cannot hold the others back.
   */
  deltaBacklogEntriesMax: number;
  deltaBacklogBytesMax: number;
  // ---- messages held for durability ----
  /**
   * State-carrying envelopes (deltas, their acks, anti-entropy states: Outbound.carriesState)
   * held by the driver until the local WAL appends they could reflect are durable, counted
   * (envelopes) and sized (bytes). Beyond either, an envelope is dropped and counted, and the
   * peer is repaired by anti-entropy (unacknowledged deltas are resent anyway): a stalled disk
   * costs bounded memory. Failure-detection traffic is never held, so it has no such bound.
   */
  heldOutboundEnvelopesMax: number;
  heldOutboundBytesMax: number;
  // ---- anti-entropy ----
  /** One anti-entropy exchange with one random live peer every this many ms. */
  antiEntropyIntervalMs: number;
  /**
   * Depth of the hash tree (fan-out 16): 16^depth leaves. Keys per leaf ~ keys / 16^depth
   * is what a differing key costs in listed digests; each level costs 16 hashes per
   * differing path. 4 (65,536 leaves, ~0.6 MB) suits up to a few million keys.
   */
  hashTreeDepth: number;
  /** Tree nodes compared in one message. */
  antiEntropyTreeItemsMax: number;
  /**
   * Tree nodes of one level compared in one exchange (in messages of antiEntropyTreeItemsMax);
   * beyond it an exchange covers a random slice and later ones the rest. 65,536 covers every
   * leaf of a depth-4 tree (~1.3 MB of hashes), so one exchange finds every differing leaf.
   */
  antiEntropyExchangeTreeItemsMax: number;
  /**
   * Keys this node lists (with their digests) per antiEntropyIntervalMs, over every exchange it
   * answers: what bounds anti-entropy's work when replicas differ almost everywhere (a delta
   * backlog handed to anti-entropy), since the states shipped and merged are those of listed
   * leaves. Leaves are listed whole from a random differing one on; the rest wait for a later
   * exchange. Exchanges start every interval whether or not earlier ones finished, so a budget
   * per exchange would let a loaded node fall ever further behind; this one is a rate.
   */
  antiEntropyListedKeysMax: number;
  /**
   * Bytes of key states this node sends per antiEntropyIntervalMs, over every exchange (beyond
   * it the rest waits for a later exchange; one big key still goes): a replica that lists
   * little (an empty one lists only empty leaves) is otherwise sent every state it lacks at
   * once, and merging them all blocks its event loop for long enough, on a loaded machine, to
   * miss its failure-detector probes.
   */
  antiEntropyStateBytesMax: number;
  /** Leaves whose keys are listed in one message. */
  antiEntropyLeavesPerMessageMax: number;
  /** Bytes of key states shipped in one message (at least one key is always shipped). */
  antiEntropyChunkBytesMax: number;
  // ---- partitions (issue 17, in progress: no hand-off on membership changes yet) ----
  /**
   * Owners of each partition (src/cluster/placement.ts); 0: every member owns every partition,
   * every node holds every key (the default: small clusters change nothing). With N > 0 a key's
   * deltas and anti-entropy stay among its N owners, and a request for a key this node does not
   * own is forwarded to one of them (one hop, src/node/forward.ts). Must be the same on every member.
   */
  replicationFactor: number;
  /** Partitions of the keyspace (placement.ts: why 16384). Must be the same on every member. */
  partitions: number;
}

/**
 * LAN defaults. They follow memberlist's DefaultLANConfig except where the target of
 * issue 6 (a killed node marked dead everywhere within p99 <= 9 s at 100 nodes) needs
 * otherwise:
 * - probeIntervalMs 500 (memberlist 1000): at 100 nodes the time until someone first probes
 *   a dead node is roughly exponential with mean probeIntervalMs, and the minimum
 *   suspicion timeout is suspicionMult * 2 * probeIntervalMs; with 1 s the sum is ~13 s at
 *   p99 (memberlist's observed 11-13 s), with 500 ms ~7 s. Cost: 4 small messages per node
 *   per second instead of 2.
 * - probeTimeoutMs 200 (memberlist 500): must leave room for indirect probes inside the
 *   shorter period; 200 ms is still > 100x a LAN round trip.
 * - retransmitMult 8 (memberlist 4): each node sends an update L = mult x ceil(log10(N+1))
 *   times, so a given node receives it about L x (1 - loss) times, roughly Poisson, and
 *   misses it with probability ~e^-(L x (1 - loss)); a miss waits for the next push-pull
 *   (90 s at 100 nodes). Simulated at 99 nodes with 25% loss: mult 6 (L = 12) missed
 *   someone in 3% of updates, mult 4 more often even without loss; mult 8 (L = 16) brings
 *   the expected misses to ~0.1% per update. Cost: twice memberlist's piggybacked bytes
 *   (about 16 x 25 bytes per node per membership change).
 */
export function defaultLanConfig(): ClusterConfig {
  return {
    probeIntervalMs: 500,
    probeTimeoutMs: 200,
    indirectChecks: 3,
    relayedProbesMax: 1024,
    suspicionMult: 4,
    suspicionMaxTimeoutMult: 6,
    awarenessMaxMultiplier: 8,
    retransmitMult: 8,
    gossipIntervalMs: 200,
    gossipNodes: 3,
    gossipToTheDeadMs: 30_000,
    piggybackBytesMax: 1400,
    broadcastQueueMax: 4096,
    pushPullIntervalMs: 30_000,
    reconnectIntervalMs: 1_000,
    joinRetryIntervalMs: 1_000,
    deadReapAfterMs: 3_600_000,
    leftReapAfterMs: 3_600_000,
    membersMax: 10_000,
    deltaPushIntervalMs: 5,
    deltaBatchEntriesMax: 256,
    deltaBatchBytesMax: 256 * 1024,
    deltaInflightEntriesMax: 4096,
    deltaInflightBytesMax: 4 * 1024 * 1024,
    deltaRetransmitMs: 250,
    deltaRetransmitMaxMs: 2_000,
    deltaBacklogEntriesMax: 100_000,
    deltaBacklogBytesMax: 64 * 1024 * 1024,
    heldOutboundEnvelopesMax: 4096,
    heldOutboundBytesMax: 64 * 1024 * 1024,
    antiEntropyIntervalMs: 1_000,
    hashTreeDepth: 4,
    antiEntropyTreeItemsMax: 4096,
    antiEntropyExchangeTreeItemsMax: 65_536,
    antiEntropyListedKeysMax: 32_768,
    antiEntropyStateBytesMax: 1024 * 1024,
    antiEntropyLeavesPerMessageMax: 256,
    antiEntropyChunkBytesMax: 1024 * 1024,
    replicationFactor: 0,
    partitions: partitionsDefault,
  };
}

/** A config that breaks an invariant the protocol relies on. */
export class ClusterConfigError extends Error {
  constructor(readonly field: keyof ClusterConfig, message: string) {
    super(`cluster config ${field}: ${message}`);
    this.name = "ClusterConfigError";
  }
}

const positiveIntegerFields: ReadonlyArray<keyof ClusterConfig> = [
  "probeIntervalMs", "probeTimeoutMs", "suspicionMult", "suspicionMaxTimeoutMult",
  "awarenessMaxMultiplier", "retransmitMult", "gossipIntervalMs", "gossipNodes",
  "piggybackBytesMax", "broadcastQueueMax", "pushPullIntervalMs", "reconnectIntervalMs",
  "joinRetryIntervalMs", "deadReapAfterMs", "leftReapAfterMs", "membersMax",
  "deltaPushIntervalMs", "deltaBatchEntriesMax", "deltaBatchBytesMax", "deltaInflightEntriesMax",
  "deltaRetransmitMs", "deltaBacklogEntriesMax", "deltaBacklogBytesMax", "antiEntropyIntervalMs",
  "hashTreeDepth", "antiEntropyTreeItemsMax", "antiEntropyExchangeTreeItemsMax", "antiEntropyListedKeysMax", "antiEntropyStateBytesMax", "antiEntropyLeavesPerMessageMax", "antiEntropyChunkBytesMax",
  "relayedProbesMax", "heldOutboundEnvelopesMax", "heldOutboundBytesMax", "deltaInflightBytesMax", "deltaRetransmitMaxMs",
  "partitions",
];

/** Throws ClusterConfigError naming the first bad field. */
export function validateClusterConfig(c: ClusterConfig): void {
  for (const f of positiveIntegerFields) {
    const v = c[f];
    if (!Number.isSafeInteger(v) || v <= 0) throw new ClusterConfigError(f, `must be a positive integer, got ${v}`);
  }
  if (!Number.isSafeInteger(c.indirectChecks) || c.indirectChecks < 0) {
    throw new ClusterConfigError("indirectChecks", "must be a non-negative integer");
  }
  if (c.probeTimeoutMs >= c.probeIntervalMs) {
    throw new ClusterConfigError("probeTimeoutMs", "must be below probeIntervalMs (indirect probes need the rest of the period)");
  }
  if (c.deltaRetransmitMaxMs < c.deltaRetransmitMs) throw new ClusterConfigError("deltaRetransmitMaxMs", "must be at least deltaRetransmitMs");
  if (c.hashTreeDepth > 6) throw new ClusterConfigError("hashTreeDepth", "at most 6 (16^6 leaves)");
  // A message built to these sizes must fit the envelope every peer decodes (src/limits.ts).
  for (const f of ["antiEntropyChunkBytesMax", "deltaBatchBytesMax"] as const) {
    if (c[f] > peerEnvelopeTargetBytesMax) throw new ClusterConfigError(f, `at most ${peerEnvelopeTargetBytesMax} (peers decode envelopes of up to ${peerEnvelopeBytesMax} bytes)`);
  }
  if (c.piggybackBytesMax > piggybackBytesCeiling) throw new ClusterConfigError("piggybackBytesMax", `at most ${piggybackBytesCeiling}`);
  if (c.suspicionMaxTimeoutMult < 1) throw new ClusterConfigError("suspicionMaxTimeoutMult", "at least 1");
  if (!Number.isInteger(c.replicationFactor) || c.replicationFactor < 0 || c.replicationFactor > replicationFactorMax) {
    throw new ClusterConfigError("replicationFactor", `must be an integer in 0..${replicationFactorMax} (0: every member holds every key), got ${c.replicationFactor}`);
  }
  if (c.partitions > partitionsMax) throw new ClusterConfigError("partitions", `at most ${partitionsMax}`);
  // Each partition gets its own run of hash-tree leaves (hashtree.ts) when the cluster is partitioned.
  if (c.replicationFactor > 0 && c.partitions > 16 ** c.hashTreeDepth) {
    throw new ClusterConfigError("partitions", `at most 16^hashTreeDepth = ${16 ** c.hashTreeDepth} with a replication factor`);
  }
}
