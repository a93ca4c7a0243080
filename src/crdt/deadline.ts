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

/**
 * The forms a deadline takes in nearly every key (one actor's dot d, context exactly "d and
 * everything before it" of that actor), kept as plain fields instead of the MvRegister and two
 * causal contexts: 1 object per key instead of ~17, which the GC of a node holding a million keys
 * with a deadline has to trace (issue 14's benchmark: ~1.3 KB and 33 heap objects per key before).
 */
const enum Form {
  /** Nothing: no entry, nothing seen, nothing expired (new Deadline()). */
  Empty,
  /** One live entry (a, c) = at; the register has seen a's dots up to c; nothing expired. */
  Live,
  /** Executed: no entry, the register has seen a up to c, and (a, c) is marked expired. */
  Executed,
  /** Deleted: no entry, the register has seen a up to c, nothing expired. */
  Removed,
  /** Anything else: held in `g`. */
  General,
}

export class Deadline {
  /** The kind discriminant (src/kinds): on the prototype, so it costs no memory per state. */
  get kind(): "deadline" {
    return "deadline";
  }

  private f: Form = Form.Empty;
  /** The compact forms' actor, dot counter and deadline (0: the entry says "no deadline"). */
  private a = 0 as ActorId;
  private c = 0;
  private at = 0;
  /** The general form (f === Form.General): the register and the expired dots. */
  private g: { reg: MvRegister; expired: CausalContext } | null = null;

  constructor(
    /** The deadlines set and not replaced (siblings when concurrent). */
    reg: MvRegister = new MvRegister(),
    /** Deadline dots some replica expired (a version vector: an actor's later dot covers its earlier ones). */
    expired: CausalContext = new CausalContext(),
  ) {
    this.settle(reg, expired);
  }

  /** The register of deadlines (a copy when compact: read it, never change it). */
  get reg(): MvRegister {
    if (this.g !== null) return this.g.reg;
    const ctx = new CausalContext();
    if (this.f !== Form.Empty) ctx.vv.raise(this.a, this.c);
    const entries = this.f === Form.Live ? [{ dot: { actor: this.a, counter: this.c }, value: deadlineValue(this.at === 0 ? null : this.at) }] : [];
    return new MvRegister(entries, ctx);
  }

  /** The deadline dots some replica executed (a copy when compact: read it, never change it). */
  get expired(): CausalContext {
    if (this.g !== null) return this.g.expired;
    const x = new CausalContext();
    if (this.f === Form.Executed) x.vv.raise(this.a, this.c);
    return x;
  }

  /**
   * Which form this state takes (the codec writes the compact ones from their parts: dotActor,
   * dotCounter, entryAtMs). "live": one entry; "executed": none, marked expired; "removed":
   * none, deleted; "general": anything else (reg and expired).
   */
  get form(): "empty" | "live" | "executed" | "removed" | "general" {
    switch (this.f) {
      case Form.Empty: return "empty";
      case Form.Live: return "live";
      case Form.Executed: return "executed";
      case Form.Removed: return "removed";
      case Form.General: return "general";
    }
  }

  /** A compact form's dot: its actor and counter. */
  get dotActor(): ActorId {
    return this.a;
  }

  get dotCounter(): number {
    return this.c;
  }

  /** The live form's entry: a deadline, or null for "no deadline". */
  get entryAtMs(): number | null {
    return this.at === 0 ? null : this.at;
  }

  private static compact(f: Form.Live | Form.Executed | Form.Removed, a: ActorId, c: number, at: number): Deadline {
    const d = new Deadline();
    d.f = f;
    d.a = a;
    d.c = c;
    d.at = at;
    return d;
  }

  /** Takes reg and expired as this state, in a compact form when they fit one. */
  private settle(reg: MvRegister, expired: CausalContext): void {
    const ctx = reg.ctx;
    this.g = null;
    if (ctx.cloud.length === 0 && expired.cloud.length === 0 && ctx.vv.size <= 1 && expired.vv.size <= 1 && reg.entries.length <= 1) {
      if (ctx.vv.size === 0) {
        if (reg.entries.length === 0 && expired.vv.size === 0) {
          this.f = Form.Empty;
          return;
        }
      } else {
        const a = ctx.vv.actors[0] as ActorId;
        const c = ctx.vv.counters[0] as number;
        const e = reg.entries[0];
        const xa = expired.vv.size === 0 ? null : (expired.vv.actors[0] as ActorId);
        const xc = expired.vv.size === 0 ? 0 : (expired.vv.counters[0] as number);
        const form = e !== undefined
          ? (e.dot.actor === a && e.dot.counter === c && xa === null ? Form.Live : Form.General)
          : xa === null ? Form.Removed : xa === a && xc === c ? Form.Executed : Form.General;
        if (form !== Form.General) {
          this.f = form;
          this.a = a;
          this.c = c;
          this.at = e === undefined ? 0 : (deadlineOf(e.value) ?? 0);
          return;
        }
      }
    }
    this.f = Form.General;
    this.g = { reg, expired };
  }

  /** The general form's parts to change (a compact form is expanded first; settle() after). */
  private parts(): { reg: MvRegister; expired: CausalContext } {
    return this.g ?? { reg: this.reg, expired: this.expired };
  }

  /** The deadline in force: null when there is none (no entry, or a sibling saying "none"), else the latest sibling. */
  atMs(): number | null {
    if (this.g === null) return this.f === Form.Live && this.at !== 0 ? this.at : null;
    let best: number | null = null;
    for (const e of this.g.reg.entries) {
      const v = deadlineOf(e.value);
      if (v === null) return null;
      if (best === null || v > best) best = v;
    }
    return best;
  }

  /** Does any deadline entry live here (a deadline, or a "none" that beats concurrent ones)? */
  get holdsEntries(): boolean {
    return this.g === null ? this.f === Form.Live : this.g.reg.entries.length > 0;
  }

  /**
   * Sets the deadline (null: none) as actor, replacing every entry this replica has seen. Returns
   * the delta. base: where actor's dots start if this state holds none of them (clocks.ts
   * dotBase; the compact forms' context "actor up to c" claims those below).
   */
  set(actor: ActorId, atMs: number | null, base = 0): Deadline {
    // The common cases without building the register: the first deadline, or the same actor's
    // next one over its own live or deleted entry (the write covers everything seen: one dot).
    if (this.f === Form.Empty || ((this.f === Form.Live || this.f === Form.Removed) && this.a === actor)) {
      const c = this.f === Form.Empty ? Math.max(base, 0) + 1 : this.c + 1;
      if (Number.isSafeInteger(c)) {
        this.f = Form.Live;
        this.a = actor;
        this.c = c;
        this.at = atMs ?? 0;
        return Deadline.compact(Form.Live, actor, c, this.at);
      }
    }
    const p = this.parts();
    const delta = p.reg.write(actor, deadlineValue(atMs), null, base);
    this.settle(p.reg, p.expired);
    return new Deadline(delta, new CausalContext());
  }

  /**
   * Are all of this state's live entries among `expired` (and there is at least one)? Then the
   * deadline in force here is one that some replica has executed.
   */
  allExpiredBy(expired: CausalContext): boolean {
    if (this.g === null) return this.f === Form.Live && expired.contains({ actor: this.a, counter: this.c });
    if (this.g.reg.entries.length === 0) return false;
    for (const e of this.g.reg.entries) if (!expired.contains(e.dot)) return false;
    return true;
  }

  /**
   * Executes the deadline: drops every entry and marks each as expired. Returns the delta, or
   * null when no entry lives here.
   */
  expire(): Deadline | null {
    if (!this.holdsEntries) return null;
    if (this.f === Form.Live) {
      this.f = Form.Executed;
      this.at = 0;
      return Deadline.compact(Form.Executed, this.a, this.c, 0);
    }
    const reg = this.reg;
    const marks = new VersionVector();
    for (const e of reg.entries) marks.raise(e.dot.actor, e.dot.counter);
    const delta = new Deadline(new MvRegister([], reg.ctx.clone()), new CausalContext(marks));
    this.merge(delta);
    return delta;
  }

  /** Delete: drops every entry (not marked expired). Returns the delta, or null when no entry lives here. */
  removeObserved(): Deadline | null {
    if (!this.holdsEntries) return null;
    if (this.f === Form.Live) {
      this.f = Form.Removed;
      this.at = 0;
      return Deadline.compact(Form.Removed, this.a, this.c, 0);
    }
    const delta = new Deadline(new MvRegister([], this.reg.ctx.clone()), new CausalContext());
    this.merge(delta);
    return delta;
  }

  /** Join; true if this changed. */
  merge(other: Deadline): boolean {
    if (this.g === null && other.g === null && this.f === other.f && this.a === other.a && this.c === other.c && this.at === other.at) return false;
    const p = this.parts();
    const a = p.reg.merge(other.reg);
    const x = other.expired;
    let b = false;
    if (x.vv.size > 0 || x.cloud.length > 0) {
      const was = p.expired.clone();
      p.expired.joinWith(x);
      b = !was.equals(p.expired);
    }
    this.settle(p.reg, p.expired);
    return a || b;
  }

  equals(other: Deadline): boolean {
    if (this.g === null && other.g === null) return this.f === other.f && (this.f === Form.Empty || (this.a === other.a && this.c === other.c && this.at === other.at));
    // A general form never equals a compact one (settle() compacts whatever fits), but compare the parts anyway.
    return this.reg.equals(other.reg) && this.expired.equals(other.expired);
  }

  clone(): Deadline {
    const d = new Deadline();
    if (this.g === null) {
      d.f = this.f;
      d.a = this.a;
      d.c = this.c;
      d.at = this.at;
    } else d.settle(this.g.reg.clone(), this.g.expired.clone());
    return d;
  }
}

export type { Dot, MvEntry };
