// The simulation suite: hundreds of seeded fault scenarios, each healed and then required to converge with every invariant intact.

import { expect, test } from "bun:test";
import { runRandomScenario } from "../../src/sim/scenario.ts";

/** IMDB_SIM_SEEDS scenarios (default 500) from seed IMDB_SEED (default: a fresh one, printed). */
const count = Number(process.env.IMDB_SIM_SEEDS ?? 500);
const base = Number(process.env.IMDB_SEED ?? Math.floor(Math.random() * 1_000_000_000));
const chunk = 100;

for (let from = 0; from < count; from += chunk) {
  const to = Math.min(count, from + chunk);
  test(`fault scenarios: seeds ${base + from}..${base + to - 1} converge after heal with all invariants`, () => {
    const failures: string[] = [];
    for (let s = base + from; s < base + to; s++) {
      const r = runRandomScenario(s);
      if (r.failure !== null) {
        failures.push(`seed ${s} (${r.nodes} nodes): ${r.failure}\n  reproduce: IMDB_SEED=${s} IMDB_SIM_SEEDS=1 npx bun test test/sim/faults.test.ts\n  faults: ${r.faults.join(" | ")}`);
      }
    }
    if (failures.length > 0) console.error(failures.join("\n"));
    expect(failures).toEqual([]);
  }, 120_000);
}
