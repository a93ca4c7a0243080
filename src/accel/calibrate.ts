// The cheap first-use measurement behind IMDB_ACCEL=auto: times the batch-shaped checksum and
// clock calls both ways on this machine and keeps the faster (a few ms in total).

import type { AccelPath, Checksums, Clocks, PackedClocks } from "./api.ts";

export interface CalibrationCase {
  nativeNs: number;
  tsNs: number;
  winner: AccelPath;
}
export interface Calibration {
  checksum: CalibrationCase;
  clocks: CalibrationCase;
}

/** Rounds per side; the minimum is kept, so one scheduler hiccup does not decide. */
const calibrationRounds = 5;

/** Deterministic filler (no Math.random: the same input every run). */
function fill(buf: Uint8Array, seed: number): void {
  let x = seed >>> 0 || 1;
  for (let i = 0; i < buf.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    buf[i] = x & 0xff;
  }
}

/** 1000 records of 100 B in one buffer (the WAL's batch shape). */
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

function minNs(fn: () => void): number {
  let best = Infinity;
  for (let r = 0; r < calibrationRounds; r++) {
    const t0 = performance.now();
    fn();
    const dt = (performance.now() - t0) * 1e6;
    if (dt < best) best = dt;
  }
  return best;
}

function decide(nativeNs: number, tsNs: number): CalibrationCase {
  return { nativeNs, tsNs, winner: nativeNs <= tsNs ? "native" : "ts" };
}

export function calibrate(native: { checksums: Checksums; clocks: Clocks }, ts: { checksums: Checksums; clocks: Clocks }): Calibration {
  const { buf, offsets } = recordBatch(1000, 100);
  const { a, b } = clockPairs(10_000, 4);
  return {
    checksum: decide(minNs(() => native.checksums.crc32cMany(buf, offsets)), minNs(() => ts.checksums.crc32cMany(buf, offsets))),
    clocks: decide(minNs(() => native.clocks.compareMany(a, b)), minNs(() => ts.clocks.compareMany(a, b))),
  };
}
