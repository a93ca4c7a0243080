// The merged latency histogram of `bench load`: percentiles of merged per-process histograms are
// those of all samples together (not an average of per-process percentiles), within the
// histogram's stated precision.
import { expect, test } from "bun:test";
import { LatencyHistogram } from "../../src/bench/histogram.ts";

/** A small seeded generator (mulberry32), so a failure replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const exactPercentile = (sorted: number[], p: number): number => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] as number;

test("merging two processes' histograms gives the percentiles of all samples, not their average", () => {
  // One fast process (about 0.2 ms) and one slow (about 20 ms), as when one load generator is starved.
  const fast = new LatencyHistogram();
  const slow = new LatencyHistogram();
  const all: number[] = [];
  for (let i = 0; i < 900; i++) {
    const ms = 0.2 + (i % 10) / 100;
    fast.recordMs(ms);
    all.push(ms);
  }
  for (let i = 0; i < 100; i++) {
    const ms = 20 + (i % 10);
    slow.recordMs(ms);
    all.push(ms);
  }
  const merged = LatencyHistogram.fromJSON(JSON.parse(JSON.stringify(fast.toJSON())));
  merged.merge(JSON.parse(JSON.stringify(slow.toJSON())));
  all.sort((a, b) => a - b);
  expect(merged.count).toBe(1000);
  // p50 is a fast call (the average of the two p50s would be about 10 ms), p99 a slow one.
  expect(merged.percentileMs(0.5)).toBeCloseTo(exactPercentile(all, 0.5), 2);
  expect(merged.percentileMs(0.99)).toBeGreaterThanOrEqual(exactPercentile(all, 0.99));
  expect(merged.percentileMs(0.99)).toBeLessThanOrEqual(exactPercentile(all, 0.99) * (1 + 1 / 64));
  expect(merged.maxUs).toBe(29_000);
});

test("every percentile is within 1/64 above the exact one, over six decades of latency", () => {
  const seed = 16_2026;
  const r = rng(seed);
  const h = new LatencyHistogram();
  const parts = [new LatencyHistogram(), new LatencyHistogram(), new LatencyHistogram()];
  const all: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    // Log-uniform from 1 us to 1000 s, rounded to the microsecond the histogram keeps.
    const ms = Math.round(10 ** (r() * 9 - 3) * 1000 * 1000) / 1000 / 1000;
    const us = Math.round(ms * 1000);
    h.recordMs(ms);
    (parts[i % 3] as LatencyHistogram).recordMs(ms);
    all.push(us / 1000);
  }
  all.sort((a, b) => a - b);
  const merged = new LatencyHistogram();
  for (const p of parts) merged.merge(p);
  for (const p of [0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1]) {
    const exact = exactPercentile(all, p);
    const got = h.percentileMs(p);
    expect(got, `seed ${seed} p ${p}`).toBeGreaterThanOrEqual(exact);
    expect(got, `seed ${seed} p ${p}`).toBeLessThanOrEqual(exact * (1 + 1 / 64) + 0.001);
    expect(merged.percentileMs(p), `seed ${seed} p ${p}`).toBe(got);
  }
});

test("an empty histogram reports 0, and a bad bucket from a worker is refused", () => {
  const h = new LatencyHistogram();
  expect(h.percentileMs(0.5)).toBe(0);
  expect(() => h.merge({ buckets: [[1e9, 1]], count: 1, maxUs: 1 })).toThrow("out of range");
});
