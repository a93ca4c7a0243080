// The Redis protocol's connection layer: Bun's native TCP (and TLS) sockets, one RespSession per
// connection, pipelining with replies in request order, backpressure, maxclients, and the
// protocol bounds of src/limits.ts. What each command does is the command table's business.
import type { Socket, TCPSocketListener } from "bun";
import { constants } from "node:crypto";
import { parseAddr } from "../config/config.ts";
import { respPendingCommandsMax, respReplyBufferBytesMax } from "../limits.ts";
import { identityOf, type TlsMaterial } from "../transport/tls.ts";
import type { RunningServer, ServerSecurity } from "../transport/server.ts";
import { defaultParserLimits, encodeReply, ReplyWriter, RespParser, type ParserLimits } from "./codec.ts";
import type { Reply, RespCommands, RespRole, RespSession } from "./types.ts";

/** Redis's default maxclients. Each client holds at most its query and reply bounds (src/limits.ts). */
export const respMaxClientsDefault = 10_000;
/** How often shutdown looks whether every connection has sent its last reply. */
const drainPollMs = 10;
/** Longest command name counted under its own label; longer ones are cut. */
const commandLabelCharsMax = 32;

/**
 * TLS 1.3 only, like the gRPC ports (src/transport/tls.ts tlsMinVersion): Bun.listen has no
 * minVersion, so the older protocol versions are switched off one by one.
 */
const noTlsBelow13 = constants.SSL_OP_NO_TLSv1 | constants.SSL_OP_NO_TLSv1_1 | constants.SSL_OP_NO_TLSv1_2;

const internalError: Reply = { kind: "error", text: "ERR internal error" };
const maxClientsLine = "-ERR max number of clients reached\r\n";

/** What the server reports to the node's metrics (src/node/metrics.ts). */
export interface RespServerMetrics {
  /** One command answered: its name (lower case, "unknown" for one the table does not know) and "OK" or the error's code word. */
  commandDone(command: string, status: string): void;
  /** A connection refused or closed by the server: over maxclients, a protocol error, no usable certificate. */
  connectionRefused(reason: "maxclients" | "protocol" | "certificate" | "handshake"): void;
}

/**
 * How long a TLS client has from connecting to finishing its handshake. Until then it holds a
 * socket and a maxclients slot without being anyone: one that never finishes is dropped, so
 * half-open connections cannot pile up. Bun's socket timeout counts in whole seconds.
 */
export const respHandshakeTimeoutSeconds = 10;

/** Per-connection bounds beyond the parser's; tests shrink them. */
export interface ConnectionLimits extends ParserLimits {
  replyBufferBytesMax: number;
  pendingCommandsMax: number;
  handshakeTimeoutSeconds: number;
}

export const defaultConnectionLimits: Readonly<ConnectionLimits> = Object.freeze({
  ...defaultParserLimits,
  replyBufferBytesMax: respReplyBufferBytesMax,
  pendingCommandsMax: respPendingCommandsMax,
  handshakeTimeoutSeconds: respHandshakeTimeoutSeconds,
});

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

/** One command waiting for its reply, in request order. */
interface Slot {
  reply: Reply | null;
  command: string;
  /** The protocol in force when the command ran: a HELLO later in the pipeline does not change this reply's shape. */
  protocol: 2 | 3;
}

interface Conn {
  socket: Socket<Conn> | null;
  session: RespSession;
  parser: RespParser;
  /** Replies not yet encoded, oldest first; head is the index of the oldest. */
  queue: Slot[];
  head: number;
  out: ReplyWriter;
  /** Bytes the socket refused (its buffer was full), written on drain before anything else. */
  unsent: Uint8Array | null;
  paused: boolean;
  /** QUIT, a protocol error or shutdown: no more commands; close once the last reply is out. */
  closing: boolean;
  flushScheduled: boolean;
}

let nextClientId = 1;

/** Command names seen, by a hash of their lower-cased bytes: naming a command costs no string building. */
const commandNames = new Map<number, string>();
/** Distinct names remembered; garbage names beyond it are built each time (and counted as unknown). */
const commandNamesMax = 512;

/** "set" from the bytes of a command name, lower case, cut to commandLabelCharsMax. */
function commandName(arg: Uint8Array | undefined): string {
  if (arg === undefined) return "";
  const n = Math.min(arg.length, commandLabelCharsMax);
  let h = 0x811c9dc5 ^ n;
  for (let i = 0; i < n; i++) {
    const c = arg[i]!;
    h = Math.imul(h ^ (c >= 65 && c <= 90 ? c + 32 : c), 0x01000193);
  }
  const known = commandNames.get(h);
  if (known !== undefined && known.length === n && sameName(known, arg)) return known;
  let s = "";
  for (let i = 0; i < n; i++) {
    const c = arg[i]!;
    s += String.fromCharCode(c >= 65 && c <= 90 ? c + 32 : c);
  }
  if (known === undefined && commandNames.size < commandNamesMax) commandNames.set(h, s);
  return s;
}

function sameName(name: string, arg: Uint8Array): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = arg[i]!;
    if (name.charCodeAt(i) !== (c >= 65 && c <= 90 ? c + 32 : c)) return false;
  }
  return true;
}

/** The code word of an error reply ("ERR", "WRONGTYPE"), or "OK". */
function statusOf(r: Reply): string {
  if (r.kind !== "error") return "OK";
  const space = r.text.indexOf(" ");
  return space < 0 ? r.text : r.text.slice(0, space);
}

export async function startRespServer(opts: RespServerOptions): Promise<RunningRespServer> {
  const parsed = parseAddr(opts.addr);
  if (parsed === undefined) throw new Error(`cannot listen on ${opts.addr}: not HOST:PORT`);
  const hostname = parsed.host.startsWith("[") ? parsed.host.slice(1, -1) : parsed.host;
  const limits: ConnectionLimits = { ...defaultConnectionLimits, ...opts.limits };
  let maxClients = opts.maxClients ?? respMaxClientsDefault;
  const commands = opts.commands;
  const metrics = opts.metrics;
  const onInternal = opts.onInternalError ?? ((command: string, err: unknown) => console.error(`imdb: internal error in RESP ${command}:`, err));
  const conns = new Set<Conn>();
  /** TLS connections still in their handshake, and whether they came over maxclients (answered once it is done). */
  const handshaking = new Map<Socket<Conn>, { over: boolean }>();
  let stopping = false;
  let tls: TlsMaterial | null = "tls" in opts.security ? opts.security.tls : null;

  const blocked = (c: Conn): boolean =>
    c.queue.length - c.head >= limits.pendingCommandsMax || c.out.length + (c.unsent?.length ?? 0) >= limits.replyBufferBytesMax;

  const setPaused = (c: Conn): void => {
    const want = c.closing || stopping || blocked(c);
    if (want === c.paused || c.socket === null) return;
    c.paused = want;
    if (want) c.socket.pause();
    else c.socket.resume();
  };

  const count = (command: string, r: Reply): void => {
    if (metrics === undefined) return;
    const status = statusOf(r);
    metrics.commandDone(status === "ERR" && r.kind === "error" && r.text.startsWith("ERR unknown command") ? "unknown" : command, status);
  };

  /** Writes what is encoded, unless the socket still has refused bytes (then drain writes it); ends a closing connection once all is out. */
  const flush = (c: Conn): void => {
    const socket = c.socket;
    if (socket === null) return;
    const length = c.out.length;
    if (c.unsent === null && length > 0) {
      const raw = c.out.raw();
      const n = socket.write(raw, 0, length);
      if (n < length) c.unsent = raw.slice(Math.max(0, n), length);
      c.out.clear();
    }
    if (c.closing && c.unsent === null && c.head === c.queue.length) {
      c.socket = null;
      socket.end();
    }
  };

  const scheduleFlush = (c: Conn): void => {
    if (c.flushScheduled) return;
    c.flushScheduled = true;
    // One write for every reply answered in this burst (a group commit answers many at once).
    queueMicrotask(() => {
      c.flushScheduled = false;
      pump(c);
    });
  };

  /** Encodes the answered replies at the head of the queue, in order. */
  const drainQueue = (c: Conn): void => {
    const q = c.queue;
    while (c.head < q.length) {
      const slot = q[c.head]!;
      if (slot.reply === null) break;
      q[c.head] = undefined as unknown as Slot;
      c.head++;
      if (c.socket !== null) encodeReply(c.out, slot.reply, slot.protocol);
    }
    if (c.head === q.length) {
      q.length = 0;
      c.head = 0;
    } else if (c.head > 1024 && c.head * 2 > q.length) {
      q.splice(0, c.head);
      c.head = 0;
    }
  };

  const dispatch = (c: Conn, args: Uint8Array[]): void => {
    const command = commandName(args[0]);
    let r: Reply | Promise<Reply>;
    try {
      r = commands.execute(c.session, args);
    } catch (err) {
      onInternal(command, err);
      r = internalError;
    }
    if (c.session.closeAfterReply) c.closing = true;
    // After execute: HELLO's own reply is in the protocol it switches to, as in Redis.
    const protocol = c.session.protocol;
    if (r instanceof Promise) {
      const slot: Slot = { reply: null, command, protocol };
      c.queue.push(slot);
      r.then(
        (reply) => {
          slot.reply = reply;
          count(command, reply);
          if (c.session.closeAfterReply) c.closing = true;
          drainQueue(c);
          scheduleFlush(c);
        },
        (err: unknown) => {
          onInternal(command, err);
          slot.reply = internalError;
          count(command, internalError);
          drainQueue(c);
          scheduleFlush(c);
        },
      );
      return;
    }
    count(command, r);
    if (c.head === c.queue.length) encodeReply(c.out, r, protocol);
    else c.queue.push({ reply: r, command, protocol });
  };

  /** Dispatches the complete commands received, as far as the connection's bounds allow. */
  const process = (c: Conn): void => {
    while (!c.closing && !blocked(c)) {
      const args = c.parser.next();
      if (args === null) break;
      dispatch(c, args);
    }
    if (c.parser.failure !== null && !c.closing) {
      // Answered after every earlier command's reply, then the connection closes (as Redis does).
      c.closing = true;
      metrics?.connectionRefused("protocol");
      const slot: Slot = { reply: { kind: "error", text: `ERR ${c.parser.failure}` }, command: "", protocol: c.session.protocol };
      if (c.head === c.queue.length) encodeReply(c.out, slot.reply!, slot.protocol);
      else c.queue.push(slot);
    }
  };

  /**
   * Dispatches what was received, writes the replies, and repeats while the reply bound was what
   * stopped dispatching and the socket took everything (no more input or drain event may come to
   * restart it); then pauses or resumes reading to match.
   */
  const pump = (c: Conn): void => {
    if (c.socket === null) return;
    for (;;) {
      if (!c.closing) process(c);
      const full = c.out.length >= limits.replyBufferBytesMax;
      flush(c);
      if (!full || c.unsent !== null || c.socket === null || c.closing) break;
    }
    // The socket refused part of the output: go on dispatching up to the reply bound meanwhile
    // (drain writes it all), so a client that stopped reading is seen to be over the bound and
    // paused, rather than left unread below it.
    if (c.unsent !== null && c.socket !== null && !c.closing) process(c);
    setPaused(c);
  };

  const refuse = (socket: Socket<Conn>, reason: "maxclients" | "certificate", line: string): void => {
    metrics?.connectionRefused(reason);
    socket.write(line);
    socket.end();
  };

  /** A connection that may send commands: plaintext at once, TLS once its handshake verified a certificate. */
  const admit = (socket: Socket<Conn>, role: RespRole): void => {
    const session: RespSession = {
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
    const c: Conn = {
      socket, session, parser: new RespParser(limits), queue: [], head: 0, out: new ReplyWriter(), unsent: null, paused: false, closing: false, flushScheduled: false,
    };
    socket.data = c;
    conns.add(c);
  };

  // Connections count against maxclients from the moment they connect (TLS ones during their
  // handshake too), as in Redis; the refusal is written once a TLS client can read it.
  const open = (socket: Socket<Conn>): void => {
    if (stopping) {
      socket.end();
      return;
    }
    // As Redis does: a reply goes out at once, not held back to coalesce with the next (Nagle).
    socket.setNoDelay(true);
    const over = conns.size + handshaking.size >= maxClients;
    if (tls === null) {
      if (over) refuse(socket, "maxclients", maxClientsLine);
      else admit(socket, "admin");
      return;
    }
    handshaking.set(socket, { over });
    socket.timeout(limits.handshakeTimeoutSeconds);
  };

  const handshake = (socket: Socket<Conn>, success: boolean): void => {
    const h = handshaking.get(socket);
    if (h === undefined) return;
    handshaking.delete(socket);
    socket.timeout(0);
    const who = success && socket.authorized ? identityOf(socket.getPeerCertificate()) : null;
    if (who === null) {
      // Verification failures are refused by the TLS layer itself; this is a verified
      // certificate without a name (no CN).
      refuse(socket, "certificate", "-ERR no usable client certificate\r\n");
      return;
    }
    if (h.over || stopping) {
      refuse(socket, "maxclients", maxClientsLine);
      return;
    }
    admit(socket, who.role === "admin" ? "admin" : "client");
  };

  const handlers = {
    binaryType: "uint8array" as const,
    open,
    handshake,
    timeout(socket: Socket<Conn>) {
      // Only connections in their handshake have a timeout: idle clients are never dropped.
      if (!handshaking.delete(socket)) return;
      metrics?.connectionRefused("handshake");
      socket.terminate();
    },
    // Bun hands every data callback a buffer of its own (never reused), so the parser may keep
    // views of it: arguments and a partial command's tail.
    data(socket: Socket<Conn>, chunk: Uint8Array) {
      const c = socket.data;
      if (c === undefined || c.socket === null || c.closing) return;
      c.parser.feed(chunk);
      pump(c);
    },
    drain(socket: Socket<Conn>) {
      const c = socket.data;
      if (c === undefined || c.socket === null) return;
      if (c.unsent !== null) {
        const n = socket.write(c.unsent);
        if (n < c.unsent.length) {
          c.unsent = c.unsent.subarray(Math.max(0, n));
          return;
        }
        c.unsent = null;
      }
      pump(c);
    },
    close(socket: Socket<Conn>) {
      handshaking.delete(socket);
      const c = socket.data;
      if (c === undefined) return;
      // Replies still pending are dropped when they come; nothing more is read or dispatched.
      c.socket = null;
      c.closing = true;
      conns.delete(c);
    },
    error() {
      // A client's broken TLS record or reset: that connection goes (close follows), the node
      // stays. Not logged: a client can cause it at will.
    },
  };

  const listen = (port: number): TCPSocketListener<Conn> => {
    try {
      return Bun.listen<Conn>({
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
  const shutdown = (graceMs = 5000): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      listener.stop(false);
      for (const c of conns) {
        c.closing = true;
        setPaused(c);
        flush(c);
      }
      // In-flight commands get their replies for up to graceMs; then every connection goes.
      const deadline = Date.now() + graceMs;
      while (Date.now() < deadline && [...conns].some((c) => c.socket !== null && (c.head < c.queue.length || c.unsent !== null))) {
        await Bun.sleep(drainPollMs);
      }
      for (const c of conns) c.socket?.terminate();
      conns.clear();
      for (const socket of handshaking.keys()) socket.terminate();
      handshaking.clear();
      listener.stop(true);
    })();
    return stopped;
  };

  return {
    port,
    get maxClients() {
      return maxClients;
    },
    setMaxClients: (n) => {
      if (!Number.isSafeInteger(n) || n < 1) throw new Error(`maxclients must be a positive integer, not ${n}`);
      maxClients = n;
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
    shutdown,
    sessions: () => [...conns].map((c) => c.session),
    connections: () =>
      [...conns].map((c) => ({
        session: c.session,
        pending: c.queue.length - c.head,
        replyBytes: c.out.length + (c.unsent?.length ?? 0),
        inputBytes: c.parser.bufferedBytes,
        paused: c.paused,
      })),
  };
}
