// `npm test`: type-check, build the binary, run every suite (the accel conformance suite a second
// time with IMDB_ACCEL=ts), then print one plain `N passed, N failed` line that CI reads.
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const bun = process.execPath;
let passed = 0;
let failed = 0;
let broken = false;

function run(label: string, cmd: string[], env: Record<string, string> = {}): string {
  console.log(`\n=== ${label}: ${cmd.join(" ")}`);
  const proc = Bun.spawnSync(cmd, {
    cwd: root,
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = proc.stdout.toString() + proc.stderr.toString();
  process.stdout.write(out);
  if (proc.exitCode !== 0) console.log(`=== ${label}: exit code ${proc.exitCode}`);
  return out + `\n__exit ${proc.exitCode}`;
}

/** Adds bun test's " N pass" / " N fail" summary to the totals; a crash counts as a failure. */
function count(label: string, out: string): void {
  const pass = /^\s*(\d+) pass$/m.exec(out);
  const fail = /^\s*(\d+) fail$/m.exec(out);
  const exit = /__exit (-?\d+|null)$/.exec(out)?.[1];
  if (!pass && !fail) {
    console.log(`=== ${label}: no test summary found; counting as one failure`);
    failed += 1;
    return;
  }
  passed += Number(pass?.[1] ?? 0);
  failed += Number(fail?.[1] ?? 0);
  if (exit !== "0" && Number(fail?.[1] ?? 0) === 0) {
    console.log(`=== ${label}: runner exited ${exit} with no failed test; counting as one failure`);
    failed += 1;
  }
}

// 1. Type-check: a type error is a failed test.
const tsc = run("typecheck", [bun, join(root, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", "tsconfig.json"]);
if (/__exit 0$/.test(tsc)) passed += 1;
else {
  failed += 1;
  broken = true;
}

// 2. Build dist/imdb: the integration tests run the binary as a user would.
const build = run("build", [bun, join(root, "scripts", "build.ts")]);
if (!/__exit 0$/.test(build)) {
  failed += 1;
  broken = true;
}

// 3. All suites with the default accel selection, then the accel suite on the TS fallback alone.
const only = process.argv.slice(2);
count("tests", run("tests", [bun, "test", "--timeout", "120000", ...(only.length ? only : ["test/"])]));
if (only.length === 0) {
  count("accel (IMDB_ACCEL=ts)", run("accel (IMDB_ACCEL=ts)", [bun, "test", "--timeout", "120000", "test/accel"], { IMDB_ACCEL: "ts" }));
}

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 || broken ? 1 : 0);
