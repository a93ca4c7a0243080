// The background expiry sweep (node/expiry-sweep.ts) on a real engine with an injected clock and
// a commit the test settles by hand: what one tick executes, and how many ticks may wait for the
// WAL at once.
import { describe, expect, test } from "bun:test";
import { Engine, type ManyOp } from "../../src/engine/index.ts";
import { ExpirySweep, expirySweepChunkKeys, expirySweepCommitsInFlightMax } from "../../src/node/expiry-sweep.ts";

const T = 1_700_000_000_000;

/** An engine holding `keys` registers that all expire at T + 1000. */
function loaded(keys: number): Engine {
  const e = new Engine({ actor: "a" });
  const ops: ManyOp[] = [];
  for (let i = 0; i < keys; i++) ops.push({ kind: "set", key: `k${i}`, value: new Uint8Array([1]), expiry: { kind: "at", atMs: T + 1000 } });
  const r = e.applyMany(ops, T);
  expect(r.results.every((x) => x.ok)).toBe(true);
  expect(e.deadlineKeyCount).toBe(keys);
  return e;
}

/** A sweep whose commits stay pending until the test settles them. */
function sweepOf(e: Engine, opts: { budgetMs: number; commitsInFlightMax?: number }): { sweep: ExpirySweep; commits: Array<{ deltas: number; settle: () => void }> } {
  const commits: Array<{ deltas: number; settle: () => void }> = [];
  const sweep = new ExpirySweep({
    engine: e, now: () => T + 1000, paused: () => false, onError: (err) => { throw err; },
    commit: (deltas) => new Promise<void>((resolve) => commits.push({ deltas: deltas.length, settle: resolve })),
    budgetMs: opts.budgetMs, ...(opts.commitsInFlightMax === undefined ? {} : { commitsInFlightMax: opts.commitsInFlightMax }),
  });
  return { sweep, commits };
}

describe("expiry sweep", () => {
  test("a tick with no budget left after its first engine call expires one chunk and commits its deltas once", () => {
    const e = loaded(3 * expirySweepChunkKeys);
    const { sweep, commits } = sweepOf(e, { budgetMs: 0 });
    sweep.tick();
    expect(commits.map((c) => c.deltas)).toEqual([expirySweepChunkKeys]);
    expect(e.deadlineKeyCount).toBe(2 * expirySweepChunkKeys);
    expect(e.expiredTotal).toBe(expirySweepChunkKeys);
    expect(sweep.stats.ticks).toBe(1);
  });

  test(`up to ${expirySweepCommitsInFlightMax} ticks run while earlier ticks' deltas wait for the WAL; then ticks skip until one settles`, async () => {
    const chunks = expirySweepCommitsInFlightMax + 2;
    const e = loaded(chunks * expirySweepChunkKeys);
    const { sweep, commits } = sweepOf(e, { budgetMs: 0 });
    for (let k = 0; k < expirySweepCommitsInFlightMax + 1; k++) sweep.tick();
    // A slow disk: none settled; the extra tick skipped, executing nothing.
    expect(commits.length).toBe(expirySweepCommitsInFlightMax);
    expect(e.expiredTotal).toBe(expirySweepCommitsInFlightMax * expirySweepChunkKeys);
    expect(sweep.stats.ticks).toBe(expirySweepCommitsInFlightMax);
    commits[0]?.settle();
    await Promise.resolve();
    await Promise.resolve();
    sweep.tick();
    expect(commits.length).toBe(expirySweepCommitsInFlightMax + 1);
    expect(e.expiredTotal).toBe((expirySweepCommitsInFlightMax + 1) * expirySweepChunkKeys);
    for (const c of commits) c.settle();
    await sweep.stop();
  });

  test("stop waits for every commit in flight", async () => {
    const e = loaded(2 * expirySweepChunkKeys);
    const { sweep, commits } = sweepOf(e, { budgetMs: 0, commitsInFlightMax: 2 });
    sweep.tick();
    sweep.tick();
    expect(commits.length).toBe(2);
    let stopped = false;
    const stopping = sweep.stop().then(() => (stopped = true));
    commits[0]?.settle();
    await Promise.resolve();
    await Promise.resolve();
    await Promise.resolve();
    expect(stopped).toBe(false);
    commits[1]?.settle();
    await stopping;
    expect(stopped).toBe(true);
  });

  test("behind: true while a tick stops on its budget with deadlines still due, false once a tick finds none left", async () => {
    const e = loaded(2 * expirySweepChunkKeys);
    const { sweep, commits } = sweepOf(e, { budgetMs: 0 });
    expect(sweep.behind).toBe(false);
    sweep.tick();
    expect(sweep.behind).toBe(true);
    sweep.tick();
    // The second chunk was the last, but this tick stopped on its budget before looking further.
    expect(sweep.behind).toBe(true);
    sweep.tick();
    expect(sweep.behind).toBe(false);
    expect(e.deadlineKeyCount).toBe(0);
    for (const c of commits) c.settle();
    await sweep.stop();
  });

  test("with no key due, a tick commits nothing", () => {
    const e = loaded(10);
    const commits: number[] = [];
    const sweep = new ExpirySweep({ engine: e, now: () => T + 999, paused: () => false, onError: () => {}, commit: async (d) => void commits.push(d.length) });
    sweep.tick();
    expect(commits).toEqual([]);
    expect(e.deadlineKeyCount).toBe(10);
  });
});
