// `imdb client` and `imdb admin`: one command per RPC, human output by default, exactly one JSON object with --json; exit 0 ok, 1 server/connection error, 2 usage.
import { Command } from "commander";
import { status as grpcStatus } from "@grpc/grpc-js";
import type { ExpireCondition, HashFieldView, MemberView, NodeStatus, TypedView, ValueKind, ValueView } from "../transport/api.ts";
import { ImdbClient, newRequestId, retryableCodes, RpcError, splitHostPort, type SetTtlInput } from "../transport/client.ts";
import { batchOpsMax, requestIdBytesMax, scanLimitMax } from "../transport/api.ts";
import type { BatchItem } from "../transport/batch-codec.ts";

/** The types `keys --type` takes. */
const valueKinds = ["gcounter", "pncounter", "lww", "mv", "set", "hash"] as const;

/** A gRPC status name (as a Batch item carries it) back to its code. */
function grpcStatusOf(name: string): number {
  const code = (grpcStatus as unknown as Record<string, number>)[name];
  return typeof code === "number" ? code : grpcStatus.UNKNOWN;
}
import { loadTlsDir, loadTlsFiles, type TlsMaterial } from "../transport/tls.ts";
import { int64Max } from "../transport/proto.ts";
import { readBounded, readValue, valueSource, ValueInputError } from "./value-input.ts";
import { batchLinesMax, isWrite, opBytes, parseLine, type BatchLine } from "./batch-lines.ts";
import { BackupUsageError, checkBackupTarget, writeBackup } from "./backup.ts";
import { DurationError, parseDurationMs } from "./duration.ts";
import { renderFailure, rpcFailure, usageFailure, type FailureContext } from "./errors.ts";

export const clientServerDefault = "127.0.0.1:7100";
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Connection flags shared by `client`, `admin` and `bench load`. */
export interface ConnFlags {
  server?: string;
  tlsDir?: string;
  name?: string;
  ca?: string;
  cert?: string;
  key?: string;
  insecure?: boolean;
  json?: boolean;
  timeout?: string;
}

/** A usage error: printed as "error: ..." and exit 2. */
class UsageError extends Error {}

export function addConnectionOptions(cmd: Command, defaultName: string): Command {
  return cmd
    .option("--server <host:port>", `node client address (env IMDB_SERVER, default ${clientServerDefault})`)
    .option("--tls-dir <dir>", "folder with ca.crt and NAME.crt/.key (env IMDB_TLS_DIR)")
    .option("--name <name>", `certificate name inside --tls-dir`, defaultName)
    .option("--ca <file>", "CA certificate (instead of --tls-dir)")
    .option("--cert <file>", "client certificate (instead of --tls-dir)")
    .option("--key <file>", "client key (instead of --tls-dir)")
    .option("--insecure", "plaintext, for a node started with --insecure")
    .option("--timeout <ms>", "deadline per call in milliseconds", "10000");
}

export async function connectFromFlags(f: ConnFlags): Promise<ImdbClient> {
  const server = f.server ?? process.env.IMDB_SERVER ?? clientServerDefault;
  try {
    splitHostPort(server);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const deadlineMs = Number(f.timeout ?? "10000");
  if (!Number.isInteger(deadlineMs) || deadlineMs < 1) throw new UsageError("--timeout must be a positive integer (ms)");
  let tls: TlsMaterial | null = null;
  const files = [f.ca, f.cert, f.key].filter((x) => x !== undefined).length;
  try {
    if (f.insecure === true) {
      if (f.tlsDir !== undefined || files > 0) throw new UsageError("--insecure cannot be combined with --tls-dir/--ca/--cert/--key");
    } else if (files > 0) {
      if (files !== 3 || f.ca === undefined || f.cert === undefined || f.key === undefined) throw new UsageError("--ca, --cert and --key go together");
      tls = await loadTlsFiles(f.ca, f.cert, f.key);
    } else {
      const dir = f.tlsDir ?? process.env.IMDB_TLS_DIR;
      if (dir === undefined || dir === "") throw new UsageError("give --tls-dir (or IMDB_TLS_DIR, or --ca/--cert/--key), or --insecure");
      tls = await loadTlsDir(dir, f.name ?? "client");
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
  try {
    return new ImdbClient({ server, tls, deadlineMs });
  } catch (err) {
    // grpc-js refuses unreadable PEM (say, a CA file that is not a certificate) right here.
    throw new UsageError(`cannot use the TLS files: ${(err as Error).message}`);
  }
}

/** JSON with bigints written as exact integer literals (JSON numbers of any size are valid). */
export function jsonLine(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? `\u0000big:${x}` : x)).replace(/"\\u0000big:(-?\d+)"/g, "$1");
}

/** A value prints as UTF-8 text when it is valid UTF-8, else as base64 (marked). */
function text(v: Uint8Array): string | null {
  try {
    return utf8.decode(v);
  } catch {
    return null;
  }
}

const b64 = (v: Uint8Array): string => Buffer.from(v).toString("base64");

/**
 * --all adds `conflicts`: the key's states of other types (a type conflict), [] when none. A key
 * with a deadline adds ttl_ms (ms left) and expires_at_unix_ms, on the node's clock.
 */
function getJson(key: string, v: ValueView, all: boolean): Record<string, unknown> {
  const main = { ...typedJson(key, v), ...deadlineJson(v) };
  if (!all) return main;
  return { ...main, conflicts: (v.conflicts ?? []).map((c) => { const { key: _k, ...rest } = typedJson(key, c); return rest; }) };
}

function deadlineJson(v: ValueView): Record<string, number> {
  const out: Record<string, number> = {};
  if (v.ttlMs !== undefined) out.ttl_ms = v.ttlMs;
  if (v.expiresAtMs !== undefined) out.expires_at_unix_ms = v.expiresAtMs;
  return out;
}

/** Ttl's answer as a person reads it (the bare integer with --json). */
function ttlHuman(ttlMs: number): string {
  return ttlMs === -2 ? "-2 (no such key)" : ttlMs === -1 ? "-1 (no deadline)" : String(ttlMs);
}

/** The one of --nx/--xx/--gt/--lt given (undefined: none); two of them are a usage error. */
function expireConditionOf(opts: Record<string, unknown>): ExpireCondition | undefined {
  const given = (["nx", "xx", "gt", "lt"] as const).filter((c) => opts[c] === true);
  if (given.length > 1) throw new UsageError(`--${given.join(", --")} exclude each other: give at most one condition`);
  return given[0];
}

/**
 * expire's deadline: a TTL argument (a duration; <= 0 expires the key now) or --at UNIX_MS,
 * exactly one of them.
 */
function expireWhenOf(ttl: string | undefined, at: unknown): { ttlMs: number } | { atMs: number } {
  if (ttl !== undefined && at !== undefined) throw new UsageError("give a TTL or --at UNIX_MS, not both");
  if (at !== undefined) {
    const raw = String(at);
    if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) throw new UsageError(`--at must be an integer (Unix ms), got "${raw}"`);
    return { atMs: Number(raw) };
  }
  if (ttl === undefined) throw new UsageError("give the TTL (like 10s) or --at UNIX_MS");
  return { ttlMs: durationArg(ttl, "TTL", true) };
}

/** A duration argument; a DurationError becomes a usage error. */
function durationArg(raw: string, what: string, allowNegative: boolean): number {
  try {
    return parseDurationMs(raw, what, allowNegative);
  } catch (err) {
    if (err instanceof DurationError) throw new UsageError(err.message);
    throw err;
  }
}

/** set's --ttl / --keep-ttl (exclusive); neither: the write clears any deadline, as Redis's SET. */
function setTtlOf(opts: Record<string, unknown>): SetTtlInput {
  const keep = opts.keepTtl === true;
  if (opts.ttl !== undefined && keep) throw new UsageError("--ttl and --keep-ttl exclude each other");
  if (keep) return { keepTtl: true };
  if (opts.ttl === undefined) return {};
  const ttlMs = durationArg(String(opts.ttl), "--ttl", false);
  if (ttlMs < 1) throw new UsageError("--ttl must be at least 1ms (to remove a key now, use del)");
  return { ttlMs };
}

function typedJson(key: string, v: TypedView): Record<string, unknown> {
  switch (v.type) {
    case "gcounter":
    case "pncounter":
      return { key, type: v.type, value: v.value };
    case "lww": {
      const t = text(v.value);
      return t === null ? { key, type: v.type, value: b64(v.value), encoding: "base64" } : { key, type: v.type, value: t };
    }
    case "mv": {
      const texts = v.values.map(text);
      const allText = texts.every((t) => t !== null);
      return {
        key, type: v.type, values: allText ? texts : v.values.map(b64), ...(allText ? {} : { encoding: "base64" }), context: b64(v.context),
      };
    }
    case "set":
      return { key, type: v.type, ...membersJson(v.members) };
    case "hash":
      return { key, type: v.type, ...hashFieldsJson(v.fields) };
  }
}

/** Members as UTF-8 strings when every one is valid UTF-8, else all as base64 with encoding "base64". */
function membersJson(members: readonly Uint8Array[]): { members: string[]; encoding?: "base64" } {
  const texts = members.map(text);
  return texts.every((t) => t !== null) ? { members: texts as string[] } : { members: members.map(b64), encoding: "base64" };
}

/** One member per line (UTF-8, else base64:...); "(empty set)" for none. */
function membersHuman(members: readonly Uint8Array[]): string {
  return members.length === 0 ? "(empty set)" : members.map((m) => text(m) ?? `base64:${b64(m)}`).join("\n");
}

/** Fields and values as UTF-8 text, or all as base64 (marked) when any is not UTF-8. */
function hashFieldsJson(fields: readonly HashFieldView[]): Record<string, unknown> {
  const allText = fields.every((f) => text(f.field) !== null && text(f.value) !== null);
  const show = allText ? (b: Uint8Array): string => text(b) ?? "" : b64;
  return { fields: fields.map((f) => ({ field: show(f.field), value: show(f.value) })), ...(allText ? {} : { encoding: "base64" }) };
}

/** Values (null: absent) as UTF-8 text, or all as base64 (marked) when any is not UTF-8. */
function hashValuesJson(values: readonly (Uint8Array | null)[]): Record<string, unknown> {
  const allText = values.every((v) => v === null || text(v) !== null);
  const show = allText ? (b: Uint8Array): string => text(b) ?? "" : b64;
  return { values: values.map((v) => (v === null ? null : show(v))), ...(allText ? {} : { encoding: "base64" }) };
}

/** A hash field or value as `get` prints a register: UTF-8 text, else base64:... ; null prints (nil), as redis-cli. */
function hashHuman(v: Uint8Array | null): string {
  return v === null ? "(nil)" : text(v) ?? `base64:${b64(v)}`;
}

/** The value as `get` prints it; --all adds one "conflict TYPE: ..." line per line of each other-typed state. */
function getHuman(v: ValueView, all: boolean): string {
  const main = typedHuman(v);
  if (!all) return main;
  const sides = (v.conflicts ?? []).flatMap((c) => typedHuman(c).split("\n").map((line) => `conflict ${c.type}: ${line}`));
  return [main, ...sides].join("\n");
}

function typedHuman(v: TypedView): string {
  const show = (b: Uint8Array): string => text(b) ?? `base64:${b64(b)}`;
  switch (v.type) {
    case "gcounter":
    case "pncounter":
      return String(v.value);
    case "lww":
      return show(v.value);
    case "mv":
      return [...v.values.map(show), `context: ${b64(v.context)}`].join("\n");
    case "set":
      return membersHuman(v.members);
    case "hash":
      return v.fields.map((f) => `${show(f.field)}\t${show(f.value)}`).join("\n");
  }
}

function statusJson(s: NodeStatus): Record<string, unknown> {
  return { ...s };
}

function statusHuman(s: NodeStatus): string {
  return [
    `node:        ${s.nodeId}`, `version:     ${s.version}`, `uptime:      ${(s.uptimeMs / 1000).toFixed(1)} s`, `keys:        ${s.keys}`,
    `durability:  ${s.durability}`, `members:     ${s.membersAlive} alive / ${s.membersTotal}`, `wal lsn:     ${s.walLsn}`, `accel:       ${s.accel}`,
  ].join("\n");
}

function clusterMembersHuman(ms: MemberView[]): string {
  // Only when the cluster is partitioned (replicationFactor > 0): PARTITIONS, the replicas each
  // member owns; HINTS (deltas held for it) and MOVING (state bytes shipped with it in the last
  // minute, both ways), what is on its way between the node asked and the member.
  const partitioned = ms.some((m) => m.partitions !== undefined);
  const head = ["ID", "ADDRESS", "STATUS", "INCARNATION", ...(partitioned ? ["PARTITIONS", "HINTS", "MOVING"] : [])];
  const rows = [head, ...ms.map((m) => [
    m.id, m.address, m.status, String(m.incarnation),
    ...(partitioned ? [String(m.partitions ?? 0), String(m.hintsPending ?? 0), String(m.bytesMoving ?? 0)] : []),
  ])];
  const last = head.length - 1;
  const widths = head.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i < last ? c.padEnd(widths[i] ?? 0) : c)).join("  ")).join("\n");
}

function parseAmount(raw: string | undefined): bigint {
  if (raw === undefined) return 1n;
  // The server judges the range (N >= 1 -> INVALID_ARGUMENT); here only "is it an int64 literal".
  if (!/^-?\d+$/.test(raw)) throw new UsageError(`N must be an integer, got "${raw}"`);
  const n = BigInt(raw);
  if (n > int64Max || n < -int64Max - 1n) throw new UsageError(`N must fit in a signed 64-bit integer`);
  return n;
}

function parseBase64(raw: string, what: string): Uint8Array {
  if (!base64Pattern.test(raw)) throw new UsageError(`${what} must be base64 (as printed by get)`);
  return new Uint8Array(Buffer.from(raw, "base64"));
}

/** A command's call: returns its output, or null when it printed as it went (batch). */
type Run = (c: ImdbClient, json: boolean) => Promise<string | null>;

/** hset's pairs (FIELD VALUE ...), checked before anything is sent. */
function hsetRun(
  key: string, args: string[], opts: Record<string, unknown>, bytesArg: (raw: string | undefined, b64In: boolean, what: string) => Uint8Array,
): Run {
  if (args.length % 2 !== 0) throw new UsageError("hset takes FIELD VALUE pairs: the last FIELD has no VALUE");
  const b64In = opts.base64 === true;
  const fields: HashFieldView[] = [];
  for (let k = 0; k < args.length; k += 2) fields.push({ field: bytesArg(args[k], b64In, "FIELD"), value: bytesArg(args[k + 1], b64In, "VALUE") });
  const id = requestIdFrom(opts);
  return async (c, json) => {
    const added = await writeWithRetries(() => c.hset(key, fields, id));
    return json ? jsonLine({ key, added }) : String(added);
  };
}

/** Attempts of one write command: the first and its retries, all with the same request id. */
export const writeAttemptsMax = 4;
/** Pause before retry n (ms): a restarting node gets a moment. */
const retryPausesMs = [200, 500, 1000] as const;

/** The request id of a write command: --request-id TEXT (1..requestIdBytesMax UTF-8 bytes), else a fresh random one. */
function requestIdFrom(opts: Record<string, unknown>): Uint8Array {
  const raw = opts.requestId;
  if (raw === undefined) return newRequestId();
  const id = new TextEncoder().encode(String(raw));
  if (id.length < 1 || id.length > requestIdBytesMax) throw new UsageError(`--request-id must be 1..${requestIdBytesMax} bytes`);
  return id;
}

/**
 * Runs a write, retrying UNAVAILABLE and DEADLINE_EXCEEDED (the write may or may not have happened)
 * with the same request id: the node applies it once and answers a retry with the first result.
 */
async function writeWithRetries<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (!(err instanceof RpcError) || !retryableCodes.has(err.code) || attempt >= writeAttemptsMax) throw err;
      console.error(`retrying (${err.codeName}) with the same request id, attempt ${attempt + 1} of ${writeAttemptsMax}`);
      await Bun.sleep(retryPausesMs[attempt - 1] ?? 1000);
    }
  }
}

/** The key a command names (its first argument when that is called "key"), for error messages. */
function keyArgOf(cmd: Command, first: unknown): string | undefined {
  return cmd.registeredArguments[0]?.name() === "key" && first !== undefined ? String(first) : undefined;
}

/**
 * Runs one command: prints its output, maps failures to exit codes (1 server/connection, 2 usage).
 * A failure is one JSON object on stderr with --json, else "error: ..." naming the key, and a hint.
 */
async function execute(cmd: Command, prepare: () => Run | Promise<Run>, key?: string): Promise<void> {
  const flags = cmd.optsWithGlobals<ConnFlags>();
  const json = flags.json === true;
  let client: ImdbClient | null = null;
  try {
    const run = await prepare();
    client = await connectFromFlags(flags);
    const out = await run(client, json);
    if (out !== null) console.log(out);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ValueInputError) {
      console.error(renderFailure(usageFailure(err.message, key), json));
      process.exitCode = 2;
      return;
    }
    if (err instanceof RpcError) {
      console.error(renderFailure(rpcFailure(err, key, failureContext(flags)), json));
      process.exitCode = 1;
      return;
    }
    throw err;
  } finally {
    client?.close();
  }
}

/** The address and flags a hint talks about. */
function failureContext(f: ConnFlags): FailureContext {
  const timeoutMs = Number(f.timeout ?? "10000");
  return { server: f.server ?? process.env.IMDB_SERVER ?? clientServerDefault, timeoutMs: Number.isFinite(timeoutMs) ? timeoutMs : 10000, insecure: f.insecure === true };
}

function action(run: (args: string[], opts: Record<string, unknown>) => Run | Promise<Run>) {
  return async function (this: Command, ...params: unknown[]): Promise<void> {
    const args = params.slice(0, this.registeredArguments.length).map((a) => (a === undefined ? undefined : String(a))) as string[];
    const opts = this.opts();
    await execute(this, () => run(args, opts), keyArgOf(this, args[0]));
  };
}

/** As action(), for `COMMAND <key> <members...>`: commander hands the variadic members over as an array. */
function membersAction(run: (key: string, members: string[], opts: Record<string, unknown>) => Run) {
  return async function (this: Command, key: unknown, members: unknown, ...rest: unknown[]): Promise<void> {
    void rest;
    const list = Array.isArray(members) ? members.map(String) : [];
    const opts = this.opts();
    await execute(this, () => run(String(key), list, opts), String(key));
  };
}

/** Members from the command line: UTF-8 text, or base64 with --base64. */
function parseMembers(raw: readonly string[], base64: boolean): Uint8Array[] {
  return raw.map((m, i) => (base64 ? parseBase64(m, `member ${i + 1}`) : new TextEncoder().encode(m)));
}

/** action() for a command whose last argument is variadic: `rest` holds its values. */
function actionRest(run: (args: string[], rest: string[], opts: Record<string, unknown>) => Run | Promise<Run>) {
  return async function (this: Command, ...params: unknown[]): Promise<void> {
    const n = this.registeredArguments.length;
    const args = params.slice(0, n - 1).map((a) => (a === undefined ? undefined : String(a))) as string[];
    const last = params[n - 1];
    const rest = Array.isArray(last) ? last.map(String) : [];
    const opts = this.opts();
    await execute(this, () => run(args, rest, opts), keyArgOf(this, args[0]));
  };
}

/** Keys per Batch of mget: few enough that the answer stays far below the response limit for 1 MiB values. */
const mgetChunkKeys = 50;
/** Request bytes `batch` puts in one Batch (the server takes up to clientMessageBytesMax). */
const batchChunkBytesMax = 3 * 1024 * 1024;
/** Largest ops input `batch` reads from stdin. */
const batchInputBytesMax = 256 * 1024 * 1024;

/** A multi-line result on one line, as a JSON array of its lines (batch and mget print one line per op). */
function oneLine(out: string): string {
  return out.includes("\n") ? JSON.stringify(out.split("\n")) : out;
}

/** Sends the ops in chunks (count and bytes bounded), printing one line per op as each chunk returns. */
async function runBatchLines(c: ImdbClient, ops: readonly BatchLine[], json: boolean): Promise<null> {
  let failed = 0;
  for (let at = 0; at < ops.length;) {
    let end = at;
    let bytes = 0;
    while (end < ops.length && end - at < batchOpsMax) {
      const b = opBytes((ops[end] as BatchLine).op);
      if (end > at && bytes + b > batchChunkBytesMax) break;
      bytes += b;
      end++;
    }
    const chunk = ops.slice(at, end);
    // Only a chunk of writes may carry a request id, which makes retrying it safe; one with reads is sent once.
    const chunkOps = chunk.map((l) => l.op);
    const id = newRequestId();
    const items = chunk.every(isWrite) ? await writeWithRetries(() => c.batch(chunkOps, id)) : await c.batch(chunkOps);
    const out: string[] = [];
    items.forEach((item, i) => {
      const l = chunk[i] as BatchLine;
      if (!item.ok) failed++;
      out.push(batchResultLine(l, item, json));
    });
    console.log(out.join("\n"));
    at = end;
  }
  if (failed > 0) process.exitCode = 1;
  return null;
}

/** One op's result as its single command prints it (--json: the same object, plus "line"). */
function batchResultLine(l: BatchLine, item: BatchItem, json: boolean): string {
  const { key } = l;
  if (!item.ok) {
    return json ? jsonLine({ line: l.line, error: { code: item.code, message: item.message, key } }) : `error: ${item.code}: ${item.message} (key ${JSON.stringify(key)}, line ${l.line})`;
  }
  const r = item.result;
  const out = (obj: Record<string, unknown>, human: string): string => (json ? jsonLine({ line: l.line, ...obj }) : oneLine(human));
  switch (r.kind) {
    case "counter":
      return out(l.command === "hincrby" ? { key, field: l.arg, value: r.value } : { key, value: r.value }, String(r.value));
    case "value":
      return out(getJson(key, r.value, false), getHuman(r.value, false));
    case "written":
      return out(r.context === null ? { key, ok: true } : { key, ok: true, context: b64(r.context) }, r.context === null ? "OK" : `OK\ncontext: ${b64(r.context)}`);
    case "deleted":
      return out({ deleted: r.deleted ? 1 : 0 }, r.deleted ? "1" : "0");
    case "count":
      return out({ key, [l.command === "sadd" ? "added" : l.command === "srem" ? "removed" : "count"]: r.value }, String(r.value));
    case "members":
      return out({ key, ...membersJson(r.members) }, membersHuman(r.members));
    case "isMember":
      return out({ key, member: l.arg, isMember: r.value }, String(r.value));
    case "hashCount":
      return out({ key, [l.command === "hset" ? "added" : l.command === "hdel" ? "removed" : "length"]: r.count }, String(r.count));
    case "hashValue": {
      const shown = hashValuesJson([r.value]);
      return out({ key, field: l.arg, value: (shown.values as unknown[])[0], ...(shown.encoding === undefined ? {} : { encoding: shown.encoding }) }, hashHuman(r.value));
    }
    case "hashValues":
      return out({ key, ...hashValuesJson(r.values) }, r.values.map(hashHuman).join("\n"));
    case "hashFields":
      return out({ key, ...hashFieldsJson(r.fields) }, r.fields.map((f) => `${hashHuman(f.field)}\t${hashHuman(f.value)}`).join("\n"));
    case "changed":
      return out({ key, [l.command === "persist" ? "cleared" : "set"]: r.value }, r.value ? "1" : "0");
    case "ttl":
      return out({ key, ttl_ms: r.ttlMs }, ttlHuman(r.ttlMs));
  }
}

const requestIdFlag = "--request-id <id>";
const requestIdHelp = "the write's request id (default: a fresh random one); retries of UNAVAILABLE/DEADLINE_EXCEEDED reuse it, and the node applies the write once";

/**
 * Commander's own usage errors (a missing argument, an unknown option) for `client` and `admin`
 * subcommands: one line and a pointer to --help instead of the whole usage text, and with --json
 * the same JSON object as every other failure. Subcommands inherit both settings.
 */
function quietUsageErrors(cmd: Command): Command {
  const json = process.argv.includes("--json");
  return cmd
    .showHelpAfterError(json ? false : "(add --help for usage)")
    .configureOutput({
      outputError: (str, write) => write(json ? `${renderFailure(usageFailure(str.replace(/^error: /, "").trim(), undefined), true)}\n` : str),
    });
}

export function register(program: Command): void {
  const client = addConnectionOptions(quietUsageErrors(program.command("client")), "client")
    .description("talk to a node: incr, decr, get, mget, set, del, expire, persist, ttl, keys, batch, sadd, srem, smembers, sismember, scard, hset, hget, hmget, hdel, hgetall, hlen, hincrby, status, members")
    .option("--json", "print exactly one JSON object");

  client
    .command("incr <key> [n]")
    .description("add N (default 1) to a counter; a new key becomes a PN-Counter unless --type gcounter")
    .option("--type <type>", "counter type: pncounter | gcounter (a new key gets it; an existing key must have it)")
    .option(requestIdFlag, requestIdHelp)
    .action(action(([key, n], opts) => {
      const type = opts.type;
      if (type !== undefined && type !== "pncounter" && type !== "gcounter") throw new UsageError(`--type must be pncounter or gcounter`);
      const amount = parseAmount(n);
      const id = requestIdFrom(opts);
      return async (c, json) => {
        const value = await writeWithRetries(() => c.increment(key ?? "", amount, type, id));
        return json ? jsonLine({ key, value }) : String(value);
      };
    }));

  client
    .command("decr <key> [n]")
    .description("subtract N (default 1) from a PN-Counter")
    .option(requestIdFlag, requestIdHelp)
    .action(action(([key, n], opts) => {
      const amount = parseAmount(n);
      const id = requestIdFrom(opts);
      return async (c, json) => {
        const value = await writeWithRetries(() => c.decrement(key ?? "", amount, id));
        return json ? jsonLine({ key, value }) : String(value);
      };
    }));

  client
    .command("get <key>")
    .description("read a key: counters print their value, registers their bytes (UTF-8, else base64:...), MV adds its context, sets their members")
    .option("--all", "also print the key's states of other types, kept after a type conflict (docs/api.md)")
    .action(action(([key], opts) => async (c, json) => {
      const all = opts.all === true;
      const v = await c.get(key ?? "");
      if (!all && v.conflicts !== undefined && v.conflicts.length > 0) {
        console.error(`note: the key also holds ${v.conflicts.map((s) => `a ${s.type}`).join(", ")} from a type conflict; see get --all`);
      }
      return json ? jsonLine(getJson(key ?? "", v, all)) : getHuman(v, all);
    }));

  client
    .command("set <key> [value]")
    .description("write a register: LWW by default, --mv for a multi-value register. VALUE - reads the value from stdin; --file F from a file (values over 128 KiB cannot go on a command line)")
    .option("--mv", "write an MV register")
    .option("--context <ctx>", "MV: the context printed by get (base64)")
    .option("--base64", "VALUE (or the stdin/file text) is base64-encoded bytes")
    .option("--file <file>", "read the value from FILE (raw bytes, at most 1 MiB)")
    .option("--ttl <duration>", "give the key a deadline this long from now, like 10s, 500ms, 2h, 1h30m (without --ttl or --keep-ttl a set clears any deadline, as Redis's SET)")
    .option("--keep-ttl", "keep the key's current deadline (Redis's SET KEEPTTL)")
    .option(requestIdFlag, requestIdHelp)
    .action(action(async ([key, raw], opts) => {
      const ttl = setTtlOf(opts);
      const value = await readValue(valueSource(raw, opts.file, "VALUE"), opts.base64 === true, "VALUE");
      const mv = opts.mv === true;
      if (!mv && opts.context !== undefined) throw new UsageError("--context needs --mv");
      const ctx = typeof opts.context === "string" ? parseBase64(opts.context, "--context") : null;
      const id = requestIdFrom(opts);
      return async (c, json) => {
        if (!mv) {
          await writeWithRetries(() => c.set(key ?? "", value, id, ttl));
          return json ? jsonLine({ key, ok: true }) : "OK";
        }
        const context = await writeWithRetries(() => c.setMv(key ?? "", value, ctx, id, ttl));
        return json ? jsonLine({ key, ok: true, context: b64(context) }) : `OK\ncontext: ${b64(context)}`;
      };
    }));

  // ---- expiry (docs/api.md, "Expiry") ----
  client
    .command("expire <key> [ttl]")
    .description("give a key a deadline TTL from now (like 10s, 500ms, 2h; 0s, or a negative TTL after --, expires it now) or at --at UNIX_MS; prints 1 if set, 0 if the key is missing or the condition failed")
    .option("--at <unix-ms>", "the deadline as Unix ms (instead of a TTL)")
    .option("--nx", "only if the key has no deadline")
    .option("--xx", "only if the key has a deadline")
    .option("--gt", "only if the new deadline is later than the current one (none counts as latest)")
    .option("--lt", "only if the new deadline is earlier than the current one (none counts as latest)")
    .option(requestIdFlag, requestIdHelp)
    .allowExcessArguments(false)
    .action(action(([key, ttl], opts) => {
      const when = expireWhenOf(ttl, opts.at);
      const cond = expireConditionOf(opts);
      const id = requestIdFrom(opts);
      return async (c, json) => {
        const set = await writeWithRetries(() => c.expire(key ?? "", cond === undefined ? when : { ...when, cond }, id));
        return json ? jsonLine({ key, set }) : set ? "1" : "0";
      };
    }));

  client
    .command("persist <key>")
    .description("remove a key's deadline; prints 1 if it had one, else 0")
    .option(requestIdFlag, requestIdHelp)
    .action(action(([key], opts) => {
      const id = requestIdFrom(opts);
      return async (c, json) => {
        const cleared = await writeWithRetries(() => c.persist(key ?? "", id));
        return json ? jsonLine({ key, cleared }) : cleared ? "1" : "0";
      };
    }));

  client
    .command("ttl <key>")
    .description("ms left until a key's deadline; -2 (no such key), -1 (no deadline), as Redis's PTTL")
    .action(action(([key]) => async (c, json) => {
      const ttlMs = await c.ttl(key ?? "");
      return json ? jsonLine({ key, ttl_ms: ttlMs }) : ttlHuman(ttlMs);
    }));

  // ---- hashes: FIELD and VALUE are UTF-8 text, or base64 with --base64 ----
  const bytesArg = (raw: string | undefined, b64In: boolean, what: string): Uint8Array =>
    b64In ? parseBase64(raw ?? "", what) : new TextEncoder().encode(raw ?? "");
  const base64Flag = "--base64";
  const base64Help = "FIELD and VALUE arguments are base64-encoded bytes";

  client
    .command("hset <key> <field> <value> [more...]")
    .description("set hash fields: hset KEY FIELD VALUE [FIELD VALUE ...]; prints how many fields were new. A VALUE of - reads it from stdin")
    .option(base64Flag, base64Help)
    .option(requestIdFlag, requestIdHelp)
    .action(actionRest(async ([key, field, value], rest, opts) => {
      const args = [field ?? "", value ?? "", ...rest];
      // A VALUE of "-" (at most one) reads that value from stdin: values over 128 KiB cannot go on a command line.
      const dashes = args.filter((a, i) => i % 2 === 1 && a === "-").length;
      if (dashes > 1) throw new UsageError("only one VALUE may be - (stdin)");
      const stdinValue = dashes === 1 ? await readValue({ kind: "stdin" }, opts.base64 === true, "VALUE") : null;
      return hsetRun(key ?? "", args, opts, (raw, b64In, what) => (what === "VALUE" && raw === "-" && stdinValue !== null ? stdinValue : bytesArg(raw, b64In, what)));
    }));

  client
    .command("hget <key> <field>")
    .description("a hash field's value; (nil) when the field or key is absent")
    .option(base64Flag, "FIELD is base64-encoded bytes")
    .action(action(([key, field], opts) => {
      const f = bytesArg(field, opts.base64 === true, "FIELD");
      return async (c, json) => {
        const v = await c.hget(key ?? "", f);
        const shown = hashValuesJson([v]);
        return json ? jsonLine({ key, field, value: (shown.values as unknown[])[0], ...(shown.encoding === undefined ? {} : { encoding: shown.encoding }) }) : hashHuman(v);
      };
    }));

  client
    .command("hmget <key> <fields...>")
    .description("several hash fields' values, one line each; (nil) for an absent field")
    .option(base64Flag, "FIELDs are base64-encoded bytes")
    .action(actionRest(([key], fields, opts) => {
      const fs = fields.map((x) => bytesArg(x, opts.base64 === true, "FIELD"));
      return async (c, json) => {
        const vs = await c.hmget(key ?? "", fs);
        return json ? jsonLine({ key, ...hashValuesJson(vs) }) : vs.map(hashHuman).join("\n");
      };
    }));

  client
    .command("hdel <key> <fields...>")
    .description("remove hash fields (as this node sees them); prints how many were present")
    .option(base64Flag, "FIELDs are base64-encoded bytes")
    .option(requestIdFlag, requestIdHelp)
    .action(actionRest(([key], fields, opts) => {
      const fs = fields.map((x) => bytesArg(x, opts.base64 === true, "FIELD"));
      const id = requestIdFrom(opts);
      return async (c, json) => {
        const removed = await writeWithRetries(() => c.hdel(key ?? "", fs, id));
        return json ? jsonLine({ key, removed }) : String(removed);
      };
    }));

  client
    .command("hgetall <key>")
    .description("every field of a hash and its value, one \"FIELD<TAB>VALUE\" line each (bytewise by field)")
    .action(action(([key]) => async (c, json) => {
      const fields = await c.hgetall(key ?? "");
      return json ? jsonLine({ key, ...hashFieldsJson(fields) }) : fields.map((f) => `${hashHuman(f.field)}\t${hashHuman(f.value)}`).join("\n");
    }));

  client
    .command("hlen <key>")
    .description("how many fields a hash has")
    .action(action(([key]) => async (c, json) => {
      const length = await c.hlen(key ?? "");
      return json ? jsonLine({ key, length }) : String(length);
    }));

  client
    .command("hincrby <key> <field> <n>")
    .description("add N (any int64; write a negative N after --) to a hash field's counter; prints the new value")
    .option(base64Flag, "FIELD is base64-encoded bytes")
    .option(requestIdFlag, requestIdHelp)
    .action(action(([key, field, n], opts) => {
      const f = bytesArg(field, opts.base64 === true, "FIELD");
      const amount = parseAmount(n);
      const id = requestIdFrom(opts);
      return async (c, json) => {
        const value = await writeWithRetries(() => c.hincrby(key ?? "", f, amount, id));
        return json ? jsonLine({ key, field, value }) : String(value);
      };
    }));

  client
    .command("sadd <key> <members...>")
    .description("add members to a set (a new key becomes one); prints how many were not in it")
    .option("--base64", "members are base64-encoded bytes")
    .option(requestIdFlag, requestIdHelp)
    .action(membersAction((key, raw, opts) => {
      const members = parseMembers(raw, opts.base64 === true);
      const id = requestIdFrom(opts);
      return async (c, json) => {
        const added = await writeWithRetries(() => c.sadd(key, members, id));
        return json ? jsonLine({ key, added }) : String(added);
      };
    }));

  client
    .command("del <keys...>")
    .description("delete keys of any type; prints how many held something. Observed-remove: a write this node had not yet seen survives (docs/api.md)")
    .option(requestIdFlag, `${requestIdHelp} (one id covers all the keys; at most ${batchOpsMax} keys with --request-id)`)
    .action(async function (this: Command, keys: string[]) {
      const opts = this.opts();
      await execute(this, () => {
        if (opts.requestId !== undefined && keys.length > batchOpsMax) throw new UsageError(`--request-id covers at most ${batchOpsMax} keys`);
        const given = opts.requestId === undefined ? null : requestIdFrom(opts);
        return async (c, json) => {
          let deleted = 0;
          // One Batch (one request id, applied once however often it is retried) per batchOpsMax keys.
          for (let at = 0; at < keys.length; at += batchOpsMax) {
            const chunk = keys.slice(at, at + batchOpsMax);
            const id = given ?? newRequestId();
            const items = await writeWithRetries(() => c.batch(chunk.map((key) => ({ kind: "delete" as const, key })), id));
            for (let i = 0; i < items.length; i++) {
              const item = items[i] as BatchItem;
              if (!item.ok) throw new RpcError(grpcStatusOf(item.code), `key "${chunk[i]}": ${item.message}`);
              if (item.result.kind === "deleted" && item.result.deleted) deleted++;
            }
          }
          return json ? jsonLine({ deleted }) : String(deleted);
        };
      });
    });

  client
    .command("keys")
    .description("list present keys (all of them, a page at a time through Scan); a key present throughout is listed once")
    .option("--prefix <prefix>", "only keys starting with this")
    .option("--local", "only the keys this node holds (a partitioned cluster: its own partitions; otherwise the same as without)")
    .option("--type <type>", "only keys of this type: gcounter | pncounter | lww | mv | set")
    .action(action((_args, opts) => {
      const type = opts.type as string | undefined;
      if (type !== undefined && !(valueKinds as readonly string[]).includes(type)) throw new UsageError(`--type must be one of ${valueKinds.join(", ")}`);
      const prefix = typeof opts.prefix === "string" ? opts.prefix : undefined;
      return async (c, json) => {
        const keys: string[] = [];
        let cursor = 0;
        do {
          const page = await c.scan({ prefix, type: type as ValueKind | undefined, cursor, limit: scanLimitMax, local: opts.local === true });
          keys.push(...page.keys);
          cursor = page.cursor;
        } while (cursor !== 0);
        return json ? jsonLine({ keys }) : keys.join("\n");
      };
    }));

  client
    .command("srem <key> <members...>")
    .description("remove members from a set (what this node has seen of them: a concurrent add survives); prints how many were in it")
    .option("--base64", "members are base64-encoded bytes")
    .option(requestIdFlag, requestIdHelp)
    .action(membersAction((key, raw, opts) => {
      const members = parseMembers(raw, opts.base64 === true);
      const id = requestIdFrom(opts);
      return async (c, json) => {
        const removed = await writeWithRetries(() => c.srem(key, members, id));
        return json ? jsonLine({ key, removed }) : String(removed);
      };
    }));

  client
    .command("smembers <key>")
    .description("a set's members, one per line, sorted bytewise (UTF-8, else base64:...); a missing key is the empty set")
    .action(action(([key]) => async (c, json) => {
      const members = await c.smembers(key ?? "");
      return json ? jsonLine({ key, ...membersJson(members) }) : membersHuman(members);
    }));

  client
    .command("sismember <key> <member>")
    .description("is MEMBER in the set? prints true or false")
    .option("--base64", "MEMBER is base64-encoded bytes")
    .action(action(([key, raw], opts) => {
      const [member] = parseMembers([raw ?? ""], opts.base64 === true) as [Uint8Array];
      return async (c, json) => {
        const isMember = await c.sismember(key ?? "", member);
        return json ? jsonLine({ key, member: raw, isMember }) : String(isMember);
      };
    }));

  client
    .command("scard <key>")
    .description("how many members a set has (0 for a missing key)")
    .action(action(([key]) => async (c, json) => {
      const count = await c.scard(key ?? "");
      return json ? jsonLine({ key, count }) : String(count);
    }));

  client
    .command("mget <keys...>")
    .description("read several keys, one line each (as get prints them; (nil) for a missing key; a multi-line value as a JSON array), through Batch")
    .action(async function (this: Command, keys: string[]) {
      await execute(this, () => async (c, json) => {
        const shown: string[] = [];
        const values: unknown[] = [];
        for (let at = 0; at < keys.length; at += mgetChunkKeys) {
          const chunk = keys.slice(at, at + mgetChunkKeys);
          const items = await c.batch(chunk.map((key) => ({ kind: "get" as const, key })));
          items.forEach((item, i) => {
            const key = chunk[i] ?? "";
            if (!item.ok && item.code === "NOT_FOUND") {
              shown.push("(nil)");
              values.push({ key, value: null });
            } else if (!item.ok) {
              throw new RpcError(grpcStatusOf(item.code), `key "${key}": ${item.message}`);
            } else if (item.result.kind === "value") {
              shown.push(oneLine(getHuman(item.result.value, false)));
              values.push(getJson(key, item.result.value, false));
            }
          });
        }
        return json ? jsonLine({ values }) : shown.join("\n");
      });
    });

  client
    .command("batch")
    .description("run the ops on stdin, one per line (same words and flags as the commands: incr, decr, get, set, del, expire, persist, ttl, sadd, srem, smembers, sismember, scard, hset, hget, hmget, hdel, hgetall, hlen, hincrby; # comments), through Batch in chunks; prints one result line per op")
    .action(async function (this: Command) {
      await execute(this, async () => {
        const text = new TextDecoder().decode(await readBounded(Bun.stdin.stream(), batchInputBytesMax, "the ops on stdin"));
        const lines = text.split("\n");
        if (lines.length > batchLinesMax) throw new UsageError(`at most ${batchLinesMax} lines`);
        const ops: BatchLine[] = [];
        const bad: string[] = [];
        const json = this.optsWithGlobals<ConnFlags>().json === true;
        lines.forEach((t, i) => {
          const p = parseLine(t, i + 1);
          if (p.kind === "op") ops.push(p.op);
          else if (p.kind === "error") bad.push(json ? JSON.stringify({ error: { code: "INVALID_ARGUMENT", message: p.message, line: p.line } }) : `error: line ${p.line}: ${p.message}`);
        });
        // Bad input changes nothing: every line is checked before the first op is sent.
        if (bad.length > 0) {
          console.error(bad.join("\n"));
          throw new UsageError(`${bad.length} malformed line(s); nothing was sent`);
        }
        return (c, jsonOut) => runBatchLines(c, ops, jsonOut);
      });
    });

  client
    .command("status")
    .description("the node's id, version, keys, durability, members, accel")
    .action(action(() => async (c, json) => {
      const s = await c.status();
      return json ? jsonLine(statusJson(s)) : statusHuman(s);
    }));

  client
    .command("members")
    .description("cluster membership as this node sees it")
    .action(action(() => async (c, json) => {
      const ms = await c.members();
      return json ? jsonLine({ members: ms }) : clusterMembersHuman(ms);
    }));
}

/** `imdb admin snapshot | backup | leave | stats | member remove ID`: same connection flags, certificate name "admin" by default. */
export function registerAdmin(program: Command): void {
  const admin = addConnectionOptions(quietUsageErrors(program.command("admin")), "admin")
    .description("operator actions (needs an admin certificate: imdb certs init --admins NAME)")
    .option("--json", "print exactly one JSON object");
  admin
    .command("snapshot")
    .description("write a snapshot now")
    .action(action(() => async (c, json) => {
      const s = await c.snapshot();
      return json ? jsonLine(s) : `snapshot ${s.path}: lsn ${s.lsn}, ${s.keys} keys, ${s.bytes} bytes, ${s.durationMs} ms`;
    }));
  admin
    .command("leave")
    .description("leave the cluster gracefully")
    .action(action(() => async (c, json) => {
      const r = await c.leave();
      if (json) return jsonLine({ ok: true, heardBy: r.heardBy, peers: r.peers });
      if (r.heardBy !== null) return `OK: left; ${r.heardBy} holds the departure`;
      if (r.peers === 0) return "OK: left (no other member to tell)";
      // Left all the same (its keys were handed off, it stopped): exit 0, but say what to do.
      process.stderr.write(
        "warning: no peer was seen holding this node's departure: the others may see it as dead and place\n" +
          "keys over it until it is reaped; once `imdb client members` on another node shows it dead, run\n" +
          "`imdb admin member remove ID` against that node\n",
      );
      return "OK: left, unconfirmed";
    }));
  admin
    .command("member")
    .description("cluster members")
    .command("remove")
    .description("forget a dead member now (not deadReapAfterMs after it died) and tell the others it left")
    .argument("<id>", "node id of a dead member (imdb client members)")
    .action(action(([id]) => async (c, json) => {
      if (id === undefined) throw new UsageError("the member's node id is required");
      await c.removeMember(id);
      return json ? jsonLine({ removed: id }) : `removed ${id}`;
    }));
  admin
    .command("backup")
    .description("stream a consistent backup of the node (a snapshot and the WAL after it, with a SHA-256) into FILE; restore with imdb node --restore FILE")
    .requiredOption("--out <file>", "where to write the backup (written as FILE.tmp, renamed when complete and checked)")
    .option("--force", "replace FILE if it exists")
    .action(action(async (_args, opts) => {
      const out = String(opts.out);
      await checkBackupTarget(out, opts.force === true).catch((err: unknown) => {
        throw err instanceof BackupUsageError ? new UsageError(err.message) : err;
      });
      return async (c, json) => {
        const w = await writeBackup(c, out).catch((err: unknown) => {
          throw err instanceof BackupUsageError ? new UsageError(err.message) : err;
        });
        return json ? jsonLine(w) : `backup ${w.path}: ${w.bytes} bytes, up to LSN ${w.lsn}, sha256 ${w.sha256}`;
      };
    }));
  admin
    .command("stats")
    .description("internal counters")
    .action(action(() => async (c, json) => {
      const stats = await c.stats();
      return json ? jsonLine({ stats: Object.fromEntries(stats.map((s) => [s.name, s.value])) }) : stats.map((s) => `${s.name}: ${s.value}`).join("\n");
    }));
}
