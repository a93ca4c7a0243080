// `imdb bench load`: drives a running node through ClientService (unary or Batch) and reports ops/s and call latency percentiles.
import { Command } from "commander";
import { addConnectionOptions, connectFromFlags, jsonLine, type ConnFlags } from "./client.ts";
import { encodeBatchRequest, ImdbClient, RpcError, type RequestOp } from "../transport/client.ts";
import { countBatchErrors } from "../transport/batch-codec.ts";
import { batchOpsMax, valueBytesMax } from "../transport/api.ts";

export const loadClientsMax = 1024;
export const loadSecondsMax = 3600;
export const loadKeysMax = 10_000_000;
/** Latency samples kept (one per call); beyond it later calls are counted but not sampled. */
export const latencySamplesMax = 2_000_000;
/** Pre-built (and pre-encoded) requests cycled through, so request building stays out of the measurement. */
const opPoolSize = 256;

type LoadOp = "incr" | "set" | "get" | "mixed";

interface LoadFlags extends ConnFlags {
  op: string; clients: string; batch: string; seconds: string; keys: string; valueBytes: string; channels?: string;
}

export interface LoadResult {
  op: LoadOp; clients: number; batch: number; seconds: number; ops: number; calls: number; errors: number;
  opsPerSec: number; latencyMs: { p50: number; p99: number; max: number };
}

function intFlag(raw: string, name: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in ${min}..${max}`);
  return n;
}

const counterKey = (i: number): string => `bench:c:${i}`;
const registerKey = (i: number): string => `bench:r:${i}`;

function randomOp(op: LoadOp, keys: number, value: Uint8Array): RequestOp {
  const i = Math.floor(Math.random() * keys);
  const pick = op === "mixed" ? ["incr", "incr", "get", "set"][Math.floor(Math.random() * 4)] : op;
  switch (pick) {
    case "set":
      return { kind: "set", key: registerKey(i), value };
    case "get":
      return { kind: "get", key: counterKey(i) };
    default:
      return { kind: "increment", key: counterKey(i), amount: 1n };
  }
}

async function prefill(c: ImdbClient, keys: number, value: Uint8Array): Promise<void> {
  for (let start = 0; start < keys; start += batchOpsMax / 2) {
    const ops: RequestOp[] = [];
    for (let i = start; i < Math.min(keys, start + batchOpsMax / 2); i++) {
      ops.push({ kind: "increment", key: counterKey(i), amount: 1n }, { kind: "set", key: registerKey(i), value });
    }
    const res = await c.batch(ops);
    const bad = res.find((r) => !r.ok);
    if (bad !== undefined && !bad.ok) throw new RpcError(13, `prefill failed: ${bad.code}: ${bad.message}`);
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

export async function runLoad(clients: ImdbClient[], op: LoadOp, callers: number, batch: number, seconds: number, keys: number, value: Uint8Array): Promise<LoadResult> {
  const first = clients[0];
  if (first === undefined) throw new Error("no connection");
  if (op === "get" || op === "mixed") await prefill(first, keys, value);
  const unaryPool: RequestOp[] = Array.from({ length: opPoolSize }, () => randomOp(op, keys, value));
  const batchPool: Uint8Array[] = batch > 1
    ? Array.from({ length: opPoolSize }, () => encodeBatchRequest(Array.from({ length: batch }, () => randomOp(op, keys, value))))
    : [];
  const samples = new Float64Array(latencySamplesMax);
  let sampled = 0;
  let ops = 0;
  let calls = 0;
  let errors = 0;
  let fatal: unknown = null;
  process.stderr.write(`load: ${op}, ${callers} clients, batch ${batch}, ${seconds} s\n`);
  const started = performance.now();
  const endAt = started + seconds * 1000;
  const progress = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    process.stderr.write(`load: ${s.toFixed(0)}s ${ops} ops (${Math.round(ops / s)} ops/s), ${errors} errors\n`);
  }, 1000);
  const unary = async (c: ImdbClient, o: RequestOp): Promise<void> => {
    switch (o.kind) {
      case "increment":
        await c.increment(o.key, o.amount);
        return;
      case "get":
        await c.get(o.key);
        return;
      case "set":
        await c.set(o.key, o.value);
        return;
      default:
        throw new Error(`unexpected op ${o.kind}`);
    }
  };
  const caller = async (n: number): Promise<void> => {
    const c = clients[n % clients.length] as ImdbClient;
    let k = n;
    while (fatal === null && performance.now() < endAt) {
      const t0 = performance.now();
      try {
        if (batch > 1) {
          errors += countBatchErrors(await c.batchRaw(batchPool[k++ % opPoolSize] as Uint8Array)).errors;
        } else {
          await unary(c, unaryPool[k++ % opPoolSize] as RequestOp);
        }
      } catch (err) {
        if (calls === 0 && err instanceof RpcError && err.codeName === "UNAVAILABLE") fatal = err;
        errors += batch;
      }
      const dt = performance.now() - t0;
      if (sampled < latencySamplesMax) samples[sampled++] = dt;
      calls++;
      ops += batch;
    }
  };
  try {
    await Promise.all(Array.from({ length: callers }, (_, n) => caller(n)));
  } finally {
    clearInterval(progress);
  }
  if (fatal !== null) throw fatal;
  const elapsed = (performance.now() - started) / 1000;
  const sorted = samples.subarray(0, sampled).sort();
  return {
    op, clients: callers, batch, seconds: round3(elapsed), ops, calls, errors, opsPerSec: Math.round(ops / elapsed),
    latencyMs: { p50: round3(percentile(sorted, 0.5)), p99: round3(percentile(sorted, 0.99)), max: round3(sorted[sampled - 1] ?? 0) },
  };
}

export function registerBench(bench: Command): void {
  addConnectionOptions(bench.command("load"), "client")
    .description("load a running node: ops/s and p50/p99 latency per call")
    .option("--op <op>", "incr | set | get | mixed (50% incr, 25% get, 25% set)", "incr")
    .option("--clients <n>", "concurrent callers", "16")
    .option("--batch <n>", `ops per Batch call (1 = unary calls), up to ${batchOpsMax}`, "1")
    .option("--seconds <s>", "duration", "5")
    .option("--keys <n>", "distinct keys", "1000")
    .option("--value-bytes <n>", "value size for set", "16")
    .option("--channels <n>", "gRPC connections shared by the callers (default min(clients, 4))")
    .option("--json", "print exactly one JSON object")
    .action(async function (this: Command) {
      const f = this.optsWithGlobals<LoadFlags>();
      let params: { op: LoadOp; callers: number; batch: number; seconds: number; keys: number; valueBytes: number; channels: number };
      try {
        if (!["incr", "set", "get", "mixed"].includes(f.op)) throw new Error("--op must be incr, set, get or mixed");
        const callers = intFlag(f.clients, "clients", 1, loadClientsMax);
        params = {
          op: f.op as LoadOp, callers, batch: intFlag(f.batch, "batch", 1, batchOpsMax), seconds: intFlag(f.seconds, "seconds", 1, loadSecondsMax),
          keys: intFlag(f.keys, "keys", 1, loadKeysMax), valueBytes: intFlag(f.valueBytes, "value-bytes", 0, valueBytesMax),
          channels: f.channels === undefined ? Math.min(callers, 4) : intFlag(f.channels, "channels", 1, callers),
        };
      } catch (err) {
        this.error(`error: ${(err as Error).message}`, { exitCode: 2, code: "imdb.usage" });
      }
      let clients: ImdbClient[] = [];
      try {
        for (let i = 0; i < params.channels; i++) clients.push(await connectFromFlags({ ...f, json: undefined }));
      } catch (err) {
        clients.forEach((c) => c.close());
        this.error(`error: ${(err as Error).message}`, { exitCode: 2, code: "imdb.usage" });
      }
      try {
        const r = await runLoad(clients, params.op, params.callers, params.batch, params.seconds, params.keys, new Uint8Array(params.valueBytes).fill(120));
        if (f.json === true) console.log(jsonLine(r));
        else {
          console.log(`op ${r.op}, ${r.clients} clients, batch ${r.batch}: ${r.ops} ops in ${r.seconds} s`);
          console.log(`throughput: ${r.opsPerSec} ops/s (${r.errors} errors)`);
          console.log(`latency per call: p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms`);
        }
        if (r.errors > 0 && r.errors >= r.ops) process.exitCode = 1;
      } catch (err) {
        if (!(err instanceof RpcError)) throw err;
        console.error(`error: ${err.codeName}: ${err.details}`);
        process.exitCode = 1;
      } finally {
        clients.forEach((c) => c.close());
        clients = [];
      }
    });
}
