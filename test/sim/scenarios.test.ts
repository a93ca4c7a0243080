// Targeted simulations: a killed node is detected by all, a short stall is not a death, an update reaches 100 nodes.

import { expect, test } from "bun:test";
import { defaultLanConfig } from "../../src/cluster/config.ts";
import { suspicionMinTimeoutMs } from "../../src/cluster/suspicion.ts";
import { disseminationRounds, formCluster, timeToDeadEverywhere } from "../../src/sim/measure.ts";
import { Rng } from "../../src/sim/rng.ts";
import { Simulation } from "../../src/sim/sim.ts";

const seed = Number(process.env.IMDB_SEED ?? Math.floor(Math.random() * 1_000_000_000));

test(`a killed node is marked dead by every other node, within 9 s (20 nodes, 6 kills, seed ${seed})`, () => {
  const times = timeToDeadEverywhere({ seed, nodes: 20, trials: 6 });
  for (const t of times) {
    expect(Number.isFinite(t)).toBe(true);
    expect(t).toBeLessThanOrEqual(9_000);
  }
}, 60_000);

test(`a node stalled for 2 s, shorter than the suspicion timeout, is not declared dead (50 nodes, seed ${seed})`, () => {
  const config = defaultLanConfig();
  expect(suspicionMinTimeoutMs(config.suspicionMult, 50, config.probeIntervalMs)).toBeGreaterThan(2_000);
  let deaths = 0;
  let suspicions = 0;
  let measuring = false;
  const sim = new Simulation({
    seed,
    nodes: 50,
    traceMessages: false,
    onEvent: (_n, e) => {
      if (!measuring) return;
      if (e.kind === "member-dead") deaths++;
      if (e.kind === "member-suspect") suspicions++;
    },
  });
  formCluster(sim, 60_000);
  measuring = true;
  const rng = new Rng(seed);
  for (let i = 0; i < 5; i++) {
    const victim = rng.int(50);
    sim.stall(victim, 2_000);
    sim.runFor(2_000);
    const back = sim.runUntilTrue(() => sim.view((victim + 1) % 50).find((m) => m.id === sim.idOf(victim))?.status === "alive", sim.nowMs + 10_000);
    expect(back).toBe(true);
    sim.runFor(5_000);
  }
  expect(suspicions).toBeGreaterThan(0); // the stalls were noticed...
  expect(deaths).toBe(0); // ...and refuted in time
  expect(sim.violations).toEqual([]);
}, 60_000);

test(`a membership update reaches all 100 nodes within 10 gossip rounds, 13 with 25% loss (seed ${seed})`, () => {
  const clean = disseminationRounds({ seed, nodes: 100, lossRate: 0, trials: 3 });
  const lossy = disseminationRounds({ seed: seed + 1, nodes: 100, lossRate: 0.25, trials: 3 });
  for (const r of clean) expect(r).toBeLessThanOrEqual(10);
  for (const r of lossy) expect(r).toBeLessThanOrEqual(13);
}, 60_000);

test(`a partition longer than the suspicion timeout heals: both sides rejoin and data converges (seed ${seed})`, () => {
  const sim = new Simulation({ seed, nodes: 6 });
  formCluster(sim, 30_000);
  sim.partitionInto([[0, 1, 2], [3, 4, 5]]);
  for (let i = 0; i < 60; i++) sim.at(sim.nowMs + i * 100, () => sim.increment(i % 6, `k${i % 4}`, 1));
  sim.runFor(20_000);
  expect(sim.view(0).find((m) => m.id === sim.idOf(4))?.status).toBe("dead");
  sim.heal();
  const ok = sim.runUntilTrue(() => sim.divergence() === null, sim.nowMs + 60_000);
  expect(sim.divergence()).toBeNull();
  expect(ok).toBe(true);
  for (let k = 0; k < 4; k++) expect(sim.store(5).value(`k${k}`)).toBe(15);
  expect(sim.violations).toEqual([]);
}, 60_000);
