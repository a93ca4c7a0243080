// The Redis protocol's listener: Bun's native TCP (and TLS) sockets, who a connection is (its
// certificate's role), maxclients, the TLS handshake deadline, certificate reload and shutdown.
// Each connection's pipeline is src/resp/connection.ts; what each command does is the command
// table's business.
import type { Socket, TCPSocketListener } from "bun";
import { constants } from "node:crypto";
import { parseAddr } from "../config/config.ts";
import { identityOf, type TlsMaterial } from "../transport/tls.ts";
import type { RunningServer, ServerSecurity } from "../transport/server.ts";
import { Connection, defaultConnectionLimits, type ConnectionContext, type ConnectionLimits } from "./connection.ts";
import type { Reply, RespCommands, RespRole, RespSession } from "./types.ts";

export { defaultConnectionLimits, respHandshakeTimeoutSeconds, type ConnectionLimits } from "./connection.ts";

/** Redis's default maxclients. Each client holds at most its query and reply bounds (src/limits.ts). */
export const respMaxClientsDefault = 10_000;
/** How often shutdown looks whether every connection has sent its last reply. */
const drainPollMs = 10;

/**
 * TLS 1.3 only, like the gRPC ports (src/transport/tls.ts tlsMinVersion): Bun.listen has no
 * minVersion, so the older protocol versions are switched off one by one.
 */
const noTlsBelow13 = constants.SSL_OP_NO_TLSv1 | constants.SSL_OP_NO_TLSv1_1 | constants.SSL_OP_NO_TLSv1_2;

const maxClientsLine = "-ERR max number of clients reached\r\n";

/** What the server reports to the node's metrics (src/node/metrics.ts). */
export interface RespServerMetrics {
  /** One command answered: its name (lower case, "unknown" for one the table does not know) and "OK" or the error's code word. */
  commandDone(command: string, status: string): void;
  /** A connection refused or closed by the server: over maxclients, a protocol error, no usable certificate, no handshake in time. */
  connectionRefused(reason: "maxclients" | "protocol" | "certificate" | "handshake"): void;
}

export interface RespServerOptions {
  /** HOST:PORT; port 0 picks a free one. */
  addr: string;
  /** TLS (client certificates required and verified against the CA) or plaintext (--insecure). */
  security: ServerSecurity;
  commands: RespCommands;
  /** Connections served at once; the next is answered "-ERR max number of clients reached" and closed. */
  maxClients?: number;
  limits?: Partial<ConnectionLimits>;
  metrics?: RespServerMetrics;
  /** An exception thrown by a command (answered "-ERR internal error"). Default: stderr. */
  onInternalError?: (command: string, err: unknown) => void;
}

/** One connection as the server sees it (CLIENT LIST, tests of backpressure). */
export interface RespConnectionView {
  session: RespSession;
  /** Commands dispatched and not yet answered. */
  pending: number;
  /** Encoded reply bytes the socket has not taken yet. */
  replyBytes: number;
  /** Unparsed input held. */
  inputBytes: number;
  /** Reading is stopped (backpressure, or closing). */
  paused: boolean;
}

export interface RunningRespServer extends RunningServer {
  /** The connection limit now (CONFIG GET maxclients). */
  readonly maxClients: number;
  /** Changes the connection limit for connections made from now on (CONFIG SET maxclients); open ones stay. */
  setMaxClients(n: number): void;
  sessions(): readonly RespSession[];
  connections(): readonly RespConnectionView[];
}

let nextClientId = 1;

/** The code word of an error reply ("ERR", "WRONGTYPE"), or "OK". */
function statusOf(r: Reply): string {
  if (r.kind !== "error") return "OK";
  const space = r.text.indexOf(" ");
  return space < 0 ? r.text : r.text.slice(0, space);
}

function newSession(socket: Socket<Connection>, role: RespRole): RespSession {
  return {
    id: nextClientId++,
    role,
    // As Redis formats it (anetFormatAddr): an IPv6 address in brackets.
    remote: socket.remoteAddress.includes(":") ? `[${socket.remoteAddress}]:${socket.remotePort}` : `${socket.remoteAddress}:${socket.remotePort}`,
    createdAtMs: Date.now(),
    name: null,
    protocol: 2,
    libName: null,
    libVersion: null,
    closeAfterReply: false,
  };
}

/** The connections of one listener, and who may open one. */
class Connections {
  readonly open = new Set<Connection>();
  /** TLS connections still in their handshake, and whether they came over maxclients (answered once it is done). */
  private readonly handshaking = new Map<Socket<Connection>, { over: boolean }>();
  stopping = false;
  readonly ctx: ConnectionContext;

  constructor(
    private readonly secure: boolean,
    public maxClients: number,
    commands: RespCommands,
    limits: Readonly<ConnectionLimits>,
    private readonly metrics: RespServerMetrics | undefined,
    onInternalError: (command: string, err: unknown) => void,
  ) {
    this.ctx = {
      commands,
      limits,
      stopping: () => this.stopping,
      answered: (command, reply) => {
        if (metrics === undefined) return;
        const status = statusOf(reply);
        metrics.commandDone(status === "ERR" && reply.kind === "error" && reply.text.startsWith("ERR unknown command") ? "unknown" : command, status);
      },
      protocolError: () => metrics?.connectionRefused("protocol"),
      onInternalError,
    };
  }

  private refuse(socket: Socket<Connection>, reason: "maxclients" | "certificate", line: string): void {
    this.metrics?.connectionRefused(reason);
    socket.write(line);
    socket.end();
  }

  /** A connection that may send commands: plaintext at once, TLS once its handshake verified a certificate. */
  private admit(socket: Socket<Connection>, role: RespRole): void {
    const c = new Connection(socket, newSession(socket, role), this.ctx);
    socket.data = c;
    this.open.add(c);
  }

  // Connections count against maxclients from the moment they connect (TLS ones during their
  // handshake too), as in Redis; the refusal is written once a TLS client can read it.
  opened(socket: Socket<Connection>): void {
    if (this.stopping) {
      socket.end();
      return;
    }
    // As Redis does: a reply goes out at once, not held back to coalesce with the next (Nagle).
    socket.setNoDelay(true);
    const over = this.open.size + this.handshaking.size >= this.maxClients;
    if (!this.secure) {
      if (over) this.refuse(socket, "maxclients", maxClientsLine);
      else this.admit(socket, "admin");
      return;
    }
    this.handshaking.set(socket, { over });
    socket.timeout(this.ctx.limits.handshakeTimeoutSeconds);
  }

  handshake(socket: Socket<Connection>, success: boolean): void {
    const h = this.handshaking.get(socket);
    if (h === undefined) return;
    this.handshaking.delete(socket);
    socket.timeout(0);
    const who = success && socket.authorized ? identityOf(socket.getPeerCertificate()) : null;
    if (who === null) {
      // Verification failures are refused by the TLS layer itself; this is a verified
      // certificate without a name (no CN).
      this.refuse(socket, "certificate", "-ERR no usable client certificate\r\n");
      return;
    }
    if (h.over || this.stopping) {
      this.refuse(socket, "maxclients", maxClientsLine);
      return;
    }
    this.admit(socket, who.role === "admin" ? "admin" : "client");
  }

  /** Only connections in their handshake have a timeout: idle clients are never dropped. */
  timedOut(socket: Socket<Connection>): void {
    if (!this.handshaking.delete(socket)) return;
    this.metrics?.connectionRefused("handshake");
    socket.terminate();
  }

  closed(socket: Socket<Connection>): void {
    this.handshaking.delete(socket);
    const c = socket.data;
    if (c === undefined) return;
    c.closed();
    this.open.delete(c);
  }

  /** Stops reading, lets in-flight commands answer for up to graceMs, then drops every connection. */
  async drain(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const c of this.open) c.finish();
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.open].some((c) => !c.idle)) await Bun.sleep(drainPollMs);
    for (const c of this.open) c.socket?.terminate();
    this.open.clear();
    for (const socket of this.handshaking.keys()) socket.terminate();
    this.handshaking.clear();
  }
}

export async function startRespServer(opts: RespServerOptions): Promise<RunningRespServer> {
  const parsed = parseAddr(opts.addr);
  if (parsed === undefined) throw new Error(`cannot listen on ${opts.addr}: not HOST:PORT`);
  const hostname = parsed.host.startsWith("[") ? parsed.host.slice(1, -1) : parsed.host;
  let tls: TlsMaterial | null = "tls" in opts.security ? opts.security.tls : null;
  const onInternal = opts.onInternalError ?? ((command: string, err: unknown) => console.error(`imdb: internal error in RESP ${command}:`, err));
  const conns = new Connections(tls !== null, opts.maxClients ?? respMaxClientsDefault, opts.commands, { ...defaultConnectionLimits, ...opts.limits }, opts.metrics, onInternal);

  const handlers = {
    binaryType: "uint8array" as const,
    open: (socket: Socket<Connection>) => conns.opened(socket),
    handshake: (socket: Socket<Connection>, success: boolean) => conns.handshake(socket, success),
    timeout: (socket: Socket<Connection>) => conns.timedOut(socket),
    data: (socket: Socket<Connection>, chunk: Uint8Array) => socket.data?.received(chunk),
    drain: (socket: Socket<Connection>) => socket.data?.drained(),
    close: (socket: Socket<Connection>) => conns.closed(socket),
    error: () => {
      // A client's broken TLS record or reset: that connection goes (close follows), the node
      // stays. Not logged: a client can cause it at will.
    },
  };
  const listen = (port: number): TCPSocketListener<Connection> => {
    try {
      return Bun.listen<Connection>({
        hostname,
        port,
        socket: handlers,
        ...(tls === null ? {} : { tls: { ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: true, secureOptions: noTlsBelow13 } }),
      });
    } catch (err) {
      throw new Error(`cannot listen on ${opts.addr}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  let listener = listen(parsed.port);
  const port = listener.port;

  let stopped: Promise<void> | null = null;
  return {
    port,
    get maxClients() {
      return conns.maxClients;
    },
    setMaxClients: (n) => {
      if (!Number.isSafeInteger(n) || n < 1) throw new Error(`maxclients must be a positive integer, not ${n}`);
      conns.maxClients = n;
    },
    setServing: () => undefined,
    reloadTls: (material) => {
      if (tls === null) throw new Error("server is insecure: nothing to reload");
      // Bun's listener keeps its TLS context: listen again on the same port with the new one.
      // Established connections keep theirs; a connection attempt in between is refused.
      tls = material;
      listener.stop(false);
      listener = listen(port);
    },
    shutdown: (graceMs = 5000) => {
      stopped ??= (async () => {
        listener.stop(false);
        await conns.drain(graceMs);
        listener.stop(true);
      })();
      return stopped;
    },
    sessions: () => [...conns.open].map((c) => c.session),
    connections: () => [...conns.open].map((c) => ({ session: c.session, pending: c.pending, replyBytes: c.replyBytes, inputBytes: c.inputBytes, paused: c.paused })),
  };
}
