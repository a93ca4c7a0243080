// Expiry at the edge: every bound of Set's ttl_ms/keep_ttl and of Expire refused with a clear
// INVALID_ARGUMENT, the ops through Batch both ways (the hand-written codec byte-identical to
// protobufjs, a Get's deadline included), and the unary RPCs over gRPC.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fc from "fast-check";
import { expiryDeadlineMsMax, OpFailure, type ClientOp, type OpOutcome, type ValueView } from "../../src/transport/api.ts";
import {
  decodeBatch, decodeBatchFast, decodeBatchResponse, decodeBatchResponseFast, decodeBatchResponseSlow, decodeBatchSlow, encodeBatchResponse, type BatchItem,
} from "../../src/transport/batch-codec.ts";
import { encodeBatchRequest, ImdbClient, RpcError, type RequestOp } from "../../src/transport/client.ts";
import { bigIntToInt64, codecs, ValueTypeWire, type GetResponseWire, type OpWire } from "../../src/transport/proto.ts";
import { startClientServer, type RunningServer } from "../../src/transport/server.ts";
import { expireOp, setOp } from "../../src/transport/validate.ts";
import { FakeNode } from "./fake-node.ts";

const runs = Number(process.env.IMDB_PROPERTY_RUNS ?? 300);
const seed = process.env.IMDB_SEED !== undefined ? Number(process.env.IMDB_SEED) : Date.now() ^ (Math.random() * 0x7fffffff);
const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const max = expiryDeadlineMsMax;

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (e) {
    if (e instanceof OpFailure) return `${e.code}: ${e.message}`;
    throw e;
  }
  return "accepted";
}

const batchRefusal = (ops: RequestOp[], id?: Uint8Array): string => refusal(() => decodeBatch(encodeBatchRequest(ops, id)));
/** Ops of a Batch as the server decodes them (bytes as hex to compare). */
const decoded = (ops: RequestOp[]): unknown =>
  decodeBatch(encodeBatchRequest(ops)).ops.map((o) => ("value" in o ? { ...o, value: Buffer.from(o.value).toString("hex") } : o));

describe("validation", () => {
  test("Set: ttl_ms 1..expiryDeadlineMsMax (0 = none); keep_ttl and ttl_ms exclude each other", () => {
    expect(refusal(() => setOp({ key: b("k"), ttlMs: max + 1 }))).toBe(`INVALID_ARGUMENT: ttl_ms must be at most ${max}, got ${max + 1}`);
    expect(refusal(() => setOp({ key: b("k"), ttlMs: { low: -1, high: -1, unsigned: true } }))).toBe(`INVALID_ARGUMENT: ttl_ms must be at most ${max}, got ${2n ** 64n - 1n}`);
    expect(refusal(() => setOp({ key: b("k"), ttlMs: 5, keepTtl: true })))
      .toBe("INVALID_ARGUMENT: ttl_ms and keep_ttl exclude each other: a write sets a deadline or keeps the current one");
    expect(setOp({ key: b("k"), ttlMs: max })).toEqual({ kind: "set", key: "k", value: new Uint8Array(0), ttlMs: max });
    expect(setOp({ key: b("k"), ttlMs: 0 })).toEqual({ kind: "set", key: "k", value: new Uint8Array(0) });
    expect(setOp({ key: b("k"), keepTtl: true, type: 2 })).toEqual({ kind: "setMv", key: "k", value: new Uint8Array(0), context: null, keepTtl: true });
  });

  test("Expire: exactly one of ttl_ms / at_unix_ms, each at most expiryDeadlineMsMax; a known condition; negatives mean the past", () => {
    expect(refusal(() => expireOp({ key: b("k") }))).toBe("INVALID_ARGUMENT: give ttl_ms or at_unix_ms (the deadline to set)");
    expect(refusal(() => expireOp({ key: b("k"), when: "ttlMs", ttlMs: max + 1 })))
      .toBe(`INVALID_ARGUMENT: ttl_ms must be at most ${max} (Unix ms of the latest deadline, the year 10889), got ${max + 1}`);
    expect(refusal(() => expireOp({ key: b("k"), when: "atUnixMs", atUnixMs: max + 1 })))
      .toBe(`INVALID_ARGUMENT: at_unix_ms must be at most ${max} (Unix ms of the latest deadline, the year 10889), got ${max + 1}`);
    expect(refusal(() => expireOp({ key: b("k"), when: "ttlMs", ttlMs: 5, condition: 5 }))).toBe("INVALID_ARGUMENT: unknown expire condition 5");
    expect(refusal(() => expireOp({ key: new Uint8Array(0), when: "ttlMs", ttlMs: 5 }))).toContain("INVALID_ARGUMENT: key must be");
    expect(expireOp({ key: b("k"), when: "atUnixMs", atUnixMs: max, condition: 4 })).toEqual({ kind: "expire", key: "k", ttlMs: null, atMs: max, cond: "lt" });
    expect(expireOp({ key: b("k"), when: "ttlMs", ttlMs: { low: 0, high: -(2 ** 31) } })).toEqual({ kind: "expire", key: "k", ttlMs: -1, atMs: null, cond: null });
  });

  test("in a Batch: refusals name the op; request_id goes on the batch; Ttl is a read (refused under an id), Expire/Persist are writes", () => {
    expect(batchRefusal([{ kind: "get", key: "a" }, { kind: "expire", key: "k" }])).toBe("INVALID_ARGUMENT: op 1: give ttl_ms or at_unix_ms (the deadline to set)");
    expect(batchRefusal([{ kind: "expire", key: "k", ttlMs: 5, atMs: 7 }])).toBe("accepted"); // protobufjs keeps the last oneof member written
    expect(batchRefusal([{ kind: "set", key: "k", value: b("v"), ttlMs: 3, keepTtl: true }])).toContain("INVALID_ARGUMENT: op 0: ttl_ms and keep_ttl exclude each other");
    expect(batchRefusal([{ kind: "set", key: "k", value: b("v"), ttlMs: max + 1 }])).toBe(`INVALID_ARGUMENT: op 0: ttl_ms must be at most ${max}, got ${max + 1}`);
    const inner = codecs.BatchRequest.encode({ ops: [{ persist: { key: b("k"), requestId: b("x") } } as OpWire] });
    expect(refusal(() => decodeBatch(inner))).toBe("INVALID_ARGUMENT: op 0: request_id goes on the BatchRequest, not on one of its ops");
    expect(batchRefusal([{ kind: "expire", key: "k", ttlMs: 5 }, { kind: "ttl", key: "k" }], b("id")))
      .toBe("INVALID_ARGUMENT: op 1: a batch with a request_id holds only writes (send reads separately)");
    expect(batchRefusal([{ kind: "expire", key: "k", ttlMs: 5 }, { kind: "persist", key: "k" }, { kind: "set", key: "s", value: b("v"), ttlMs: 9 }], b("id"))).toBe("accepted");
  });
});

describe("Batch codec", () => {
  test("expiry ops and set's deadline fields decode to their ClientOps (ttl 0 is sent and kept apart from no TTL)", () => {
    expect(decoded([
      { kind: "expire", key: "a", ttlMs: 0 },
      { kind: "expire", key: "b", ttlMs: -5, cond: "nx" },
      { kind: "expire", key: "c", atMs: 1_700_000_000_000, cond: "xx" },
      { kind: "expire", key: "d", ttlMs: 10_000, cond: "gt" },
      { kind: "persist", key: "e" },
      { kind: "ttl", key: "f" },
      { kind: "set", key: "g", value: b("v"), ttlMs: 1500 },
      { kind: "set", key: "h", value: b("v"), keepTtl: true },
      { kind: "setMv", key: "i", value: b("v"), context: null, ttlMs: 7 },
      { kind: "set", key: "j", value: b("v") },
    ])).toEqual([
      { kind: "expire", key: "a", ttlMs: 0, atMs: null, cond: null },
      { kind: "expire", key: "b", ttlMs: -1, atMs: null, cond: "nx" },
      { kind: "expire", key: "c", ttlMs: null, atMs: 1_700_000_000_000, cond: "xx" },
      { kind: "expire", key: "d", ttlMs: 10_000, atMs: null, cond: "gt" },
      { kind: "persist", key: "e" },
      { kind: "ttl", key: "f" },
      { kind: "set", key: "g", value: "76", ttlMs: 1500 },
      { kind: "set", key: "h", value: "76", keepTtl: true },
      { kind: "setMv", key: "i", value: "76", context: null, ttlMs: 7 },
      { kind: "set", key: "j", value: "76" },
    ]);
  });

  test("Sets with ttl_ms / keep_ttl take the fast request parser when valid, and always decode as protobufjs + validation does", () => {
    const plain = (run: () => { ops: ClientOp[] } | null): unknown => {
      try {
        const got = run();
        return got === null ? null : got.ops.map((o) => ("value" in o ? { ...o, value: Buffer.from(o.value).toString("hex") } : o));
      } catch (e) {
        if (e instanceof OpFailure) return `${e.code}: ${e.message}`;
        throw e;
      }
    };
    const ttlArb = fc.oneof(fc.constantFrom(undefined, 0, 1, 127, 128, max, max + 1, 2 ** 49, 2 ** 53 - 1), fc.integer({ min: 1, max: 10 ** 9 }));
    const setArb = fc.record({
      key: fc.constantFrom("a", "ключ").map(b), value: fc.uint8Array({ maxLength: 6 }), type: fc.constantFrom(0, 1, 2),
      ttlMs: ttlArb.map((t) => (t === undefined ? undefined : { ...bigIntToInt64(BigInt(t)), unsigned: true })), keepTtl: fc.option(fc.boolean(), { nil: undefined }),
    });
    const out = fc.check(fc.property(fc.array(setArb, { minLength: 1, maxLength: 4 }), (sets) => {
      const bytes = codecs.BatchRequest.encode({ ops: sets.map((set) => ({ set })) });
      const slow = plain(() => decodeBatchSlow(bytes));
      const fast = plain(() => decodeBatchFast(bytes));
      const valid = sets.every((x) => {
        const t = x.ttlMs === undefined ? 0 : Number(BigInt.asUintN(64, (BigInt(x.ttlMs.high >>> 0) << 32n) | BigInt(x.ttlMs.low >>> 0)));
        return t <= max && !(t > 0 && x.keepTtl === true);
      });
      expect(typeof slow === "string").toBe(!valid);
      if (valid) expect(fast).toEqual(slow);
      else expect(fast).toBeNull();
    }), { numRuns: runs, seed });
    if (out.failed) throw new Error(`property failed with IMDB_SEED=${seed}: ${fc.defaultReportMessage(out)}`);
  });

  test("expiry results survive the BatchResponse codec both ways", () => {
    const ops: ClientOp[] = [
      { kind: "expire", key: "a", ttlMs: 5, atMs: null, cond: null }, { kind: "expire", key: "a", ttlMs: 5, atMs: null, cond: "nx" },
      { kind: "persist", key: "a" }, { kind: "persist", key: "b" },
      { kind: "ttl", key: "a" }, { kind: "ttl", key: "b" }, { kind: "ttl", key: "c" }, { kind: "ttl", key: "d" },
    ];
    const outcomes: OpOutcome[] = [
      { ok: true, result: { kind: "changed", value: true } }, { ok: true, result: { kind: "changed", value: false } },
      { ok: true, result: { kind: "changed", value: true } }, { ok: true, result: { kind: "changed", value: false } },
      { ok: true, result: { kind: "ttl", ttlMs: -2 } }, { ok: true, result: { kind: "ttl", ttlMs: -1 } },
      { ok: true, result: { kind: "ttl", ttlMs: 1 } }, { ok: true, result: { kind: "ttl", ttlMs: max } },
    ];
    const bytes = encodeBatchResponse(ops, outcomes);
    expect(decodeBatchResponse(bytes)).toEqual(outcomes as BatchItem[]);
    expect(codecs.BatchResponse.decode(bytes).results?.map((r) => r.result)).toEqual(["expire", "expire", "persist", "persist", "ttl", "ttl", "ttl", "ttl"]);
    // A result of the wrong kind for its op is the handler's bug, not a response.
    expect(() => encodeBatchResponse([{ kind: "ttl", key: "a" }], [{ ok: true, result: { kind: "changed", value: true } }])).toThrow("handler answered ttl with a changed result");
  });

  // The reference is protobufjs on a GetResponse built by hand, so "no deadline" must encode as the message without fields 10/11.
  test("a Get's deadline: byte-identical to protobufjs, read back the same by the fast and the slow decoder; no deadline costs no bytes", () => {
    const wireType = { gcounter: ValueTypeWire.GCOUNTER, pncounter: ValueTypeWire.PNCOUNTER, lww: ValueTypeWire.LWW, mv: ValueTypeWire.MV, set: ValueTypeWire.SET };
    const arb = fc.tuple(
      fc.oneof(
        fc.record({ type: fc.constantFrom("gcounter" as const, "pncounter" as const), value: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) }),
        fc.record({ type: fc.constant("lww" as const), value: fc.uint8Array({ maxLength: 20 }) }),
        fc.record({ type: fc.constant("mv" as const), values: fc.array(fc.uint8Array({ maxLength: 8 }), { maxLength: 3 }), context: fc.uint8Array({ maxLength: 8 }) }),
        fc.record({ type: fc.constant("set" as const), members: fc.array(fc.uint8Array({ minLength: 1, maxLength: 8 }), { maxLength: 3 }) }),
      ),
      fc.option(fc.tuple(fc.integer({ min: 1, max }), fc.integer({ min: 1, max })), { nil: null }),
    );
    const out = fc.check(fc.property(arb, ([typed, deadline]) => {
      const value: ValueView = deadline === null ? typed : { ...typed, ttlMs: deadline[0], expiresAtMs: deadline[1] };
      const bytes = encodeBatchResponse([{ kind: "get", key: "k" }], [{ ok: true, result: { kind: "value", value } }]);
      const ref: GetResponseWire = { type: wireType[typed.type] };
      if (typed.type === "gcounter" || typed.type === "pncounter") ref.counter = bigIntToInt64(typed.value);
      if (typed.type === "lww") ref.value = typed.value;
      if (typed.type === "mv") Object.assign(ref, { values: typed.values, context: typed.context });
      if (typed.type === "set") ref.members = typed.members;
      if (deadline !== null) Object.assign(ref, { ttlMs: deadline[0], expiresAtUnixMs: deadline[1] });
      expect(Buffer.from(bytes).toString("hex")).toBe(codecs.BatchResponse.encode({ results: [{ get: ref }] }).toString("hex"));
      const expected: BatchItem[] = [{ ok: true, result: { kind: "value", value } }];
      expect(decodeBatchResponseSlow(bytes)).toEqual(expected);
      expect(decodeBatchResponseFast(bytes)).toEqual(expected);
    }), { numRuns: runs, seed });
    if (out.failed) throw new Error(`property failed with IMDB_SEED=${seed}: ${fc.defaultReportMessage(out)}`);
  });

  test("a response from a server without expiry (no ttl fields) reads as no deadline", () => {
    const bytes = codecs.BatchResponse.encode({ results: [{ get: { type: ValueTypeWire.LWW, value: b("v") } }] });
    expect(decodeBatchResponse(bytes)).toEqual([{ ok: true, result: { kind: "value", value: { type: "lww", value: b("v") } } }]);
  });
});

describe("unary RPCs over gRPC (FakeNode stands in for the engine)", () => {
  const fake = new FakeNode();
  let srv: RunningServer;
  let c: ImdbClient;
  let now = 1_700_000_000_000;
  fake.now = () => now;

  beforeAll(async () => {
    srv = await startClientServer({ addr: "127.0.0.1:0", security: { insecure: true }, handler: fake });
    c = new ImdbClient({ server: `127.0.0.1:${srv.port}`, tls: null });
  });
  afterAll(async () => {
    c.close();
    await srv.shutdown(1000);
  });

  const status = async (p: Promise<unknown>): Promise<string> => p.then(() => "OK", (e: unknown) => (e instanceof RpcError ? `${e.codeName}: ${e.details}` : String(e)));

  test("Set with ttl_ms, Get's ttl_ms and expires_at_unix_ms, Ttl, Persist, Expire with a condition", async () => {
    await c.set("s", b("v"), undefined, { ttlMs: 5000 });
    expect(await c.get("s")).toEqual({ type: "lww", value: b("v"), ttlMs: 5000, expiresAtMs: now + 5000 });
    now += 1000;
    expect(await c.ttl("s")).toBe(4000);
    expect(await c.ttl("missing")).toBe(-2);
    expect(await c.expire("s", { ttlMs: 60_000, cond: "nx" })).toBe(false);
    expect(await c.expire("s", { ttlMs: 60_000, cond: "gt" })).toBe(true);
    expect(await c.ttl("s")).toBe(60_000);
    expect(await c.persist("s")).toBe(true);
    expect(await c.persist("s")).toBe(false);
    expect(await c.ttl("s")).toBe(-1);
    expect(await c.get("s")).toEqual({ type: "lww", value: b("v") });
    expect(await c.expire("s", { atMs: now + 10 })).toBe(true);
    expect(await c.expire("missing", { ttlMs: 10 })).toBe(false);
    expect(await c.expire("s", { ttlMs: 0 })).toBe(true);
    expect(await c.ttl("s")).toBe(-2);
  });

  test("refusals arrive as INVALID_ARGUMENT with the edge's words, and reach no handler", async () => {
    const before = fake.entered;
    expect(await status(c.set("k", b("v"), undefined, { ttlMs: 1, keepTtl: true })))
      .toBe("INVALID_ARGUMENT: ttl_ms and keep_ttl exclude each other: a write sets a deadline or keeps the current one");
    expect(await status(c.expire("k", {}))).toBe("INVALID_ARGUMENT: give ttl_ms or at_unix_ms (the deadline to set)");
    expect(await status(c.expire("k", { atMs: max + 1 }))).toContain("INVALID_ARGUMENT: at_unix_ms must be at most");
    expect(fake.entered).toBe(before);
  });
});
