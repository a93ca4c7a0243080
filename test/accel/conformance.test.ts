// One conformance suite for the accel contract (src/accel/api.ts), run against the pure-TS
// fallback and the native addon; the native leg is skipped (with the reason) when the addon
// did not load, unless IMDB_REQUIRE_NATIVE=1 makes that a failure.

import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AccelError, AccelErrorCode, ClockOrder, appendRecordsPerCallMax, nativeAccel, nativeCrcImpl, nativeLoadError, tsAccel,
  type AccelParts, type PackedClocks,
} from "../../src/accel/index.ts";

const seed = process.env.IMDB_SEED !== undefined ? Number(process.env.IMDB_SEED) : crypto.getRandomValues(new Uint32Array(1))[0] as number;
const numRuns = Number(process.env.IMDB_PROPERTY_RUNS ?? 1000);
const fcOpts = { seed, numRuns };
const withSeed = (name: string): string => `${name} [IMDB_SEED=${seed}]`;

const dir = mkdtempSync(join(tmpdir(), "imdb-accel-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmpFile = (): string => join(dir, `f${fileNo++}.log`);
const enc = new TextEncoder();

// ---- independent references (deliberately naive, sharing no code with either path) ----

function crcBitwise(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

type Clock = Map<number, number>;
function orderRef(a: Clock, b: Clock): ClockOrder {
  let less = false;
  let more = false;
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(k) ?? 0;
    const y = b.get(k) ?? 0;
    if (x < y) less = true;
    if (x > y) more = true;
  }
  return less && more ? ClockOrder.Concurrent : less ? ClockOrder.Before : more ? ClockOrder.After : ClockOrder.Equal;
}
function arrays(c: Clock): [Uint32Array, Float64Array] {
  const ks = [...c.keys()].sort((x, y) => x - y);
  return [Uint32Array.from(ks), Float64Array.from(ks.map((k) => c.get(k) ?? 0))];
}
function pack(cs: Clock[]): PackedClocks {
  const offsets = new Uint32Array(cs.length + 1);
  const actors: number[] = [];
  const counters: number[] = [];
  cs.forEach((c, i) => {
    const [a, n] = arrays(c);
    actors.push(...a);
    counters.push(...n);
    offsets[i + 1] = actors.length;
  });
  return { offsets, actors: Uint32Array.from(actors), counters: Float64Array.from(counters) };
}
const clock = (o: Record<number, number>): Clock => new Map(Object.entries(o).map(([k, v]) => [Number(k), v]));

/** Few actors and few counter values, so equal / before / after all happen often. */
const clockArb = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(Number.MAX_SAFE_INTEGER))), { maxLength: 8 })
  .map((es) => new Map(es));
const bytesArb = fc.uint8Array({ maxLength: 2048 });
const recordsArb = fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 40 });
function concat(rs: Uint8Array[]): { buf: Uint8Array; offsets: Uint32Array } {
  const offsets = new Uint32Array(rs.length + 1);
  rs.forEach((r, i) => (offsets[i + 1] = (offsets[i] as number) + r.length));
  const buf = new Uint8Array(offsets[rs.length] as number);
  rs.forEach((r, i) => buf.set(r, offsets[i] as number));
  return { buf, offsets };
}

function expectAccelError(fn: () => unknown, code: AccelErrorCode): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(AccelError);
  expect((caught as AccelError).code).toBe(code);
}

// ---- the suite ----

function suite(impl: AccelParts): void {
  const { checksums, clocks, appender } = impl;

  describe("checksums", () => {
    test("known answers", () => {
      expect(checksums.crc32c(enc.encode("123456789"))).toBe(0xe3069283);
      expect(checksums.crc32c(new Uint8Array(0))).toBe(0);
      expect(checksums.crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
      expect(checksums.crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
      expect(checksums.crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
      expect(checksums.crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
      expect(checksums.crc32c(enc.encode("a"))).toBe(0xc1d04330);
    });
    test("a subarray view checksums only its bytes", () => {
      const big = enc.encode("xx123456789yy");
      expect(checksums.crc32c(big.subarray(2, 11))).toBe(0xe3069283);
    });
    test(withSeed("crc32c equals the bitwise reference on random input"), () => {
      fc.assert(fc.property(bytesArb, (d) => checksums.crc32c(d) === crcBitwise(d)), fcOpts);
    });
    test(withSeed("crc32cMany equals crc32c of each record, including empty records"), () => {
      fc.assert(
        fc.property(recordsArb, (rs) => {
          const { buf, offsets } = concat(rs);
          const got = checksums.crc32cMany(buf, offsets);
          expect(got.length).toBe(rs.length);
          rs.forEach((r, i) => expect(got[i]).toBe(crcBitwise(r)));
        }),
        fcOpts,
      );
    });
    test("crc32cMany with zero records returns an empty array", () => {
      expect(checksums.crc32cMany(new Uint8Array(5), Uint32Array.of(0)).length).toBe(0);
    });
    test("crc32cMany refuses bad offsets with BAD_OFFSETS", () => {
      const buf = new Uint8Array(10);
      expectAccelError(() => checksums.crc32cMany(buf, new Uint32Array(0)), AccelErrorCode.BadOffsets);
      expectAccelError(() => checksums.crc32cMany(buf, Uint32Array.of(1, 2)), AccelErrorCode.BadOffsets);
      expectAccelError(() => checksums.crc32cMany(buf, Uint32Array.of(0, 5, 3)), AccelErrorCode.BadOffsets);
      expectAccelError(() => checksums.crc32cMany(buf, Uint32Array.of(0, 11)), AccelErrorCode.BadOffsets);
    });
  });

  describe("clocks", () => {
    const table: Array<[string, Record<number, number>, Record<number, number>, ClockOrder]> = [
      ["both empty", {}, {}, ClockOrder.Equal],
      ["same entries", { 1: 3, 5: 7 }, { 1: 3, 5: 7 }, ClockOrder.Equal],
      ["zero entry equals missing", { 1: 0, 2: 4 }, { 2: 4 }, ClockOrder.Equal],
      ["only zero entries vs empty", { 1: 0, 9: 0 }, {}, ClockOrder.Equal],
      ["one counter lower", { 1: 1 }, { 1: 2 }, ClockOrder.Before],
      ["empty before non-empty", {}, { 4: 1 }, ClockOrder.Before],
      ["missing entry in a", { 1: 1, 3: 1 }, { 1: 1, 2: 1, 3: 1 }, ClockOrder.Before],
      ["one counter higher", { 1: 2 }, { 1: 1 }, ClockOrder.After],
      ["non-empty after empty", { 0: 5 }, {}, ClockOrder.After],
      ["missing entry in b", { 1: 1, 2: 1, 3: 1 }, { 1: 1, 3: 1 }, ClockOrder.After],
      ["disjoint actors", { 1: 1 }, { 2: 1 }, ClockOrder.Concurrent],
      ["crossed counters", { 1: 2, 2: 1 }, { 1: 1, 2: 2 }, ClockOrder.Concurrent],
      ["crossed on last entry only", { 1: 1, 2: 1, 7: 0 }, { 1: 1, 2: 0, 7: 1 }, ClockOrder.Concurrent],
      ["largest safe counters", { 1: Number.MAX_SAFE_INTEGER }, { 1: Number.MAX_SAFE_INTEGER - 1 }, ClockOrder.After],
      ["actor index 2^32-1", { 0xffffffff: 1 }, { 0xffffffff: 1, 0: 1 }, ClockOrder.Before],
    ];
    for (const [name, a, b, want] of table) {
      test(`truth table: ${name}`, () => {
        const [aa, ac] = arrays(clock(a));
        const [ba, bc] = arrays(clock(b));
        expect(clocks.compare(aa, ac, ba, bc)).toBe(want);
      });
    }
    test("compareMany over the whole truth table in one call", () => {
      const got = clocks.compareMany(pack(table.map((r) => clock(r[1]))), pack(table.map((r) => clock(r[2]))));
      expect([...got]).toEqual(table.map((r) => r[3]));
    });
    test(withSeed("compare equals the reference, and swapping a and b mirrors it"), () => {
      const mirror = [ClockOrder.Equal, ClockOrder.After, ClockOrder.Before, ClockOrder.Concurrent];
      fc.assert(
        fc.property(clockArb, clockArb, (a, b) => {
          const [aa, ac] = arrays(a);
          const [ba, bc] = arrays(b);
          const o = clocks.compare(aa, ac, ba, bc);
          expect(o).toBe(orderRef(a, b));
          expect(clocks.compare(ba, bc, aa, ac)).toBe(mirror[o] as ClockOrder);
        }),
        fcOpts,
      );
    });
    test(withSeed("compareMany equals compare of each pair"), () => {
      fc.assert(
        fc.property(fc.array(fc.tuple(clockArb, clockArb), { maxLength: 30 }), (pairs) => {
          const got = clocks.compareMany(pack(pairs.map((p) => p[0])), pack(pairs.map((p) => p[1])));
          expect([...got]).toEqual(pairs.map(([a, b]) => orderRef(a, b)));
        }),
        fcOpts,
      );
    });
    test("bad packed clocks are refused", () => {
      const good = pack([clock({ 1: 1 })]);
      expectAccelError(() => clocks.compareMany(good, pack([])), AccelErrorCode.BadClock);
      expectAccelError(() => clocks.compareMany({ ...good, offsets: Uint32Array.of(0, 2) }, good), AccelErrorCode.BadOffsets);
      expectAccelError(() => clocks.compareMany({ ...good, offsets: Uint32Array.of(1, 1) }, good), AccelErrorCode.BadOffsets);
      expectAccelError(() => clocks.compareMany({ ...good, counters: new Float64Array(0) }, good), AccelErrorCode.BadClock);
      expectAccelError(() => clocks.compare(Uint32Array.of(1), new Float64Array(0), new Uint32Array(0), new Float64Array(0)), AccelErrorCode.BadClock);
    });
  });

  describe("durable append", () => {
    /** A self-delimiting record: u32 length | u8 caller | u16 call | u8 index | payload. */
    function record(caller: number, call: number, index: number, payload: Uint8Array): Uint8Array {
      const r = new Uint8Array(8 + payload.length);
      const v = new DataView(r.buffer);
      v.setUint32(0, payload.length, true);
      v.setUint8(4, caller);
      v.setUint16(5, call, true);
      v.setUint8(7, index);
      r.set(payload, 8);
      return r;
    }

    test(withSeed("many concurrent callers: reopen and read back byte-exact, each call contiguous and in caller order"), async () => {
      const callers = 24;
      const callsPerCaller = 12;
      const rng = fc.sample(fc.tuple(fc.integer({ min: 1, max: 4 }), fc.uint8Array({ maxLength: 300 }), fc.boolean()), {
        seed, numRuns: callers * callsPerCaller,
      });
      const path = tmpFile();
      const f = await appender.open(path);
      expect(f.size).toBe(0);
      const sent: Uint8Array[][] = [];
      let expectedBytes = 0;
      await Promise.all(
        Array.from({ length: callers }, async (_, caller) => {
          for (let call = 0; call < callsPerCaller; call++) {
            const [count, payload, sync] = rng[caller * callsPerCaller + call] as [number, Uint8Array, boolean];
            const recs = Array.from({ length: count }, (_, i) => record(caller, call, i, payload.subarray(i)));
            sent.push(recs);
            for (const r of recs) expectedBytes += r.length;
            await f.append(recs, sync || call === callsPerCaller - 1);
          }
        }),
      );
      expect(f.size).toBe(expectedBytes);
      await f.close();

      const data = new Uint8Array(readFileSync(path));
      expect(data.length).toBe(expectedBytes);
      const nextCall = new Array<number>(callers).fill(0);
      const byKey = new Map(sent.map((recs) => [`${recs[0]?.[4]}/${new DataView((recs[0] as Uint8Array).buffer).getUint16(5, true)}`, recs]));
      let at = 0;
      while (at < data.length) {
        const v = new DataView(data.buffer, data.byteOffset + at);
        const caller = v.getUint8(4);
        const call = v.getUint16(5, true);
        expect(call).toBe(nextCall[caller] as number); // per-caller order kept
        nextCall[caller] = call + 1;
        const recs = byKey.get(`${caller}/${call}`);
        if (!recs) throw new Error(`unexpected record at offset ${at}: caller ${caller} call ${call}`);
        for (const r of recs) {
          expect([...data.subarray(at, at + r.length)]).toEqual([...r]); // the call's records, contiguous, in order
          at += r.length;
        }
      }
      expect(nextCall.every((n) => n === callsPerCaller)).toBe(true);

      const again = await appender.open(path);
      expect(again.size).toBe(expectedBytes);
      await again.append([enc.encode("tail")], true);
      await again.close();
      expect(readFileSync(path).subarray(expectedBytes).toString()).toBe("tail");
    });

    test("group commit: 64 concurrent synced appends share fdatasyncs", async () => {
      const f = await appender.open(tmpFile());
      await Promise.all(Array.from({ length: 64 }, (_, i) => f.append([new Uint8Array(200).fill(i)], true)));
      const s = f.stats();
      await f.close();
      expect(s.calls).toBe(64);
      expect(s.fdatasyncs).toBeGreaterThanOrEqual(1);
      expect(s.fdatasyncs).toBeLessThan(64);
      expect(s.rounds).toBeLessThan(64);
    });

    test("idle: true with nothing appended, false from an append until it settles, true again after; false once closing", async () => {
      const f = await appender.open(tmpFile());
      expect(f.idle()).toBe(true);
      const a = f.append([enc.encode("x")], true);
      const b = f.sync();
      expect(f.idle()).toBe(false);
      await Promise.all([a, b]);
      expect(f.idle()).toBe(true);
      const closing = f.close();
      expect(f.idle()).toBe(false);
      await closing;
    });

    test("unsynced appends followed by sync() are all on disk; an empty sync still syncs", async () => {
      const path = tmpFile();
      const f = await appender.open(path);
      await Promise.all([f.append([enc.encode("a"), enc.encode("bc")], false), f.append([], false), f.append([enc.encode("d")], false)]);
      expect(f.stats().fdatasyncs).toBe(0);
      await f.sync();
      expect(f.stats().fdatasyncs).toBe(1);
      await f.close();
      expect(readFileSync(path).toString()).toBe("abcd");
    });

    test("size starts at the existing file's length", async () => {
      const path = tmpFile();
      writeFileSync(path, "12345");
      const f = await appender.open(path);
      expect(f.size).toBe(5);
      await f.append([enc.encode("6")], true);
      expect(f.size).toBe(6);
      await f.close();
      expect(readFileSync(path).toString()).toBe("123456");
    });

    test("a failed write rejects the batch and poisons the file (/dev/full)", async () => {
      const f = await appender.open("/dev/full");
      const first = await Promise.allSettled([f.append([new Uint8Array(100)], true), f.append([new Uint8Array(100)], true)]);
      for (const r of first) {
        expect(r.status).toBe("rejected");
        expect(((r as PromiseRejectedResult).reason as { code?: string }).code).toBe("ENOSPC");
      }
      // Poisoned: even a call that writes nothing is refused now.
      await expect(f.append([], false)).rejects.toMatchObject({ code: "ENOSPC" });
      await expect(f.sync()).rejects.toMatchObject({ code: "ENOSPC" });
      await f.close();
    });

    test("open of a missing directory rejects with the OS error", async () => {
      await expect(appender.open(join(dir, "no", "such", "x.log"))).rejects.toMatchObject({ code: "ENOENT" });
    });

    test("after close every call is refused with CLOSED; close twice is harmless", async () => {
      const f = await appender.open(tmpFile());
      const pending = f.append([enc.encode("x")], true);
      await f.close();
      await pending; // close waited for it
      await expect(f.append([enc.encode("y")], true)).rejects.toMatchObject({ code: AccelErrorCode.Closed });
      await expect(f.sync()).rejects.toMatchObject({ code: AccelErrorCode.Closed });
      await f.close();
    });

    test("an oversized call (TOO_LARGE) or a non-byte record (BAD_RECORD) is refused and writes nothing", async () => {
      const path = tmpFile();
      const f = await appender.open(path);
      const tooMany = Array.from({ length: appendRecordsPerCallMax + 1 }, () => new Uint8Array(0));
      await expect(f.append(tooMany, true)).rejects.toMatchObject({ code: AccelErrorCode.TooLarge });
      const notBytes = [new Uint16Array(2)] as unknown as Uint8Array[];
      await expect(f.append(notBytes, true)).rejects.toMatchObject({ code: AccelErrorCode.BadRecord });
      expect(f.size).toBe(0);
      await f.append([enc.encode("ok")], true);
      await f.close();
      expect(readFileSync(path).toString()).toBe("ok");
    });
  });
}

describe("ts", () => suite(tsAccel));

const native = nativeAccel();
if (native) {
  describe(`native (crc ${nativeCrcImpl()})`, () => {
    suite(native);

    describe("native == ts", () => {
      test(withSeed("crc32c and crc32cMany"), () => {
        fc.assert(
          fc.property(recordsArb, (rs) => {
            const { buf, offsets } = concat(rs);
            expect(native.checksums.crc32c(buf)).toBe(tsAccel.checksums.crc32c(buf));
            expect(native.checksums.crc32cMany(buf, offsets)).toEqual(tsAccel.checksums.crc32cMany(buf, offsets));
          }),
          fcOpts,
        );
      });
      test(withSeed("compare and compareMany"), () => {
        fc.assert(
          fc.property(fc.array(fc.tuple(clockArb, clockArb), { maxLength: 20 }), (pairs) => {
            for (const [a, b] of pairs) {
              const [aa, ac] = arrays(a);
              const [ba, bc] = arrays(b);
              expect(native.clocks.compare(aa, ac, ba, bc)).toBe(tsAccel.clocks.compare(aa, ac, ba, bc));
            }
            const pa = pack(pairs.map((p) => p[0]));
            const pb = pack(pairs.map((p) => p[1]));
            expect(native.clocks.compareMany(pa, pb)).toEqual(tsAccel.clocks.compareMany(pa, pb));
          }),
          fcOpts,
        );
      });
      test("the C++ table fallback (IMDB_ACCEL_CRC=table) gives the same checksums", () => {
        const script = join(import.meta.dir, "crc-table-probe.ts");
        const r = Bun.spawnSync([process.execPath, script], { env: { ...process.env, IMDB_ACCEL_CRC: "table" } });
        expect(r.stderr.toString()).toBe("");
        expect(r.stdout.toString().trim()).toBe("table ok");
      });
    });
  });
} else if (process.env.IMDB_REQUIRE_NATIVE === "1") {
  test("native addon is required (IMDB_REQUIRE_NATIVE=1)", () => {
    throw new Error(`native addon did not load: ${nativeLoadError()}`);
  });
} else {
  describe.skip(`native (skipped: addon not loaded: ${nativeLoadError()})`, () => {
    test("suite", () => {});
  });
}
