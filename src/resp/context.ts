// What every command handler gets (session, backend, shared state) and the argument parsers and
// node calls they share, so integers, keys and node errors are read and answered one way.
import type { ClientOp, NodeStatus, OpOutcome, ScanPage, ScanQuery } from "../transport/api.ts";
import { decodeKey } from "../transport/validate.ts";
import type { OpBatcher } from "./batch.ts";
import { errNotInteger, opErrorText, RespError } from "./replies.ts";
import type { CommandSpec } from "./table.ts";
import type { Reply, RespBackend, RespInfo, RespSession } from "./types.ts";

/** Counters behind INFO stats; CONFIG RESETSTAT zeroes them. */
export interface RespStats {
  commandsProcessed: number;
  errorReplies: number;
}

/** Per-session facts the session type does not hold (CLIENT INFO's idle and cmd). */
export interface SessionActivity {
  lastCommand: string;
  lastAtMs: number;
}

export interface Ctx {
  readonly session: RespSession;
  readonly backend: RespBackend;
  readonly shared: Shared;
}

/** State one command table keeps across connections. */
export interface Shared {
  readonly stats: RespStats;
  readonly locks: KeyLocks;
  /** Every op a command sends to the node goes through it, in order (src/resp/batch.ts). */
  readonly batcher: OpBatcher;
  readonly activity: WeakMap<RespSession, SessionActivity>;
  readonly startedAtMs: number;
  /** The command table itself, for COMMAND and HELP. */
  readonly commands: CommandIndex;
}

export interface CommandIndex {
  /** Top-level commands COMMAND lists, in table order. */
  readonly listed: readonly CommandSpec[];
  /** A command by lower-case name (unlisted ones too). */
  find(name: string): CommandSpec | undefined;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });
export const textEncoder = new TextEncoder();

export function text(b: Uint8Array): string {
  return utf8.decode(b);
}

/** An option word, compared case-insensitively as Redis does. */
export function word(b: Uint8Array | undefined): string {
  return b === undefined ? "" : utf8.decode(b).toUpperCase();
}

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;
/** Redis's string2ll: no sign but '-', no leading zeros, no spaces, within int64. */
const int64Text = /^(0|-?[1-9][0-9]{0,18})$/;

/** A signed 64-bit integer argument, or null when Redis would refuse it. */
export function tryInt64(b: Uint8Array | undefined): bigint | null {
  if (b === undefined || b.length > 20) return null;
  const s = utf8.decode(b);
  if (!int64Text.test(s)) return null;
  const v = BigInt(s);
  return v < int64Min || v > int64Max ? null : v;
}

/** A signed 64-bit integer argument; otherwise `ERR value is not an integer or out of range`. */
export function int64Arg(b: Uint8Array | undefined): bigint {
  const v = tryInt64(b);
  if (v === null) throw new RespError(errNotInteger);
  return v;
}

/** A key argument, checked as the gRPC edge checks keys (1..1024 bytes of UTF-8). */
export function keyArg(b: Uint8Array | undefined): string {
  return decodeKey(b);
}

/** An outcome's error as a reply-ending throw. */
export function check(o: OpOutcome): Extract<OpOutcome, { ok: true }>["result"] {
  if (!o.ok) throw new RespError(opErrorText(o.error));
  return o.result;
}

/** One op through the node's client path (no request id: RESP has none), batched with the turn's others. */
export function applyOne(ctx: Ctx, op: ClientOp): Promise<OpOutcome> {
  return ctx.shared.batcher.apply(op);
}

/** Ops in order through the node's batch path, back to back, at most batchOpsMax per call (as a gRPC Batch). */
export function applyMany(ctx: Ctx, ops: readonly ClientOp[]): Promise<OpOutcome[]> {
  return ctx.shared.batcher.applyAll(ops);
}

/**
 * One op through the batcher with callbacks: `reply` turns its outcome into the reply (it may
 * throw what a handler throws, e.g. a RespError), and `later` or `failed` gets the result.
 */
export function applyThen(ctx: Ctx, op: ClientOp, reply: (o: OpOutcome) => Reply, later: (r: Reply) => void, failed: (err: unknown) => void): null {
  ctx.shared.batcher.applyThen(
    op,
    (o) => {
      let r: Reply;
      try {
        r = reply(o);
      } catch (err) {
        failed(err);
        return;
      }
      later(r);
    },
    failed,
  );
  return null;
}

/**
 * A page of keys. The ops waiting in the batcher are applied first: a scan reads the node
 * directly, and must see what the commands before it wrote.
 */
export async function scanKeys(ctx: Ctx, q: ScanQuery): Promise<ScanPage> {
  ctx.shared.batcher.flush();
  return await ctx.backend.client.scan(q);
}

/** The node's facts for INFO and CONFIG GET (its key counts), after the waiting ops (as scanKeys). */
export function nodeInfo(ctx: Ctx): RespInfo {
  ctx.shared.batcher.flush();
  return ctx.backend.info();
}

/** The node's status (DBSIZE's key count), after the waiting ops (as scanKeys). */
export async function nodeStatus(ctx: Ctx): Promise<NodeStatus> {
  ctx.shared.batcher.flush();
  return await ctx.backend.client.status();
}

/**
 * Per-key ordering for commands that read and then write (SET NX/XX/GET, GETDEL, MSET's type
 * check): while one holds a key, every other Redis-protocol write of that key on this node waits
 * for it, so the check and the write are atomic among this node's RESP clients, as in Redis. A
 * gRPC write or a replicated one may still land between them: the decision is this replica's.
 */
export class KeyLocks {
  private readonly held = new Map<string, Promise<void>>();

  /**
   * A plain write: run at once when none of `keys` is held (the hot path), else holding them.
   * A write run at once is queued in the batcher now, and the batcher applies ops in the order
   * they were queued, so it cannot land inside another command's check-then-write: that one
   * queues its read only after it took the key.
   */
  guard<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    if (this.held.size === 0 || this.busy(keys).length === 0) return fn();
    return this.with(keys, fn);
  }

  /** No command holds `key`: a plain write of it may be queued now, as guard would run it. */
  isFree(key: string): boolean {
    return this.held.size === 0 || !this.held.has(key);
  }

  /** Runs `fn` holding every key in `keys` (after the ones held now are released). */
  async with<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const unique = [...new Set(keys)];
    // Check and take in one synchronous step: nothing can take a key between the two.
    for (let busy = this.busy(unique); busy.length > 0; busy = this.busy(unique)) await Promise.all(busy);
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    for (const k of unique) this.held.set(k, done);
    try {
      return await fn();
    } finally {
      for (const k of unique) if (this.held.get(k) === done) this.held.delete(k);
      release();
    }
  }

  private busy(keys: readonly string[]): Promise<void>[] {
    const out: Promise<void>[] = [];
    for (const k of keys) {
      const p = this.held.get(k);
      if (p !== undefined) out.push(p);
    }
    return out;
  }
}
