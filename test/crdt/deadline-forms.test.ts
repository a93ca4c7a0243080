// The Deadline keeps its common states as plain fields (compact forms, src/crdt/deadline.ts):
// checks it against the general construction (an MV register and an expired context, as the
// type was before), over random ops and merges on several replicas, so that no form change
// alters a value, a merge's outcome, equality or the bytes on the wire.

import { expect, test } from "bun:test";
import fc from "fast-check";
import { CausalContext, Deadline, deadlineOf, deadlineValue, internActor, MvRegister, VersionVector, type ActorId } from "../../src/crdt/index.ts";
import { encodeState } from "../../src/codec/envelope.ts";
import { writeContext, writeMv } from "../../src/codec/states.ts";
import { Writer } from "../../src/codec/wire.ts";
import { checkProperty } from "./prop.ts";

/** The canonical bytes of a deadline state written from its general parts (field 1 the register, field 2 the expired dots). */
function generalBytes(reg: MvRegister, expired: CausalContext): Uint8Array {
  const w = new Writer();
  if (reg.entries.length > 0 || reg.ctx.vv.size > 0 || reg.ctx.cloud.length > 0) {
    const at = w.begin(1);
    writeMv(w, reg);
    w.end(at);
  }
  if (expired.vv.size > 0 || expired.cloud.length > 0) {
    const at = w.begin(2);
    writeContext(w, expired);
    w.end(at);
  }
  return w.finish();
}

/** The reference: the register and expired dots as plain objects, every op as the type defines it. */
class Reference {
  constructor(public reg = new MvRegister(), public expired = new CausalContext()) {}
  atMs(): number | null {
    let best: number | null = null;
    for (const e of this.reg.entries) {
      const v = deadlineOf(e.value);
      if (v === null) return null;
      if (best === null || v > best) best = v;
    }
    return best;
  }
  set(actor: ActorId, atMs: number | null): Reference {
    return new Reference(this.reg.write(actor, deadlineValue(atMs), null), new CausalContext());
  }
  expire(): Reference | null {
    if (this.reg.entries.length === 0) return null;
    const marks = new VersionVector();
    for (const e of this.reg.entries) marks.raise(e.dot.actor, e.dot.counter);
    const d = new Reference(new MvRegister([], this.reg.ctx.clone()), new CausalContext(marks));
    this.merge(d);
    return d;
  }
  removeObserved(): Reference | null {
    if (this.reg.entries.length === 0) return null;
    const d = new Reference(new MvRegister([], this.reg.ctx.clone()), new CausalContext());
    this.merge(d);
    return d;
  }
  merge(o: Reference): boolean {
    const a = this.reg.merge(o.reg.clone());
    const was = this.expired.clone();
    this.expired.joinWith(o.expired);
    return a || !was.equals(this.expired);
  }
  /** The same state as a Deadline (compact if it fits). */
  asDeadline(): Deadline {
    return new Deadline(this.reg.clone(), this.expired.clone());
  }
}

const actors = ["dl-a", "dl-b", "dl-c"].map(internActor);
type Op = { r: number; kind: "set"; at: number | null } | { r: number; kind: "expire" | "remove" } | { r: number; kind: "merge"; from: number } | { r: number; kind: "allExpiredBy"; from: number };
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ r: fc.nat(2), kind: fc.constant("set" as const), at: fc.option(fc.integer({ min: 1, max: 2 ** 48 - 1 }), { nil: null }) }),
  fc.record({ r: fc.nat(2), kind: fc.constantFrom("expire" as const, "remove" as const) }),
  fc.record({ r: fc.nat(2), kind: fc.constantFrom("merge" as const, "allExpiredBy" as const), from: fc.nat(2) }),
);

function same(d: Deadline, ref: Reference): void {
  expect(d.atMs()).toBe(ref.atMs());
  expect(d.holdsEntries).toBe(ref.reg.entries.length > 0);
  expect(d.reg.equals(ref.reg)).toBe(true);
  expect(d.expired.equals(ref.expired)).toBe(true);
  expect(encodeState(d)).toEqual(generalBytes(ref.reg, ref.expired));
  expect(d.equals(ref.asDeadline())).toBe(true);
}

test("compact deadline forms behave exactly as the general register and expired context, over random ops on three replicas", () => {
  checkProperty("deadline forms", fc.property(fc.array(op, { minLength: 10, maxLength: 80, size: "max" }), (ops) => {
    const ds = actors.map(() => new Deadline());
    const refs = actors.map(() => new Reference());
    for (const o of ops) {
      const d = ds[o.r] as Deadline;
      const ref = refs[o.r] as Reference;
      if (o.kind === "set") {
        const delta = d.set(actors[o.r] as ActorId, o.at);
        const rd = ref.set(actors[o.r] as ActorId, o.at);
        same(delta, rd);
      } else if (o.kind === "expire" || o.kind === "remove") {
        const delta = o.kind === "expire" ? d.expire() : d.removeObserved();
        const rd = o.kind === "expire" ? ref.expire() : ref.removeObserved();
        expect(delta === null).toBe(rd === null);
        if (delta !== null && rd !== null) same(delta, rd);
      } else if (o.kind === "merge") {
        const other = (ds[o.from] as Deadline).clone();
        expect(d.merge(other)).toBe(ref.merge(refs[o.from] as Reference));
      } else if (o.kind === "allExpiredBy") {
        expect(d.allExpiredBy((ds[o.from] as Deadline).expired)).toBe(ref.reg.entries.length > 0 && ref.reg.entries.every((e) => (refs[o.from] as Reference).expired.contains(e.dot)));
      }
      same(d, ref);
      same(d.clone(), ref);
    }
  }), 0.3);
});
