// The codec: every decoder takes any bytes and either succeeds or throws DecodeError; encodings
// are canonical; and protobufjs, parsing proto/crdt.proto, reads our bytes identically.

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import protobuf from "protobufjs";
import protoText from "../../proto/crdt.proto" with { type: "text" };
import {
  CrdtType, crdtTypeOf, decodeContext, decodeEnvelope, decodeState, DecodeError, encodeContext, encodeEnvelope,
  encodeState, keyUtf8, Reader, Writer, type CrdtState,
} from "../../src/codec/index.ts";
import { actorName, internActor, GCounter, LwwRegister, MvRegister, OrMap, PNCounter, type ActorId, type CausalContext } from "../../src/crdt/index.ts";
import { cmdArb, runWorld, same, specs, World } from "../crdt/harness.ts";
import { checkProperty } from "../crdt/prop.ts";

const root = protobuf.parse(protoText).root;
const messageOf: Record<CrdtType, string> = {
  [CrdtType.GCounter]: "imdb.crdt.v1.GCounterState",
  [CrdtType.PNCounter]: "imdb.crdt.v1.PNCounterState",
  [CrdtType.LwwRegister]: "imdb.crdt.v1.LwwRegisterState",
  [CrdtType.Deadline]: "imdb.crdt.v1.DeadlineState",
  [CrdtType.MvRegister]: "imdb.crdt.v1.MvRegisterState",
  [CrdtType.OrSet]: "imdb.crdt.v1.OrSetState",
  [CrdtType.OrMap]: "imdb.crdt.v1.OrMapState",
};

/** States of every type from random shared histories. */
const stateArb: fc.Arbitrary<CrdtState> = fc.oneof(
  ...specs.map((spec) =>
    fc.tuple(fc.array(cmdArb(spec), { maxLength: 30 }), fc.nat(2)).map(([cmds, i]) => {
      const w = new World(spec, 3);
      runWorld(w, cmds);
      return (w.replicas[i] as { state: CrdtState }).state;
    })),
);

function decodesOrDecodeError(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof DecodeError)) throw new Error(`decoder threw ${String(e)} instead of DecodeError`);
  }
}

const decoders: [string, (b: Uint8Array) => unknown][] = [
  ["GCounter", (b) => decodeState(CrdtType.GCounter, b)],
  ["PNCounter", (b) => decodeState(CrdtType.PNCounter, b)],
  ["LwwRegister", (b) => decodeState(CrdtType.LwwRegister, b)],
  ["MvRegister", (b) => decodeState(CrdtType.MvRegister, b)],
  ["OrSet", (b) => decodeState(CrdtType.OrSet, b)],
  ["Deadline", (b) => decodeState(CrdtType.Deadline, b)],
  ["envelope", (b) => decodeEnvelope(b)],
  ["context", (b) => decodeContext(b, keyUtf8("k") as Uint8Array)],
];

// Valid encodings with random damage find deeper paths than random bytes alone.
const damagedArb = fc.tuple(stateArb, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), fc.nat(), fc.boolean())
  .map(([s, flips, cut, doCut]) => {
    const b = encodeEnvelope(keyUtf8("k") as Uint8Array, s);
    for (const [at, v] of flips) if (b.length > 0) b[at % b.length] = v;
    return doCut ? b.subarray(0, cut % (b.length + 1)) : b;
  });

describe("decoders", () => {
  for (const [name, decode] of decoders) {
    test(`${name}: random bytes either decode or throw DecodeError`, () => {
      const bytes = fc.oneof(fc.uint8Array({ maxLength: 64 }), damagedArb);
      checkProperty(`${name} fuzz`, fc.property(bytes, (b) => decodesOrDecodeError(() => decode(b))));
    });
  }

  test("a damaged envelope that still decodes yields a state that re-encodes canonically", () => {
    checkProperty("damaged re-encode", fc.property(damagedArb, (b) => {
      let env;
      try {
        env = decodeEnvelope(b);
      } catch (e) {
        if (e instanceof DecodeError) return;
        throw e;
      }
      const again = decodeEnvelope(encodeEnvelope(keyUtf8(env.key) as Uint8Array, env.state));
      expect(same(again.state, env.state)).toBe(true);
    }));
  });

  test("limits and malformed input are refused with DecodeError", () => {
    const w = new Writer();
    w.tag(1, 2);
    w.uint(1 << 30); // a length far past the end: refused before any allocation
    expect(() => decodeState(CrdtType.GCounter, w.finish())).toThrow(DecodeError);
    expect(() => new Reader(Uint8Array.of(0x80, 0x00)).uint()).toThrow(DecodeError); // non-minimal varint
    expect(() => new Reader(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)).uint64()).toThrow(DecodeError);
    expect(() => decodeEnvelope(Uint8Array.of(0x08, 0x03, 0x10, 0x01, 0x1a, 0x01, 0x6b))).toThrow(/format version 3/);
    // version 1 cannot carry conflict sides (field 6) ...
    expect(() => decodeEnvelope(Uint8Array.of(0x08, 0x01, 0x10, 0x01, 0x1a, 0x01, 0x6b, 0x32, 0x02, 0x08, 0x02))).toThrow(/version-1/);
    // ... a key holds each type once (a conflict side of the envelope's own type) ...
    expect(() => decodeEnvelope(Uint8Array.of(0x08, 0x02, 0x10, 0x01, 0x1a, 0x01, 0x6b, 0x32, 0x02, 0x08, 0x01))).toThrow(/two states of CRDT type 1/);
    // ... and a stamp is 48 bits
    expect(() => decodeEnvelope(Uint8Array.of(0x08, 0x01, 0x10, 0x01, 0x1a, 0x01, 0x6b, 0x28, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40))).toThrow(/creation stamp/);
    expect(() => decodeEnvelope(Uint8Array.of(0x08, 0x01, 0x10, 0x09, 0x1a, 0x01, 0x6b))).toThrow(/CRDT type 9/);
    // a G-Counter row whose actor id is invalid UTF-8
    expect(() => decodeState(CrdtType.GCounter, Uint8Array.of(0x0a, 0x05, 0x0a, 0x01, 0xff, 0x10, 0x01))).toThrow(DecodeError);
    // duplicate actor rows
    const dup = Uint8Array.of(0x0a, 0x05, 0x0a, 0x01, 0x61, 0x10, 0x01, 0x0a, 0x05, 0x0a, 0x01, 0x61, 0x10, 0x02);
    expect(() => decodeState(CrdtType.GCounter, dup)).toThrow(/duplicate actor/);
  });
});

describe("envelope versions", () => {
  test("a record of the previous release reads as stamp 0; a stamp alone stays version 1 (older readers skip it); conflicts make version 2; protobufjs reads them", () => {
    const g = new GCounter([internActor("a")], [3n]);
    const v1 = encodeEnvelope(keyUtf8("k") as Uint8Array, g);
    expect(v1[1]).toBe(1); // format_version 1, no field 5: the previous release's exact bytes
    const old = decodeEnvelope(v1);
    expect(old.createdMs).toBe(0);
    expect(old.conflicts).toEqual([]);
    const stamped = encodeEnvelope(keyUtf8("k") as Uint8Array, g, 1_700_000_000_000);
    expect(stamped[1]).toBe(1);
    expect(decodeEnvelope(stamped).createdMs).toBe(1_700_000_000_000);
    const lww = new LwwRegister();
    lww.set(internActor("b"), Uint8Array.of(7), { ms: 5, logical: 0 });
    const v2 = encodeEnvelope(keyUtf8("k") as Uint8Array, lww, 1_700_000_000_000, [{ type: CrdtType.GCounter, createdMs: 1_700_000_000_009, state: g }]);
    const back = decodeEnvelope(v2);
    expect(back.type).toBe(CrdtType.LwwRegister);
    expect(back.createdMs).toBe(1_700_000_000_000);
    expect(back.conflicts.map((c) => [c.type, c.createdMs])).toEqual([[CrdtType.GCounter, 1_700_000_000_009]]);
    expect(same(back.conflicts[0]?.state as CrdtState, g)).toBe(true);
    const theirs = root.lookupType("imdb.crdt.v1.KeyState").decode(v2) as unknown as {
      formatVersion: number; createdMs: { toNumber(): number }; conflicts: { type: number; createdMs: { toNumber(): number }; state: Uint8Array }[];
    };
    expect(theirs.formatVersion).toBe(2);
    expect(theirs.createdMs.toNumber()).toBe(1_700_000_000_000);
    expect(theirs.conflicts[0]?.type).toBe(CrdtType.GCounter);
    expect(theirs.conflicts[0]?.createdMs.toNumber()).toBe(1_700_000_000_009);
    expect(same(decodeState(CrdtType.GCounter, theirs.conflicts[0]?.state as Uint8Array), g)).toBe(true);
  });
});

describe("canonical encoding", () => {
  test("equal states give equal bytes, and decode(encode(x)) re-encodes to the same bytes", () => {
    checkProperty("canonical", fc.property(stateArb, (s) => {
      const b = encodeState(s);
      const again = encodeState(decodeState(crdtTypeOf(s), b));
      expect(Buffer.from(again).equals(Buffer.from(b))).toBe(true);
    }));
  });

  test("Writer widens a submessage length past 127 bytes correctly", () => {
    const big = new LwwRegister();
    big.set(internActor("w"), new Uint8Array(300).fill(7), { ms: 1, logical: 0 });
    const env = encodeEnvelope(keyUtf8("x".repeat(200)) as Uint8Array, big);
    const back = decodeEnvelope(env);
    expect(back.key).toBe("x".repeat(200));
    expect((back.state as LwwRegister).value).toEqual(new Uint8Array(300).fill(7));
  });

  test("Writer.uint writes the protobuf varint of every integer up to 2^53 (timestamps take its 28-bit split)", () => {
    // The varint as the protobuf spec defines it, by BigInt: 7 bits per byte, low first.
    const reference = (v: number): number[] => {
      const out: number[] = [];
      let x = BigInt(v);
      while (x >= 0x80n) {
        out.push(Number(x & 0x7fn) | 0x80);
        x >>= 7n;
      }
      out.push(Number(x));
      return out;
    };
    const edges = [0, 1, 0x7f, 0x80, 0x3fff, 0x4000, 0x0fff_ffff, 0x1000_0000, 0x1000_0001, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32,
      2 ** 35 - 1, 2 ** 35, 1_764_547_200_123, 2 ** 48 - 1, 2 ** 49, 2 ** 53 - 1, 2 ** 53];
    const seed = 0x5eed_0012;
    let s = seed;
    const next = (): number => (s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0);
    const randoms = Array.from({ length: 2000 }, () => (next() % 2 ** 21) * 2 ** 32 + next());
    for (const v of [...edges, ...randoms]) {
      const w = new Writer();
      w.uint(v);
      const bytes = w.finish();
      if (Array.from(bytes).join(",") !== reference(v).join(",")) throw new Error(`seed ${seed}: Writer.uint(${v}) wrote ${Array.from(bytes)}`);
      if (v <= Number.MAX_SAFE_INTEGER) expect(new Reader(bytes).uint()).toBe(v); // the reader stops at 2^53 - 1
    }
  });
});

function toBig(x: unknown): bigint {
  return BigInt(String(x ?? 0));
}

/** Our state, read through protobufjs, as a plain comparable structure. */
function viaProtobufjs(type: CrdtType, bytes: Uint8Array): unknown {
  const msg = root.lookupType(messageOf[type]).decode(bytes) as unknown as Record<string, unknown>;
  const rows = (msg.entries ?? []) as Record<string, unknown>[];
  const resets = (msg.resets ?? []) as Record<string, unknown>[];
  const arr = (v: unknown) => Array.from((v as Uint8Array | undefined) ?? []);
  switch (type) {
    case CrdtType.GCounter: return [rows.map((r) => [r.actor, toBig(r.count)]), resets.map((r) => [r.actor, toBig(r.p)])];
    case CrdtType.PNCounter: return [rows.map((r) => [r.actor, toBig(r.p), toBig(r.n)]), resets.map((r) => [r.actor, toBig(r.p), toBig(r.n)])];
    case CrdtType.LwwRegister: {
      // The single-write form is one entry and no context beyond it.
      if (msg.actor !== undefined && msg.actor !== "") return [[[msg.actor, toBig(msg.timestamp), arr(msg.value)]], []];
      const ctx = (msg.context ?? []) as Record<string, unknown>[];
      return [rows.map((r) => [r.actor, toBig(r.timestamp), arr(r.value)]), ctx.map((r) => [r.actor, toBig(r.timestamp)])];
    }
    case CrdtType.MvRegister: {
      const ctx = (msg.context ?? {}) as Record<string, Record<string, unknown>[] | undefined>;
      return [
        rows.map((r) => [pair(r.dot as Record<string, unknown>), Array.from((r.value as Uint8Array | undefined) ?? [])]),
        (ctx.vv ?? []).map(pair),
        (ctx.cloud ?? []).map(pair),
      ];
    }
    case CrdtType.OrSet: {
      const ctx = (msg.context ?? {}) as Record<string, Record<string, unknown>[] | undefined>;
      const pair = (d: Record<string, unknown>) => [d.actor, Number(toBig(d.counter))];
      return [
        rows.map((r) => [Array.from(r.member as Uint8Array), ((r.dots ?? []) as Record<string, unknown>[]).map(pair)]),
        (ctx.vv ?? []).map(pair),
        (ctx.cloud ?? []).map(pair),
      ];
    }
    case CrdtType.Deadline: {
      const reg = (msg.deadlines ?? {}) as Record<string, unknown>;
      const regEntries = (reg.entries ?? []) as Record<string, unknown>[];
      const regCtx = (reg.context ?? {}) as Record<string, Record<string, unknown>[] | undefined>;
      const expired = (msg.expired ?? {}) as Record<string, Record<string, unknown>[] | undefined>;
      return [
        regEntries.map((r) => [pair(r.dot as Record<string, unknown>), Array.from((r.value as Uint8Array | undefined) ?? [])]),
        (regCtx.vv ?? []).map(pair),
        (regCtx.cloud ?? []).map(pair),
        (expired.vv ?? []).map(pair),
        (expired.cloud ?? []).map(pair),
      ];
    }
    case CrdtType.OrMap: {
      const ctx = (msg.context ?? {}) as Record<string, Record<string, unknown>[] | undefined>;
      const fields = (msg.fields ?? []) as Record<string, unknown>[];
      const list = (x: unknown) => (x ?? []) as Record<string, unknown>[];
      return [
        fields.map((f) => [
          Array.from(f.name as Uint8Array),
          list(f.entries).map((e) => [pair(e.dot as Record<string, unknown>), toBig(e.timestamp), Array.from((e.value as Uint8Array | undefined) ?? [])]),
          list(f.counterDots).map(pair),
          list(f.rows).map((r) => [r.actor, toBig(r.p), toBig(r.n), toBig(r.resetP), toBig(r.resetN)]),
        ]),
        (ctx.vv ?? []).map(pair),
        (ctx.cloud ?? []).map(pair),
      ];
    }
  }
}

function pair(d: Record<string, unknown>): unknown[] {
  return [d.actor, Number(toBig(d.counter))];
}

function oursContext(c: CausalContext): unknown[] {
  return [c.vv.actors.map((a, i) => [actorName(a), c.vv.counters[i]]), c.cloud.map((d) => [actorName(d.actor), d.counter])];
}

/** The same structure from our in-memory state. */
function ours(s: CrdtState): unknown {
  const hlc = (ms: number, logical: number) => (BigInt(ms) << 16n) | BigInt(logical);
  if (s instanceof GCounter) {
    const r = s.resets;
    return [s.actors.map((a, i) => [actorName(a), s.counts[i]]), r === null ? [] : r.actors.map((a, i) => [actorName(a), r.counts[i]])];
  }
  if (s instanceof PNCounter) {
    const r = s.resets;
    return [s.actors.map((a, i) => [actorName(a), s.p[i], s.n[i]]), r === null ? [] : r.actors.map((a, i) => [actorName(a), r.p[i], r.n[i]])];
  }
  if (s instanceof LwwRegister) {
    return [
      s.entries.map((e) => [actorName(e.actor), hlc(e.ms, e.logical), Array.from(e.value)]),
      Array.from({ length: s.seenRows.length / 3 }, (_, i) => {
        const [a, ms, logical] = s.seenRows.slice(3 * i, 3 * i + 3) as [number, number, number];
        return [actorName(a as ActorId), hlc(ms, logical)];
      }),
    ];
  }
  if (s.kind === "set") {
    return [
      s.entries.map((e) => [Array.from(e.member), e.dots.map((d) => [actorName(d.actor), d.counter])]),
      s.ctx.vv.actors.map((a, i) => [actorName(a), s.ctx.vv.counters[i]]),
      s.ctx.cloud.map((d) => [actorName(d.actor), d.counter]),
    ];
  }
  if (s instanceof OrMap) {
    return [
      s.fields.map((f) => [
        Array.from(f.name),
        f.entries.map((e) => [[actorName(e.dot.actor), e.dot.counter], (BigInt(e.ms) << 16n) | BigInt(e.logical), Array.from(e.value)]),
        f.dots.map((d) => [actorName(d.actor), d.counter]),
        f.rows.map((r) => [actorName(r.actor), r.p, r.n, r.rp, r.rn]),
      ]),
      ...oursContext(s.ctx),
    ];
  }
  if (s.kind === "deadline") {
    return [
      s.reg.entries.map((e) => [[actorName(e.dot.actor), e.dot.counter], Array.from(e.value)]),
      ...oursContext(s.reg.ctx),
      ...oursContext(s.expired),
    ];
  }
  const m = s as MvRegister;
  return [
    m.entries.map((e) => [[actorName(e.dot.actor), e.dot.counter], Array.from(e.value)]),
    m.ctx.vv.actors.map((a, i) => [actorName(a), m.ctx.vv.counters[i]]),
    m.ctx.cloud.map((d) => [actorName(d.actor), d.counter]),
  ];
}

describe("protobufjs agrees with the hand-written codec", () => {
  test("states and envelopes decode identically in protobufjs", () => {
    const KeyDelta = root.lookupType("imdb.crdt.v1.KeyDelta");
    checkProperty("protobufjs", fc.property(stateArb, fc.string({ minLength: 1, maxLength: 20 }), (s, key) => {
      const type = crdtTypeOf(s);
      expect(viaProtobufjs(type, encodeState(s))).toEqual(ours(s));
      const env = KeyDelta.decode(encodeEnvelope(keyUtf8(key) as Uint8Array, s)) as unknown as Record<string, unknown>;
      expect(env.formatVersion).toBe(1);
      expect(env.type).toBe(type);
      expect(new TextDecoder().decode(env.key as Uint8Array)).toBe(key);
      expect(viaProtobufjs(type, env.state as Uint8Array)).toEqual(ours(s));
    }), 0.3);
  });

  test("bytes written by protobufjs decode to the same state", () => {
    checkProperty("protobufjs reverse", fc.property(stateArb, (s) => {
      const type = crdtTypeOf(s);
      const T = root.lookupType(messageOf[type]);
      const theirs = T.encode(T.decode(encodeState(s))).finish();
      expect(same(decodeState(type, theirs), s)).toBe(true);
    }), 0.3);
  });

  test("a causal context read by clients round-trips for its own key, and is refused for another", () => {
    const m = new MvRegister();
    m.write(internActor("codec-ctx"), Uint8Array.of(1), null);
    const ctx = m.read().context;
    const k = keyUtf8("k") as Uint8Array;
    expect(decodeContext(encodeContext(ctx, k), k).equals(ctx)).toBe(true);
    expect(() => decodeContext(encodeContext(ctx, k), keyUtf8("k2") as Uint8Array)).toThrow(DecodeError);
  });
});
