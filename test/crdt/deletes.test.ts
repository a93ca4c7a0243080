// Delete (observed-remove) on counters and the LWW register as two-replica timelines: a delete
// removes what its replica had observed, a concurrent unobserved write survives whatever the
// clocks say, and nothing it removed comes back through redelivered or reordered deltas.

import { describe, expect, test } from "bun:test";
import {
  CrdtError, GCounter, HybridClock, int64Max, int64Min, internActor, LwwRegister, PNCounter, type Hlc,
} from "../../src/crdt/index.ts";
import { CrdtType, decodeState, DecodeError, encodeState, Writer } from "../../src/codec/index.ts";
import { storedBounds } from "../../src/engine/bounds.ts";
import { kinds } from "../../src/kinds/index.ts";
import { counterResetRowsMax } from "../../src/limits.ts";

const a = internActor("del-a");
const b = internActor("del-b");
const c = internActor("del-c");
const T = 1_700_000_000_000;

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof CrdtError) return e.code;
    throw e;
  }
  return "none";
}

function del<S extends GCounter | PNCounter | LwwRegister>(s: S): S {
  const d = s.removeObserved();
  if (d === null) throw new Error("nothing to delete");
  return d as S;
}

const hex = (u: Uint8Array): string => Buffer.from(u).toString("hex");

describe("G-Counter delete", () => {
  test("a delete on A concurrent with an increment on B: only B's unobserved increment remains, on both", () => {
    const ra = new GCounter();
    const rb = new GCounter();
    rb.merge(ra.inc(a, 5n));
    ra.merge(rb.inc(b, 3n));
    const dDel = del(ra); // A has seen a:5, b:3
    const dInc = rb.inc(b, 2n); // concurrent: b:5, unseen by the delete
    expect(ra.value()).toBe(0n);
    expect(ra.present()).toBe(false);
    ra.merge(dInc);
    rb.merge(dDel);
    expect(ra.value()).toBe(2n);
    expect(rb.value()).toBe(2n);
    expect(ra.equals(rb)).toBe(true);
    expect(ra.present()).toBe(true);
  });

  test("an increment after the delete counts from zero; redelivered or reordered old deltas bring nothing back", () => {
    const ra = new GCounter();
    const d1 = ra.inc(a, 5n);
    const d2 = ra.inc(a, 4n);
    const dDel = del(ra);
    const d3 = ra.inc(a, 2n);
    expect(ra.value()).toBe(2n);
    expect(ra.merge(d1) || ra.merge(d2) || ra.merge(dDel)).toBe(false);
    expect(ra.value()).toBe(2n);
    // A replica that gets the delete first: the resets lie above its (empty) rows and count nothing.
    const rc = new GCounter();
    rc.merge(dDel);
    expect(rc.value()).toBe(0n);
    expect(rc.present()).toBe(false);
    rc.merge(d1);
    expect(rc.value()).toBe(0n); // 5 observed by the delete, clamped
    rc.merge(d3);
    rc.merge(d2);
    expect(rc.value()).toBe(2n);
    expect(rc.equals(ra)).toBe(true);
  });

  test("deleting twice, on two replicas, removes the union of what they observed; a delete of nothing is null", () => {
    const ra = new GCounter();
    const rb = new GCounter();
    const da = ra.inc(a, 1n);
    const db = rb.inc(b, 1n);
    const x = del(ra);
    const y = del(rb);
    ra.merge(db);
    ra.merge(y);
    rb.merge(da);
    rb.merge(x);
    expect(ra.value()).toBe(0n);
    expect(ra.equals(rb)).toBe(true);
    expect(ra.removeObserved()).toBeNull();
  });

  test("the int64 refusal counts from the delete: a deleted counter takes a full int64 again, and no more", () => {
    const g = new GCounter();
    g.inc(a, int64Max - 5n);
    del(g);
    g.inc(a, int64Max); // the row passes int64 (within uint64); the value is int64Max
    expect(g.value()).toBe(int64Max);
    const before = hex(encodeState(g));
    expect(refusal(() => g.inc(b, 1n))).toBe("OUT_OF_RANGE");
    expect(hex(encodeState(g))).toBe(before);
  });
});

describe("PN-Counter delete", () => {
  test("a delete on A concurrent with a decrement and an increment on B: only B's unobserved ones remain", () => {
    const ra = new PNCounter();
    const rb = new PNCounter();
    rb.merge(ra.inc(a, 5n));
    ra.merge(rb.dec(b, 3n));
    const dDel = del(ra);
    const d1 = rb.dec(b, 2n);
    const d2 = rb.inc(b, 7n);
    ra.merge(d2);
    ra.merge(d1);
    rb.merge(dDel);
    expect(ra.value()).toBe(5n);
    expect(rb.value()).toBe(5n);
    expect(ra.equals(rb)).toBe(true);
  });

  test("the int64 range is checked on the value after the delete, both ways", () => {
    const p = new PNCounter();
    p.dec(a, 10n);
    del(p);
    expect(p.value()).toBe(0n);
    p.dec(a, int64Max);
    p.dec(b, 1n);
    expect(p.value()).toBe(int64Min);
    expect(refusal(() => p.dec(a, 1n))).toBe("OUT_OF_RANGE");
    del(p);
    p.inc(b, int64Max);
    expect(p.value()).toBe(int64Max);
  });
});

describe("counter reset rows: encoding, decoding, limits", () => {
  test("a counter no delete touched encodes as before resets existed; a deleted one adds field 2", () => {
    const g = new GCounter();
    g.inc(internActor("a"), 3n);
    expect(hex(encodeState(g))).toBe("0a050a01611003"); // GCounterState{entries: [{actor "a", count 3}]}
    const p = new PNCounter();
    p.dec(internActor("a"), 2n);
    expect(hex(encodeState(p))).toBe("0a050a01611802");
    const d = del(g);
    expect(hex(encodeState(d))).toBe("12050a01611003"); // the delta: one reset row, no count rows
    expect(hex(encodeState(g))).toBe("0a050a0161100312050a01611003");
  });

  test("reset rows above their counts (a delete's delta alone) decode and round-trip; a G-Counter reset with n, or a repeated actor, is refused", () => {
    const resetsOnly = decodeState(CrdtType.PNCounter, Uint8Array.from(Buffer.from("12070a016110051803", "hex"))) as PNCounter;
    expect(resetsOnly.value()).toBe(0n);
    expect(resetsOnly.present()).toBe(false);
    expect(hex(encodeState(resetsOnly))).toBe("12070a016110051803");
    expect(() => decodeState(CrdtType.GCounter, Uint8Array.from(Buffer.from("12070a016110051803", "hex")))).toThrow(/reset row with a decrement/);
    expect(() => decodeState(CrdtType.GCounter, Uint8Array.from(Buffer.from("12050a0161100512050a01611006", "hex")))).toThrow(/duplicate actor/);
    expect(() => decodeState(CrdtType.GCounter, Uint8Array.from(Buffer.from("12021005", "hex")))).toThrow(/reset row without actor/);
    // An all-zero reset row resets nothing and is dropped, as a zero count row is.
    expect(hex(encodeState(decodeState(CrdtType.GCounter, Uint8Array.from(Buffer.from("12030a0161", "hex")))))).toBe("");
  });

  test("more than counterResetRowsMax reset rows are refused by the decoder; reset rows count against a merge's row bound", () => {
    const w = new Writer(16 * 1024 * 1024);
    for (let i = 0; i <= counterResetRowsMax; i++) {
      const at = w.begin(2);
      w.tag(1, 2);
      w.bytes(Uint8Array.of(0x61));
      w.tag(2, 0);
      w.uint(1);
      w.end(at);
    }
    expect(() => decodeState(CrdtType.GCounter, w.finish())).toThrow(/more than \d+ counter reset rows/);
    const g = new GCounter();
    g.inc(a, 1n);
    g.inc(b, 1n);
    del(g);
    const tight = { ...storedBounds, counterRows: 1 };
    expect(kinds.gcounter.countsOutside(new GCounter([], [], g.resets), tight)).toMatch(/2 counter reset rows/);
    expect(kinds.gcounter.countsNear(new GCounter(), new GCounter([], [], g.resets), tight)).toBe(true);
    expect(kinds.gcounter.bytesUpperBound(g)).toBeGreaterThanOrEqual(encodeState(g).length);
  });
});

/** A replica of an LWW register: its state, actor and clock at its own (possibly skewed) physical time. */
class LwwReplica {
  readonly r = new LwwRegister();
  readonly clock = new HybridClock(1_000_000);
  constructor(readonly actor: ReturnType<typeof internActor>, public nowMs: number) {}
  write(v: number): LwwRegister {
    return this.r.set(this.actor, Uint8Array.of(v), this.clock.now(this.nowMs));
  }
  take(d: LwwRegister): void {
    this.r.merge(d);
    const top = d.maxTimestamp();
    if (top !== null) this.clock.observe(top, this.nowMs);
  }
  shows(): number[] | "unset" {
    return this.r.isSet ? Array.from(this.r.value) : "unset";
  }
}

describe("LWW-Register delete", () => {
  test("a delete on A concurrent with a write on B whose clock is BEHIND A's: B's write survives, on both", () => {
    const A = new LwwReplica(a, T + 60_000);
    const B = new LwwReplica(b, T);
    const w1 = A.write(1);
    const dDel = del(A.r); // A saw only its own write
    const w2 = B.write(2); // stamped ~60 s before w1 and before the delete: unobserved by it
    expect(w2.ms).toBeLessThan(w1.ms);
    B.take(w1);
    B.take(dDel);
    A.take(w2);
    expect(A.shows()).toEqual([2]);
    expect(B.shows()).toEqual([2]);
    expect(A.r.equals(B.r)).toBe(true);
  });

  test("B saw A's write, then wrote with a stamp below A's clock when A deleted: still only A's write is removed", () => {
    const A = new LwwReplica(a, T + 60_000);
    const B = new LwwReplica(b, T);
    const w1 = A.write(1);
    B.take(w1);
    A.nowMs += 500; // A deletes half a second later by its clock ...
    const dDel = del(A.r);
    const w2 = B.write(2); // ... B's write follows w1 but is stamped before that
    expect(w2.ms).toBeLessThan(A.nowMs);
    A.take(w2);
    B.take(dDel);
    expect(A.shows()).toEqual([2]);
    expect(B.shows()).toEqual([2]);
  });

  test("delete then write again: the new write shows everywhere, whatever the delivery order", () => {
    const A = new LwwReplica(a, T);
    const w1 = A.write(1);
    const dDel = del(A.r);
    expect(A.shows()).toBe("unset");
    const w2 = A.write(2);
    expect(A.shows()).toEqual([2]);
    for (const order of [[w1, dDel, w2], [w2, w1, dDel], [dDel, w2, w1], [w2, dDel, w1]]) {
      const C = new LwwReplica(c, T);
      for (const d of order) C.take(d);
      expect(C.shows()).toEqual([2]);
      expect(C.r.equals(A.r)).toBe(true);
    }
  });

  test("a redelivered old delta after a delete changes nothing", () => {
    const A = new LwwReplica(a, T);
    const B = new LwwReplica(b, T);
    const w1 = A.write(1);
    B.take(w1);
    const w2 = B.write(2);
    A.take(w2);
    const dDel = del(A.r);
    expect(A.r.merge(w1)).toBe(false);
    expect(A.r.merge(w2)).toBe(false);
    expect(A.shows()).toBe("unset");
    B.take(dDel);
    expect(B.r.merge(w2)).toBe(false);
    expect(B.shows()).toBe("unset");
    expect(A.r.removeObserved()).toBeNull();
  });

  test("concurrent writes are kept until a write or delete that saw them: a read shows the greatest (timestamp, actor)", () => {
    const A = new LwwReplica(a, T);
    const B = new LwwReplica(b, T);
    const wa = A.write(1);
    const wb = B.write(2); // equal timestamps: the actor decides
    A.take(wb);
    B.take(wa);
    expect(A.r.entries.length).toBe(2);
    expect(A.shows()).toEqual([2]);
    expect(A.r.equals(B.r)).toBe(true);
    // B's delete saw both: a third replica that only has A's write loses it too.
    const C = new LwwReplica(c, T);
    C.take(wa);
    C.take(del(B.r));
    expect(C.shows()).toBe("unset");
  });

  test("after a delete the actor's next write must still follow its earlier ones", () => {
    const r = new LwwRegister();
    r.set(a, Uint8Array.of(1), { ms: 10, logical: 0 });
    del(r);
    expect(refusal(() => r.set(a, Uint8Array.of(2), { ms: 10, logical: 0 }))).toBe("INVALID");
    expect(r.isSet).toBe(false);
    r.set(a, Uint8Array.of(2), { ms: 10, logical: 1 });
    expect(Array.from(r.value)).toEqual([2]);
  });
});

/** An LWW-Register's bytes as the release before deletes wrote them: fixed64 stamp, actor, value. */
function oldFormat(ts: Hlc, actor: string, value: number[]): Uint8Array {
  const stamp = Buffer.alloc(8);
  stamp.writeBigUInt64LE((BigInt(ts.ms) << 16n) | BigInt(ts.logical));
  const name = Buffer.from(actor, "utf8");
  return Uint8Array.from([0x09, ...stamp, 0x12, name.length, ...name, ...(value.length > 0 ? [0x1a, value.length, ...value] : [])]);
}

describe("LWW-Register encoding", () => {
  test("old-format bytes decode to the one write and re-encode byte for byte", () => {
    for (const [ts, value] of [[{ ms: T, logical: 3 }, [1, 2]], [{ ms: 1, logical: 0 }, []]] as [Hlc, number[]][]) {
      const bytes = oldFormat(ts, "node-1", value);
      const s = decodeState(CrdtType.LwwRegister, bytes) as LwwRegister;
      expect(s.timestamp()).toEqual(ts);
      expect(Array.from(s.value)).toEqual(value);
      expect(hex(encodeState(s))).toBe(hex(bytes));
    }
    expect(encodeState(new LwwRegister()).length).toBe(0);
    // A local write on an unwritten register is the old form too (WAL records are unchanged).
    const r = new LwwRegister();
    const d = r.set(internActor("node-1"), Uint8Array.of(1, 2), { ms: T, logical: 3 });
    expect(hex(encodeState(d))).toBe(hex(oldFormat({ ms: T, logical: 3 }, "node-1", [1, 2])));
    expect(hex(encodeState(r))).toBe(hex(encodeState(d)));
  });

  test("a deleted register, or one that saw another actor's write, takes the general form; mixing the forms is refused", () => {
    const r = new LwwRegister();
    r.set(a, Uint8Array.of(1), { ms: 5, logical: 0 });
    r.set(b, Uint8Array.of(2), { ms: 6, logical: 0 });
    const general = encodeState(r);
    expect(general[0]).toBe(0x22); // field 4, entries
    const back = decodeState(CrdtType.LwwRegister, general) as LwwRegister;
    expect(back.equals(r)).toBe(true);
    const dDel = del(r);
    expect(encodeState(dDel)[0]).toBe(0x2a); // field 5 only: a context, no entries
    const mixed = Uint8Array.from([...oldFormat({ ms: 5, logical: 0 }, "x", [1]), ...encodeState(dDel)]);
    expect(() => decodeState(CrdtType.LwwRegister, mixed)).toThrow(/both the single-write and the general form/);
  });

  test("general form: an entry its own context has passed is refused; an entry missing from the context joins it", () => {
    const general = (entryMs: number, ctxMs: number | null): Uint8Array => {
      const w = new Writer();
      const row = (field: number, ms: number, value: boolean): void => {
        const at = w.begin(field);
        w.tag(1, 2);
        w.bytes(new TextEncoder().encode("x"));
        w.tag(2, 1);
        w.fixed64(Math.floor(ms / 0x10000), (ms % 0x10000) * 0x10000);
        if (value) { w.tag(3, 2); w.bytes(Uint8Array.of(9)); }
        w.end(at);
      };
      row(4, entryMs, true);
      if (ctxMs !== null) row(5, ctxMs, false);
      return w.finish();
    };
    expect(() => decodeState(CrdtType.LwwRegister, general(5, 6))).toThrow(/below its context/);
    const lone = decodeState(CrdtType.LwwRegister, general(5, null)) as LwwRegister;
    expect(lone.timestamp()).toEqual({ ms: 5, logical: 0 });
    expect(hex(encodeState(lone))).toBe(hex(oldFormat({ ms: 5, logical: 0 }, "x", [9]))); // canonical: the single-write form
    expect((decodeState(CrdtType.LwwRegister, general(5, 5)) as LwwRegister).equals(lone)).toBe(true);
  });
});
