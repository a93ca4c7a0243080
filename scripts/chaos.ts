// `npm run chaos [--profile ci|full] [--only NAME,...] [--seed N]`: the chaos matrix and the TTL
// scenario against real node processes (test/chaos), a table of runs x faults with violations and convergence times,
// and one final plain `N passed, N failed` line. Bounded in time per profile.
import { expiryRun, faults, killCycles, matrixRun, passed, soak, type RunReport } from "../test/chaos/scenarios.ts";

interface Profile {
  killCycles: number;
  nodes: number;
  scale: number;
  warmupMs: number;
  faults: string[];
  /** Each matrix fault runs this many times, each with its own seed. */
  rounds: number;
  /** Runs of the TTL scenario (`ttl`: 3 nodes, +-60 s skew, a partition; about 30 s each), each with its own seed. */
  expiryRuns: number;
  soakSeconds: number;
  /** The whole run stops starting new runs after this (the ones left are counted as failed). */
  budgetMs: number;
}

/** Every matrix fault, the control (a partition left in place, which must be caught) last. */
const matrixFaults = [...Object.keys(faults).filter((k) => k !== "control"), "control"];

const profiles: Record<string, Profile> = {
  ci: { killCycles: 10, nodes: 5, scale: 0.25, warmupMs: 800, faults: matrixFaults, rounds: 2, expiryRuns: 1, soakSeconds: 0, budgetMs: 12 * 60_000 },
  full: { killCycles: 100, nodes: 5, scale: 1, warmupMs: 2000, faults: matrixFaults, rounds: 3, expiryRuns: 3, soakSeconds: 600, budgetMs: 90 * 60_000 },
};

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const profileName = arg("--profile") ?? "ci";
const profile = profiles[profileName];
if (profile === undefined) {
  console.error(`unknown profile "${profileName}" (ci, full)`);
  process.exit(2);
}
const seed = Number(arg("--seed") ?? Date.now() % 2 ** 31);
const only = arg("--only")?.split(",");
const cyclesOverride = arg("--cycles");
const soakOverride = arg("--soak-seconds");
const nodesOverride = arg("--nodes");
const roundsOverride = arg("--rounds");
if (roundsOverride !== undefined) {
  profile.rounds = Number(roundsOverride);
  profile.expiryRuns = Number(roundsOverride);
}
if (nodesOverride !== undefined) profile.nodes = Number(nodesOverride);
const log = (line: string) => process.stderr.write(`${line}\n`);

const t0 = performance.now();
const reports: RunReport[] = [];
const want = (name: string) => only === undefined || only.includes(name);
const overBudget = () => performance.now() - t0 > profile.budgetMs;

log(`chaos profile ${profileName}, seed ${seed} (replay with --seed ${seed})`);
if (want("kill-cycles")) {
  const cycles = cyclesOverride === undefined ? profile.killCycles : Number(cyclesOverride);
  log(`run: kill -9 cycles x${cycles}`);
  reports.push(await killCycles({ cycles, seed, log, durability: arg("--durability") ?? "sync" }));
}
const matrix = Array.from({ length: profile.rounds }, () => profile.faults).flat();
for (const [i, name] of matrix.entries()) {
  if (!want(name)) continue;
  const fault = faults[name];
  if (fault === undefined) continue;
  // Without a cluster that forms, every further run would only wait out the same timeout.
  const noCluster = reports.find((r) => r.error?.startsWith("the cluster did not form"));
  if (overBudget() || noCluster !== undefined) {
    const why = noCluster !== undefined ? "not run: the cluster did not form in an earlier run" : "not run: time budget spent";
    reports.push({ name: `${profile.nodes} nodes`, faults: fault.name, control: fault.control === true, seed, ops: { ok: 0, failed: 0, indeterminate: 0 }, violations: [], converged: false, convergenceMs: null, durationMs: 0, error: why, notes: [] });
    continue;
  }
  log(`run: ${profile.nodes} nodes, ${fault.name}`);
  reports.push(await matrixRun(fault, { nodes: profile.nodes, seed: seed + i + 1, log, scale: profile.scale, warmupMs: profile.warmupMs }));
  const r = reports[reports.length - 1]!;
  log(`  -> ${passed(r) ? (r.control ? "caught" : "pass") : r.control ? "MISSED" : "FAIL"}${r.error && !r.control ? `: ${r.error}` : ""}`);
}
for (let i = 0; i < profile.expiryRuns && want("ttl"); i++) {
  const runSeed = seed + 1000 + i;
  if (overBudget()) {
    reports.push({ name: "3 nodes, TTL keys", faults: "expiry: skew +-60 s + partition", control: false, seed: runSeed, ops: { ok: 0, failed: 0, indeterminate: 0 }, violations: [], converged: false, convergenceMs: null, durationMs: 0, error: "not run: time budget spent", notes: [] });
    continue;
  }
  log(`run: TTL keys on 3 nodes, skew +-60 s + partition (seed ${runSeed})`);
  reports.push(await expiryRun({ seed: runSeed, log }));
  const r = reports[reports.length - 1]!;
  log(`  -> ${passed(r) ? "pass" : "FAIL"}${r.error ? `: ${r.error}` : ""}`);
}
const soakSeconds = soakOverride === undefined ? profile.soakSeconds : Number(soakOverride);
if (want("soak") && soakSeconds > 0 && !overBudget()) {
  log(`run: soak ${soakSeconds} s on 3 nodes`);
  reports.push(await soak({ seconds: soakSeconds, seed, log }));
}

const rows = reports.map((r) => [
  r.name,
  r.faults,
  r.control ? (passed(r) ? "caught" : "MISSED") : passed(r) ? "pass" : "FAIL",
  `${r.ops.ok}/${r.ops.failed}/${r.ops.indeterminate}`,
  String(r.violations.length),
  r.convergenceMs === null ? "-" : `${Math.round(r.convergenceMs)} ms`,
  `${(r.durationMs / 1000).toFixed(1)} s`,
]);
const header = ["run", "faults", "result", "ops ok/failed/indet", "violations", "converged in", "took"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ");
console.log(line(header));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const row of rows) console.log(line(row));
for (const r of reports) {
  for (const n of r.notes) console.log(`  ${r.faults}: ${n}`);
  if (r.error && !r.control) console.log(`  ${r.faults}: error: ${r.error}`);
  if (r.control) console.log(`  ${r.faults}: control run, ${passed(r) ? "caught" : "NOT caught"}: ${r.violations.length} violations, ${r.converged ? "converged" : "not converged"}`);
  else for (const v of r.violations) console.log(`  ${r.faults}: VIOLATION [${v.checker}] ${v.key}: ${v.message}`);
}
const ok = reports.filter(passed).length;
console.log(`\nprofile ${profileName}: ${reports.length} runs, seed ${seed}, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
console.log(`${ok} passed, ${reports.length - ok} failed`);
process.exit(reports.length - ok > 0 ? 1 : 0);
