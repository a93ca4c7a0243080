// The product workload on the real engine under the simulator's faults: every kind of write
// through the node's op path, wiped disks, stray other-type ops, blind MV storms, forged
// contexts and over-range counters (issue 12). No acknowledged write may be lost.

import { expect, test } from "bun:test";
import { runRandomScenario } from "../../src/sim/scenario.ts";

const count = Math.max(1, Number(process.env.IMDB_PRODUCT_SEEDS ?? 100));
const base = Number(process.env.IMDB_SEED ?? Math.floor(Math.random() * 1_000_000_000));

test(`product workload: seeds ${base}..${base + count - 1} converge with no acknowledged write lost`, () => {
  const failures: string[] = [];
  for (let s = base; s < base + count; s++) {
    const r = runRandomScenario(s, { product: true });
    if (r.failure !== null) failures.push(`seed ${s} (${r.nodes} nodes): ${r.failure}\n  reproduce: IMDB_SEED=${s} IMDB_PRODUCT_SEEDS=1 npx bun test test/sim/product.test.ts`);
  }
  if (failures.length > 0) console.error(failures.slice(0, 10).join("\n"));
  expect(failures).toEqual([]);
}, 600_000);
