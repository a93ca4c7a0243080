// Hash ops at the edge and in Batch: validation words each refusal, a batch with a request id
// refuses hash reads, results survive the BatchResponse codec both ways, and a remembered
// outcome of a hash write (safe retries) survives the WAL's request record.
import { describe, expect, test } from "bun:test";
import { decodeRequestChunk, encodeRequestChunk, fingerprintOf, type RequestEntryData } from "../../src/node/request-record.ts";
import { fieldBytesMax, OpFailure, valueBytesMax, type ClientOp, type OpOutcome } from "../../src/transport/api.ts";
import { decodeBatch, decodeBatchResponse, encodeBatchResponse } from "../../src/transport/batch-codec.ts";
import { encodeBatchRequest, type RequestOp } from "../../src/transport/client.ts";

const b = (s: string): Uint8Array => new TextEncoder().encode(s);

function refusal(ops: RequestOp[], id?: Uint8Array): string {
  try {
    decodeBatch(encodeBatchRequest(ops, id));
  } catch (e) {
    if (e instanceof OpFailure) return `${e.code}: ${e.message}`;
    throw e;
  }
  return "accepted";
}

describe("hash ops in Batch", () => {
  const ops: RequestOp[] = [
    { kind: "hset", key: "h", fields: [{ field: b("f"), value: b("v") }, { field: b("g"), value: new Uint8Array(0) }] },
    { kind: "hget", key: "h", field: b("f") },
    { kind: "hmget", key: "h", fields: [b("f"), b("x")] },
    { kind: "hdel", key: "h", fields: [b("g")] },
    { kind: "hgetall", key: "h" },
    { kind: "hlen", key: "h" },
    { kind: "hincrby", key: "h", field: b("n"), amount: -7n },
  ];

  test("every hash op decodes to its ClientOp", () => {
    const { ops: got, requestId } = decodeBatch(encodeBatchRequest(ops));
    expect(requestId).toBeNull();
    expect(got.map((o) => o.kind)).toEqual(["hset", "hget", "hmget", "hdel", "hgetall", "hlen", "hincrby"]);
    const hset = got[0] as Extract<ClientOp, { kind: "hset" }>;
    expect(hset.fields.map((f) => [Buffer.from(f.field).toString(), f.value.length])).toEqual([["f", 1], ["g", 0]]);
    expect((got[6] as Extract<ClientOp, { kind: "hincrby" }>).amount).toBe(-7n);
  });

  test("refusals: empty or too long field, no fields, too big value, a hash read under a request id", () => {
    expect(refusal([{ kind: "hget", key: "h", field: new Uint8Array(0) }])).toBe(`INVALID_ARGUMENT: op 0: field must be 1..${fieldBytesMax} bytes, got 0`);
    expect(refusal([{ kind: "hdel", key: "h", fields: [new Uint8Array(fieldBytesMax + 1)] }])).toContain("INVALID_ARGUMENT: op 0: field must be");
    expect(refusal([{ kind: "hset", key: "h", fields: [] }])).toBe("INVALID_ARGUMENT: op 0: give at least one field and value");
    expect(refusal([{ kind: "hmget", key: "h", fields: [] }])).toBe("INVALID_ARGUMENT: op 0: give at least one field");
    expect(refusal([{ kind: "hset", key: "h", fields: [{ field: b("f"), value: new Uint8Array(valueBytesMax + 1) }] }])).toContain("RESOURCE_EXHAUSTED");
    expect(refusal([{ kind: "hset", key: "h", fields: [{ field: b("f"), value: b("v") }] }, { kind: "hlen", key: "h" }], b("id-1")))
      .toBe("INVALID_ARGUMENT: op 1: a batch with a request_id holds only writes (send reads separately)");
    expect(refusal([{ kind: "hincrby", key: "h", field: b("n"), amount: 1n }], b("id-2"))).toBe("accepted");
  });

  test("results survive the BatchResponse codec (absent values stay null, empty ones stay empty)", () => {
    const { ops: decoded } = decodeBatch(encodeBatchRequest(ops));
    const outcomes: OpOutcome[] = [
      { ok: true, result: { kind: "hashCount", count: 2n } },
      { ok: true, result: { kind: "hashValue", value: new Uint8Array(0) } },
      { ok: true, result: { kind: "hashValues", values: [b("v"), null] } },
      { ok: true, result: { kind: "hashCount", count: 1n } },
      { ok: true, result: { kind: "hashFields", fields: [{ field: b("f"), value: b("v") }] } },
      { ok: false, error: { code: "FAILED_PRECONDITION", message: "key holds a lww, not a hash" } },
      { ok: true, result: { kind: "counter", value: -7n } },
    ];
    const back = decodeBatchResponse(encodeBatchResponse(decoded, outcomes));
    expect(back).toEqual([
      { ok: true, result: { kind: "hashCount", count: 2n } },
      { ok: true, result: { kind: "hashValue", value: new Uint8Array(0) } },
      { ok: true, result: { kind: "hashValues", values: [b("v"), null] } },
      { ok: true, result: { kind: "hashCount", count: 1n } },
      { ok: true, result: { kind: "hashFields", fields: [{ field: b("f"), value: b("v") }] } },
      { ok: false, code: "FAILED_PRECONDITION", message: "key holds a lww, not a hash" },
      { ok: true, result: { kind: "counter", value: -7n } },
    ]);
  });

  test("a Get of a hash key in a Batch carries its fields (GetResponse.fields, VALUE_TYPE_HASH)", () => {
    const { ops: decoded } = decodeBatch(encodeBatchRequest([{ kind: "get", key: "h" }]));
    const value = { type: "hash" as const, fields: [{ field: b("a"), value: b("1") }, { field: Uint8Array.of(0xff), value: new Uint8Array(0) }] };
    const back = decodeBatchResponse(encodeBatchResponse(decoded, [{ ok: true, result: { kind: "value", value } }]));
    expect(back).toEqual([{ ok: true, result: { kind: "value", value } }]);
  });

  test("a hash write's remembered outcome survives the request record; fingerprints tell field bytes apart", () => {
    const entry: RequestEntryData = {
      id: b("id"), fingerprint: new Uint8Array(16), acceptedAtMs: 5,
      outcomes: [{ ok: true, result: { kind: "hashCount", count: 3n } }, { ok: true, result: { kind: "counter", value: -2n } }],
    };
    expect(decodeRequestChunk(encodeRequestChunk([entry]))).toEqual([entry]);
    const fp = (ops: ClientOp[]) => Buffer.from(fingerprintOf(ops)).toString("hex");
    const a: ClientOp = { kind: "hset", key: "h", fields: [{ field: b("ab"), value: b("c") }] };
    const c: ClientOp = { kind: "hset", key: "h", fields: [{ field: b("a"), value: b("bc") }] };
    const d: ClientOp = { kind: "hdel", key: "h", fields: [b("x")] };
    const e: ClientOp = { kind: "hdel", key: "h", fields: [b("y")] };
    expect(fp([a])).not.toBe(fp([c]));
    expect(fp([d])).not.toBe(fp([e]));
    expect(fp([a])).toBe(fp([{ kind: "hset", key: "h", fields: [{ field: b("ab"), value: b("c") }] }]));
  });
});
