// The keyspace: key -> typed CRDT. Turns local ops into deltas, merges remote deltas and full
// states, keeps a 64-bit digest per key for anti-entropy, and iterates keys in bounded chunks.
// Pure: time comes in as `nowMs`, nothing here does I/O. Storage layout: see keytable.ts.
//
// API (all synchronous; never throws for bad input - errors come back as values):
//
//   const e = new Engine({ actor: "node-1", maxClockSkewMs: 60_000, onChange })
//   e.apply(op, nowMs): ApplyResult
//       op: { kind: "incr", key, amount: bigint, counter?: "gcounter" | "pncounter" }
//                                       (a new key becomes a PN-Counter unless counter says
//                                        "gcounter"; on an existing key `counter`, if given,
//                                        must match)
//           | { kind: "decr", key, amount: bigint }                      (PN-Counter only)
//           | { kind: "set", key, value: Uint8Array }                    (LWW-Register)
//           | { kind: "setMv", key, value: Uint8Array, context: Uint8Array | null }
//                                       (MV-Register; context = bytes from get() or a setMv
//                                        answer of this key - another key's is INVALID - and
//                                        clamped to the dots this node has seen of the key;
//                                        null means "replace everything this node has seen")
//           | { kind: "sadd", key, members: Uint8Array[] }              (OR-Set; a new key becomes one;
//                                       count: how many members were not in the set)
//           | { kind: "srem", key, members: Uint8Array[] }              (OR-Set: removes what this node
//                                       has seen of them; count: how many were in the set. Removing
//                                       none - or any member of a missing key - changes nothing and
//                                       answers delta null, value the set or undefined)
//       -> { ok: true, value: KeyValue, delta: Uint8Array /* encoded KeyDelta */, count?: number }
//        | { ok: false, error: { code: "WRONG_TYPE" | "OUT_OF_RANGE" | "INVALID", message } }
//       A key's type is fixed by its first write; a refused op changes nothing. An op of a
//       type other than the key's visible one (see type conflicts below) is WRONG_TYPE.
//   e.applyHash(op, nowMs): HashResult          hash ops (src/crdt/ormap.ts), also in applyMany
//       op: { kind: "hset", key, pairs: [{ field, value }] } | { kind: "hdel", key, fields }
//         | { kind: "hincrby", key, field, amount: bigint /* int64, any sign */ }
//       -> { ok: true, reply: bigint /* HSET: fields added, HDEL: removed, HINCRBY: value */,
//            delta: Uint8Array | null /* null: nothing changed (HDEL of absent fields) */ }
//        | { ok: false, error }   (WRONG_TYPE; INVALID "hash value is not an integer";
//                                  OUT_OF_RANGE; LIMIT_EXCEEDED)
//   e.get(key): KeyValue | undefined
//       { type: "gcounter" | "pncounter", value: bigint }   (exact; local ops keep it within
//           int64, but concurrent increments on two nodes can merge to a value outside it -
//           the API edge must saturate or report, never wrap)
//       { type: "lww", value: Uint8Array /* shared: do not modify */, timestampMs, logical, actor }
//       { type: "mv", values: Uint8Array[], context: Uint8Array /* encoded CausalContext +
//           key tag (codec/context.ts); a setMv answers what it replaced plus its own dot */ }
//       { type: "set", members: Uint8Array[] /* sorted bytewise; shared: do not modify */ }
//       { type: "hash", fields: [{ field, value }] }   (present fields, bytewise; a counter
//           field's value is its decimal text)
//       each with `conflicts: [...]` (values as above) when the key holds other types too.
//   e.mergeDelta(bytes, nowMs, opts?) / e.mergeState(key, bytes, nowMs, opts?): MergeResult
//       Joins an encoded KeyDelta / KeyState (remote deltas, WAL replay, anti-entropy).
//       Idempotent. -> { ok: true, key, changed, skew: ClockSkew | null, typeConflict }
//                    | { ok: false, error, clockAhead?: { key, remoteMs, physicalMs, aheadMs } }
//       opts.origin: "peer" (default) refuses an LWW timestamp more than hlcRemoteAheadMsMax
//       ahead of nowMs - nothing changes, the clock does not observe it, clockAhead says by
//       how much; "own" (WAL replay of this node's own log) never refuses for time.
//       Type conflicts: two replicas that have not seen each other's write may create one key
//       with different types. The key then keeps one state per type (nothing is dropped); each
//       carries a creation stamp (HLC ms of its first write, least wins in a join), and the
//       visible type is the one with the least stamp, ties to the lower wire number. Other
//       types show in get()'s `conflicts`. typeConflict is true exactly when this merge gave
//       the key a type it did not hold here and it now holds two or more (log and count it once).
//   e.encodeState(key): Uint8Array | undefined        encoded KeyState (snapshots)
//   e.loadState(key, bytes): LoadResult              replaces the key's state (recovery)
//   e.digest(key): bigint | undefined                128-bit BLAKE2s of varint(key length) ++ key
//                                                    ++ the canonical typed content: varint(type)
//                                                    ++ varint(stamp) ++ state bytes, or of every
//                                                    typed state of a conflicted key (digest.ts).
//                                                    Computed when read or reported, never stored
//   onChange(key, digest) is called after every change (apply, merge, load) - or, with
//       deferChanges, once per changed key when reportChanges() runs (see below); digest
//       undefined: the key was collected (it is gone).
//   e.applyMany(ops, nowMs) -> { results, deltas }
//       apply() (and get()) for the ops of one client Batch, in order. results[i] is
//       { ok: true, value, count? } (value undefined: a get of a missing key) or { ok: false, error }.
//       deltas hold every change once: a compact counter key's delta is its own row after the
//       call's last op on it (a join of its per-op deltas), every other op's delta as is.
//   e.reportChanges(): number   with deferChanges: calls onChange for every key changed since
//       the last call (its current digest), and returns how many. Without it: 0, no-op.
//   e.keyCount; e.has(key); e.typeOf(key)
//   e.scan(): KeyScan   scan.next(maxKeys, maxBytes) -> [{ key, state: KeyState bytes }]
//       In insertion order, deleted keys' records included; tolerates writes, collects and
//       compactions during the scan: every key stored for the whole scan is returned exactly
//       once, with its state at the moment it is returned; keys added meanwhile are returned
//       too. `scan.done` at the end.
//   e.listKeys(cursor, limit, prefix?, type?) -> { ok: true, keys, cursor } | { ok: false, error }
//       Present keys in bounded pages (cursor 0: start and end); error INVALID for a cursor
//       that two compactions have expired.
//   Deleted keys' records (tombstones):
//   e.absentKeys(cursor, limit) -> { items: [{ key, state, digest }], cursor }
//   e.collect(key, digest): boolean   removes a deleted key whose record is unchanged since
//       the caller read `digest` - only once no write it covers can still arrive (the
//       cluster's causal stability). Collected entries are compacted away in bulk.
//   e.tombstones() -> { count, bytes, oldestMs }
//   e.clock: the node's HybridClock (LWW timestamps; recovery may restore() it).

import {
  actorName, assert, CausalContext, CrdtError, Deadline, dotBase, GCounter, hlcRemoteAheadMsMaxDefault, HybridClock, internActor, LwwRegister, MvRegister, OrMap, OrSet, PNCounter,
  registerValueBytesMax, actorUtf8, hlcMsMax, type ActorId, type ClockSkew, type HashPair, type Hlc,
} from "../crdt/index.ts";
import {
  beginEnvelope, CrdtType, crdtTypeOf, decodeContext, decodeEnvelope, DecodeError, encodeContext, keyBytesMax, Reader, WireType, Writer,
  writeEnvelope, writeState, type CrdtState, type KeyEnvelope, type TypedState,
} from "../codec/index.ts";
import { joinStates, kindByType, kindOf, mvValue, type KindName, type TypedValue } from "../kinds/index.ts";
import { hashWriteRefusal, mergeRefusal, mvWriteRefusal, setAddRefusal, sidesMergeRefusal, sidesWriteRefusal } from "./bounds.ts";
import { collectedRememberedMax, expiryDeadlineMsMax, rowBytesMax } from "../limits.ts";
import { digest128, digestOf, digestOut } from "./digest.ts";
import { Flag, KeyTable, noActor, Slot } from "./keytable.ts";
import { Tombstones, type TombstoneStats } from "./tombstones.ts";
import { Conflicted } from "./typed.ts";
import { DeadlineIndex } from "./deadlines.ts";
import type { KeyHashSeed } from "./keyhash.ts";

/** Most keys one scan chunk returns. */
export const scanChunkKeysMax = 10_000;
/** Most bytes of state one scan chunk returns (a single larger state is returned alone). */
export const scanChunkBytesMax = 4 * 1024 * 1024;

/** LIMIT_EXCEEDED: the key's state would pass a bound of src/limits.ts (see bounds.ts). */
export type EngineErrorCode = "WRONG_TYPE" | "OUT_OF_RANGE" | "INVALID" | "LIMIT_EXCEEDED";
export interface EngineError {
  code: EngineErrorCode;
  message: string;
}

export type CounterType = "gcounter" | "pncounter";
export type KeyType = CounterType | "lww" | "mv" | "set" | "hash";

export type EngineOp =
  | { kind: "incr"; key: string; amount: bigint; counter?: CounterType }
  | { kind: "decr"; key: string; amount: bigint }
  | { kind: "set"; key: string; value: Uint8Array; expiry?: SetExpiry }
  | { kind: "setMv"; key: string; value: Uint8Array; context: Uint8Array | null; expiry?: SetExpiry }
  | { kind: "sadd"; key: string; members: Uint8Array[] }
  | { kind: "srem"; key: string; members: Uint8Array[] };

/**
 * What a register write does to the key's deadline (docs/api.md, "Expiry"), as Redis's SET:
 * absent or { kind: "clear" } clears a deadline this replica has seen (SET without EX/PX);
 * "keep" leaves it (KEEPTTL); "at" sets one (SET ... EX/PX), atMs absolute Unix ms in
 * (nowMs, expiryDeadlineMsMax].
 */
export type SetExpiry = { kind: "clear" } | { kind: "keep" } | { kind: "at"; atMs: number };

/** Redis's EXPIRE conditions: NX no deadline yet, XX has one, GT/LT later/earlier than the current one (none counts as infinitely late). */
export type ExpireCondition = "nx" | "xx" | "gt" | "lt";

/**
 * Deadline ops (docs/api.md, "Expiry"). expire: atMs absolute Unix ms <= expiryDeadlineMsMax;
 * at or before nowMs it expires the key now (as Redis's EXPIRE with a time in the past deletes
 * it); answers count 1 if the deadline was set (or the key expired), 0 if the key is missing or
 * the condition failed. persist: count 1 if a deadline was cleared. ttl: reply -2n missing,
 * -1n no deadline, else the ms left (>= 1n).
 */
export type ExpiryOp =
  | { kind: "expire"; key: string; atMs: number; cond: ExpireCondition | null }
  | { kind: "persist"; key: string }
  | { kind: "ttl"; key: string };

/** The value of one typed state (src/kinds/kind.ts). */
export type { TypedValue };

/**
 * A key's visible value; `conflicts`: its states of other types, in type order (only when it has
 * some); `expiresAtMs`: its deadline, Unix ms (only when it has one).
 */
export type KeyValue = TypedValue & { conflicts?: TypedValue[]; expiresAtMs?: number };

/** count: sadd, members that were new; srem, members that were removed. */
export type ApplyResult = { ok: true; value: KeyValue; delta: Uint8Array; count?: number } | { ok: false; error: EngineError };
/** An op that changed nothing (an srem of members the key does not hold): no delta to log or send. */
export type NoChangeResult = { ok: true; value: KeyValue | undefined; delta: null; count: number };
/** An sadd/srem inside applyMany: its count, without the set's value (see applyObject). */
type CountedResult = { ok: true; value: undefined; delta: Uint8Array; count: number };

export type MergeResult =
  | { ok: true; key: string; changed: boolean; skew: ClockSkew | null; typeConflict: boolean }
  | { ok: false; error: EngineError; clockAhead?: ClockSkew & { key: string } };

/** Where merged bytes come from (see the API notes). */
export interface MergeOptions {
  origin?: "peer" | "own";
}

export type LoadResult = { ok: true; key: string } | { ok: false; error: EngineError };

export interface ScanItem {
  key: string;
  state: Uint8Array;
}

export interface KeyScan {
  next(maxKeys?: number, maxBytes?: number): ScanItem[];
  readonly done: boolean;
}

export interface EngineOptions {
  /** This node's id (actor of its writes), 1..255 bytes UTF-8. */
  actor: string;
  /** Remote LWW timestamps further ahead of local time than this are reported as skew. */
  maxClockSkewMs?: number;
  /** A peer's LWW timestamp further ahead of local time than this is refused (default hlcRemoteAheadMsMaxDefault). */
  hlcRemoteAheadMsMax?: number;
  /** digest undefined: the key is gone (collected, see Engine.collect). */
  onChange?: (key: string, digest: bigint | undefined) => void;
  /**
   * Track changes instead of reporting each one: digests are computed when read or reported,
   * and onChange runs from reportChanges(), once per key however often it changed. The node
   * uses this so a hot key written 10k times between two anti-entropy looks costs one digest
   * and one hash-tree update instead of 10k (the tree is only read by anti-entropy, which
   * calls reportChanges first).
   */
  deferChanges?: boolean;
  /**
   * Secret key of the hash that places client-chosen keys in the table (keyhash.ts): random per
   * process in the node, from the seeded rng in the simulator. Without it, [0, 0]: fine for
   * tests and benchmarks, open to hash flooding anywhere clients choose keys.
   */
  hashSeed?: KeyHashSeed;
}

/**
 * Hash ops (src/crdt/ormap.ts; reads go through get). Apart from EngineOp because each answers
 * an integer (HSET: fields added, HDEL: fields removed, HINCRBY: the new value) and an HDEL of
 * absent fields changes nothing, so it has no delta.
 */
export type HashOp =
  | { kind: "hset"; key: string; pairs: HashPair[] }
  | { kind: "hdel"; key: string; fields: Uint8Array[] }
  | { kind: "hincrby"; key: string; field: Uint8Array; amount: bigint };

/** delta: null when nothing changed (nothing to log or send). */
export type HashResult = { ok: true; reply: bigint; delta: Uint8Array | null } | { ok: false; error: EngineError };

/** An op of applyMany: a write, or a read that sees the writes before it. */
export type ManyOp = EngineOp | HashOp | ExpiryOp | { kind: "get"; key: string } | { kind: "del"; key: string };
/**
 * `deleted`: for a "del", whether the key held anything (Redis DEL counts those); `count`: as
 * ApplyResult's, or an expire's / persist's 1 or 0; reply: a hash op's integer (HashOp), or a
 * ttl's answer (ExpiryOp). An sadd/srem answers its count and no value (a set's value lists
 * every member: building it made each op cost O(members)).
 */
export type ManyResult = { ok: true; value: KeyValue | undefined; deleted?: boolean; count?: number; reply?: bigint } | { ok: false; error: EngineError };

/** A delete's outcome: delta null when the key held nothing (then nothing changed). */
export type DeleteResult = { ok: true; deleted: boolean; delta: Uint8Array | null } | { ok: false; error: EngineError };

/** Most keys one listKeys call returns. */
export const listKeysMax = 10_000;
/** Most table entries one listKeys call looks at (deleted and filtered-out ones included), so one call is bounded work. */
export const listExamineMax = 100_000;

export interface KeyListing {
  ok: true;
  keys: string[];
  /** Where the next call starts; 0 when the listing is complete. */
  cursor: number;
}

/** A listing refused: its cursor is from before the last two compactions, or not one this engine returned. */
export type ListingRefusal = { ok: false; error: EngineError };

/** A deleted key's record, as absentKeys returns it. */
export interface AbsentItem {
  key: string;
  /** Its encoded KeyState (as encodeState gives). */
  state: Uint8Array;
  /** Its digest now: what collect() must be given for the record to go. */
  digest: bigint;
}

export type { TombstoneStats };

/** Free (collected) entries that, once also a quarter of the table, make it compact. */
export const compactFreeEntriesMin = 1024;
/**
 * Cursors of listKeys and absentKeys are generation * cursorIndexSpan + table index: a compaction
 * moves entries, so a cursor says which table layout it indexes. Generations count modulo
 * cursorGenerations so a cursor stays a safe integer (a cursor 2^21 compactions old would be
 * misread; it is refused long before, as older than one compaction).
 */
const cursorIndexSpan = 2 ** 32;
const cursorGenerations = 2 ** 21;
const shortCursorGenerations = 32;
/** Bits of a short cursor (Engine.shortCursor): a table index and a generation modulo 32. */
export const shortCursorBits = 37;
const expiredCursor = fail("INVALID", "cursor expired by a compaction of the key table; restart the scan");
const foreignCursor = fail("INVALID", "cursor is not one this engine returned; restart the scan");

/** Elements of the ascending `sorted` less than x. */
function rankBelow(sorted: Uint32Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** An open KeyScan's next table index, which a compaction moves (see Engine.scan). */
interface ScanPosition {
  at: number;
}

/** The kind name of a wire type ("deadline" only for a deadline side, never a key's visible type). */
function typeName(t: CrdtType): KindName {
  return kindByType(t).name;
}

const safeMax = Number.MAX_SAFE_INTEGER;
const noSides: TypedState[] = [];
const safeMaxBig = BigInt(safeMax);

function fail(code: EngineErrorCode, message: string): { ok: false; error: EngineError } {
  return { ok: false, error: { code, message } };
}

/** Decodes a KeyDelta/KeyState envelope (of `key`, when given), or the INVALID failure to return. */
function decodeOrFail(
  bytes: Uint8Array,
  key: string | null,
  what: "delta" | "state",
): ReturnType<typeof decodeEnvelope> | { ok: false; error: EngineError } {
  let env;
  try {
    env = decodeEnvelope(bytes);
  } catch (e) {
    if (e instanceof DecodeError) return fail("INVALID", `bad ${what}: ${e.message}`);
    throw e;
  }
  if (key !== null && env.key !== key) return fail("INVALID", `${what} is for another key`);
  return env;
}

function wrongType(key: string, has: CrdtType, wanted: string): { ok: false; error: EngineError } {
  return fail("WRONG_TYPE", `key "${key.slice(0, 64)}" holds a ${typeName(has)}, not a ${wanted}`);
}

/** Raw protobuf tags (field << 3 | wire type) the compact counter path accepts (see compactCounterDelta). */
const tagVersion = (1 << 3) | WireType.Varint;
const tagType = (2 << 3) | WireType.Varint;
const tagKey = (3 << 3) | WireType.Bytes;
const tagState = (4 << 3) | WireType.Bytes;
const tagStamp = (5 << 3) | WireType.Varint;
const tagRow = (1 << 3) | WireType.Bytes;
const tagRowActor = (1 << 3) | WireType.Bytes;
const tagRowP = (2 << 3) | WireType.Varint;
const tagRowN = (3 << 3) | WireType.Varint;
const tagReset = (2 << 3) | WireType.Bytes;

const keyEncoder = new TextEncoder();
/** Keys are well-formed UTF-8 here; ignoreBOM keeps a leading U+FEFF, which is part of the key. */
const keyDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
const invalidKey = fail("INVALID", `key must be 1..${keyBytesMax} bytes of well-formed UTF-8`);

export class Engine {
  /** The actor this replica writes as; renewed only by evict (see there). */
  actor: ActorId;
  readonly clock: HybridClock;
  private readonly remoteAheadMsMax: number;
  private readonly t: KeyTable;
  private readonly w = new Writer(4096);
  /** The current key's UTF-8 (see encodeKey). */
  private readonly keyBuf = new Uint8Array(keyBytesMax * 3 + 8);
  private onChange: ((key: string, digest: bigint | undefined) => void) | null;
  private readonly defer: boolean;
  /** Entries with Flag.ReportPending (deferChanges), in the order they first changed. */
  private pending: number[] = [];
  /** Keys collected since the last reportChanges (deferChanges), reported gone before `pending`. */
  private gone: string[] = [];
  /** The absent entries' statistics (tombstones()). */
  private readonly tombs: Tombstones;
  /** Compactions so far, modulo cursorGenerations: the layout cursors index. */
  private generation = 0;
  /** Indices the last compaction removed, ascending: maps a cursor of the layout before it. */
  private lastRemoved: Uint32Array | null = null;
  /**
   * Open KeyScans' positions, moved by each compaction. Held weakly: a scan its user dropped
   * before the end (a node stopping mid-build) must not be kept, nor need an explicit close.
   */
  private readonly scans = new Set<WeakRef<ScanPosition>>();

  constructor(opts: EngineOptions) {
    this.actor = internActor(opts.actor);
    this.t = new KeyTable(opts.hashSeed);
    this.tombs = new Tombstones(this.t);
    this.clock = new HybridClock(opts.maxClockSkewMs);
    this.remoteAheadMsMax = opts.hlcRemoteAheadMsMax ?? hlcRemoteAheadMsMaxDefault;
    assert(Number.isSafeInteger(this.remoteAheadMsMax) && this.remoteAheadMsMax >= 0, "hlcRemoteAheadMsMax must be an integer >= 0");
    this.onChange = opts.onChange ?? null;
    this.defer = opts.deferChanges ?? false;
  }

  setOnChange(fn: ((key: string, digest: bigint | undefined) => void) | null): void {
    this.onChange = fn;
  }

  /** Keys that hold something (deleted ones excluded). */
  get keyCount(): number {
    return this.t.count - this.t.free - this.absentCount;
  }

  /** Deleted keys still held as the record of what their delete removed. */
  get deletedKeyCount(): number {
    return this.absentCount;
  }

  /** Keys held, deleted ones included (what snapshots and anti-entropy carry). */
  get storedKeyCount(): number {
    return this.t.count - this.t.free;
  }

  /** nowMs: as typeOf's. */
  has(key: string, nowMs?: number): boolean {
    const i = this.indexOf(key);
    return i >= 0 && ((this.t.flags[i] as number) & Flag.Absent) === 0 && !this.dueAt(i, nowMs ?? this.clock.current().ms);
  }

  /** nowMs: a key whose deadline is at or before it is absent (default: the latest HLC time this engine knows). */
  typeOf(key: string, nowMs?: number): KeyType | undefined {
    const i = this.indexOf(key);
    if (i < 0 || ((this.t.flags[i] as number) & Flag.Absent) !== 0 || this.dueAt(i, nowMs ?? this.clock.current().ms)) return undefined;
    const n = typeName(this.typeAt(i));
    return n === "deadline" ? undefined : n;
  }

  /** Every op but srem always changes the key when it succeeds; an srem may change nothing (NoChangeResult). */
  apply(op: Exclude<EngineOp, { kind: "srem" }>, nowMs: number): ApplyResult;
  apply(op: EngineOp, nowMs: number): ApplyResult | NoChangeResult;
  apply(op: EngineOp, nowMs: number): ApplyResult | NoChangeResult {
    const len = this.encodeKey(op.key);
    if (len < 0) return invalidKey;
    const i = this.findForWrite(op.key, len);
    if ((op.kind === "incr" || op.kind === "decr") && (i < 0 || this.t.slot[i] !== Slot.Object)) {
      const at = this.bumpCompact(op, i, len, nowMs);
      if (typeof at !== "number") return at;
      if (at >= 0) return { ok: true, value: this.counterValue(at), delta: this.compactOpDelta(at, op.kind === "incr") };
    }
    return this.applyObject(op, i, len, nowMs);
  }

  /**
   * The general path: op on the state object of entry i (-1: a new key), whose UTF-8 is in
   * keyBuf[0, len) and was just looked up (insert() relies on that lookup's hash).
   * counted: an sadd/srem answers its count without the key's value (applyMany's callers read
   * only the count): a set's value lists every member, which made each SAdd O(members).
   */
  private applyObject(op: EngineOp, i: number, len: number, nowMs: number): ApplyResult | NoChangeResult;
  private applyObject(op: EngineOp, i: number, len: number, nowMs: number, counted: boolean): ApplyResult | NoChangeResult | CountedResult;
  private applyObject(op: EngineOp, i: number, len: number, nowMs: number, counted = false): ApplyResult | NoChangeResult | CountedResult {
    let state: CrdtState | undefined = i >= 0 ? this.stateAt(i) : undefined;
    /** A deleted key written with a type it holds no state of: its sides, which the new one joins. */
    let newSideOf: TypedState[] | null = null;
    if (i >= 0 && ((this.t.flags[i] as number) & Flag.Absent) !== 0) {
      // A deleted key takes a write of any type: into its (deleted) state of that type if it
      // holds one - which keeps what the delete observed, so nothing deleted comes back - else
      // into a new state beside the deleted ones.
      const sides = this.sidesAt(i);
      const side = sides.find((x) => opFits(op, typeName(x.type)));
      state = side?.state;
      if (side === undefined) newSideOf = sides;
    }
    let delta: CrdtState;
    let count: number | undefined;
    const keyBytes = this.keyBuf.subarray(0, len);
    const conflicted = i >= 0 && this.t.slot[i] === Slot.Object ? this.t.objects.get(i) : undefined;
    if (conflicted?.kind === "conflicted") {
      const refusal = sidesWriteRefusal(conflicted.sides, writeBytes(op));
      if (refusal !== null) return fail("LIMIT_EXCEEDED", refusal);
    }
    try {
      switch (op.kind) {
        case "incr": {
          if (state === undefined) state = op.counter === "gcounter" ? new GCounter() : new PNCounter();
          else if (state.kind !== "pncounter" && state.kind !== "gcounter") return wrongType(op.key, crdtTypeOf(state), "counter");
          else if (op.counter !== undefined && typeName(crdtTypeOf(state)) !== op.counter) return wrongType(op.key, crdtTypeOf(state), op.counter);
          delta = state.inc(this.actor, op.amount, this.lifeBase(nowMs));
          break;
        }
        case "decr": {
          if (state === undefined) state = new PNCounter();
          else if (state.kind !== "pncounter") return wrongType(op.key, crdtTypeOf(state), "pncounter");
          delta = state.dec(this.actor, op.amount, this.lifeBase(nowMs));
          break;
        }
        case "set": {
          if (state === undefined) state = new LwwRegister();
          else if (state.kind !== "lww") return wrongType(op.key, crdtTypeOf(state), "lww");
          let ts = this.clock.now(nowMs);
          if (state.isSet && (ts.ms < state.ms || (ts.ms === state.ms && ts.logical <= state.logical))) {
            // Only possible if the clock never observed this register; catch up so the write wins.
            this.clock.observe(state.timestamp(), nowMs);
            ts = this.clock.now(nowMs);
          }
          delta = state.set(this.actor, op.value, ts);
          break;
        }
        case "setMv": {
          if (op.value.length > registerValueBytesMax) return fail("INVALID", `value longer than ${registerValueBytesMax} bytes`);
          let ctx: CausalContext | null = null;
          if (op.context !== null) {
            try {
              ctx = decodeContext(op.context, keyBytes);
            } catch (e) {
              if (e instanceof DecodeError) return fail("INVALID", `bad context: ${e.message}`);
              throw e;
            }
          }
          if (state === undefined) state = new MvRegister();
          else if (state.kind !== "mv") return wrongType(op.key, crdtTypeOf(state), "mv");
          const refusal = mvWriteRefusal(state, this.actor, op.value, ctx, this.lifeBase(nowMs));
          if (refusal !== null) return fail("LIMIT_EXCEEDED", refusal);
          delta = state.write(this.actor, op.value, ctx, this.lifeBase(nowMs));
          break;
        }
        case "sadd": {
          if (state === undefined) state = new OrSet();
          else if (state.kind !== "set") return wrongType(op.key, crdtTypeOf(state), "set");
          const refusal = setAddRefusal(state, this.actor, op.members, this.lifeBase(nowMs));
          if (refusal !== null) return fail("LIMIT_EXCEEDED", refusal);
          // An add only adds: the members that were new are the growth (no countAbsent pass).
          const before = state.count();
          delta = state.add(this.actor, op.members, this.lifeBase(nowMs));
          count = state.count() - before;
          break;
        }
        case "srem": {
          if (state === undefined) return { ok: true, value: undefined, delta: null, count: 0 };
          if (state.kind !== "set") return wrongType(op.key, crdtTypeOf(state), "set");
          const before = state.count();
          const removal = state.remove(op.members);
          // Nothing this node holds was named: nothing to log or send (the delta is bottom).
          if (removal.isEmpty) return { ok: true, value: counted ? undefined : valueOf(state, keyBytes), delta: null, count: 0 };
          count = before - state.count();
          delta = removal;
          break;
        }
      }
    } catch (e) {
      if (e instanceof CrdtError) return fail(e.code, e.message);
      throw e;
    }
    const at = i >= 0 ? i : this.insertKey(len, nowMs);
    if (newSideOf !== null) {
      newSideOf.push({ type: kindOf(state).type, createdMs: this.clock.now(nowMs).ms, state });
      this.putSides(at, newSideOf);
    } else this.storeAt(at, state);
    this.changed(op.key, at, nowMs);
    this.w.reset();
    writeEnvelope(this.w, keyBytes, delta, this.stampAt(at), this.deadlineSides(at));
    if (counted && count !== undefined) return { ok: true, value: undefined, delta: this.w.finish(), count };
    // An MV write answers the context of what it replaced plus its own dot (the delta's), not
    // the register's: chaining Set -> Set with the register's would delete siblings the
    // writer never read.
    const value = delta.kind === "mv" ? mvValue(state as MvRegister, delta.ctx, keyBytes) : valueOf(state, keyBytes);
    return count === undefined ? { ok: true, value, delta: this.w.finish() } : { ok: true, value, delta: this.w.finish(), count };
  }

  /** A hash op (HashOp); a refused op changes nothing. */
  applyHash(op: HashOp, nowMs: number): HashResult {
    const len = this.encodeKey(op.key);
    if (len < 0) return invalidKey;
    return this.applyHashAt(op, this.findForWrite(op.key, len), len, nowMs);
  }

  /** A hash op on entry i (-1: a new key), whose UTF-8 is in keyBuf[0, len) and was just looked up. */
  private applyHashAt(op: HashOp, i: number, len: number, nowMs: number): HashResult {
    let state: CrdtState | undefined = i >= 0 ? this.stateAt(i) : undefined;
    /** A deleted key written as a hash when it holds no hash state: its sides, which the new one joins (as in applyObject). */
    let newSideOf: TypedState[] | null = null;
    if (i >= 0 && ((this.t.flags[i] as number) & Flag.Absent) !== 0) {
      const sides = this.sidesAt(i);
      state = sides.find((x) => x.type === CrdtType.OrMap)?.state;
      if (state === undefined) newSideOf = sides;
    }
    if (state !== undefined && state.kind !== "hash") return wrongType(op.key, crdtTypeOf(state), "hash");
    // Redis: HDEL of a missing key removes nothing (and creates nothing).
    if (op.kind === "hdel" && state === undefined) return { ok: true, reply: 0n, delta: null };
    const s = state ?? new OrMap();
    // What the op may add to the encoding: names, values, a dot, a row and framing per field.
    let adds = 0;
    let dots = 1;
    if (op.kind === "hset") {
      for (const p of op.pairs) adds += p.field.length + p.value.length + 2 * rowBytesMax + 48;
      dots = op.pairs.length;
    } else if (op.kind === "hincrby") {
      adds = op.field.length + 2 * rowBytesMax + 48;
    } else {
      // A reset raises two more counts in each row it resets.
      for (const f of op.fields) adds += (s.field(f)?.rows.length ?? 0) * 24;
    }
    const conflicted = i >= 0 && this.t.slot[i] === Slot.Object ? this.t.objects.get(i) : undefined;
    if (conflicted?.kind === "conflicted") {
      const refusal = sidesWriteRefusal(conflicted.sides, adds);
      if (refusal !== null) return fail("LIMIT_EXCEEDED", refusal);
    }
    const ts = op.kind === "hset" ? this.clock.now(nowMs) : null;
    const base = this.lifeBase(nowMs);
    const write = (x: OrMap): { delta: OrMap | null; reply: bigint } => {
      switch (op.kind) {
        case "hset": {
          const r = x.set(this.actor, ts as Hlc, op.pairs, base);
          return { delta: r.delta, reply: BigInt(r.added) };
        }
        case "hdel": {
          const r = x.del(op.fields);
          return { delta: r.delta, reply: BigInt(r.removed) };
        }
        case "hincrby": {
          const r = x.incr(this.actor, op.field, op.amount, base);
          return { delta: r.delta, reply: r.value };
        }
      }
    };
    let done: { delta: OrMap | null; reply: bigint };
    try {
      const refusal = hashWriteRefusal(s, adds, dots, (x) => { write(x); });
      if (refusal !== null) return fail("LIMIT_EXCEEDED", refusal);
      done = write(s);
    } catch (e) {
      if (e instanceof CrdtError) return fail(e.code, e.message);
      throw e;
    }
    if (done.delta === null) return { ok: true, reply: done.reply, delta: null };
    const at = i >= 0 ? i : this.insertKey(len, nowMs);
    if (newSideOf !== null) {
      newSideOf.push({ type: CrdtType.OrMap, createdMs: this.clock.now(nowMs).ms, state: s });
      this.putSides(at, newSideOf);
    } else this.storeAt(at, s);
    this.changed(op.key, at, nowMs);
    this.w.reset();
    writeEnvelope(this.w, this.keyBuf.subarray(0, len), done.delta, this.stampAt(at), this.deadlineSides(at));
    return { ok: true, reply: done.reply, delta: this.w.finish() };
  }

  /**
   * incr/decr on a compact counter (or a new key) in the columns, without allocating a state
   * object: the entry's index, a refusal, or -1 when the op needs the general path (another
   * actor's row, or counts past 2^53). The key's UTF-8 is in keyBuf[0, len).
   */
  private bumpCompact(op: Extract<EngineOp, { kind: "incr" | "decr" }>, i: number, len: number, nowMs: number): number | { ok: false; error: EngineError } {
    const t = this.t;
    if (i < 0) {
      // A new counter key: validate first, so a refused op creates nothing. Its row starts at the
      // base its creation stamp gives (Flag.Based), so the stamp is taken first: one whose row
      // would pass 2^53 goes to the general path before anything is inserted.
      if (op.amount <= 0n || op.amount > safeMaxBig) return -1;
      const stampMs = this.clock.now(nowMs).ms;
      if (dotBase(stampMs) + Number(op.amount) > safeMax) return -1;
      i = this.t.insert(this.keyBuf, len);
      this.setStamp(i, stampMs);
      t.slot[i] = op.kind === "incr" && op.counter === "gcounter" ? Slot.GCounter : Slot.PNCounter;
      t.actor[i] = noActor;
      t.p[i] = 0;
      t.n[i] = 0;
    }
    const slot = t.slot[i] as Slot;
    const type = slot === Slot.GCounter ? CrdtType.GCounter : CrdtType.PNCounter;
    if (op.kind === "decr" && type !== CrdtType.PNCounter) return wrongType(op.key, type, "pncounter");
    if (op.kind === "incr" && op.counter !== undefined && typeName(type) !== op.counter) return wrongType(op.key, type, op.counter);
    const a = t.actor[i] as number;
    if ((a !== this.actor && a !== noActor) || op.amount <= 0n || op.amount > safeMaxBig) return -1;
    const up = op.kind === "incr";
    // The first row here (a new key: just stamped above) starts at this life's base, the
    // one its stamp gives, all of it below reset (crdt/clocks.ts dotBase; Flag.Based). Later ones
    // count from the reset row where that lies above (only the other total has been counted
    // yet), as PNCounter's bump.
    const from = a === noActor ? dotBase(this.stampAt(i)) : this.resetAt(i);
    const have = a === noActor ? 0 : up ? (t.p[i] as number) : (t.n[i] as number);
    const next = (have > from ? have : from) + Number(op.amount);
    if (next > safeMax) return -1;
    if (a === noActor && from > 0) t.flags[i] = (t.flags[i] as number) | Flag.Based;
    t.actor[i] = this.actor;
    if (up) t.p[i] = next;
    else t.n[i] = next;
    this.changed(op.key, i, nowMs);
    return i;
  }

  /** A compact counter's value. */
  private counterValue(i: number): KeyValue {
    return { type: this.t.slot[i] === Slot.GCounter ? "gcounter" : "pncounter", value: BigInt(this.compactValue(i)) };
  }

  /** A compact counter's value as a number: what its row counts above its reset row (each side clamped at zero, as the CRDT's). */
  private compactValue(i: number): number {
    const t = this.t;
    const r = this.resetAt(i);
    const p = t.p[i] as number;
    if (t.slot[i] === Slot.GCounter) return p > r ? p - r : 0;
    const n = t.n[i] as number;
    return (p > r ? p - r : 0) - (n > r ? n - r : 0);
  }

  /** A compact counter's reset row (both totals), 0 for none (Flag.Based). */
  private resetAt(i: number): number {
    return ((this.t.flags[i] as number) & Flag.Based) === 0 ? 0 : dotBase(this.stampAt(i));
  }

  /**
   * Where this replica's rows and dots start in a key that holds none of its own (crdt/clocks.ts
   * dotBase): from the HLC, which never runs back within a process. For a key created by the
   * write, the same ms its creation stamp gets (insertKey).
   */
  private lifeBase(nowMs: number): number {
    const hlc = this.clock.current().ms;
    return dotBase(hlc > nowMs ? hlc : nowMs);
  }

  /** The delta of one incr (up) or decr on compact counter i: its own row's P (or N) count. */
  private compactOpDelta(i: number, up: boolean): Uint8Array {
    const t = this.t;
    const g = t.slot[i] === Slot.GCounter;
    const w = this.w;
    w.reset();
    const at = beginEnvelope(w, t.keyBytes(i), g ? CrdtType.GCounter : CrdtType.PNCounter, this.stampAt(i));
    writeCompactCounter(w, g, t.actor[i] as number, up ? (t.p[i] as number) : 0, up ? 0 : (t.n[i] as number), this.resetAt(i));
    w.end(at);
    return w.finish();
  }

  applyMany(ops: readonly ManyOp[], nowMs: number): { results: ManyResult[]; deltas: Uint8Array[] } {
    const t = this.t;
    const results = new Array<ManyResult>(ops.length);
    const deltas: Uint8Array[] = [];
    /** Compact counters whose delta waits for the end of the call (Flag.DeltaDeferred). */
    const held: number[] = [];
    try {
      for (let k = 0; k < ops.length; k++) {
        const op = ops[k] as ManyOp;
        if (op.kind === "get") {
          results[k] = { ok: true, value: this.get(op.key, nowMs) };
          continue;
        }
        if (op.kind === "ttl") {
          results[k] = { ok: true, value: undefined, reply: this.ttlOf(op.key, nowMs) };
          continue;
        }
        if (op.kind === "expire" || op.kind === "persist") {
          results[k] = this.applyExpiry(op, nowMs, deltas);
          continue;
        }
        if (op.kind === "del") {
          // A key whose deadline has come is expired (and logged as such) first: DEL then finds nothing, as in Redis.
          const ex = this.expireIfDue(op.key, nowMs);
          if (ex !== null) deltas.push(ex);
          const r = this.delete(op.key, nowMs);
          if (!r.ok) results[k] = r;
          else {
            if (r.delta !== null) deltas.push(r.delta);
            results[k] = { ok: true, value: undefined, deleted: r.deleted };
          }
          continue;
        }
        const len = this.encodeKey(op.key);
        if (len < 0) {
          results[k] = invalidKey;
          continue;
        }
        const i = this.findForWrite(op.key, len);
        // A write to a key whose deadline has come starts a fresh key: the expiry goes first (its
        // own delta, logged before the write's), so nothing written before the deadline survives.
        if (i >= 0 && t.slot[i] === Slot.Object && this.dueAt(i, nowMs)) deltas.push(this.expireEntry(i, op.key, nowMs));
        if ((op.kind === "set" || op.kind === "setMv") && op.expiry?.kind === "at" && !(Number.isSafeInteger(op.expiry.atMs) && op.expiry.atMs > nowMs && op.expiry.atMs <= expiryDeadlineMsMax)) {
          results[k] = fail("INVALID", `invalid expire time: ${op.expiry.atMs} is not a Unix time in ms after now and within ${expiryDeadlineMsMax}`);
          continue;
        }
        if (op.kind === "hset" || op.kind === "hdel" || op.kind === "hincrby") {
          const r = this.applyHashAt(op, i, len, nowMs);
          if (r.ok && r.delta !== null) deltas.push(r.delta);
          results[k] = r.ok ? { ok: true, value: undefined, reply: r.reply } : r;
          continue;
        }
        if ((op.kind === "incr" || op.kind === "decr") && (i < 0 || t.slot[i] !== Slot.Object)) {
          const at = this.bumpCompact(op, i, len, nowMs);
          if (typeof at !== "number") {
            results[k] = at;
            continue;
          }
          if (at >= 0) {
            if (((t.flags[at] as number) & Flag.DeltaDeferred) === 0) {
              t.flags[at] = (t.flags[at] as number) | Flag.DeltaDeferred;
              held.push(at);
            }
            results[k] = { ok: true, value: this.counterValue(at) };
            continue;
          }
        }
        const r = this.applyObject(op, i, len, nowMs, true);
        if (r.ok) {
          if (r.delta !== null) deltas.push(r.delta);
          if (op.kind === "set" || op.kind === "setMv") {
            const d = this.registerDeadline(op.key, i, op.expiry, nowMs);
            if (d !== null) deltas.push(d);
          }
          results[k] = r.count === undefined ? { ok: true, value: r.value } : { ok: true, value: r.value, count: r.count };
        } else {
          results[k] = r;
        }
      }
    } finally {
      // The key's state now is the join of its held deltas (and of any delta a later op on the
      // general path produced, should it have passed 2^53), so it stands in for all of them.
      for (const i of held) {
        t.flags[i] = (t.flags[i] as number) & ~Flag.DeltaDeferred;
        deltas.push(this.encodeAt(i, t.keyBytes(i)));
      }
    }
    return { results, deltas };
  }

  /**
   * Deletes key (observed-remove): every state the key holds drops exactly what this replica
   * has seen of it, and the delta carries that, so a write no replica that deleted had seen
   * survives (add-wins) and nothing deleted comes back through any later join. The key keeps
   * its (now empty) states as the record of what was removed. nowMs: when it happened (for
   * tombstones(); applyMany passes its own), else the latest HLC time this engine knows.
   */
  delete(key: string, nowMs?: number): DeleteResult {
    const len = this.encodeKey(key);
    if (len < 0) return invalidKey;
    const i = this.t.find(this.keyBuf, len);
    if (i < 0 || ((this.t.flags[i] as number) & Flag.Absent) !== 0) return { ok: true, deleted: false, delta: null };
    const sides = this.sidesAt(i);
    const before = this.deadlineAt(i)?.atMs() ?? null;
    const removed: TypedState[] = [];
    for (const side of sides) {
      const d = kindOf(side.state).removeObserved(side.state);
      // The deadline goes whole: its expired marks too (deadlineSides).
      if (side.state.kind === "deadline") removed.push(side);
      else if (d !== null) removed.push({ type: side.type, createdMs: side.createdMs, state: d });
    }
    this.putSides(i, sides);
    this.changed(key, i, nowMs ?? this.clock.current().ms);
    this.noteDeadline(key, before, null);
    const main = removed[0] as TypedState; // the key was present: some side held something
    this.w.reset();
    writeEnvelope(this.w, this.keyBuf.subarray(0, len), main.state, main.createdMs, removed.slice(1));
    return { ok: true, deleted: true, delta: this.w.finish() };
  }

  // ---- Expiry (docs/api.md "Expiry"; the CRDT: src/crdt/deadline.ts) ----

  /**
   * Present keys as a read at nowMs sees them: keyCount less the keys whose deadline has come and
   * the sweep has not executed yet. Amortised O(1): the deadlines that have come are taken off
   * the heap once, counted, and queued for the sweep (dueQueue); re-counting them on every call
   * cost O(backlog), which with a million keys expiring at once made each /metrics scrape or
   * DBSIZE take the node's thread for a large share of a second (16% of the node's CPU at 300k
   * keys, `imdb bench expiry` profile). A key counted here leaves the count when its deadline
   * changes or it goes absent; one whose deadline a merge moved later but still into the past
   * counts as present until the sweep looks at it (a metric's transient, never a read: reads
   * check the key's own deadline).
   */
  keyCountAt(nowMs: number): number {
    while (this.due.peekMs() <= nowMs) {
      const key = this.due.pop();
      const i = this.dueEntry(key, nowMs);
      if (i < 0) continue;
      this.dueQueue.push(key);
      if (((this.t.flags[i] as number) & Flag.Absent) === 0) this.dueLive.add(key);
    }
    return this.keyCount - this.dueLive.size;
  }

  /**
   * The entry of a key taken off the deadline heap, if its deadline has come by nowMs; else -1
   * (gone, no deadline any more, or moved later since it was filed: then filed again).
   */
  private dueEntry(key: string, nowMs: number): number {
    const i = this.indexOf(key);
    if (i < 0) return -1;
    const at = this.deadlineAt(i)?.atMs() ?? null;
    if (at === null) return -1;
    if (at > nowMs) {
      this.due.push(at, key);
      return -1;
    }
    return i;
  }

  /** Keys keyCountAt took off the heap with their deadline come, for the sweep (FIFO from dueQueueHead; re-checked when taken). */
  private dueQueue: string[] = [];
  private dueQueueHead = 0;
  /** Those of them present when counted, and since neither re-deadlined nor gone absent: counted out of keyCountAt. */
  private dueLive = new Set<string>();

  /** Keys whose state carries a deadline now (a metric). */
  get deadlineKeyCount(): number {
    return this.deadlineKeys;
  }

  /** Expiries this replica has executed: by the sweep, on a write, or on learning of another replica's. */
  get expiredTotal(): number {
    return this.expiredCount;
  }

  /** Deadlines filed for the sweep (stale entries included): a test and metrics figure. */
  get deadlinesFiled(): number {
    return this.due.size + this.dueQueue.length - this.dueQueueHead;
  }

  private deadlineKeys = 0;
  private expiredCount = 0;
  private readonly due = new DeadlineIndex();

  /** Entry i's deadline state, if it has one. */
  private deadlineAt(i: number): Deadline | undefined {
    if (this.t.slot[i] !== Slot.Object) return undefined;
    const o = this.t.objects.get(i);
    if (o === undefined) return undefined;
    if (o.kind === "conflicted") return o.deadline();
    return o.kind === "deadline" ? o : undefined;
  }

  /** Has entry i's deadline come (at or before nowMs)? Then it reads as missing until it is executed. */
  private dueAt(i: number, nowMs: number): boolean {
    const at = this.deadlineAt(i)?.atMs() ?? null;
    return at !== null && at <= nowMs;
  }

  /** A key's deadline in force went from `before` to `after` (null: none): count it, and file it for the sweep if it came earlier. */
  private noteDeadline(key: string, before: number | null, after: number | null): void {
    if (before === after) return;
    if (this.dueLive.size > 0) this.dueLive.delete(key); // counted out at its old deadline (keyCountAt)
    if (before === null) this.deadlineKeys++;
    else if (after === null) this.deadlineKeys--;
    if (after !== null && (before === null || after < before)) this.due.push(after, key);
  }

  /** Executes a deadline on sides (in place): every side drops what it holds, the deadline marks itself expired. The removal deltas. */
  private expireSides(sides: TypedState[]): TypedState[] {
    const removed: TypedState[] = [];
    for (const side of sides) {
      if (side.state.kind === "deadline") {
        side.state.expire();
        removed.push(side); // whole, as deadlineSides
        continue;
      }
      const d = kindOf(side.state).removeObserved(side.state);
      if (d !== null) removed.push({ type: side.type, createdMs: side.createdMs, state: d });
    }
    this.expiredCount++;
    return removed;
  }

  /** Executes entry i's deadline (which it has) now: the delta to log and send. */
  private expireEntry(i: number, key: string, nowMs: number): Uint8Array {
    const before = this.deadlineAt(i)?.atMs() ?? null;
    const sides = this.sidesAt(i);
    const removed = this.expireSides(sides);
    this.putSides(i, sides);
    this.changed(key, i, nowMs);
    this.noteDeadline(key, before, null);
    const main = removed[0] as TypedState; // the deadline itself at least
    this.w.reset();
    writeEnvelope(this.w, this.t.keyBytes(i), main.state, main.createdMs, removed.slice(1));
    return this.w.finish();
  }

  /** Sets (null: clears) entry i's deadline as this replica's write: the delta to log and send. */
  private setDeadline(i: number, key: string, atMs: number | null, nowMs: number): Uint8Array {
    const sides = this.sidesAt(i);
    let side = findSide(sides, CrdtType.Deadline);
    const before = side?.state.kind === "deadline" ? side.state.atMs() : null;
    if (side === undefined) {
      // Stamp 0: a deadline is never shown as the key's type, so its stamp decides nothing.
      side = { type: CrdtType.Deadline, createdMs: 0, state: new Deadline() };
      sides.push(side);
    }
    const dl = side.state as Deadline;
    dl.set(this.actor, atMs, this.lifeBase(nowMs));
    this.putSides(i, sides);
    this.changed(key, i, nowMs);
    this.noteDeadline(key, before, atMs);
    this.w.reset();
    writeEnvelope(this.w, this.t.keyBytes(i), dl, 0); // whole, as deadlineSides
    return this.w.finish();
  }

  /**
   * What a register write does to its key's deadline (SetExpiry; the write itself succeeded):
   * sets it, keeps it, or - as Redis's SET - clears one in force. The delta, or null.
   */
  /** i: the key's entry before the write (-1: the write created it, so it has no deadline to clear). */
  private registerDeadline(key: string, i: number, expiry: SetExpiry | undefined, nowMs: number): Uint8Array | null {
    if (expiry?.kind === "keep") return null;
    if (expiry?.kind === "at") {
      // Only a new key needs looking up again: a write never moves an existing entry.
      const at = i >= 0 ? i : this.indexOf(key);
      return at < 0 ? null : this.setDeadline(at, key, expiry.atMs, nowMs);
    }
    if (i < 0) return null;
    return (this.deadlineAt(i)?.atMs() ?? null) === null ? null : this.setDeadline(i, key, null, nowMs);
  }

  /**
   * The side every delta of entry i carries besides its own change: the key's whole deadline
   * state (a few dots), or nothing when it has none. A receiver needs the sender's expired marks
   * with any write made after an expiry, or it could not tell that write from the ones the
   * expiry removed (crdt/deadline.ts); the whole state is a valid delta, and small.
   */
  private deadlineSides(i: number): TypedState[] {
    const dl = this.deadlineAt(i);
    return dl === undefined ? noSides : [{ type: CrdtType.Deadline, createdMs: 0, state: dl }];
  }

  /** If key's deadline has come, executes it: the delta, or null. */
  private expireIfDue(key: string, nowMs: number): Uint8Array | null {
    const len = this.encodeKey(key);
    if (len < 0) return null;
    const i = this.t.find(this.keyBuf, len);
    return i >= 0 && this.dueAt(i, nowMs) ? this.expireEntry(i, key, nowMs) : null;
  }

  /** The ttl op's answer: -2n missing, -1n no deadline, else the ms left. */
  private ttlOf(key: string, nowMs: number): bigint {
    const i = this.indexOf(key);
    if (i < 0 || ((this.t.flags[i] as number) & Flag.Absent) !== 0) return -2n;
    const at = this.deadlineAt(i)?.atMs() ?? null;
    if (at === null) return -1n;
    return at <= nowMs ? -2n : BigInt(at - nowMs);
  }

  /** expire / persist (ExpiryOp), after the key's own due deadline, if any, was executed. */
  private applyExpiry(op: Extract<ExpiryOp, { kind: "expire" | "persist" }>, nowMs: number, deltas: Uint8Array[]): ManyResult {
    if (op.kind === "expire" && !(Number.isSafeInteger(op.atMs) && op.atMs >= 0 && op.atMs <= expiryDeadlineMsMax)) {
      return fail("INVALID", `invalid expire time: ${op.atMs} is not a Unix time in ms within 0..${expiryDeadlineMsMax}`);
    }
    const i = this.indexOf(op.key);
    if (i < 0 || ((this.t.flags[i] as number) & Flag.Absent) !== 0) return { ok: true, value: undefined, count: 0 };
    if (this.dueAt(i, nowMs)) {
      deltas.push(this.expireEntry(i, op.key, nowMs));
      return { ok: true, value: undefined, count: 0 };
    }
    const cur = this.deadlineAt(i)?.atMs() ?? null;
    if (op.kind === "persist") {
      if (cur === null) return { ok: true, value: undefined, count: 0 };
      deltas.push(this.setDeadline(i, op.key, null, nowMs));
      return { ok: true, value: undefined, count: 1 };
    }
    // Redis 7: no deadline counts as an infinitely late one for GT and LT.
    const allowed = op.cond === null
      || (op.cond === "nx" && cur === null)
      || (op.cond === "xx" && cur !== null)
      || (op.cond === "gt" && cur !== null && op.atMs > cur)
      || (op.cond === "lt" && (cur === null || op.atMs < cur));
    if (!allowed) return { ok: true, value: undefined, count: 0 };
    // A deadline already past expires the key now, as Redis's EXPIRE with a time in the past deletes it.
    deltas.push(op.atMs <= nowMs ? this.expireEntry(i, op.key, nowMs) : this.setDeadline(i, op.key, op.atMs, nowMs));
    return { ok: true, value: undefined, count: 1 };
  }

  /**
   * The background half of expiry: executes the deadlines that have come, earliest first,
   * looking at no more than maxKeys filed entries. Returns the deltas to log and send (one per
   * key expired) and how many entries it looked at (0: nothing is due).
   */
  expireDue(nowMs: number, maxKeys: number): { deltas: Uint8Array[]; examined: number } {
    const deltas: Uint8Array[] = [];
    let examined = 0;
    while (examined < maxKeys) {
      let key: string;
      if (this.dueQueueHead < this.dueQueue.length) {
        key = this.dueQueue[this.dueQueueHead++] as string;
        if (this.dueQueueHead === this.dueQueue.length) {
          this.dueQueue = [];
          this.dueQueueHead = 0;
        }
        this.dueLive.delete(key);
      } else if (this.due.peekMs() <= nowMs) key = this.due.pop();
      else break;
      examined++;
      const i = this.dueEntry(key, nowMs);
      if (i < 0) continue;
      deltas.push(this.expireEntry(i, key, nowMs));
    }
    return { deltas, examined };
  }

  /**
   * Up to `limit` present keys from cursor on (0: the start), with the prefix and of the type
   * given; looks at no more than listExamineMax entries per call. Entries keep their order
   * (inserts append; a compaction only closes the gaps of collected keys, and a cursor of the
   * layout before it is mapped through them), so a key present for a whole listing is returned
   * exactly once, whatever is written meanwhile; keys added meanwhile may or may not be. A
   * cursor from before the last two compactions is refused (INVALID): restart the listing.
   */
  listKeys(cursor: number, limit: number, prefix = "", type?: KeyType, nowMs?: number, keep?: (keyBytes: Uint8Array) => boolean): KeyListing | ListingRefusal {
    const now = nowMs ?? this.clock.current().ms;
    const t = this.t;
    const keysMax = Math.max(1, Math.min(limit, listKeysMax));
    const keys: string[] = [];
    let i = this.cursorIndex(cursor);
    if (typeof i !== "number") return i;
    const end = Math.min(t.count, i + listExamineMax);
    for (; i < end && keys.length < keysMax; i++) {
      if (((t.flags[i] as number) & (Flag.Absent | Flag.Free)) !== 0) continue;
      if (type !== undefined && typeName(this.typeAt(i)) !== type) continue;
      if (t.slot[i] === Slot.Object && this.dueAt(i, now)) continue;
      const kb = t.keyBytes(i);
      if (keep !== undefined && !keep(kb)) continue;
      const key = decodeKey(kb);
      if (prefix !== "" && !key.startsWith(prefix)) continue;
      keys.push(key);
    }
    return { ok: true, keys, cursor: this.cursorAt(i) };
  }

  /**
   * Up to `limit` deleted keys' records from cursor on (0: the start; cursors as listKeys'),
   * each with its encoded state and current digest; looks at no more than listExamineMax
   * entries, and stops past scanChunkBytesMax of states. Cursor 0 back: the table's end. A
   * cursor too old to map (see listKeys) starts over: a pass over records is idempotent.
   */
  absentKeys(cursor: number, limit: number): { items: AbsentItem[]; cursor: number } {
    const t = this.t;
    const itemsMax = Math.max(1, Math.min(limit, listKeysMax));
    const items: AbsentItem[] = [];
    const from = this.cursorIndex(cursor);
    let i = typeof from === "number" ? from : 0;
    const end = Math.min(t.count, i + listExamineMax);
    let bytes = 0;
    for (; i < end && items.length < itemsMax && bytes < scanChunkBytesMax; i++) {
      // A scan of one byte per entry: fast enough that no index of absent entries pays its memory.
      if (((t.flags[i] as number) & Flag.Absent) === 0) continue;
      const kb = t.keyBytes(i);
      const state = this.encodeAt(i, kb);
      items.push({ key: decodeKey(kb), state, digest: this.computeDigest(i) });
      bytes += state.length;
    }
    return { items, cursor: this.cursorAt(i) };
  }

  /**
   * Removes key's record if the key is deleted (absent) and its digest is still `digest` (a
   * record that changed since the caller looked is kept); true if it did. The key is then
   * unknown here, reported to onChange with digest undefined, and a later write or merge of it
   * starts afresh - so the caller must know that no write the record covers can still arrive
   * (the cluster's causal stability), or that write comes back.
   */
  collect(key: string, digest: bigint): boolean {
    const i = this.indexOf(key);
    if (i < 0) return false;
    const t = this.t;
    if (((t.flags[i] as number) & Flag.Absent) === 0 || this.computeDigest(i) !== digest) return false;
    // Kept until forgetCollected (the cluster forgets it with the key, src/cluster/gc.ts), so a
    // write of the key meanwhile continues from it (findForWrite).
    this.collectedRecords.delete(key);
    this.collectedRecords.set(key, this.encodeAt(i, t.keyBytes(i)));
    while (this.collectedRecords.size > collectedRememberedMax) this.collectedRecords.delete(this.collectedRecords.keys().next().value as string);
    this.absentCount--;
    this.tombs.release(i);
    this.removeEntry(i, key);
    this.compactIfSparse();
    return true;
  }

  /** Takes entry i (key `key`) out of the table, with its deadline, and reports the key gone (collect, evict). */
  private removeEntry(i: number, key: string): void {
    this.noteDeadline(key, this.deadlineAt(i)?.atMs() ?? null, null);
    this.t.objects.delete(i);
    this.t.remove(i);
    if (this.onChange !== null) {
      if (this.defer) this.gone.push(key);
      else this.onChange(key, undefined);
    }
  }

  /** Compacts once removed entries are a quarter of the table (and at least compactFreeEntriesMin), or all of it. */
  private compactIfSparse(): void {
    const t = this.t;
    if ((t.free >= compactFreeEntriesMin && t.free * 4 >= t.count) || t.free === t.count) this.compact();
  }

  /**
   * Drops keys this replica holds for another (a partition it no longer owns, src/cluster
   * cluster.ts evictStrays) once their owners confirmed holding them: each key whose digest is
   * still the one given leaves the table - no delta, no record, reported to onChange as gone.
   * Deleted keys' records stay: only collection may drop them (collect), once no write they
   * cover can still arrive here; dropped earlier, such a write would come back. Returns the
   * keys dropped.
   *
   * A dropped key's contributions of this replica's actor then live only on the owners. Were
   * the actor to write the key again here (owning it once more, before a fill brought them
   * back), it would hold nothing of its own in it and start a new life (crdt/clocks.ts
   * dotBasePerMs), claiming everything of its own below the base as removed or reset - its own
   * earlier, acknowledged writes among them, everywhere the write travels. So before dropping a
   * key whose state names the current actor, `renew` is called (once per call): it must make
   * a new actor durable (a new replica epoch, persist/replica.ts) and return it, and every write
   * from then on is that actor's, which claims nothing of the old one. Keys that do not name
   * the current actor (its writes were all made elsewhere) need none: nothing of it is there to
   * claim.
   */
  evict(entries: ReadonlyArray<{ key: string; digest: bigint }>, renew: () => string): number {
    const t = this.t;
    const found: Array<{ i: number; key: string }> = [];
    let own = false;
    const me = actorUtf8(this.actor);
    for (const { key, digest } of entries) {
      const i = this.indexOf(key);
      if (i < 0 || ((t.flags[i] as number) & Flag.Absent) !== 0 || this.computeDigest(i) !== digest) continue;
      found.push({ i, key });
      if (!own && containsBytes(this.encodeAt(i, t.keyBytes(i)), me)) own = true;
    }
    if (found.length === 0) return 0;
    if (own) this.actor = internActor(renew());
    for (const { i, key } of found) this.removeEntry(i, key);
    this.compactIfSparse();
    return found.length;
  }

  /**
   * Records of keys collected lately (collect keeps them, forgetCollected lets them go). Dots and
   * counts are per key: written afresh, a collected key would count its actor's dots and rows
   * from zero again, and a member that has not collected the record yet holds those as removed
   * and would drop the new write (the chaos TTL scenario found it). So a write of a key whose
   * record is kept puts the record back first and continues from it, as if it had never been
   * collected; the record goes again once every member holds the new state.
   */
  private collectedRecords = new Map<string, Uint8Array>();

  /** The collected key's record need not be kept any longer: every member has collected it, or long enough has passed (gc.ts). */
  forgetCollected(key: string): void {
    this.collectedRecords.delete(key);
    // A Map keeps the room it grew to: give it back once a mass collection has been forgotten.
    if (this.collectedRecords.size === 0) this.collectedRecords = new Map();
  }

  /** Collected records kept (a test and metrics figure). */
  get collectedRecordsKept(): number {
    return this.collectedRecords.size;
  }

  /**
   * The entry of the key whose UTF-8 is in keyBuf[0, len), for a local write: as t.find, but a
   * key collected lately comes back as its record first (see collectedRecords), so the write
   * continues from it. -1: a new key.
   */
  private findForWrite(key: string, len: number): number {
    const i = this.t.find(this.keyBuf, len);
    if (i >= 0 || this.collectedRecords.size === 0) return i;
    const record = this.collectedRecords.get(key);
    if (record === undefined) return -1;
    this.collectedRecords.delete(key);
    const env = decodeOrFail(record, key, "state");
    if ("ok" in env) return -1; // written by encodeAt: cannot happen
    const at = this.t.insert(this.keyBuf, len);
    this.putSides(at, sidesOf(env));
    this.changed(key, at, this.clock.current().ms);
    this.noteDeadline(key, null, this.deadlineAt(at)?.atMs() ?? null);
    return at;
  }

  /** Deleted keys' records: how many, their estimated bytes, when the oldest became absent. */
  tombstones(): TombstoneStats {
    return this.tombs.stats();
  }

  /** Storage sizes (tests, metrics): entries the columns hold room for, key arena bytes, hash slots, state objects, compactions. */
  storageSizes(): { entriesCapacity: number; arenaBytes: number; hashSlots: number; objects: number; stampsCapacity: number; compactions: number } {
    return { ...this.t.sizes(), objects: this.t.objects.size, stampsCapacity: this.stamps.length, compactions: this.compactions };
  }

  private compactions = 0;

  /**
   * Rebuilds the key table without its collected entries, so their memory goes back (columns,
   * arena and hash table sized to the live keys), and moves everything indexed by entry:
   * stamps, the pending reports, tombstones, open scans; cursors of the layout before are
   * mapped through `lastRemoved`. O(table); it runs once per a quarter of the table collected.
   */
  private compact(): void {
    const t = this.t;
    const oldCount = t.count;
    const { newIndex, removed } = t.compact();
    const stamps = new Float64Array(Math.max(1024, t.sizes().entriesCapacity));
    const n = Math.min(oldCount, this.stamps.length);
    for (let i = 0; i < n; i++) {
      const j = newIndex[i] as number;
      if (j >= 0) stamps[j] = this.stamps[i] as number;
    }
    this.stamps = stamps;
    const pending: number[] = [];
    for (const i of this.pending) {
      const j = newIndex[i] as number;
      if (j >= 0) pending.push(j);
    }
    this.pending = pending;
    this.tombs.rebuild();
    for (const ref of this.scans) {
      const pos = ref.deref();
      if (pos === undefined) this.scans.delete(ref);
      else pos.at -= rankBelow(removed, pos.at);
    }
    this.generation = (this.generation + 1) % cursorGenerations;
    this.lastRemoved = removed;
    this.compactions++;
  }

  /**
   * A listing cursor in shortCursorBits bits (a partitioned cluster's scan cursor carries one
   * inside it, src/node/scan.ts): the table index and the generation modulo 32. fullCursor maps
   * it back; a cursor 2 to 31 compactions old is refused as a full one is, but one 32 or more
   * compactions old (each frees at least 1024 entries and a quarter of the table) would be
   * misread as recent: that listing may list keys twice or skip them, never changing data.
   */
  shortCursor(cursor: number): number {
    if (cursor === 0) return 0;
    const gen = Math.floor(cursor / cursorIndexSpan);
    return (gen % shortCursorGenerations) * cursorIndexSpan + (cursor % cursorIndexSpan);
  }

  /** The cursor a shortCursor stands for (refused by listKeys as expired when it is neither of the last two generations). */
  fullCursor(short: number): number {
    const c = Math.max(0, Math.floor(short));
    if (c === 0 || !Number.isSafeInteger(c) || c >= shortCursorGenerations * cursorIndexSpan) return c === 0 ? 0 : Number.MAX_SAFE_INTEGER;
    const low = Math.floor(c / cursorIndexSpan);
    const index = c % cursorIndexSpan;
    for (const back of [0, 1, 2]) {
      const gen = (this.generation + cursorGenerations - back) % cursorGenerations;
      if (gen % shortCursorGenerations === low) return gen * cursorIndexSpan + index;
    }
    return Number.MAX_SAFE_INTEGER;
  }

  /** The table index a cursor stands for, or the refusal of one that cannot be mapped. */
  private cursorIndex(cursor: number): number | ListingRefusal {
    const c = Math.max(0, Math.floor(cursor));
    if (!Number.isSafeInteger(c)) return foreignCursor;
    if (c === 0) return 0;
    const gen = Math.floor(c / cursorIndexSpan);
    const index = c % cursorIndexSpan;
    if (gen === this.generation) return index;
    const prev = (this.generation + cursorGenerations - 1) % cursorGenerations;
    if (gen === prev && this.lastRemoved !== null) return index - rankBelow(this.lastRemoved, index);
    return gen < cursorGenerations && this.lastRemoved !== null ? expiredCursor : foreignCursor;
  }

  /** The cursor of table index i (0 at or past the end). */
  private cursorAt(i: number): number {
    return i >= this.t.count ? 0 : this.generation * cursorIndexSpan + i;
  }

  /** Entry i's encoded KeyState size (what a tombstone's record holds), without copying it out. */
  private encodedSize(i: number): number {
    this.writeAt(i, this.t.keyBytes(i));
    return this.w.pos;
  }

  /** nowMs: a key whose deadline is at or before it reads as missing (default: the latest HLC time this engine knows). */
  get(key: string, nowMs?: number): KeyValue | undefined {
    const i = this.indexOf(key);
    if (i < 0 || ((this.t.flags[i] as number) & Flag.Absent) !== 0) return undefined;
    const slot = this.t.slot[i];
    if (slot === Slot.GCounter || slot === Slot.PNCounter) return this.counterValue(i);
    const o = this.t.objects.get(i);
    const kb = this.t.keyBytes(i);
    if (o?.kind === "conflicted") {
      const atMs = o.deadline()?.atMs() ?? null;
      if (atMs !== null && atMs <= (nowMs ?? this.clock.current().ms)) return undefined;
      const hidden = o.hidden();
      const main: KeyValue = valueOf(o.visible().state, kb);
      if (hidden.length > 0) main.conflicts = hidden.map((side) => valueOf(side.state, kb));
      if (atMs !== null) main.expiresAtMs = atMs;
      return main;
    }
    return valueOf(o as CrdtState, kb);
  }

  /** Joins an encoded KeyDelta. */
  mergeDelta(bytes: Uint8Array, nowMs: number, opts?: MergeOptions): MergeResult {
    const i = this.compactMerge(bytes, 0, bytes.length, null, nowMs);
    if (i >= 0) return { ok: true, key: decodeKey(this.t.keyBytes(i)), changed: this.compactChanged, skew: null, typeConflict: false };
    const env = decodeOrFail(bytes, null, "delta");
    if ("ok" in env) return env;
    return this.tooFarAhead(env.key, env, nowMs, opts) ?? this.join(env.key, env, nowMs);
  }

  /**
   * The refusal of a peer's LWW write (on any typed side of the envelope) stamped more than
   * remoteAheadMsMax ahead of nowMs, or null. Refused before join() so the clock never
   * observes it: one such timestamp near 2^48 would otherwise pin this clock, and through
   * later writes every clock in the cluster.
   */
  private tooFarAhead(key: string, env: KeyEnvelope, nowMs: number, opts: MergeOptions | undefined): MergeResult | null {
    if ((opts?.origin ?? "peer") === "own") return null;
    for (const side of sidesOf(env)) {
      const s = side.state;
      // Every timestamp the register carries, not only the visible write's: concurrent
      // entries and a deleted write's stamp in its context are observed by join() too.
      const top = s.kind === "lww" ? s.maxTimestamp() : null;
      if (top === null) continue;
      const aheadMs = top.ms - nowMs;
      if (aheadMs <= this.remoteAheadMsMax) continue;
      return {
        ok: false,
        error: { code: "OUT_OF_RANGE", message: `LWW timestamp ${top.ms} ms is ${aheadMs} ms ahead of this node's clock (limit ${this.remoteAheadMsMax} ms)` },
        clockAhead: { key, remoteMs: top.ms, physicalMs: nowMs, aheadMs },
      };
    }
    return null;
  }

  /** Whether the last compactMerge changed its entry. */
  private compactChanged = false;

  /**
   * The common delta or state - one counter row for a compact counter key - in
   * bytes[start, end), merged (or, with loadKey, loaded) straight into the columns. Returns the
   * entry's index, or -1 for anything else, which then takes the general path; this accepts
   * only input the general decoder accepts (on any doubt: -1, and the general path decides).
   *
   * Hand-written rather than through Reader because WAL replay runs it once per record - a
   * million at a node's start - and measured there (bun --cpu-prof-md on a 1M-key restart),
   * the Reader objects, the [field, type] pairs, the key's string and the result object it
   * used to build cost about a fifth of the restart: it now allocates nothing and decodes the
   * key only where a caller needs it.
   */
  private compactMerge(bytes: Uint8Array, start: number, end: number, loadKey: string | null, nowMs: number): number {
    let version = 0;
    let type = 0;
    let keyStart = -1;
    let keyLen = 0;
    let stateStart = -1;
    let stateEnd = -1;
    let actorStart = -1;
    let actorLen = 0;
    let p = 0;
    let n = 0;
    let stamp = -1;
    let at = start;
    while (at < end) {
      const tag = varintAt(bytes, at, end);
      if (tag < 0) return -1;
      at = varintEnd;
      if (tag === tagVersion) { version = varintAt(bytes, at, end); if (version < 0) return -1; at = varintEnd; }
      else if (tag === tagStamp && stamp < 0) { stamp = varintAt(bytes, at, end); if (stamp < 0) return -1; at = varintEnd; }
      else if (tag === tagType) { type = varintAt(bytes, at, end); if (type < 0) return -1; at = varintEnd; }
      else if (tag === tagKey) {
        keyLen = varintAt(bytes, at, end);
        if (keyLen < 0 || keyLen > keyBytesMax || varintEnd + keyLen > end) return -1;
        keyStart = varintEnd;
        at = keyStart + keyLen;
      } else if (tag === tagState) {
        const l = varintAt(bytes, at, end);
        if (l < 0 || varintEnd + l > end) return -1;
        stateStart = varintEnd;
        stateEnd = stateStart + l;
        at = stateEnd;
      } else return -1;
    }
    // No stamp reads as 0 (the previous release's records); one the general decoder refuses goes there.
    if (stamp < 0) stamp = 0;
    else if (stamp > hlcMsMax) return -1;
    if ((version !== 1 && version !== 2) || (type !== CrdtType.GCounter && type !== CrdtType.PNCounter) || keyLen < 1 || stateStart < 0) return -1;
    // The state: exactly one row, then at most that actor's reset row with p = n (a life's base,
    // crdt/clocks.ts dotBase; a G-Counter's has no n).
    at = stateStart;
    if (at >= stateEnd || bytes[at] !== tagRow) return -1;
    const rowLen = varintAt(bytes, at + 1, stateEnd);
    if (rowLen < 0 || rowLen > keyBytesMax || varintEnd + rowLen > stateEnd) return -1;
    at = varintEnd;
    const rowEnd = at + rowLen;
    while (at < rowEnd) {
      const tag = varintAt(bytes, at, rowEnd);
      if (tag < 0) return -1;
      at = varintEnd;
      if (tag === tagRowActor) {
        actorLen = varintAt(bytes, at, rowEnd);
        if (actorLen < 0 || actorLen > 255 || varintEnd + actorLen > rowEnd) return -1;
        actorStart = varintEnd;
        at = actorStart + actorLen;
      } else if (tag === tagRowP) { p = varintAt(bytes, at, rowEnd); if (p < 0) return -1; at = varintEnd; }
      else if (tag === tagRowN && type === CrdtType.PNCounter) { n = varintAt(bytes, at, rowEnd); if (n < 0) return -1; at = varintEnd; }
      else return -1;
    }
    if (actorLen < 1 || (p === 0 && n === 0)) return -1;
    let r = 0;
    if (at < stateEnd) {
      if (bytes[at] !== tagReset) return -1;
      const resetLen = varintAt(bytes, at + 1, stateEnd);
      if (resetLen < 0 || varintEnd + resetLen !== stateEnd) return -1;
      at = varintEnd;
      let rp = 0;
      let rn = 0;
      let named = false;
      while (at < stateEnd) {
        const tag = varintAt(bytes, at, stateEnd);
        if (tag < 0) return -1;
        at = varintEnd;
        if (tag === tagRowActor && !named) {
          const len = varintAt(bytes, at, stateEnd);
          if (len !== actorLen || varintEnd + len > stateEnd) return -1;
          for (let k = 0; k < len; k++) if (bytes[varintEnd + k] !== bytes[actorStart + k]) return -1;
          named = true;
          at = varintEnd + len;
        } else if (tag === tagRowP) { rp = varintAt(bytes, at, stateEnd); if (rp < 0) return -1; at = varintEnd; }
        else if (tag === tagRowN && type === CrdtType.PNCounter) { rn = varintAt(bytes, at, stateEnd); if (rn < 0) return -1; at = varintEnd; }
        else return -1;
      }
      if (!named || rp === 0 || (type === CrdtType.PNCounter && rn !== rp)) return -1;
      r = rp;
    }
    for (let k = 0; k < keyLen; k++) {
      const c = bytes[keyStart + k] as number;
      if (c >= 0x80) return -1; // non-ASCII keys: the general path validates UTF-8
      this.keyBuf[k] = c;
    }
    const actor = this.actorFromUtf8(bytes, actorStart, actorLen);
    if (actor === null) return -1;
    const t = this.t;
    const slot = type === CrdtType.GCounter ? Slot.GCounter : Slot.PNCounter;
    let i = t.find(this.keyBuf, keyLen);
    if (loadKey !== null) {
      if (decodeKey(this.keyBuf.subarray(0, keyLen)) !== loadKey) return -1;
      if (p <= r && n <= r) return -1; // counts nothing: absent, an object (storeAt)
      if (r > 0 && r !== dotBase(stamp)) return -1; // a reset row the stamp does not give: an object
      if (i < 0) i = t.insert(this.keyBuf, keyLen);
      this.tombs.release(i);
      t.objects.delete(i);
      this.setStamp(i, stamp);
      t.slot[i] = slot;
      t.actor[i] = actor;
      t.p[i] = p;
      t.n[i] = n;
      t.flags[i] = r > 0 ? (t.flags[i] as number) | Flag.Based : (t.flags[i] as number) & ~Flag.Based;
      this.changed(loadKey, i, nowMs);
      this.compactChanged = true;
      return i;
    }
    if (i >= 0 && (t.slot[i] !== slot || (t.actor[i] !== actor && t.actor[i] !== noActor))) return -1;
    // The join, per column a max; it must count something (else: absent, an object, storeAt),
    // and its reset row must be the one its stamp (the least) gives (Flag.Based), else an object.
    const fresh = i < 0 || t.actor[i] === noActor;
    const have = fresh ? 0 : this.resetAt(i);
    const jp = fresh || p > (t.p[i] as number) ? p : (t.p[i] as number);
    const jn = fresh || n > (t.n[i] as number) ? n : (t.n[i] as number);
    const jr = r > have ? r : have;
    const js = i < 0 || stamp < (this.stamps[i] as number) ? stamp : (this.stamps[i] as number);
    if (jp <= jr && jn <= jr) return -1;
    if (jr > 0 && jr !== dotBase(js)) return -1;
    if (i < 0) {
      i = t.insert(this.keyBuf, keyLen);
      this.setStamp(i, stamp);
      t.slot[i] = slot;
      t.actor[i] = noActor;
      t.p[i] = 0;
      t.n[i] = 0;
    }
    const older = stamp < (this.stamps[i] as number); // a compact counter: its stamp is in the column
    if (older) this.setStamp(i, stamp);
    const based = jr > 0;
    const changed = older || t.actor[i] === noActor || jp !== t.p[i] || jn !== t.n[i] || based !== (((t.flags[i] as number) & Flag.Based) !== 0);
    if (changed) {
      t.actor[i] = actor;
      t.p[i] = jp;
      t.n[i] = jn;
      t.flags[i] = based ? (t.flags[i] as number) | Flag.Based : (t.flags[i] as number) & ~Flag.Based;
      this.changed(null, i, nowMs);
    }
    this.compactChanged = changed;
    return i;
  }

  /**
   * Joins one record of this node's own WAL, bytes[start, end) (a KeyDelta): what recovery
   * calls a million times at start, so it builds no result; the error's text, or null.
   */
  replayOwn(bytes: Uint8Array, start: number, end: number, nowMs: number): string | null {
    if (this.compactMerge(bytes, start, end, null, nowMs) >= 0) return null;
    const r = this.mergeDelta(bytes.subarray(start, end), nowMs, ownOrigin);
    return r.ok ? null : r.error.message;
  }

  private lastActor: ActorId | null = null;

  /** The interned actor whose id is the ASCII bytes buf[start, start+len), or null. */
  private actorFromUtf8(buf: Uint8Array, start: number, len: number): ActorId | null {
    const last = this.lastActor;
    if (last !== null) {
      const b = actorUtf8(last);
      if (b.length === len) {
        let k = 0;
        while (k < len && b[k] === buf[start + k]) k++;
        if (k === len) return last;
      }
    }
    for (let k = 0; k < len; k++) if ((buf[start + k] as number) >= 0x80) return null;
    try {
      this.lastActor = internActor(keyDecoder.decode(buf.subarray(start, start + len)));
    } catch (e) {
      if (e instanceof CrdtError) return null;
      throw e;
    }
    return this.lastActor;
  }

  /** Joins an encoded KeyState of `key` (anti-entropy). */
  mergeState(key: string, bytes: Uint8Array, nowMs: number, opts?: MergeOptions): MergeResult {
    const env = decodeOrFail(bytes, key, "state");
    if ("ok" in env) return env;
    return this.tooFarAhead(key, env, nowMs, opts) ?? this.join(key, env, nowMs);
  }

  /**
   * Joins the typed states of an envelope into `key`, type by type: a type the key holds is
   * merged (and keeps the lesser stamp), any other is added beside it - never replaced, so a
   * type conflict loses no write (see typed.ts).
   */
  private join(key: string, env: KeyEnvelope, nowMs: number): MergeResult {
    const incoming = sidesOf(env);
    let skew: ClockSkew | null = null;
    for (const side of incoming) {
      const s = side.state;
      // The greatest stamp the register has seen, so this node's next write to it follows
      // every write it holds or a delete removed.
      const top = s.kind === "lww" ? s.maxTimestamp() : null;
      if (top !== null) skew = this.clock.observe(top, nowMs) ?? skew;
    }
    const len = this.encodeKey(key);
    if (len < 0) return invalidKey; // the decoder already checked; a lone surrogate cannot survive UTF-8
    const i = this.t.find(this.keyBuf, len);
    if (i < 0) {
      const at = this.t.insert(this.keyBuf, len);
      this.putSides(at, incoming);
      this.changed(key, at, nowMs);
      this.noteDeadline(key, null, this.deadlineAt(at)?.atMs() ?? null);
      return { ok: true, key, changed: true, skew, typeConflict: incoming.length > 1 && this.hidesPresentSide(at) };
    }
    const sides = this.sidesAt(i);
    const before = this.deadlineAt(i)?.atMs() ?? null;
    // Refuse before anything changes: a join past the stored bound (limits.ts) could not be
    // logged, snapshotted or shipped.
    for (const side of incoming) {
      const have = findSide(sides, side.type);
      const refusal = have === undefined ? null : mergeRefusal(have.state, side.state);
      if (refusal !== null) return fail("LIMIT_EXCEEDED", `key "${key.slice(0, 64)}": ${refusal}`);
    }
    const total = sidesMergeRefusal(sides, incoming);
    if (total !== null) return fail("LIMIT_EXCEEDED", `key "${key.slice(0, 64)}": ${total}`);
    let changed = false;
    let added = false;
    // Expiry across replicas (src/crdt/deadline.ts): a deadline this replica holds that the
    // sender has executed is executed here first, so what the sender wrote after its expiry is
    // not removed with it; content that comes still under a deadline this replica has executed
    // was written before it, and is removed as it arrives (its writer will remove it too).
    const here = findSide(sides, CrdtType.Deadline)?.state;
    const there = findSide(incoming, CrdtType.Deadline)?.state;
    if (here?.kind === "deadline" && there?.kind === "deadline") {
      const expireHere = here.allExpiredBy(there.expired);
      const staleThere = there.allExpiredBy(here.expired);
      if (expireHere) {
        this.expireSides(sides);
        changed = true;
      }
      if (staleThere) {
        for (const side of incoming) if (side.state.kind !== "deadline") kindOf(side.state).removeObserved(side.state);
      }
    }
    for (const side of incoming) {
      const have = findSide(sides, side.type);
      if (have === undefined) {
        sides.push(side);
        changed = added = true;
        continue;
      }
      if (joinStates(have.state, side.state)) changed = true;
      if (side.createdMs < have.createdMs) {
        have.createdMs = side.createdMs;
        changed = true;
      }
    }
    if (changed) {
      this.putSides(i, sides);
      this.changed(key, i, nowMs);
      this.noteDeadline(key, before, this.deadlineAt(i)?.atMs() ?? null);
    }
    // A conflict is two types shown at once: a deleted key written again with another type is not one.
    return { ok: true, key, changed, skew, typeConflict: added && this.hidesPresentSide(i) };
  }

  /** Entry i's typed states, as objects the caller may merge into (put them back with putSides). */
  private sidesAt(i: number): TypedState[] {
    const o = this.t.slot[i] === Slot.Object ? this.t.objects.get(i) : undefined;
    if (o?.kind === "conflicted") return o.sides;
    return [{ type: this.typeAt(i), createdMs: this.stampAt(i), state: this.stateAt(i) }];
  }

  /** Stores entry i's typed states (replacing what it held): one in place (compact when it fits), more as a Conflicted. */
  private putSides(i: number, sides: TypedState[]): void {
    const t = this.t;
    if (sides.length === 1) {
      const only = sides[0] as TypedState;
      if (t.slot[i] === Slot.Object && t.objects.get(i)?.kind === "conflicted") t.objects.delete(i);
      // The stamp first: storeAt keeps a counter compact only if its reset row is the stamp's base.
      this.setStamp(i, only.createdMs);
      this.storeAt(i, only.state);
      return;
    }
    t.slot[i] = Slot.Object;
    t.objects.set(i, new Conflicted(sides));
  }

  /** Does entry i show one type and hold another with something in it (a type conflict)? */
  private hidesPresentSide(i: number): boolean {
    const o = this.t.slot[i] === Slot.Object ? this.t.objects.get(i) : undefined;
    return o?.kind === "conflicted" && o.hidden().length > 0;
  }

  /** Entries with Flag.Absent (deleted keys). */
  private absentCount = 0;

  /** Does entry i hold anything a read shows? */
  private presentAt(i: number): boolean {
    const t = this.t;
    if (t.slot[i] !== Slot.Object) return t.actor[i] !== noActor;
    const o = t.objects.get(i);
    if (o === undefined) return false;
    return o.kind === "conflicted" ? o.present() : kindOf(o).present(o);
  }

  /** Per-entry creation stamps of single-type keys (a conflicted key's are in its Conflicted). */
  private stamps = new Float64Array(1024);

  /** Entry i's creation stamp (of its visible state when conflicted). */
  private stampAt(i: number): number {
    const o = this.t.slot[i] === Slot.Object ? this.t.objects.get(i) : undefined;
    if (o?.kind === "conflicted") return o.visible().createdMs;
    return i < this.stamps.length ? (this.stamps[i] as number) : 0;
  }

  private setStamp(i: number, ms: number): void {
    if (i >= this.stamps.length) {
      const b = new Float64Array(Math.max(this.stamps.length * 2, i + 1));
      b.set(this.stamps);
      this.stamps = b;
    }
    this.stamps[i] = ms;
  }

  /** Inserts the key in keyBuf[0, len) (just looked up, absent) as created here now. */
  private insertKey(len: number, nowMs: number): number {
    const i = this.t.insert(this.keyBuf, len);
    // The HLC, not the wall clock: a key created after this node saw a later stamp sorts after it.
    this.setStamp(i, this.clock.now(nowMs).ms);
    return i;
  }

  /** The key's state as an encoded KeyState. */
  encodeState(key: string): Uint8Array | undefined {
    const i = this.indexOf(key);
    return i < 0 ? undefined : this.encodeAt(i, this.t.keyBytes(i));
  }

  /** Entry i's KeyState envelope. */
  private encodeAt(i: number, keyBytes: Uint8Array): Uint8Array {
    this.writeAt(i, keyBytes);
    return this.w.finish();
  }

  /** Writes entry i's KeyState envelope into w (from its start). */
  private writeAt(i: number, keyBytes: Uint8Array): void {
    const t = this.t;
    const w = this.w;
    w.reset();
    const slot = t.slot[i];
    if (slot === Slot.Object) {
      const o = t.objects.get(i);
      if (o?.kind === "conflicted") {
        const v = o.visible();
        writeEnvelope(w, keyBytes, v.state, v.createdMs, o.others());
      } else {
        writeEnvelope(w, keyBytes, o as CrdtState, this.stampAt(i));
      }
    } else {
      const g = slot === Slot.GCounter;
      const at = beginEnvelope(w, keyBytes, g ? CrdtType.GCounter : CrdtType.PNCounter, this.stampAt(i));
      writeCompactCounter(w, g, t.actor[i] as number, t.p[i] as number, t.n[i] as number, this.resetAt(i));
      w.end(at);
    }
  }

  /**
   * Replaces `key`'s state with an encoded KeyState of that key (recovery from a snapshot).
   * nowMs: when a loaded deleted record counts as having become absent (tombstones()); without
   * it, the latest HLC time this engine knows, which before any LWW state is restored is 0.
   */
  loadState(key: string, bytes: Uint8Array, nowMs?: number): LoadResult {
    if (this.compactMerge(bytes, 0, bytes.length, key, nowMs ?? this.clock.current().ms) >= 0) return { ok: true, key };
    const env = decodeOrFail(bytes, key, "state");
    if ("ok" in env) return env;
    const sides = sidesOf(env);
    for (const side of sides) {
      const top = side.state.kind === "lww" ? side.state.maxTimestamp() : null;
      if (top !== null) this.clock.restore(top);
    }
    const len = this.encodeKey(key);
    if (len < 0) return invalidKey;
    let i = this.t.find(this.keyBuf, len);
    const before = i >= 0 ? (this.deadlineAt(i)?.atMs() ?? null) : null;
    if (i < 0) i = this.t.insert(this.keyBuf, len);
    this.putSides(i, sides);
    this.changed(key, i, nowMs ?? this.clock.current().ms);
    this.noteDeadline(key, before, this.deadlineAt(i)?.atMs() ?? null);
    return { ok: true, key };
  }

  digest(key: string): bigint | undefined {
    const i = this.indexOf(key);
    if (i < 0) return undefined;
    return this.computeDigest(i);
  }

  /** With deferChanges: reports every key changed since the last call to onChange (see the API notes). */
  reportChanges(): number {
    // Gone keys first: a key collected and then written again is reported gone, then with its
    // new digest (its new entry is in `pending`, after every entry it could have had before).
    const gone = this.gone;
    if (gone.length > 0) {
      this.gone = [];
      let g = 0;
      try {
        for (; g < gone.length; g++) this.onChange?.(gone[g] as string, undefined);
      } finally {
        if (g < gone.length) this.gone = gone.slice(g).concat(this.gone);
      }
    }
    const list = this.pending;
    if (list.length === 0) return gone.length;
    this.pending = [];
    const t = this.t;
    let k = 0;
    let skipped = 0;
    try {
      for (; k < list.length; k++) {
        const i = list[k] as number;
        const f = t.flags[i] as number;
        t.flags[i] = f & ~Flag.ReportPending;
        // A collected entry: reported through `gone`.
        if ((f & Flag.Free) !== 0) {
          skipped++;
          continue;
        }
        try {
          this.onChange?.(decodeKey(t.keyBytes(i)), this.computeDigest(i));
        } catch (e) {
          t.flags[i] = f;
          throw e;
        }
      }
    } finally {
      // A subscriber that throws (a full hash tree) leaves the rest pending for the next call,
      // instead of flagged as pending yet in no list, which would silence them for good.
      if (k < list.length) this.pending = list.slice(k).concat(this.pending);
    }
    return gone.length + list.length - skipped;
  }

  /** Scans entries in insertion order; see the API notes at the top. */
  /**
   * Scans entries in insertion order; see the API notes at the top. A compaction between two
   * chunks moves the scan's position with the entries (it is registered in `scans` until
   * done), rather than waiting for open scans to end: a scan its user abandons would then hold
   * every compaction, and memory, back for good.
   */
  scan(): KeyScan {
    const pos: ScanPosition = { at: 0 };
    const ref = new WeakRef(pos);
    this.scans.add(ref);
    let done = false;
    const self = this;
    const finish = (): void => {
      done = true;
      self.scans.delete(ref);
    };
    return {
      get done() {
        return done;
      },
      next(maxKeys = scanChunkKeysMax, maxBytes = scanChunkBytesMax): ScanItem[] {
        const keysMax = Math.max(1, Math.min(maxKeys, scanChunkKeysMax));
        const bytesMax = Math.max(1, Math.min(maxBytes, scanChunkBytesMax));
        const out: ScanItem[] = [];
        if (done) return out;
        const t = self.t;
        let bytes = 0;
        while (out.length < keysMax && bytes < bytesMax && pos.at < t.count) {
          const i = pos.at++;
          if (((t.flags[i] as number) & Flag.Free) !== 0) continue;
          const kb = t.keyBytes(i);
          const state = self.encodeAt(i, kb);
          out.push({ key: decodeKey(kb), state });
          bytes += state.length;
        }
        if (pos.at >= t.count) finish();
        return out;
      },
    };
  }

  /** Writes key's UTF-8 into keyBuf; returns its length, or -1 if not a valid key. */
  private encodeKey(key: string): number {
    const n = key.length;
    if (n === 0 || n > keyBytesMax) return -1;
    const b = this.keyBuf;
    for (let k = 0; k < n; k++) {
      const c = key.charCodeAt(k);
      if (c >= 0x80) {
        if (!key.isWellFormed()) return -1;
        const { written } = keyEncoder.encodeInto(key, b);
        return written <= keyBytesMax ? written : -1;
      }
      b[k] = c;
    }
    return n;
  }

  private indexOf(key: string): number {
    const len = this.encodeKey(key);
    return len < 0 ? -1 : this.t.find(this.keyBuf, len);
  }

  /** Entry i's (visible) type. */
  private typeAt(i: number): CrdtType {
    const slot = this.t.slot[i];
    if (slot === Slot.GCounter) return CrdtType.GCounter;
    if (slot === Slot.PNCounter) return CrdtType.PNCounter;
    const o = this.t.objects.get(i);
    return o?.kind === "conflicted" ? o.visible().type : crdtTypeOf(o as CrdtState);
  }

  /**
   * The (visible) state of entry i: the stored object, or a fresh object built from a compact
   * counter. Local ops act on this one only; the conflict sides change only through merges.
   */
  private stateAt(i: number): CrdtState {
    const t = this.t;
    const slot = t.slot[i];
    if (slot === Slot.Object) {
      const o = t.objects.get(i);
      return o?.kind === "conflicted" ? o.visible().state : (o as CrdtState);
    }
    const a = t.actor[i] as number;
    const r = this.resetAt(i);
    if (slot === Slot.GCounter) {
      if (a === noActor) return new GCounter();
      return new GCounter([a as ActorId], [BigInt(t.p[i] as number)], r === 0 ? null : new GCounter([a as ActorId], [BigInt(r)]));
    }
    if (a === noActor) return new PNCounter();
    const reset = r === 0 ? null : new PNCounter([a as ActorId], [BigInt(r)], [BigInt(r)]);
    return new PNCounter([a as ActorId], [BigInt(t.p[i] as number)], [BigInt(t.n[i] as number)], reset);
  }

  /**
   * Stores s at entry i, in the compact columns when it fits there. On a conflicted entry it
   * replaces the state of s's type (the visible one: local ops touch no other).
   */
  private storeAt(i: number, s: CrdtState): void {
    const t = this.t;
    if (t.slot[i] === Slot.Object) {
      const o = t.objects.get(i);
      if (o?.kind === "conflicted") {
        o.put(s);
        return;
      }
    }
    // A counter a delete touched keeps its reset rows (what the delete observed, so nothing it
    // removed comes back): the columns have room for one reset row only, the row's own actor's
    // with equal p and n - the one its life's base gives (crdt/clocks.ts dotBase) - so it stays an
    // object. A counter that counts nothing above its resets stays an object too: it is absent,
    // and an absent entry's p and n columns hold its tombstone (tombstones.ts).
    // The one reset row the columns keep is the one the entry's stamp gives (Flag.Based).
    let r = compactResetOf(s);
    if (r > 0 && r !== dotBase(this.stampAt(i))) r = -1;
    t.flags[i] = (t.flags[i] as number) & ~Flag.Based;
    if (r >= 0 && s.kind === "gcounter" && s.actors.length === 1 && (s.counts[0] as bigint) <= safeMaxBig && Number(s.counts[0] as bigint) > r) {
      this.tombs.release(i);
      t.slot[i] = Slot.GCounter;
      t.actor[i] = s.actors[0] as number;
      t.p[i] = Number(s.counts[0] as bigint);
      t.n[i] = 0;
      if (r > 0) t.flags[i] = (t.flags[i] as number) | Flag.Based;
      t.objects.delete(i);
    } else if (r >= 0 && s.kind === "pncounter" && s.actors.length === 1 && (s.p[0] as bigint) <= safeMaxBig && (s.n[0] as bigint) <= safeMaxBig
      && (Number(s.p[0] as bigint) > r || Number(s.n[0] as bigint) > r)) {
      this.tombs.release(i);
      t.slot[i] = Slot.PNCounter;
      t.actor[i] = s.actors[0] as number;
      t.p[i] = Number(s.p[0] as bigint);
      t.n[i] = Number(s.n[0] as bigint);
      if (r > 0) t.flags[i] = (t.flags[i] as number) | Flag.Based;
      t.objects.delete(i);
    } else {
      t.slot[i] = Slot.Object;
      t.objects.set(i, s);
    }
  }

  /**
   * After a change to entry i: tell the subscriber its digest, or (deferChanges) note it. No
   * digest is stored: 16 bytes per key would cost more than computing one when it is asked for
   * (once per changed key per anti-entropy look, and once per key when the hash tree is built).
   */
  /** key: the key's string, or null to decode it from the table if a subscriber needs it. */
  /** nowMs: the time of the change (when the key became absent, for tombstones()). */
  private changed(key: string | null, i: number, nowMs: number): void {
    const t = this.t;
    const absent = !this.presentAt(i);
    const was = ((t.flags[i] as number) & Flag.Absent) !== 0;
    if (absent !== was) {
      t.flags[i] = (t.flags[i] as number) ^ Flag.Absent;
      this.absentCount += absent ? 1 : -1;
      if (absent && this.dueLive.size > 0) this.dueLive.delete(key ?? decodeKey(t.keyBytes(i))); // counted out of keyCountAt
      if (!absent) {
        // Present again (a merge brought content back) under a deadline: filed again, so that
        // keyCountAt counts it out once it has come (its earlier entry may be spent).
        const at = this.deadlineAt(i)?.atMs() ?? null;
        if (at !== null) this.due.push(at, key ?? decodeKey(t.keyBytes(i)));
      }
      if (absent) {
        // Its p and n columns will hold the tombstone: only compact counters use them, and one is never absent (storeAt).
        assert(t.slot[i] === Slot.Object, "an absent entry is a state object");
        this.tombs.add(i, nowMs, this.encodedSize(i));
      } else this.tombs.release(i);
    } else if (absent) {
      this.tombs.resize(i, this.encodedSize(i));
    }
    if (!this.defer) {
      if (this.onChange !== null) this.onChange(key ?? decodeKey(t.keyBytes(i)), this.computeDigest(i));
      return;
    }
    const f = t.flags[i] as number;
    if (this.onChange !== null && (f & Flag.ReportPending) === 0) {
      t.flags[i] = f | Flag.ReportPending;
      this.pending.push(i);
    }
  }

  /** Entry i's digest, from its key and canonical encoding (the key binds it: digest.ts). */
  private computeDigest(i: number): bigint {
    const t = this.t;
    const w = this.w;
    w.reset();
    w.bytes(t.keyBytes(i)); // varint length ++ key
    const slot = t.slot[i];
    const o = slot === Slot.Object ? t.objects.get(i) : undefined;
    if (o?.kind === "conflicted") {
      // 0 is no type: a conflicted key never hashes like a single one. Sides in type order.
      w.uint(0);
      for (const side of o.sides) {
        w.uint(side.type);
        w.uint(side.createdMs);
        const at = w.begin(1);
        writeState(w, side.state);
        w.end(at);
      }
    } else if (o !== undefined) {
      const s = o as CrdtState;
      w.uint(crdtTypeOf(s));
      w.uint(this.stampAt(i));
      writeState(w, s);
    } else {
      w.uint(slot === Slot.GCounter ? CrdtType.GCounter : CrdtType.PNCounter);
      w.uint(this.stampAt(i));
      writeCompactCounter(w, slot === Slot.GCounter, t.actor[i] as number, t.p[i] as number, t.n[i] as number, this.resetAt(i));
    }
    digest128(w.buf, 0, w.pos);
    return digestOf(digestOut.w0, digestOut.w1, digestOut.w2, digestOut.w3);
  }
}

/**
 * The canonical state bytes of a counter with at most one row and, when r > 0, that actor's reset
 * row (r, r) (same bytes as writeState).
 */
export function writeCompactCounter(w: Writer, g: boolean, actor: number, p: number, n: number, r: number): void {
  if (actor === noActor) return;
  const utf8 = actorUtf8(actor as ActorId);
  const at = w.begin(1);
  w.tag(1, WireType.Bytes);
  w.bytes(utf8);
  if (g || p !== 0) { w.tag(2, WireType.Varint); w.uint(p); }
  if (!g && n !== 0) { w.tag(3, WireType.Varint); w.uint(n); }
  w.end(at);
  if (r === 0) return;
  const rs = w.begin(2);
  w.tag(1, WireType.Bytes);
  w.bytes(utf8);
  w.tag(2, WireType.Varint);
  w.uint(r);
  if (!g) { w.tag(3, WireType.Varint); w.uint(r); }
  w.end(rs);
}

/**
 * The reset row a counter's compact form keeps (KeyTable.r): 0 when it has none, r when its
 * resets are exactly its one actor's (r, r) - where a life's base starts the row
 * (crdt/clocks.ts dotBase) - and -1 for anything else (it stays an object).
 */
function compactResetOf(s: CrdtState): number {
  if (s.kind === "gcounter") {
    const x = s.resets;
    if (x === null) return 0;
    if (x.actors.length !== 1 || s.actors.length !== 1 || x.actors[0] !== s.actors[0]) return -1;
    const c = x.counts[0] as bigint;
    return c <= safeMaxBig ? Number(c) : -1;
  }
  if (s.kind === "pncounter") {
    const x = s.resets;
    if (x === null) return 0;
    if (x.actors.length !== 1 || s.actors.length !== 1 || x.actors[0] !== s.actors[0] || x.p[0] !== x.n[0]) return -1;
    const c = x.p[0] as bigint;
    return c <= safeMaxBig ? Number(c) : -1;
  }
  return -1;
}

/** Where varintAt stopped. */
let varintEnd = 0;

/**
 * A varint at bytes[at, end) as the general decoder takes it (at most 8 bytes, minimal, at most
 * 2^53 - 1), or -1 for anything it would refuse or that is cut short; sets varintEnd.
 */
function varintAt(bytes: Uint8Array, at: number, end: number): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 8 && at + i < end; i++) {
    const b = bytes[at + i] as number;
    result += (b & 0x7f) * mul;
    if (b < 0x80) {
      if ((i > 0 && b === 0) || result > Number.MAX_SAFE_INTEGER) return -1;
      varintEnd = at + i + 1;
      return result;
    }
    mul *= 0x80;
  }
  return -1;
}

const ownOrigin: MergeOptions = { origin: "own" };

/** A stored key's string (TextDecoder beats String.fromCharCode(...b) even for ASCII in Bun). */
function decodeKey(b: Uint8Array): string {
  return keyDecoder.decode(b);
}

/** An envelope's typed states: its state, then its conflict sides. */
function sidesOf(env: KeyEnvelope): TypedState[] {
  return [{ type: env.type, createdMs: env.createdMs, state: env.state }, ...env.conflicts];
}

function findSide(sides: readonly TypedState[], type: CrdtType): TypedState | undefined {
  for (const s of sides) if (s.type === type) return s;
  return undefined;
}

/** Bytes a local write adds to a key at most, besides rows and dots (the several-types bound). */
function writeBytes(op: EngineOp): number {
  switch (op.kind) {
    case "incr":
    case "decr":
      return 0;
    case "set":
    case "setMv":
      return op.value.length;
    case "sadd":
    case "srem": {
      let n = 0;
      for (const m of op.members) n += m.length + 32;
      return op.kind === "sadd" ? n : 0;
    }
  }
}

/** Can op write a state of kind `kind` (which kind a deleted key's write goes into)? */
function opFits(op: EngineOp, kind: KindName): boolean {
  switch (op.kind) {
    case "incr":
      // As on a new key: unspecified means a PN-Counter.
      return kind === (op.counter ?? "pncounter");
    case "decr":
      return kind === "pncounter";
    case "set":
      return kind === "lww";
    case "setMv":
      return kind === "mv";
    case "sadd":
    case "srem":
      return kind === "set";
  }
}

/** The value of state s of the key whose UTF-8 is keyBytes (MV contexts are bound to it). */
function valueOf(s: CrdtState, keyBytes: Uint8Array): TypedValue {
  return kindOf(s).value(s, keyBytes);
}

export type { Hlc };

/** Does `hay` contain `needle` (non-empty) as a run of bytes? */
function containsBytes(hay: Uint8Array, needle: Uint8Array): boolean {
  const first = needle[0] as number;
  const last = hay.length - needle.length;
  outer: for (let i = hay.indexOf(first); i >= 0 && i <= last; i = hay.indexOf(first, i + 1)) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}
