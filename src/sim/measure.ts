// The figures of issue 6, measured on the simulator: dissemination rounds, time to detect a death, false positives, anti-entropy cost.

import { AntiEntropy } from "../cluster/antientropy.ts";
import { defaultLanConfig, type ClusterConfig } from "../cluster/config.ts";
import { HashTree } from "../cluster/hashtree.ts";
import { Outbox } from "../cluster/outbox.ts";
import type { ReplicaStore } from "../cluster/store.ts";
import type { ClusterEvent, NodeId } from "../cluster/types.ts";
import { decodeEnvelope } from "../cluster/wire.ts";
import { Rng } from "./rng.ts";
import { Simulation, type NetworkParams } from "./sim.ts";

/** Runs until every running node sees every other running node alive; throws if not within `withinMs`. */
export function formCluster(sim: Simulation, withinMs: number): number {
  const ok = sim.runUntilTrue(() => sim.divergence() === null, sim.nowMs + withinMs, 500);
  if (!ok) throw new Error(`cluster of ${sim.size} did not form within ${withinMs} ms: ${sim.divergence()}`);
  return sim.nowMs;
}

/** The nearest-rank p-th percentile of xs (NaN when empty). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}

export interface Distribution {
  samples: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

export function distribution(xs: readonly number[]): Distribution {
  return {
    samples: xs.length,
    mean: xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length),
    p50: percentile(xs, 50),
    p99: percentile(xs, 99),
    max: xs.length === 0 ? Number.NaN : Math.max(...xs),
  };
}

/**
 * Gossip rounds (time / gossipIntervalMs) for one membership update — a node's graceful
 * leave — to reach every other live node of an `nodes`-node cluster, per trial. Trials
 * run one after another in one cluster (each leaver stays gone: N shrinks by one per trial).
 */
export function disseminationRounds(opts: { seed: number; nodes: number; lossRate: number; trials: number; config?: Partial<ClusterConfig> }): number[] {
  const config = { ...defaultLanConfig(), ...opts.config };
  const rounds: number[] = [];
  let leaver: NodeId | null = null;
  const reached = new Set<number>();
  let lastMs = 0;
  const sim = new Simulation({
    seed: opts.seed,
    nodes: opts.nodes,
    config: opts.config,
    traceMessages: false,
    onEvent: (node, e: ClusterEvent, atMs) => {
      if (e.kind === "member-left" && e.id === leaver && !reached.has(node)) {
        reached.add(node);
        lastMs = atMs;
      }
    },
  });
  formCluster(sim, 120_000);
  sim.network.lossRate = opts.lossRate;
  for (let t = 0; t < opts.trials && t < opts.nodes - 2; t++) {
    sim.runFor(2_000);
    const i = opts.nodes - 1 - t;
    const others = opts.nodes - 1 - t;
    leaver = sim.idOf(i);
    reached.clear();
    reached.add(i);
    const startMs = sim.nowMs;
    sim.leave(i);
    const ok = sim.runUntilTrue(() => reached.size >= others + 1, startMs + 60_000, 50);
    rounds.push(ok ? (lastMs - startMs) / config.gossipIntervalMs : Number.POSITIVE_INFINITY);
    sim.runFor(1_000);
    sim.kill(i);
  }
  if (sim.violations.length > 0) throw new Error(`invariant broken: ${sim.violations[0]}`);
  return rounds;
}

/**
 * Milliseconds from kill -9 of a random node until every other node marks it dead, per
 * trial; the victim is restarted and the cluster re-formed between trials.
 */
export function timeToDeadEverywhere(opts: { seed: number; nodes: number; trials: number; network?: Partial<NetworkParams>; config?: Partial<ClusterConfig> }): number[] {
  let victim: NodeId | null = null;
  const seen = new Set<number>();
  let lastMs = 0;
  const sim = new Simulation({
    seed: opts.seed,
    nodes: opts.nodes,
    config: opts.config,
    network: opts.network,
    traceMessages: false,
    onEvent: (node, e, atMs) => {
      if (e.kind === "member-dead" && e.id === victim && !seen.has(node)) {
        seen.add(node);
        lastMs = atMs;
      }
    },
  });
  const rng = new Rng(opts.seed ^ 0x1234567);
  formCluster(sim, 120_000);
  const times: number[] = [];
  for (let t = 0; t < opts.trials; t++) {
    sim.runFor(rng.range(0, 2_000));
    const v = rng.int(opts.nodes);
    victim = sim.idOf(v);
    seen.clear();
    const killedAt = sim.nowMs;
    sim.kill(v);
    const ok = sim.runUntilTrue(() => seen.size >= opts.nodes - 1, killedAt + 120_000, 50);
    times.push(ok ? lastMs - killedAt : Number.POSITIVE_INFINITY);
    victim = null;
    sim.restart(v);
    formCluster(sim, 120_000);
  }
  if (sim.violations.length > 0) throw new Error(`invariant broken: ${sim.violations[0]}`);
  return times;
}

export interface FalsePositiveResult {
  /** Times a node that was running was marked dead by another node. */
  falseDeaths: number;
  /** Suspicions raised (refuted in time unless counted above). */
  suspicions: number;
  stalls: number;
  virtualMs: number;
}

/**
 * `nodes` nodes for `durationMs` of virtual time with `lossRate` message loss, while
 * `stallFraction` of the nodes repeatedly stall for 0.2-2 s (then run 2-20 s). No node is
 * killed, so every "dead" is a false positive.
 */
export function falsePositives(opts: { seed: number; nodes: number; durationMs: number; lossRate: number; stallFraction: number; config?: Partial<ClusterConfig> }): FalsePositiveResult {
  let falseDeaths = 0;
  let suspicions = 0;
  let measuring = false;
  const sim = new Simulation({
    seed: opts.seed,
    nodes: opts.nodes,
    config: opts.config,
    traceMessages: false,
    onEvent: (_node, e) => {
      if (!measuring) return;
      if (e.kind === "member-dead") falseDeaths++;
      if (e.kind === "member-suspect") suspicions++;
    },
  });
  const rng = new Rng(opts.seed ^ 0x7777);
  formCluster(sim, 120_000);
  sim.network.lossRate = opts.lossRate;
  measuring = true;
  const start = sim.nowMs;
  const end = start + opts.durationMs;
  const stallers = Math.round(opts.nodes * opts.stallFraction);
  let stalls = 0;
  for (let i = 0; i < stallers; i++) {
    const node = opts.nodes - 1 - i;
    for (let t = start + rng.range(0, 10_000); t < end; ) {
      const ms = rng.range(200, 2_000);
      sim.at(t, () => sim.stall(node, ms));
      stalls++;
      t += ms + rng.range(2_000, 20_000);
    }
  }
  sim.runUntil(end);
  if (sim.violations.length > 0) throw new Error(`invariant broken: ${sim.violations[0]}`);
  return { falseDeaths, suspicions, stalls, virtualMs: opts.durationMs };
}

/** A replica of synthetic keys: digests only, 16-byte states. */
class SyntheticStore implements ReplicaStore {
  readonly digests = new Map<string, bigint>();
  constructor(private readonly tree: HashTree) {}

  put(key: string, digest: bigint): void {
    this.digests.set(key, digest);
    this.tree.set(key, digest);
  }

  digest(key: string): bigint | undefined {
    return this.digests.get(key);
  }

  states(keys: readonly string[]): Array<[string, Uint8Array]> {
    const out: Array<[string, Uint8Array]> = [];
    for (const k of keys) {
      const d = this.digests.get(k);
      if (d === undefined) continue;
      const b = new Uint8Array(16);
      new DataView(b.buffer).setBigUint64(0, d, true);
      out.push([k, b]);
    }
    return out;
  }

  mergeStates(entries: ReadonlyArray<readonly [string, Uint8Array]>): void {
    // Synthetic join: the larger digest wins, deterministically on both sides.
    for (const [k, b] of entries) {
      const theirs = new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0, true);
      const mine = this.digests.get(k);
      if (mine === undefined || theirs > mine) this.put(k, theirs);
    }
  }

  mergeDeltas(): void {}
}

export interface AntiEntropyCost {
  keys: number;
  differing: number;
  /** Key states shipped, both directions. */
  entries: number;
  /** Bytes of ae-tree and ae-leaves messages (hashes, listed keys and digests). */
  hashBytes: number;
  /** Bytes of ae-states messages (the shipped states and wanted keys). */
  stateBytes: number;
  messages: number;
  /** Sessions (periods) until the replicas were equal. */
  sessions: number;
  converged: boolean;
}

/**
 * Two replicas of `keys` synthetic keys, built once. For each d in `differing`: make them
 * differ in d keys (a quarter new on each side, a quarter changed on each side), then run
 * anti-entropy sessions from A to B until the trees are equal, counting the wire bytes.
 */
export function antiEntropyCosts(opts: { keys: number; differing: readonly number[]; seed: number; depth?: number }): AntiEntropyCost[] {
  const config = { ...defaultLanConfig(), hashTreeDepth: opts.depth ?? defaultLanConfig().hashTreeDepth };
  const rng = new Rng(opts.seed);
  const env = { nowMs: () => 0, random: () => rng.next() };
  const treeA = new HashTree(config.hashTreeDepth);
  const treeB = new HashTree(config.hashTreeDepth);
  const a = new SyntheticStore(treeA);
  const b = new SyntheticStore(treeB);
  for (let i = 0; i < opts.keys; i++) {
    const d = BigInt(rng.nextU32()) * 0x1_0000_0000n + BigInt(rng.nextU32());
    a.put(`key:${i}`, d);
    b.put(`key:${i}`, d);
  }
  const outA = new Outbox();
  const outB = new Outbox();
  const aeA = new AntiEntropy(config, env, treeA, a, outA, []);
  const aeB = new AntiEntropy(config, env, treeB, b, outB, []);
  const idA = "a" as NodeId;
  const idB = "b" as NodeId;
  const results: AntiEntropyCost[] = [];
  let fresh = 0;
  for (const differing of opts.differing) {
    for (let j = 0; j < differing; j++) {
      const key = `key:${rng.int(opts.keys)}`;
      const r = j % 4;
      if (r === 0) b.put(`new:${fresh++}`, BigInt(fresh));
      else if (r === 1) a.put(`new:${fresh++}`, BigInt(fresh));
      else (r === 2 ? a : b).put(key, (a.digests.get(key) ?? 0n) + BigInt(1 + rng.int(1000)));
    }
    const cost: AntiEntropyCost = { keys: opts.keys, differing, entries: 0, hashBytes: 0, stateBytes: 0, messages: 0, sessions: 0, converged: false };
    const equal = (): boolean => {
      const [al, ah] = treeA.hash(0, 0);
      const [bl, bh] = treeB.hash(0, 0);
      return al === bl && ah === bh;
    };
    for (let session = 0; session < 100; session++) {
      cost.sessions++;
      aeA.start({ id: idB, addr: "b" });
      for (let step = 0; step < 100 && !(outA.isEmpty() && outB.isEmpty()); step++) {
        for (const [from, outbox, ae] of [[idA, outA, aeB], [idB, outB, aeA]] as const) {
          for (const o of outbox.drain(from, () => [])) {
            const env = decodeEnvelope(o.payload);
            let states = false;
            for (const m of env.messages) {
              cost.messages++;
              if (m.kind === "ae-states") {
                cost.entries += m.entries.length;
                states = true;
              }
              if (m.kind === "ae-tree" || m.kind === "ae-leaves" || m.kind === "ae-states") ae.handle(from, env.fromAddr, m);
            }
            if (states) cost.stateBytes += o.payload.length;
            else cost.hashBytes += o.payload.length;
          }
        }
      }
      if (equal()) break;
    }
    cost.converged = equal();
    results.push(cost);
  }
  return results;
}
