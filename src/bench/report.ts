// How benchmarks word what they measured: progress as the rate of the last interval (a running
// average hides a stall or a warm-up), and targets as "met" / "not met" with the bound spelled
// out, so no reader takes "below target" for a miss when the target is a maximum.

export type TargetBound = ">=" | "<=";

export interface Target {
  bound: TargetBound;
  target: number;
  /** Appended to the number, e.g. "ops/s", "ms", "x". */
  unit?: string;
}

/** True when `value` satisfies the target. */
export function targetMet(t: Target, value: number): boolean {
  return t.bound === ">=" ? value >= t.target : value <= t.target;
}

const fmt = (n: number): string => (Number.isInteger(n) ? n.toLocaleString("en-US") : String(n));

/** The one word for a target's outcome; null when the run could not measure it (say, Redis missing). */
export function verdictWord(met: boolean | null): "met" | "not met" | "not measured" {
  return met === null ? "not measured" : met ? "met" : "not met";
}

/** "target >= 5,000,000 ops/s: met", "target <= 3x: not met", or "...: not measured" when value is null. */
export function targetVerdict(t: Target, value: number | null): string {
  const unit = t.unit === undefined ? "" : t.unit === "x" ? "x" : ` ${t.unit}`;
  return `target ${t.bound} ${fmt(t.target)}${unit}: ${verdictWord(value === null ? null : targetMet(t, value))}`;
}

/** Events per second between two cumulative counts; 0 for an empty interval. */
export function intervalRate(countBefore: number, countNow: number, intervalMs: number): number {
  return intervalMs <= 0 ? 0 : ((countNow - countBefore) * 1000) / intervalMs;
}

/** CPU use as a percentage of one core: 100 means one core busy for the whole interval. */
export function cpuPercent(cpuSecondsBefore: number, cpuSecondsNow: number, intervalMs: number): number {
  return intervalMs <= 0 ? 0 : ((cpuSecondsNow - cpuSecondsBefore) * 100_000) / intervalMs;
}

export interface LoadProgress {
  /** Seconds since the run started, at the end of this interval. */
  elapsedS: number;
  intervalMs: number;
  ops: number;
  errors: number;
  /** Node and load-generator CPU in this interval (% of one core), null when unknown. */
  nodeCpuPct: number | null;
  loadersCpuPct: number | null;
}

/** One progress line of `bench load`: what happened in the last interval only. */
export function loadProgressLine(p: LoadProgress): string {
  const cpu = (x: number | null): string => (x === null ? "?" : `${Math.round(x)}%`);
  return `load: ${p.elapsedS.toFixed(0)}s: ${Math.round(intervalRate(0, p.ops, p.intervalMs))} ops/s in the last ${(p.intervalMs / 1000).toFixed(1)} s, ` +
    `${p.errors} errors; CPU node ${cpu(p.nodeCpuPct)}, load generators ${cpu(p.loadersCpuPct)}`;
}
