// Starts `imdb node` as a child process and waits for its ready line: used by the benchmarks
// that need real nodes (bench redis, bench cluster --real). Tests have their own harness.
import type { Subprocess } from "bun";
import { selfCommand } from "../cli/self.ts";

export const nodeReadyDeadlineMs = 30_000;

export interface SpawnedNode {
  id: string;
  clientAddr: string;
  peerAddr: string;
  /** The bound /metrics address when the node was given --metrics-addr, else null. */
  metricsAddr: string | null;
  /** The bound Redis protocol address when the node was given --resp-addr, else null. */
  respAddr: string | null;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** The last 8 KiB the node logged (stderr). */
  log(): string;
  /** SIGTERM, then wait for the exit code. */
  stop(): Promise<number>;
}

export async function spawnNode(id: string, args: readonly string[]): Promise<SpawnedNode> {
  const proc = Bun.spawn([...selfCommand(), "node", "--id", id, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let out = "";
  let err = "";
  void (async () => {
    for await (const c of proc.stderr) err = (err + new TextDecoder().decode(c)).slice(-8192);
  })();
  const reader = (async () => {
    for await (const c of proc.stdout) {
      out += new TextDecoder().decode(c);
      const m = /ready: client (\S+) peer (\S+)( metrics (\S+))?( resp (\S+))?\n/.exec(out);
      if (m?.[1] !== undefined && m[2] !== undefined) return { clientAddr: m[1], peerAddr: m[2], metricsAddr: m[4] ?? null, respAddr: m[6] ?? null };
    }
    return null;
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), nodeReadyDeadlineMs)));
  const addrs = await Promise.race([reader, proc.exited.then(() => null), timeout]);
  clearTimeout(timer);
  if (addrs === null) {
    proc.kill("SIGKILL");
    throw new Error(`node ${id} did not start: ${err.trim().split("\n").slice(-3).join(" | ")}`);
  }
  return {
    id,
    ...addrs,
    proc,
    log: () => err,
    stop: async () => {
      proc.kill("SIGTERM");
      return proc.exited;
    },
  };
}
