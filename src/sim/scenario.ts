// The randomised fault scenario the simulation suite runs per seed: faults, then heal, then convergence and invariants.

import { Rng } from "./rng.ts";
import { EngineStore } from "./engine-store.ts";
import { Simulation, type SimBackup } from "./sim.ts";
import { ProductWorkload } from "./workload.ts";

export interface ScenarioOptions {
  /** Virtual ms of random faults and writes (default 20 s). */
  faultPhaseMs?: number;
  /** Virtual ms allowed for convergence after everything is healed (default 120 s). */
  convergeWithinMs?: number;
  /** Run the real engine (src/engine) as each node's replica. */
  engine?: boolean;
  /**
   * The product workload on the real engine (src/sim/workload.ts) instead of plain increments:
   * every kind of write through the node's op path, stray other-type ops, blind MV storms,
   * forged contexts, over-range counters. Implies `engine`.
   */
  product?: boolean;
}

export interface ScenarioResult {
  seed: number;
  nodes: number;
  /** null if every invariant held and the cluster converged. */
  failure: string | null;
  traceHash: string;
  /** Virtual ms from the heal to convergence. */
  convergedAfterMs: number;
  faults: string[];
  steps: number;
}

const keysMax = 8;
const seedNodes = 2;

/**
 * 3-6 nodes, random loss/duplication/delay, and for `faultPhaseMs`: writes every 50 ms at
 * random nodes and a fault every 0.5-3 s (partition, kill and restart — sometimes wiped,
 * restored from an older copy or repaired back to one, sometimes at a new address —, stall,
 * graceful leave and rejoin). Then: heal, restart everything, stop losing messages, and
 * require convergence of membership and data with counters equal to the acknowledged
 * increments, and no invariant broken on the way.
 */
export function runRandomScenario(seed: number, opts: ScenarioOptions = {}): ScenarioResult {
  const faultPhaseMs = opts.faultPhaseMs ?? 20_000;
  const convergeWithinMs = opts.convergeWithinMs ?? 120_000;
  const rng = new Rng(seed ^ 0x3c6ef372);
  const nodes = 3 + rng.int(4);
  const product = opts.product === true;
  const sim = new Simulation({
    seed,
    nodes,
    counterInvariant: !product,
    seedNodes,
    // The product workload deletes keys: members down for a few seconds are reaped, so that
    // tombstone collection goes on without them and their return (departed lives, doubtful
    // data) is exercised, not only the hour-long default.
    // Every other seed, so the common case (no reaps) stays covered as well.
    ...(product && seed % 2 === 0 ? { config: { deadReapAfterMs: 3_000, leftReapAfterMs: 3_000 } } : {}),
    // The engine takes whole milliseconds, as the node's Date.now() gives them.
    ...(opts.engine === true || product
      ? { storeFactory: (actor: string, nowMs: () => number, hashSeed: readonly [number, number]) => new EngineStore(actor, () => Math.floor(nowMs()), hashSeed) }
      : {}),
    // A replica told to discard its data (tombstone collection, src/cluster/gc.ts) loses its life's unreplicated writes, as a wipe does.
    onEvent: (i, e) => {
      if (e.kind === "replica-reset") work?.dataLost(i);
    },
    network: {
      lossRate: rng.pick([0, 0.01, 0.05, 0.15]),
      duplicateRate: rng.pick([0, 0.02, 0.1]),
      delayMinMs: 0.1,
      delayMaxMs: rng.pick([1, 5, 30]),
    },
  });
  const faults: string[] = [];
  const start = 2_000;
  const end = start + faultPhaseMs;
  const lastFaultAt = end - 3_000;

  const work = product
    ? new ProductWorkload({ nodeCount: nodes, canServe: (i) => sim.canServe(i), engine: (i) => (sim.store(i) as EngineStore).engine, publish: (i, d) => sim.publish(i, d), isRunning: (i) => sim.isRunning(i), connected: (i, j) => sim.connected(i, j), nowMs: () => Math.floor(sim.nowMs) }, rng.fork())
    : null;
  if (work !== null) {
    // Established keys: created and replicated before any fault, so later other-type ops are strays.
    sim.at(start / 2, () => work.establish());
    for (let t = start; t < end; t += 25) sim.at(t, () => work.step());
  } else {
    for (let t = start; t < end; t += 50) {
      const node = rng.int(nodes);
      const key = `k${rng.int(keysMax)}`;
      const by = 1 + rng.int(5);
      sim.at(t, () => sim.increment(node, key, by));
    }
  }

  // A wiped disk, one restored from a copy taken a while before the kill, or one whose WAL
  // --repair cut back to such an older state; each time the node comes back with a new actor
  // (persist/replica.ts) and its new increments must all survive.
  const restartLater = (i: number, at: number, backupAt: number | null): void => {
    const viaRepair = backupAt !== null && rng.chance(0.5);
    const wipe = backupAt === null && rng.chance(0.2);
    // Seed nodes keep their address: a cluster whose every seed address went stale
    // cannot be found again, by design (as with memberlist's join addresses).
    const newAddress = i >= seedNodes && rng.chance(0.3);
    let backup: SimBackup | null = null;
    if (backupAt !== null) sim.at(backupAt, () => { if (sim.isRunning(i)) backup = sim.backup(i); });
    sim.at(Math.min(at, end), () => {
      const older = backup ?? undefined;
      const how = older === undefined ? {} : viaRepair ? { repairTo: older } : { restoreFrom: older };
      // The node's data went back in time or away: writes only it held may be gone (the workload's checks allow it).
      if ((wipe || older !== undefined) && !sim.isRunning(i)) work?.dataLost(i);
      sim.restart(i, { wipe, newAddress, ...how });
      const what = older === undefined ? "" : viaRepair ? " repaired back to an older state" : " restored from an older copy";
      faults.push(`${sim.nowMs}: restart n${i}${wipe ? " wiped" : ""}${what}${newAddress ? " at a new address" : ""}`);
    });
  };

  for (let t = start + rng.range(500, 3_000); t < lastFaultAt; t += rng.range(500, 3_000)) {
    const kind = rng.int(10);
    const i = rng.int(nodes);
    if (kind < 3) {
      const groups: number[][] = [[], []];
      for (let n = 0; n < nodes; n++) (groups[rng.int(2)] as number[]).push(n);
      const healAt = t + rng.range(500, 12_000);
      sim.at(t, () => {
        sim.partitionInto(groups);
        faults.push(`${t}: partition ${JSON.stringify(groups)}`);
      });
      sim.at(Math.min(healAt, end), () => sim.heal());
    } else if (kind < 6) {
      const down = rng.range(500, 15_000);
      sim.at(t, () => {
        if (!sim.isRunning(i)) return;
        sim.kill(i);
        faults.push(`${t}: kill n${i}`);
      });
      restartLater(i, t + down, rng.chance(0.15) ? Math.max(start, t - rng.range(0, 3_000)) : null);
    } else if (kind < 9) {
      const ms = rng.range(50, 3_000);
      sim.at(t, () => {
        sim.stall(i, ms);
        faults.push(`${t}: stall n${i} ${ms.toFixed(0)}ms`);
      });
    } else {
      sim.at(t, () => {
        if (!sim.isRunning(i)) return;
        sim.leave(i);
        faults.push(`${t}: n${i} leaves`);
      });
      sim.at(t + 1_000, () => sim.stop(i)); // a graceful leave ends in a clean stop: the restart keeps the actor
      restartLater(i, t + 1_000 + rng.range(500, 5_000), null);
    }
  }

  for (let t = 1_000; t < end + convergeWithinMs; t += 1_000) sim.at(t, () => sim.checkViews());

  sim.runUntil(end);
  sim.heal();
  for (let i = 0; i < nodes; i++) if (!sim.isRunning(i)) sim.restart(i);
  sim.network.lossRate = 0;
  const healedAt = sim.nowMs;
  const converged = sim.runUntilTrue(() => sim.divergence() === null, healedAt + convergeWithinMs, 250);
  sim.checkViews();
  let failure: string | null = null;
  if (sim.violations.length > 0) failure = `invariant broken: ${sim.violations.slice(0, 3).join("; ")}`;
  else if (!converged) failure = `no convergence ${convergeWithinMs} ms after heal: ${sim.divergence()}`;
  else if (work !== null) {
    const bad = [...work.violations];
    for (let i = 0; i < nodes && bad.length === 0; i++) bad.push(...work.check((sim.store(i) as EngineStore).engine).map((v) => `n${i}: ${v}`));
    if (bad.length > 0) failure = `product invariant broken: ${bad.slice(0, 3).join("; ")}`;
  }
  return { seed, nodes, failure, traceHash: sim.traceHash(), convergedAfterMs: sim.nowMs - healedAt, faults, steps: sim.steps };
}
