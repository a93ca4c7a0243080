// Selection of the accel paths: IMDB_ACCEL parsing, what each mode builds, and that `auto`
// keeps the path its own calibration measured faster.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { AccelError, AccelErrorCode, describeAccel, loadAccel, nativeAccel, nativeAvailable, parseAccelMode, tsAccel } from "../../src/accel/index.ts";

const native = nativeAccel();

function probe(mode: string): string {
  const r = Bun.spawnSync([process.execPath, join(import.meta.dir, "describe-probe.ts")], { env: { ...process.env, IMDB_ACCEL: mode } });
  return r.stdout.toString().trim();
}

describe("parseAccelMode", () => {
  test("accepts auto, native, ts in any case, default auto", () => {
    expect(parseAccelMode(undefined)).toBe("auto");
    expect(parseAccelMode("")).toBe("auto");
    expect(parseAccelMode(" AUTO ")).toBe("auto");
    expect(parseAccelMode("Native")).toBe("native");
    expect(parseAccelMode("ts")).toBe("ts");
  });
  test("refuses anything else with BAD_MODE", () => {
    let e: unknown;
    try {
      parseAccelMode("fast");
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(AccelError);
    expect((e as AccelError).code).toBe(AccelErrorCode.BadMode);
  });
});

describe("loadAccel", () => {
  test("ts uses the TS parts everywhere", () => {
    const a = loadAccel("ts");
    expect(a.choice).toEqual({ checksum: "ts", clocks: "ts", append: "ts" });
    expect(a.checksums).toBe(tsAccel.checksums);
    expect(a.clocks).toBe(tsAccel.clocks);
    expect(a.appender).toBe(tsAccel.appender);
    expect(describeAccel(a)).toStartWith("accel=ts checksum=ts clocks=ts append=ts");
  });

  test("native uses the addon everywhere, or refuses with NATIVE_UNAVAILABLE", () => {
    if (native) {
      const a = loadAccel("native");
      expect(a.choice).toEqual({ checksum: "native", clocks: "native", append: "native" });
      expect(a.checksums).toBe(native.checksums);
      expect(a.appender).toBe(native.appender);
    } else {
      expect(() => loadAccel("native")).toThrow(/IMDB_ACCEL=native/);
    }
  });

  test("auto never keeps a path its calibration measured slower", () => {
    const a = loadAccel("auto");
    if (!native) {
      expect(a.choice).toEqual({ checksum: "ts", clocks: "ts", append: "ts" });
      return;
    }
    const cal = a.calibration;
    if (!cal) throw new Error("auto with the addon loaded must calibrate");
    for (const k of ["crc32c", "crc32cMany", "compare", "compareMany"] as const) {
      const c = cal[k];
      expect(c.nativeNs).toBeGreaterThan(0);
      expect(c.tsNs).toBeGreaterThan(0);
      expect(a.functions[k]).toBe(c.nativeNs <= c.tsNs ? "native" : "ts");
    }
    expect(a.choice.checksum).toBe(a.functions.crc32cMany);
    expect(a.choice.clocks).toBe(a.functions.compareMany);
    const from = (p: "native" | "ts") => (p === "native" ? native : tsAccel);
    expect(a.checksums.crc32c).toBe(from(a.functions.crc32c).checksums.crc32c);
    expect(a.checksums.crc32cMany).toBe(from(a.functions.crc32cMany).checksums.crc32cMany);
    expect(a.clocks.compare).toBe(from(a.functions.compare).clocks.compare);
    expect(a.clocks.compareMany).toBe(from(a.functions.compareMany).clocks.compareMany);
    expect(a.choice.append).toBe("native");
  });
});

describe("accel() reads IMDB_ACCEL (fresh processes)", () => {
  test("IMDB_ACCEL=ts", () => {
    expect(probe("ts")).toStartWith("accel=ts checksum=ts clocks=ts append=ts");
  });
  test("IMDB_ACCEL=native", () => {
    if (nativeAvailable()) expect(probe("native")).toMatch(/^accel=native checksum=native\((sse4\.2|armv8|table)\) clocks=native append=native$/);
    else expect(probe("native")).toBe(`error ${AccelErrorCode.NativeUnavailable}`);
  });
  test("IMDB_ACCEL unset means auto", () => {
    const env = { ...process.env };
    delete env.IMDB_ACCEL;
    const r = Bun.spawnSync([process.execPath, join(import.meta.dir, "describe-probe.ts")], { env });
    expect(r.stdout.toString().trim()).toStartWith(nativeAvailable() ? "accel=auto checksum=" : "accel=auto checksum=ts clocks=ts append=ts");
  });
  test("IMDB_ACCEL=bogus is refused", () => {
    expect(probe("bogus")).toBe(`error ${AccelErrorCode.BadMode}`);
  });
});
