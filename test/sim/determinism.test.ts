// Same seed, same run: the trace hash of a faulty simulation depends on the seed alone.

import { expect, test } from "bun:test";
import { runRandomScenario } from "../../src/sim/scenario.ts";
import { Simulation } from "../../src/sim/sim.ts";

const seed = Number(process.env.IMDB_SEED ?? Math.floor(Math.random() * 1_000_000_000));

test(`same seed gives the same trace hash, another seed another (seed ${seed})`, () => {
  const a = runRandomScenario(seed, { faultPhaseMs: 8_000 });
  const b = runRandomScenario(seed, { faultPhaseMs: 8_000 });
  const c = runRandomScenario(seed + 1, { faultPhaseMs: 8_000 });
  expect(b.traceHash).toBe(a.traceHash);
  expect(b.steps).toBe(a.steps);
  expect(c.traceHash).not.toBe(a.traceHash);
}, 30_000);

test(`a scripted run replays exactly: same messages, same events (seed ${seed})`, () => {
  const run = (): string => {
    const sim = new Simulation({ seed, nodes: 4, network: { lossRate: 0.1, duplicateRate: 0.1, delayMaxMs: 10 } });
    sim.runUntil(3_000);
    for (let i = 0; i < 40; i++) sim.at(3_000 + i * 25, () => sim.increment(i % 4, `k${i % 3}`, 1));
    sim.at(4_000, () => sim.kill(2));
    sim.at(4_500, () => sim.partitionInto([[0], [1, 3]]));
    sim.at(9_000, () => sim.heal());
    sim.at(10_000, () => sim.restart(2, { newAddress: true }));
    sim.runUntil(30_000);
    return `${sim.traceHash()} ${sim.messagesDelivered}`;
  };
  expect(run()).toBe(run());
}, 30_000);
