// `imdb bench partition`: issue 17's placement figures, computed from the placement function the
// node will use (src/cluster/placement.ts) over real key names: balance (keys on the fullest
// node against the mean at 10, 30 and 100 nodes), movement (the share of the stored data that
// changes hands when one node joins a 10-node cluster, against the ideal 1/11), and the capacity
// the placement allows a 5-node RF 3 cluster (keys it can store before its fullest node holds
// as many as one node alone could). These are properties of the placement; the capacity of
// real nodes follows once nodes store only their partitions. With --forward-writes N it also
// measures the forwarded-request overhead on two real nodes (src/bench/forward.ts).
import { InvalidArgumentError, type Command } from "commander";
import { asNodeId, type NodeId } from "../cluster/types.ts";
import { Placement, partitionOf, partitionsDefault, partitionsMax, replicationFactorMax } from "../cluster/placement.ts";
import { targetMet, targetVerdict, type Target } from "./report.ts";
import { runCapacityBench, runForwardBench, type CapacityBenchResult, type ForwardBenchResult } from "./forward.ts";

export const benchPartitionKeysMax = 10_000_000;
export const benchForwardWritesMax = 1_000_000;
const balanceNodeCounts = [10, 30, 100] as const;
const joinFromNodes = 10;
const capacityNodes = 5;

const balanceTarget: Target = { bound: "<=", target: 1.1, unit: "x" };
const capacityTarget: Target = { bound: ">=", target: 1.6, unit: "x" };
/** Movement: within 10% of the ideal share 1 / (n + 1), either side. */
const movementTolerance = 0.1;

export interface PartitionBenchOptions {
  keys: number;
  partitions: number;
  replicationFactor: number;
  progress: (line: string) => void;
}

export interface PartitionBenchResult {
  keys: number;
  partitions: number;
  replicationFactor: number;
  balance: { nodes: number; maxOverMean: number; minOverMean: number; met: boolean }[];
  movement: { fromNodes: number; movedShare: number; idealShare: number; leaveMovedShare: number; leaveIdealShare: number; met: boolean };
  capacity: { nodes: number; ratio: number; met: boolean };
  /** Milliseconds to compute one placement of `joinFromNodes` nodes (warm). */
  placementMs: number;
  /** The forwarded-request overhead on real nodes; null unless asked for (--forward-writes). */
  forward: ForwardBenchResult | null;
  /** Keys each of 5 real nodes with the replication factor stores; null unless asked for (--real-keys). */
  real: CapacityBenchResult | null;
  met: boolean;
}

const nodes = (n: number): NodeId[] => Array.from({ length: n }, (_, i) => asNodeId(`node-${i + 1}`));
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Keys per node: each node holds every key of the partitions it owns. */
function keysPerNode(pl: Placement, keysPerPartition: Int32Array): number[] {
  const out = new Array<number>(pl.members.length).fill(0);
  const index = new Map(pl.members.map((m, i) => [m, i]));
  for (let p = 0; p < pl.partitions; p++) for (const o of pl.owners(p)) out[index.get(o)!]! += keysPerPartition[p]!;
  return out;
}

/** The share of the stored key copies `after` holds on a node that did not hold them in `before`. */
function movedShare(before: Placement, after: Placement, keysPerPartition: Int32Array): number {
  let moved = 0;
  let stored = 0;
  for (let p = 0; p < after.partitions; p++) {
    const old = new Set(before.owners(p));
    for (const o of after.owners(p)) {
      stored += keysPerPartition[p]!;
      if (!old.has(o)) moved += keysPerPartition[p]!;
    }
  }
  return stored === 0 ? 0 : moved / stored;
}

export function runPartitionBench(o: PartitionBenchOptions): PartitionBenchResult {
  const opts = { partitions: o.partitions, replicationFactor: o.replicationFactor };
  o.progress(`bench partition: hashing ${o.keys.toLocaleString("en-US")} keys into ${o.partitions.toLocaleString("en-US")} partitions`);
  const keysPerPartition = new Int32Array(o.partitions);
  for (let i = 0; i < o.keys; i++) keysPerPartition[partitionOf(`key:${i}`, o.partitions)]!++;

  const balance = balanceNodeCounts.map((n) => {
    o.progress(`bench partition: placing on ${n} nodes`);
    const loads = keysPerNode(new Placement(nodes(n), opts), keysPerPartition);
    const mean = loads.reduce((a, b) => a + b, 0) / n;
    const maxOverMean = round3(Math.max(...loads) / mean);
    return { nodes: n, maxOverMean, minOverMean: round3(Math.min(...loads) / mean), met: targetMet(balanceTarget, maxOverMean) };
  });

  o.progress(`bench partition: one node joining ${joinFromNodes}, one leaving ${joinFromNodes + 1}`);
  const small = new Placement(nodes(joinFromNodes), opts);
  const t0 = performance.now();
  const big = new Placement(nodes(joinFromNodes + 1), opts);
  const placementMs = Math.round(performance.now() - t0);
  const moved = movedShare(small, big, keysPerPartition);
  // The newcomer's fair share of the copies, whatever the factor (at RF >= n it stores a full copy).
  const ideal = 1 / (joinFromNodes + 1);
  const movement = {
    fromNodes: joinFromNodes,
    movedShare: round3(moved),
    idealShare: round3(ideal),
    // A node leaving 11: the copies it held move, 1/11 of the copies stored (keys x RF before and after).
    leaveMovedShare: round3(movedShare(big, small, keysPerPartition)),
    leaveIdealShare: round3(ideal),
    met: Math.abs(moved - ideal) <= movementTolerance * ideal,
  };

  const capLoads = keysPerNode(new Placement(nodes(capacityNodes), opts), keysPerPartition);
  // One node alone holds every key: the cluster is full when its fullest node holds that many.
  const capacityRatio = round3(o.keys / Math.max(...capLoads));
  const capacity = { nodes: capacityNodes, ratio: capacityRatio, met: targetMet(capacityTarget, capacityRatio) };

  return {
    keys: o.keys, partitions: o.partitions, replicationFactor: o.replicationFactor, balance, movement, capacity, placementMs, forward: null, real: null,
    met: balance.every((b) => b.met) && movement.met && capacity.met,
  };
}

export function formatPartitionBench(r: PartitionBenchResult): string {
  const lines = [
    `placement of ${r.keys.toLocaleString("en-US")} keys, ${r.partitions.toLocaleString("en-US")} partitions, replication factor ${r.replicationFactor} (src/cluster/placement.ts)`,
    "",
    `${"nodes".padEnd(6)} ${"max/mean keys".padStart(14)} ${"min/mean keys".padStart(14)}  verdict`,
  ];
  for (const b of r.balance) {
    lines.push(`${String(b.nodes).padEnd(6)} ${b.maxOverMean.toFixed(3).padStart(14)} ${b.minOverMean.toFixed(3).padStart(14)}  ${targetVerdict(balanceTarget, b.maxOverMean)}`);
  }
  const m = r.movement;
  lines.push(
    "",
    `one node joins ${m.fromNodes}: ${m.movedShare.toFixed(3)} of the data moves (ideal ${m.idealShare.toFixed(3)}); target within ${movementTolerance * 100}% of ideal: ${m.met ? "met" : "not met"}`,
    `one node leaves ${m.fromNodes + 1}: ${m.leaveMovedShare.toFixed(3)} of the data moves (ideal ${m.leaveIdealShare.toFixed(3)})`,
    `capacity of ${r.capacity.nodes} nodes against one with the same memory: ${r.capacity.ratio.toFixed(3)}x (${targetVerdict(capacityTarget, r.capacity.ratio)})`,
    `one placement of ${m.fromNodes + 1} nodes: ${r.placementMs} ms`,
    r.real === null
      ? "real nodes: not measured (--real-keys N starts 5 real nodes and writes N keys)"
      : `real nodes: ${r.real.nodes} nodes with replication factor ${r.real.replicationFactor} store ${r.real.perNode.join(" / ")} of ${r.real.keys.toLocaleString("en-US")} keys ` +
        `(shares ${r.real.shares.join(" / ")}, ideal ${r.real.idealShare}); ${r.real.capacity}x one node's keys (${targetVerdict(capacityTarget, r.real.capacity)}); ` +
        `then one leaves, handing its ${r.real.leave.keysHeld.toLocaleString("en-US")} keys to their next owners in ${r.real.leave.seconds} s (${r.real.leave.keysPerSecond.toLocaleString("en-US")} keys/s); ` +
        `then ${r.real.join.id} joins: filled, and what moved to it dropped by its former owners, in ${r.real.join.seconds} s: ${r.real.join.perNode.join(" / ")} keys, ${r.real.join.capacity}x one node's keys`,
    r.forward === null
      ? "forwarded-request overhead: not measured (--forward-writes N starts two real nodes for it)"
      : `forwarded-request overhead, ${r.forward.writes} unary Increments each (2 nodes, mutual TLS, RF 1, durability none): ` +
        `owner p50 ${r.forward.owner.p50Ms} ms p99 ${r.forward.owner.p99Ms} ms; forwarded p50 ${r.forward.forwarded.p50Ms} ms p99 ${r.forward.forwarded.p99Ms} ms ` +
        `(x${r.forward.ratioP50} / x${r.forward.ratioP99})`,
    "",
    `targets: ${r.met ? "met" : "not met"}`,
  );
  return `${lines.join("\n")}\n`;
}

function intIn(flag: string, lo: number, hi: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < lo || n > hi) throw new InvalidArgumentError(`${flag} must be an integer in ${lo.toLocaleString("en-US")}..${hi.toLocaleString("en-US")}`);
    return n;
  };
}

export function registerBench(bench: Command): void {
  bench
    .command("partition")
    .description("placement of keys on partitions and nodes: balance at 10, 30 and 100 nodes, data moved by a join, capacity of 5 nodes with RF 3")
    .option("--json", "print one JSON object on stdout")
    .option("--keys <n>", "key names placed", intIn("--keys", 1, benchPartitionKeysMax), 1_000_000)
    .option("--partitions <n>", "partitions of the keyspace", intIn("--partitions", 1, partitionsMax), partitionsDefault)
    .option("--replication-factor <n>", "owners per partition", intIn("--replication-factor", 1, replicationFactorMax), 3)
    .option("--forward-writes <n>", "also measure the forwarded-request overhead with N writes of each kind on two real nodes (0: not measured)", intIn("--forward-writes", 0, benchForwardWritesMax), 0)
    .option("--real-keys <n>", "also write N keys to 5 real nodes with the replication factor and report what each stores (0: not measured)", intIn("--real-keys", 0, benchPartitionKeysMax), 0)
    .action(async (f: { json?: boolean; keys: number; partitions: number; replicationFactor: number; forwardWrites: number; realKeys: number }) => {
      const progress = (s: string): void => void process.stderr.write(`${s}\n`);
      const r = runPartitionBench({ keys: f.keys, partitions: f.partitions, replicationFactor: f.replicationFactor, progress });
      if (f.forwardWrites > 0) r.forward = await runForwardBench({ writes: f.forwardWrites, progress });
      if (f.realKeys > 0) {
        r.real = await runCapacityBench({ keys: f.realKeys, nodes: capacityNodes, replicationFactor: f.replicationFactor, progress });
        r.met &&= targetMet(capacityTarget, r.real.capacity);
      }
      process.stdout.write(f.json ? `${JSON.stringify({ bench: "partition", ...r })}\n` : formatPartitionBench(r));
      if (!r.met) process.exitCode = 1;
    });
}
