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

export interface Accel extends AccelParts {
  choice: AccelChoice;
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

function build(choice: AccelChoice, mode: AccelMode, calibration: Calibration | null): Accel {
  const n = nativeAccel();
  const pick = (p: AccelPath): AccelParts => {
    if (p === "ts") return tsAccel;
    if (!n) throw new AccelError(AccelErrorCode.NativeUnavailable, `native accel path unavailable: ${nativeLoadError() ?? "unknown"}`);
    return n;
  };
  return {
    checksums: pick(choice.checksum).checksums,
    clocks: pick(choice.clocks).clocks,
    appender: pick(choice.append).appender,
    choice,
    mode,
    calibration,
  };
}

/**
 * Builds an Accel for a mode. `native` throws NativeUnavailable when the addon did not load.
 * `auto` measures checksum and clocks both ways on batch-shaped work (a few ms) and keeps the
 * faster. For append it picks native whenever the addon loaded: the cost is dominated by
 * fdatasync, which a calibration of a few ms cannot measure reliably, while the native worker
 * thread keeps writev/fdatasync off libuv's 4-thread pool (shared with DNS, fs and zlib) and
 * completes a whole group-commit round with one callback instead of one per caller.
 * `imdb bench accel` measures that claim on the running machine.
 */
export function loadAccel(mode: AccelMode): Accel {
  if (mode === "ts") return build({ checksum: "ts", clocks: "ts", append: "ts" }, mode, null);
  if (mode === "native") {
    if (!nativeAvailable()) {
      throw new AccelError(
        AccelErrorCode.NativeUnavailable,
        `IMDB_ACCEL=native but the native addon did not load (${nativeLoadError() ?? "unknown"}); build it with \`npm run install\` or use IMDB_ACCEL=auto`,
      );
    }
    return build({ checksum: "native", clocks: "native", append: "native" }, mode, null);
  }
  const n = nativeAccel();
  if (!n) return build({ checksum: "ts", clocks: "ts", append: "ts" }, mode, null);
  const cal = calibrate(n, tsAccel);
  return build({ checksum: cal.checksum.winner, clocks: cal.clocks.winner, append: "native" }, mode, cal);
}

let memo: Accel | undefined;
/** The process-wide Accel, selected by IMDB_ACCEL (default auto) at first use. */
export function accel(): Accel {
  memo ??= loadAccel(parseAccelMode(process.env.IMDB_ACCEL));
  return memo;
}

/** One line for `imdb --version`, e.g. "accel=auto checksum=native(sse4.2) clocks=native append=native". */
export function describeAccel(a: Accel): string {
  const crc = a.choice.checksum === "native" ? `native(${nativeCrcImpl() ?? "?"})` : "ts";
  const why = nativeAvailable() ? "" : ` (native addon not loaded: ${nativeLoadError() ?? "unknown"})`;
  return `accel=${a.mode} checksum=${crc} clocks=${a.choice.clocks} append=${a.choice.append}${why}`;
}
