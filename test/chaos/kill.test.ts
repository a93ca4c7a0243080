// kill -9 of a node with durability sync under increments loses no acknowledged write (a few
// cycles here; `npm run chaos` runs 10 or 100), and the same run with the disk wiped at each restart
// is caught by the checker: the pipeline from workload to verdict can fail.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { killCycles } from "./scenarios.ts";

setDefaultTimeout(60_000);

const seed = process.env.IMDB_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.IMDB_SEED);
const log = () => undefined;

describe(`kill -9 cycles (seed ${seed})`, () => {
  test("3 cycles with durability sync: no acknowledged increment lost, final value explained", async () => {
    const r = await killCycles({ cycles: 3, seed, log });
    expect(r.error).toBeNull();
    expect(r.violations).toEqual([]);
    expect(r.converged).toBe(true);
    expect(r.ops.ok).toBeGreaterThan(0);
  });

  test("control: wiping the disk at restart is reported as lost acknowledged writes", async () => {
    const r = await killCycles({ cycles: 1, seed, log, wipeOnRestart: true });
    expect(r.error).toBeNull();
    expect(r.violations.length).toBeGreaterThan(0);
    expect(r.violations.some((v) => v.checker === "counter" && /lost|not the acknowledged sum/.test(v.message))).toBe(true);
  });
});
