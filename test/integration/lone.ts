// Runs dist/imdb as it ships: copied alone into an empty folder and, where the system allows a
// private mount namespace, with the source tree hidden under an empty tmpfs, so anything the
// binary would read from the repository at runtime (protos, console assets) fails loudly.
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ensureBinary, repoRoot, type NodeProc } from "./harness.ts";

export interface Lone {
  binary: string;
  /** True when the source tree is hidden from the processes this starts. */
  hidden: boolean;
  /** The argv that runs the lone binary with `args` (inside the hiding namespace when possible). */
  argv(args: string[]): string[];
}

export function loneBinary(dir: string): Lone {
  const binary = join(dir, "imdb");
  copyFileSync(ensureBinary(), binary);
  const hidden = !dir.startsWith(repoRoot + "/") && Bun.spawnSync(["unshare", "--mount", "--propagation", "private", "true"]).exitCode === 0;
  return {
    binary,
    hidden,
    argv: (args) =>
      hidden
        ? ["unshare", "--mount", "--propagation", "private", "sh", "-c", `mount -t tmpfs none "${repoRoot}" && test ! -e "${join(repoRoot, "package.json")}" && exec "${binary}" "$@"`, "sh", ...args]
        : [binary, ...args],
  };
}

/** Starts `imdb node --id ID ARGS` from the lone binary; resolves once it printed its ready line. */
export async function startLoneNode(lone: Lone, cwd: string, id: string, args: string[], deadlineMs = 20_000): Promise<NodeProc> {
  const proc: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn(lone.argv(["node", "--id", id, ...args]), {
    cwd,
    env: { PATH: "/usr/bin:/bin", HOME: cwd },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
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
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), deadlineMs)));
  const addrs = await Promise.race([ready, proc.exited.then(() => null), timeout]);
  clearTimeout(timer);
  if (!addrs) {
    proc.kill("SIGKILL");
    throw new Error(`node ${id} did not become ready; stdout:\n${out}\nstderr:\n${err}`);
  }
  void (async () => {
    for await (const c of proc.stdout) out += new TextDecoder().decode(c);
  })().catch(() => undefined);
  return { id, proc, ...addrs, log: () => err, stdout: () => out };
}
