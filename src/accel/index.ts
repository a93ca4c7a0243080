// Picks, per primitive, the native addon or the pure-TS fallback (IMDB_ACCEL=auto|native|ts)
// and hands the rest of the code one process-wide Accel.

import type { AccelChoice, AccelMode, AccelPath, Checksums, Clocks } from "./api.ts";
import type { CountedAppender } from "./append-types.ts";
import { tsChecksums } from "./crc32c-ts.ts";
import { tsClocks } from "./clocks-ts.ts";
import { tsAppender } from "./append-ts.ts";
import { nativeAppender, nativeBinding, nativeChecksums, nativeClocks, nativeCrcImpl, nativeLoadError } from "./native.ts";
import { AccelError, AccelErrorCode } from "./errors.ts";
import { calibrate, type Calibration } from "./calibrate.ts";

export * from "./api.ts";
export { AccelError, AccelErrorCode, appendBytesPerCallMax, appendRecordsPerCallMax } from "./errors.ts";
export type { AppendStats, CountedAppender, CountedDurableFile } from "./append-types.ts";
export { nativeLoadError, nativeCrcImpl } from "./native.ts";
export type { Calibration } from "./calibrate.ts";

export interface AccelParts {
  checksums: Checksums;
  clocks: Clocks;
  appender: CountedAppender;
}

/** The path behind each function (auto may mix: native for batches, TS for single calls). */
export interface AccelFunctions {
  crc32c: AccelPath;
  crc32cMany: AccelPath;
  compare: AccelPath;
  compareMany: AccelPath;
  append: AccelPath;
}

export interface Accel extends AccelParts {
  /** Per primitive: the path of its batch-shaped function (crc32cMany, compareMany, append). */
  choice: AccelChoice;
  functions: AccelFunctions;
  mode: AccelMode;
  /** Set when mode is auto: the measurements the choice came from. */
  calibration: Calibration | null;
}

/** The pure-TypeScript implementations. */
export const tsAccel: AccelParts = { checksums: tsChecksums, clocks: tsClocks, appender: tsAppender };

let nativePartsMemo: AccelParts | null | undefined;
/** The native implementations, or null when the addon did not load. */
export function nativeAccel(): AccelParts | null {
  if (nativePartsMemo === undefined) {
    const b = nativeBinding();
    nativePartsMemo = b ? { checksums: nativeChecksums(b), clocks: nativeClocks(b), appender: nativeAppender(b) } : null;
  }
  return nativePartsMemo;
}

export function nativeAvailable(): boolean {
  return nativeAccel() !== null;
}

export function parseAccelMode(s: string | undefined): AccelMode {
  const v = (s ?? "").trim().toLowerCase();
  if (v === "" || v === "auto") return "auto";
  if (v === "native" || v === "ts") return v;
  throw new AccelError(AccelErrorCode.BadMode, `IMDB_ACCEL must be auto, native or ts (got "${s}")`);
}

function uniform(p: AccelPath): AccelFunctions {
  return { crc32c: p, crc32cMany: p, compare: p, compareMany: p, append: p };
}

function build(fns: AccelFunctions, mode: AccelMode, calibration: Calibration | null): Accel {
  const n = nativeAccel();
  const pick = (p: AccelPath): AccelParts => {
    if (p === "ts") return tsAccel;
    if (!n) throw new AccelError(AccelErrorCode.NativeUnavailable, `native accel path unavailable: ${nativeLoadError() ?? "unknown"}`);
    return n;
  };
  const checksums: Checksums = { crc32c: pick(fns.crc32c).checksums.crc32c, crc32cMany: pick(fns.crc32cMany).checksums.crc32cMany };
  const clocks: Clocks = { compare: pick(fns.compare).clocks.compare, compareMany: pick(fns.compareMany).clocks.compareMany };
  return {
    // One path for the whole primitive keeps the very objects (identity) of that path.
    checksums: fns.crc32c === fns.crc32cMany ? pick(fns.crc32c).checksums : checksums,
    clocks: fns.compare === fns.compareMany ? pick(fns.compare).clocks : clocks,
    appender: pick(fns.append).appender,
    choice: { checksum: fns.crc32cMany, clocks: fns.compareMany, append: fns.append },
    functions: fns,
    mode,
    calibration,
  };
}

/**
 * Builds an Accel for a mode. `native` throws NativeUnavailable when the addon did not load.
 * `auto` times each checksum and clock function both ways (10-25 ms once: single calls on a 200 B
 * record / 4-entry clock, batches of 250 x 100 B / 2500 clock pairs) and keeps the faster for
 * each: an N-API call costs more than a small TS checksum, so single calls often stay in TS
 * while batches go native. For append it picks native whenever the addon loaded, without
 * measuring: the rate is set by fdatasync latency, which a start-up probe of a few ms cannot
 * measure (and `imdb --version` should not write to disk). Per round the native path costs
 * less CPU (one N-API call per caller, one callback per round; measured ~25-30 us vs ~40-60 us
 * of non-fdatasync time per round for Bun's fs/promises) and keeps writev/fdatasync off the
 * runtime's shared file-system thread pool. Measured on the shared 2-core development box,
 * the two paths' records/s swing with other processes' disk load (either may lead in a given
 * run), so `imdb bench accel` is the arbiter; IMDB_ACCEL=ts overrides.
 */
export function loadAccel(mode: AccelMode): Accel {
  if (mode === "ts") return build(uniform("ts"), mode, null);
  if (mode === "native") {
    if (!nativeAvailable()) {
      throw new AccelError(
        AccelErrorCode.NativeUnavailable,
        `IMDB_ACCEL=native but the native addon did not load (${nativeLoadError() ?? "unknown"}); build it with \`npm run install\` or use IMDB_ACCEL=auto`,
      );
    }
    return build(uniform("native"), mode, null);
  }
  const n = nativeAccel();
  if (!n) return build(uniform("ts"), mode, null);
  const cal = calibrate(n, tsAccel);
  const fns: AccelFunctions = {
    crc32c: cal.crc32c.winner,
    crc32cMany: cal.crc32cMany.winner,
    compare: cal.compare.winner,
    compareMany: cal.compareMany.winner,
    append: "native",
  };
  return build(fns, mode, cal);
}

let memo: Accel | undefined;
/** The process-wide Accel, selected by IMDB_ACCEL (default auto) at first use. */
export function accel(): Accel {
  memo ??= loadAccel(parseAccelMode(process.env.IMDB_ACCEL));
  return memo;
}

/**
 * One line for `imdb --version`, e.g.
 * "accel=auto checksum=native(sse4.2) clocks=native append=native single-calls: crc32c=ts compare=ts".
 */
export function describeAccel(a: Accel): string {
  const crc = a.choice.checksum === "native" ? `native(${nativeCrcImpl() ?? "?"})` : "ts";
  let line = `accel=${a.mode} checksum=${crc} clocks=${a.choice.clocks} append=${a.choice.append}`;
  const f = a.functions;
  if (f.crc32c !== f.crc32cMany || f.compare !== f.compareMany) line += ` single-calls: crc32c=${f.crc32c} compare=${f.compare}`;
  if (!nativeAvailable()) line += ` (native addon not loaded: ${nativeLoadError() ?? "unknown"})`;
  return line;
}
