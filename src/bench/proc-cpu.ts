// CPU time of another process on this machine (Linux /proc), so `bench load` can print the
// node's CPU next to its throughput and a reader sees which side is saturated.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat times; asked once from getconf, 100 (Linux's USER_HZ) if that fails. */
let clockTicksPerSecond: number | null = null;

function ticksPerSecond(): number {
  if (clockTicksPerSecond === null) {
    clockTicksPerSecond = 100;
    try {
      const p = Bun.spawnSync(["getconf", "CLK_TCK"], { stdout: "pipe", stderr: "ignore" });
      const n = Number(p.stdout.toString().trim());
      if (p.exitCode === 0 && Number.isInteger(n) && n > 0) clockTicksPerSecond = n;
    } catch {
      // no getconf: keep the Linux default
    }
  }
  return clockTicksPerSecond;
}

/** utime + stime of every thread of `pid`, in seconds, or null when the process is gone or unreadable. */
export function processCpuSeconds(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) / ticksPerSecond();
}

const loopbackHosts = new Set(["localhost", "127.0.0.1", "::1", "[::1]", "ip6-localhost"]);

/** True for addresses that can only be this machine (so a local port lookup finds the right process). */
export function isLoopbackHost(host: string): boolean {
  return loopbackHosts.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Socket inodes listening on `port` (TCP, IPv4 and IPv6). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[1] local "ADDR:PORT", f[3] state (0A = LISTEN), f[9] inode.
      if (f[3] === "0A" && f[1]?.endsWith(`:${hexPort}`) === true && f[9] !== undefined && f[9] !== "0") inodes.add(f[9]);
    }
  }
  return inodes;
}

/** The pid of the process of this user that listens on TCP `port`, or null when none is visible. */
export function pidListeningOn(port: number): number | null {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return null;
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // another user's process, or gone
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m?.[1] !== undefined && inodes.has(m[1])) return Number(pid);
    }
  }
  return null;
}
