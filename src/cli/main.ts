#!/usr/bin/env bun
// The `imdb` executable: one binary for running a node, talking to it, making certificates,
// starting a local cluster and benchmarking. Each subcommand lives in its own file.
// First: @peculiar/x509 (certificates) needs the Reflect metadata polyfill before it loads.
import "reflect-metadata";
import { Command, CommanderError } from "commander";
import { accel, describeAccel } from "../accel/index.ts";
import { version } from "../version.ts";
import { register as registerCerts } from "./certs.ts";
import { register as registerClient, registerAdmin } from "./client.ts";
import { registerBench as registerBenchAccel } from "../bench/accel.ts";
import { registerBenchAll } from "../bench/all.ts";
import { registerBench as registerBenchCrdt } from "../bench/crdt.ts";
import { registerBench as registerBenchLoad } from "../bench/load.ts";
import { registerBench as registerBenchStorage } from "../bench/storage.ts";
import { registerBench as registerBenchRedis } from "../bench/redis.ts";
import { registerBench as registerBenchResp } from "../bench/resp.ts";
import { registerBench as registerBenchCluster } from "../bench/cluster.ts";
import { registerBench as registerBenchCollect } from "../bench/collect.ts";
import { registerBench as registerBenchExpiry } from "../bench/expiry.ts";
import { registerBench as registerBenchEngine } from "../bench/engine.ts";
import { registerBench as registerBenchReplication } from "../bench/replication.ts";
import { registerBench as registerBenchTypes } from "../bench/types.ts";
import { registerBench as registerBenchPartition } from "../bench/partition.ts";
import { register as registerCluster } from "./cluster.ts";
import { register as registerConfig } from "./config.ts";
import { register as registerNode } from "./node.ts";

function versionText(): string {
  const a = accel();
  return [`imdb ${version}`, `bun ${Bun.version}`, `accel ${describeAccel(a)}`].join("\n");
}

export function buildProgram(): Command {
  const program = new Command("imdb")
    .description("in-memorydb: a distributed in-memory database of CRDTs")
    .option("-V, --version", "print the version, Bun's version and the accel path of each primitive")
    .showHelpAfterError()
    .exitOverride();
  program.action((opts: { version?: boolean }) => {
    if (opts.version) {
      console.log(versionText());
      return;
    }
    program.help();
  });
  registerNode(program);
  registerClient(program);
  registerCerts(program);
  registerConfig(program);
  registerCluster(program);
  registerAdmin(program);
  const bench = program.command("bench").description("benchmarks: ours vs the fallback, ours vs Redis");
  registerBenchAll(bench);
  registerBenchAccel(bench);
  registerBenchCrdt(bench);
  registerBenchStorage(bench);
  registerBenchLoad(bench);
  registerBenchRedis(bench);
  registerBenchResp(bench);
  registerBenchCluster(bench);
  registerBenchCollect(bench);
  registerBenchExpiry(bench);
  registerBenchEngine(bench);
  registerBenchReplication(bench);
  registerBenchTypes(bench);
  registerBenchPartition(bench);
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are exit 0; every other commander error is a usage error (exit 2).
      process.exit(err.exitCode === 0 ? 0 : 2);
    }
    throw err;
  }
}

if (import.meta.main) await main(process.argv);
