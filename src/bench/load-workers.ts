// `imdb bench load` over several load-generator processes. One grpc-js client process saturates
// a core before a node does, so the callers are spread over worker processes (this same program
// with `bench load --worker`), started together, and their counts and latency histograms added
// up; the node's CPU and the workers' CPU are measured over the same window, so the output
// shows which side ran out first.
import { availableParallelism } from "node:os";
import type { Subprocess } from "bun";
import { ImdbClient, RpcError } from "../transport/client.ts";
import { selfCommand } from "../cli/self.ts";
import { driveLoad, type LoadCounts, type LoadOp, type LoadPlan } from "./load-driver.ts";
import { LatencyHistogram, type HistogramJson } from "./histogram.ts";
import { processCpuSeconds } from "./proc-cpu.ts";
import { cpuPercent, loadProgressLine } from "./report.ts";

/** How often workers report their running counts, and how often the parent prints a progress line. */
const workerTickMs = 100;
const progressIntervalMs = 1000;
/** Time a worker may take to start and open its connections. */
const workerReadyDeadlineMs = 30_000;
/** Time past the planned duration a worker may take to finish its last calls and report. */
const workerFinishGraceMs = 30_000;
/** Kept of a worker's stderr for the error message when it fails. */
const workerStderrBytesMax = 4096;

/** Lines a worker writes on stdout, one JSON object each. */
export type WorkerMessage =
  | { kind: "ready" }
  | ({ kind: "tick" } & LoadCounts)
  | ({ kind: "result"; elapsedMs: number; cpuSeconds: number; histogram: HistogramJson } & LoadCounts)
  | { kind: "fatal"; code: string; message: string };

export interface LoadCpu {
  /** Cores of this machine: 100% is one core busy, so the most a side can show is cores x 100%. */
  cores: number;
  nodePid: number | null;
  /** The node's CPU over the run (% of one core), null when its process is not visible here. */
  nodePct: number | null;
  /** The load generators' CPU over the run (% of one core). */
  loadersPct: number;
}

export interface LoadResult {
  op: LoadOp;
  clients: number;
  /** Load-generator processes (0: the callers ran inside the calling process, as in `bench redis`). */
  workers: number;
  batch: number;
  seconds: number;
  ops: number;
  calls: number;
  errors: number;
  opsPerSec: number;
  latencyMs: { p50: number; p99: number; max: number };
  cpu: LoadCpu;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

function summarize(plan: Pick<LoadPlan, "op" | "callers" | "batch">, workers: number, counts: LoadCounts, elapsedMs: number, h: LatencyHistogram, cpu: LoadCpu): LoadResult {
  return {
    op: plan.op, clients: plan.callers, workers, batch: plan.batch, seconds: round3(elapsedMs / 1000),
    ops: counts.ops, calls: counts.calls, errors: counts.errors, opsPerSec: Math.round((counts.ops * 1000) / elapsedMs),
    latencyMs: { p50: round3(h.percentileMs(0.5)), p99: round3(h.percentileMs(0.99)), max: round3(h.maxUs / 1000) },
    cpu,
  };
}

const cpuSelfSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Runs the callers in this process (for `bench redis`, which owns its node). */
export async function runLoad(clients: ImdbClient[], plan: LoadPlan, nodePid: number | null, progress: (line: string) => void): Promise<LoadResult> {
  const counts: LoadCounts = { ops: 0, calls: 0, errors: 0 };
  const sampler = cpuSampler(nodePid, () => cpuSelfSeconds());
  const timer = setInterval(() => progress(sampler.line(counts)), progressIntervalMs);
  try {
    const r = await driveLoad(clients, plan, counts);
    const end = sampler.total();
    return summarize(plan, 0, r, r.elapsedMs, r.histogram, { cores: availableParallelism(), nodePid, nodePct: end.nodePct, loadersPct: end.loadersPct ?? 0 });
  } finally {
    clearInterval(timer);
  }
}

/** Samples node and loader CPU per progress interval and over the whole run. */
function cpuSampler(nodePid: number | null, loaders: () => number | null): { line: (c: LoadCounts) => string; total: () => { nodePct: number | null; loadersPct: number | null } } {
  const t0 = performance.now();
  const node0 = nodePid === null ? null : processCpuSeconds(nodePid);
  const load0 = loaders();
  let last = { at: t0, node: node0, load: load0, ops: 0, errors: 0 };
  const pct = (a: number | null, b: number | null, ms: number): number | null => (a === null || b === null ? null : cpuPercent(a, b, ms));
  return {
    line: (c) => {
      const now = { at: performance.now(), node: nodePid === null ? null : processCpuSeconds(nodePid), load: loaders(), ops: c.ops, errors: c.errors };
      const ms = now.at - last.at;
      const text = loadProgressLine({
        elapsedS: (now.at - t0) / 1000, intervalMs: ms, ops: now.ops - last.ops, errors: now.errors - last.errors,
        nodeCpuPct: pct(last.node, now.node, ms), loadersCpuPct: pct(last.load, now.load, ms),
      });
      last = now;
      return text;
    },
    total: () => {
      const ms = performance.now() - t0;
      return { nodePct: pct(node0, nodePid === null ? null : processCpuSeconds(nodePid), ms), loadersPct: pct(load0, loaders(), ms) };
    },
  };
}

// ---- worker side ----

const emit = (m: WorkerMessage): void => void process.stdout.write(`${JSON.stringify(m)}\n`);

/** Waits for the parent's "go" line (or stdin closing, which means the parent is gone). */
async function awaitGo(): Promise<boolean> {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of Bun.stdin.stream()) {
    buf += dec.decode(chunk);
    if (buf.includes("\n")) return buf.startsWith("go");
  }
  return false;
}

/** The body of `bench load --worker`: ready, wait for go, run, report. Exit code 1 on a fatal error. */
export async function runWorker(clients: ImdbClient[], plan: LoadPlan): Promise<number> {
  emit({ kind: "ready" });
  if (!(await awaitGo())) return 1;
  const counts: LoadCounts = { ops: 0, calls: 0, errors: 0 };
  const cpu0 = cpuSelfSeconds();
  const timer = setInterval(() => emit({ kind: "tick", ...counts }), workerTickMs);
  try {
    const r = await driveLoad(clients, plan, counts);
    clearInterval(timer);
    emit({ kind: "result", ops: r.ops, calls: r.calls, errors: r.errors, elapsedMs: r.elapsedMs, cpuSeconds: cpuSelfSeconds() - cpu0, histogram: r.histogram.toJSON() });
    return 0;
  } catch (err) {
    clearInterval(timer);
    emit(err instanceof RpcError ? { kind: "fatal", code: err.codeName, message: err.details } : { kind: "fatal", code: "INTERNAL", message: (err as Error).message });
    return 1;
  }
}

// ---- parent side ----

/** A worker failed: its RPC status (when it had one) and why. */
export class LoadWorkerError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

interface Worker {
  proc: Subprocess<"pipe", "pipe", "pipe">;
  latest: LoadCounts;
  ready: Promise<void>;
  result: Promise<Extract<WorkerMessage, { kind: "result" }>>;
}

function startWorker(args: string[]): Worker {
  const proc = Bun.spawn([...selfCommand(), "bench", "load", "--worker", ...args], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  let stderr = "";
  void (async () => {
    for await (const c of proc.stderr) stderr = (stderr + new TextDecoder().decode(c)).slice(-workerStderrBytesMax);
  })();
  const w: Partial<Worker> & { latest: LoadCounts } = { proc, latest: { ops: 0, calls: 0, errors: 0 } };
  let onReady: () => void = () => {};
  w.ready = new Promise<void>((r) => (onReady = r));
  w.result = (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stdout) {
      buf += dec.decode(chunk);
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const m = JSON.parse(buf.slice(0, nl)) as WorkerMessage;
        buf = buf.slice(nl + 1);
        switch (m.kind) {
          case "ready":
            onReady();
            break;
          case "tick":
            w.latest = { ops: m.ops, calls: m.calls, errors: m.errors };
            break;
          case "result":
            w.latest = { ops: m.ops, calls: m.calls, errors: m.errors };
            return m;
          case "fatal":
            throw new LoadWorkerError(m.code, m.message);
          default: {
            const never: never = m;
            throw new Error(`unknown worker message ${JSON.stringify(never)}`);
          }
        }
      }
    }
    const code = await proc.exited;
    // Its own "error: ..." line says why; otherwise the last lines it wrote.
    const lines = stderr.trim().split("\n");
    const why = lines.find((l) => l.startsWith("error:")) ?? lines.slice(-3).join(" | ");
    throw new LoadWorkerError("INTERNAL", `a load worker exited (code ${code}) without a result: ${why}`);
  })();
  // A worker that dies before it is ready must not leave the parent waiting for "ready".
  void w.result.then(onReady, onReady);
  return w as Worker;
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new LoadWorkerError("DEADLINE_EXCEEDED", `${what} took over ${ms} ms`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export interface WorkersOptions {
  plan: LoadPlan;
  workers: number;
  /** gRPC connections each worker opens. */
  channelsPerWorker: number;
  /** Connection flags passed on to each worker (--server, --tls-dir, ...). */
  connArgs: string[];
  nodePid: number | null;
  progress: (line: string) => void;
}

/** Callers of worker i when `callers` are spread as evenly as possible over `workers`. */
export const callersOfWorker = (callers: number, workers: number, i: number): number =>
  Math.floor(callers / workers) + (i < callers % workers ? 1 : 0);

export async function runLoadWorkers(o: WorkersOptions): Promise<LoadResult> {
  const { plan } = o;
  const workers = Array.from({ length: o.workers }, (_, i) => {
    const callers = callersOfWorker(plan.callers, o.workers, i);
    return startWorker([
      "--op", plan.op, "--clients", String(callers), "--batch", String(plan.batch), "--seconds", String(plan.seconds),
      "--keys", String(plan.keys), "--value-bytes", String(plan.value.byteLength), "--channels", String(Math.min(callers, o.channelsPerWorker)),
      ...o.connArgs,
    ]);
  });
  const results = workers.map((w) => w.result);
  results.forEach((r) => r.catch(() => {})); // observed below; keep an early failure from going unhandled
  let timer: ReturnType<typeof setInterval> | undefined;
  try {
    await withDeadline(Promise.all(workers.map((w) => w.ready)), workerReadyDeadlineMs, "starting the load workers");
    const loaders = (): number | null => {
      let sum = 0;
      for (const w of workers) {
        const s = processCpuSeconds(w.proc.pid);
        if (s === null) return null;
        sum += s;
      }
      return sum;
    };
    const sampler = cpuSampler(o.nodePid, loaders);
    for (const w of workers) {
      w.proc.stdin.write("go\n");
      void w.proc.stdin.flush();
    }
    const sum = (): LoadCounts => workers.reduce((a, w) => ({ ops: a.ops + w.latest.ops, calls: a.calls + w.latest.calls, errors: a.errors + w.latest.errors }), { ops: 0, calls: 0, errors: 0 });
    timer = setInterval(() => o.progress(sampler.line(sum())), progressIntervalMs);
    const done = await withDeadline(Promise.all(results), plan.seconds * 1000 + workerFinishGraceMs, "the load run");
    const node = sampler.total();
    clearInterval(timer);
    const h = new LatencyHistogram();
    for (const r of done) h.merge(r.histogram);
    const elapsedMs = Math.max(...done.map((r) => r.elapsedMs));
    const loadersCpu = done.reduce((a, r) => a + r.cpuSeconds, 0);
    return summarize(plan, o.workers, sum(), elapsedMs, h, {
      cores: availableParallelism(), nodePid: o.nodePid, nodePct: node.nodePct, loadersPct: cpuPercent(0, loadersCpu, elapsedMs),
    });
  } finally {
    clearInterval(timer);
    for (const w of workers) {
      try {
        w.proc.stdin.end();
      } catch {
        // already closed
      }
      w.proc.kill();
    }
    await Promise.all(workers.map((w) => w.proc.exited));
  }
}
