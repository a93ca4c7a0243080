// `imdb bench cluster`: the cluster figures of issue 6, measured on the deterministic simulator, against their targets.

import { InvalidArgumentError, type Command } from "commander";
import { defaultLanConfig } from "../cluster/config.ts";
import { antiEntropyCosts, disseminationRounds, distribution, falsePositives, timeToDeadEverywhere } from "../sim/measure.ts";
import { targetVerdict } from "./report.ts";

export interface ClusterBenchOptions {
  seed: number;
  /** Smaller runs (about 10 s instead of about a minute) for a quick look. */
  quick: boolean;
  progress?: (line: string) => void;
}

export interface ClusterBenchRow {
  case: string;
  value: number;
  unit: string;
  target: number | null;
  /** Every target here is an upper bound. */
  met: boolean | null;
  detail?: Record<string, number | string>;
}

export const clusterBenchSeedMax = 2 ** 31;

const row = (c: string, value: number, unit: string, target: number | null, detail?: Record<string, number | string>): ClusterBenchRow => ({
  case: c,
  value,
  unit,
  target,
  met: target === null ? null : value <= target,
  ...(detail === undefined ? {} : { detail }),
});

const round2 = (x: number): number => Math.round(x * 100) / 100;

export function runClusterBench(opts: ClusterBenchOptions): ClusterBenchRow[] {
  const say = opts.progress ?? (() => {});
  const q = opts.quick;
  const rows: ClusterBenchRow[] = [];
  const config = defaultLanConfig();

  for (const loss of [0, 0.25]) {
    const trials = q ? 10 : 40;
    say(`dissemination: 100 nodes, ${loss * 100}% loss, ${trials} updates`);
    const d = distribution(disseminationRounds({ seed: opts.seed, nodes: 100, lossRate: loss, trials }));
    rows.push(row(`update reaches 100 nodes, ${loss * 100}% loss (p99)`, round2(d.p99), "gossip rounds", loss === 0 ? 10 : 13, {
      mean: round2(d.mean), max: round2(d.max), samples: d.samples, roundMs: config.gossipIntervalMs,
    }));
  }

  const killTrials = q ? 10 : 50;
  say(`detection: 100 nodes, ${killTrials} kills`);
  const dead = distribution(timeToDeadEverywhere({ seed: opts.seed, nodes: 100, trials: killTrials }));
  rows.push(row("killed node dead at every member, 100 nodes (p99)", Math.round(dead.p99), "ms", 9_000, {
    mean: Math.round(dead.mean), p50: Math.round(dead.p50), max: Math.round(dead.max), samples: dead.samples,
  }));

  const minutes = q ? 5 : 30;
  say(`false positives: 50 nodes, ${minutes} simulated minutes, 5% loss, 10% of nodes stalling 0.2-2 s`);
  const fp = falsePositives({ seed: opts.seed, nodes: 50, durationMs: minutes * 60_000, lossRate: 0.05, stallFraction: 0.1 });
  rows.push(row(`false deaths, 50 nodes, ${minutes} min, 5% loss, 10% stalling`, fp.falseDeaths, "deaths", 0, {
    stalls: fp.stalls, suspicionsRaisedAndRefuted: fp.suspicions,
  }));

  const keys = q ? 100_000 : 1_000_000;
  const ds = [0, 1, 10, 100, 1000];
  say(`anti-entropy: two replicas of ${keys.toLocaleString("en-US")} keys differing in ${ds.join(", ")} keys`);
  for (const c of antiEntropyCosts({ keys, differing: ds, seed: opts.seed })) {
    const detail = { hashBytes: c.hashBytes, stateBytes: c.stateBytes, messages: c.messages, sessions: c.sessions, converged: String(c.converged) };
    if (c.differing === 0) {
      rows.push(row(`anti-entropy, ${keys} keys, equal: bytes`, c.hashBytes + c.stateBytes, "bytes", 1024, detail));
    } else {
      rows.push(row(`anti-entropy, ${keys} keys, d=${c.differing}: entries`, c.entries, "entries", 2 * c.differing, detail));
      rows.push(row(`anti-entropy, ${keys} keys, d=${c.differing}: hash bytes per differing key`, Math.round(c.hashBytes / c.differing), "bytes", null, detail));
    }
    if (!c.converged) rows.push(row(`anti-entropy, d=${c.differing}: replicas equal afterwards`, 1, "not converged", 0));
  }
  return rows;
}

export function registerBench(bench: Command): void {
  bench
    .command("cluster")
    .description("simulated cluster figures: dissemination rounds, time to detect a death, false positives, anti-entropy cost")
    .option("--json", "print one JSON object on stdout")
    .option("--seed <n>", "simulation seed", (v: string) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0 || n > clusterBenchSeedMax) throw new InvalidArgumentError(`must be an integer in [0, ${clusterBenchSeedMax}]`);
      return n;
    }, 1)
    .option("--quick", "smaller runs (seconds instead of about a minute)")
    .action((o: { json?: boolean; seed: number; quick?: boolean }) => {
      const rows = runClusterBench({ seed: o.seed, quick: o.quick === true, progress: (s) => process.stderr.write(`${s}\n`) });
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ bench: "cluster", seed: o.seed, results: rows })}\n`);
        return;
      }
      for (const r of rows) {
        const t = r.target === null ? "" : `  ${targetVerdict({ bound: "<=", target: r.target, unit: r.unit }, r.value)}`;
        process.stdout.write(`${r.case.padEnd(62)} ${r.value.toLocaleString("en-US").padStart(10)} ${r.unit}${t}\n`);
      }
      if (rows.some((r) => r.met === false)) process.exitCode = 1;
    });
}
