// `imdb cluster --nodes N [--dir DIR]`: a local N-node mutual-TLS cluster in one command —
// certificates, configs and data under DIR — for trying the database out (`npm start`).
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { Command } from "commander";
import { initCerts } from "../transport/certs.ts";
import { selfCommand } from "./self.ts";

export const clusterNodesMax = 16;
const peerPortBase = 7000;
const clientPortBase = 7100;

interface ClusterOpts {
  nodes: string;
  dir: string;
  durability: string;
  basePort?: string;
}

export function register(program: Command): void {
  program
    .command("cluster")
    .description("start a local N-node mutual-TLS cluster (Ctrl-C stops every node cleanly)")
    .option("--nodes <n>", "number of nodes (1..16)", "3")
    .option("--dir <dir>", "folder for certificates, configs and data", "./data/cluster")
    .option("--durability <mode>", "sync | interval:MS | none", "sync")
    .option("--base-port <port>", "peer ports are BASE.., client ports BASE+100..", String(peerPortBase))
    .action(async (opts: ClusterOpts) => {
      const n = Number(opts.nodes);
      if (!Number.isInteger(n) || n < 1 || n > clusterNodesMax) {
        console.error(`error: --nodes must be an integer 1..${clusterNodesMax}`);
        process.exit(2);
      }
      const base = Number(opts.basePort ?? peerPortBase);
      if (!Number.isInteger(base) || base < 1024 || base > 65000) {
        console.error("error: --base-port must be an integer 1024..65000");
        process.exit(2);
      }
      await runCluster(n, resolve(opts.dir), opts.durability, base);
    });
}

async function runCluster(n: number, dir: string, durability: string, peerBase: number): Promise<void> {
  const certDir = join(dir, "certs");
  const ids = Array.from({ length: n }, (_, i) => `node-${i + 1}`);
  mkdirSync(dir, { recursive: true });
  if (!ids.every((id) => existsSync(join(certDir, `${id}.crt`)))) {
    await initCerts({ dir: certDir, nodes: ids, clients: ["client"], admins: ["admin"], hosts: [], days: 365, force: true });
    console.log(`cluster: certificates written to ${certDir}`);
  }
  const clientBase = peerBase + (clientPortBase - peerPortBase);
  const children: Array<{ id: string; proc: Subprocess<"ignore", "pipe", "pipe"> }> = [];
  for (const [i, id] of ids.entries()) {
    const cfgFile = join(dir, `${id}.yaml`);
    const cfg = [
      `id: ${id}`,
      `dataDir: ${JSON.stringify(join(dir, id))}`,
      `peerAddr: 127.0.0.1:${peerBase + i}`,
      `clientAddr: 127.0.0.1:${clientBase + i}`,
      `seeds: [${i === 0 ? "" : `127.0.0.1:${peerBase}`}]`,
      `tlsDir: ${JSON.stringify(certDir)}`,
      `durability: ${JSON.stringify(durability)}`,
      "",
    ].join("\n");
    writeFileSync(cfgFile, cfg);
    const proc = Bun.spawn([...selfCommand(), "node", "--config", cfgFile], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    children.push({ id, proc });
    void pipeLines(proc.stdout, `[${id}] `, process.stdout);
    void pipeLines(proc.stderr, `[${id}] `, process.stderr);
  }

  let stopping = false;
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log(`cluster: ${signal}: stopping ${n} nodes`);
    for (const c of children) c.proc.kill("SIGTERM");
    const codes = await Promise.all(children.map((c) => c.proc.exited));
    const bad = codes.filter((c) => c !== 0).length;
    console.log(bad === 0 ? "cluster: all nodes stopped cleanly" : `cluster: ${bad} node(s) exited with an error`);
    process.exit(bad === 0 ? 0 : 1);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));

  console.log(
    [
      `cluster: ${n} nodes starting under ${dir}`,
      `cluster: client ports 127.0.0.1:${clientBase}..${clientBase + n - 1}; try:`,
      `  imdb client --server 127.0.0.1:${clientBase} --tls-dir ${certDir} incr visits`,
      `  imdb client --server 127.0.0.1:${clientBase + n - 1} --tls-dir ${certDir} get visits`,
      `  imdb client --tls-dir ${certDir} members`,
      `  (from the source tree: npm run imdb -- client ...)  Ctrl-C stops the cluster.`,
    ].join("\n"),
  );
  // If a node dies on its own, say so; the others keep running (that is what a cluster is for).
  for (const c of children) {
    void c.proc.exited.then((code) => {
      if (!stopping) console.error(`cluster: ${c.id} exited with code ${code}`);
    });
  }
  await new Promise<never>(() => {});
}

async function pipeLines(stream: ReadableStream<Uint8Array>, prefix: string, out: NodeJS.WriteStream): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      out.write(prefix + pending.slice(0, nl + 1));
      pending = pending.slice(nl + 1);
    }
  }
  if (pending) out.write(prefix + pending + "\n");
}
