// `bun build --compile` embeds the addon through native.ts' static require: a probe binary,
// copied alone into an empty folder, must still load the native paths (when this checkout has them).
import { afterAll, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nativeAvailable, nativeLoadError } from "../../src/accel/index.ts";

const work = mkdtempSync(join(tmpdir(), "imdb-accel-compile-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

test(`a compiled probe copied alone into an empty folder uses the native paths${nativeAvailable() ? "" : ` (addon not loaded here: ${nativeLoadError()}; expects the fallback)`}`, () => {
  const built = join(work, "build", "probe");
  const b = Bun.spawnSync(
    [process.execPath, "build", "--compile", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig", join(import.meta.dir, "compiled-probe.ts"), "--outfile", built],
    { cwd: work },
  );
  expect(b.exitCode).toBe(0);
  const empty = mkdtempSync(join(work, "empty-"));
  copyFileSync(built, join(empty, "probe"));
  rmSync(join(work, "build"), { recursive: true, force: true });
  const env = { ...process.env, IMDB_ACCEL: "native" };
  const r = Bun.spawnSync([join(empty, "probe")], { cwd: empty, env });
  const out = r.stdout.toString();
  if (nativeAvailable()) {
    expect(out).toContain("accel=native checksum=native(");
    expect(out).toContain("native: crc32c=e3069283 compare=1 append=AB");
    expect(r.exitCode).toBe(0);
  } else {
    expect(out).toContain("native: not loaded");
  }
}, 60_000);
