// `imdb bench accel`: measures every accel primitive through the native addon and the TS
// fallback on the same inputs in the same run, interleaved, and reports which one `auto` keeps.

import { InvalidArgumentError, type Command } from "commander";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  accel, describeAccel, nativeAccel, nativeCrcImpl, nativeLoadError, tsAccel,
  type AccelParts, type AccelPath, type CountedAppender,
} from "../accel/index.ts";
import { clockPairs, recordBatch } from "../accel/calibrate.ts";

export interface AccelBenchRow {
  primitive: "checksum" | "clocks" | "append";
  case: string;
  unit: string;
  /** Rate with the native addon, or null when it did not load. */
  native: number | null;
  ts: number;
  /** native / ts (rates: above 1 means native is faster), or null without the addon. */
  ratio: number | null;
  /** The faster path of this run (ts when native is unavailable). */
  auto: AccelPath;
}

/** What group commit did during the append case, per path. */
export interface AppendBenchDetail {
  records: number;
  fdatasyncs: number;
  /** Mean records made durable by one fdatasync (group commit at work). */
  recordsPerFdatasync: number;
  /** Mean time inside one fdatasync, in microseconds (the disk's share of a round). */
  fdatasyncUsMean: number;
}

export interface AccelBenchResult {
  results: AccelBenchRow[];
  /** Worst event-loop lag (a 1 ms interval timer's drift) seen during the append case. */
  eventLoopLagMsMax: { native: number | null; ts: number };
  append: { native: AppendBenchDetail | null; ts: AppendBenchDetail };
}

/** Upper bound for --seconds. */
export const benchSecondsMax = 3600;
/** Default --seconds: the whole run, shared by every case. */
export const benchSecondsDefault = 4;
/**
 * Least measuring time per case and path, so a tiny --seconds still measures each (the append
 * case needs long enough for its writers to share fdatasyncs).
 */
const caseMsMin = 5;
const appendMsMin = 20;
/** One measured slice; native and TS slices alternate so machine noise hits both alike. */
const sliceMs = 25;
/**
 * Append runs alternate native and TS in slices of about this length, so a burst of disk
 * contention from another process lands on both paths rather than on one.
 */
const appendSliceMs = 125;
/** Concurrent writers and record size of the append case (issue 2). */
const appendWriters = 64;
const appendRecordBytes = 200;

interface Case {
  primitive: AccelBenchRow["primitive"];
  name: string;
  unit: string;
  /** Units of work one call does (bytes/1e6 for MB/s, records, pairs, ops). */
  workPerCall: number;
  make: (p: AccelParts) => () => void;
}

function bytes(n: number): Uint8Array {
  return recordBatch(1, n).buf;
}

function cases(): Case[] {
  const b64 = bytes(64);
  const b4k = bytes(4096);
  const b1m = bytes(1024 * 1024);
  const many = recordBatch(1000, 100);
  const c4 = clockPairs(1, 4);
  const c64 = clockPairs(1, 64);
  const c10k = clockPairs(10_000, 4);
  const one = (p: { actors: Uint32Array; counters: Float64Array }): [Uint32Array, Float64Array] => [p.actors, p.counters];
  const [a4, n4] = one(c4.a);
  const [b4, m4] = one(c4.b);
  const [a64, n64] = one(c64.a);
  const [b64a, m64] = one(c64.b);
  let sink = 0; // keeps results alive so nothing is optimised away
  const out: Case[] = [
    { primitive: "checksum", name: "64B", unit: "ops/s", workPerCall: 1, make: (p) => () => { sink ^= p.checksums.crc32c(b64); } },
    { primitive: "checksum", name: "4KiB", unit: "MB/s", workPerCall: 4096 / 1e6, make: (p) => () => { sink ^= p.checksums.crc32c(b4k); } },
    { primitive: "checksum", name: "1MiB", unit: "MB/s", workPerCall: (1024 * 1024) / 1e6, make: (p) => () => { sink ^= p.checksums.crc32c(b1m); } },
    {
      primitive: "checksum", name: "1000x100B", unit: "records/s", workPerCall: 1000,
      make: (p) => () => { sink ^= p.checksums.crc32cMany(many.buf, many.offsets)[999] as number; },
    },
    { primitive: "clocks", name: "compare 4 entries", unit: "ops/s", workPerCall: 1, make: (p) => () => { sink ^= p.clocks.compare(a4, n4, b4, m4); } },
    { primitive: "clocks", name: "compare 64 entries", unit: "ops/s", workPerCall: 1, make: (p) => () => { sink ^= p.clocks.compare(a64, n64, b64a, m64); } },
    {
      primitive: "clocks", name: "10k pairs in one call", unit: "pairs/s", workPerCall: 10_000,
      make: (p) => () => { sink ^= p.clocks.compareMany(c10k.a, c10k.b)[9999] as number; },
    },
  ];
  if (sink === 0.5) console.error(sink);
  return out;
}

/** Calls per slice so one slice takes about sliceMs. */
function callsPerSlice(fn: () => void): number {
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    const dt = performance.now() - t0;
    if (dt >= sliceMs / 4 || n >= 1 << 24) return Math.max(1, Math.round((n * sliceMs) / Math.max(dt, 0.001)));
    n *= 4;
  }
}

/** Alternates native and TS slices until each has run budgetMs; returns work per second. */
function measureSync(fns: Array<() => void>, budgetMs: number): number[] {
  const calls = fns.map((f) => {
    f(); // warm-up (JIT, page-in)
    return callsPerSlice(f);
  });
  const spent = fns.map(() => 0);
  const done = fns.map(() => 0);
  while (spent.some((s) => s < budgetMs)) {
    fns.forEach((f, k) => {
      if ((spent[k] as number) >= budgetMs) return;
      const n = calls[k] as number;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) f();
      spent[k] = (spent[k] as number) + (performance.now() - t0);
      done[k] = (done[k] as number) + n;
    });
  }
  return fns.map((_, k) => ((done[k] as number) / (spent[k] as number)) * 1000);
}

/** 64 writers appending one 200 B record each with fdatasync, for durationMs. */
interface AppendRunResult {
  records: number;
  ms: number;
  lagMs: number;
  fdatasyncs: number;
  fdatasyncMs: number;
}

async function appendRun(appender: CountedAppender, dir: string, durationMs: number): Promise<AppendRunResult> {
  // Start every slice from a collected heap: otherwise the garbage of the previous slice (the
  // other path's promises and buffers) is collected during this one, and on a 2-core machine
  // the collector's threads compete with the writers (measured: native slices that followed
  // TS slices lost up to half their rate without this).
  Bun.gc(true);
  const path = join(dir, `append-${Math.floor(performance.now() * 1000)}.log`);
  const f = await appender.open(path);
  const record = new Uint8Array(appendRecordBytes).fill(0x5a);
  let lagMs = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lagMs = Math.max(lagMs, now - last - 1);
    last = now;
  }, 1);
  let records = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  await Promise.all(
    Array.from({ length: appendWriters }, async () => {
      while (performance.now() < deadline) {
        await f.append([record], true);
        records++;
      }
    }),
  );
  const ms = performance.now() - t0;
  clearInterval(timer);
  const st = f.stats();
  await f.close();
  rmSync(path, { force: true });
  return { records, ms, lagMs: Math.max(0, lagMs), fdatasyncs: st.fdatasyncs, fdatasyncMs: st.fdatasyncMs };
}

function row(c: { primitive: AccelBenchRow["primitive"]; name: string; unit: string }, native: number | null, ts: number): AccelBenchRow {
  return {
    primitive: c.primitive, case: c.name, unit: c.unit, native, ts,
    ratio: native === null ? null : native / ts,
    auto: native !== null && native >= ts ? "native" : "ts",
  };
}

export async function runAccelBench(opts: { seconds: number; progress: (s: string) => void }): Promise<AccelBenchResult> {
  const native = nativeAccel();
  const all = cases();
  // --seconds is the whole run: each case (the append case last) gets an equal share of what is
  // left, so calibration, warm-up and collections of earlier cases shorten later ones instead
  // of overrunning; a case's share is split evenly between the native and TS paths.
  const deadline = performance.now() + opts.seconds * 1000;
  const pathCount = native ? 2 : 1;
  const perPathMs = (casesLeft: number, floorMs: number): number => Math.max(floorMs, (deadline - performance.now()) / casesLeft / pathCount);
  const results: AccelBenchRow[] = [];
  if (!native) opts.progress(`native addon not loaded (${nativeLoadError()}): measuring the TS path only`);
  for (const [i, c] of all.entries()) {
    opts.progress(`${c.primitive} ${c.name} ...`);
    const fns = native ? [c.make(native), c.make(tsAccel)] : [c.make(tsAccel)];
    Bun.gc(true);
    const rates = measureSync(fns, perPathMs(all.length + 1 - i, caseMsMin)).map((r) => r * c.workPerCall);
    results.push(row(c, native ? (rates[0] as number) : null, rates[rates.length - 1] as number));
  }

  const dir = mkdtempSync(join(tmpdir(), "imdb-bench-accel-"));
  const appendCase = { primitive: "append" as const, name: `${appendWriters} writers x ${appendRecordBytes}B fdatasync`, unit: "records/s" };
  try {
    opts.progress(`append ${appendCase.name} ...`);
    const appendPerPathMs = perPathMs(1, appendMsMin);
    const slices = Math.max(1, Math.round(appendPerPathMs / appendSliceMs));
    const paths: Array<[AccelPath, CountedAppender]> = native ? [["native", native.appender], ["ts", tsAccel.appender]] : [["ts", tsAccel.appender]];
    const acc = new Map<AccelPath, AppendRunResult>();
    for (let round = 0; round < slices; round++) {
      for (const [name, app] of paths) {
        const r = await appendRun(app, dir, appendPerPathMs / slices);
        const a = acc.get(name) ?? { records: 0, ms: 0, lagMs: 0, fdatasyncs: 0, fdatasyncMs: 0 };
        acc.set(name, {
          records: a.records + r.records, ms: a.ms + r.ms, lagMs: Math.max(a.lagMs, r.lagMs),
          fdatasyncs: a.fdatasyncs + r.fdatasyncs, fdatasyncMs: a.fdatasyncMs + r.fdatasyncMs,
        });
      }
    }
    const detail = (p: AccelPath): AppendBenchDetail | null => {
      const a = acc.get(p);
      if (!a) return null;
      const syncs = Math.max(1, a.fdatasyncs);
      return { records: a.records, fdatasyncs: a.fdatasyncs, recordsPerFdatasync: a.records / syncs, fdatasyncUsMean: (a.fdatasyncMs * 1000) / syncs };
    };
    const rate = (p: AccelPath): number | null => {
      const a = acc.get(p);
      return a ? (a.records / a.ms) * 1000 : null;
    };
    results.push(row(appendCase, rate("native"), rate("ts") as number));
    return {
      results,
      eventLoopLagMsMax: { native: acc.get("native")?.lagMs ?? null, ts: acc.get("ts")?.lagMs ?? 0 },
      append: { native: detail("native"), ts: detail("ts") as AppendBenchDetail },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function fmt(n: number | null): string {
  if (n === null) return "-";
  if (n >= 100) return Math.round(n).toLocaleString("en-US");
  return n.toFixed(2);
}

function table(r: AccelBenchResult): string {
  const head = ["primitive", "case", "unit", "native", "ts", "native/ts", "auto"];
  const rows = r.results.map((x) => [x.primitive, x.case, x.unit, fmt(x.native), fmt(x.ts), x.ratio === null ? "-" : `${x.ratio.toFixed(2)}x`, x.auto]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((x) => (x[i] as string).length)));
  const line = (cols: string[]): string => cols.map((c, i) => (i >= 3 && i <= 5 ? c.padStart(w[i] as number) : c.padEnd(w[i] as number))).join("  ");
  const lag = r.eventLoopLagMsMax;
  const gc = (d: AppendBenchDetail | null): string =>
    d === null ? "-" : `${d.recordsPerFdatasync.toFixed(1)} records/fdatasync, ${Math.round(d.fdatasyncUsMean)} us/fdatasync`;
  return [
    line(head),
    ...rows.map(line),
    `append group commit: native ${gc(r.append.native)}; ts ${gc(r.append.ts)}`,
    `worst event-loop lag during append: native ${lag.native === null ? "-" : `${lag.native.toFixed(2)} ms`}, ts ${lag.ts.toFixed(2)} ms`,
  ].join("\n");
}

function parseSeconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > benchSecondsMax) throw new InvalidArgumentError(`must be a number of seconds in (0, ${benchSecondsMax}]`);
  return n;
}

export function registerBench(bench: Command): void {
  bench
    .command("accel")
    .description("measure the native and TypeScript accel paths (checksum, clocks, durable append) and what auto picks")
    .option("--json", "print one JSON object on stdout")
    .option("--seconds <n>", "measuring time of the whole run in seconds, shared by the cases and split between native and TS", parseSeconds, benchSecondsDefault)
    .action(async (o: { json?: boolean; seconds: number }) => {
      const progress = (s: string): void => void process.stderr.write(`bench accel: ${s}\n`);
      const a = accel();
      const r = await runAccelBench({ seconds: o.seconds, progress });
      // `runtime` is what this process selected at start-up (its own calibration), for comparison.
      const runtime = { mode: a.mode, choice: a.choice, functions: a.functions, crc: nativeCrcImpl() };
      if (o.json) process.stdout.write(`${JSON.stringify({ ...r, runtime })}\n`);
      else process.stdout.write(`${table(r)}\nthis process: ${describeAccel(a)}\n`);
    });
}
