// `bench accel` in miniature: every case is reported for both paths, and `auto` is the path
// the same run measured faster (never the slower one).
import { expect, test } from "bun:test";
import { runAccelBench } from "../../src/bench/accel.ts";
import { nativeAvailable } from "../../src/accel/index.ts";

test("runAccelBench reports each case with ratio = native/ts and auto = the faster path", async () => {
  const progress: string[] = [];
  const r = await runAccelBench({ seconds: 0.04, progress: (s) => progress.push(s) });
  expect(r.results.map((x) => `${x.primitive} ${x.case}`)).toEqual([
    "checksum 64B", "checksum 4KiB", "checksum 1MiB", "checksum 1000x100B",
    "clocks compare 4 entries", "clocks compare 64 entries", "clocks 10k pairs in one call",
    "append 64 writers x 200B fdatasync",
  ]);
  for (const x of r.results) {
    expect(x.ts).toBeGreaterThan(0);
    if (nativeAvailable()) {
      const native = x.native as number;
      expect(native).toBeGreaterThan(0);
      expect(x.ratio).toBeCloseTo(native / x.ts, 9);
      expect(x.auto).toBe(native >= x.ts ? "native" : "ts");
    } else {
      expect(x.native).toBeNull();
      expect(x.auto).toBe("ts");
    }
  }
  expect(r.append.ts.fdatasyncs).toBeGreaterThan(0);
  expect(r.append.ts.recordsPerFdatasync).toBeGreaterThan(1); // 64 writers share fdatasyncs
  expect(progress.length).toBe(8);
});

test("--seconds is the budget of the whole run, not of each case", async () => {
  // Eight cases: with a per-case budget this took eight times as long.
  const seconds = 1.5;
  const t0 = performance.now();
  const r = await runAccelBench({ seconds, progress: () => {} });
  const elapsedS = (performance.now() - t0) / 1000;
  expect(r.results.length).toBe(8);
  expect(elapsedS).toBeGreaterThanOrEqual(seconds * 0.9);
  expect(elapsedS).toBeLessThan(seconds * 2);
});
