// Multi-value register with dots and a causal context (optimised delta MV-Register,
// Almeida/Shoker/Baquero): a write replaces exactly the values its context covers and keeps
// truly concurrent ones as siblings, so siblings never outnumber concurrent writers.

import { type ActorId } from "./actors.ts";
import { CausalContext, dotCompare, nextDot, type Dot } from "./clocks.ts";
import { CrdtError, CrdtErrorCode } from "./errors.ts";
import { bytesEqual, compareBytes, registerValueBytesMax } from "./lww.ts";
import { mvSiblingsWriteMax } from "../limits.ts";

export interface MvEntry {
  readonly dot: Dot;
  readonly value: Uint8Array;
}

export interface MvRead {
  /** Sibling values in canonical (dot) order. */
  values: Uint8Array[];
  /** What the reader has seen; pass it to write() to replace these values. */
  context: CausalContext;
}

function sameDot(a: Dot, b: Dot): boolean {
  return a.actor === b.actor && a.counter === b.counter;
}

export class MvRegister {
  /** The kind discriminant (src/kinds): on the prototype, so it costs no memory per state. */
  get kind(): "mv" {
    return "mv";
  }

  /** entries sorted by dot; every entry's dot is in ctx. */
  constructor(public entries: MvEntry[] = [], public ctx: CausalContext = new CausalContext()) {}

  static create(): MvRegister {
    return new MvRegister();
  }

  read(): MvRead {
    return { values: this.entries.map((e) => e.value), context: this.ctx.clone() };
  }

  /**
   * Writes value as actor, replacing the values `context` covers (null: everything this replica
   * has seen). `context` comes from a client and is not trusted: it is clamped to the dots this
   * replica has seen (intersected with its causal context), so a dot it never saw deletes
   * nothing here or on a peer, and a forged counter cannot exhaust the actor's own dots.
   * Returns the delta ({newDot: value}, clamped context + newDot) - which is also the context
   * to answer the writer with: exactly what this write replaced, plus its own dot. The write's
   * own dot is one past the highest of actor's dots this replica has seen; if it has seen none,
   * one past `base` (clocks.ts dotBase), and the context also claims actor's dots below it, which
   * no value of this life of the key holds.
   * Refused (LimitExceeded, nothing changed) if more than mvSiblingsWriteMax values would
   * remain: only a write with a stale or empty context can add one, and the writer's remedy is
   * to pass the context it read.
   */
  write(actor: ActorId, value: Uint8Array, context: CausalContext | null, base = 0): MvRegister {
    if (value.length > registerValueBytesMax) throw new CrdtError(CrdtErrorCode.Invalid, `value longer than ${registerValueBytesMax} bytes`);
    const covered = context === null ? this.ctx.clone() : context.intersect(this.ctx);
    let kept = 0;
    for (const e of this.entries) if (!covered.contains(e.dot)) kept++;
    if (kept + 1 > mvSiblingsWriteMax) {
      throw new CrdtError(
        CrdtErrorCode.LimitExceeded,
        `the register holds ${kept} concurrent values, the most it may keep is ${mvSiblingsWriteMax}: read it and write with the context you read, which replaces the values you saw`,
      );
    }
    const { first: counter, claim } = nextDot(this.ctx, actor, base);
    if (!Number.isSafeInteger(counter)) throw new CrdtError(CrdtErrorCode.OutOfRange, "dot counter exhausted");
    const dot: Dot = { actor, counter };
    // A new life of the key for actor (clocks.ts dotBase): its dots below are claimed.
    if (claim > 0) covered.vv.raise(actor, claim);
    covered.add(dot);
    const delta = new MvRegister([{ dot, value: value.slice() }], covered);
    this.merge(delta);
    return delta;
  }

  /**
   * Join: an entry survives if both sides hold it, or the other side has not seen its dot.
   * Returns whether this changed.
   */
  merge(other: MvRegister): boolean {
    const a = this.entries;
    const b = other.entries;
    const out: MvEntry[] = [];
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      const x = a[i];
      const y = b[j];
      const c = x === undefined ? 1 : y === undefined ? -1 : dotCompare(x.dot, y.dot);
      if (c === 0 && x !== undefined && y !== undefined) {
        // Same dot on both sides: the same write. Should the values differ (never from a
        // correct replica), keep the greater so the join stays commutative.
        out.push(compareBytes(x.value, y.value) >= 0 ? x : y);
        i++;
        j++;
      } else if (c < 0 && x !== undefined) {
        if (!other.ctx.contains(x.dot)) out.push(x);
        i++;
      } else if (y !== undefined) {
        if (!this.ctx.contains(y.dot)) out.push(y);
        j++;
      }
    }
    const ctx = this.ctx.clone();
    ctx.joinWith(other.ctx);
    const changed = !entriesEqual(out, a) || !ctx.equals(this.ctx);
    this.entries = out;
    this.ctx = ctx;
    return changed;
  }

  equals(other: MvRegister): boolean {
    return entriesEqual(this.entries, other.entries) && this.ctx.equals(other.ctx);
  }

  clone(): MvRegister {
    return new MvRegister(this.entries.slice(), this.ctx.clone());
  }
}

function entriesEqual(a: readonly MvEntry[], b: readonly MvEntry[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as MvEntry;
    const y = b[i] as MvEntry;
    if (!sameDot(x.dot, y.dot) || !bytesEqual(x.value, y.value)) return false;
  }
  return true;
}
