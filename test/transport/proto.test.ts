// Counter values cross the wire as exact int64 both ways; keys are checked as UTF-8 bytes, not strings.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { bigIntToInt64, codecs, int64Max, int64Min, int64ToBigInt } from "../../src/transport/proto.ts";
import { decodeKey } from "../../src/transport/validate.ts";
import { OpFailure } from "../../src/transport/api.ts";

const runs = Number(process.env.IMDB_PROPERTY_RUNS ?? 1000);
const seed = process.env.IMDB_SEED !== undefined ? Number(process.env.IMDB_SEED) : Date.now() ^ (Math.random() * 0x7fffffff);

function check<T>(arb: fc.Arbitrary<T>, pred: (v: T) => void): void {
  const out = fc.check(fc.property(arb, pred), { numRuns: runs, seed });
  if (out.failed) throw new Error(`property failed with IMDB_SEED=${seed}: ${fc.defaultReportMessage(out)}`);
}

const edgy = fc.oneof(
  fc.bigInt({ min: int64Min, max: int64Max }),
  fc.constantFrom(int64Min, int64Min + 1n, -1n, 0n, 1n, 2n ** 31n, -(2n ** 31n), 2n ** 32n, 2n ** 53n + 1n, int64Max - 1n, int64Max),
);

describe("int64 on the wire", () => {
  test("bigint -> protobuf int64 -> bigint is exact", () => {
    check(edgy, (v) => {
      const bytes = codecs.CounterResponse.encode({ value: bigIntToInt64(v) });
      expect(int64ToBigInt(codecs.CounterResponse.decode(bytes).value)).toBe(v);
    });
  });

  test("values the TS side wrote decode identically in a Batch result", () => {
    check(fc.array(edgy, { maxLength: 20 }), (vs) => {
      const bytes = codecs.BatchResponse.encode({ results: vs.map((v) => ({ code: 0, counter: { value: bigIntToInt64(v) } })) });
      const back = (codecs.BatchResponse.decode(bytes).results ?? []).map((r) => int64ToBigInt(r.counter?.value));
      expect(back).toEqual(vs);
    });
  });
});

describe("keys", () => {
  test("any string of 1..1024 UTF-8 bytes round-trips; invalid UTF-8 never passes", () => {
    check(fc.string({ unit: "binary", minLength: 1, maxLength: 300 }), (s) => {
      const bytes = new TextEncoder().encode(s);
      if (bytes.length <= 1024) expect(decodeKey(bytes)).toBe(s);
      else expect(() => decodeKey(bytes)).toThrow(OpFailure);
    });
    check(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
      let valid = true;
      try {
        new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        valid = false;
      }
      if (!valid) expect(() => decodeKey(bytes)).toThrow("not valid UTF-8");
    });
  });
});
