// `imdb node`: runs one database node. Flags override the YAML file, which overrides the
// defaults; any config problem names the field and exits 2.
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { ConfigError, defaultNodeConfig, resolveNodeConfig, type ConfigInput, type NodeConfig } from "../config/config.ts";

interface NodeFlags {
  config?: string;
  id?: string;
  dataDir?: string;
  peerAddr?: string;
  advertiseAddr?: string;
  clientAddr?: string;
  seeds?: string;
  tlsDir?: string;
  durability?: string;
  metricsAddr?: string;
  respAddr?: string;
  logFormat?: string;
  logLevel?: string;
  insecure?: boolean;
  repair?: boolean;
  clockOffsetMs?: string;
  replicationFactor?: string;
  partitions?: string;
  restore?: string;
}

/** Resolves flags + optional YAML into a checked config; throws ConfigError with every problem in both. */
export function loadNodeConfig(flags: NodeFlags): NodeConfig {
  let file: ConfigInput["file"];
  if (flags.config !== undefined) {
    try {
      file = { path: flags.config, text: readFileSync(flags.config, "utf8") };
    } catch (err) {
      file = { path: flags.config, readError: (err as NodeJS.ErrnoException).code ?? String(err) };
    }
  }
  const fromFlags: Record<string, unknown> = {
    id: flags.id,
    dataDir: flags.dataDir,
    peerAddr: flags.peerAddr,
    advertiseAddr: flags.advertiseAddr,
    clientAddr: flags.clientAddr,
    seeds: flags.seeds,
    replicationFactor: flags.replicationFactor,
    partitions: flags.partitions,
    tlsDir: flags.tlsDir,
    durability: flags.durability,
    metricsAddr: flags.metricsAddr,
    respAddr: flags.respAddr,
    logFormat: flags.logFormat,
    logLevel: flags.logLevel,
    insecure: flags.insecure ? true : undefined,
    repair: flags.repair ? true : undefined,
    clockOffsetMs: flags.clockOffsetMs,
  };
  return resolveNodeConfig({ file, flags: fromFlags });
}

export function register(program: Command): void {
  program
    .command("node")
    .description("run a database node")
    .option("--config <file>", "YAML config (`imdb config template` prints one with every field)")
    .option("--id <id>", "node id (the CN of its certificate)")
    .option("--data-dir <dir>", "folder for the WAL and snapshots")
    .option("--peer-addr <host:port>", "node-to-node gRPC address")
    .option("--advertise-addr <host:port>", "peer address announced to other nodes")
    .option("--client-addr <host:port>", "client gRPC address")
    .option("--seeds <host:port,...>", "peer addresses of members to join through")
    .option("--replication-factor <n>", "owners per partition (each key stored by N nodes, requests forwarded to them); 0: every node holds every key")
    .option("--partitions <n>", "partitions of the keyspace (the same on every node)")
    .option("--tls-dir <dir>", "folder with ca.crt and <id>.crt/.key")
    .option("--durability <mode>", "sync | interval:MS | none")
    .option("--metrics-addr <host:port>", "serve Prometheus /metrics here")
    .option("--resp-addr <host:port>", "serve the Redis protocol (redis-cli, Redis clients) here")
    .option("--log-format <format>", "text | json")
    .option("--log-level <level>", "debug | info | warn | error")
    .option("--insecure", "plaintext on every port (local experiments only)")
    .option("--repair", "truncate a WAL damaged in the middle and start (peers refill the rest)")
    .option("--clock-offset-ms <ms>", "test only: add this many ms to the node's clock")
    .option("--restore <file>", "first fill the empty data folder from a backup (imdb admin backup); the node starts as a new replica")
    .action(async (flags: NodeFlags) => {
      let cfg: NodeConfig;
      try {
        cfg = loadNodeConfig(flags);
      } catch (err) {
        if (err instanceof ConfigError) {
          console.error(`error: ${err.message}`);
          process.exit(2);
        }
        throw err;
      }
      const { runNode } = await import("../node/node.ts");
      await runNode(cfg, flags.restore === undefined ? {} : { restoreFrom: flags.restore });
    });
}
