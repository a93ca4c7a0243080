// Redis as the benchmarks' comparison anchor: start a throwaway redis-server (Debian's package)
// on a free loopback port with a chosen persistence mode, and run redis-benchmark against it.
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";

const redisStartDeadlineMs = 10_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export type RunningRedis = { port: number; pid: number; tool: string; cli: string; version: string; stop: () => Promise<void> };

/** PEM files for redis-server's TLS port (tls-auth-clients yes: a client certificate from the CA is required). */
export interface RedisTlsFiles { cert: string; key: string; ca: string }

/** redis-cli / redis-benchmark flags that present a client certificate. */
export function redisTlsArgs(client: RedisTlsFiles): string[] {
  return ["--tls", "--cert", client.cert, "--key", client.key, "--cacert", client.ca];
}

/** Persistence of the throwaway server: AOF with fsync on every write, or none at all. */
export type RedisPersistence = "appendfsync-always" | "none";

/** Starts redis-server in `dir` on a free port, or says why it could not. */
export async function startRedis(
  dir: string,
  persistence: RedisPersistence = "appendfsync-always",
  tls?: { server: RedisTlsFiles; client: RedisTlsFiles },
): Promise<RunningRedis | { skipped: string }> {
  const server = Bun.which("redis-server");
  const tool = Bun.which("redis-benchmark");
  const cli = Bun.which("redis-cli");
  if (server === null || tool === null || cli === null) return { skipped: "redis-server / redis-benchmark / redis-cli not installed (apt-get install redis-server redis-tools)" };
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const aof = persistence === "appendfsync-always" ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"];
  const ports = tls === undefined
    ? ["--port", String(port)]
    : ["--port", "0", "--tls-port", String(port), "--tls-cert-file", tls.server.cert, "--tls-key-file", tls.server.key, "--tls-ca-cert-file", tls.server.ca, "--tls-auth-clients", "yes"];
  const proc = Bun.spawn([server, ...ports, "--bind", "127.0.0.1", ...aof,
    "--dir", dir, "--save", "", "--daemonize", "no", "--protected-mode", "no"], { stdout: "ignore", stderr: "ignore" });
  const stop = async (): Promise<void> => {
    proc.kill("SIGKILL");
    await proc.exited;
  };
  const deadline = performance.now() + redisStartDeadlineMs;
  while (performance.now() < deadline) {
    const info = Bun.spawnSync([cli, "-p", String(port), ...(tls === undefined ? [] : redisTlsArgs(tls.client)), "info", "server"]);
    const m = /redis_version:(\S+)/.exec(info.stdout.toString());
    if (m?.[1] !== undefined) return { port, pid: proc.pid, tool, cli, version: m[1], stop };
    await Bun.sleep(50);
  }
  await stop();
  return { skipped: `redis-server did not answer on port ${port} within ${redisStartDeadlineMs} ms${tls === undefined ? "" : " (built without TLS?)"}` };
}

/** CPU seconds (user + system) process `pid` has used so far, from /proc (0 where there is no /proc). */
export function processCpuSeconds(pid: number): number {
  try {
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / clockTicksPerSecond;
  } catch {
    return 0;
  }
}
/** USER_HZ on Linux (sysconf(_SC_CLK_TCK)): 100 on every architecture Node and Bun ship for. */
const clockTicksPerSecond = 100;

/**
 * Runs redis-benchmark -t `test` (default incr; sadd and hset write one set / one hash, with
 * -r random members or fields) and returns requests/s (and latency percentiles when printed),
 * and the share of one core redis-benchmark itself used over its run (CPU time / wall time):
 * near 1 would mean the load generator, not the server, set the rate.
 */
export async function redisBenchmark(
  tool: string,
  port: number,
  opts: { clients: number; requests: number; pipeline?: number; keyspace?: number; test?: "incr" | "sadd" | "hset" },
): Promise<{ rps: number; p50Ms: number | null; toolCpuShare: number }> {
  const test = opts.test ?? "incr";
  const args = [tool, "-p", String(port), "-c", String(opts.clients), "-n", String(opts.requests), "-t", test, "--csv"];
  if (opts.pipeline !== undefined) args.push("-P", String(opts.pipeline));
  if (opts.keyspace !== undefined) args.push("-r", String(opts.keyspace));
  const t0 = performance.now();
  const p = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  const wallUs = (performance.now() - t0) * 1000;
  const toolCpuShare = Number(p.resourceUsage()?.cpuTime.total ?? 0n) / wallUs;
  // CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
  const line = out.split("\n").find((l) => l.startsWith(`"${test.toUpperCase()}"`));
  const cells = line?.split(",").map((c) => c.replaceAll('"', ""));
  const rps = Number(cells?.[1]);
  if (!cells || !Number.isFinite(rps)) throw new Error(`could not read redis-benchmark output: ${out.slice(-300)}`);
  const p50 = Number(cells[4]);
  return { rps, p50Ms: Number.isFinite(p50) ? p50 : null, toolCpuShare };
}
