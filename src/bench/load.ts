// `imdb bench load`: drives a running node through ClientService (unary or Batch) from several
// load-generator processes and reports ops/s, call latency percentiles, and the CPU of the node
// and of the load generators over the same window.
import { availableParallelism } from "node:os";
import { Command, Option } from "commander";
import { addConnectionOptions, connectFromFlags, jsonLine, type ConnFlags } from "../cli/client.ts";
import { ImdbClient, RpcError, splitHostPort } from "../transport/client.ts";
import { batchOpsMax, valueBytesMax } from "../transport/api.ts";
import { loadOps, needsPrefill, prefill, type LoadOp, type LoadPlan } from "./load-driver.ts";
import { LoadWorkerError, runLoadWorkers, runWorker, type LoadResult } from "./load-workers.ts";
import { isLoopbackHost, pidListeningOn, processCpuSeconds } from "./proc-cpu.ts";

export type { LoadResult } from "./load-workers.ts";

export const loadClientsMax = 1024;
export const loadSecondsMax = 3600;
export const loadKeysMax = 10_000_000;
export const loadWorkersMax = 64;
/**
 * Default worker processes: half the cores, leaving the rest to a node on the same machine, and
 * no more than 4. More processes than free cores make things worse, not better: measured on 2
 * busy cores, a second worker nearly doubled the load generators' CPU per op and left the node
 * less CPU (docs/benchmarks.md, "Reading bench load").
 */
export const defaultLoadWorkers = (): number => Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)));

interface LoadFlags extends ConnFlags {
  op: string; clients: string; batch: string; seconds: string; keys: string; valueBytes: string; channels?: string;
  workers?: string; nodePid?: string; worker?: boolean;
}

interface LoadParams {
  plan: LoadPlan;
  workers: number;
  channels: number;
}

function intFlag(raw: string, name: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in ${min}..${max}`);
  return n;
}

function parseParams(f: LoadFlags): LoadParams {
  if (!(loadOps as readonly string[]).includes(f.op)) throw new Error("--op must be incr, set, get or mixed");
  const callers = intFlag(f.clients, "clients", 1, loadClientsMax);
  // A worker is one process of its parent's run: its --clients are its own share already.
  const workers = f.worker === true ? 1
    : f.workers === undefined ? Math.min(callers, defaultLoadWorkers()) : intFlag(f.workers, "workers", 1, Math.min(loadWorkersMax, callers));
  const perWorker = Math.ceil(callers / workers);
  return {
    plan: {
      op: f.op as LoadOp, callers, batch: intFlag(f.batch, "batch", 1, batchOpsMax), seconds: intFlag(f.seconds, "seconds", 1, loadSecondsMax),
      keys: intFlag(f.keys, "keys", 1, loadKeysMax), value: new Uint8Array(intFlag(f.valueBytes, "value-bytes", 0, valueBytesMax)).fill(120),
    },
    workers,
    channels: f.channels === undefined ? Math.min(perWorker, 4) : intFlag(f.channels, "channels", 1, perWorker),
  };
}

/** The connection flags as given, for the workers (they read the same environment). */
function connArgs(f: ConnFlags): string[] {
  const out: string[] = [];
  const pairs: Array<[string, string | undefined]> = [
    ["--server", f.server], ["--tls-dir", f.tlsDir], ["--name", f.name], ["--ca", f.ca], ["--cert", f.cert], ["--key", f.key], ["--timeout", f.timeout],
  ];
  for (const [flag, v] of pairs) if (v !== undefined) out.push(flag, v);
  if (f.insecure === true) out.push("--insecure");
  return out;
}

/** The node's pid: as given, or the local process listening on a loopback server address. */
function findNodePid(f: LoadFlags, server: string): number | null {
  if (f.nodePid !== undefined) {
    const pid = intFlag(f.nodePid, "node-pid", 1, 2 ** 31 - 1);
    if (processCpuSeconds(pid) === null) throw new Error(`--node-pid ${pid}: no such process visible in /proc`);
    return pid;
  }
  const { host, port } = splitHostPort(server);
  return isLoopbackHost(host) ? pidListeningOn(port) : null;
}

const pct = (x: number): string => `${Math.round(x)}%`;

function printResult(r: LoadResult): void {
  console.log(`op ${r.op}, ${r.clients} clients in ${r.workers} load processes, batch ${r.batch}: ${r.ops} ops in ${r.seconds} s`);
  console.log(`throughput: ${r.opsPerSec} ops/s (${r.errors} errors)`);
  console.log(`latency per call: p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms`);
  const node = r.cpu.nodePct === null
    ? "node not measured (not found on this machine: give --node-pid)"
    : `node ${pct(r.cpu.nodePct)} (pid ${r.cpu.nodePid})`;
  console.log(`CPU (% of one core, ${r.cpu.cores} cores here): ${node}, load generators ${pct(r.cpu.loadersPct)}`);
}

async function connectAll(f: LoadFlags, n: number): Promise<ImdbClient[]> {
  const clients: ImdbClient[] = [];
  try {
    for (let i = 0; i < n; i++) clients.push(await connectFromFlags({ ...f, json: undefined }));
    return clients;
  } catch (err) {
    clients.forEach((c) => c.close());
    throw err;
  }
}

export function registerBench(bench: Command): void {
  addConnectionOptions(bench.command("load"), "client")
    .description("load a running node from several processes: ops/s, p50/p99 latency per call, node and load-generator CPU")
    .option("--op <op>", "incr | set | get | mixed (50% incr, 25% get, 25% set)", "incr")
    .option("--clients <n>", "concurrent callers, spread over the worker processes", "16")
    .option("--workers <n>", `load-generator processes (default min(clients, ${defaultLoadWorkers()}): half the cores here, up to 4)`)
    .option("--batch <n>", `ops per Batch call (1 = unary calls), up to ${batchOpsMax}`, "1")
    .option("--seconds <s>", "duration", "5")
    .option("--keys <n>", "distinct keys", "1000")
    .option("--value-bytes <n>", "value size for set", "16")
    .option("--channels <n>", "gRPC connections per worker process (default min(its callers, 4))")
    .option("--node-pid <pid>", "the node's process id, for its CPU (found by itself when --server is a loopback address)")
    .option("--json", "print exactly one JSON object")
    .addOption(new Option("--worker", "internal: run as one load-generator process of a parent bench load").hideHelp())
    .action(async function (this: Command) {
      const f = this.optsWithGlobals<LoadFlags>();
      let params: LoadParams;
      let nodePid: number | null = null;
      try {
        params = parseParams(f);
        if (f.worker !== true) nodePid = findNodePid(f, f.server ?? process.env.IMDB_SERVER ?? "127.0.0.1:7100");
      } catch (err) {
        this.error(`error: ${(err as Error).message}`, { exitCode: 2, code: "imdb.usage" });
      }
      let clients: ImdbClient[] = [];
      try {
        // The parent opens one connection too: it prefills, and a bad flag or TLS file is its usage error, not a worker's.
        clients = await connectAll(f, f.worker === true ? params.channels : 1);
      } catch (err) {
        this.error(`error: ${(err as Error).message}`, { exitCode: 2, code: "imdb.usage" });
      }
      try {
        if (f.worker === true) {
          process.exitCode = await runWorker(clients, params.plan);
          return;
        }
        const { plan } = params;
        const first = clients[0];
        if (first !== undefined && needsPrefill(plan.op)) await prefill(first, plan.keys, plan.value);
        process.stderr.write(`load: ${plan.op}, ${plan.callers} clients in ${params.workers} processes, batch ${plan.batch}, ${plan.seconds} s` +
          `${nodePid === null ? "" : `, node pid ${nodePid}`}\n`);
        const r = await runLoadWorkers({
          plan, workers: params.workers, channelsPerWorker: params.channels, connArgs: connArgs(f), nodePid,
          progress: (line) => void process.stderr.write(`${line}\n`),
        });
        if (f.json === true) console.log(jsonLine(r));
        else printResult(r);
        if (r.errors > 0 && r.errors >= r.ops) process.exitCode = 1;
      } catch (err) {
        if (err instanceof RpcError) console.error(`error: ${err.codeName}: ${err.details}`);
        else if (err instanceof LoadWorkerError) console.error(`error: ${err.code}: ${err.message}`);
        else throw err;
        process.exitCode = 1;
      } finally {
        clients.forEach((c) => c.close());
        clients = [];
      }
    });
}
