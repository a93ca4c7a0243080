// Seeded fast-check runner shared by the CRDT, codec and engine suites: the seed comes from
// IMDB_SEED (or a fresh one) and is printed on failure; run counts from IMDB_PROPERTY_RUNS.

import fc from "fast-check";

export const propertySeed: number = process.env.IMDB_SEED !== undefined && process.env.IMDB_SEED !== ""
  ? Number(process.env.IMDB_SEED)
  : Math.floor(Math.random() * 0x7fff_ffff);
export const propertyRuns: number = Number(process.env.IMDB_PROPERTY_RUNS ?? 1000);

/** Runs a property; on failure throws with the seed to replay it (IMDB_SEED=...). */
export function checkProperty<T>(name: string, prop: fc.IProperty<T>, runsScale = 1): void {
  const numRuns = Math.max(1, Math.round(propertyRuns * runsScale));
  const out = fc.check(prop, { seed: propertySeed, numRuns });
  if (out.failed) {
    throw new Error(`property "${name}" failed; replay with IMDB_SEED=${propertySeed}\n${fc.defaultReportMessage(out)}`);
  }
}
