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
/** Redis protocol ports (redis-cli -p): BASE+200.. so a local redis-server on 6379 does not clash. */
const respPortBase = 7200;
/** Stderr lines kept per node, to say why it exited. */
const childLinesKept = 8;
/** After a node exits, how long its last log lines get to arrive through the pipe. */
const childExitLogGraceMs = 100;

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
    .option("--base-port <port>", "peer ports are BASE.., client ports BASE+100.., Redis protocol ports BASE+200..", String(peerPortBase))
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
  const respBase = peerBase + (respPortBase - peerPortBase);
  const children: ClusterChild[] = [];
  for (const [i, id] of ids.entries()) {
    const cfgFile = join(dir, `${id}.yaml`);
    const cfg = [
      `id: ${id}`,
      `dataDir: ${JSON.stringify(join(dir, id))}`,
      `peerAddr: 127.0.0.1:${peerBase + i}`,
      `clientAddr: 127.0.0.1:${clientBase + i}`,
      `respAddr: 127.0.0.1:${respBase + i}`,
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
    const child: ClusterChild = { id, proc, ready: false, code: null, lastLines: [] };
    children.push(child);
    void pipeLines(proc.stdout, `[${id}] `, process.stdout, (line) => {
      if (line.includes(" ready: ")) child.ready = true;
    });
    void pipeLines(proc.stderr, `[${id}] `, process.stderr, (line) => {
      child.lastLines.push(line);
      if (child.lastLines.length > childLinesKept) child.lastLines.shift();
    });
  }

  // The command's life: it ends with the first of a signal, a node that could not start, or the
  // last node gone; the value is the exit code. Awaiting it (not a never-settling promise) keeps
  // the process idle while nodes run and lets it exit once they are gone.
  let finish!: (code: number) => void;
  const finished = new Promise<number>((r) => (finish = r));
  let stopping = false;
  const stopAll = async (): Promise<number> => {
    stopping = true;
    for (const c of children) if (c.code === null) c.proc.kill("SIGTERM");
    const codes = await Promise.all(children.map((c) => c.proc.exited));
    return codes.filter((c) => c !== 0).length;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    console.log(`cluster: ${signal}: stopping ${n} nodes`);
    void stopAll().then((bad) => {
      console.log(bad === 0 ? "cluster: all nodes stopped cleanly" : `cluster: ${bad} node(s) exited with an error`);
      finish(bad === 0 ? 0 : 1);
    });
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));

  console.log(
    [
      `cluster: ${n} nodes starting under ${dir}`,
      `cluster: client ports 127.0.0.1:${clientBase}..${clientBase + n - 1}; try:`,
      `  imdb client --server 127.0.0.1:${clientBase} --tls-dir ${certDir} incr visits`,
      `  imdb client --server 127.0.0.1:${clientBase + n - 1} --tls-dir ${certDir} get visits`,
      `  imdb client --tls-dir ${certDir} members`,
      `cluster: Redis protocol ports 127.0.0.1:${respBase}..${respBase + n - 1}; try:`,
      `  redis-cli -p ${respBase} --tls --cacert ${join(certDir, "ca.crt")} --cert ${join(certDir, "client.crt")} --key ${join(certDir, "client.key")} PING`,
      `  (from the source tree: npm run imdb -- client ...)  Ctrl-C stops the cluster.`,
    ].join("\n"),
  );
  for (const c of children) {
    void c.proc.exited.then(async (code) => {
      c.code = code;
      if (stopping) return;
      // Let the last log lines through before quoting them.
      await Bun.sleep(childExitLogGraceMs);
      const why = c.lastLines.at(-1) ?? "(it logged nothing)";
      if (!c.ready) {
        // A node that never started (a taken port, a bad folder) makes the cluster pointless.
        console.error(`cluster: ${c.id} could not start (exit code ${code}): ${why}`);
        console.error(`cluster: stopping the other nodes`);
        await stopAll();
        finish(code === 0 ? 1 : code);
        return;
      }
      // A node that dies later is reported; the others keep running (that is what a cluster is for).
      console.error(`cluster: ${c.id} exited with code ${code}: ${why}`);
      if (children.every((x) => x.code !== null)) {
        const bad = children.filter((x) => x.code !== 0).length;
        console.error(`cluster: every node has exited${bad === 0 ? "" : ` (${bad} with an error)`}`);
        finish(bad === 0 ? 0 : 1);
      }
    });
  }
  process.exit(await finished);
}

/** A node process of the local cluster, and what the command knows about it. */
interface ClusterChild {
  id: string;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** It printed its ready line. */
  ready: boolean;
  /** Its exit code once it exited. */
  code: number | null;
  /** Its last stderr lines, quoted when it exits on its own. */
  lastLines: string[];
}

async function pipeLines(stream: ReadableStream<Uint8Array>, prefix: string, out: NodeJS.WriteStream, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      out.write(prefix + line + "\n");
      onLine(line);
      pending = pending.slice(nl + 1);
    }
  }
  if (pending) {
    out.write(prefix + pending + "\n");
    onLine(pending);
  }
}
