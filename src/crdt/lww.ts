// Last-writer-wins register of bytes, ordered by (HLC timestamp, actor id) - never by raw wall
// time - so a write made after seeing another always wins, even across skewed clocks.

import { actorName, actorRank, type ActorId } from "./actors.ts";
import { CrdtError, CrdtErrorCode } from "./errors.ts";
import type { Hlc } from "./hlc.ts";

import { registerValueBytesMax } from "../limits.ts";

/** Largest register value, in bytes (see src/limits.ts). */
export { registerValueBytesMax };

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class LwwRegister {
  /** The kind discriminant (src/kinds): on the prototype, so it costs no memory per state. */
  get kind(): "lww" {
    return "lww";
  }

  /** actor === null means never written (then ms, logical are 0 and value is empty). */
  constructor(
    public ms: number = 0,
    public logical: number = 0,
    public actor: ActorId | null = null,
    public value: Uint8Array = new Uint8Array(0),
  ) {}

  static create(): LwwRegister {
    return new LwwRegister();
  }

  get isSet(): boolean {
    return this.actor !== null;
  }

  timestamp(): Hlc {
    return { ms: this.ms, logical: this.logical };
  }

  /**
   * Writes value at timestamp ts by actor; returns the delta (the whole new register). Refuses
   * with INVALID (changing nothing) if (ts, actor) does not order after the current write -
   * the caller's HLC must have observed the current timestamp.
   */
  set(actor: ActorId, value: Uint8Array, ts: Hlc): LwwRegister {
    if (value.length > registerValueBytesMax) throw new CrdtError(CrdtErrorCode.Invalid, `value longer than ${registerValueBytesMax} bytes`);
    const delta = new LwwRegister(ts.ms, ts.logical, actor, value.slice());
    if (this.isSet && compareLww(delta, this) <= 0) {
      throw new CrdtError(CrdtErrorCode.Invalid, `timestamp ${ts.ms}.${ts.logical} by ${actorName(actor)} does not follow the current write`);
    }
    this.assign(delta);
    return delta;
  }

  /** Join: keeps the greater write. Returns whether this changed. */
  merge(other: LwwRegister): boolean {
    if (compareLww(other, this) <= 0) return false;
    this.assign(other);
    return true;
  }

  private assign(o: LwwRegister): void {
    this.ms = o.ms;
    this.logical = o.logical;
    this.actor = o.actor;
    this.value = o.value;
  }

  equals(other: LwwRegister): boolean {
    return compareLww(this, other) === 0;
  }

  clone(): LwwRegister {
    return new LwwRegister(this.ms, this.logical, this.actor, this.value);
  }
}

/**
 * Total order of writes: unset < any write; then HLC, then actor id, then value bytes (the last
 * only matters for two writes claiming the same stamp, which a correct HLC never makes, but a
 * total order keeps merge commutative whatever arrives).
 */
export function compareLww(a: LwwRegister, b: LwwRegister): number {
  if (a.actor === null || b.actor === null) return (a.actor === null ? 0 : 1) - (b.actor === null ? 0 : 1);
  if (a.ms !== b.ms) return a.ms - b.ms;
  if (a.logical !== b.logical) return a.logical - b.logical;
  if (a.actor !== b.actor) return actorRank(a.actor) - actorRank(b.actor);
  return compareBytes(a.value, b.value);
}
