// Real-process harness: runs the built dist/imdb binary as a user would (nodes, clients, certs),
// with every wait a poll against a deadline.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

export const repoRoot = join(import.meta.dir, "..", "..");
export const binary = join(repoRoot, "dist", "imdb");

/** Builds dist/imdb when it is missing (npm test builds it first; this is for running one file). */
export function ensureBinary(): string {
  if (!existsSync(binary)) {
    const p = Bun.spawnSync([process.execPath, join(repoRoot, "scripts", "build.ts")], { stdout: "inherit", stderr: "inherit" });
    if (p.exitCode !== 0) throw new Error("build of dist/imdb failed");
  }
  return binary;
}

export function tempDir(prefix: string): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), `imdb-${prefix}-`));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(args: string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const proc = Bun.spawn([ensureBinary(), ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

export interface NodeProc {
  id: string;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  clientAddr: string;
  peerAddr: string;
  /** The bound /metrics address, when the node serves metrics (--metrics-addr). */
  metricsAddr: string | null;
  /** The bound Redis protocol address, when the node serves it (--resp-addr). */
  respAddr: string | null;
  /** Everything the node wrote to stderr so far (its log). */
  log(): string;
  /** Lines the node printed on stdout. */
  stdout(): string;
}

/** Starts `imdb node ARGS` and resolves once it printed its ready line (with the real ports). */
export async function startNode(id: string, args: string[], deadlineMs = 20_000): Promise<NodeProc> {
  const proc = Bun.spawn([ensureBinary(), "node", "--id", id, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let out = "";
  let err = "";
  void (async () => {
    for await (const c of proc.stderr) err += new TextDecoder().decode(c);
  })();
  const ready = (async () => {
    for await (const c of proc.stdout) {
      out += new TextDecoder().decode(c);
      const m = /ready: client (\S+) peer (\S+)( metrics (\S+))?( resp (\S+))?\n/.exec(out);
      if (m) return { clientAddr: m[1]!, peerAddr: m[2]!, metricsAddr: m[4] ?? null, respAddr: m[6] ?? null };
    }
    return null;
  })();
  const timeout = new Promise<null>((r) => setTimeout(() => r(null), deadlineMs));
  const addrs = await Promise.race([ready, proc.exited.then(() => null), timeout]);
  if (!addrs) {
    proc.kill("SIGKILL");
    throw new Error(`node ${id} did not become ready; stdout:\n${out}\nstderr:\n${err}`);
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  void (async () => {
    for await (const c of proc.stdout) out += new TextDecoder().decode(c);
  })().catch(() => undefined);
  return { id, proc, ...addrs, log: () => err, stdout: () => out };
}

/**
 * Ends an `imdb cluster` supervisor after a test, passed or not: SIGINT first (it stops its nodes
 * and exits), SIGKILL only after that. SIGKILL alone orphans its nodes: one was found still running
 * after a failed run.
 */
export async function stopSupervisor(proc: Subprocess, graceMs = 20_000): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) {
    proc.kill("SIGINT");
    await Promise.race([proc.exited, Bun.sleep(graceMs)]);
  }
  proc.kill("SIGKILL");
}

/** Polls `check` until it returns a value other than undefined/false, or throws at the deadline. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, deadlineMs = 15_000, everyMs = 50): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await Bun.sleep(everyMs);
  }
}

/** Every key a Scan lists (local: only the node's own replica, in a partitioned cluster), sorted. */
export async function scanAll(client: { scan(q: { cursor?: number; limit?: number; local?: boolean }): Promise<{ keys: string[]; cursor: number }> }, local = false): Promise<string[]> {
  const out: string[] = [];
  let cursor = 0;
  do {
    const page = await client.scan({ cursor, limit: 1000, local });
    out.push(...page.keys);
    cursor = page.cursor;
  } while (cursor !== 0);
  return out.sort();
}
