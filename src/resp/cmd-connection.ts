// Connection commands: the handshakes Redis clients send before anything else (HELLO, AUTH,
// SELECT, CLIENT SETNAME/SETINFO, PING), answered as Redis 7 answers them.
import { int64Arg, text, tryInt64, word, type Ctx } from "./context.ts";
import {
  bulk, errArity, errBadClientName, errDbIndex, errNoProto, errSyntax, int, nullBulk, ok, RespError, simple,
} from "./replies.ts";
import { helpSubcommand } from "./cmd-command.ts";
import { command, type CommandSpec } from "./table.ts";
import type { Reply, RespSession } from "./types.ts";

/**
 * The Redis version whose commands and replies this front door follows (HELLO's `version`, INFO's
 * `redis_version`); INFO's `imdb_version` says which node this is. Clients gate features on it.
 */
export const redisCompatVersion = "7.0.0";

const wrongPass = "WRONGPASS invalid username-password pair or user is disabled.";

/**
 * Connections authenticate with client certificates, so there is no password: as Redis with none
 * configured, the `default` user takes any password and no other user exists. A client configured
 * with a password still connects; the certificate decides what it may do.
 */
function authenticate(user: Uint8Array): void {
  if (text(user) !== "default") throw new RespError(wrongPass);
}

function auth(_ctx: Ctx, args: readonly Uint8Array[]): Reply {
  if (args.length === 2) {
    throw new RespError("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
  }
  if (args.length > 3) throw new RespError(errSyntax);
  authenticate(args[1] as Uint8Array);
  return ok;
}

/** Redis's client names and library attributes: printable ASCII without spaces (! through ~). */
function printable(b: Uint8Array): boolean {
  return b.every((c) => c >= 0x21 && c <= 0x7e);
}

function setName(session: RespSession, name: Uint8Array): void {
  if (!printable(name)) throw new RespError(errBadClientName);
  session.name = name.length === 0 ? null : text(name);
}

function hello(ctx: Ctx, args: readonly Uint8Array[]): Reply {
  let protocol = ctx.session.protocol;
  let next = 1;
  if (args.length >= 2) {
    const v = tryInt64(args[next++]);
    if (v === null) throw new RespError("ERR Protocol version is not an integer or out of range");
    if (v !== 2n && v !== 3n) throw new RespError(errNoProto);
    protocol = v === 2n ? 2 : 3;
  }
  let name: Uint8Array | null = null;
  let user: Uint8Array | null = null;
  for (let i = next; i < args.length; i++) {
    const more = args.length - 1 - i;
    const w = word(args[i]);
    if (w === "AUTH" && more >= 2) {
      user = args[i + 1] as Uint8Array;
      i += 2;
    } else if (w === "SETNAME" && more >= 1) {
      name = args[++i] as Uint8Array;
    } else {
      throw new RespError(`ERR Syntax error in HELLO option '${text(args[i] as Uint8Array)}'`);
    }
  }
  // As Redis: every option is read first, then the credentials, then the name.
  if (user !== null) authenticate(user);
  if (name !== null) setName(ctx.session, name);
  ctx.session.protocol = protocol;
  return {
    kind: "map",
    entries: [
      [bulk("server"), bulk("redis")],
      [bulk("version"), bulk(redisCompatVersion)],
      [bulk("proto"), int(protocol)],
      [bulk("id"), int(ctx.session.id)],
      [bulk("mode"), bulk("standalone")],
      [bulk("role"), bulk("master")],
      [bulk("modules"), { kind: "array", items: [] }],
    ],
  };
}

function ping(_ctx: Ctx, args: readonly Uint8Array[]): Reply {
  if (args.length > 2) throw new RespError(errArity("ping"));
  return args.length === 1 ? simple("PONG") : bulk(args[1] as Uint8Array);
}

function echo(_ctx: Ctx, args: readonly Uint8Array[]): Reply {
  return bulk(args[1] as Uint8Array);
}

function select(_ctx: Ctx, args: readonly Uint8Array[]): Reply {
  // One keyspace: database 0 (as a Redis cluster node).
  if (int64Arg(args[1]) !== 0n) throw new RespError(errDbIndex);
  return ok;
}

function quit(ctx: Ctx): Reply {
  ctx.session.closeAfterReply = true;
  return ok;
}

function reset(ctx: Ctx): Reply {
  // No transaction, subscription, tracking or database to leave: the protocol and name go back.
  ctx.session.protocol = 2;
  ctx.session.name = null;
  return simple("RESET");
}

/** One CLIENT LIST / CLIENT INFO line, with Redis's field names (the ones this node knows). */
export function clientLine(ctx: Ctx, s: RespSession, nowMs: number): string {
  const seen = ctx.shared.activity.get(s);
  const ageSeconds = Math.max(0, Math.floor((nowMs - s.createdAtMs) / 1000));
  const idleSeconds = seen === undefined ? ageSeconds : Math.max(0, Math.floor((nowMs - seen.lastAtMs) / 1000));
  return [
    `id=${s.id}`, `addr=${s.remote}`, `name=${s.name ?? ""}`, `age=${ageSeconds}`, `idle=${idleSeconds}`, "flags=N", "db=0", "sub=0", "psub=0", "ssub=0", "multi=-1",
    `cmd=${seen?.lastCommand ?? "NULL"}`, "user=default", "redir=-1", `resp=${s.protocol}`, `lib-name=${s.libName ?? ""}`, `lib-ver=${s.libVersion ?? ""}`,
  ].join(" ");
}

function clientList(ctx: Ctx, args: readonly Uint8Array[]): Reply {
  let sessions = [...ctx.backend.sessions()];
  for (let i = 2; i < args.length; i++) {
    const w = word(args[i]);
    if (w === "TYPE" && i + 1 < args.length) {
      const t = word(args[++i]);
      if (t !== "NORMAL" && t !== "MASTER" && t !== "REPLICA" && t !== "SLAVE" && t !== "PUBSUB") throw new RespError(`ERR Unknown client type '${text(args[i] as Uint8Array)}'`);
      // Every connection here is a normal client.
      if (t !== "NORMAL") sessions = [];
    } else if (w === "ID" && i + 1 < args.length) {
      const ids = new Set<number>();
      for (i++; i < args.length; i++) {
        const id = tryInt64(args[i]);
        if (id === null || id <= 0n) throw new RespError("ERR Invalid client ID");
        ids.add(Number(id));
      }
      sessions = sessions.filter((s) => ids.has(s.id));
    } else {
      throw new RespError(errSyntax);
    }
  }
  const now = Date.now();
  return { kind: "verbatim", format: "txt", text: sessions.map((s) => `${clientLine(ctx, s, now)}\n`).join("") };
}

function clientSetinfo(ctx: Ctx, args: readonly Uint8Array[]): Reply {
  const attr = text(args[2] as Uint8Array);
  const value = args[3] as Uint8Array;
  const w = attr.toUpperCase();
  if (w !== "LIB-NAME" && w !== "LIB-VER") throw new RespError(`ERR Unrecognized option '${attr}'`);
  if (!printable(value) && value.length > 0) throw new RespError(`ERR ${attr} cannot contain spaces, newlines or special characters.`);
  const v = value.length === 0 ? null : text(value);
  if (w === "LIB-NAME") ctx.session.libName = v;
  else ctx.session.libVersion = v;
  return ok;
}

const clientSubcommands: readonly CommandSpec[] = [
  command({ name: "setname", arity: 3, flags: ["noscript", "loading", "stale"], group: "connection", since: "2.6.9", summary: "Set the current connection name", run: (ctx, a) => (setName(ctx.session, a[2] as Uint8Array), ok) }),
  command({ name: "getname", arity: 2, flags: ["noscript", "loading", "stale"], group: "connection", since: "2.6.9", summary: "Get the current connection name", run: (ctx) => (ctx.session.name === null ? nullBulk : bulk(ctx.session.name)) }),
  command({ name: "id", arity: 2, flags: ["noscript", "loading", "stale"], group: "connection", since: "5.0.0", summary: "Returns the client ID for the current connection", run: (ctx) => int(ctx.session.id) }),
  command({ name: "info", arity: 2, flags: ["noscript", "loading", "stale"], group: "connection", since: "6.2.0", summary: "Returns information about the current client connection", run: (ctx) => ({ kind: "verbatim", format: "txt", text: `${clientLine(ctx, ctx.session, Date.now())}\n` }) }),
  command({ name: "list", arity: -2, flags: ["noscript", "loading", "stale"], group: "connection", since: "2.4.0", complexity: "O(N) where N is the number of client connections", summary: "Get the list of client connections", run: clientList }),
  command({ name: "setinfo", arity: 4, flags: ["noscript", "loading", "stale"], group: "connection", since: "7.2.0", summary: "Set client or connection specific info (LIB-NAME, LIB-VER)", run: clientSetinfo }),
  helpSubcommand(),
];

export const connectionCommands: readonly CommandSpec[] = [
  command({ name: "ping", arity: -1, flags: ["fast"], group: "connection", summary: "Ping the server", run: ping }),
  command({ name: "echo", arity: 2, flags: ["fast"], group: "connection", summary: "Echo the given string", run: echo }),
  command({ name: "hello", arity: -1, flags: ["noscript", "loading", "stale", "fast", "no_auth"], group: "connection", since: "6.0.0", summary: "Handshake with Redis (RESP2 or RESP3)", run: hello }),
  command({ name: "auth", arity: -2, flags: ["noscript", "loading", "stale", "fast", "no_auth"], group: "connection", summary: "Authenticate to the server (connections authenticate by certificate: the default user takes any password)", run: auth }),
  command({ name: "select", arity: 2, flags: ["loading", "stale", "fast"], group: "connection", summary: "Change the selected database for the current connection (only 0)", run: select }),
  command({ name: "quit", arity: -1, flags: ["noscript", "loading", "stale", "fast", "no_auth"], group: "connection", summary: "Close the connection", run: quit }),
  command({ name: "reset", arity: 1, flags: ["noscript", "loading", "stale", "fast", "no_auth"], group: "connection", since: "6.2.0", summary: "Reset the connection", run: reset }),
  command({ name: "client", arity: -2, group: "connection", since: "2.4.0", complexity: "Depends on subcommand.", summary: "A container for client connection commands", subcommands: clientSubcommands }),
];
