// `imdb bench crdt`: throughput of the CRDT core and the engine on one thread (issue 3 targets)
// and the engine's memory per counter key (issue 4 target), measured on this machine.

import { InvalidArgumentError, type Command } from "commander";
import { GCounter, internActor, MvRegister, PNCounter, type ActorId } from "../crdt/index.ts";
import { Engine } from "../engine/index.ts";
import { targetVerdict } from "./report.ts";

export interface CrdtBenchRow {
  case: string;
  unit: string;
  value: number;
  /** The goal for this figure, or null where none is set. */
  target: number | null;
  /** For targets that are maxima (bytes/key): true. */
  lowerIsBetter?: boolean;
}

export interface CrdtBenchOptions {
  /** Total measuring time for the throughput cases. */
  seconds: number;
  progress: (s: string) => void;
  /** Keys for the memory case (0 skips it). */
  memoryKeys?: number;
}

/** Upper bound for --seconds. */
export const crdtBenchSecondsMax = 3600;
/** Upper bound for --memory-keys. */
export const crdtBenchMemoryKeysMax = 20_000_000;
/** Redis used_memory per INCR key on this class of machine (issue 4), for the 3x target. */
const redisBytesPerKey = 60;

let sink = 0n; // keeps results alive so nothing is optimised away

/** Runs `batch` (which does `perBatch` units of work) until budgetMs elapsed; returns units/s. */
function rate(budgetMs: number, perBatch: number, batch: () => void): number {
  batch(); // warm-up
  let done = 0;
  const t0 = performance.now();
  let dt = 0;
  while (dt < budgetMs) {
    batch();
    done += perBatch;
    dt = performance.now() - t0;
  }
  return (done / dt) * 1000;
}

function gcounterIncrements(budgetMs: number): number {
  const self = internActor("bench-node");
  const g = new GCounter();
  let last: GCounter | null = null;
  const r = rate(budgetMs, 100_000, () => {
    for (let i = 0; i < 100_000; i++) last = g.inc(self, 1n);
  });
  sink ^= last === null ? 0n : (last as GCounter).value();
  return r;
}

function pnMerges16(budgetMs: number): number {
  const actors: ActorId[] = Array.from({ length: 16 }, (_, i) => internActor(`bench-actor-${i.toString().padStart(2, "0")}`));
  // States that each raise every entry, so every merge really changes the target.
  const k = 1000;
  const states = Array.from({ length: k }, (_, s) => {
    const p = new PNCounter();
    actors.forEach((a, j) => {
      p.inc(a, BigInt(s * 16 + j + 1));
      p.dec(a, BigInt(s + 1));
    });
    return p;
  });
  return rate(budgetMs, k, () => {
    const acc = new PNCounter();
    for (let i = 0; i < k; i++) acc.merge(states[i] as PNCounter);
    sink ^= acc.value();
  });
}

function mvWriteMerge(budgetMs: number): number {
  const a = internActor("bench-mv-a");
  const b = internActor("bench-mv-b");
  const ra = new MvRegister();
  const rb = new MvRegister();
  const v = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  return rate(budgetMs, 2000, () => {
    for (let i = 0; i < 1000; i++) {
      rb.merge(ra.write(a, v, ra.read().context));
      ra.merge(rb.write(b, v, null));
    }
    sink ^= BigInt(ra.entries.length);
  });
}

function engineIncr(budgetMs: number): number {
  const e = new Engine({ actor: "bench-node" });
  const keys = Array.from({ length: 10_000 }, (_, i) => `key:${i}`);
  let now = 1_700_000_000_000;
  return rate(budgetMs, keys.length, () => {
    now++;
    for (const key of keys) {
      const r = e.apply({ kind: "incr", key, amount: 1n }, now);
      if (!r.ok) throw new Error(r.error.message);
    }
  });
}

/** Merging counter deltas from another node into a fresh engine: WAL replay / replication. */
function engineMergeDelta(budgetMs: number): number {
  const src = new Engine({ actor: "bench-peer" });
  const deltas: Uint8Array[] = [];
  for (let i = 0; i < 100_000; i++) {
    const r = src.apply({ kind: "incr", key: `key:${i % 20_000}`, amount: 1n }, 1_700_000_000_000);
    if (!r.ok) throw new Error(r.error.message);
    deltas.push(r.delta);
  }
  return rate(budgetMs, deltas.length, () => {
    const e = new Engine({ actor: "bench-node" });
    for (const d of deltas) {
      const r = e.mergeDelta(d, 1_700_000_000_000);
      if (!r.ok) throw new Error(r.error.message);
    }
  });
}

function collect(): void {
  const g = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (g) g.gc(true);
}

/** RSS growth per key after inserting n PN-counter keys into a fresh engine. */
function engineBytesPerKey(n: number, progress: (s: string) => void): number {
  collect();
  const before = process.memoryUsage().rss;
  const e = new Engine({ actor: "bench-node" });
  for (let i = 0; i < n; i++) {
    const r = e.apply({ kind: "incr", key: `key:${i}`, amount: 1n }, 1_700_000_000_000);
    if (!r.ok) throw new Error(r.error.message);
    if (i % 250_000 === 249_999) progress(`  memory: ${i + 1} keys`);
  }
  collect();
  const after = process.memoryUsage().rss;
  if (e.keyCount !== n) throw new Error("engine lost keys");
  return (after - before) / n;
}

export function runCrdtBench(opts: CrdtBenchOptions): CrdtBenchRow[] {
  const slice = (opts.seconds * 1000) / 5;
  const rows: CrdtBenchRow[] = [];
  const run = (name: string, unit: string, target: number | null, f: () => number): void => {
    opts.progress(`bench crdt: ${name} ...`);
    const value = f();
    rows.push({ case: name, unit, value: Math.round(value), target });
    opts.progress(`  ${Math.round(value).toLocaleString("en-US")} ${unit}`);
  };
  // Memory first, before the throughput cases leave freed heap that would hide growth.
  const keys = opts.memoryKeys ?? 1_000_000;
  if (keys > 0) {
    opts.progress(`bench crdt: engine memory with ${keys} PN-counter keys ...`);
    const v = engineBytesPerKey(keys, opts.progress);
    rows.push({ case: `engine RSS per key at ${keys} PN-counter keys`, unit: "bytes/key", value: Math.round(v), target: 3 * redisBytesPerKey, lowerIsBetter: true });
    opts.progress(`  ${v.toFixed(1)} bytes/key`);
  }
  run("G-Counter increments", "ops/s", 5_000_000, () => gcounterIncrements(slice));
  run("16-actor PN-Counter merges", "merges/s", 1_000_000, () => pnMerges16(slice));
  run("MV-Register write+merge", "ops/s", null, () => mvWriteMerge(slice));
  run("engine incr (apply: op, delta encoding, digest)", "ops/s", null, () => engineIncr(slice));
  run("engine mergeDelta of counter deltas (replay)", "deltas/s", null, () => engineMergeDelta(slice));
  if (sink === -1n) opts.progress(String(sink));
  return rows;
}

function parsePositive(max: number, allowZero: boolean) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0) || n > max) {
      throw new InvalidArgumentError(`must be a number in ${allowZero ? "[0" : "(0"}, ${max}]`);
    }
    return n;
  };
}

export function registerBench(bench: Command): void {
  bench
    .command("crdt")
    .description("CRDT core and engine throughput on one thread, and engine memory per key")
    .option("--json", "print one JSON object on stdout")
    .option("--seconds <n>", "total measuring time of the throughput cases", parsePositive(crdtBenchSecondsMax, false), 4)
    .option("--memory-keys <n>", "keys for the memory case (0 skips it)", parsePositive(crdtBenchMemoryKeysMax, true), 1_000_000)
    .action((o: { json?: boolean; seconds: number; memoryKeys: number }) => {
      const rows = runCrdtBench({ seconds: o.seconds, memoryKeys: Math.floor(o.memoryKeys), progress: (s) => process.stderr.write(`${s}\n`) });
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ bench: "crdt", results: rows })}\n`);
        return;
      }
      for (const r of rows) {
        const t = r.target === null ? "" : `  ${targetVerdict({ bound: r.lowerIsBetter === true ? "<=" : ">=", target: r.target, unit: r.unit }, r.value)}`;
        process.stdout.write(`${r.case.padEnd(50)} ${r.value.toLocaleString("en-US").padStart(12)} ${r.unit}${t}\n`);
      }
    });
}
