// Hash (OR-Map of register or counter fields): two-replica timelines of what users rely on
// (an unobserved HSET survives an HDEL, a removed counter keeps only the increments its HDEL did
// not see, HINCRBY after HDEL starts from zero, Redis's integer rules), the limits, the
// decoder's refusals, and a dense seeded property against the reference model.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeState, DecodeError, encodeState, Writer, WireType } from "../../src/codec/index.ts";
import { CrdtError, CrdtErrorCode, fieldEncodedBytes, internActor, OrMap, widest, type HashPair } from "../../src/crdt/index.ts";
import { contextBytesUpperBound, CrdtType, kinds } from "../../src/kinds/index.ts";
import { hashFieldBytesMax, hashFieldsWriteMax } from "../../src/limits.ts";
import { cmdArb, runWorld, observed, same, specs, World, type Replica } from "./harness.ts";
import { checkProperty } from "./prop.ts";

const a = internActor("a");
const b = internActor("b");
const enc = new TextEncoder();
const dec = new TextDecoder();
const f = (s: string): Uint8Array => enc.encode(s);
const pair = (field: string, value: string): HashPair => ({ field: f(field), value: f(value) });
const t = (ms: number, logical = 0) => ({ ms, logical });
/** HGET as text, or null. */
const hget = (s: OrMap, field: string): string | null => {
  const v = s.get(f(field));
  return v === null ? null : dec.decode(v);
};
const all = (s: OrMap): string[] => s.getAll().map((p) => `${dec.decode(p.field)}=${dec.decode(p.value)}`);

function refused(fn: () => unknown, code: CrdtErrorCode, message?: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CrdtError);
    expect((e as CrdtError).code).toBe(code);
    if (message !== undefined) expect((e as CrdtError).message).toMatch(message);
    return;
  }
  throw new Error("expected a refusal");
}

describe("OrMap timelines (two replicas)", () => {
  test("HSET on B that A's HDEL did not see survives the HDEL; the HDEL removes what A saw", () => {
    const ra = new OrMap();
    const rb = new OrMap();
    rb.merge(ra.set(a, t(1), [pair("name", "v1"), pair("other", "o")]).delta);
    const del = ra.del([f("name")]);
    expect(del.removed).toBe(1);
    const set = rb.set(b, t(2), [pair("name", "v2")]); // concurrent: B had not seen the HDEL
    expect(set.added).toBe(0);
    ra.merge(set.delta);
    rb.merge(del.delta as OrMap);
    expect(hget(ra, "name")).toBe("v2");
    expect(ra.equals(rb)).toBe(true);
    expect(all(ra)).toEqual(["name=v2", "other=o"]);
    expect(ra.len()).toBe(2);
  });

  test("concurrent HSETs of one field are both kept; every replica shows the greatest (ms, logical, actor), and the next HSET replaces both", () => {
    const ra = new OrMap();
    const rb = new OrMap();
    const da = ra.set(a, t(5, 1), [pair("x", "from-a")]).delta;
    const db = rb.set(b, t(5, 1), [pair("x", "from-b")]).delta; // equal timestamps: the actor decides
    ra.merge(db);
    rb.merge(da);
    expect(hget(ra, "x")).toBe("from-b");
    expect(hget(rb, "x")).toBe("from-b");
    expect(ra.field(f("x"))?.entries.length).toBe(2);
    const next = ra.set(a, t(6), [pair("x", "after")]).delta;
    rb.merge(next);
    expect(rb.field(f("x"))?.entries.length).toBe(1);
    expect(hget(rb, "x")).toBe("after");
  });

  test("HDEL of a counter field concurrent with HINCRBY: only the increment the HDEL did not see remains", () => {
    const ra = new OrMap();
    const rb = new OrMap();
    rb.merge(ra.incr(a, f("hits"), 5n).delta);
    rb.merge(rb.incr(b, f("hits"), 2n).delta);
    ra.merge(rb.incr(b, f("hits"), 1n).delta); // A sees 8
    expect(hget(ra, "hits")).toBe("8");
    const del = ra.del([f("hits")]);
    const inc = rb.incr(b, f("hits"), 10n); // concurrent with the HDEL
    expect(inc.value).toBe(18n);
    ra.merge(inc.delta);
    rb.merge(del.delta as OrMap);
    expect(hget(ra, "hits")).toBe("10");
    expect(hget(rb, "hits")).toBe("10");
    expect(ra.equals(rb)).toBe(true);
  });

  test("HINCRBY after HDEL starts from zero, on the deleting replica and on one that learns of the HDEL later", () => {
    const ra = new OrMap();
    const rb = new OrMap();
    rb.merge(ra.incr(a, f("n"), 7n).delta);
    rb.merge(rb.incr(b, f("n"), -3n).delta);
    const del = rb.del([f("n")]);
    expect(hget(rb, "n")).toBeNull();
    expect(rb.incr(b, f("n"), 2n).value).toBe(2n);
    ra.merge(del.delta as OrMap);
    expect(hget(ra, "n")).toBeNull();
    expect(ra.incr(a, f("n"), 1n).value).toBe(1n);
    ra.merge(rb);
    rb.merge(ra);
    expect(hget(ra, "n")).toBe("3");
    expect(ra.equals(rb)).toBe(true);
    // A removed counter keeps its reset rows but is not present.
    expect(ra.del([f("n")]).removed).toBe(1);
    expect(ra.len()).toBe(0);
    expect(ra.field(f("n"))?.rows.length).toBeGreaterThan(0);
    expect(ra.present()).toBe(false);
  });

  test("a field written as a register on one replica and counted on another shows the counter; HDEL removes both", () => {
    const ra = new OrMap();
    const rb = new OrMap();
    const da = ra.set(a, t(9), [pair("f", "text")]).delta;
    const db = rb.incr(b, f("f"), 4n).delta;
    ra.merge(db);
    rb.merge(da);
    expect(hget(ra, "f")).toBe("4");
    expect(hget(rb, "f")).toBe("4");
    expect(ra.field(f("f"))?.entries.length).toBe(1); // kept, hidden
    // HINCRBY on the counter covers the hidden register value.
    const inc = ra.incr(a, f("f"), 1n);
    expect(inc.value).toBe(5n);
    expect(ra.field(f("f"))?.entries.length).toBe(0);
    rb.merge(inc.delta);
    expect(rb.del([f("f")]).removed).toBe(1);
    expect(rb.present()).toBe(false);
  });

  test("HSET over a counter replaces it; an increment the HSET did not see keeps the counter showing", () => {
    const ra = new OrMap();
    const rb = new OrMap();
    rb.merge(ra.incr(a, f("c"), 3n).delta);
    const set = ra.set(a, t(3), [pair("c", "word")]);
    expect(set.added).toBe(0);
    expect(hget(ra, "c")).toBe("word");
    const inc = rb.incr(b, f("c"), 2n); // concurrent
    ra.merge(inc.delta);
    rb.merge(set.delta);
    expect(hget(ra, "c")).toBe("2"); // the counter shows; A's HSET reset the 3 it saw
    expect(ra.equals(rb)).toBe(true);
  });

  test("HINCRBY on a register field: an integer converts (Redis: HSET 10, HINCRBY 5 gives 15), anything else is refused and changes nothing", () => {
    const r = new OrMap();
    r.set(a, t(1), [pair("i", "10"), pair("s", "ten"), pair("z", "007"), pair("m", "-0")]);
    expect(r.incr(a, f("i"), 5n).value).toBe(15n);
    expect(hget(r, "i")).toBe("15");
    expect(r.field(f("i"))?.entries.length).toBe(0);
    for (const name of ["s", "z", "m"]) {
      const before = encodeState(r);
      refused(() => r.incr(a, f(name), 1n), CrdtErrorCode.Invalid, /hash value is not an integer/);
      expect(encodeState(r)).toEqual(before);
    }
  });

  test("HINCRBY refuses, before any change, a result outside int64 and an amount outside it", () => {
    const r = new OrMap();
    r.incr(a, f("c"), (1n << 63n) - 1n);
    const before = encodeState(r);
    refused(() => r.incr(a, f("c"), 1n), CrdtErrorCode.OutOfRange, /overflow/);
    refused(() => r.incr(a, f("d"), 1n << 63n), CrdtErrorCode.OutOfRange);
    r.set(a, t(1), [pair("big", "9223372036854775807")]);
    const before2 = encodeState(r);
    refused(() => r.incr(a, f("big"), 1n), CrdtErrorCode.OutOfRange);
    expect(encodeState(r)).toEqual(before2);
    expect(r.incr(a, f("c"), -5n).value).toBe((1n << 63n) - 6n);
    expect(before.length).toBeGreaterThan(0);
  });

  test("HSET of one field twice in a call keeps the last; HDEL of absent fields changes nothing", () => {
    const r = new OrMap();
    const { added } = r.set(a, t(1), [pair("k", "1"), pair("k", "2")]);
    expect(added).toBe(1);
    expect(hget(r, "k")).toBe("2");
    expect(r.getMany([f("k"), f("nope")]).map((v) => (v === null ? null : dec.decode(v)))).toEqual(["2", null]);
    const before = encodeState(r);
    expect(r.del([f("nope"), f("nope2")])).toEqual({ delta: null, removed: 0 });
    expect(encodeState(r)).toEqual(before);
  });

  test("whole-key removeObserved removes everything seen and resets counters; an unseen write survives", () => {
    const ra = new OrMap();
    const rb = new OrMap();
    rb.merge(ra.set(a, t(1), [pair("x", "1")]).delta);
    rb.merge(ra.incr(a, f("c"), 4n).delta);
    const gone = ra.removeObserved() as OrMap;
    expect(ra.present()).toBe(false);
    expect(ra.removeObserved()).toBeNull();
    const late = rb.incr(b, f("c"), 1n).delta; // concurrent
    rb.merge(gone);
    ra.merge(late);
    expect(all(ra)).toEqual(["c=1"]);
    expect(ra.equals(rb)).toBe(true);
    const again = ra.clone();
    expect(again.merge(gone)).toBe(false);
  });
});

describe("OrMap limits and refusals", () => {
  test("an empty or too long field, a too long value or a bad HLC is refused and changes nothing", () => {
    const r = new OrMap();
    refused(() => r.set(a, t(1), [pair("", "v")]), CrdtErrorCode.Invalid, /empty/);
    refused(() => r.set(a, t(1), [pair("ok", "v"), { field: new Uint8Array(hashFieldBytesMax + 1), value: f("v") }]), CrdtErrorCode.Invalid);
    refused(() => r.incr(a, new Uint8Array(0), 1n), CrdtErrorCode.Invalid);
    refused(() => r.del([new Uint8Array(hashFieldBytesMax + 1)]), CrdtErrorCode.Invalid);
    refused(() => r.set(a, t(-1), [pair("ok", "v")]), CrdtErrorCode.Invalid);
    expect(r.fields.length).toBe(0);
    expect(r.ctx.vv.size).toBe(0);
    r.set(a, t(1), [{ field: new Uint8Array(hashFieldBytesMax).fill(1), value: f("v") }]);
    expect(r.len()).toBe(1);
  });

  test("a write past hashFieldsWriteMax fields is LIMIT_EXCEEDED and changes nothing; writing existing fields still works", () => {
    const r = new OrMap();
    const pairs: HashPair[] = [];
    for (let i = 0; i < hashFieldsWriteMax; i++) pairs.push({ field: f(`f${i}`), value: f("") });
    r.set(a, t(1), pairs);
    expect(r.len()).toBe(hashFieldsWriteMax);
    const before = r.clone();
    refused(() => r.set(a, t(2), [pair("new", "v")]), CrdtErrorCode.LimitExceeded, /fields/);
    refused(() => r.incr(a, f("new"), 1n), CrdtErrorCode.LimitExceeded);
    expect(r.equals(before)).toBe(true);
    expect(kinds.hash.countsOutside(r, { what: "w", stateBytes: 1e12, siblings: 1, ctxActors: 10, cloudDots: 10, counterRows: 10, setMembers: 1, hashFields: hashFieldsWriteMax - 1, fieldSiblings: 1 }))
      .toMatch(/hash fields/);
    r.set(a, t(3), [pair("f7", "still writable")]);
    expect(hget(r, "f7")).toBe("still writable");
  });
});

describe("OrMap size bound", () => {
  test("the byte bound of a hash of small fields stays within 1.1x its encoding, so writes take the exact (encoding) check only near the state limit", () => {
    // With a bound of a maximal actor id per dot (319 bytes), a 30-byte field counted as ~365
    // and every write into a hash past ~11k fields encoded the whole state to decide.
    const r = new OrMap();
    const pairs: HashPair[] = [];
    for (let i = 0; i < 2000; i++) pairs.push(pair(`field:${i}`, `v${i}`));
    r.set(a, t(1), pairs);
    for (let i = 0; i < 50; i++) r.incr(b, f(`n${i}`), 3n);
    expect(kinds.hash.bytesUpperBound(r)).toBeLessThanOrEqual(1.1 * encodeState(r).length);
    expect(kinds.hash.bytesUpperBound(r)).toBeGreaterThanOrEqual(encodeState(r).length);
  });
});

describe("OrMap codec", () => {
  function stateWith(write: (w: Writer) => void): Uint8Array {
    const w = new Writer();
    write(w);
    return w.finish();
  }
  function dot(w: Writer, field: number, actor: string, counter: number): void {
    const at = w.begin(field);
    w.tag(1, WireType.Bytes);
    w.bytes(f(actor));
    w.tag(2, WireType.Varint);
    w.uint(counter);
    w.end(at);
  }
  function field(w: Writer, name: Uint8Array, body: (w: Writer) => void): void {
    const at = w.begin(1);
    w.tag(1, WireType.Bytes);
    w.bytes(name);
    body(w);
    w.end(at);
  }
  const entry = (w: Writer, actor: string, counter: number): void => {
    const at = w.begin(2);
    dot(w, 1, actor, counter);
    w.end(at);
  };
  const row = (w: Writer, actor: string, p: number, rp: number): void => {
    const at = w.begin(4);
    w.tag(1, WireType.Bytes);
    w.bytes(f(actor));
    w.tag(2, WireType.Varint);
    w.uint(p);
    w.tag(4, WireType.Varint);
    w.uint(rp);
    w.end(at);
  };
  const decodes = (bytes: Uint8Array) => decodeState(CrdtType.OrMap, bytes) as OrMap;
  const refusedBytes = (bytes: Uint8Array, message: RegExp): void => {
    expect(() => decodes(bytes)).toThrow(DecodeError);
    expect(() => decodes(bytes)).toThrow(message);
  };

  test("a well-formed state in any order decodes to the canonical one, its live dots in its context", () => {
    const bytes = stateWith((w) => {
      field(w, f("b"), (x) => entry(x, "a", 2));
      field(w, f("a"), (x) => { dot(x, 3, "a", 1); row(x, "a", 5, 0); });
    });
    const s = decodes(bytes);
    expect(all(s)).toEqual(["a=5", "b="]);
    expect(s.ctx.vv.get(a)).toBe(2);
    expect(decodes(encodeState(s)).equals(s)).toBe(true);
  });

  test("duplicate fields, duplicate dots, an empty name, an empty field, a field past the bound and a row resetting more than it counts are refused", () => {
    refusedBytes(stateWith((w) => { field(w, f("x"), (x) => entry(x, "a", 1)); field(w, f("x"), (x) => entry(x, "a", 2)); }), /duplicate hash field/);
    refusedBytes(stateWith((w) => { field(w, f("x"), (x) => entry(x, "a", 1)); field(w, f("y"), (x) => dot(x, 3, "a", 1)); }), /duplicate dot/);
    refusedBytes(stateWith((w) => field(w, new Uint8Array(0), (x) => entry(x, "a", 1))), /without name/);
    refusedBytes(stateWith((w) => field(w, f("x"), () => undefined)), /holding nothing/);
    refusedBytes(stateWith((w) => field(w, new Uint8Array(hashFieldBytesMax + 1), (x) => entry(x, "a", 1))), /hash field name/);
    refusedBytes(stateWith((w) => field(w, f("x"), (x) => row(x, "a", 1, 2))), /resets more than it counts/);
  });

  test("random bytes decode to a valid state or a DecodeError, never anything else", () => {
    checkProperty("hash decoder", fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      try {
        const s = decodes(bytes);
        expect(same(decodes(encodeState(s)), s)).toBe(true);
      } catch (e) {
        if (!(e instanceof DecodeError)) throw e;
      }
    }));
  });
});

describe("OrMap against the reference model (dense histories)", () => {
  // Short histories on two or three replicas: most ops meet on one field, and every replica is
  // checked against the model before each op (harness World.applyHash), then after a full exchange.
  const spec = specs.find((s) => s.kind === "hash");
  if (spec === undefined) throw new Error("no hash spec");
  test("every replica shows what the model says, before each op and after convergence", () => {
    const worldArb = fc.record({ n: fc.integer({ min: 2, max: 3 }), cmds: fc.array(cmdArb(spec), { maxLength: 14 }) });
    checkProperty("hash dense model", fc.property(worldArb, ({ n, cmds }) => {
      const w = new World(spec, n);
      runWorld(w, cmds);
      w.fullExchange();
      const first = (w.replicas[0] as Replica).state;
      for (const r of w.replicas) expect(same(r.state, first)).toBe(true);
      expect(observed(first)).toBe(w.expected());
    }), 8);
  });

  test("the size bounds kept by merge stay upper bounds of the exact figures (the engine's write and merge checks rely on them)", () => {
    const worldArb = fc.record({ n: fc.integer({ min: 2, max: 3 }), cmds: fc.array(cmdArb(spec), { maxLength: 30 }) });
    checkProperty("hash bounds", fc.property(worldArb, ({ n, cmds }) => {
      const w = new World(spec, n);
      // Checked after every command, so the kept figures are computed early and then carried
      // through later merges (as the engine's checks do before every write).
      const check = (): void => {
        const states = w.replicas.map((r) => r.state as OrMap);
        for (const s of [...states, ...states.map((x) => x.clone())]) {
          expect(kinds.hash.bytesUpperBound(s)).toBeGreaterThanOrEqual(encodeState(s).length);
          // Kept exactly (only the width bounds may run above the exact figure); the rest of the
          // encoding is the context message, which contextBytesUpperBound bounds.
          expect(kinds.hash.bytesUpperBound(s) - encodeState(s).length).toBeLessThanOrEqual(contextBytesUpperBound(s.ctx) + 8);
          expect(s.fieldsBytesUpperBound()).toBe(s.fields.reduce((n, f) => n + fieldEncodedBytes(f), 0));
          expect(s.fieldsBytesUpperBound()).toBe(encodeState(s).length - encodeState(new OrMap([], s.ctx)).length);
          const exact = widest(s.fields);
          const ub = s.widthUpperBound();
          expect(ub.siblings).toBeGreaterThanOrEqual(exact.siblings);
          expect(ub.rows).toBeGreaterThanOrEqual(exact.rows);
        }
      };
      runWorld(w, cmds, check);
      check();
    }), 2);
  });
});
