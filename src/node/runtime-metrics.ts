// Process and runtime metrics that are true under Bun, replacing prom-client's Node defaults:
// those read V8 and libuv internals Bun only imitates (heap used above heap total, a Node
// version Bun pretends to be, VmData reported as a 6 GB "heap", an event-loop histogram that
// never fills, GC events that never come). What is kept is read from the OS (/proc) or from
// JavaScriptCore and Bun's allocator (bun:jsc), plus imdb_build_info.

import { heapSize as jscHeapSize, memoryUsage as jscMemoryUsage } from "bun:jsc";
import { readdirSync, readFileSync } from "node:fs";
import { Counter, Gauge, type Registry } from "prom-client";

/** The commit the binary was built from: scripts/build.ts defines IMDB_BUILD_COMMIT; from source it is "source". */
declare const IMDB_BUILD_COMMIT: string | undefined;
export const buildCommit: string = typeof IMDB_BUILD_COMMIT === "string" && IMDB_BUILD_COMMIT !== "" ? IMDB_BUILD_COMMIT : "source";

/** Longest wait for the scrape-time event-loop probe; a loop blocked longer reports this. */
export const eventLoopProbeMsMax = 5_000;

export interface BuildInfo {
  version: string;
  commit: string;
}

/** A field of /proc/self/status in bytes (the file gives kB), or undefined off Linux. */
function procStatusBytes(field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function openFds(): number | undefined {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return undefined;
  }
}

function maxFds(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** How long a callback queued now waits for the event loop (what a request arriving now would wait). */
function eventLoopDelaySeconds(): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(eventLoopProbeMsMax / 1000), eventLoopProbeMsMax);
    setImmediate(() => {
      clearTimeout(timer);
      resolve((performance.now() - t0) / 1000);
    });
  });
}

/** Registers the runtime families on `registry`. */
export function registerRuntimeMetrics(registry: Registry, build: BuildInfo): void {
  const registers = [registry];
  new Gauge({
    name: "imdb_build_info",
    help: "Always 1; the labels say which build runs: imdb version, commit, and the Bun runtime version.",
    labelNames: ["version", "commit", "bun"],
    registers,
  }).labels(build.version, build.commit, Bun.version).set(1);

  const cpu = (pick: (u: NodeJS.CpuUsage) => number) =>
    function (this: Counter) {
      this.reset();
      this.inc(pick(process.cpuUsage()) / 1e6);
    };
  new Counter({ name: "imdb_process_cpu_user_seconds_total", help: "User CPU time spent by the process.", registers, collect: cpu((u) => u.user) });
  new Counter({ name: "imdb_process_cpu_system_seconds_total", help: "System CPU time spent by the process.", registers, collect: cpu((u) => u.system) });
  new Counter({ name: "imdb_process_cpu_seconds_total", help: "User and system CPU time spent by the process.", registers, collect: cpu((u) => u.user + u.system) });
  new Gauge({ name: "imdb_process_start_time_seconds", help: "Unix time at which the process started.", registers }).set(Math.round(performance.timeOrigin) / 1000);

  new Gauge({
    name: "imdb_process_resident_memory_bytes",
    help: "Resident set size of the process: the memory it really occupies.",
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  new Gauge({
    name: "imdb_process_virtual_memory_bytes",
    help: "Virtual address space reserved by the process (JavaScriptCore reserves gigabytes up front; watch resident memory instead).",
    registers,
    collect() {
      const v = procStatusBytes("VmSize");
      if (v !== undefined) this.set(v);
    },
  });
  new Gauge({
    name: "imdb_process_open_fds",
    help: "Open file descriptors (sockets, WAL segments, snapshots).",
    registers,
    collect() {
      const n = openFds();
      if (n !== undefined) this.set(n);
    },
  });
  new Gauge({
    name: "imdb_process_max_fds",
    help: "Limit on open file descriptors (RLIMIT_NOFILE).",
    registers,
    collect() {
      const n = maxFds();
      if (n !== undefined) this.set(n);
    },
  });

  // JavaScriptCore measures live bytes only when it collects (heapSize() is the size at the last
  // collection, 194 before the first); its heap capacity needs heapStats(), which walks the whole
  // heap (~260 ms at 2M objects), too slow for a scrape: left out.
  new Gauge({
    name: "imdb_js_heap_live_bytes_at_last_gc",
    help: "Bytes of live JavaScript objects (and the string and buffer contents they own) found by the last garbage collection; JavaScriptCore measures it only then.",
    registers,
    collect() {
      this.set(jscHeapSize());
    },
  });
  new Gauge({
    name: "imdb_process_resident_memory_peak_bytes",
    help: "The largest resident set size the process has had.",
    registers,
    collect() {
      this.set(jscMemoryUsage().peak);
    },
  });
  // No gauge of mimalloc's committed bytes (bun:jsc memoryUsage().currentCommit): its statistic
  // only grows in a long-running process (17 GB reported by a node resident at 110 MiB after a
  // 1M-key write and collection, `imdb bench collect`), so it said nothing true about memory.
  new Gauge({
    name: "imdb_event_loop_delay_seconds",
    help: "How long a callback queued at scrape time waited for the event loop: what a request arriving then waited before its handler ran.",
    registers,
    async collect() {
      this.set(await eventLoopDelaySeconds());
    },
  });
}
