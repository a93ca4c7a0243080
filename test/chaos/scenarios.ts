// The chaos runs themselves: a workload against real nodes while faults are injected, then heal,
// a convergence check with its time, and the checkers over the recorded history.
import { checkAll, checkExpiry, type Violation } from "./checkers.ts";
import { ChaosCluster, chaosClientDeadlineMs, freePort, type ChaosNodeOptions } from "./cluster.ts";
import { defaultLanConfig } from "../../src/cluster/config.ts";
import { Placement } from "../../src/cluster/placement.ts";
import { asNodeId } from "../../src/cluster/types.ts";
import { History, type Op, type TtlFinal } from "./history.ts";
import { awaitTtlAgreement, expiryChurnMix, expiryFreshMix, ExpiryWorkload } from "./expiry-workload.ts";
import { awaitConvergence, counterOnlyMix, mixedMix, seededRandom, Workload, type KeySpace } from "./workload.ts";
import { tempDir } from "../integration/harness.ts";
import { cpSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Time allowed from heal to agreement (issue 7: <= 5 s). */
export const convergenceMsMax = 5000;
/** After a failed convergence check, how long to keep watching to report when (if ever) it converged. */
export const lateConvergenceMsMax = 60_000;
/** Time allowed for a fresh cluster to see every member alive. */
export const membershipFormMsMax = 30_000;

export interface RunReport {
  name: string;
  faults: string;
  /** A control run: it is meant to be judged a failure (see Fault.control). */
  control: boolean;
  seed: number;
  ops: { ok: number; failed: number; indeterminate: number };
  violations: Violation[];
  converged: boolean;
  convergenceMs: number | null;
  durationMs: number;
  /** Why the run could not be judged (e.g. the cluster never formed); a run with an error fails. */
  error: string | null;
  notes: string[];
}

/** The checkers found nothing wrong. */
export function clean(r: RunReport): boolean {
  return r.error === null && r.converged && r.violations.length === 0;
}

/** A run passes when it is clean, and a control run passes when the checks caught it (and it ran at all). */
export function passed(r: RunReport): boolean {
  if (!r.control) return clean(r);
  return (!r.converged || r.violations.length > 0) && r.ops.ok > 0;
}

type Log = (line: string) => void;

const sleep = (ms: number) => Bun.sleep(Math.max(0, ms));

/**
 * kill -9 cycles on one node with durability sync: increments run while the node is killed at
 * random moments and restarted; no acknowledged increment may be missing afterwards.
 */
export async function killCycles(o: { cycles: number; seed: number; log: Log; workers?: number; durability?: string; wipeOnRestart?: boolean }): Promise<RunReport> {
  const durability = o.durability ?? "sync";
  const t0 = performance.now();
  const random = seededRandom(o.seed);
  const dir = tempDir("chaos-kill");
  const history = new History();
  const keys: KeySpace = { counters: 3, registers: 0, mvs: 0 };
  const report: RunReport = { name: `kill-9 cycles (1 node, ${durability}${o.wipeOnRestart === true ? ", disk wiped: control" : ""})`, faults: `kill -9 x${o.cycles}`, control: o.wipeOnRestart === true, seed: o.seed, ops: { ok: 0, failed: 0, indeterminate: 0 }, violations: [], converged: false, convergenceMs: null, durationMs: 0, error: null, notes: [] };
  let cluster: ChaosCluster | null = null;
  try {
    cluster = await ChaosCluster.start({ dir: dir.path, nodes: [{ id: "node-1", durability, clockOffsetMs: 0 }], join: false, random });
    const c = cluster;
    const workload = new Workload({ history, targets: () => c.targets(), workers: o.workers ?? 4, mix: counterOnlyMix, keys, random, pauseAfterErrorMs: 20 });
    workload.start();
    const node = c.node("node-1");
    const ackedAdds = () => history.ops.filter((op) => op.kind === "add" && op.outcome === "ok").length;
    for (let i = 0; i < o.cycles; i++) {
      // Every cycle kills a node that has acknowledged something since it started, at a random moment.
      const before = ackedAdds();
      const readyBy = performance.now() + 10_000;
      while (ackedAdds() === before && performance.now() < readyBy) await sleep(5);
      await sleep(random() * 400);
      await node.kill();
      // Negative control: a node that comes back with an empty disk must be caught losing writes.
      if (o.wipeOnRestart === true) rmSync(join(dir.path, "data", "node-1"), { recursive: true, force: true });
      await sleep(random() * 50);
      await node.start();
      if ((i + 1) % 10 === 0) o.log(`  kill cycle ${i + 1}/${o.cycles}: ${history.counts().ok} ops acknowledged so far`);
    }
    await sleep(200);
    await workload.stop();
    const conv = await awaitConvergence(() => c.targets(), keys, convergenceMsMax);
    report.converged = conv.converged;
    report.convergenceMs = conv.converged ? conv.ms : null;
    report.violations = checkAll(history.ops, conv.finals);
    const acked = history.ops.filter((op) => op.kind === "add" && op.outcome === "ok").length;
    report.notes.push(`${acked} increments acknowledged across ${o.cycles} kills`);
    if (acked === 0) report.error = "no increment was acknowledged: the run proves nothing";
  } catch (err) {
    report.error = err instanceof Error ? err.message : String(err);
  } finally {
    await cluster?.close().catch(() => undefined);
    dir.cleanup();
  }
  report.ops = history.counts();
  report.durationMs = performance.now() - t0;
  return report;
}

/** One fault schedule of the multi-node matrix: what to do while the workload runs, and how long. */
export interface Fault {
  name: string;
  /** Node options differing from the defaults (e.g. clock skew). */
  nodeOptions?: (id: string, index: number) => Partial<ChaosNodeOptions>;
  /** A control: the fault is left in place (no heal), so the run must be judged a failure. */
  control?: boolean;
  /**
   * Reads made during the run may miss writes acknowledged through the same node: the checkers
   * judge the writes, the set reads that removes were based on, and the final state, not the
   * counter and register reads in between. Only for a partitioned cluster while partitions move
   * (docs/architecture.md "Forwarding"): a read is served by one owner, which may lag the owner
   * that took the write by its replication delay until reads merge every owner's state.
   */
  readsMayLag?: boolean;
  /** Injects the fault; returns when the fault period is over (the caller then heals). */
  inject: (c: ChaosCluster, ctx: FaultContext) => Promise<void>;
  /** Checked once the cluster has converged after the heal; throws what does not hold. */
  afterConvergence?: (c: ChaosCluster, ctx: FaultContext) => Promise<void>;
}

export interface FaultContext {
  random: () => number;
  log: Log;
  scale: number;
  /** Evidence that the fault took effect, for the report. */
  note: (line: string) => void;
}

export interface MatrixOptions {
  nodes: number;
  seed: number;
  log: Log;
  /** Multiplies fault durations: ci < 1, full = 1. */
  scale: number;
  /** Workload time before the fault, ms. */
  warmupMs: number;
}

/** Runs one fault on a fresh n-node cluster: form, load, fault, heal, converge, check. */
export async function matrixRun(fault: Fault, o: MatrixOptions): Promise<RunReport> {
  const t0 = performance.now();
  const random = seededRandom(o.seed);
  const dir = tempDir("chaos-matrix");
  const history = new History();
  const keys: KeySpace = { counters: 4, registers: 3, mvs: 2, deletables: 2, sets: 2 };
  const report: RunReport = { name: `${o.nodes} nodes`, faults: fault.name, control: fault.control === true, seed: o.seed, ops: { ok: 0, failed: 0, indeterminate: 0 }, violations: [], converged: false, convergenceMs: null, durationMs: 0, error: null, notes: [] };
  let cluster: ChaosCluster | null = null;
  let workload: Workload | null = null;
  try {
    const ids = Array.from({ length: o.nodes }, (_, i) => `node-${i + 1}`);
    cluster = await ChaosCluster.start({
      dir: dir.path,
      nodes: ids.map((id, i) => ({ id, durability: "sync", clockOffsetMs: 0, ...fault.nodeOptions?.(id, i) })),
      join: true,
      random,
    });
    const c = cluster;
    if (!(await c.awaitMembership(membershipFormMsMax))) {
      const views = await c.aliveViews();
      throw new Error(`the cluster did not form within ${membershipFormMsMax} ms: ${[...views].map(([id, v]) => `${id} sees ${v === null ? "?" : v.length}`).join(", ")}`);
    }
    workload = new Workload({ history, targets: () => c.targets(), workers: o.nodes * 2, mix: mixedMix, keys, random, pauseAfterErrorMs: 50, pauseMs: 2 });
    if (!(await workload.prepare(convergenceMsMax))) throw new Error(`the MV keys written on ${ids[0]} did not reach every node within ${convergenceMsMax} ms`);
    workload.start();
    await sleep(o.warmupMs);
    const before = c.nodes.map((n) => n.peerProxy.stats());
    await fault.inject(c, { random, log: o.log, scale: o.scale, note: (line) => report.notes.push(line) });
    const after = c.nodes.map((n) => n.peerProxy.stats());
    const delta = (f: "bytesForwarded" | "bytesDropped" | "resets") => after.reduce((s, a, i) => s + a[f] - (before[i]?.[f] ?? 0), 0);
    // Peer traffic must flow through the proxies, or no proxy fault means anything.
    if (delta("bytesForwarded") + delta("bytesDropped") === 0) throw new Error("no peer traffic went through the proxies during the fault");
    report.notes.push(`peer proxies during the fault: ${delta("bytesForwarded")} bytes forwarded, ${delta("bytesDropped")} dropped, ${delta("resets")} connections reset`);
    if (fault.control !== true) c.heal();
    const healedAt = performance.now();
    // Restart anything the fault left down; the clock for convergence starts once writes have stopped.
    for (const n of c.nodes) if (n.pid === null) await n.start();
    await workload.stop();
    workload = null;
    const conv = await awaitConvergence(() => c.targets(), keys, convergenceMsMax);
    report.converged = conv.converged;
    report.convergenceMs = conv.converged ? conv.ms : null;
    const lagging = new Set(["readCounter", "readLww", "readMv"]);
    report.violations = checkAll(fault.readsMayLag === true ? history.ops.filter((op) => !lagging.has(op.kind)) : history.ops, conv.finals);
    if (!conv.converged && fault.control !== true) {
      // Still a failure; how much longer it takes tells a slow repair from none at all. (A
      // control run never heals: waiting for it would only spend the profile's time budget.)
      const late = await awaitConvergence(() => c.targets(), keys, lateConvergenceMsMax);
      report.notes.push(`not converged ${convergenceMsMax} ms after the last write; ${late.converged ? `agreed ${Math.round(convergenceMsMax + late.ms)} ms after it` : `still not after ${convergenceMsMax + lateConvergenceMsMax} ms`}`);
    } else report.notes.push(`agreed ${Math.round(conv.ms)} ms after the last write, ${Math.round(performance.now() - healedAt)} ms after heal (in-flight ops finishing included)`);
    const skews = await Promise.all(c.nodes.map((n) => c.admin(n.id).stats().then((st) => Number(st.find((x) => x.name === "skewEvents")?.value ?? 0), () => 0)));
    if (skews.some((x) => x > 0)) report.notes.push(`clock skew events counted by the nodes: ${skews.join(", ")}`);
    // The healed cluster still replicates: a new write on one node is read on every node.
    const first = c.nodes[0]!;
    await c.client(first.id).increment("post-heal", 1n);
    const spread = await awaitConvergence(() => c.targets(), { counters: 0, registers: 0, mvs: 0, extra: ["post-heal"] }, convergenceMsMax);
    if (!spread.converged || spread.finals.some((f) => f.counter !== 1n)) report.error = `a write after heal did not reach every node within ${convergenceMsMax} ms`;
    else report.notes.push(`post-heal write on ${first.id} read on all nodes in ${Math.round(spread.ms)} ms`);
    if (fault.afterConvergence !== undefined && fault.control !== true) await fault.afterConvergence(c, { random, log: o.log, scale: o.scale, note: (line) => report.notes.push(line) });
  } catch (err) {
    report.error = err instanceof Error ? err.message : String(err);
  } finally {
    await workload?.stop().catch(() => undefined);
    await cluster?.close().catch(() => undefined);
    dir.cleanup();
  }
  report.ops = history.counts();
  report.durationMs = performance.now() - t0;
  return report;
}

/** How long after convergence the former owners have to drop what they no longer own (the rebalance scenario). */
const capacityMsMax = 30_000;

const ms = (base: number, scale: number) => Math.max(200, Math.round(base * scale));

function halves(ids: string[]): string[][] {
  const mid = Math.ceil(ids.length / 2);
  return [ids.slice(0, mid), ids.slice(mid)];
}

/** Each node keeps links only to its two ring neighbours. */
function ringCuts(ids: string[]): [string, string][] {
  const cuts: [string, string][] = [];
  const n = ids.length;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const d = Math.min((i - j + n) % n, (j - i + n) % n);
      if (i !== j && d > 1) cuts.push([ids[i] as string, ids[j] as string]);
    }
  }
  return cuts;
}

/** How long a probe write gets to cross a partition that should stop it (replication takes ~10 ms). */
export const partitionProbeMs = 1500;
/** Tries of a probe write before the run is an error (each bounded by the client deadline). */
const probeWriteAttempts = 3;
let probeSeq = 0;

/**
 * Proves a partition holds: a write on each group's first node reaches its own group and, after
 * partitionProbeMs, no other group. A leak is an error of the run (the fault would prove nothing).
 */
async function verifyPartition(c: ChaosCluster, groups: readonly (readonly string[])[], ctx: FaultContext): Promise<void> {
  const probes = groups.map((g) => ({ group: g, key: `probe-${++probeSeq}`, writer: g[0] as string }));
  for (const p of probes) {
    // A probe only has to exist on its side (its count does not matter), so a write that timed
    // out on a loaded machine is simply sent again.
    for (let attempt = 1; ; attempt++) {
      try {
        await c.client(p.writer).increment(p.key, 1n);
        break;
      } catch (err) {
        if (attempt >= probeWriteAttempts) throw err;
      }
    }
  }
  const seen = async (id: string, key: string) => {
    try {
      await c.client(id).get(key);
      return true;
    } catch {
      return false;
    }
  };
  const t0 = performance.now();
  for (const p of probes) {
    for (const id of p.group) {
      while (!(await seen(id, p.key))) {
        if (performance.now() - t0 > partitionProbeMs) throw new Error(`partition probe: ${id} never saw ${p.key} from its own side (${p.writer})`);
        await sleep(20);
      }
    }
  }
  const inside = performance.now() - t0;
  await sleep(partitionProbeMs - inside);
  for (const p of probes) {
    for (const other of c.nodes.map((n) => n.id).filter((id) => !p.group.includes(id))) {
      if (await seen(other, p.key)) throw new Error(`partition leaked: ${other} saw ${p.key} written on ${p.writer} across the cut`);
    }
  }
  ctx.note(`partition held: probes reached their own side in ${Math.round(inside)} ms and not the other side in ${partitionProbeMs} ms`);
}

/**
 * Keeps the workload off node `id` until its acknowledged writes are held by every peer, runs
 * `act` (which loses its data), then sends the workload to it again.
 */
async function drainThen(c: ChaosCluster, id: string, ctx: FaultContext, act: () => Promise<void>): Promise<void> {
  const n = c.node(id);
  c.drain(id);
  try {
    // No client byte reaches the node any more: a worker's retry of an op it began before the
    // drain cannot be acknowledged after the check below (it times out: indeterminate). Ops
    // answered before this have their deltas in the node's backlog, which must then empty.
    n.clientProxy.set({ blackhole: true });
    await sleep(chaosClientDeadlineMs);
    if (!(await c.awaitOutboundSettled(id, 15_000))) throw new Error(`${id}'s deltas were not acknowledged by its peers within 15 s`);
    await act();
  } finally {
    n.clientProxy.heal();
    c.undrain(id);
  }
  ctx.note(`${id} drained, lost its data, and took writes again`);
}

const pickNode = (c: ChaosCluster, random: () => number) => c.nodes[Math.floor(random() * c.nodes.length)] ?? c.nodes[0]!;

export const faults: Record<string, Fault> = {
  control: {
    name: "control: halves never healed",
    control: true,
    inject: async (c, { scale }) => {
      c.partition(halves(c.nodes.map((n) => n.id)));
      await sleep(ms(3000, scale));
    },
  },
  none: { name: "none (baseline)", inject: async (_c, { scale }) => sleep(ms(2000, scale)) },
  halves: {
    name: "partition: halves",
    inject: async (c, ctx) => {
      const groups = halves(c.nodes.map((n) => n.id));
      c.partition(groups);
      await verifyPartition(c, groups, ctx);
      await sleep(ms(8000, ctx.scale));
    },
  },
  ring: {
    name: "partition: ring",
    inject: async (c, ctx) => {
      c.cutLinks(ringCuts(c.nodes.map((n) => n.id)));
      await sleep(ms(8000, ctx.scale));
      const dropped = c.nodes.reduce((s, n) => s + n.peerProxy.stats().bytesDropped, 0);
      if (dropped === 0) throw new Error("the ring cut no traffic");
    },
  },
  isolated: {
    name: "partition: one isolated",
    inject: async (c, ctx) => {
      const lone = pickNode(c, ctx.random).id;
      const groups = [[lone], c.nodes.map((n) => n.id).filter((id) => id !== lone)];
      c.partition(groups);
      await verifyPartition(c, groups, ctx);
      await sleep(ms(8000, ctx.scale));
    },
  },
  kill: {
    name: "kill -9 + restart",
    inject: async (c, { random, scale }) => {
      for (let i = 0; i < 3; i++) {
        const n = pickNode(c, random);
        await n.kill();
        await sleep(ms(1500, scale) * random());
        await n.start();
        await sleep(ms(1500, scale));
      }
    },
  },
  wipe: {
    name: "disk wiped + rejoin under load",
    // Issue 12's identity finding: a node that lost its data must not count again from its old
    // position. Its acknowledged writes are first allowed to reach its peers (a wipe loses what
    // only it held, which no database can keep); then one peer is paused so nothing refills the
    // wiped node before it takes new increments, and every one of those must survive.
    inject: async (c, ctx) => {
      const n = pickNode(c, ctx.random);
      const paused = c.nodes.find((x) => x !== n) ?? n;
      await drainThen(c, n.id, ctx, async () => {
        paused.stop();
        await n.kill();
        rmSync(join(c.dir, "data", n.id), { recursive: true, force: true });
        n.dataLife += 1;
        await n.start();
      });
      await sleep(ms(3000, ctx.scale));
      paused.cont();
      await sleep(ms(1500, ctx.scale));
      ctx.note(`${n.id} wiped and restarted while ${paused.id} was paused`);
    },
  },
  restore: {
    name: "restore from an old backup under load",
    // docs/operations.md's restore: the data folder copied while the node ran, put back later.
    // The restored node is behind its own past; its new increments must not be swallowed.
    inject: async (c, ctx) => {
      const n = pickNode(c, ctx.random);
      const data = join(c.dir, "data", n.id);
      const backup = join(c.dir, `backup-${n.id}`);
      cpSync(data, backup, { recursive: true });
      await sleep(ms(3000, ctx.scale));
      await drainThen(c, n.id, ctx, async () => {
        await n.kill();
        rmSync(data, { recursive: true, force: true });
        cpSync(backup, data, { recursive: true });
        n.dataLife += 1;
        await n.start();
      });
      await sleep(ms(3000, ctx.scale));
      ctx.note(`${n.id} restored from a copy ${ms(3000, ctx.scale)} ms old`);
    },
  },
  rebalance: {
    name: "partitioned (RF 3 of 5): a node leaves and rejoins empty, under delay",
    // Issue 17: with a replication factor every key lives on 3 of the 5 nodes. A node leaves
    // gracefully (its partitions move to the others, filled from their other owners), its folder
    // is wiped, and it joins again (partitions move back and it is filled), while the workload
    // writes through every node (forwarded to owners) and the peer links are slow. Every
    // acknowledged write must survive both moves, and the set and counter checkers see them all.
    nodeOptions: () => ({ extraArgs: ["--replication-factor", "3", "--partitions", "256"] }),
    readsMayLag: true,
    inject: async (c, ctx) => {
      c.setPeerFaults({ delayMs: 20, jitterMs: 20 });
      const n = pickNode(c, ctx.random);
      await c.admin(n.id).leave();
      const exited = n.proc?.proc.exited;
      if (exited !== undefined) await Promise.race([exited, sleep(15_000)]);
      await n.kill();
      ctx.note(`${n.id} left`);
      await sleep(ms(3000, ctx.scale));
      rmSync(join(c.dir, "data", n.id), { recursive: true, force: true });
      n.dataLife += 1;
      await n.start();
      // Writes go on while anti-entropy fills it (its partitions' former owners included).
      await sleep(ms(12_000, ctx.scale));
      ctx.note(`${n.id} joined again with an empty folder`);
    },
    // Capacity: the moves over, each node holds only the keys it owns (the former owners dropped
    // the rest once the owners held them: Cluster.evictStrays), with every write still there
    // (the checkers ran on the converged reads before this).
    afterConvergence: async (c, ctx) => {
      const ids = c.nodes.map((n) => asNodeId(n.id));
      const placement = new Placement(ids, { replicationFactor: 3, partitions: 256 });
      const strays = async (): Promise<string[]> => {
        const out: string[] = [];
        for (const n of c.nodes) {
          let cursor = 0;
          do {
            const page = await c.client(n.id).scan({ cursor, limit: 1000, local: true });
            for (const key of page.keys) if (!placement.ownersOfKey(key).includes(asNodeId(n.id))) out.push(`${n.id} holds ${key}`);
            cursor = page.cursor;
          } while (cursor !== 0);
        }
        return out;
      };
      const deadline = performance.now() + capacityMsMax;
      let left = await strays();
      while (left.length > 0 && performance.now() < deadline) {
        await sleep(500);
        left = await strays();
      }
      if (left.length > 0) throw new Error(`${capacityMsMax} ms after convergence nodes still held keys they do not own: ${left.slice(0, 5).join(", ")}`);
      const evicted = await Promise.all(c.nodes.map((n) => metricOf(n.proc?.metricsAddr ?? null, "imdb_keys_evicted_total")));
      ctx.note(`capacity: every node holds only the keys it owns; keys dropped per node (imdb_keys_evicted_total): ${evicted.map((v, i) => `${c.nodes[i]!.id} ${v ?? "?"}`).join(", ")}`);
    },
  },
  stall: {
    name: "SIGSTOP stall",
    inject: async (c, { random, scale, note }) => {
      const n = pickNode(c, random);
      n.stop();
      const stallMs = ms(5000 + random() * 25_000, scale);
      await sleep(stallMs);
      const answered = await c.client(n.id).status().then(() => true, () => false);
      n.cont();
      if (answered) throw new Error(`${n.id} answered while SIGSTOPped`);
      note(`${n.id} stalled ${stallMs} ms`);
    },
  },
  delay: {
    name: "proxy delay+jitter",
    inject: async (c, { scale }) => {
      c.setPeerFaults({ delayMs: 150, jitterMs: 100 });
      await sleep(ms(6000, scale));
    },
  },
  blackhole: {
    name: "proxy blackhole (2 nodes' inbound)",
    inject: async (c, { random, scale }) => {
      const a = pickNode(c, random);
      const b = c.nodes.find((n) => n !== a) ?? a;
      a.peerProxy.set({ blackhole: true });
      b.peerProxy.set({ blackhole: true });
      await sleep(ms(6000, scale));
    },
  },
  resets: {
    name: "proxy resets + bandwidth limit",
    inject: async (c, { scale, note }) => {
      c.setPeerFaults({ bandwidthBytesPerSec: 64 * 1024 });
      const end = performance.now() + ms(6000, scale);
      let resets = 0;
      while (performance.now() < end) {
        await sleep(300);
        // Peer links and client links alike: client ops cut mid-flight become indeterminate.
        for (const n of c.nodes) resets += n.peerProxy.reset() + n.clientProxy.reset();
      }
      note(`${resets} connections reset`);
    },
  },
  skew: {
    name: "clock skew +-60 s",
    nodeOptions: (_id, i) => ({ clockOffsetMs: i % 3 === 0 ? 0 : i % 3 === 1 ? 60_000 : -60_000 }),
    inject: async (_c, { scale }) => sleep(ms(6000, scale)),
  },
  combined: {
    name: "all combined",
    nodeOptions: (_id, i) => ({ clockOffsetMs: i % 3 === 0 ? 0 : i % 3 === 1 ? 60_000 : -60_000 }),
    inject: async (c, { random, scale }) => {
      c.setPeerFaults({ delayMs: 50, jitterMs: 50 });
      c.partition(halves(c.nodes.map((n) => n.id)));
      const stalled = pickNode(c, random);
      stalled.stop();
      await sleep(ms(4000, scale));
      stalled.cont();
      const killed = c.nodes.find((n) => n !== stalled) ?? stalled;
      await killed.kill();
      await sleep(ms(1000, scale));
      await killed.start();
      c.heal();
      c.cutLinks(ringCuts(c.nodes.map((n) => n.id)));
      await sleep(ms(4000, scale));
    },
  },
};

/** The expiry scenario's clock offsets: as the skew fault's, one node on time, one 60 s ahead, one 60 s behind. */
export const expirySkewsMs = [0, 60_000, -60_000] as const;
/** Phase A's length after the partition was proved (the probes take partitionProbeMs more). */
export const expiryChurnMs = 4000;
/** Phase C's length: fresh adds only. */
export const expiryFreshMs = 2500;
/**
 * Time allowed from heal to every deadline executed and agreed on every node. The node 60 s ahead
 * executes any phase-A deadline within expiryTtlMsMax on its clock, the others learn it from it
 * (docs/api.md, "Clock skew"); the rest is repair after the partition.
 */
export const expiryQuietMsMax = 20_000;
/** Beyond the last deadline's due time before phase B looks: an expire applied late, and the sweep's ticks (50 ms). */
export const expiryDueMarginMs = 500;

/** A metric's value summed over its samples on one node's /metrics (null: not reachable). */
async function metricOf(metricsAddr: string | null, family: string): Promise<number | null> {
  if (metricsAddr === null) return null;
  try {
    const text = await (await fetch(`http://${metricsAddr}/metrics`)).text();
    return samples(text, family).reduce((s, x) => s + x.value, 0);
  } catch {
    return null;
  }
}

/**
 * Issue 14's chaos scenario: TTL keys on 3 nodes with clocks 0, +60 s and -60 s, sync durability.
 * Phase A: under a partition (one node cut off, chosen by the seed), unique members are added,
 * short relative TTLs set (each node turns one into a deadline on its own clock) and sometimes
 * cleared, and members and Ttl read in one Batch, while the matrix's mixed workload runs on its
 * own keys. Heal; phase B: no writes, until every node has executed every deadline and agrees.
 * Phase C: fresh members only. Then checkExpiry and checkAll judge the history.
 */
export async function expiryRun(o: { seed: number; log: Log }): Promise<RunReport> {
  const t0 = performance.now();
  const random = seededRandom(o.seed);
  const dir = tempDir("chaos-expiry");
  const history = new History();
  const ttlHistory = new History();
  const keys: KeySpace = { counters: 2, registers: 2, mvs: 1, deletables: 1, sets: 1 };
  const ttlKeys = 3;
  const report: RunReport = { name: "3 nodes, TTL keys", faults: "expiry: skew +-60 s + partition", control: false, seed: o.seed, ops: { ok: 0, failed: 0, indeterminate: 0 }, violations: [], converged: false, convergenceMs: null, durationMs: 0, error: null, notes: [] };
  let cluster: ChaosCluster | null = null;
  let workload: Workload | null = null;
  let churn: ExpiryWorkload | null = null;
  try {
    const ids = ["node-1", "node-2", "node-3"];
    cluster = await ChaosCluster.start({ dir: dir.path, nodes: ids.map((id, i) => ({ id, durability: "sync", clockOffsetMs: expirySkewsMs[i] ?? 0 })), join: true, random });
    const c = cluster;
    if (!(await c.awaitMembership(membershipFormMsMax))) throw new Error(`the cluster did not form within ${membershipFormMsMax} ms`);
    workload = new Workload({ history, targets: () => c.targets(), workers: 3, mix: mixedMix, keys, random, pauseAfterErrorMs: 50, pauseMs: 5 });
    if (!(await workload.prepare(convergenceMsMax))) throw new Error(`the MV keys did not reach every node within ${convergenceMsMax} ms`);
    churn = new ExpiryWorkload({ history: ttlHistory, targets: () => c.targets(), workers: 8, keys: ttlKeys, random, pauseMs: 5, pauseAfterErrorMs: 50 });

    // Phase A: churn under skew and a partition.
    const lone = pickNode(c, random).id;
    const groups = [[lone], ids.filter((id) => id !== lone)];
    workload.start();
    churn.start(expiryChurnMix, "A");
    const before = c.nodes.map((n) => n.peerProxy.stats());
    c.partition(groups);
    await verifyPartition(c, groups, { random, log: o.log, scale: 1, note: (line) => report.notes.push(line) });
    await sleep(expiryChurnMs);
    const dropped = c.nodes.reduce((s, n, i) => s + n.peerProxy.stats().bytesDropped - (before[i]?.bytesDropped ?? 0), 0);
    if (dropped === 0) throw new Error("the partition dropped no peer traffic");
    c.heal();
    await churn.stop();
    await workload.stop();
    workload = null;
    const a = ttlHistory.ops;
    const count = (f: (op: Op) => boolean) => a.filter(f).length;
    report.notes.push(`phase A: ${lone} cut off for ${partitionProbeMs + expiryChurnMs} ms; ${count((x) => x.kind === "sadd" && x.outcome === "ok")} adds, ${count((x) => x.kind === "expire" && x.outcome === "ok" && x.applied === true)} deadlines set, ${count((x) => x.kind === "persist" && x.outcome === "ok" && x.applied === true)} cleared, ${count((x) => x.kind === "readTtl" && x.outcome === "ok" && x.ttlMs > 0)} reads saw a live deadline, ${count((x) => x.kind === "readTtl" && x.outcome === "ok" && x.ttlMs === -2)} a missing key`);
    if (count((x) => x.kind === "expire" && x.outcome === "ok" && x.applied === true) === 0) throw new Error("no deadline was set in phase A: the run proves nothing");

    // Phase B: no writes until every deadline was executed everywhere, every delta delivered, and all agree.
    const quietFrom = performance.now();
    // A deadline set by an expire op is at most its TTL past the clock of the node most ahead
    // when the op was applied (by its end), so it is due there from end + TTL on. Before that, a
    // deadline a node holds on a key it shows missing (Ttl -2: its members were removed by
    // another deadline's expiry) is invisible to the checks below, and an add under it may be
    // rightly removed once that deadline is executed.
    const expires = a.filter((x): x is Extract<Op, { kind: "expire" }> => x.kind === "expire" && x.outcome !== "failed");
    const dueBy = Math.max(0, ...expires.map((x) => x.endMs + x.ttlMs));
    await sleep(dueBy + expiryDueMarginMs - ttlHistory.now());
    let quiet = false;
    let quietReads: TtlFinal[] = [];
    while (!quiet && performance.now() - quietFrom < expiryQuietMsMax) {
      const left = expiryQuietMsMax - (performance.now() - quietFrom);
      const agreed = await awaitTtlAgreement(() => c.targets(), ttlKeys, true, left);
      if (!agreed.agreed) break;
      let settled = true;
      for (const n of c.nodes) settled = (await c.awaitOutboundSettled(n.id, Math.max(0, expiryQuietMsMax - (performance.now() - quietFrom)))) && settled;
      // Agreement read once more after the backlogs drained: nothing was still on its way.
      const again = await awaitTtlAgreement(() => c.targets(), ttlKeys, true, 0);
      quiet = settled && again.agreed;
      quietReads = again.finals;
    }
    if (!quiet) {
      const last = await awaitTtlAgreement(() => c.targets(), ttlKeys, true, 0);
      throw new Error(`${expiryQuietMsMax} ms after heal the nodes still held a live deadline or disagreed on the TTL keys: ${last.finals.map((f) => `${f.node} ${f.key} ${f.members.length} members ttl ${f.ttlMs}`).join("; ")}`);
    }
    const perNode = async (family: string) => {
      const v = await Promise.all(c.nodes.map((n) => metricOf(n.proc?.metricsAddr ?? null, family)));
      return c.nodes.map((n, i) => `${n.id} ${v[i] ?? "?"}`).join(", ");
    };
    report.notes.push(`phase B: every deadline executed and agreed ${Math.round(performance.now() - quietFrom)} ms after heal; deadlines executed per node (imdb_keys_expired_total): ${await perNode("imdb_keys_expired_total")}; records collected (imdb_tombstones_collected_total): ${await perNode("imdb_tombstones_collected_total")}`);

    // Phase C: fresh members only; each acknowledged one must survive everywhere.
    const phaseCFromMs = ttlHistory.now();
    churn.start(expiryFreshMix, "C");
    await sleep(expiryFreshMs);
    await churn.stop();
    churn = null;
    const freshAcked = ttlHistory.ops.filter((x) => x.kind === "sadd" && x.outcome === "ok" && x.startMs >= phaseCFromMs).length;
    report.notes.push(`phase C: ${freshAcked} fresh adds acknowledged`);
    if (freshAcked === 0) throw new Error("no add was acknowledged in phase C: the run proves nothing");

    const ttlConv = await awaitTtlAgreement(() => c.targets(), ttlKeys, false, convergenceMsMax);
    const conv = await awaitConvergence(() => c.targets(), keys, convergenceMsMax);
    report.converged = ttlConv.agreed && conv.converged;
    report.convergenceMs = report.converged ? ttlConv.ms + conv.ms : null;
    report.violations = [...checkExpiry(ttlHistory.ops, ttlConv.finals, { phaseCFromMs }), ...checkAll(history.ops, conv.finals)];
    if (report.violations.length > 0) {
      // The TTL history, for the report of a finding: one JSON line per op, then the phase marks and final reads.
      const file = join(tmpdir(), `chaos-expiry-${o.seed}-${Date.now()}.jsonl`);
      const lines = [...ttlHistory.ops.map((op) => JSON.stringify(op)), JSON.stringify({ quietReads, phaseCFromMs }), ...ttlConv.finals.map((f) => JSON.stringify({ final: f }))];
      writeFileSync(file, `${lines.join("\n")}\n`);
      report.notes.push(`TTL history written to ${file}`);
    }
    const skews = await Promise.all(c.nodes.map((n) => c.admin(n.id).stats().then((st) => Number(st.find((x) => x.name === "skewEvents")?.value ?? 0), () => 0)));
    report.notes.push(`clock skew events counted by the nodes: ${skews.join(", ")}; records collected by the end: ${await perNode("imdb_tombstones_collected_total")}`);
  } catch (err) {
    report.error = err instanceof Error ? err.message : String(err);
  } finally {
    await churn?.stop().catch(() => undefined);
    await workload?.stop().catch(() => undefined);
    await cluster?.close().catch(() => undefined);
    dir.cleanup();
  }
  const [x, y] = [history.counts(), ttlHistory.counts()];
  report.ops = { ok: x.ok + y.ok, failed: x.failed + y.failed, indeterminate: x.indeterminate + y.indeterminate };
  report.durationMs = performance.now() - t0;
  return report;
}

/** Issue 7's soak: mixed load on 3 nodes for `seconds`, memory at start and end, admin stats at the end. */
export async function soak(o: { seconds: number; seed: number; log: Log }): Promise<RunReport> {
  const t0 = performance.now();
  const random = seededRandom(o.seed);
  const dir = tempDir("chaos-soak");
  const history = new History();
  const keys: KeySpace = { counters: 16, registers: 16, mvs: 4, deletables: 4, sets: 4 };
  const report: RunReport = { name: "soak (3 nodes)", faults: `mixed load ${o.seconds} s`, control: false, seed: o.seed, ops: { ok: 0, failed: 0, indeterminate: 0 }, violations: [], converged: false, convergenceMs: null, durationMs: 0, error: null, notes: [] };
  let cluster: ChaosCluster | null = null;
  let workload: Workload | null = null;
  try {
    const ids = ["node-1", "node-2", "node-3"];
    const metricsPorts = await Promise.all(ids.map(() => freePort()));
    cluster = await ChaosCluster.start({
      dir: dir.path,
      nodes: ids.map((id, i) => ({ id, durability: "sync", clockOffsetMs: 0, extraArgs: ["--metrics-addr", `127.0.0.1:${metricsPorts[i]}`] })),
      join: true,
      random,
    });
    const c = cluster;
    if (!(await c.awaitMembership(membershipFormMsMax))) throw new Error(`the cluster did not form within ${membershipFormMsMax} ms`);
    const rss = () => c.nodes.map((n) => `${n.id} ${((n.rssBytes() ?? 0) / 1048576).toFixed(0)} MiB`).join(", ");
    report.notes.push(`memory at start: ${rss()}`);
    workload = new Workload({ history, targets: () => c.targets(), workers: 6, mix: mixedMix, keys, random, pauseAfterErrorMs: 50, pauseMs: 1 });
    if (!(await workload.prepare(convergenceMsMax))) throw new Error(`the MV keys did not reach every node within ${convergenceMsMax} ms`);
    workload.start();
    const end = performance.now() + o.seconds * 1000;
    while (performance.now() < end) {
      await sleep(Math.min(30_000, end - performance.now()));
      o.log(`  soak: ${Math.round((performance.now() - t0) / 1000)} s, ${history.ops.length} ops, ${rss()}`);
    }
    await workload.stop();
    workload = null;
    report.notes.push(`memory at end: ${rss()}`);
    for (const n of c.nodes) {
      const stats = await c.admin(n.id).stats();
      report.notes.push(`${n.id} stats: ${stats.map((s) => `${s.name}=${s.value}`).join(" ")}`);
    }
    for (const [i, n] of c.nodes.entries()) {
      const q = await queueCheck(`127.0.0.1:${metricsPorts[i]}`);
      report.notes.push(`${n.id} queues: ${q.note}`);
      if (q.over.length > 0) report.error = `${n.id}: queue over its bound: ${q.over.join(", ")}`;
    }
    const conv = await awaitConvergence(() => c.targets(), keys, convergenceMsMax);
    report.converged = conv.converged;
    report.convergenceMs = conv.converged ? conv.ms : null;
    report.violations = checkAll(history.ops, conv.finals);
  } catch (err) {
    report.error = err instanceof Error ? err.message : String(err);
  } finally {
    await workload?.stop().catch(() => undefined);
    await cluster?.close().catch(() => undefined);
    dir.cleanup();
  }
  report.ops = history.counts();
  report.durationMs = performance.now() - t0;
  return report;
}

/** Prometheus text lines `name{labels} value` for one metric family. */
function samples(text: string, family: string): { labels: string; value: number }[] {
  const out: { labels: string; value: number }[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m !== null && m[1] === family) out.push({ labels: m[2] ?? "", value: Number(m[3]) });
  }
  return out;
}

/** Reads /metrics and compares each peer's delta backlog with its named bound (deltaBacklogEntriesMax). */
async function queueCheck(metricsAddr: string): Promise<{ note: string; over: string[] }> {
  let text: string;
  try {
    text = await (await fetch(`http://${metricsAddr}/metrics`)).text();
  } catch (err) {
    return { note: `metrics not reachable (${String(err)}): queues not verified`, over: [] };
  }
  const bound = defaultLanConfig().deltaBacklogEntriesMax;
  const backlog = samples(text, "imdb_peer_delta_backlog");
  if (backlog.length === 0) return { note: "imdb_peer_delta_backlog not exported: queues not verified", over: [] };
  const over = backlog.filter((b) => b.value > bound).map((b) => `imdb_peer_delta_backlog${b.labels}=${b.value} > ${bound}`);
  const max = Math.max(...backlog.map((b) => b.value));
  return { note: `peer delta backlog max ${max} of bound ${bound} (${backlog.length} peers)`, over };
}
