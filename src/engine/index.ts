// The keyspace: key -> typed CRDT. Turns local ops into deltas, merges remote deltas and full
// states, keeps a 64-bit digest per key for anti-entropy, and iterates keys in bounded chunks.
// Pure: time comes in as `nowMs`, nothing here does I/O.
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
//                                       (MV-Register; context = bytes from get(); null means
//                                        "replace everything this node has seen")
//       -> { ok: true, value: KeyValue, delta: Uint8Array /* encoded KeyDelta */ }
//        | { ok: false, error: { code: "WRONG_TYPE" | "OUT_OF_RANGE" | "INVALID", message } }
//       A key's type is fixed by its first write; a refused op changes nothing.
//   e.get(key): KeyValue | undefined
//       { type: "gcounter" | "pncounter", value: bigint }
//       { type: "lww", value: Uint8Array, timestampMs, logical, actor }
//       { type: "mv", values: Uint8Array[], context: Uint8Array /* encoded CausalContext */ }
//   e.mergeDelta(bytes, nowMs) / e.mergeState(key, bytes, nowMs): MergeResult
//       Joins an encoded KeyDelta / KeyState (remote deltas, WAL replay, anti-entropy).
//       Idempotent. -> { ok: true, key, changed, skew: ClockSkew | null, typeConflict }
//                    | { ok: false, error }
//       Two nodes may create one key with different types at once; merge then keeps the
//       type with the lower wire number (G < PN < LWW < MV) everywhere (typeConflict: true),
//       so replicas still converge.
//   e.encodeState(key): Uint8Array | undefined        encoded KeyState (snapshots)
//   e.loadState(key, bytes): LoadResult              replaces the key's state (recovery)
//   e.digest(key): bigint | undefined                hash64 of type + canonical state bytes,
//                                                    updated on every change, not on read
//   onChange(key, digest) is called after every change (apply, merge, load).
//   e.keyCount; e.has(key); e.typeOf(key)
//   e.scan(): KeyScan   scan.next(maxKeys, maxBytes) -> [{ key, state: KeyState bytes }]
//       Tolerates writes during the scan: every key present when the scan began and still
//       present is returned exactly once, with its state at the moment it is returned;
//       keys added meanwhile may or may not be returned. `scan.done` once exhausted.
//   e.clock: the node's HybridClock (LWW timestamps; recovery may restore() it).

import {
  actorName, CausalContext, CrdtError, GCounter, HybridClock, internActor, LwwRegister, MvRegister, PNCounter,
  registerValueBytesMax, type ActorId, type ClockSkew, type Hlc,
} from "../crdt/index.ts";
import {
  CrdtType, crdtTypeOf, decodeContext, decodeEnvelope, DecodeError, encodeContext, keyBytesMax, keyUtf8, Writer,
  writeEnvelope, writeState, type CrdtState,
} from "../codec/index.ts";
import { digestOf, hash64, hashOut } from "./digest.ts";

/** Most keys one scan chunk returns. */
export const scanChunkKeysMax = 10_000;
/** Most bytes of state one scan chunk returns (a single larger state is returned alone). */
export const scanChunkBytesMax = 4 * 1024 * 1024;

export type EngineErrorCode = "WRONG_TYPE" | "OUT_OF_RANGE" | "INVALID";
export interface EngineError {
  code: EngineErrorCode;
  message: string;
}

export type CounterType = "gcounter" | "pncounter";
export type KeyType = CounterType | "lww" | "mv";

export type EngineOp =
  | { kind: "incr"; key: string; amount: bigint; counter?: CounterType }
  | { kind: "decr"; key: string; amount: bigint }
  | { kind: "set"; key: string; value: Uint8Array }
  | { kind: "setMv"; key: string; value: Uint8Array; context: Uint8Array | null };

export type KeyValue =
  | { type: CounterType; value: bigint }
  | { type: "lww"; value: Uint8Array; timestampMs: number; logical: number; actor: string }
  | { type: "mv"; values: Uint8Array[]; context: Uint8Array };

export type ApplyResult = { ok: true; value: KeyValue; delta: Uint8Array } | { ok: false; error: EngineError };

export type MergeResult =
  | { ok: true; key: string; changed: boolean; skew: ClockSkew | null; typeConflict: boolean }
  | { ok: false; error: EngineError };

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
  onChange?: (key: string, digest: bigint) => void;
}

/** One key's state and the two 32-bit halves of its digest. */
class Entry {
  constructor(public state: CrdtState, public hi: number, public lo: number) {}
}

const typeNames: Record<CrdtType, KeyType> = {
  [CrdtType.GCounter]: "gcounter",
  [CrdtType.PNCounter]: "pncounter",
  [CrdtType.LwwRegister]: "lww",
  [CrdtType.MvRegister]: "mv",
};

function fail(code: EngineErrorCode, message: string): { ok: false; error: EngineError } {
  return { ok: false, error: { code, message } };
}

function wrongType(key: string, has: CrdtType, wanted: string): { ok: false; error: EngineError } {
  return fail("WRONG_TYPE", `key "${key.slice(0, 64)}" holds a ${typeNames[has]}, not a ${wanted}`);
}

export class Engine {
  readonly actor: ActorId;
  readonly clock: HybridClock;
  private readonly keys = new Map<string, Entry>();
  private readonly w = new Writer(4096);
  private onChange: ((key: string, digest: bigint) => void) | null;

  constructor(opts: EngineOptions) {
    this.actor = internActor(opts.actor);
    this.clock = new HybridClock(opts.maxClockSkewMs);
    this.onChange = opts.onChange ?? null;
  }

  setOnChange(fn: ((key: string, digest: bigint) => void) | null): void {
    this.onChange = fn;
  }

  get keyCount(): number {
    return this.keys.size;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  typeOf(key: string): KeyType | undefined {
    const e = this.keys.get(key);
    return e ? typeNames[crdtTypeOf(e.state)] : undefined;
  }

  apply(op: EngineOp, nowMs: number): ApplyResult {
    const keyBytes = keyUtf8(op.key);
    if (keyBytes === null) return fail("INVALID", `key must be 1..${keyBytesMax} bytes of UTF-8`);
    const entry = this.keys.get(op.key);
    let state = entry?.state;
    let created = false;
    let delta: CrdtState;
    try {
      switch (op.kind) {
        case "incr": {
          if (state === undefined) {
            state = op.counter === "gcounter" ? new GCounter() : new PNCounter();
            created = true;
          } else if (!(state instanceof PNCounter || state instanceof GCounter)) {
            return wrongType(op.key, crdtTypeOf(state), "counter");
          } else if (op.counter !== undefined && typeNames[crdtTypeOf(state)] !== op.counter) {
            return wrongType(op.key, crdtTypeOf(state), op.counter);
          }
          delta = state.inc(this.actor, op.amount);
          break;
        }
        case "decr": {
          if (state === undefined) { state = new PNCounter(); created = true; }
          else if (!(state instanceof PNCounter)) return wrongType(op.key, crdtTypeOf(state), "pncounter");
          delta = state.dec(this.actor, op.amount);
          break;
        }
        case "set": {
          if (state === undefined) { state = new LwwRegister(); created = true; }
          else if (!(state instanceof LwwRegister)) return wrongType(op.key, crdtTypeOf(state), "lww");
          let ts = this.clock.now(nowMs);
          if (state.isSet && (ts.ms < state.ms || (ts.ms === state.ms && ts.logical <= state.logical))) {
            // Only possible if the clock never observed this register (e.g. a state loaded
            // without restore); catch up so the write still wins.
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
              ctx = decodeContext(op.context);
            } catch (e) {
              if (e instanceof DecodeError) return fail("INVALID", `bad context: ${e.message}`);
              throw e;
            }
          }
          if (state === undefined) { state = new MvRegister(); created = true; }
          else if (!(state instanceof MvRegister)) return wrongType(op.key, crdtTypeOf(state), "mv");
          delta = state.write(this.actor, op.value, ctx);
          break;
        }
      }
    } catch (e) {
      if (e instanceof CrdtError) return fail(e.code, e.message);
      throw e;
    }
    const target = created ? this.insert(op.key, state) : (entry as Entry);
    this.changed(op.key, target);
    this.w.reset();
    writeEnvelope(this.w, keyBytes, delta);
    return { ok: true, value: valueOf(state), delta: this.w.finish() };
  }

  get(key: string): KeyValue | undefined {
    const e = this.keys.get(key);
    return e ? valueOf(e.state) : undefined;
  }

  /** Joins an encoded KeyDelta. */
  mergeDelta(bytes: Uint8Array, nowMs: number): MergeResult {
    let env;
    try {
      env = decodeEnvelope(bytes);
    } catch (e) {
      if (e instanceof DecodeError) return fail("INVALID", `bad delta: ${e.message}`);
      throw e;
    }
    return this.join(env.key, env.state, nowMs);
  }

  /** Joins an encoded KeyState of `key` (anti-entropy). */
  mergeState(key: string, bytes: Uint8Array, nowMs: number): MergeResult {
    let env;
    try {
      env = decodeEnvelope(bytes);
    } catch (e) {
      if (e instanceof DecodeError) return fail("INVALID", `bad state: ${e.message}`);
      throw e;
    }
    if (env.key !== key) return fail("INVALID", "state is for another key");
    return this.join(key, env.state, nowMs);
  }

  private join(key: string, incoming: CrdtState, nowMs: number): MergeResult {
    let skew: ClockSkew | null = null;
    if (incoming instanceof LwwRegister && incoming.isSet) skew = this.clock.observe(incoming.timestamp(), nowMs);
    const entry = this.keys.get(key);
    if (entry === undefined) {
      this.changed(key, this.insert(key, incoming));
      return { ok: true, key, changed: true, skew, typeConflict: false };
    }
    const have = crdtTypeOf(entry.state);
    const got = crdtTypeOf(incoming);
    if (have !== got) {
      // Concurrent creation with different types: the lower type number wins everywhere.
      if (got < have) {
        entry.state = incoming;
        this.changed(key, entry);
        return { ok: true, key, changed: true, skew, typeConflict: true };
      }
      return { ok: true, key, changed: false, skew, typeConflict: true };
    }
    const changed = mergeSame(entry.state, incoming);
    if (changed) this.changed(key, entry);
    return { ok: true, key, changed, skew, typeConflict: false };
  }

  /** The key's state as an encoded KeyState. */
  encodeState(key: string): Uint8Array | undefined {
    const e = this.keys.get(key);
    if (e === undefined) return undefined;
    const kb = keyUtf8(key) as Uint8Array;
    this.w.reset();
    writeEnvelope(this.w, kb, e.state);
    return this.w.finish();
  }

  /** Replaces `key`'s state with an encoded KeyState of that key (recovery from a snapshot). */
  loadState(key: string, bytes: Uint8Array): LoadResult {
    let env;
    try {
      env = decodeEnvelope(bytes);
    } catch (e) {
      if (e instanceof DecodeError) return fail("INVALID", `bad state: ${e.message}`);
      throw e;
    }
    if (env.key !== key) return fail("INVALID", "state is for another key");
    if (env.state instanceof LwwRegister && env.state.isSet) this.clock.restore(env.state.timestamp());
    const entry = this.keys.get(env.key);
    if (entry === undefined) this.changed(env.key, this.insert(env.key, env.state));
    else {
      entry.state = env.state;
      this.changed(env.key, entry);
    }
    return { ok: true, key: env.key };
  }

  digest(key: string): bigint | undefined {
    const e = this.keys.get(key);
    return e ? digestOf(e.hi, e.lo) : undefined;
  }

  scan(): KeyScan {
    const it = this.keys.entries();
    const self = this;
    let done = false;
    return {
      get done() {
        return done;
      },
      next(maxKeys = scanChunkKeysMax, maxBytes = scanChunkBytesMax): ScanItem[] {
        const keysMax = Math.max(1, Math.min(maxKeys, scanChunkKeysMax));
        const bytesMax = Math.max(1, Math.min(maxBytes, scanChunkBytesMax));
        const out: ScanItem[] = [];
        let bytes = 0;
        while (!done && out.length < keysMax && bytes < bytesMax) {
          const n = it.next();
          if (n.done) { done = true; break; }
          const [key, entry] = n.value;
          self.w.reset();
          writeEnvelope(self.w, keyUtf8(key) as Uint8Array, entry.state);
          const state = self.w.finish();
          out.push({ key, state });
          bytes += state.length;
        }
        return out;
      },
    };
  }

  private insert(key: string, state: CrdtState): Entry {
    const e = new Entry(state, 0, 0);
    this.keys.set(key, e);
    return e;
  }

  /** Recomputes the entry's digest from its canonical encoding and tells the subscriber. */
  private changed(key: string, e: Entry): void {
    const w = this.w;
    w.reset();
    w.uint(crdtTypeOf(e.state));
    writeState(w, e.state);
    hash64(w.buf, 0, w.pos);
    e.hi = hashOut.hi;
    e.lo = hashOut.lo;
    if (this.onChange !== null) this.onChange(key, digestOf(e.hi, e.lo));
  }
}

function mergeSame(a: CrdtState, b: CrdtState): boolean {
  if (a instanceof GCounter && b instanceof GCounter) return a.merge(b);
  if (a instanceof PNCounter && b instanceof PNCounter) return a.merge(b);
  if (a instanceof LwwRegister && b instanceof LwwRegister) return a.merge(b);
  if (a instanceof MvRegister && b instanceof MvRegister) return a.merge(b);
  throw new Error("assertion failed: mergeSame called with different types");
}

function valueOf(s: CrdtState): KeyValue {
  if (s instanceof GCounter) return { type: "gcounter", value: s.value() };
  if (s instanceof PNCounter) return { type: "pncounter", value: s.value() };
  if (s instanceof LwwRegister) {
    return { type: "lww", value: s.value, timestampMs: s.ms, logical: s.logical, actor: s.actor === null ? "" : actorName(s.actor) };
  }
  const r = s.read();
  return { type: "mv", values: r.values, context: encodeContext(r.context) };
}

export type { Hlc };
