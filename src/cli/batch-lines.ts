// `imdb client batch`: turns lines like "incr hits 5" or 'set "a key" "two words"' into Batch ops,
// with the same words and flags as the single commands, so a script of CLI calls becomes one file.
import type { ExpireCondition, HashFieldView } from "../transport/api.ts";
import type { RequestOp, SetTtlInput } from "../transport/client.ts";
import { int64Max } from "../transport/proto.ts";
import { DurationError, parseDurationMs } from "./duration.ts";

/** Longest ops line (bytes of text): a 1 MiB value in base64 with room. */
export const batchLineCharsMax = 2 * 1024 * 1024;
/** Most ops one `batch` run reads (they are all parsed before any is sent). */
export const batchLinesMax = 1_000_000;

/** One op of the input and how its result prints. */
export interface BatchLine {
  /** 1-based line number in the input. */
  line: number;
  command: BatchCommand;
  key: string;
  op: RequestOp;
  /** The text of a field/member argument, for --json output (hget, hincrby, sismember). */
  arg?: string;
}

export const batchCommands = [
  "incr", "decr", "get", "set", "del", "sadd", "srem", "smembers", "sismember", "scard", "hset", "hget", "hmget", "hdel", "hgetall", "hlen", "hincrby",
  "expire", "persist", "ttl",
] as const;
export type BatchCommand = (typeof batchCommands)[number];

/** Writes (a chunk of only these may carry a request id and be retried safely). */
const writeCommands: ReadonlySet<BatchCommand> = new Set(["incr", "decr", "set", "del", "sadd", "srem", "hset", "hdel", "hincrby", "expire", "persist"]);
export const isWrite = (l: BatchLine): boolean => writeCommands.has(l.command);

export type Parsed = { kind: "op"; op: BatchLine } | { kind: "skip" } | { kind: "error"; line: number; message: string };

/** Splits a line into words: blanks separate, '...' is literal, "..." and a bare backslash escape the next character. */
export function splitWords(text: string): string[] | string {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === " " || c === "\t" || c === "\r") {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) return "unterminated ' quote";
      cur += text.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === "\\" && j + 1 < text.length) {
          j++;
          cur += unescape(text[j] as string);
        } else {
          cur += text[j];
        }
      }
      if (j >= text.length) return 'unterminated " quote';
      i = j;
      inWord = true;
    } else if (c === "\\") {
      if (i + 1 >= text.length) return "a \\ at the end of the line";
      cur += text[++i];
      inWord = true;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

function unescape(c: string): string {
  return c === "n" ? "\n" : c === "t" ? "\t" : c === "r" ? "\r" : c === "0" ? "\0" : c;
}

class LineError extends Error {}

const utf8 = new TextEncoder();
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Flags a line may carry, per command; everything else is an error naming the flag. */
const flagsOf: Record<BatchCommand, readonly string[]> = {
  incr: ["--type"], decr: [], get: [], set: ["--base64", "--mv", "--context", "--ttl", "--keep-ttl"], del: [], sadd: ["--base64"], srem: ["--base64"],
  smembers: [], sismember: ["--base64"], scard: [], hset: ["--base64"], hget: ["--base64"], hmget: ["--base64"], hdel: ["--base64"], hgetall: [],
  hlen: [], hincrby: ["--base64"], expire: ["--at", "--nx", "--xx", "--gt", "--lt"], persist: [], ttl: [],
};
const flagsWithValue = new Set(["--type", "--context", "--ttl", "--at"]);

/** Parses one input line (1-based number n). Blank lines and lines starting with # are skipped. */
export function parseLine(text: string, n: number): Parsed {
  if (text.length > batchLineCharsMax) return { kind: "error", line: n, message: `line longer than ${batchLineCharsMax} characters` };
  const trimmed = text.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return { kind: "skip" };
  const words = splitWords(trimmed);
  if (typeof words === "string") return { kind: "error", line: n, message: words };
  try {
    return { kind: "op", op: { line: n, ...opOf(words) } };
  } catch (err) {
    if (err instanceof LineError) return { kind: "error", line: n, message: err.message };
    throw err;
  }
}

function opOf(words: string[]): Omit<BatchLine, "line"> {
  const [name, ...rest] = words;
  if (!(batchCommands as readonly string[]).includes(name ?? "")) {
    throw new LineError(`unknown command "${name}" (batch takes ${batchCommands.join(", ")})`);
  }
  const command = name as BatchCommand;
  const flags = new Map<string, string | true>();
  const args: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i] as string;
    if (w === "--") {
      args.push(...rest.slice(i + 1));
      break;
    }
    if (w.startsWith("--")) {
      if (!flagsOf[command].includes(w)) throw new LineError(`${command} does not take ${w}${w === "--request-id" ? " in a batch (each chunk gets one)" : ""}`);
      if (flagsWithValue.has(w)) {
        const v = rest[++i];
        if (v === undefined) throw new LineError(`${w} needs a value`);
        flags.set(w, v);
      } else {
        flags.set(w, true);
      }
    } else {
      args.push(w);
    }
  }
  const b64 = flags.get("--base64") === true;
  const bytes = (raw: string, what: string): Uint8Array => {
    if (!b64) return utf8.encode(raw);
    if (!base64Pattern.test(raw)) throw new LineError(`${what} must be base64 (--base64)`);
    return new Uint8Array(Buffer.from(raw, "base64"));
  };
  const need = (min: number, max: number, usage: string): void => {
    if (args.length < min || args.length > max) throw new LineError(`usage: ${command} ${usage}`);
  };
  const key = args[0] ?? "";
  switch (command) {
    case "incr": {
      need(1, 2, "KEY [N] [--type pncounter|gcounter]");
      const type = flags.get("--type");
      if (type !== undefined && type !== "pncounter" && type !== "gcounter") throw new LineError("--type must be pncounter or gcounter");
      const amount = amountOf(args[1]);
      return { command, key, op: type === undefined ? { kind: "increment", key, amount } : { kind: "increment", key, amount, counter: type } };
    }
    case "decr":
      need(1, 2, "KEY [N]");
      return { command, key, op: { kind: "decrement", key, amount: amountOf(args[1]) } };
    case "get":
      need(1, 1, "KEY");
      return { command, key, op: { kind: "get", key } };
    case "set": {
      need(2, 2, "KEY VALUE [--base64] [--mv [--context C]] [--ttl DURATION | --keep-ttl]");
      if (args[1] === "-") throw new LineError("a batch line cannot read its value from stdin (stdin holds the ops): give it inline, with --base64 for bytes");
      const value = bytes(args[1] as string, "VALUE");
      const ctx = flags.get("--context");
      const ttl = setTtlOf(flags);
      if (flags.get("--mv") !== true) {
        if (ctx !== undefined) throw new LineError("--context needs --mv");
        return { command, key, op: { kind: "set", key, value, ...ttl } };
      }
      if (typeof ctx === "string" && !base64Pattern.test(ctx)) throw new LineError("--context must be base64 (as printed by get)");
      return { command, key, op: { kind: "setMv", key, value, context: typeof ctx === "string" ? new Uint8Array(Buffer.from(ctx, "base64")) : null, ...ttl } };
    }
    case "expire": {
      need(1, 2, "KEY TTL | KEY --at UNIX_MS [--nx|--xx|--gt|--lt]");
      const cond = conditionOf(flags);
      const when = expireWhen(args[1], flags.get("--at"));
      return { command, key, op: cond === undefined ? { kind: "expire", key, ...when } : { kind: "expire", key, ...when, cond } };
    }
    case "persist":
    case "ttl":
      need(1, 1, "KEY");
      return { command, key, op: { kind: command, key } };
    case "del":
      need(1, 1, "KEY (one key per line)");
      return { command, key, op: { kind: "delete", key } };
    case "sadd":
    case "srem": {
      need(2, Infinity, "KEY MEMBER...");
      const members = args.slice(1).map((m, i) => bytes(m, `member ${i + 1}`));
      return { command, key, op: { kind: command, key, members } };
    }
    case "smembers":
    case "scard":
    case "hgetall":
    case "hlen":
      need(1, 1, "KEY");
      return { command, key, op: { kind: command, key } };
    case "sismember":
      need(2, 2, "KEY MEMBER");
      return { command, key, arg: args[1], op: { kind: "sismember", key, member: bytes(args[1] as string, "MEMBER") } };
    case "hset": {
      need(3, Infinity, "KEY FIELD VALUE [FIELD VALUE ...]");
      if (args.length % 2 === 0) throw new LineError("hset takes FIELD VALUE pairs: the last FIELD has no VALUE");
      const fields: HashFieldView[] = [];
      for (let k = 1; k < args.length; k += 2) fields.push({ field: bytes(args[k] as string, "FIELD"), value: bytes(args[k + 1] as string, "VALUE") });
      return { command, key, op: { kind: "hset", key, fields } };
    }
    case "hget":
      need(2, 2, "KEY FIELD");
      return { command, key, arg: args[1], op: { kind: "hget", key, field: bytes(args[1] as string, "FIELD") } };
    case "hmget":
    case "hdel": {
      need(2, Infinity, "KEY FIELD...");
      const fields = args.slice(1).map((f) => bytes(f, "FIELD"));
      return { command, key, op: { kind: command, key, fields } };
    }
    case "hincrby":
      need(3, 3, "KEY FIELD N");
      return { command, key, arg: args[1], op: { kind: "hincrby", key, field: bytes(args[1] as string, "FIELD"), amount: amountOf(args[2]) } };
  }
}

function duration(raw: string, what: string, allowNegative: boolean): number {
  try {
    return parseDurationMs(raw, what, allowNegative);
  } catch (err) {
    if (err instanceof DurationError) throw new LineError(err.message);
    throw err;
  }
}

/** --ttl DURATION (at least 1ms) or --keep-ttl, not both; neither clears the deadline (as Redis's SET). */
function setTtlOf(flags: ReadonlyMap<string, string | true>): SetTtlInput {
  const ttl = flags.get("--ttl");
  const keep = flags.get("--keep-ttl") === true;
  if (ttl !== undefined && keep) throw new LineError("--ttl and --keep-ttl exclude each other");
  if (keep) return { keepTtl: true };
  if (typeof ttl !== "string") return {};
  const ttlMs = duration(ttl, "--ttl", false);
  if (ttlMs < 1) throw new LineError("--ttl must be at least 1ms (to remove a key now, use del)");
  return { ttlMs };
}

function conditionOf(flags: ReadonlyMap<string, string | true>): ExpireCondition | undefined {
  const given = (["nx", "xx", "gt", "lt"] as const).filter((c) => flags.get(`--${c}`) === true);
  if (given.length > 1) throw new LineError(`--${given.join(", --")} exclude each other: give at most one condition`);
  return given[0];
}

/** expire's TTL argument (a duration; <= 0 expires the key now) or --at UNIX_MS, exactly one. */
function expireWhen(ttl: string | undefined, at: string | true | undefined): { ttlMs: number } | { atMs: number } {
  if (ttl !== undefined && at !== undefined) throw new LineError("give a TTL or --at UNIX_MS, not both");
  if (typeof at === "string") {
    if (!/^-?\d+$/.test(at) || !Number.isSafeInteger(Number(at))) throw new LineError(`--at must be an integer (Unix ms), got "${at}"`);
    return { atMs: Number(at) };
  }
  if (ttl === undefined) throw new LineError("give the TTL (like 10s) or --at UNIX_MS");
  return { ttlMs: duration(ttl, "TTL", true) };
}

function amountOf(raw: string | undefined): bigint {
  if (raw === undefined) return 1n;
  if (!/^-?\d+$/.test(raw)) throw new LineError(`N must be an integer, got "${raw}"`);
  const n = BigInt(raw);
  if (n > int64Max || n < -int64Max - 1n) throw new LineError("N must fit in a signed 64-bit integer");
  return n;
}

/** Rough request bytes of an op (its key and payloads), to keep a chunk under the request limit. */
export function opBytes(op: RequestOp): number {
  const k = typeof op.key === "string" ? op.key.length * 3 : op.key.byteLength;
  switch (op.kind) {
    case "set":
    case "setMv":
      return k + op.value.byteLength + (op.kind === "setMv" ? op.context?.byteLength ?? 0 : 0) + 16;
    case "sadd":
    case "srem":
      return k + op.members.reduce((n, m) => n + m.byteLength + 4, 0) + 16;
    case "hset":
      return k + op.fields.reduce((n, f) => n + f.field.byteLength + f.value.byteLength + 8, 0) + 16;
    case "hmget":
    case "hdel":
      return k + op.fields.reduce((n, f) => n + f.byteLength + 4, 0) + 16;
    case "hget":
    case "hincrby":
      return k + op.field.byteLength + 32;
    case "sismember":
      return k + op.member.byteLength + 16;
    case "increment":
    case "decrement":
    case "get":
    case "delete":
    case "expire":
    case "persist":
    case "ttl":
    case "smembers":
    case "scard":
    case "hgetall":
    case "hlen":
      return k + 32;
  }
}
