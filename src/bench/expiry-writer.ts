// The client of `imdb bench expiry` that writes other keys for the whole run, in a process of its
// own so the bench's loader and polling never delay its calls: a fixed number of unary Sets in
// flight, each call's completion time and latency kept, so the parent can cut the run into
// windows it only knows at the end (before the deadline, during the expiry, ...).
import type { Subprocess } from "bun";
import { selfCommand } from "../cli/self.ts";
import { batchOpsMax } from "../limits.ts";
import { ImdbClient, RpcError, type RequestOp } from "../transport/client.ts";
import { LatencyHistogram, type HistogramJson } from "./histogram.ts";

/** Samples per storage chunk (a completion time and a latency each, 12 B). */
const samplesPerChunk = 65_536;
/** Samples kept at most: about 240 MB; a run at 10k ops/s for over half an hour. */
export const writerSamplesMax = 20_000_000;
/** How often the writer reports its running counts. */
const writerTickMs = 1000;
/** Time the writer may take to start, connect and write its keys once. */
export const writerReadyDeadlineMs = 60_000;
/** Time the writer may take to stop its calls and answer with its windows. */
const writerFinishDeadlineMs = 60_000;
/** Kept of the writer's stderr for the error message when it fails. */
const writerStderrBytesMax = 4096;
/** Bytes of each value the writer sets. */
export const writerValueBytes = 16;

export const writerKey = (i: number): string => `other:${i}`;

/** A span of the run by wall-clock time (Unix ms), [fromMs, toMs). */
export interface WindowSpec {
  name: string;
  fromMs: number;
  toMs: number;
}

export interface TimelineSpec {
  fromMs: number;
  toMs: number;
  stepMs: number;
}

/** One second (stepMs) of the timeline: calls completed in it, their p99 and max (ms). */
export interface TimelinePoint {
  fromMs: number;
  calls: number;
  p99Ms: number;
  maxMs: number;
}

/** Lines the writer writes on stdout, one JSON object each. */
export type WriterMessage =
  | { kind: "ready" }
  | { kind: "tick"; calls: number; errors: number }
  | { kind: "result"; calls: number; errors: number; windows: Array<{ name: string; histogram: HistogramJson }>; timeline: TimelinePoint[] }
  | { kind: "fatal"; message: string };

/** Lines the parent writes on the writer's stdin. */
export type WriterCommand = { kind: "go" } | { kind: "stop"; windows: WindowSpec[]; timeline: TimelineSpec };

/** Completion times (Unix ms) and latencies (ms) of every call, in chunks. */
class Samples {
  private readonly ends: Float64Array[] = [];
  private readonly lats: Float32Array[] = [];
  count = 0;

  add(endMs: number, latencyMs: number): void {
    if (this.count >= writerSamplesMax) return;
    const k = this.count % samplesPerChunk;
    if (k === 0) {
      this.ends.push(new Float64Array(samplesPerChunk));
      this.lats.push(new Float32Array(samplesPerChunk));
    }
    (this.ends[this.ends.length - 1] as Float64Array)[k] = endMs;
    (this.lats[this.lats.length - 1] as Float32Array)[k] = latencyMs;
    this.count++;
  }

  /** Calls each sample in order. */
  each(f: (endMs: number, latencyMs: number) => void): void {
    for (let i = 0; i < this.count; i++) {
      const c = Math.floor(i / samplesPerChunk);
      const k = i % samplesPerChunk;
      f((this.ends[c] as Float64Array)[k] as number, (this.lats[c] as Float32Array)[k] as number);
    }
  }
}

export interface WriterPlan {
  inFlight: number;
  keys: number;
}

const emit = (m: WriterMessage): void => void process.stdout.write(`${JSON.stringify(m)}\n`);

/** Reads the parent's commands, one JSON line each; ends when stdin closes. */
async function* commands(): AsyncGenerator<WriterCommand> {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of Bun.stdin.stream()) {
    buf += dec.decode(chunk);
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      yield JSON.parse(line) as WriterCommand;
    }
  }
}

/** Every writer key once, so the node's key count includes them all before the parent's first reading. */
async function prefill(c: ImdbClient, keys: number, value: Uint8Array): Promise<void> {
  for (let start = 0; start < keys; start += batchOpsMax) {
    const ops: RequestOp[] = [];
    for (let i = start; i < Math.min(keys, start + batchOpsMax); i++) ops.push({ kind: "set", key: writerKey(i), value });
    const res = await c.batch(ops);
    const bad = res.find((r) => !r.ok);
    if (bad !== undefined && !bad.ok) throw new Error(`writer prefill: ${bad.code}: ${bad.message}`);
  }
}

/** Histograms of the samples in each window, and the per-step timeline. */
function cut(samples: Samples, windows: readonly WindowSpec[], tl: TimelineSpec): { windows: Array<{ name: string; histogram: HistogramJson }>; timeline: TimelinePoint[] } {
  const hs = windows.map(() => new LatencyHistogram());
  const steps = Math.max(0, Math.ceil((tl.toMs - tl.fromMs) / tl.stepMs));
  const ths = Array.from({ length: steps }, () => new LatencyHistogram());
  samples.each((end, lat) => {
    windows.forEach((w, i) => {
      if (end >= w.fromMs && end < w.toMs) (hs[i] as LatencyHistogram).recordMs(lat);
    });
    const s = Math.floor((end - tl.fromMs) / tl.stepMs);
    if (s >= 0 && s < steps) (ths[s] as LatencyHistogram).recordMs(lat);
  });
  return {
    windows: windows.map((w, i) => ({ name: w.name, histogram: (hs[i] as LatencyHistogram).toJSON() })),
    timeline: ths.map((h, s) => ({ fromMs: tl.fromMs + s * tl.stepMs, calls: h.count, p99Ms: h.percentileMs(0.99), maxMs: h.maxUs / 1000 })),
  };
}

/** The body of `bench expiry --writer`: prefill, ready, wait for go, write until stop, answer. Exit code 1 on a fatal error. */
export async function runWriter(c: ImdbClient, plan: WriterPlan): Promise<number> {
  const value = new Uint8Array(writerValueBytes).fill(0x77);
  try {
    await prefill(c, plan.keys, value);
  } catch (err) {
    emit({ kind: "fatal", message: err instanceof RpcError ? `${err.codeName}: ${err.details}` : (err as Error).message });
    return 1;
  }
  emit({ kind: "ready" });
  const cmds = commands();
  const first = await cmds.next();
  if (first.done === true || first.value.kind !== "go") return 1;
  const samples = new Samples();
  let calls = 0;
  let errors = 0;
  let next = 0;
  let stopping = false;
  const caller = async (): Promise<void> => {
    while (!stopping) {
      const key = writerKey(next++ % plan.keys);
      const t0 = performance.now();
      try {
        await c.set(key, value);
      } catch {
        errors++; // the call's time still counts: it is what the client waited
      }
      samples.add(Date.now(), performance.now() - t0);
      calls++;
    }
  };
  const running = Promise.all(Array.from({ length: plan.inFlight }, caller));
  const timer = setInterval(() => emit({ kind: "tick", calls, errors }), writerTickMs);
  const stop = await cmds.next();
  stopping = true;
  clearInterval(timer);
  await running;
  if (stop.done === true || stop.value.kind !== "stop") return 1;
  emit({ kind: "result", calls, errors, ...cut(samples, stop.value.windows, stop.value.timeline) });
  return 0;
}

// ---- parent side ----

export interface WriterHandle {
  pid: number;
  /** Calls and errors so far (from the writer's last tick). */
  latest: { calls: number; errors: number };
  ready: Promise<void>;
  go(): void;
  /** Stops the writer and returns its windows. */
  finish(windows: WindowSpec[], timeline: TimelineSpec): Promise<Extract<WriterMessage, { kind: "result" }>>;
  kill(): Promise<void>;
}

export function startWriter(server: string, tlsDir: string, plan: WriterPlan): WriterHandle {
  const args = ["bench", "expiry", "--writer", "--server", server, "--tls-dir", tlsDir, "--writer-in-flight", String(plan.inFlight), "--other-keys", String(plan.keys)];
  const proc: Subprocess<"pipe", "pipe", "pipe"> = Bun.spawn([...selfCommand(), ...args], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  let stderr = "";
  void (async () => {
    for await (const ch of proc.stderr) stderr = (stderr + new TextDecoder().decode(ch)).slice(-writerStderrBytesMax);
  })();
  const latest = { calls: 0, errors: 0 };
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => (onReady = r));
  const result = (async (): Promise<Extract<WriterMessage, { kind: "result" }>> => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stdout) {
      buf += dec.decode(chunk);
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const m = JSON.parse(buf.slice(0, nl)) as WriterMessage;
        buf = buf.slice(nl + 1);
        switch (m.kind) {
          case "ready":
            onReady();
            break;
          case "tick":
            latest.calls = m.calls;
            latest.errors = m.errors;
            break;
          case "result":
            return m;
          case "fatal":
            throw new Error(`the writer failed: ${m.message}`);
          default: {
            const never: never = m;
            throw new Error(`unknown writer message ${JSON.stringify(never)}`);
          }
        }
      }
    }
    const code = await proc.exited;
    throw new Error(`the writer exited (code ${code}) without a result: ${stderr.trim().split("\n").slice(-3).join(" | ")}`);
  })();
  result.catch(() => {}); // observed through ready / finish
  const send = (c: WriterCommand): void => {
    proc.stdin.write(`${JSON.stringify(c)}\n`);
    void proc.stdin.flush();
  };
  return {
    pid: proc.pid,
    latest,
    // A writer that dies before it is ready rejects with its reason instead of leaving the parent waiting.
    ready: withDeadline(Promise.race([ready, result.then(() => Promise.reject(new Error("the writer answered before it was ready")))]), writerReadyDeadlineMs, "starting the writer"),
    go: () => send({ kind: "go" }),
    finish: (windows, timeline) => {
      send({ kind: "stop", windows, timeline });
      return withDeadline(result, writerFinishDeadlineMs, "stopping the writer");
    },
    kill: async () => {
      try {
        proc.stdin.end();
      } catch {
        // already closed
      }
      proc.kill();
      await proc.exited;
    },
  };
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
