// Shared helpers for the cluster unit tests: a manual clock, a seeded env, and a tiny store.

import type { Env } from "../../src/cluster/types.ts";
import { Rng } from "../../src/sim/rng.ts";

export const seed = Number(process.env.IMDB_SEED ?? Math.floor(Math.random() * 2 ** 31));
export const propertyRuns = Number(process.env.IMDB_PROPERTY_RUNS ?? 1000);

export class ManualEnv implements Env {
  now = 1_000_000;
  private readonly rng: Rng;
  constructor(s = 1) {
    this.rng = new Rng(s);
  }
  nowMs(): number {
    return this.now;
  }
  random(): number {
    return this.rng.next();
  }
}
