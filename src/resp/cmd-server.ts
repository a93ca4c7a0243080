// Server commands: INFO (Redis's sections plus a CRDT section for the cluster), TIME, FLUSHDB and
// FLUSHALL (an observed remove of every key), CONFIG for the settings that map onto the node's,
// and the FUNCTION/SCRIPT FLUSH that client test harnesses send.
import { batchOpsMax, scanLimitMax, type ClientOp } from "../transport/api.ts";
import { applyMany, check, nodeInfo, scanKeys, text, word, type Ctx } from "./context.ts";
import { helpSubcommand } from "./cmd-command.ts";
import { redisCompatVersion } from "./cmd-connection.ts";
import { globMatch } from "./glob.ts";
import { array, bulk, errNotCrdt, errSyntax, ok, RespError } from "./replies.ts";
import { command, type CommandSpec } from "./table.ts";
import type { Reply, RespInfo } from "./types.ts";

function humanBytes(n: number): string {
  const units = ["B", "K", "M", "G", "T"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n}B` : `${v.toFixed(2)}${units[u]}`;
}

/** Redis's appendfsync for a durability mode: sync fsyncs every write, interval on a timer, none never. */
export function appendfsyncOf(durability: string): string {
  if (durability === "sync") return "always";
  if (durability.startsWith("interval")) return "everysec";
  return "no";
}

/** INFO field names are `[a-z0-9_]`: a stat name from the node is folded into that. */
function fieldName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/[^a-z0-9_]/g, "_");
}

/** Values must stay on one line and not look like another field. */
function fieldValue(value: string): string {
  return value.replace(/[\r\n]/g, " ");
}

type Section = (ctx: Ctx, info: RespInfo) => string[];

const sections: readonly (readonly [name: string, title: string, lines: Section])[] = [
  ["server", "Server", (_ctx, info) => {
    const nowUs = wallClockUs();
    return [
      `redis_version:${redisCompatVersion}`, `imdb_version:${info.version}`, "redis_mode:standalone", "arch_bits:64", `process_id:${process.pid}`,
      `run_id:${fieldValue(info.nodeId)}`, `tcp_port:${info.tcpPort}`, `server_time_usec:${nowUs}`, `uptime_in_seconds:${Math.floor(info.uptimeSeconds)}`,
      `uptime_in_days:${Math.floor(info.uptimeSeconds / 86400)}`,
    ];
  }],
  ["clients", "Clients", (ctx, info) => [
    `connected_clients:${ctx.backend.sessions().length}`,
    ...(info.maxClients === undefined ? [] : [`maxclients:${info.maxClients}`]),
    "blocked_clients:0", "tracking_clients:0",
  ]],
  ["memory", "Memory", (_ctx, info) => [
    `used_memory:${info.usedMemoryBytes}`, `used_memory_human:${humanBytes(info.usedMemoryBytes)}`, "maxmemory:0", "maxmemory_human:0B", "maxmemory_policy:noeviction",
  ]],
  ["persistence", "Persistence", (_ctx, info) => [
    // A node serves only once recovered, so it is never loading (ioredis's ready check reads this).
    "loading:0", "async_loading:0", "rdb_bgsave_in_progress:0", "aof_enabled:1", "aof_rewrite_in_progress:0", `imdb_durability:${info.durability}`,
  ]],
  ["stats", "Stats", (ctx, info) => [
    `total_commands_processed:${ctx.shared.stats.commandsProcessed}`, `total_error_replies:${ctx.shared.stats.errorReplies}`, `expired_keys:${info.expiredTotal ?? 0}`, "evicted_keys:0",
  ]],
  ["replication", "Replication", () => ["role:master", "connected_slaves:0"]],
  ["keyspace", "Keyspace", (_ctx, info) => (info.keys > 0 ? [`db0:keys=${info.keys},expires=${info.keysWithDeadline ?? 0},avg_ttl=0`] : [])],
  ["crdt", "CRDT", (_ctx, info) => [
    `crdt_node_id:${fieldValue(info.nodeId)}`, `crdt_durability:${info.durability}`, `crdt_members:${info.peers.length + 1}`,
    ...info.peers.map((p, i) => `crdt_peer_${i}:id=${fieldValue(p.id)},address=${fieldValue(p.address)},status=${p.status},lag_deltas=${p.lagDeltas},conflicts=${p.conflicts}`),
    ...info.extra.map((e) => `crdt_${fieldName(e.name)}:${fieldValue(e.value)}`),
  ]],
];

function infoCommand(ctx: Ctx, args: readonly Uint8Array[]): Reply {
  const asked = args.slice(1).map((a) => text(a).toLowerCase());
  const everything = asked.length === 0 || asked.some((a) => a === "all" || a === "everything" || a === "default");
  const info = nodeInfo(ctx);
  const parts: string[] = [];
  for (const [name, title, lines] of sections) {
    if (!everything && !asked.includes(name)) continue;
    parts.push(`# ${title}\r\n${lines(ctx, info).map((l) => `${l}\r\n`).join("")}`);
  }
  return { kind: "verbatim", format: "txt", text: parts.join("\r\n") };
}

/**
 * Wall-clock microseconds, as Redis's gettimeofday. Millisecond resolution: JavaScript has no finer
 * wall clock, and `performance.timeOrigin + performance.now()` is the monotonic clock since the
 * process started, which drifts from the wall clock (a fresh-clone CI saw it more than 5 s off
 * after a long run) - TIME must agree with the machine's date, not with the process's age.
 */
function wallClockUs(): bigint {
  return BigInt(Date.now()) * 1000n;
}

function time(): Reply {
  const us = wallClockUs();
  return array([bulk(String(us / 1_000_000n)), bulk(String(us % 1_000_000n))]);
}

/** FLUSHALL / FLUSHDB / FUNCTION FLUSH / SCRIPT FLUSH take ASYNC or SYNC, nothing else. */
function flushMode(args: readonly Uint8Array[], from: number): void {
  if (args.length > from + 1) throw new RespError(errSyntax);
  if (args.length === from + 1) {
    const w = word(args[from]);
    if (w !== "ASYNC" && w !== "SYNC") throw new RespError(errSyntax);
  }
}

/**
 * Deletes every key this node lists, page by page: an observed remove of each, so a write this
 * node had not seen (another node's, or one made during the flush) survives, as after DEL.
 */
async function flush(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  flushMode(args, 1);
  let cursor = 0;
  do {
    const page = await scanKeys(ctx, { prefix: "", type: null, cursor, limit: scanLimitMax });
    for (let i = 0; i < page.keys.length; i += batchOpsMax) {
      const keys = page.keys.slice(i, i + batchOpsMax);
      const outs = await ctx.shared.locks.guard(keys, () => applyMany(ctx, keys.map((key): ClientOp => ({ kind: "delete", key }))));
      for (const o of outs) check(o);
    }
    cursor = page.cursor;
  } while (cursor !== 0);
  return ok;
}

/** A setting CONFIG GET shows; `set` present when CONFIG SET may change it at run time. */
interface ConfigParam {
  name: string;
  get(ctx: Ctx, info: RespInfo): string | null;
  set?(ctx: Ctx, value: string): string | null;
}

const configParams: readonly ConfigParam[] = [
  { name: "port", get: (_c, i) => String(i.tcpPort) },
  { name: "databases", get: () => "1" },
  {
    name: "maxclients",
    get: (_c, i) => (i.maxClients === undefined ? null : String(i.maxClients)),
    set: (ctx, value) => {
      if (!/^[0-9]{1,10}$/.test(value)) return "argument couldn't be parsed into an integer";
      const n = Number(value);
      if (n < 1) return "argument must be between 1 and 4294967295 inclusive";
      const apply = ctx.backend.setMaxClients;
      if (apply === undefined) return "can't set immutable config";
      return apply.call(ctx.backend, n);
    },
  },
  // Every write goes to the WAL (appendonly yes); durability decides when it is fsynced.
  { name: "appendonly", get: () => "yes" },
  { name: "appendfsync", get: (_c, i) => appendfsyncOf(i.durability) },
  // No RDB schedule: snapshots follow the node's own triggers (snapshotIntervalMs, snapshotWalBytes).
  { name: "save", get: () => "" },
  { name: "maxmemory", get: () => "0" },
  { name: "maxmemory-policy", get: () => "noeviction" },
];

function configGet(ctx: Ctx, args: readonly Uint8Array[]): Reply {
  const info = nodeInfo(ctx);
  const entries: [Reply, Reply][] = [];
  for (const p of configParams) {
    const name = new TextEncoder().encode(p.name);
    if (!args.slice(2).some((pattern) => globMatch(pattern, name, true))) continue;
    const v = p.get(ctx, info);
    if (v !== null) entries.push([bulk(p.name), bulk(v)]);
  }
  return { kind: "map", entries };
}

function configSet(ctx: Ctx, args: readonly Uint8Array[]): Reply {
  if (args.length % 2 !== 0) throw new RespError(errSyntax);
  const changes: { p: ConfigParam; value: string }[] = [];
  for (let i = 2; i < args.length; i += 2) {
    const name = text(args[i] as Uint8Array);
    const p = configParams.find((c) => c.name === name.toLowerCase());
    if (p === undefined) throw new RespError(`ERR Unknown option or number of arguments for CONFIG SET - '${name}'`);
    if (p.set === undefined) throw new RespError(`ERR CONFIG SET failed (possibly related to argument '${name}') - can't set immutable config`);
    changes.push({ p, value: text(args[i + 1] as Uint8Array) });
  }
  for (const { p, value } of changes) {
    const refused = p.set?.(ctx, value) ?? null;
    if (refused !== null) throw new RespError(`ERR CONFIG SET failed (possibly related to argument '${p.name}') - ${refused}`);
  }
  return ok;
}

function configResetstat(ctx: Ctx): Reply {
  ctx.shared.stats.commandsProcessed = 0;
  ctx.shared.stats.errorReplies = 0;
  return ok;
}

const scriptingWhy = "there is no scripting (a script's atomic read-modify-write has no meaning on replicas that accept writes independently)";

/** A scripting subcommand other than FLUSH: it exists in Redis, so it says why it cannot run here. */
function noScripting(container: string, name: string, arity: number): CommandSpec {
  return command({
    name, arity, group: "scripting", unlisted: true, summary: "Not supported: no scripting",
    run: () => { throw new RespError(errNotCrdt(`${container} ${name.toUpperCase()}`, scriptingWhy)); },
  });
}

const flushNothing = (from: number) => (_ctx: Ctx, args: readonly Uint8Array[]): Reply => (flushMode(args, from), ok);

export const serverCommands: readonly CommandSpec[] = [
  command({ name: "info", arity: -1, flags: ["loading", "stale"], group: "server", complexity: "O(1)", summary: "Get information and statistics about the server (and the CRDT cluster: INFO crdt)", run: infoCommand }),
  command({ name: "time", arity: 1, flags: ["loading", "stale", "fast"], group: "server", since: "2.6.0", summary: "Return the current server time", run: time }),
  command({ name: "flushdb", arity: -1, flags: ["write"], adminOnly: true, group: "server", complexity: "O(N) where N is the total number of keys", summary: "Remove all keys (an observed remove of every key this replica lists)", run: flush }),
  command({ name: "flushall", arity: -1, flags: ["write"], adminOnly: true, group: "server", complexity: "O(N) where N is the total number of keys", summary: "Remove all keys (an observed remove of every key this replica lists)", run: flush }),
  command({
    name: "config", arity: -2, group: "server", since: "2.0.0", complexity: "Depends on subcommand.", summary: "A container for server configuration commands",
    subcommands: [
      command({ name: "get", arity: -3, flags: ["loading", "stale"], group: "server", since: "2.0.0", complexity: "O(N) when N is the number of configuration parameters provided", summary: "Get the values of configuration parameters", run: configGet }),
      command({ name: "set", arity: -4, flags: ["admin", "loading", "stale"], adminOnly: true, group: "server", since: "2.0.0", complexity: "O(N) when N is the number of configuration parameters provided", summary: "Set configuration parameters to the given values (maxclients)", run: configSet }),
      command({ name: "resetstat", arity: 2, flags: ["admin", "loading", "stale"], adminOnly: true, group: "server", since: "2.0.0", summary: "Reset the stats returned by INFO", run: configResetstat }),
      helpSubcommand(),
    ],
  }),
  command({
    name: "function", arity: -2, group: "scripting", since: "7.0.0", complexity: "Depends on subcommand.", summary: "A container for function commands",
    subcommands: [
      command({ name: "flush", arity: -2, flags: ["write", "noscript"], group: "scripting", since: "7.0.0", summary: "Deleting all functions (there are none: answers OK)", run: flushNothing(2) }),
      ...["load", "delete", "list", "dump", "restore", "stats", "kill"].map((n) => noScripting("FUNCTION", n, -2)),
      helpSubcommand(),
    ],
  }),
  command({
    name: "script", arity: -2, group: "scripting", since: "2.6.0", complexity: "Depends on subcommand.", summary: "A container for Lua scripts management commands",
    subcommands: [
      command({ name: "flush", arity: -2, flags: ["noscript"], group: "scripting", since: "2.6.0", summary: "Remove all the scripts from the script cache (there are none: answers OK)", run: flushNothing(2) }),
      ...["load", "exists", "kill", "debug"].map((n) => noScripting("SCRIPT", n, -2)),
      helpSubcommand(),
    ],
  }),
];

/** Commands Redis has whose promise cannot hold on replicas that accept writes independently. */
const crdtWhy: readonly (readonly [names: readonly string[], why: string])[] = [
  [["multi", "exec", "discard", "watch", "unwatch"], "transactions need one serial order of writes, and replicas here accept writes independently (each command is applied alone; see docs/api.md)"],
  [["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"], scriptingWhy],
  [["subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe", "publish", "spublish", "pubsub"], "there is no pub/sub (messages are not replicated state; a message published on one node would not reach another's subscribers)"],
  [["wait", "waitaof"], "replicas acknowledge nothing synchronously: a write is durable on the node that took it and reaches the others asynchronously"],
];

export const unsupportedCommands: readonly CommandSpec[] = crdtWhy.flatMap(([names, why]) => names.map((name) =>
  command({
    name, arity: -1, group: "server", unlisted: true, summary: `Not supported: ${why}`,
    run: () => { throw new RespError(errNotCrdt(name.toUpperCase(), why)); },
  })));

/** Every reason, for docs and tests. */
export const unsupportedReasons: readonly (readonly [names: readonly string[], why: string])[] = crdtWhy;

