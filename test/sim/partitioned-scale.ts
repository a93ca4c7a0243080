// One seeded run of the 100-node partitioned simulation (test/sim/partitioned-scale.test.ts says
// what it checks), and a worker entry: `bun test/sim/partitioned-scale.ts SEED...` runs those
// seeds and prints one JSON line per seed, so that the test can spread 500 seeds over processes.
import { EngineStore } from "../../src/sim/engine-store.ts";
import { Simulation } from "../../src/sim/sim.ts";
import { Rng } from "../../src/sim/rng.ts";
import type { Placement } from "../../src/cluster/placement.ts";
import { leaveAnnounceMs } from "../../src/cluster/cluster.ts";

/** What the last run did (simulated ms, writes, kills...), for the verbose lines. */
export let lastStats: Record<string, number> = {};

const nodes = 100;
const firstJoiner = 90;
/** n0 and n1: the addresses every node is started with (`seeds`), joiners included. */
const seedNodes = 2;
const config = { replicationFactor: 3, partitions: 1024 };
const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
/** As node-host's leaveDrainDeltasMs. */
const leaveDrainMs = 10_000;

/** One seeded run; null when every property held, else what broke. */
export function runScaleSeed(seed: number): string | null {
  lastStats = {};
  const rng = new Rng(seed ^ 0x5ca1e);
  const sim = new Simulation({
    seed, nodes, config, seedNodes, counterInvariant: false, traceMessages: false,
    startStopped: Array.from({ length: nodes - firstJoiner }, (_, i) => firstJoiner + i),
    network: { lossRate: 0.02, duplicateRate: 0.02, delayMaxMs: 20 },
    storeFactory: (actor, nowMs, hashSeed) => new EngineStore(actor, nowMs, hashSeed),
  });
  const aliveIn = (i: number): number => sim.view(i).filter((m) => m.status === "alive").length;
  if (!sim.runUntilTrue(() => sim.runningIndexes().every((i) => aliveIn(i) === firstJoiner), 120_000, 500)) return "the cluster did not form";
  const index = new Map(Array.from({ length: nodes }, (_, i) => [sim.idOf(i) as string, i]));
  const acked = new Map<string, number>();
  const down = new Set<number>();
  const left = new Set<number>();
  const leaving = new Set<number>();
  let joined = firstJoiner;
  let split = false;
  const stats = { writes: 0, kills: 0, restarts: 0, joins: 0, leaves: 0, leavesRefused: 0, leavesUnheard: 0, splits: 0 };

  const write = (): void => {
    const key = keys[rng.int(keys.length)]!;
    const via = rng.int(joined);
    if (!sim.canServe(via) || leaving.has(via)) return;
    const route = sim.cluster(via)!.route(key);
    const at = route.kind === "local" ? via : route.kind === "forward" ? index.get(route.to)! : -1;
    if (at < 0 || !sim.canServe(at) || leaving.has(at)) return;
    // One hop to the owner (a forward needs the link; the owner refuses until it has joined).
    if (at !== via && (!sim.connected(via, at) || sim.cluster(at)!.joining)) return;
    if (sim.increment(at, key, 1)) {
      acked.set(key, (acked.get(key) ?? 0) + 1);
      stats.writes++;
    }
  };
  const leave = (i: number): void => {
    leaving.add(i);
    // As `imdb admin leave`: every key to its next owners first; refused or cut off, the node
    // does not leave and takes writes again.
    if (sim.handOff(i) !== null) {
      leaving.delete(i);
      stats.leavesRefused++;
      return;
    }
    const c = sim.cluster(i)!;
    const drained = (): boolean => c.members().every((m) => m.id === sim.idOf(i) || m.status === "dead" || m.status === "left" || c.deltaBacklog(m.id).entries === 0);
    sim.runUntilTrue(drained, sim.nowMs + leaveDrainMs, 50);
    // As ClusterDriver.leave: announced, then offered until a peer is seen holding it and the
    // news is out, for leaveAnnounceMs at most.
    sim.leave(i);
    sim.runUntilTrue(() => c.leaveHeardBy() !== null && c.pendingBroadcasts() === 0, sim.nowMs + leaveAnnounceMs, 50);
    sim.kill(i);
    // A leave no peer was seen holding within leaveAnnounceMs (made from the small side of a
    // split, say, that outlasted it) was heard by no member, and the cluster then sees a crash and
    // places over the node until it is reaped (an hour). The operator's remedy, as `imdb admin leave`
    // and docs/operations.md (Membership) say: `imdb admin member remove` once it is seen dead (seed 450646418).
    const heard = (): boolean => Array.from({ length: joined }, (_, j) => j).some((j) => j !== i && sim.canServe(j) && sim.view(j).some((m) => m.id === sim.idOf(i) && m.status === "left"));
    if (!heard()) {
      const by = Array.from({ length: joined }, (_, j) => j).filter((j) => j !== i && sim.canServe(j));
      sim.runUntilTrue(() => by.some((j) => sim.view(j).some((m) => m.id === sim.idOf(i) && m.status === "dead")), sim.nowMs + 60_000, 500);
      const at = by.find((j) => sim.view(j).some((m) => m.id === sim.idOf(i) && m.status === "dead"));
      if (at !== undefined) sim.removeMember(at, sim.idOf(i));
      stats.leavesUnheard++;
    }
    leaving.delete(i);
    left.add(i);
    stats.leaves++;
  };

  for (let step = 0; step < 160; step++) {
    const r = rng.next();
    const up = Array.from({ length: joined }, (_, i) => i).filter((i) => !down.has(i) && !left.has(i));
    if (r < 0.03 && down.size < 2) {
      const i = up[rng.int(up.length)]!;
      sim.kill(i);
      down.add(i);
      stats.kills++;
    } else if (r < 0.06 && down.size > 0) {
      const i = [...down][rng.int(down.size)]!;
      sim.restart(i);
      down.delete(i);
      stats.restarts++;
    } else if (r < 0.075 && joined < nodes) {
      sim.restart(joined++);
      stats.joins++;
    } else if (r < 0.095) {
      const i = up[rng.int(up.length)]!;
      // The last seed node in the cluster stays: a node joins through its seeds, and an operator
      // who lets every seed host go gives new nodes others (seed 890376311: n0 and n1 had left,
      // and n92-n95, started with only their addresses, never reached the cluster).
      const lastSeed = i < seedNodes && Array.from({ length: seedNodes }, (_, s) => s).every((s) => s === i || left.has(s));
      if (!lastSeed) leave(i);
    } else if (r < 0.105 && !split) {
      const cut = 1 + rng.int(joined - 1);
      sim.partitionInto([Array.from({ length: cut }, (_, i) => i)]);
      split = true;
      stats.splits++;
    } else if (r < 0.15 && split) {
      sim.heal();
      split = false;
    } else {
      for (let w = 0; w < 4; w++) write();
    }
    sim.runFor(250);
  }
  sim.heal();
  for (const i of down) sim.restart(i);
  const members = Array.from({ length: joined }, (_, i) => i).filter((i) => !left.has(i));
  let placement: Placement | null = null;
  const converged = (): string | null => {
    // Every member sees the same members (so places keys alike) ...
    const p = sim.cluster(members[0]!)!.placement();
    if (p === null) return "no placement";
    if (p.members.length !== members.length) {
      const ids = new Set(members.map((i) => sim.idOf(i) as string));
      const extra = p.members.filter((m) => !ids.has(m));
      const placed = new Set(p.members as readonly string[]);
      const missing = [...ids].filter((m) => !placed.has(m));
      const view = new Map(sim.view(members[0]!).map((m) => [m.id as string, m.status]));
      return `${sim.idOf(members[0]!)} places over ${p.members.length} members, ${members.length} are in the cluster (not in it: ${extra.map((m) => `${m} seen ${view.get(m) ?? "nowhere"}`).join(", ") || "none"}; left out: ${missing.map((m) => `${m} seen ${view.get(m) ?? "nowhere"}`).join(", ") || "none"})`;
    }
    for (const i of members) {
      const q = sim.cluster(i)!.placement();
      if (q === null || q.members.join() !== p.members.join()) return `${sim.idOf(i)} places over other members than ${sim.idOf(members[0]!)}`;
    }
    placement = p;
    // ... and every owner holds every acknowledged increment.
    for (const key of keys) {
      for (const owner of p.ownersOfKey(key)) {
        const got = sim.store(index.get(owner)!).value(key);
        if (got !== (acked.get(key) ?? 0)) return `${owner} holds ${key} = ${got}, acknowledged ${acked.get(key) ?? 0}`;
      }
    }
    return null;
  };
  sim.runUntilTrue(() => converged() === null, sim.nowMs + 600_000, 2_000);
  const f = converged();
  if (f !== null) return `${f} (${JSON.stringify(stats)})`;
  if (placement === null || stats.writes === 0) return "nothing was written";
  // Capacity: once the owners hold everything, each member keeps only the keys it owns (a former
  // owner drops a partition once every owner acknowledged its stray push: Cluster.evictStrays),
  // and dropping lost nothing: every owner still holds every acknowledged increment.
  const strays = (): string | null => {
    const pl = sim.cluster(members[0]!)!.placement()!;
    for (const i of members) {
      const id = sim.idOf(i);
      for (const key of sim.store(i).keys()) if (!pl.ownersOfKey(key).includes(id)) return `${id} still holds ${key}, owned by ${pl.ownersOfKey(key).join(",")}`;
    }
    return null;
  };
  sim.runUntilTrue(() => strays() === null, sim.nowMs + 120_000, 1_000);
  const s = strays();
  if (s !== null) return `${s} (${JSON.stringify(stats)})`;
  const after = converged();
  if (after !== null) return `after eviction: ${after} (${JSON.stringify(stats)})`;
  let evicted = 0;
  for (const i of members) evicted += sim.cluster(i)!.evictions().keys;
  lastStats = { simulatedMs: sim.nowMs, ...stats, evicted };
  return null;
}

if (import.meta.main) {
  for (const arg of process.argv.slice(2)) {
    const seed = Number(arg);
    let failure: string | null;
    try {
      failure = runScaleSeed(seed);
    } catch (e) {
      failure = `threw ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
    }
    console.log(JSON.stringify({ seed, failure, stats: lastStats }));
  }
}
