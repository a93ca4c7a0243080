// The product workload on the real engine under the simulator's faults: every kind of write
// through the node's op path, wiped, restored and repaired disks, stray other-type ops on lagging
// nodes, blind MV storms, forged contexts and over-range counters (issue 12). No acknowledged
// write may be lost, nothing phantom may appear, a refused op changes nothing, all converge.

import { expect, test } from "bun:test";
import { runRandomScenario } from "../../src/sim/scenario.ts";

const count = Math.max(1, Number(process.env.IMDB_PRODUCT_SEEDS ?? 500));
const base = Number(process.env.IMDB_SEED ?? Math.floor(Math.random() * 1_000_000_000));
const chunk = 100;

for (let from = 0; from < count; from += chunk) {
  const to = Math.min(count, from + chunk);
  test(`product workload: seeds ${base + from}..${base + to - 1} converge with no acknowledged write lost`, () => {
    const failures: string[] = [];
    for (let s = base + from; s < base + to; s++) {
      const r = runRandomScenario(s, { product: true });
      if (r.failure !== null) failures.push(`seed ${s} (${r.nodes} nodes): ${r.failure}\n  faults: ${r.faults.join("; ")}\n  reproduce: IMDB_SEED=${s} IMDB_PRODUCT_SEEDS=1 npx bun test test/sim/product.test.ts`);
    }
    if (failures.length > 0) console.error(failures.slice(0, 5).join("\n"));
    expect(failures).toEqual([]);
  }, 300_000);
}
