// The caller loop of `imdb bench load`, shared by its worker processes and by `bench redis`:
// a fixed number of callers send pre-built requests back to back for a set time, counting ops
// and errors and filling a latency histogram.
import { encodeBatchRequest, ImdbClient, RpcError, type RequestOp } from "../transport/client.ts";
import { countBatchErrors } from "../transport/batch-codec.ts";
import { batchOpsMax } from "../transport/api.ts";
import { LatencyHistogram } from "./histogram.ts";

export type LoadOp = "incr" | "set" | "get" | "mixed";
export const loadOps: readonly LoadOp[] = ["incr", "set", "get", "mixed"];

/** Pre-built (and pre-encoded) requests cycled through, so request building stays out of the measurement. */
const opPoolSize = 256;

export interface LoadPlan {
  op: LoadOp;
  /** Concurrent callers, spread over the given connections. */
  callers: number;
  /** Ops per Batch call; 1 sends unary calls. */
  batch: number;
  seconds: number;
  keys: number;
  value: Uint8Array;
}

/** Cumulative counts, as reported while the run goes on. */
export interface LoadCounts {
  ops: number;
  calls: number;
  errors: number;
}

export interface DriveResult extends LoadCounts {
  elapsedMs: number;
  histogram: LatencyHistogram;
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

/** Gives every key a value first, so gets find something (run once, before the callers start). */
export async function prefill(c: ImdbClient, keys: number, value: Uint8Array): Promise<void> {
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

/** True when the plan reads keys that prefill must create. */
export const needsPrefill = (op: LoadOp): boolean => op === "get" || op === "mixed";

async function unary(c: ImdbClient, o: RequestOp): Promise<void> {
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
}

/**
 * Runs the callers for plan.seconds. `counts` is updated in place while running (readers sample
 * it for progress). Throws the first call's error when the node is unreachable.
 */
export async function driveLoad(clients: ImdbClient[], plan: LoadPlan, counts: LoadCounts = { ops: 0, calls: 0, errors: 0 }): Promise<DriveResult> {
  if (clients.length === 0) throw new Error("no connection");
  const { op, keys, value, batch } = plan;
  const unaryPool: RequestOp[] = Array.from({ length: opPoolSize }, () => randomOp(op, keys, value));
  const batchPool: Uint8Array[] = batch > 1
    ? Array.from({ length: opPoolSize }, () => encodeBatchRequest(Array.from({ length: batch }, () => randomOp(op, keys, value))))
    : [];
  const histogram = new LatencyHistogram();
  let fatal: unknown = null;
  const started = performance.now();
  const endAt = started + plan.seconds * 1000;
  const caller = async (n: number): Promise<void> => {
    const c = clients[n % clients.length] as ImdbClient;
    let k = n;
    while (fatal === null && performance.now() < endAt) {
      const t0 = performance.now();
      try {
        if (batch > 1) {
          counts.errors += countBatchErrors(await c.batchRaw(batchPool[k++ % opPoolSize] as Uint8Array)).errors;
        } else {
          await unary(c, unaryPool[k++ % opPoolSize] as RequestOp);
        }
      } catch (err) {
        if (counts.calls === 0 && err instanceof RpcError && err.codeName === "UNAVAILABLE") fatal = err;
        counts.errors += batch;
      }
      histogram.recordMs(performance.now() - t0);
      counts.calls++;
      counts.ops += batch;
    }
  };
  await Promise.all(Array.from({ length: plan.callers }, (_, n) => caller(n)));
  if (fatal !== null) throw fatal;
  return { ...counts, elapsedMs: performance.now() - started, histogram };
}
