// Keyspace commands: DEL (an observed remove), EXISTS, TYPE, and KEYS/SCAN over the node's key
// listing with Redis's glob patterns (the expiry family is cmd-expiry.ts).
import { keyBytesMax, scanLimitMax, type ClientOp, type ScanPage, type ScanQuery, type ValueKind, type ValueView } from "../transport/api.ts";
import { applyMany, applyOne, check, keyArg, nodeStatus, scanKeys, text, word, type Ctx } from "./context.ts";
import { globLiteralPrefix, globMatch, globMatchesAll } from "./glob.ts";
import {
  array, bulk, errInvalidCursor, errNotInteger, errSyntax, int, opErrorText, RespError, simple,
} from "./replies.ts";
import { command, key1, type CommandSpec } from "./table.ts";
import type { Reply } from "./types.ts";

/** Most keys one KEYS reply holds: past it KEYS refuses (use SCAN) instead of building an unbounded reply. */
export const keysReplyMax = 1_000_000;
/** SCAN's page size when the client gives no COUNT (Redis's default). */
export const scanCountDefault = 10;

/** TYPE's answer for a key's CRDT type: registers and counters are Redis strings. */
export function redisType(t: ValueView["type"]): "string" | "set" | "hash" {
  switch (t) {
    case "lww":
    case "mv":
    case "gcounter":
    case "pncounter":
      return "string";
    case "set":
      return "set";
    case "hash":
      return "hash";
  }
}

async function del(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const keys = args.slice(1).map(keyArg);
  const outs = await ctx.shared.locks.guard(keys, () => applyMany(ctx, keys.map((key): ClientOp => ({ kind: "delete", key }))));
  let deleted = 0;
  for (const o of outs) {
    const r = check(o);
    if (r.kind === "deleted" && r.deleted) deleted++;
  }
  return int(deleted);
}

async function exists(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const outs = await applyMany(ctx, args.slice(1).map((k): ClientOp => ({ kind: "get", key: keyArg(k) })));
  let n = 0;
  for (const o of outs) {
    if (o.ok || o.error.code === "OUT_OF_RANGE") n++;
    else if (o.error.code !== "NOT_FOUND") throw new RespError(opErrorText(o.error));
  }
  return int(n);
}

async function type(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const o = await applyOne(ctx, { kind: "get", key: keyArg(args[1]) });
  if (!o.ok && o.error.code === "NOT_FOUND") return simple("none");
  // A counter merged outside int64 exists and is a counter.
  if (!o.ok && o.error.code === "OUT_OF_RANGE") return simple("string");
  const r = check(o);
  return simple(r.kind === "value" ? redisType(r.value.type) : "none");
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The scan prefix for a pattern: its literal start, cut to whole UTF-8 characters and to a key's length. */
export function scanPrefix(pattern: Uint8Array): string {
  let p = globLiteralPrefix(pattern).subarray(0, keyBytesMax);
  // A cut inside a character leaves at most 3 stray bytes; a prefix that is no UTF-8 at all
  // matches no key, and the glob filter says so, so the empty prefix is safe.
  for (let cut = 0; cut <= 3 && p.length > 0; cut++, p = p.subarray(0, p.length - 1)) {
    try {
      return fatalUtf8.decode(p);
    } catch {
      // try a byte shorter
    }
  }
  return "";
}

/** A key filter: the glob (when it filters anything) and a type ("string" covers four CRDT types). */
interface KeyFilter {
  pattern: Uint8Array | null;
  redisType: string | null;
}

const encoder = new TextEncoder();

/** Keys of one page that pass the filter; a type filter of "string" reads each candidate's type (one batch). */
async function filterKeys(ctx: Ctx, keys: readonly string[], f: KeyFilter): Promise<string[]> {
  const pattern = f.pattern;
  const named = pattern === null ? [...keys] : keys.filter((k) => globMatch(pattern, encoder.encode(k)));
  if (f.redisType !== "string" || named.length === 0) return named;
  const outs = await applyMany(ctx, named.map((key): ClientOp => ({ kind: "get", key })));
  return named.filter((_, i) => {
    const o = outs[i];
    // Gone meanwhile: not listed. A counter out of int64 is still a counter.
    if (o === undefined) return false;
    if (!o.ok) return o.error.code === "OUT_OF_RANGE";
    return o.result.kind === "value" && redisType(o.result.value.type) === "string";
  });
}

/** The node's scan type for a Redis type filter; "none" for a type no key here can have. */
function scanType(t: string | null): ValueKind | null | "none" {
  switch (t) {
    case null:
    case "string":
      return null;
    case "set":
      return "set";
    case "hash":
      return "hash";
    default:
      return "none";
  }
}

async function page(ctx: Ctx, q: ScanQuery): Promise<ScanPage> {
  return await scanKeys(ctx, q);
}

async function keys(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const pattern = args[1] as Uint8Array;
  const filter: KeyFilter = { pattern: globMatchesAll(pattern) ? null : pattern, redisType: null };
  const prefix = scanPrefix(pattern);
  const out: Reply[] = [];
  let cursor = 0;
  do {
    const p = await page(ctx, { prefix, type: null, cursor, limit: scanLimitMax });
    for (const k of await filterKeys(ctx, p.keys, filter)) out.push(bulk(k));
    if (out.length > keysReplyMax) throw new RespError(`ERR KEYS would answer more than ${keysReplyMax} keys: iterate with SCAN`);
    cursor = p.cursor;
  } while (cursor !== 0);
  return array(out);
}

/** A SCAN-family cursor: an unsigned decimal; ours fit a safe integer, anything else was never ours. */
export function cursorArg(b: Uint8Array | undefined): number {
  const s = b === undefined ? "" : text(b);
  if (!/^[0-9]{1,20}$/.test(s)) throw new RespError(errInvalidCursor);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new RespError(errInvalidCursor);
  return n;
}

export interface ScanOptions {
  pattern: Uint8Array | null;
  count: number;
  type: string | null;
}

/** MATCH / COUNT (/ TYPE for SCAN) in any order, the last of each counting, as Redis parses them. */
export function scanOptions(args: readonly Uint8Array[], from: number, allowType: boolean): ScanOptions {
  const o: ScanOptions = { pattern: null, count: scanCountDefault, type: null };
  for (let i = from; i < args.length; i += 2) {
    const w = word(args[i]);
    const v = args[i + 1];
    if (v === undefined) throw new RespError(errSyntax);
    if (w === "COUNT") {
      const s = text(v);
      const n = /^(0|-?[1-9][0-9]{0,18})$/.test(s) ? Number(s) : Number.NaN;
      if (!Number.isFinite(n)) throw new RespError(errNotInteger);
      if (n < 1) throw new RespError(errSyntax);
      o.count = n;
    } else if (w === "MATCH") {
      o.pattern = globMatchesAll(v) ? null : v;
    } else if (w === "TYPE" && allowType) {
      o.type = text(v).toLowerCase();
    } else {
      throw new RespError(errSyntax);
    }
  }
  return o;
}

async function scan(ctx: Ctx, args: readonly Uint8Array[]): Promise<Reply> {
  const cursor = cursorArg(args[1]);
  const o = scanOptions(args, 2, true);
  const t = scanType(o.type);
  const prefix = o.pattern === null ? "" : scanPrefix(o.pattern);
  const p = await page(ctx, { prefix, type: t === "none" ? null : t, cursor, limit: Math.min(o.count, scanLimitMax) });
  const found = t === "none" ? [] : await filterKeys(ctx, p.keys, { pattern: o.pattern, redisType: o.type });
  return array([bulk(String(p.cursor)), array(found.map((k) => bulk(k)))]);
}

async function dbsize(ctx: Ctx): Promise<Reply> {
  return int((await nodeStatus(ctx)).keys);
}

export const keyCommands: readonly CommandSpec[] = [
  command({ name: "del", arity: -2, flags: ["write"], keys: [1, -1, 1], group: "generic", complexity: "O(N) where N is the number of keys that will be removed.", summary: "Delete keys (an observed remove of what this replica has seen)", run: del }),
  command({ name: "unlink", arity: -2, flags: ["write", "fast"], keys: [1, -1, 1], group: "generic", since: "4.0.0", complexity: "O(1) for each key removed.", summary: "Delete keys (as DEL)", run: del }),
  command({ name: "exists", arity: -2, flags: ["readonly", "fast"], keys: [1, -1, 1], group: "generic", since: "3.0.3", complexity: "O(N) where N is the number of keys to check.", summary: "Count the given keys that exist (repeats count again)", run: exists }),
  command({ name: "type", arity: 2, flags: ["readonly", "fast"], keys: key1, group: "generic", summary: "Determine the type stored at key (string, set, hash or none)", run: type }),
  command({ name: "keys", arity: 2, flags: ["readonly"], group: "generic", complexity: "O(N) with N being the number of keys in the database", summary: "Find all keys matching the given pattern", run: keys }),
  command({ name: "scan", arity: -2, flags: ["readonly"], group: "generic", since: "2.8.0", complexity: "O(1) for every call. O(N) for a complete iteration.", summary: "Incrementally iterate the keys space", run: scan }),
  command({ name: "dbsize", arity: 1, flags: ["readonly", "fast"], group: "server", summary: "Return the number of keys in the selected database", run: dbsize }),
];
