// A node whose ports are taken must fail in a moment, before recovery spends minutes replaying
// its WAL: each fixed address is bound once and let go before anything in the data folder is read.
import { createServer } from "node:net";
import { parseAddr } from "../config/config.ts";

/** One address the node will listen on, and what it is for (named in the error). */
export interface ListenAddr {
  what: string;
  addr: string;
}

/** A port the node needs is taken or cannot be bound on this host. */
export class PortUnavailableError extends Error {
  override readonly name = "PortUnavailableError";
}

function bindOnce(host: string, port: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", (err: NodeJS.ErrnoException) => resolve(err));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

function explain(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case "EADDRINUSE":
      return "is in use by another process";
    case "EADDRNOTAVAIL":
      return "is not an address of this host";
    case "EACCES":
      return "may not be bound by this user (ports below 1024 need privileges)";
    default:
      return `cannot be bound (${err.code ?? err.message})`;
  }
}

/**
 * Binds and releases every address with a fixed port (port 0 picks a free one later, so it cannot
 * clash); throws one error naming every address that is unavailable.
 */
export async function checkPortsFree(addrs: readonly ListenAddr[]): Promise<void> {
  const problems: string[] = [];
  for (const a of addrs) {
    const parsed = parseAddr(a.addr);
    if (parsed === undefined || parsed.port === 0) continue;
    const host = parsed.host.startsWith("[") ? parsed.host.slice(1, -1) : parsed.host;
    const err = await bindOnce(host, parsed.port);
    if (err !== null) problems.push(`${a.what} ${a.addr} ${explain(err)}`);
  }
  if (problems.length > 0) throw new PortUnavailableError(`${problems.join("; ")} (checked before reading the data folder)`);
}
