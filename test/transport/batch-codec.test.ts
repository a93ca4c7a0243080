// The hand-written Batch codec against protobufjs: same ops or the same refusal, byte-identical responses, exact client decoding.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fc from "fast-check";
import * as grpc from "@grpc/grpc-js";
import {
  batchOpsMax, keyBytesMax, mvContextBytesMax, OpFailure, opErrorCodes, requestIdBytesMax, setMemberBytesMax, setMembersWriteMax, valueBytesMax,
  type ClientOp, type OpOutcome, type OpResult, type ValueView,
} from "../../src/transport/api.ts";
import {
  BadBatchResponse, countBatchErrors, decodeBatch, decodeBatchFast, decodeBatchRequest, decodeBatchRequestFast, decodeBatchRequestSlow, decodeBatchSlow,
  decodeBatchResponse, decodeBatchResponseFast, decodeBatchResponseSlow, encodeBatchResponse, type BatchItem,
} from "../../src/transport/batch-codec.ts";
import {
  bigIntToInt64, codecs, int64Max, int64Min, ValueTypeWire,
  type BatchResponseWire, type GetResponseWire, type OpResultWire, type OpWire,
} from "../../src/transport/proto.ts";
import { encodeBatchRequest, ImdbClient, RpcError } from "../../src/transport/client.ts";
import { startClientServer, type RunningServer } from "../../src/transport/server.ts";
import { FakeNode } from "./fake-node.ts";

const runs = Number(process.env.IMDB_PROPERTY_RUNS ?? 1000);
const seed = process.env.IMDB_SEED !== undefined ? Number(process.env.IMDB_SEED) : Date.now() ^ (Math.random() * 0x7fffffff);

function check<T>(arb: fc.Arbitrary<T>, pred: (v: T) => void, numRuns = runs): void {
  const out = fc.check(fc.property(arb, pred), { numRuns, seed });
  if (out.failed) throw new Error(`property failed with IMDB_SEED=${seed}: ${fc.defaultReportMessage(out)}\n${String(out.errorInstance)}`);
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
const enc = new TextEncoder();

// ---- comparable forms ----

/** Bytes as hex so a Buffer and a Uint8Array with equal contents compare equal. */
function plainOp(op: ClientOp): unknown {
  switch (op.kind) {
    case "set":
      return { ...op, value: hex(op.value) };
    case "setMv":
      return { ...op, value: hex(op.value), context: op.context === null ? null : hex(op.context) };
    case "sadd":
    case "srem":
      return { ...op, members: op.members.map(hex) };
    case "sismember":
      return { ...op, member: hex(op.member) };
    default:
      return op;
  }
}

function decodeOutcome(run: () => ClientOp[]): unknown {
  try {
    return { ops: run().map(plainOp) };
  } catch (err) {
    if (err instanceof OpFailure) return { code: err.code, message: err.message };
    throw err; // anything else would be INTERNAL: a test failure
  }
}

function plainValue(v: ValueView): unknown {
  switch (v.type) {
    case "lww":
      return { type: v.type, value: hex(v.value) };
    case "mv":
      return { type: v.type, values: v.values.map(hex), context: hex(v.context) };
    case "set":
      return { type: v.type, members: v.members.map(hex) };
    default:
      return v;
  }
}

function plainResult(r: OpResult): unknown {
  switch (r.kind) {
    case "counter":
      return r;
    case "value":
      return { kind: r.kind, value: plainValue(r.value) };
    case "written":
      return { kind: r.kind, context: r.context === null ? null : hex(r.context) };
    case "members":
      return { kind: r.kind, members: r.members.map(hex) };
    case "count":
    case "isMember":
      return r;
  }
}

function plainItems(run: () => BatchItem[]): unknown {
  try {
    return { items: run().map((i) => (i.ok ? { ok: true, result: plainResult(i.result) } : i)) };
  } catch (err) {
    if (err instanceof BadBatchResponse) return { bad: err.message };
    throw err;
  }
}

// ---- request generators (wire level, so invalid requests are reachable) ----

const oversizeKey = new Uint8Array(keyBytesMax + 1).fill(97);
const maxKey = new Uint8Array(keyBytesMax).fill(98);
const oversizeValue = new Uint8Array(valueBytesMax + 1);
const oversizeContext = new Uint8Array(mvContextBytesMax + 1);
const oversizeMember = new Uint8Array(setMemberBytesMax + 1);
const tooManyMembers = Array.from({ length: setMembersWriteMax + 1 }, () => Uint8Array.of(7));

const keyArb: fc.Arbitrary<Uint8Array | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 12 }).map((s) => enc.encode(s)) },
  { weight: 3, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }).map((s) => enc.encode(s)) },
  { weight: 2, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 8 }) }, // often invalid UTF-8
  { weight: 1, arbitrary: fc.constantFrom(undefined, new Uint8Array(0), oversizeKey, maxKey, enc.encode("\uFEFFbom")) },
);

const amountArb = fc.oneof(
  fc.constantFrom(0n, 1n, 2n, -1n, int64Max, int64Min, 2n ** 28n - 1n, 2n ** 28n, 2n ** 49n - 1n, 2n ** 49n, 2n ** 53n + 1n),
  fc.bigInt({ min: int64Min, max: int64Max }),
  fc.bigInt({ min: 1n, max: 1000n }),
).map((v) => bigIntToInt64(v));

const enumArb = fc.oneof(fc.constantFrom(undefined, 0, 1, 2), fc.integer({ min: -3, max: 200 }));
const bytesArb: fc.Arbitrary<Uint8Array | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom(undefined, new Uint8Array(0)) },
);

const opArb: fc.Arbitrary<OpWire> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ key: keyArb, amount: fc.option(amountArb, { nil: undefined }), type: enumArb }).map((increment) => ({ increment })) },
  { weight: 2, arbitrary: fc.record({ key: keyArb, amount: fc.option(amountArb, { nil: undefined }) }).map((decrement) => ({ decrement })) },
  { weight: 2, arbitrary: fc.record({ key: keyArb }).map((get) => ({ get })) },
  {
    weight: 3,
    arbitrary: fc.record({
      key: keyArb,
      value: fc.oneof({ weight: 30, arbitrary: bytesArb }, { weight: 1, arbitrary: fc.constant(oversizeValue) }),
      type: enumArb,
      context: fc.oneof({ weight: 30, arbitrary: bytesArb }, { weight: 1, arbitrary: fc.constant(oversizeContext) }),
    }).map((set) => ({ set })),
  },
  // Set ops (the slow path decodes them): empty, oversized and many members reach their refusals.
  {
    weight: 2,
    arbitrary: fc.record({
      key: keyArb,
      members: fc.oneof(
        { weight: 20, arbitrary: fc.array(fc.oneof({ weight: 20, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 6 }) }, { weight: 1, arbitrary: fc.constantFrom(new Uint8Array(0), oversizeMember) }), { maxLength: 4 }) },
        { weight: 1, arbitrary: fc.constant(tooManyMembers) },
      ),
    }).chain((r) => fc.constantFrom<OpWire>({ sadd: r }, { srem: r })),
  },
  { weight: 1, arbitrary: fc.record({ key: keyArb, member: bytesArb }).map((sismember) => ({ sismember })) },
  { weight: 1, arbitrary: fc.record({ key: keyArb }).chain((r) => fc.constantFrom<OpWire>({ smembers: r }, { scard: r })) },
  { weight: 2, arbitrary: fc.record({ key: keyArb, requestId: fc.option(bytesArb, { nil: undefined }) }).map((del) => ({ delete: del })) },
  { weight: 1, arbitrary: fc.constant({}) },
);

/** Valid ops in the fast path's domain (amounts below 2^49): what a real client sends, then mutated. */
const validOpArb: fc.Arbitrary<OpWire> = fc.oneof(
  fc.record({ key: fc.string({ unit: "grapheme", minLength: 1, maxLength: 10 }).map((s) => enc.encode(s)), amount: fc.oneof(fc.bigInt({ min: 1n, max: 2n ** 49n - 1n }), fc.constantFrom(1n, 127n, 128n, 2n ** 49n - 1n)).map(bigIntToInt64), type: fc.constantFrom(0, 1, 2) }).map((increment) => ({ increment })),
  fc.record({ key: fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 10 }).map((s) => enc.encode(s)), amount: fc.bigInt({ min: 1n, max: 2n ** 40n }).map(bigIntToInt64) }).map((decrement) => ({ decrement })),
  fc.record({ key: fc.string({ minLength: 1, maxLength: 10 }).map((s) => enc.encode(s)) }).map((get) => ({ get })),
  fc.record({ key: fc.constantFrom("a", "b", "ключ").map((s) => enc.encode(s)), value: fc.uint8Array({ maxLength: 10 }), type: fc.constantFrom(0, 1) }).map((set) => ({ set })),
  fc.record({ key: fc.constantFrom("m", "n").map((s) => enc.encode(s)), value: fc.uint8Array({ maxLength: 10 }), type: fc.constant(2), context: fc.uint8Array({ maxLength: 6 }) }).map((set) => ({ set })),
);

const requestArb = fc.array(opArb, { maxLength: 8 }).map((ops) => codecs.BatchRequest.encode({ ops }));
const validRequestArb = fc.array(validOpArb, { minLength: 1, maxLength: 8 }).map((ops) => codecs.BatchRequest.encode({ ops }));

type Mutation = { kind: "set"; at: number; byte: number } | { kind: "truncate"; at: number } | { kind: "insert"; at: number; byte: number } | { kind: "delete"; at: number };
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x80, 0xff, 0x0a, 0x12, 0x18, 0x22, 0x00)) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
);

function mutate(bytes: Uint8Array, ms: Mutation[]): Uint8Array {
  let b = Array.from(bytes);
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.kind === "set") b[at] = m.byte;
    else if (m.kind === "truncate") b = b.slice(0, at);
    else if (m.kind === "insert") b.splice(at, 0, m.byte);
    else b.splice(at, 1);
  }
  return new Uint8Array(b);
}

const sameDecode = (bytes: Uint8Array): void => {
  expect(decodeOutcome(() => decodeBatchRequest(bytes))).toEqual(decodeOutcome(() => decodeBatchRequestSlow(bytes)));
};

describe("decodeBatchRequest", () => {
  test("random batches (valid and invalid ops): same ops or same OpFailure as protobufjs + batchOps", () => {
    check(requestArb, sameDecode);
  });

  test("plainly encoded valid batches take the fast path and give the reference ops", () => {
    check(validRequestArb, (bytes) => {
      const fast = decodeBatchRequestFast(bytes);
      expect(fast).not.toBeNull();
      expect((fast ?? []).map(plainOp)).toEqual(decodeBatchRequestSlow(bytes).map(plainOp));
    });
  });

  test("mutated and truncated requests: same result as protobufjs + batchOps, never a non-OpFailure", () => {
    check(fc.tuple(fc.oneof(validRequestArb, requestArb), fc.array(mutationArb, { minLength: 1, maxLength: 3 })), ([bytes, ms]) => sameDecode(mutate(bytes, ms)));
  });

  test("random bytes are INVALID_ARGUMENT or decode the same way", () => {
    check(fc.uint8Array({ maxLength: 40 }), sameDecode);
  });

  test("non-canonical encodings fall back and agree with protobufjs", () => {
    const cases = [
      "0a060a040a026162", // increment with a key and no amount
      "0a080a060a0161100110 02".replace(/ /g, ""), // amount twice
      "0a080a06100a01610a0162", // amount first, key twice
      "0a070a0510010a0161", // fields out of order
      "0a080a0610010a01612801", // unknown field 5
      "0a090a8700100a0161100118".slice(0, 16), // non-canonical op length
      "0a0c0a0a0a0161100118005001", // unknown field 10
      "0a0a0a0561100110011a0161", // two oneof members (increment, get)
      "0a0a0a080a016110818000", // amount as a padded varint (=1)
      "0a080a060a01611801" + "00", // trailing zero byte at top level
      "0b", // start group
      "0a0312020a00", // decrement with an empty key
      "0a0422020a00", // set with an empty key (refused)
      "0a0322010a", // truncated inside a set
      "12020a00", // request_id (field 2) and no ops
      "12000a020a00", // an empty request_id
      "120161120162", // request_id twice
    ];
    for (const c of cases) sameDecode(Buffer.from(c, "hex"));
  });

  test(`${batchOpsMax} ops decode; ${batchOpsMax + 1} are RESOURCE_EXHAUSTED with the reference message`, () => {
    const op: OpWire = { increment: { key: enc.encode("k"), amount: 1 } };
    const ok = codecs.BatchRequest.encode({ ops: new Array<OpWire>(batchOpsMax).fill(op) });
    expect(decodeBatchRequestFast(ok)?.length).toBe(batchOpsMax);
    const over = codecs.BatchRequest.encode({ ops: new Array<OpWire>(batchOpsMax + 1).fill(op) });
    expect(decodeOutcome(() => decodeBatchRequest(over))).toEqual({ code: "RESOURCE_EXHAUSTED", message: `batch has ${batchOpsMax + 1} ops, the limit is ${batchOpsMax}` });
    sameDecode(over);
  });

  test("request_id: appended anywhere to random batches, the same ops, id or OpFailure as protobufjs + batchRequest", () => {
    const idArb = fc.oneof(fc.uint8Array({ maxLength: requestIdBytesMax }), fc.uint8Array({ minLength: requestIdBytesMax, maxLength: requestIdBytesMax + 3 }));
    check(fc.tuple(fc.oneof(validRequestArb, requestArb), idArb, fc.boolean()), ([ops, id, first]) => {
      const field = codecs.BatchRequest.encode({ requestId: id });
      const bytes = first ? Buffer.concat([field, ops]) : Buffer.concat([ops, field]);
      const outcome = (run: () => { ops: ClientOp[]; requestId: Uint8Array | null }): unknown => {
        try {
          const d = run();
          return { ops: d.ops.map(plainOp), id: d.requestId === null ? null : hex(d.requestId) };
        } catch (err) {
          if (err instanceof OpFailure) return { code: err.code, message: err.message };
          throw err;
        }
      };
      const slow = outcome(() => decodeBatchSlow(bytes));
      expect(outcome(() => decodeBatch(bytes))).toEqual(slow);
      // The common case - a batch the fast path takes, with a valid id and only writes - stays on it.
      const reference = slow as { ops?: { kind: string }[] };
      const writesOnly = reference.ops !== undefined && reference.ops.every((o) => o.kind !== "get");
      if (writesOnly && id.length > 0 && decodeBatchRequestFast(ops) !== null) expect(decodeBatchFast(bytes)).not.toBeNull();
    });
  });

  test("request_id refusals: too long, a read in a batch with an id, an id on one op", () => {
    const write: OpWire = { increment: { key: enc.encode("k"), amount: 1 } };
    const long = codecs.BatchRequest.encode({ ops: [write], requestId: new Uint8Array(requestIdBytesMax + 1) });
    expect(decodeOutcome(() => decodeBatchRequest(long))).toEqual({ code: "INVALID_ARGUMENT", message: `request_id is ${requestIdBytesMax + 1} bytes, the limit is ${requestIdBytesMax}` });
    const withRead = codecs.BatchRequest.encode({ ops: [write, { get: { key: enc.encode("k") } }], requestId: enc.encode("r") });
    expect(decodeOutcome(() => decodeBatchRequest(withRead))).toEqual({ code: "INVALID_ARGUMENT", message: "op 1: a batch with a request_id holds only writes (send reads separately)" });
    const inner = codecs.BatchRequest.encode({ ops: [{ increment: { key: enc.encode("k"), amount: 1, requestId: enc.encode("r") } }] });
    expect(decodeOutcome(() => decodeBatchRequest(inner))).toEqual({ code: "INVALID_ARGUMENT", message: "op 0: request_id goes on the BatchRequest, not on one of its ops" });
    const ok = codecs.BatchRequest.encode({ ops: [write], requestId: enc.encode("retry-1") });
    expect(Buffer.from(decodeBatchFast(ok)?.requestId ?? []).toString()).toBe("retry-1");
  });

  test("an op's refusal names its index, as before", () => {
    const bytes = codecs.BatchRequest.encode({ ops: [{ get: { key: enc.encode("ok") } }, { increment: { key: enc.encode("k"), amount: 0 } }] });
    expect(decodeOutcome(() => decodeBatchRequest(bytes))).toEqual({ code: "INVALID_ARGUMENT", message: "op 1: amount must be >= 1, got 0" });
    expect(decodeOutcome(() => decodeBatchRequest(Buffer.from("0a05", "hex")))).toEqual({ code: "INVALID_ARGUMENT", message: "malformed BatchRequest: index out of range" });
  });
});

// ---- responses ----

const statusCode = (code: (typeof opErrorCodes)[number]): number => grpc.status[code];

/** The BatchResponse the server built with protobufjs before the hand-written encoder (the reference). */
function referenceResponse(outcomes: readonly OpOutcome[]): Buffer {
  const vt = { gcounter: ValueTypeWire.GCOUNTER, pncounter: ValueTypeWire.PNCOUNTER, lww: ValueTypeWire.LWW, mv: ValueTypeWire.MV, set: ValueTypeWire.SET, hash: ValueTypeWire.HASH };
  const get = (v: ValueView): GetResponseWire => {
    const base: GetResponseWire = v.conflicts?.length ? { key: undefined, type: vt[v.type], conflicts: v.conflicts.map(get) } : { key: undefined, type: vt[v.type] };
    switch (v.type) {
      case "gcounter":
      case "pncounter":
        return { ...base, counter: bigIntToInt64(v.value) };
      case "lww":
        return { ...base, value: v.value };
      case "mv":
        return { ...base, values: v.values, context: v.context };
      case "set":
        return { ...base, members: v.members };
      case "hash":
        return { ...base, fields: v.fields };
    }
  };
  const results: OpResultWire[] = outcomes.map((o) => {
    if (!o.ok) return { code: statusCode(o.error.code), message: o.error.message };
    const r = o.result;
    switch (r.kind) {
      case "counter":
        return { code: 0, counter: { key: undefined, value: bigIntToInt64(r.value) } };
      case "value":
        return { code: 0, get: get(r.value) };
      case "written":
        return { code: 0, set: { key: undefined, context: r.context ?? undefined } };
      case "deleted":
        return { code: 0, delete: { key: undefined, deleted: r.deleted } };
      case "count":
        return { code: 0, scount: { key: undefined, count: r.value } };
      case "members":
        return { code: 0, smembers: { key: undefined, members: r.members } };
      case "isMember":
        return { code: 0, sismember: { key: undefined, isMember: r.value } };
      case "hashCount":
      case "hashValue":
      case "hashValues":
      case "hashFields":
      case "changed":
      case "ttl":
        throw new Error("hash and expiry results are checked by their own tests (they need the op)");
    }
  });
  const wire: BatchResponseWire = { results };
  return codecs.BatchResponse.encode(wire);
}

const counterArb = fc.oneof(
  fc.bigInt({ min: int64Min, max: int64Max }),
  fc.constantFrom(0n, 1n, -1n, 127n, 128n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n), int64Max, int64Min),
);
const bytesSmall = fc.uint8Array({ maxLength: 200 });
const valueViewArb: fc.Arbitrary<ValueView> = fc.oneof(
  fc.record({ type: fc.constantFrom("gcounter" as const, "pncounter" as const), value: counterArb }),
  fc.record({ type: fc.constant("lww" as const), value: bytesSmall }),
  fc.record({ type: fc.constant("mv" as const), values: fc.array(bytesSmall, { maxLength: 4 }), context: fc.uint8Array({ maxLength: 20 }) }),
  fc.record({ type: fc.constant("set" as const), members: fc.array(fc.uint8Array({ minLength: 1, maxLength: 20 }), { maxLength: 4 }) }),
);
const messageArb = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: "binary", maxLength: 60 }), // lone surrogates included
  fc.string({ unit: "grapheme", minLength: 40, maxLength: 80 }),
  fc.constant("x".repeat(300)),
);

/** An op and an outcome of the kind its op must have. */
const pairArb: fc.Arbitrary<[ClientOp, OpOutcome]> = fc.oneof(
  counterArb.map((value): [ClientOp, OpOutcome] => [{ kind: "increment", key: "k", amount: 1n, counter: null }, { ok: true, result: { kind: "counter", value } }]),
  counterArb.map((value): [ClientOp, OpOutcome] => [{ kind: "decrement", key: "k", amount: 1n }, { ok: true, result: { kind: "counter", value } }]),
  valueViewArb.map((value): [ClientOp, OpOutcome] => [{ kind: "get", key: "k" }, { ok: true, result: { kind: "value", value } }]),
  fc.option(fc.uint8Array({ maxLength: 200 }), { nil: null }).map((context): [ClientOp, OpOutcome] => [{ kind: "setMv", key: "k", value: new Uint8Array(0), context: null }, { ok: true, result: { kind: "written", context } }]),
  fc.constant<[ClientOp, OpOutcome]>([{ kind: "set", key: "k", value: new Uint8Array(0) }, { ok: true, result: { kind: "written", context: null } }]),
  fc.boolean().map((deleted): [ClientOp, OpOutcome] => [{ kind: "delete", key: "k" }, { ok: true, result: { kind: "deleted", deleted } }]),
  fc.tuple(fc.constantFrom("sadd" as const, "srem" as const), fc.nat(100_000)).map(([kind, value]): [ClientOp, OpOutcome] => [{ kind, key: "k", members: [Uint8Array.of(1)] }, { ok: true, result: { kind: "count", value } }]),
  fc.nat(100_000).map((value): [ClientOp, OpOutcome] => [{ kind: "scard", key: "k" }, { ok: true, result: { kind: "count", value } }]),
  fc.array(fc.uint8Array({ minLength: 1, maxLength: 20 }), { maxLength: 4 }).map((members): [ClientOp, OpOutcome] => [{ kind: "smembers", key: "k" }, { ok: true, result: { kind: "members", members } }]),
  fc.boolean().map((value): [ClientOp, OpOutcome] => [{ kind: "sismember", key: "k", member: Uint8Array.of(1) }, { ok: true, result: { kind: "isMember", value } }]),
  fc.tuple(fc.constantFrom(...opErrorCodes), messageArb).map(([code, message]): [ClientOp, OpOutcome] => [{ kind: "get", key: "k" }, { ok: false, error: { code, message } }]),
);
const batchArb = fc.array(pairArb, { maxLength: 12 });

const expectedItem = (o: OpOutcome): BatchItem => (o.ok ? { ok: true, result: o.result } : { ok: false, code: o.error.code, message: o.error.message });

describe("encodeBatchResponse", () => {
  test("byte-identical to protobufjs for random outcomes (errors, big and negative counters, LWW/MV/get results)", () => {
    check(batchArb, (pairs) => {
      const ops = pairs.map((p) => p[0]);
      const outcomes = pairs.map((p) => p[1]);
      expect(hex(encodeBatchResponse(ops, outcomes))).toBe(hex(referenceResponse(outcomes)));
    });
  });

  test("a 1000-op counter response and a response past the initial buffer size are identical too", () => {
    const ops: ClientOp[] = Array.from({ length: batchOpsMax }, () => ({ kind: "increment", key: "k", amount: 1n, counter: null }));
    const outcomes: OpOutcome[] = ops.map((_, i) => ({ ok: true, result: { kind: "counter", value: BigInt(i) * 1_000_003n - 7n } }));
    expect(hex(encodeBatchResponse(ops, outcomes))).toBe(hex(referenceResponse(outcomes)));
    const big: OpOutcome[] = [{ ok: true, result: { kind: "value", value: { type: "lww", value: new Uint8Array(100_000).fill(7) } } }];
    expect(hex(encodeBatchResponse([{ kind: "get", key: "k" }], big))).toBe(hex(referenceResponse(big)));
  });

  test("a get of a key with type-conflict sides carries them (GetResponse.conflicts) as protobufjs writes them, and the client reads them back", () => {
    const sideArb = valueViewArb.map((v): ValueView => v);
    check(fc.tuple(valueViewArb, fc.array(sideArb, { minLength: 1, maxLength: 3 }), batchArb), ([main, sides, rest]) => {
      const value: ValueView = { ...main, conflicts: sides };
      const pairs: [ClientOp, OpOutcome][] = [...rest, [{ kind: "get", key: "k" }, { ok: true, result: { kind: "value", value } }]];
      const outcomes = pairs.map((p) => p[1]);
      const bytes = encodeBatchResponse(pairs.map((p) => p[0]), outcomes);
      expect(hex(bytes)).toBe(hex(referenceResponse(outcomes)));
      const items = decodeBatchResponse(bytes);
      const last = items[items.length - 1];
      const got = last?.ok && last.result.kind === "value" ? last.result.value : null;
      const { conflicts, ...visible } = got as ValueView;
      expect(plainValue(visible as ValueView)).toEqual(plainValue(main));
      expect((conflicts ?? []).map(plainValue)).toEqual(sides.map(plainValue));
    });
    // Without sides nothing changes: the same bytes as before the field existed.
    const plain: OpOutcome[] = [{ ok: true, result: { kind: "value", value: { type: "pncounter", value: 5n } } }];
    expect(hex(encodeBatchResponse([{ kind: "get", key: "k" }], plain))).toBe(hex(referenceResponse(plain)));
  });

  test("a handler that breaks its contract is a programmer error, not a response", () => {
    const op: ClientOp = { kind: "get", key: "k" };
    expect(() => encodeBatchResponse([op], [])).toThrow("batch handler returned 0 outcomes for 1 ops");
    expect(() => encodeBatchResponse([op], [{ ok: true, result: { kind: "counter", value: 1n } }])).toThrow("handler answered get with a counter result");
  });
});

describe("client side", () => {
  test("decodeBatchResponse round-trips every outcome and matches protobufjs; countBatchErrors counts", () => {
    check(batchArb, (pairs) => {
      const outcomes = pairs.map((p) => p[1]);
      const bytes = encodeBatchResponse(pairs.map((p) => p[0]), outcomes);
      const fast = plainItems(() => decodeBatchResponse(bytes));
      // Normalise what the wire cannot carry: a written null context and an empty one look the same.
      const expected = outcomes.map((o) => {
        const item = expectedItem(o);
        if (item.ok && item.result.kind === "written" && item.result.context?.length === 0) return { ok: true, result: { kind: "written", context: null } } as BatchItem;
        return item;
      });
      expect(fast).toEqual(plainItems(() => expected));
      expect(fast).toEqual(plainItems(() => decodeBatchResponseSlow(bytes)));
      // What this server writes never needs protobufjs, except non-ASCII error messages (rare, left to it).
      if (outcomes.every((o) => o.ok || /^[\x00-\x7f]*$/.test(o.error.message))) expect(decodeBatchResponseFast(bytes)).not.toBeNull();
      expect(countBatchErrors(bytes)).toEqual({ results: outcomes.length, errors: outcomes.filter((o) => !o.ok).length });
    });
  });

  test("mutated responses: same items or the same BadBatchResponse as protobufjs", () => {
    check(fc.tuple(batchArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 })), ([pairs, ms]) => {
      const bytes = mutate(encodeBatchResponse(pairs.map((p) => p[0]), pairs.map((p) => p[1])), ms);
      expect(plainItems(() => decodeBatchResponse(bytes))).toEqual(plainItems(() => decodeBatchResponseSlow(bytes)));
    });
  });
});

// ---- over gRPC ----

describe("Batch over gRPC with raw bytes", () => {
  let node: FakeNode;
  let srv: RunningServer;
  let c: ImdbClient;
  beforeAll(async () => {
    node = new FakeNode();
    srv = await startClientServer({ addr: "127.0.0.1:0", security: { insecure: true }, handler: node, onInternalError: () => {} });
    c = new ImdbClient({ server: `127.0.0.1:${srv.port}`, tls: null, deadlineMs: 5000 });
  });
  afterAll(async () => {
    c.close();
    await srv.shutdown(1000);
  });

  test("malformed bytes are INVALID_ARGUMENT (not INTERNAL) and reach no handler", async () => {
    const before = node.batches;
    const err = await c.batchRaw(Buffer.from("0a05ff", "hex")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).codeName).toBe("INVALID_ARGUMENT");
    expect((err as RpcError).details).toStartWith("malformed BatchRequest");
    expect(node.batches).toBe(before);
  });

  test("a pre-encoded request answers with bytes the client decoders read", async () => {
    const req = encodeBatchRequest([{ kind: "increment", key: "raw", amount: 5n }, { kind: "get", key: "nope" }, { kind: "set", key: "r", value: new Uint8Array([1]) }]);
    const res = await c.batchRaw(req);
    expect(countBatchErrors(res)).toEqual({ results: 3, errors: 1 });
    expect(plainItems(() => decodeBatchResponse(res))).toEqual(plainItems(() => [
      { ok: true, result: { kind: "counter", value: 5n } },
      { ok: false, code: "NOT_FOUND", message: "key not found" },
      { ok: true, result: { kind: "written", context: null } },
    ]));
    expect(await c.batchRaw(new Uint8Array(0))).toHaveLength(0);
  });
});
