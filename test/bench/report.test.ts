// How benchmarks word progress and targets: rates of the last interval, "met" / "not met" with
// the bound spelled out (issue 16).
import { expect, test } from "bun:test";
import { cpuPercent, intervalRate, loadProgressLine, targetVerdict } from "../../src/bench/report.ts";
import { callersOfWorker } from "../../src/bench/load-workers.ts";

test("a target reads as met or not met whichever way its bound points", () => {
  expect(targetVerdict({ bound: ">=", target: 2, unit: "x" }, 1.22)).toBe("target >= 2x: not met");
  expect(targetVerdict({ bound: ">=", target: 2, unit: "x" }, 2)).toBe("target >= 2x: met");
  // A maximum: a value below it is a success and must not read as a miss.
  expect(targetVerdict({ bound: "<=", target: 180, unit: "bytes/key" }, 73)).toBe("target <= 180 bytes/key: met");
  expect(targetVerdict({ bound: "<=", target: 3, unit: "x" }, 7.84)).toBe("target <= 3x: not met");
  expect(targetVerdict({ bound: ">=", target: 5_000_000, unit: "ops/s" }, 19_952_584)).toBe("target >= 5,000,000 ops/s: met");
  expect(targetVerdict({ bound: ">=", target: 1 }, null)).toBe("target >= 1: not measured");
  expect(targetVerdict({ bound: ">=", target: 0.5, unit: "x" }, 0.4)).toBe("target >= 0.5x: not met");
});

test("progress is the rate of the last interval, not the average since the start", () => {
  // 10,000 ops in the first second, then a stall: the second line must say 0 ops/s.
  expect(intervalRate(0, 10_000, 1000)).toBe(10_000);
  expect(intervalRate(10_000, 10_000, 1000)).toBe(0);
  expect(intervalRate(10_000, 10_500, 500)).toBe(1000);
  expect(intervalRate(5, 5, 0)).toBe(0);
  const line = loadProgressLine({ elapsedS: 2, intervalMs: 1000, ops: 0, errors: 0, nodeCpuPct: 3, loadersCpuPct: 101.4 });
  expect(line).toBe("load: 2s: 0 ops/s in the last 1.0 s, 0 errors; CPU node 3%, load generators 101%");
  expect(loadProgressLine({ elapsedS: 1, intervalMs: 1000, ops: 2500, errors: 1, nodeCpuPct: null, loadersCpuPct: null }))
    .toBe("load: 1s: 2500 ops/s in the last 1.0 s, 1 errors; CPU node ?, load generators ?");
});

test("CPU percent is of one core over the interval", () => {
  expect(cpuPercent(10, 11.5, 1000)).toBe(150);
  expect(cpuPercent(10, 10.25, 500)).toBe(50);
});

test("callers are spread over worker processes as evenly as possible, none lost", () => {
  for (const [callers, workers] of [[16, 2], [17, 4], [3, 3], [1, 1], [100, 7]] as const) {
    const shares = Array.from({ length: workers }, (_, i) => callersOfWorker(callers, workers, i));
    expect(shares.reduce((a, b) => a + b, 0)).toBe(callers);
    expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
  }
});
