// The cheap first-use measurement behind IMDB_ACCEL=auto: times each checksum and clock
// function both ways on this machine's kind of input and keeps the faster (10-25 ms, once).

import type { AccelPath, Checksums, Clocks, PackedClocks } from "./api.ts";

export interface CalibrationCase {
  /** Best time of one measured round, in nanoseconds. */
  nativeNs: number;
  tsNs: number;
  winner: AccelPath;
}

/** One entry per function; the batch-shaped ones decide the primitive's AccelChoice. */
export interface Calibration {
  crc32c: CalibrationCase;
  crc32cMany: CalibrationCase;
  compare: CalibrationCase;
  compareMany: CalibrationCase;
}

/**
 * Time per function: native and TS rounds alternate and the fastest round of each side is
 * kept, so one scheduler hiccup does not decide. A fresh process runs the TS path interpreted
 * for its first few hundred calls (measured up to 20x slower), and on a loaded machine the JIT
 * thread may wait for a core; judging TS before it is compiled would hand native wins it does
 * not have in a long-running node. So rounds go on past the budget while the TS best still
 * improves, up to a cap.
 */
const calibrationBudgetPerFunctionMs = 1;
const calibrationCapPerFunctionMs = 20;
/** Rounds per side at least, whatever the budget. */
const calibrationRoundsMin = 6;
/** "Still improving": the TS best improved by more than this factor within the last rounds. */
const settleImprovement = 0.95;
const settleRounds = 4;
/** Single-record calls per round: enough to see past timer resolution, few enough to stay cheap. */
const singleCallsPerRound = 200;
/** Batch sizes: batch-shaped like the real work, small enough that calibration stays a few ms. */
const calibrationRecords = 250;
const calibrationClockPairs = 2_500;
/** A typical WAL record (a small delta plus framing). */
export const calibrationRecordBytes = 200;

/** Deterministic filler (no Math.random: the same input every run). */
function fill(buf: Uint8Array, seed: number): void {
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    words[i] = x;
  }
  for (let i = words.length * 4; i < buf.length; i++) buf[i] = i & 0xff;
}

/** `records` records of `recordBytes` in one buffer, with their n+1 offsets. */
export function recordBatch(records: number, recordBytes: number): { buf: Uint8Array; offsets: Uint32Array } {
  const buf = new Uint8Array(records * recordBytes);
  fill(buf, 7);
  const offsets = new Uint32Array(records + 1);
  for (let i = 0; i <= records; i++) offsets[i] = i * recordBytes;
  return { buf, offsets };
}

/** `pairs` clock pairs of `entries` entries each; b differs from a in a few places. */
export function clockPairs(pairs: number, entries: number): { a: PackedClocks; b: PackedClocks } {
  const mk = (bump: number): PackedClocks => {
    const offsets = new Uint32Array(pairs + 1);
    const actors = new Uint32Array(pairs * entries);
    const counters = new Float64Array(pairs * entries);
    for (let p = 0; p < pairs; p++) {
      offsets[p + 1] = (p + 1) * entries;
      for (let e = 0; e < entries; e++) {
        const k = p * entries + e;
        actors[k] = e * 3;
        counters[k] = 1000 + e + (bump !== 0 && (p + e) % (bump + 3) === 0 ? bump * ((p % 3) - 1) : 0);
      }
    }
    return { offsets, actors, counters };
  };
  return { a: mk(0), b: mk(1) };
}

function race(native: () => void, ts: () => void): CalibrationCase {
  let nativeNs = Infinity;
  let tsNs = Infinity;
  let lastImprovedRound = 0;
  const start = performance.now();
  for (let r = 0; ; r++) {
    const elapsedMs = performance.now() - start;
    const settled = r - lastImprovedRound >= settleRounds;
    if (r >= calibrationRoundsMin && ((elapsedMs >= calibrationBudgetPerFunctionMs && settled) || elapsedMs >= calibrationCapPerFunctionMs)) break;
    let t0 = performance.now();
    native();
    nativeNs = Math.min(nativeNs, (performance.now() - t0) * 1e6);
    t0 = performance.now();
    ts();
    const dt = (performance.now() - t0) * 1e6;
    if (dt < tsNs * settleImprovement) lastImprovedRound = r;
    tsNs = Math.min(tsNs, dt);
  }
  return { nativeNs, tsNs, winner: nativeNs <= tsNs ? "native" : "ts" };
}

function repeat(fn: () => void): () => void {
  return () => {
    for (let i = 0; i < singleCallsPerRound; i++) fn();
  };
}

type Parts = { checksums: Checksums; clocks: Clocks };

export function calibrate(native: Parts, ts: Parts): Calibration {
  const rec = recordBatch(1, calibrationRecordBytes).buf;
  const { buf, offsets } = recordBatch(calibrationRecords, 100);
  const many = clockPairs(calibrationClockPairs, 4);
  const one = clockPairs(1, 4);
  const cmp = (p: Parts) => repeat(() => p.clocks.compare(one.a.actors, one.a.counters, one.b.actors, one.b.counters));
  // Batches first: they run the shared TS inner loops thousands of times, so the single-call
  // rounds that follow measure warm code, as a long-running node would run it.
  const crc32cMany = race(() => native.checksums.crc32cMany(buf, offsets), () => ts.checksums.crc32cMany(buf, offsets));
  const compareMany = race(() => native.clocks.compareMany(many.a, many.b), () => ts.clocks.compareMany(many.a, many.b));
  return {
    crc32c: race(repeat(() => native.checksums.crc32c(rec)), repeat(() => ts.checksums.crc32c(rec))),
    crc32cMany,
    compare: race(cmp(native), cmp(ts)),
    compareMany,
  };
}
