// The contract between the Redis protocol front door's two halves: the connection layer
// (src/resp/server.ts: sockets, TLS, parsing, encoding, pipelining) and the command table
// (src/resp/commands.ts: what each command does to the node). Neither knows the other's insides.
import type { AdminHandler, ClientHandler } from "../transport/api.ts";

/**
 * One reply, before encoding. The connection layer encodes it for the session's protocol:
 * RESP3 types (map, set, double, boolean, null, verbatim) degrade to their RESP2 shapes
 * (flat array, array, bulk string, integer 0/1, null bulk, bulk) exactly as Redis does.
 */
export type Reply =
  | { kind: "simple"; text: string }
  /** text is the whole error line without the leading "-", e.g. "WRONGTYPE Operation against ...". */
  | { kind: "error"; text: string }
  | { kind: "int"; value: bigint | number }
  /** value null: the null bulk string ($-1 in RESP2, _ in RESP3). */
  | { kind: "bulk"; value: Uint8Array | string | null }
  /** items null: the null array (*-1 in RESP2, _ in RESP3). */
  | { kind: "array"; items: Reply[] | null }
  | { kind: "map"; entries: [Reply, Reply][] }
  | { kind: "set"; items: Reply[] }
  | { kind: "double"; value: number }
  | { kind: "bool"; value: boolean }
  | { kind: "null" }
  /** format: three letters, "txt" or "mkd". */
  | { kind: "verbatim"; format: string; text: string };

export type RespRole = "admin" | "client";

/** One client connection's state that commands may read or change. */
export interface RespSession {
  /** Unique for the node's lifetime (CLIENT ID). */
  readonly id: number;
  /** What the client certificate allows; "admin" when the node runs with --insecure (no certificates). */
  readonly role: RespRole;
  /** "host:port" of the peer, for CLIENT INFO / CLIENT LIST. */
  readonly remote: string;
  readonly createdAtMs: number;
  /** CLIENT SETNAME; null when unset. */
  name: string | null;
  /** 2 until HELLO 3. */
  protocol: 2 | 3;
  /** CLIENT SETINFO lib-name / lib-ver. */
  libName: string | null;
  libVersion: string | null;
  /** Set by QUIT: the connection layer closes the connection once this reply is written. */
  closeAfterReply: boolean;
}

/** What the command table needs from the node. */
export interface RespBackend {
  readonly client: ClientHandler;
  readonly admin: AdminHandler;
  /** INFO server / crdt: this node's id, version, uptime, members with replication lag. */
  info(): RespInfo;
  /** Live connections, for CLIENT LIST / INFO clients. */
  sessions(): readonly RespSession[];
  /**
   * CONFIG SET maxclients: applies a new connection limit; answers null, or why it was refused.
   * Absent: maxclients cannot change at run time (CONFIG SET says so).
   */
  setMaxClients?(n: number): string | null;
  /** A command failed with an unexpected error (a bug): log it. The client gets `ERR internal error`. */
  onInternalError?(command: string, err: unknown): void;
}

export interface RespInfo {
  nodeId: string;
  version: string;
  uptimeSeconds: number;
  tcpPort: number;
  durability: string;
  usedMemoryBytes: number;
  keys: number;
  /** Keys carrying a deadline (INFO keyspace `expires=`); absent reads as 0. */
  keysWithDeadline?: number;
  /** Expiries this node has executed since it started (INFO stats `expired_keys`); absent reads as 0. */
  expiredTotal?: number;
  /** One line per member other than this node: its id, status and how far behind it is. */
  peers: { id: string; address: string; status: string; lagDeltas: number; conflicts: number }[];
  extra: { name: string; value: string }[];
  /** The connection limit (INFO clients, CONFIG GET maxclients); absent when the connection layer has none. */
  maxClients?: number;
}

/**
 * The command table: one parsed command (name first, as sent) in, one reply out. A reply known
 * at once is returned; otherwise start returns null and calls `later` with the reply once it is
 * known, or `failed` if the command broke (a bug: the connection answers "ERR internal error").
 * Callbacks rather than a promise: the connection would only chain one more promise on it,
 * and every command paid for that hop.
 */
export interface RespCommands {
  start(session: RespSession, args: readonly Uint8Array[], later: (reply: Reply) => void, failed: (err: unknown) => void): Reply | null;
}

/** start() of a command table whose commands answer a reply or a promise of one. */
export function startWith(r: Reply | Promise<Reply>, later: (reply: Reply) => void, failed: (err: unknown) => void): Reply | null {
  if (!(r instanceof Promise)) return r;
  r.then(later, failed);
  return null;
}
