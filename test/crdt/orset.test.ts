// OR-Set: two-replica timelines of the add-wins rule (a remove drops only the adds it observed),
// the shape of deltas (no tombstone per removed member), and canonical bytes.

import { describe, expect, test } from "bun:test";
import { CausalContext, compareBytes, internActor, memberBytes, memberKey, OrSet, VersionVector } from "../../src/crdt/index.ts";
import { orsetKind } from "../../src/kinds/orset.ts";
import { CrdtType, DecodeError, decodeState, encodeState, WireType, Writer } from "../../src/codec/index.ts";
import { setMemberBytesMax } from "../../src/limits.ts";
import fc from "fast-check";
import { cmdArb, runWorld, specs, World } from "./harness.ts";
import { checkProperty } from "./prop.ts";

const a = internActor("a");
const b = internActor("b");
const enc = new TextEncoder();
const m = (s: string): Uint8Array => enc.encode(s);
const names = (s: OrSet): string[] => s.members().map((x) => new TextDecoder().decode(x));

describe("OrSet", () => {
  test("concurrent add and remove of one member: the add wins on both replicas", () => {
    const ra = new OrSet();
    const rb = new OrSet();
    rb.merge(ra.add(a, [m("x")])); // both hold x
    const add = ra.add(a, [m("x")]); // A re-adds x ...
    const rem = rb.remove([m("x")]); // ... while B, not having seen that, removes it
    expect(names(rb)).toEqual([]);
    ra.merge(rem);
    rb.merge(add);
    expect(names(ra)).toEqual(["x"]);
    expect(names(rb)).toEqual(["x"]);
    expect(ra.equals(rb)).toBe(true);
  });

  test("a remove of an add the replica has not seen does nothing to it", () => {
    const ra = new OrSet();
    const rb = new OrSet();
    const add = ra.add(a, [m("x")]);
    const rem = rb.remove([m("x")]); // B never saw x
    expect(rem.isEmpty).toBe(true);
    ra.merge(rem);
    rb.merge(add);
    expect(names(ra)).toEqual(["x"]);
    expect(names(rb)).toEqual(["x"]);
  });

  test("re-add after remove: the member is back, and a late copy of the remove does not take it away", () => {
    const ra = new OrSet();
    const rb = new OrSet();
    rb.merge(ra.add(a, [m("x"), m("y")]));
    const rem = ra.remove([m("x")]);
    expect(names(ra)).toEqual(["y"]);
    const readd = ra.add(a, [m("x")]);
    expect(names(ra)).toEqual(["x", "y"]);
    // B gets the re-add before the remove (reordered delivery), then the remove twice.
    rb.merge(readd);
    rb.merge(rem);
    rb.merge(rem);
    expect(names(rb)).toEqual(["x", "y"]);
    expect(rb.equals(ra)).toBe(true);
  });

  test("a remove's delta holds no member and exactly the removed member's dots; the state keeps no tombstone", () => {
    const s = new OrSet();
    s.add(a, [m("x")]);
    const other = new OrSet();
    s.merge(other.add(b, [m("x"), m("z")]));
    const rem = s.remove([m("x"), m("absent")]);
    expect(rem.entries).toEqual([]);
    expect(rem.ctx.vv.actors.map((x) => x as number).sort()).toEqual([a as number, b as number].sort());
    // b:1 was x (members are dotted in sorted order), b:2 is z, which the remove must not cover
    expect(rem.ctx.contains({ actor: b, counter: 1 })).toBe(true);
    expect(rem.ctx.contains({ actor: b, counter: 2 })).toBe(false);
    expect(names(s)).toEqual(["z"]);
    expect(s.entries.length).toBe(1);
  });

  test("a re-add of a present member replaces its dots with one new dot", () => {
    const s = new OrSet();
    s.add(a, [m("x")]);
    s.merge(new OrSet().add(b, [m("x")]));
    expect(s.entries[0]?.dots.length).toBe(2);
    const d = s.add(a, [m("x"), m("x")]);
    expect(s.entries[0]?.dots).toEqual([{ actor: a, counter: 2 }]);
    expect(d.entries).toEqual([{ member: m("x"), dots: [{ actor: a, counter: 2 }] }]);
  });

  test("count, contains and countAbsent; empty and oversized members are refused and change nothing", () => {
    const s = new OrSet();
    s.add(a, [m("b"), m("a")]);
    expect(s.count()).toBe(2);
    expect(s.contains(m("a"))).toBe(true);
    expect(s.contains(m("c"))).toBe(false);
    expect(s.countAbsent([m("a"), m("c"), m("c")])).toBe(1);
    const before = encodeState(s);
    expect(() => s.add(a, [m("c"), new Uint8Array(0)])).toThrow("must not be empty");
    expect(() => s.add(a, [new Uint8Array(64 * 1024 + 1)])).toThrow("longer than");
    expect(encodeState(s)).toEqual(before);
  });

  test("the size bound the engine decides writes by is never below the encoding: largest members, long actor ids, big counters", () => {
    const s = new OrSet();
    const long = internActor("n".repeat(255));
    s.merge(new OrSet([], new CausalContext(new VersionVector([long], [2 ** 40]))));
    s.add(long, [new Uint8Array(setMemberBytesMax).fill(9), m("x")]);
    s.merge(new OrSet().add(a, [m("x")]));
    expect(orsetKind.bytesUpperBound(s)).toBeGreaterThanOrEqual(encodeState(s).length);
    expect(orsetKind.bytesUpperBound(s)).toBeLessThan(encodeState(s).length + 1024);
  });

  test("a join bringing many new members at once gives the state that one-by-one joins give", () => {
    const evens = new OrSet();
    evens.add(a, Array.from({ length: 100 }, (_, i) => m(`k${String(2 * i).padStart(3, "0")}`)));
    const odds = new OrSet();
    odds.add(b, Array.from({ length: 100 }, (_, i) => m(`k${String(2 * i + 1).padStart(3, "0")}`)));
    const atOnce = evens.clone();
    expect(atOnce.merge(odds)).toBe(true);
    const oneByOne = evens.clone();
    for (const e of odds.entries) oneByOne.merge(new OrSet([e], new CausalContext(new VersionVector(), [...e.dots])));
    oneByOne.merge(odds);
    expect(atOnce.equals(oneByOne)).toBe(true);
    expect(names(atOnce)).toEqual(Array.from({ length: 200 }, (_, i) => `k${String(i).padStart(3, "0")}`));
    expect(decodeState(CrdtType.OrSet, encodeState(atOnce))).toEqual(atOnce);
  });

  test("equal states have equal bytes, whatever order the adds arrived in", () => {
    const x = new OrSet();
    const y = new OrSet();
    const d1 = new OrSet().add(a, [m("q"), m("p")]);
    const d2 = new OrSet().add(b, [m("r"), m("p")]);
    x.merge(d1);
    x.merge(d2);
    y.merge(d2);
    y.merge(d1);
    expect(encodeState(x)).toEqual(encodeState(y));
    expect(names(x)).toEqual(["p", "q", "r"]);
    expect(decodeState(CrdtType.OrSet, encodeState(x))).toEqual(x);
  });
});

describe("OR-Set decoder", () => {
  /** An OrSetState with the given entries (member, dots as [actor, counter]) and no context. */
  function stateBytes(entries: [Uint8Array, [string, number][]][]): Uint8Array {
    const w = new Writer(256);
    for (const [member, dots] of entries) {
      const at = w.begin(1);
      w.tag(1, WireType.Bytes);
      w.bytes(member);
      for (const [actor, counter] of dots) {
        const d = w.begin(2);
        w.tag(1, WireType.Bytes);
        w.bytes(enc.encode(actor));
        w.tag(2, WireType.Varint);
        w.uint(counter);
        w.end(d);
      }
      w.end(at);
    }
    return w.finish();
  }
  const decode = (b: Uint8Array): OrSet => decodeState(CrdtType.OrSet, b) as OrSet;

  test("reads any entry order into the canonical state, with every dot in the context", () => {
    const s = decode(stateBytes([[m("y"), [["b", 3]]], [m("x"), [["a", 2], ["a", 1]]]]));
    expect(names(s)).toEqual(["x", "y"]);
    expect(s.entries[0]?.dots).toEqual([{ actor: a, counter: 1 }, { actor: a, counter: 2 }]);
    expect(s.ctx.contains({ actor: b, counter: 3 })).toBe(true);
    expect(s.ctx.contains({ actor: b, counter: 2 })).toBe(false);
  });

  test("refuses a duplicate member, a repeated dot (in one member or across two), an empty member, a member without dots, an oversized member", () => {
    expect(() => decode(stateBytes([[m("x"), [["a", 1]]], [m("x"), [["a", 2]]]]))).toThrow("duplicate OR-Set member");
    expect(() => decode(stateBytes([[m("x"), [["a", 1], ["a", 1]]]]))).toThrow("twice on one");
    expect(() => decode(stateBytes([[m("x"), [["a", 1]]], [m("y"), [["b", 2], ["a", 1]]]]))).toThrow("on two members");
    expect(() => decode(stateBytes([[new Uint8Array(0), [["a", 1]]]]))).toThrow("without a member");
    expect(() => decode(stateBytes([[m("x"), []]]))).toThrow("without dots");
    expect(() => decode(stateBytes([[new Uint8Array(setMemberBytesMax + 1), [["a", 1]]]]))).toThrow(DecodeError);
    expect(decode(stateBytes([[new Uint8Array(setMemberBytesMax).fill(1), [["a", 1]]]])).count()).toBe(1);
  });
});

describe("OR-Set size bookkeeping", () => {
  test("the entries' byte bound kept through adds, removes and joins equals one computed afresh", () => {
    const spec = specs.find((s) => s.kind === "set");
    if (spec === undefined) throw new Error("no set spec");
    checkProperty("OrSet entriesBytes", fc.property(fc.array(cmdArb(spec), { maxLength: 60 }), (cmds) => {
      const w = new World(spec, 3);
      runWorld(w, cmds);
      w.fullExchange();
      for (const r of w.replicas) {
        const s = r.state as OrSet;
        expect(s.entriesBytes).toBe(new OrSet(s.entries, s.ctx).entriesBytes);
        expect(s.clone().entriesBytes).toBe(s.entriesBytes);
      }
    }));
  });
});

describe("OR-Set compact representation", () => {
  test("member keys keep every byte value and bytewise order, short members and ones past a call's argument chunk", () => {
    checkProperty("memberKey order", fc.property(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.uint8Array({ minLength: 1, maxLength: 40 }), (x, y) => {
      expect(memberBytes(memberKey(x))).toEqual(x);
      const c = compareBytes(x, y);
      const kx = memberKey(x);
      const ky = memberKey(y);
      expect(kx < ky ? -1 : kx > ky ? 1 : 0).toBe(Math.sign(c));
    }));
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(memberBytes(memberKey(all))).toEqual(all);
    const long = Uint8Array.from({ length: setMemberBytesMax }, (_, i) => (i * 7 + 0x80) & 0xff);
    expect(memberBytes(memberKey(long))).toEqual(long);
    const s = new OrSet();
    s.add(a, [long, m("\u00ff"), Uint8Array.of(0x80), Uint8Array.of(0x7f)]);
    expect(s.members()).toEqual([Uint8Array.of(0x7f), Uint8Array.of(0x80), m("\u00ff"), long].sort(compareBytes));
    expect(decodeState(CrdtType.OrSet, encodeState(s))).toEqual(s);
  });

  test("a peer's add joined into a big set changes only its member; a context dot of a member the delta does not name still removes it", () => {
    const c = internActor("c");
    const big = new OrSet();
    big.add(a, Array.from({ length: 100 }, (_, i) => m(`k${String(i).padStart(3, "0")}`)));
    const peer = big.clone();
    // The peer re-adds k005: its delta names k005 and carries the dot it replaces.
    big.merge(peer.add(b, [m("k005")]));
    expect(big.equals(peer)).toBe(true);
    expect(big.entries[5]?.dots).toEqual([{ actor: b, counter: 1 }]);
    // A delta naming one new member whose context also holds k009's dot (a remove and an add
    // joined into one delta): k009 goes, though the delta does not name it.
    const k9 = big.entries[9]?.dots[0];
    if (k9 === undefined) throw new Error("no k009");
    const joined = new OrSet([{ member: m("new"), dots: [{ actor: c, counter: 1 }] }], new CausalContext(new VersionVector([c], [1]), [k9]));
    expect(big.merge(joined)).toBe(true);
    expect(big.contains(m("k009"))).toBe(false);
    expect(big.contains(m("new"))).toBe(true);
    expect(big.count()).toBe(100);
    // A peer's remove (no entries, the removed member's dots) reaches the member too.
    big.merge(peer.remove([m("k042")]));
    expect(big.contains(m("k042"))).toBe(false);
    expect(big.count()).toBe(99);
  });

  test("decoding members of interleaved actors and members with several dots gives the encoded state, byte for byte", () => {
    const x = new OrSet();
    const y = new OrSet();
    const z = new OrSet();
    x.add(a, [m("p"), m("q")]);
    y.add(b, [m("q"), m("r")]);
    z.add(internActor("c"), [m("p"), m("s")]);
    x.merge(y);
    x.merge(z);
    x.add(b, [m("t")]);
    const bytes = encodeState(x);
    const back = decodeState(CrdtType.OrSet, bytes) as OrSet;
    expect(back.equals(x)).toBe(true);
    expect(encodeState(back)).toEqual(bytes);
    expect(back.entries.map((e) => e.dots.length)).toEqual([2, 2, 1, 1, 1]);
  });
});
