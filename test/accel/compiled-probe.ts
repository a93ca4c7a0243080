// Entry for a `bun build --compile` check: the binary, copied alone into an empty folder,
// prints which accel paths it got and exercises each native primitive once.
import { accel, describeAccel, nativeAccel, nativeLoadError } from "../../src/accel/index.ts";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

try {
  console.log(describeAccel(accel()));
} catch (e) {
  console.log(`accel: ${e instanceof Error ? e.message : String(e)}`);
}
const n = nativeAccel();
if (!n) {
  console.log(`native: not loaded (${nativeLoadError()})`);
  process.exit(1);
}
const crc = n.checksums.crc32c(new TextEncoder().encode("123456789")).toString(16);
const order = n.clocks.compare(Uint32Array.of(1), Float64Array.of(1), Uint32Array.of(1), Float64Array.of(2));
const dir = mkdtempSync(join(tmpdir(), "imdb-probe-"));
const f = await n.appender.open(join(dir, "x.log"));
await Promise.all([f.append([Uint8Array.of(65)], true), f.append([Uint8Array.of(66)], true)]);
await f.close();
const back = readFileSync(join(dir, "x.log"), "utf8");
rmSync(dir, { recursive: true, force: true });
console.log(`native: crc32c=${crc} compare=${order} append=${back}`);
