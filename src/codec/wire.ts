// Hand-written protobuf wire format: a reusable writer and a bounds-checked reader. Faster
// than a reflective library on the hot path; proto/crdt.proto stays the schema of record
// and test/codec checks protobufjs decodes these bytes identically.

import { DecodeError } from "./errors.ts";

export const WireType = { Varint: 0, Fixed64: 1, Bytes: 2, Fixed32: 5 } as const;
export type WireType = (typeof WireType)[keyof typeof WireType];

/** Largest field number protobuf allows. */
export const fieldNumberMax = 536_870_911;

/** Up to this many bytes, Writer.bytes copies with a loop (measured faster than Uint8Array.set for short arrays). */
const smallCopyBytesMax = 32;

/** Appends protobuf fields to a growable buffer; reuse one writer with reset(). */
export class Writer {
  buf: Uint8Array;
  pos = 0;

  constructor(initialBytes = 256) {
    this.buf = new Uint8Array(initialBytes);
  }

  reset(): void {
    this.pos = 0;
  }

  /** A copy of the bytes written since reset. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
  }

  /** Varint of a non-negative integer <= 2^53. */
  uint(v: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    while (v >= 0x1000_0000) {
      // Above 28 bits (HLC and creation times, about 2^40): the low 28 bits as four groups by
      // integer ops, then the rest (< 2^25 for v <= 2^53) below. `v % 0x80` on a double past int32 is a
      // floating-point remainder: the creation time every compact counter's delta carries
      // since issue 12 cost about 0.2 us per delta that way, 17% of applyMany for a Batch of
      // 100 increments (measured in one process against the loop alone, bun 1.4.5).
      const hi = Math.floor(v / 0x1000_0000);
      const lo = v - hi * 0x1000_0000;
      b[p++] = (lo & 0x7f) | 0x80;
      b[p++] = ((lo >>> 7) & 0x7f) | 0x80;
      b[p++] = ((lo >>> 14) & 0x7f) | 0x80;
      b[p++] = ((lo >>> 21) & 0x7f) | 0x80;
      v = hi;
    }
    while (v >= 0x80) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  /** Varint of a u64 bigint. */
  uint64(v: bigint): void {
    if (v < 0x2000_0000_0000_0n) { this.uint(Number(v)); return; }
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  tag(field: number, wt: WireType): void {
    this.uint(field * 8 + wt);
  }

  /** Little-endian fixed64 given as two u32 halves. */
  fixed64(hi: number, lo: number): void {
    this.ensure(8);
    const b = this.buf;
    let p = this.pos;
    b[p++] = lo & 0xff; b[p++] = (lo >>> 8) & 0xff; b[p++] = (lo >>> 16) & 0xff; b[p++] = lo >>> 24;
    b[p++] = hi & 0xff; b[p++] = (hi >>> 8) & 0xff; b[p++] = (hi >>> 16) & 0xff; b[p++] = hi >>> 24;
    this.pos = p;
  }

  bytes(v: Uint8Array): void {
    const n = v.length;
    this.uint(n);
    this.ensure(n);
    if (n <= smallCopyBytesMax) {
      // Actor ids, short names and values: a loop beats the native set call's overhead.
      const b = this.buf;
      let p = this.pos;
      for (let i = 0; i < n; i++) b[p++] = v[i] as number;
    } else this.buf.set(v, this.pos);
    this.pos += n;
  }

  /**
   * Length-prefixed bytes of a string of one char (0..255) per byte (an OR-Set member key,
   * src/crdt/orset.ts memberKey): written straight from the string, no Uint8Array in between.
   */
  latin1(s: string): void {
    const n = s.length;
    this.uint(n);
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** Starts a length-delimited submessage; pass the result to end(). */
  begin(field: number): number {
    this.tag(field, WireType.Bytes);
    this.ensure(1);
    this.buf[this.pos++] = 0; // 1-byte length placeholder, widened in end() if needed
    return this.pos;
  }

  end(start: number): void {
    const len = this.pos - start;
    if (len < 0x80) {
      this.buf[start - 1] = len;
      return;
    }
    let extra = 0;
    for (let l = len; l >= 0x80; l = Math.floor(l / 0x80)) extra++;
    this.ensure(extra);
    this.buf.copyWithin(start + extra, start, this.pos);
    const end = this.pos + extra;
    this.pos = start - 1;
    this.uint(len);
    this.pos = end;
  }
}

/** Reads protobuf fields from bytes; every read is bounds-checked and throws DecodeError. */
export class Reader {
  pos: number;

  constructor(readonly buf: Uint8Array, start = 0, public end = buf.length) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  fail(message: string): never {
    throw new DecodeError(message, this.pos);
  }

  /** Varint up to 2^53 - 1 (larger ones are refused). */
  uint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) this.fail("truncated varint");
      const b = this.buf[this.pos++] as number;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (i > 0 && b === 0) this.fail("non-minimal varint");
        if (result > Number.MAX_SAFE_INTEGER) this.fail("varint above 2^53");
        return result;
      }
      mul *= 0x80;
    }
    this.fail("varint above 2^53");
  }

  /** Varint as a u64 bigint (at most 10 bytes, at most 2^64 - 1). */
  uint64(): bigint {
    const start = this.pos;
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail("truncated varint");
      const b = this.buf[this.pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) {
        if (i > 0 && b === 0) this.fail("non-minimal varint");
        if (result >= 1n << 64n) { this.pos = start; this.fail("varint above 2^64"); }
        return result;
      }
      shift += 7n;
    }
    this.pos = start;
    this.fail("varint longer than 10 bytes");
  }

  /** Reads a tag; returns [field, wireType]. */
  tag(): [number, number] {
    const t = this.uint();
    const field = Math.floor(t / 8);
    const wt = t % 8;
    if (field < 1 || field > fieldNumberMax) this.fail(`bad field number ${field}`);
    return [field, wt];
  }

  /** Fixed64 as [hi, lo] u32 halves. */
  fixed64(): [number, number] {
    if (this.end - this.pos < 8) this.fail("truncated fixed64");
    const b = this.buf;
    const p = this.pos;
    const lo = ((b[p] as number) | ((b[p + 1] as number) << 8) | ((b[p + 2] as number) << 16) | ((b[p + 3] as number) << 24)) >>> 0;
    const hi = ((b[p + 4] as number) | ((b[p + 5] as number) << 8) | ((b[p + 6] as number) << 16) | ((b[p + 7] as number) << 24)) >>> 0;
    this.pos = p + 8;
    return [hi, lo];
  }

  /** Length of a length-delimited field, checked against the remaining input and `maxBytes`. */
  length(maxBytes: number, what: string): number {
    const len = this.uint();
    if (len > this.end - this.pos) this.fail(`${what}: length ${len} past end of input`);
    if (len > maxBytes) this.fail(`${what}: ${len} bytes exceeds limit ${maxBytes}`);
    return len;
  }

  /** A length-delimited field's bytes as a view (no copy). */
  bytesView(maxBytes: number, what: string): Uint8Array {
    const len = this.length(maxBytes, what);
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return v;
  }

  /** A sub-reader over a length-delimited field. */
  sub(maxBytes: number, what: string): Reader {
    const len = this.length(maxBytes, what);
    const r = new Reader(this.buf, this.pos, this.pos + len);
    this.pos += len;
    return r;
  }

  /** Skips a field of an unknown number (forward compatibility); groups are refused. */
  skip(wt: number): void {
    switch (wt) {
      case WireType.Varint:
        this.uint64();
        return;
      case WireType.Fixed64:
        if (this.end - this.pos < 8) this.fail("truncated fixed64");
        this.pos += 8;
        return;
      case WireType.Bytes:
        this.pos += this.length(Number.MAX_SAFE_INTEGER, "unknown field");
        return;
      case WireType.Fixed32:
        if (this.end - this.pos < 4) this.fail("truncated fixed32");
        this.pos += 4;
        return;
      default:
        this.fail(`unsupported wire type ${wt}`);
    }
  }

  /** Fails unless the field has the expected wire type. */
  expect(wt: number, expected: WireType, field: number): void {
    if (wt !== expected) this.fail(`field ${field}: wire type ${wt}, expected ${expected}`);
  }
}

export function u64FromHalves(hi: number, lo: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}
