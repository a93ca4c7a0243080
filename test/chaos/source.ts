// Tells a proxy which local process opened a TCP connection (Linux /proc), so faults can be set per
// link (node-1 -> node-3) although every node dials the same proxy address of its destination.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type * as net from "node:net";
import type { SourceClassifier } from "./proxy.ts";

/** Inode of the socket whose local port is `port` and whose remote port is `remotePort` (IPv4 and IPv6 tables). */
export function socketInode(port: number, remotePort: number): string | null {
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, "0");
  const local = `:${hex(port)}`;
  const remote = `:${hex(remotePort)}`;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      const f = line.trim().split(/\s+/);
      const l = f[1];
      const r = f[2];
      if (l !== undefined && r !== undefined && l.endsWith(local) && r.endsWith(remote)) return f[9] ?? null;
    }
  }
  return null;
}

/** Whether process `pid` holds socket inode `inode` among its file descriptors. */
export function processHoldsSocket(pid: number, inode: string): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  const want = `socket:[${inode}]`;
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === want) return true;
    } catch {
      // the fd closed meanwhile
    }
  }
  return false;
}

/**
 * A classifier naming a connection by the process that dialled it: `pids()` gives the current
 * name -> pid map (it changes when a node restarts). Unknown dialers get null (default faults).
 */
export function processClassifier(pids: () => ReadonlyMap<string, number>): SourceClassifier {
  return (socket: net.Socket) => {
    const remotePort = socket.remotePort;
    const localPort = socket.localPort;
    if (remotePort === undefined || localPort === undefined) return null;
    const inode = socketInode(remotePort, localPort);
    if (inode === null) return null;
    for (const [name, pid] of pids()) if (processHoldsSocket(pid, inode)) return name;
    return null;
  };
}
