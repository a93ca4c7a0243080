// A partitioned cluster (replicationFactor 3 of 7 nodes, 64 partitions) on the simulator, with the
// real engine as every node's replica and the node's own cluster code (placement, owner-only
// delta push, anti-entropy over the partitions two owners share): clients write counters at
// owners while nodes are killed and restarted and the network loses, duplicates and delays
// messages and splits into halves. At the end every owner of every key holds every acknowledged
// increment of it, and no node holds a key it does not own (a partitioned cluster stores each
// key on its owners only). Seeded; a failure prints the seed and how to run it alone.
import { expect, test } from "bun:test";
import { Placement } from "../../src/cluster/placement.ts";
import { EngineStore } from "../../src/sim/engine-store.ts";
import { Simulation } from "../../src/sim/sim.ts";
import { Rng } from "../../src/sim/rng.ts";
import { partitionOf } from "../../src/cluster/placement.ts";
import { asNodeId, type NodeId } from "../../src/cluster/types.ts";

const nodes = 7;
const config = { replicationFactor: 3, partitions: 64 };
const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
const count = Math.max(1, Math.floor(Number(process.env.IMDB_SIM_SEEDS ?? 500) / 20));
const joinCount = Math.max(1, Math.floor(Number(process.env.IMDB_SIM_SEEDS ?? 500) / 50));
const base = Number(process.env.IMDB_SEED ?? Math.floor(Math.random() * 1_000_000_000));

/** One seeded run; null when every property held, else what broke. */
function run(seed: number): string | null {
  const rng = new Rng(seed ^ 0x5eed);
  const sim = new Simulation({
    seed, nodes, config, counterInvariant: false, traceMessages: false,
    network: { lossRate: 0.05, duplicateRate: 0.05, delayMaxMs: 20 },
    storeFactory: (actor, nowMs, hashSeed) => new EngineStore(actor, nowMs, hashSeed),
  });
  if (!sim.runUntilTrue(() => sim.runningIndexes().every((i) => sim.view(i).filter((m) => m.status === "alive").length === nodes), 120_000)) return "the cluster did not form";
  const ids = sim.runningIndexes().map((i) => sim.idOf(i));
  const placement = new Placement(ids, config);
  const index = new Map(ids.map((id, i) => [id as string, i]));
  const acked = new Map<string, number>();
  for (let step = 0; step < 400; step++) {
    const r = rng.next();
    if (r < 0.02) {
      const i = rng.int(nodes);
      if (sim.isRunning(i)) sim.kill(i);
      else sim.restart(i);
    } else if (r < 0.025) {
      sim.partitionInto([[0, 1, 2], [3, 4, 5, 6]]);
    } else if (r < 0.04) {
      sim.heal();
    } else {
      // A client's write to a random node, routed as the node routes it (Cluster.route, as
      // forward.ts uses it): applied there, or by the owner it names (one hop), or refused.
      const key = keys[rng.int(keys.length)]!;
      const via = rng.int(nodes);
      if (!sim.canServe(via)) continue;
      const route = sim.cluster(via)!.route(key);
      const at = route.kind === "local" ? via : route.kind === "forward" ? index.get(route.to)! : -1;
      // The owner refuses a forwarded write until it has joined (node.ts: Cluster.joining).
      if (at >= 0 && at !== via && sim.canServe(at) && sim.connected(via, at) && !sim.cluster(at)!.joining && sim.increment(at, key, 1)) acked.set(key, (acked.get(key) ?? 0) + 1);
      else if (at >= 0 && at === via && sim.canServe(at) && sim.increment(at, key, 1)) acked.set(key, (acked.get(key) ?? 0) + 1);
    }
    sim.runFor(250);
  }
  sim.heal();
  for (let i = 0; i < nodes; i++) if (!sim.isRunning(i)) sim.restart(i);
  const converged = (): string | null => {
    for (const key of keys) {
      for (const owner of placement.ownersOfKey(key)) {
        const got = sim.store(index.get(owner)!).value(key);
        if (got !== (acked.get(key) ?? 0)) return `${owner} holds ${key} = ${got}, acknowledged ${acked.get(key) ?? 0}`;
      }
    }
    return null;
  };
  sim.runUntilTrue(() => converged() === null, 300_000, 1_000);
  const lost = converged();
  if (lost !== null) return lost;
  for (let i = 0; i < nodes; i++) {
    for (const key of sim.store(i).keys()) {
      if (!placement.ownersOfKey(key).includes(sim.idOf(i))) return `${sim.idOf(i)} holds ${key}, owned by ${placement.ownersOfKey(key).join(", ")}`;
    }
  }
  return null;
}

test(`partitioned (RF 3 of 7, 64 partitions): seeds ${base}..${base + count - 1}: every owner holds every acknowledged increment, no node holds a key it does not own`, () => {
  const failures: string[] = [];
  for (let s = base; s < base + count; s++) {
    const f = run(s);
    if (f !== null) failures.push(`seed ${s}: ${f}\n  reproduce: IMDB_SEED=${s} IMDB_SIM_SEEDS=20 npx bun test test/sim/partitioned.test.ts`);
  }
  if (failures.length > 0) console.error(failures.join("\n"));
  expect(failures).toEqual([]);
}, 300_000);

/**
 * A node joins a 6-node cluster with RF 2 and 64 partitions while clients write. With these
 * members the join moves both replicas of one partition (placement.ts bounds loads, so one move
 * can push another): its new owners share it with no owner that held it, and only its former
 * owners can fill them (Cluster.sharedLeaves compares former and current owners for a while).
 */
function runJoin(seed: number): string | null {
  const rng = new Rng(seed ^ 0x701);
  const cfg = { replicationFactor: 2, partitions: 64 };
  const sim = new Simulation({
    seed, nodes: 7, startStopped: [6], config: cfg, counterInvariant: false, traceMessages: false,
    network: { lossRate: 0.03, duplicateRate: 0.03, delayMaxMs: 10 },
    storeFactory: (actor, nowMs, hashSeed) => new EngineStore(actor, nowMs, hashSeed),
  });
  const formed = (n: number): boolean => sim.runningIndexes().every((i) => sim.view(i).filter((m) => m.status === "alive").length === n);
  if (!sim.runUntilTrue(() => formed(6), 120_000)) return "the first 6 nodes did not form";
  const ids = Array.from({ length: 7 }, (_, i) => asNodeId(`n${i}`));
  const before = new Placement(ids.slice(0, 6), cfg);
  const after = new Placement(ids, cfg);
  const orphaned: number[] = [];
  for (let p = 0; p < cfg.partitions; p++) if (!after.owners(p).some((o) => before.owners(p).includes(o))) orphaned.push(p);
  if (orphaned.length === 0) return "this membership no longer moves every replica of a partition: pick another to test the hand-off";
  const keys = Array.from({ length: 30 }, (_, i) => `j${i}`);
  for (let i = 0, found = 0; found < 4; i++) if (orphaned.includes(partitionOf(`o${i}`, cfg.partitions))) { keys.push(`o${i}`); found++; }
  const index = new Map(ids.map((id, i) => [id as string, i]));
  const acked = new Map<string, number>();
  const write = (): void => {
    const key = keys[rng.int(keys.length)]!;
    const via = rng.int(7);
    if (!sim.canServe(via)) return;
    const route = sim.cluster(via)!.route(key);
    const at = route.kind === "local" ? via : route.kind === "forward" ? index.get(route.to)! : -1;
    if (at < 0 || !sim.canServe(at) || (at !== via && (!sim.connected(via, at) || sim.cluster(at)!.joining))) return;
    if (sim.increment(at, key, 1)) acked.set(key, (acked.get(key) ?? 0) + 1);
  };
  // Every orphaned key written before the join: only its former owners hold it.
  for (const key of keys.filter((k) => k.startsWith("o"))) {
    const owner = index.get(before.ownersOfKey(key)[0]!)!;
    if (sim.increment(owner, key, 5)) acked.set(key, (acked.get(key) ?? 0) + 5);
  }
  for (let step = 0; step < 150; step++) {
    write();
    sim.runFor(200);
  }
  sim.restart(6);
  for (let step = 0; step < 150; step++) {
    write();
    sim.runFor(200);
  }
  const check = (): string | null => {
    for (const key of keys) {
      for (const owner of after.ownersOfKey(key)) {
        const got = sim.store(index.get(owner)!).value(key);
        if (got !== (acked.get(key) ?? 0)) return `${owner} holds ${key} = ${got}, acknowledged ${acked.get(key) ?? 0}${orphaned.includes(partitionOf(key, cfg.partitions)) ? " (a partition the join moved whole)" : ""}`;
      }
    }
    return null;
  };
  sim.runUntilTrue(() => formed(7) && check() === null, 300_000, 1_000);
  return check();
}

test(`partitioned (RF 2, 64 partitions): a node joins 6 under writes; seeds ${base}..${base + joinCount - 1}: every new owner gets every acknowledged increment, even of a partition the join moved whole`, () => {
  const failures: string[] = [];
  for (let s = base; s < base + joinCount; s++) {
    const f = runJoin(s);
    if (f !== null) failures.push(`seed ${s}: ${f}\n  reproduce: IMDB_SEED=${s} IMDB_SIM_SEEDS=20 npx bun test test/sim/partitioned.test.ts`);
  }
  if (failures.length > 0) console.error(failures.join("\n"));
  expect(failures).toEqual([]);
}, 300_000);

/**
 * Eviction (Cluster.evictStrays) and the partitions coming back. A node joins 6 (RF 2): the
 * former owners of what it takes over drop those keys once it acknowledged holding them, each
 * starting a new actor first (it wrote them). The joiner then dies and is removed: the partitions
 * return to former owners that hold nothing of them, and those write the keys again at once,
 * before anti-entropy from the other owner refills them. Had they kept their actor, each such
 * write would claim the writer's own earlier increments as reset (crdt/clocks.ts dotBase) and the
 * other owner would lose them; every owner must end with every acknowledged increment.
 */
function runEvict(seed: number): string | null {
  const cfg = { replicationFactor: 2, partitions: 64 };
  const sim = new Simulation({
    seed, nodes: 7, startStopped: [6], config: cfg, counterInvariant: false, traceMessages: false,
    network: { lossRate: 0.03, duplicateRate: 0.03, delayMaxMs: 10 },
    storeFactory: (actor, nowMs, hashSeed) => new EngineStore(actor, nowMs, hashSeed),
  });
  const formed = (n: number): boolean => sim.runningIndexes().every((i) => sim.view(i).filter((m) => m.status === "alive").length === n);
  if (!sim.runUntilTrue(() => formed(6), 120_000)) return "the first 6 nodes did not form";
  const ids = Array.from({ length: 7 }, (_, i) => asNodeId(`n${i}`));
  const six = new Placement(ids.slice(0, 6), cfg);
  const seven = new Placement(ids, cfg);
  const keys = Array.from({ length: 60 }, (_, i) => `e${i}`);
  const acked = new Map<string, number>();
  const inc = (i: number, key: string, by: number): void => {
    if (sim.increment(i, key, by)) acked.set(key, (acked.get(key) ?? 0) + by);
  };
  // Each key incremented at each of its owners: both actors' rows in every copy.
  for (const key of keys) for (const o of six.ownersOfKey(key)) inc(ids.indexOf(o), key, 3);
  sim.runFor(5_000);
  const actorsBefore = ids.slice(0, 6).map((_, i) => sim.store(i).actor);
  sim.restart(6);
  const holdsOnlyOwn = (pl: Placement, members: readonly number[]): string | null => {
    for (const i of members) for (const key of sim.store(i).keys()) if (!pl.ownersOfKey(key).includes(ids[i]!)) return `${ids[i]} holds ${key}, owned by ${pl.ownersOfKey(key).join(",")}`;
    return null;
  };
  const all7 = [0, 1, 2, 3, 4, 5, 6];
  const filled = (): boolean => keys.every((k) => !seven.ownersOfKey(k).includes(ids[6]!) || sim.store(6).value(k) === acked.get(k));
  if (!sim.runUntilTrue(() => formed(7) && filled() && holdsOnlyOwn(seven, all7) === null, sim.nowMs + 120_000, 500)) {
    return `after the join: ${holdsOnlyOwn(seven, all7) ?? "n6 was not filled"}`;
  }
  // Keys some former owner dropped (the join moves more than n6's share: placement.ts bounds loads).
  const dropper = (k: string): NodeId[] => six.ownersOfKey(k).filter((o) => !seven.ownersOfKey(k).includes(o));
  const moved = keys.filter((k) => dropper(k).length > 0);
  if (moved.length === 0) return "the join moved no key: pick other keys";
  // Every former owner that dropped keys it wrote writes as a new actor now; the others do not.
  for (let i = 0; i < 6; i++) {
    const dropped = keys.some((k) => six.ownersOfKey(k).includes(ids[i]!) && !seven.ownersOfKey(k).includes(ids[i]!));
    if ((sim.store(i).actor !== actorsBefore[i]) !== dropped) return `${ids[i]} ${dropped ? "dropped keys it wrote as the same actor" : "renewed its actor with nothing dropped"}`;
    if (sim.cluster(i)!.evictions().keys > 0 !== dropped) return `${ids[i]}: evictions ${sim.cluster(i)!.evictions().keys}, dropped ${dropped}`;
  }
  // n6 dies and is removed once seen dead: the placement is six's again, and the owners that
  // dropped keys own them again, holding nothing of them; they write them at once.
  sim.kill(6);
  const six6 = [0, 1, 2, 3, 4, 5];
  if (!sim.runUntilTrue(() => six6.every((i) => sim.view(i).find((m) => m.id === ids[6])?.status === "dead"), sim.nowMs + 60_000, 100)) return "n6 was not seen dead";
  for (const i of six6) sim.removeMember(i, ids[6]!);
  if (!sim.runUntilTrue(() => six6.every((i) => sim.cluster(i)!.placement()!.members.length === 6), sim.nowMs + 30_000, 100)) return "n6 was not removed";
  for (const key of moved) {
    for (const o of dropper(key)) if (sim.store(ids.indexOf(o)).value(key) !== 0) return `${o} still holds ${key}, which it dropped`;
    for (const o of dropper(key)) inc(ids.indexOf(o), key, 1);
  }
  const check = (): string | null => {
    for (const key of keys) {
      for (const o of six.ownersOfKey(key)) {
        const got = sim.store(ids.indexOf(o)).value(key);
        if (got !== acked.get(key)) return `${o} holds ${key} = ${got}, acknowledged ${acked.get(key)}`;
      }
    }
    return holdsOnlyOwn(six, [0, 1, 2, 3, 4, 5]);
  };
  sim.runUntilTrue(() => check() === null, sim.nowMs + 300_000, 1_000);
  return check();
}

test(`partitioned (RF 2, 64 partitions): eviction after a join, then the partitions come back and are written before any fill; seeds ${base}..${base + joinCount - 1}: nothing acknowledged is lost`, () => {
  const failures: string[] = [];
  for (let s = base; s < base + joinCount; s++) {
    const f = runEvict(s);
    if (f !== null) failures.push(`seed ${s}: ${f}\n  reproduce: IMDB_SEED=${s} IMDB_SIM_SEEDS=50 npx bun test test/sim/partitioned.test.ts`);
  }
  if (failures.length > 0) console.error(failures.join("\n"));
  expect(failures).toEqual([]);
}, 300_000);
