// The fault scenarios again with the real engine (src/engine) as every node's replica: its deltas, states and digests.

import { expect, test } from "bun:test";
import { runRandomScenario } from "../../src/sim/scenario.ts";

const count = Math.max(1, Math.floor(Number(process.env.IMDB_SIM_SEEDS ?? 500) / 5));
const base = Number(process.env.IMDB_SEED ?? Math.floor(Math.random() * 1_000_000_000));

test(`engine-backed fault scenarios: seeds ${base}..${base + count - 1} converge with counters equal to acknowledged increments`, () => {
  const failures: string[] = [];
  for (let s = base; s < base + count; s++) {
    const r = runRandomScenario(s, { engine: true });
    if (r.failure !== null) failures.push(`seed ${s} (${r.nodes} nodes): ${r.failure}\n  reproduce: IMDB_SEED=${s} IMDB_SIM_SEEDS=5 npx bun test test/sim/engine.test.ts`);
  }
  if (failures.length > 0) console.error(failures.join("\n"));
  expect(failures).toEqual([]);
}, 180_000);
