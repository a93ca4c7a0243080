// A key's deadline (expiry, docs/api.md "Expiry"): an MV-register of deadlines plus the record of
// which of them have expired, so that every replica agrees on the deadline and on what its expiry
// removed. It is one more typed state of the key (src/kinds/deadline.ts), never the visible one.
//
// - Sequential changes replace each other (an MV write with everything this replica has seen);
//   concurrent ones stay as siblings and resolve to the LONGEST, "no deadline" being the longest
//   of all, so a concurrent PERSIST beats an EXPIRE and every replica reads the same deadline.
// - `expired` is a version vector over the register's dots: the deadlines some replica has
//   executed. A replica that holds a deadline someone else executed expires the key itself
//   (src/engine: what it holds goes, as a delete) before it joins anything written after that
//   expiry, and treats content that arrives still under an executed deadline as expired. That is
//   what makes "nothing written before the deadline survives it, nothing written after it is
//   lost" hold on every replica however the states travel (test/engine/expiry.test.ts).

import type { ActorId } from "./actors.ts";
import { CausalContext, type Dot, VersionVector } from "./clocks.ts";
import { MvRegister, type MvEntry } from "./mvregister.ts";

/** Bytes of one deadline value: a big-endian 48-bit Unix ms; all zeros means "no deadline". */
export const deadlineValueBytes = 6;

/** Encodes a deadline (null: none) as a register value. */
export function deadlineValue(atMs: number | null): Uint8Array {
  const b = new Uint8Array(deadlineValueBytes);
  let v = atMs ?? 0;
  for (let k = deadlineValueBytes - 1; k >= 0; k--) {
    b[k] = v % 256;
    v = Math.floor(v / 256);
  }
  return b;
}

/** The deadline a register value holds (null: none); the codec checks values are deadlineValueBytes long. */
export function deadlineOf(value: Uint8Array): number | null {
  let v = 0;
  for (let k = 0; k < value.length; k++) v = v * 256 + (value[k] as number);
  return v === 0 ? null : v;
}

export class Deadline {
  /** The kind discriminant (src/kinds): on the prototype, so it costs no memory per state. */
  get kind(): "deadline" {
    return "deadline";
  }

  constructor(
    /** The deadlines set and not replaced (siblings when concurrent). */
    public reg: MvRegister = new MvRegister(),
    /** Deadline dots some replica expired (a version vector: an actor's later dot covers its earlier ones). */
    public expired: CausalContext = new CausalContext(),
  ) {}

  /** The deadline in force: null when there is none (no entry, or a sibling saying "none"), else the latest sibling. */
  atMs(): number | null {
    let best: number | null = null;
    for (const e of this.reg.entries) {
      const v = deadlineOf(e.value);
      if (v === null) return null;
      if (best === null || v > best) best = v;
    }
    return best;
  }

  /** Does any deadline entry live here (a deadline, or a "none" that beats concurrent ones)? */
  get holdsEntries(): boolean {
    return this.reg.entries.length > 0;
  }

  /** Sets the deadline (null: none) as actor, replacing every entry this replica has seen. Returns the delta. */
  set(actor: ActorId, atMs: number | null): Deadline {
    return new Deadline(this.reg.write(actor, deadlineValue(atMs), null), new CausalContext());
  }

  /**
   * Are all of this state's live entries among `expired` (and there is at least one)? Then the
   * deadline in force here is one that some replica has executed.
   */
  allExpiredBy(expired: CausalContext): boolean {
    if (this.reg.entries.length === 0) return false;
    for (const e of this.reg.entries) if (!expired.contains(e.dot)) return false;
    return true;
  }

  /**
   * Executes the deadline: drops every entry and marks each as expired. Returns the delta, or
   * null when no entry lives here.
   */
  expire(): Deadline | null {
    if (this.reg.entries.length === 0) return null;
    const marks = new VersionVector();
    for (const e of this.reg.entries) marks.raise(e.dot.actor, e.dot.counter);
    const delta = new Deadline(new MvRegister([], this.reg.ctx.clone()), new CausalContext(marks));
    this.merge(delta);
    return delta;
  }

  /** Delete: drops every entry (not marked expired). Returns the delta, or null when no entry lives here. */
  removeObserved(): Deadline | null {
    if (this.reg.entries.length === 0) return null;
    const delta = new Deadline(new MvRegister([], this.reg.ctx.clone()), new CausalContext());
    this.merge(delta);
    return delta;
  }

  /** Join; true if this changed. */
  merge(other: Deadline): boolean {
    const a = this.reg.merge(other.reg);
    const before = this.expired.vv.size + this.expired.cloud.length;
    const was = before === 0 && other.expired.vv.size === 0 && other.expired.cloud.length === 0 ? null : this.expired.clone();
    if (was !== null) this.expired.joinWith(other.expired);
    return a || (was !== null && !was.equals(this.expired));
  }

  equals(other: Deadline): boolean {
    return this.reg.equals(other.reg) && this.expired.equals(other.expired);
  }

  clone(): Deadline {
    return new Deadline(this.reg.clone(), this.expired.clone());
  }
}

export type { Dot, MvEntry };
