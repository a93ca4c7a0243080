// The node's side of expiry's API: a relative TTL becomes a deadline once, from the write path's one
// clock reading; a TTL past the latest deadline is refused before the engine sees the request; Ttl is
// a read that never touches the WAL; expire/persist answers reach the client as set/cleared and are
// remembered under a request id (a retry is answered, not applied again).
import { describe, expect, test } from "bun:test";
import { Engine, type ManyOp, type ManyResult } from "../../src/engine/index.ts";
import { outcomeOf, toManyOp, valueView } from "../../src/node/ops.ts";
import { decodeRequestChunk, encodeRequestChunk, fingerprintOf, type RequestEntryData } from "../../src/node/request-record.ts";
import { RequestTable } from "../../src/node/requests.ts";
import { WritePath } from "../../src/node/write-path.ts";
import { expiryDeadlineMsMax, OpFailure, type ClientOp, type ExpireCondition, type OpOutcome } from "../../src/transport/api.ts";

const T = 1_700_000_000_000;
const v = new TextEncoder().encode("v");

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    if (err instanceof OpFailure) return `${err.code}: ${err.message}`;
    throw err;
  }
  return "accepted";
}

describe("toManyOp: the one place a relative TTL becomes a deadline", () => {
  test("set / setMv: ttlMs -> at now + ttl; keepTtl -> keep; neither -> no expiry (the engine clears, as Redis's SET)", () => {
    expect(toManyOp({ kind: "set", key: "k", value: v, ttlMs: 1500 }, T)).toEqual({ kind: "set", key: "k", value: v, expiry: { kind: "at", atMs: T + 1500 } });
    expect(toManyOp({ kind: "set", key: "k", value: v, keepTtl: true }, T)).toEqual({ kind: "set", key: "k", value: v, expiry: { kind: "keep" } });
    expect(toManyOp({ kind: "set", key: "k", value: v }, T)).toEqual({ kind: "set", key: "k", value: v });
    const mv = toManyOp({ kind: "setMv", key: "m", value: v, context: null, ttlMs: 10 }, T);
    expect(mv).toEqual({ kind: "setMv", key: "m", value: v, context: new Uint8Array(0), expiry: { kind: "at", atMs: T + 10 } });
  });

  test("expire: a TTL <= 0, or a time at or before now, expires the key now; a later time is kept as given", () => {
    const ex = (ttlMs: number | null, atMs: number | null): ManyOp => toManyOp({ kind: "expire", key: "k", ttlMs, atMs, cond: "gt" }, T);
    expect(ex(0, null)).toEqual({ kind: "expire", key: "k", atMs: T, cond: "gt" });
    expect(ex(-1, null)).toEqual({ kind: "expire", key: "k", atMs: T, cond: "gt" });
    expect(ex(2000, null)).toEqual({ kind: "expire", key: "k", atMs: T + 2000, cond: "gt" });
    expect(ex(null, 5)).toEqual({ kind: "expire", key: "k", atMs: T, cond: "gt" });
    expect(ex(null, T)).toEqual({ kind: "expire", key: "k", atMs: T, cond: "gt" });
    expect(ex(null, T + 1)).toEqual({ kind: "expire", key: "k", atMs: T + 1, cond: "gt" });
    expect(ex(null, expiryDeadlineMsMax)).toEqual({ kind: "expire", key: "k", atMs: expiryDeadlineMsMax, cond: "gt" });
    expect(toManyOp({ kind: "persist", key: "k" }, T)).toEqual({ kind: "persist", key: "k" });
    expect(toManyOp({ kind: "ttl", key: "k" }, T)).toEqual({ kind: "ttl", key: "k" });
  });

  test("a TTL reaching past expiryDeadlineMsMax from now is INVALID_ARGUMENT naming the most it may be now; exactly reaching it is fine", () => {
    const most = expiryDeadlineMsMax - T;
    const msg = `INVALID_ARGUMENT: ttl_ms ${most + 1} reaches past the latest deadline (Unix ms ${expiryDeadlineMsMax}): at most ${most} now`;
    expect(refusal(() => toManyOp({ kind: "set", key: "k", value: v, ttlMs: most + 1 }, T))).toBe(msg);
    expect(refusal(() => toManyOp({ kind: "expire", key: "k", ttlMs: most + 1, atMs: null, cond: null }, T))).toBe(msg);
    expect(toManyOp({ kind: "expire", key: "k", ttlMs: most, atMs: null, cond: null }, T)).toEqual({ kind: "expire", key: "k", atMs: expiryDeadlineMsMax, cond: null });
  });
});

describe("outcomeOf / valueView", () => {
  const ok = (r: Partial<Extract<ManyResult, { ok: true }>>): ManyResult => ({ ok: true, value: undefined, ...r });
  test("expire -> set, persist -> cleared (the engine's count 1/0); ttl -> the engine's reply", () => {
    const expire: ClientOp = { kind: "expire", key: "k", ttlMs: 5, atMs: null, cond: null };
    expect(outcomeOf(expire, ok({ count: 1 }), T)).toEqual({ ok: true, result: { kind: "changed", value: true } });
    expect(outcomeOf(expire, ok({ count: 0 }), T)).toEqual({ ok: true, result: { kind: "changed", value: false } });
    expect(outcomeOf({ kind: "persist", key: "k" }, ok({ count: 1 }), T)).toEqual({ ok: true, result: { kind: "changed", value: true } });
    for (const reply of [-2n, -1n, 1n, 86_400_000n]) {
      expect(outcomeOf({ kind: "ttl", key: "k" }, ok({ reply }), T)).toEqual({ ok: true, result: { kind: "ttl", ttlMs: Number(reply) } });
    }
    expect(outcomeOf(expire, { ok: false, error: { code: "INVALID", message: "expiry is not implemented yet" } }, T))
      .toEqual({ ok: false, error: { code: "INVALID_ARGUMENT", message: "expiry is not implemented yet" } });
  });

  test("a Get of a key with a deadline carries its ms left on the same clock and the deadline; without one, neither", () => {
    const lww = { type: "lww" as const, value: v, timestampMs: T - 5, logical: 0, actor: "n1" };
    expect(valueView({ ...lww, expiresAtMs: T + 2500 }, T)).toEqual({ type: "lww", value: v, ttlMs: 2500, expiresAtMs: T + 2500 });
    expect(valueView(lww, T)).toEqual({ type: "lww", value: v });
    const got = outcomeOf({ kind: "get", key: "c" }, ok({ value: { type: "pncounter", value: 3n, expiresAtMs: T + 1 } }), T);
    expect(got).toEqual({ ok: true, result: { kind: "value", value: { type: "pncounter", value: 3n, ttlMs: 1, expiresAtMs: T + 1 } } });
  });
});

/** An engine that records what it was asked and answers from a script (the real engine's expiry is the lead's). */
class ScriptedEngine extends Engine {
  readonly calls: { ops: readonly ManyOp[]; nowMs: number }[] = [];
  answer: (op: ManyOp) => { result: ManyResult; delta: boolean } = () => ({ result: { ok: true, value: undefined, count: 1 }, delta: true });
  override applyMany(ops: readonly ManyOp[], nowMs: number): { results: ManyResult[]; deltas: Uint8Array[] } {
    this.calls.push({ ops, nowMs });
    const out = ops.map((op) => this.answer(op));
    return { results: out.map((o) => o.result), deltas: out.filter((o) => o.delta).map(() => Uint8Array.of(8, 1)) };
  }
}

function scriptedPath(nowMs: () => number) {
  const engine = new ScriptedEngine({ actor: "n1" });
  const appended: Uint8Array[] = [];
  const store = { walQueuedBytes: 0, append: (b: readonly Uint8Array[]) => (appended.push(...b), Promise.resolve(appended.length)) };
  const writes = new WritePath({ engine, store, cluster: { localAppend: () => undefined, broadcast: () => undefined, settled: () => null }, requests: new RequestTable(), now: nowMs });
  return { engine, appended, writes };
}

describe("WritePath", () => {
  test("the engine gets the same instant the TTL was counted from, read once per request", async () => {
    let reads = 0;
    const { engine, writes } = scriptedPath(() => T + 10 * reads++);
    await writes.apply([{ kind: "set", key: "a", value: v, ttlMs: 100 }, { kind: "expire", key: "b", ttlMs: 200, atMs: null, cond: "nx" }], null);
    expect(reads).toBe(1);
    expect(engine.calls).toEqual([{ nowMs: T, ops: [
      { kind: "set", key: "a", value: v, expiry: { kind: "at", atMs: T + 100 } },
      { kind: "expire", key: "b", atMs: T + 200, cond: "nx" },
    ] }]);
  });

  test("a TTL past the latest deadline refuses the whole request before the engine or the WAL sees it", async () => {
    const { engine, appended, writes } = scriptedPath(() => T);
    const ops: ClientOp[] = [{ kind: "set", key: "a", value: v }, { kind: "set", key: "b", value: v, ttlMs: expiryDeadlineMsMax }];
    let code = "";
    await writes.apply(ops, null).catch((err: unknown) => (code = err instanceof OpFailure ? err.code : String(err)));
    expect(code).toBe("INVALID_ARGUMENT");
    expect(engine.calls).toEqual([]);
    expect(appended).toEqual([]);
  });

  test("ttl is a read: answered from the engine, nothing appended to the WAL", async () => {
    const { engine, appended, writes } = scriptedPath(() => T);
    engine.answer = () => ({ result: { ok: true, value: undefined, reply: 1234n }, delta: false });
    expect(await writes.apply([{ kind: "ttl", key: "k" }], null)).toEqual([{ ok: true, result: { kind: "ttl", ttlMs: 1234 } }]);
    expect(appended).toEqual([]);
  });

  test("a retried expire with the same request id is answered with the first result and not applied again, however late it comes", async () => {
    let now = T;
    const { engine, writes } = scriptedPath(() => now);
    const op: ClientOp = { kind: "expire", key: "k", ttlMs: 5000, atMs: null, cond: null };
    const rid = new TextEncoder().encode("expire-1");
    expect(await writes.apply([op], rid)).toEqual([{ ok: true, result: { kind: "changed", value: true } }]);
    now += 3000;
    engine.answer = () => ({ result: { ok: true, value: undefined, count: 0 }, delta: true });
    expect(await writes.apply([op], rid)).toEqual([{ ok: true, result: { kind: "changed", value: true } }]);
    expect(engine.calls.length).toBe(1);
    // The same id with another TTL is a different request.
    let code = "";
    await writes.apply([{ ...op, ttlMs: 6000 }], rid).catch((err: unknown) => (code = err instanceof OpFailure ? err.code : String(err)));
    expect(code).toBe("FAILED_PRECONDITION");
  });
});

describe("request records", () => {
  const fp = (ops: ClientOp[]): string => Buffer.from(fingerprintOf(ops)).toString("hex");
  test("expire/persist outcomes survive the WAL's request record", () => {
    const outcomes: OpOutcome[] = [{ ok: true, result: { kind: "changed", value: true } }, { ok: true, result: { kind: "changed", value: false } }];
    const entry: RequestEntryData = { id: new TextEncoder().encode("id"), fingerprint: new Uint8Array(16), acceptedAtMs: 7, outcomes };
    expect(decodeRequestChunk(encodeRequestChunk([entry]))).toEqual([entry]);
  });

  test("fingerprints tell apart a TTL from a time, their values, conditions, set's ttl and keep_ttl", () => {
    const ex = (ttlMs: number | null, atMs: number | null, cond: ExpireCondition | null): ClientOp => ({ kind: "expire", key: "k", ttlMs, atMs, cond });
    const all = [
      fp([ex(5, null, null)]), fp([ex(null, 5, null)]), fp([ex(6, null, null)]), fp([ex(5, null, "nx")]), fp([ex(5, null, "gt")]),
      fp([{ kind: "persist", key: "k" }]), fp([{ kind: "delete", key: "k" }]),
      fp([{ kind: "set", key: "k", value: v }]), fp([{ kind: "set", key: "k", value: v, ttlMs: 5 }]), fp([{ kind: "set", key: "k", value: v, keepTtl: true }]),
      fp([{ kind: "setMv", key: "k", value: v, context: null }]), fp([{ kind: "setMv", key: "k", value: v, context: null, ttlMs: 5 }]),
    ];
    expect(new Set(all).size).toBe(all.length);
    expect(fp([ex(5, null, "nx")])).toBe(fp([ex(5, null, "nx")]));
  });

  test("a set without a deadline keeps the fingerprint it had before expiry existed (a retry across the upgrade still matches)", () => {
    // The pre-expiry encoding: "<ops>\n<kind>|<key length>|<key>|<value length>", then the value bytes.
    const h = new Bun.CryptoHasher("sha256");
    h.update("1\nset|1|k|1");
    h.update(v);
    expect(fp([{ kind: "set", key: "k", value: v }])).toBe(Buffer.from(h.digest()).subarray(0, 16).toString("hex"));
  });
});
