// The Redis protocol on the wire: an incremental request parser (multibulk and inline, as Redis
// accepts them) and the reply encoder for RESP2 and RESP3. Pure: no I/O, no clock.
//
// The parser is hand-written because it is the hot path of every command: it scans bytes in
// place, returns long arguments as views (subarray) of the received chunks rather than copies
// and short ones as copies (cheaper, see argCopyBytesMax), keeps its state across chunks (a
// command split anywhere resumes where it stopped, so a huge command costs linear time), and
// copies only a partial tail, once, when enough input for progress came.
import { respArgsMax, respBulkBytesMax, respInlineBytesMax, respQueryBytesMax } from "../limits.ts";
import type { Reply } from "./types.ts";

/** The protocol bounds one parser enforces; tests shrink them. */
export interface ParserLimits {
  bulkBytesMax: number;
  argsMax: number;
  inlineBytesMax: number;
  queryBytesMax: number;
}

export const defaultParserLimits: Readonly<ParserLimits> = Object.freeze({
  bulkBytesMax: respBulkBytesMax,
  argsMax: respArgsMax,
  inlineBytesMax: respInlineBytesMax,
  queryBytesMax: respQueryBytesMax,
});

const CR = 13;
const LF = 10;
const STAR = 42;
const DOLLAR = 36;
const MINUS = 45;
const ZERO = 48;
const NINE = 57;
const empty = new Uint8Array(0);

/**
 * Arguments up to this long are copied out of the chunk instead of viewed: the first view of a
 * chunk makes JavaScriptCore give it an ArrayBuffer of its own, which cost ~0.5 us per argument
 * (7.6% of the node's time serving redis-benchmark's PING), while copying a key-sized argument
 * into a new array costs ~0.05 us. Longer ones (values) are views: no copy of big bulk strings.
 */
export const argCopyBytesMax = 64;

/** buf[from, from + len) as an argument: a copy when short, else a view. */
function argument(buf: Uint8Array, from: number, len: number): Uint8Array {
  if (len > argCopyBytesMax) return buf.subarray(from, from + len);
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = buf[from + i]!;
  return out;
}

/**
 * Parses the requests of one connection. feed() the bytes as they arrive, then call next() until
 * it returns null; a non-null `failure` then is the Redis error text (without "-ERR ") to answer
 * before closing the connection. The returned arguments are copies or views of input chunks,
 * which the parser never writes to: they stay valid for as long as the caller holds them (and a
 * view holds its chunk; the command table copies what it keeps for longer than the command).
 */
export class RespParser {
  /** Set once the input broke a protocol rule: the connection must be answered this and closed. */
  failure: string | null = null;
  private buf: Uint8Array = empty;
  private pos = 0;
  /** Chunks received after buf's tail while waiting for `need` bytes (joined once, when there). */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** Bytes after pos (buf and pending together) needed before parsing can progress. */
  private need = 1;
  /** The multibulk command being received: arguments so far, how many are still to come. */
  private args: Uint8Array[] | null = null;
  private argsLeft = 0;
  /** Length of the bulk string whose "$n" line is read, or -1 before it. */
  private bulkLen = -1;
  /** Bytes the command being received has taken so far (its parsed arguments and lines). */
  private commandBytes = 0;

  constructor(private readonly limits: Readonly<ParserLimits> = defaultParserLimits) {}

  /** Unparsed input plus the part of the command being received, as the query buffer limit counts it. */
  get bufferedBytes(): number {
    return this.buf.length - this.pos + this.pendingBytes + this.commandBytes;
  }

  feed(chunk: Uint8Array): void {
    if (this.failure !== null || chunk.length === 0) return;
    if (this.pos >= this.buf.length && this.pendingBytes === 0) {
      this.buf = chunk;
      this.pos = 0;
    } else {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    if (this.bufferedBytes > this.limits.queryBytesMax) {
      this.fail(`query buffer limit of ${this.limits.queryBytesMax} bytes reached`);
    }
  }

  /** The next complete command's arguments (never empty), or null when more input is needed or the input failed. */
  next(): Uint8Array[] | null {
    for (;;) {
      if (this.failure !== null) return null;
      const avail = this.buf.length - this.pos + this.pendingBytes;
      if (avail < this.need) return null;
      if (this.pendingBytes > 0) this.join();
      if (this.args === null) {
        if (this.buf[this.pos] === STAR) {
          if (!this.readMultibulkHeader()) return null;
          continue;
        }
        const inline = this.readInline();
        if (inline === null) return null;
        if (inline.length > 0) return inline;
        continue;
      }
      if (!this.readBulks()) return null;
      const done = this.args;
      this.args = null;
      this.commandBytes = 0;
      return done;
    }
  }

  private fail(message: string): void {
    this.failure = `Protocol error: ${message}`;
    this.buf = empty;
    this.pos = 0;
    this.pending = [];
    this.pendingBytes = 0;
    this.args = null;
  }

  /** Copies the unparsed tail and the pending chunks into one buffer (the only copy the parser makes). */
  private join(): void {
    const tail = this.buf.length - this.pos;
    const joined = new Uint8Array(tail + this.pendingBytes);
    joined.set(this.buf.subarray(this.pos), 0);
    let at = tail;
    for (const c of this.pending) {
      joined.set(c, at);
      at += c.length;
    }
    this.buf = joined;
    this.pos = 0;
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Waits for at least `bytes` bytes after pos; returns false (the caller returns null). */
  private wait(bytes: number): false {
    this.need = bytes;
    return false;
  }

  /** Position of the CR ending the line that starts at `from`, or -1 when the line is not complete. */
  private lineEnd(from: number): number {
    const buf = this.buf;
    const end = buf.length;
    for (let i = from; i < end; i++) if (buf[i] === CR) return i + 1 < end ? i : -1;
    return -1;
  }

  /**
   * The integer of buf[from, to) as Redis's string2ll reads it (an optional "-", then digits, no
   * leading zeros, no "+"), or NaN. Counts are small, so 15 digits are plenty.
   */
  private integer(from: number, to: number): number {
    const buf = this.buf;
    let i = from;
    let negative = false;
    if (i < to && buf[i] === MINUS) {
      negative = true;
      i++;
    }
    const digits = to - i;
    if (digits <= 0 || digits > 15 || (digits > 1 && buf[i] === ZERO)) return Number.NaN;
    let n = 0;
    for (; i < to; i++) {
      const c = buf[i]!;
      if (c < ZERO || c > NINE) return Number.NaN;
      n = n * 10 + (c - ZERO);
    }
    return negative ? -n : n;
  }

  /** "*<n>\r\n": starts a command of n arguments (n <= 0 is an empty command, skipped as Redis does). */
  private readMultibulkHeader(): boolean {
    const start = this.pos;
    const cr = this.lineEnd(start + 1);
    if (cr < 0) {
      if (this.buf.length - start > this.limits.inlineBytesMax) this.fail("too big mbulk count string");
      return this.wait(this.buf.length - start + 1);
    }
    if (cr - start > this.limits.inlineBytesMax) {
      this.fail("too big mbulk count string");
      return false;
    }
    const n = this.integer(start + 1, cr);
    if (Number.isNaN(n) || n > this.limits.argsMax) {
      this.fail("invalid multibulk length");
      return false;
    }
    this.pos = cr + 2;
    this.need = 1;
    if (n <= 0) return true;
    this.args = [];
    this.argsLeft = n;
    this.bulkLen = -1;
    this.commandBytes = cr + 2 - start;
    return true;
  }

  /** Reads "$<len>\r\n<bytes>\r\n" arguments until the command is complete (true) or input runs out (false). */
  private readBulks(): boolean {
    const args = this.args!;
    const buf = this.buf;
    while (this.argsLeft > 0) {
      if (this.bulkLen < 0) {
        const start = this.pos;
        if (start >= buf.length) return this.wait(1);
        if (buf[start] !== DOLLAR) {
          this.fail(`expected '$', got '${String.fromCharCode(buf[start]!)}'`);
          return false;
        }
        const cr = this.lineEnd(start + 1);
        if (cr < 0) {
          if (buf.length - start > this.limits.inlineBytesMax) this.fail("too big bulk count string");
          return this.wait(buf.length - start + 1);
        }
        if (cr - start > this.limits.inlineBytesMax) {
          this.fail("too big bulk count string");
          return false;
        }
        const n = this.integer(start + 1, cr);
        if (Number.isNaN(n) || n < 0 || n > this.limits.bulkBytesMax) {
          this.fail("invalid bulk length");
          return false;
        }
        this.bulkLen = n;
        this.pos = cr + 2;
        this.commandBytes += cr + 2 - start;
      }
      const len = this.bulkLen;
      // The CRLF after the bytes is skipped unread, as Redis does.
      if (buf.length - this.pos < len + 2) return this.wait(len + 2);
      args.push(argument(buf, this.pos, len));
      this.pos += len + 2;
      this.commandBytes += len + 2;
      this.bulkLen = -1;
      this.argsLeft--;
    }
    this.need = 1;
    return true;
  }

  /** One inline command line (telnet, `PING\r\n`): split like Redis's sdssplitargs; [] for a blank line; null to wait or on failure. */
  private readInline(): Uint8Array[] | null {
    const buf = this.buf;
    const start = this.pos;
    let nl = -1;
    for (let i = start; i < buf.length; i++) {
      if (buf[i] === LF) {
        nl = i;
        break;
      }
    }
    if (nl < 0) {
      if (buf.length - start > this.limits.inlineBytesMax) this.fail("too big inline request");
      this.wait(buf.length - start + 1);
      return null;
    }
    if (nl - start > this.limits.inlineBytesMax) {
      this.fail("too big inline request");
      return null;
    }
    const end = nl > start && buf[nl - 1] === CR ? nl - 1 : nl;
    this.pos = nl + 1;
    this.need = 1;
    const args = splitInline(buf, start, end);
    if (args === null) {
      this.fail("unbalanced quotes in request");
      return null;
    }
    return args;
  }
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Redis's sdssplitargs over buf[from, to): words separated by spaces; "double quotes" with
 * \n \r \t \b \a \xHH escapes and 'single quotes' with \' ; a closing quote must end the word.
 * Returns null for unbalanced quotes.
 */
export function splitInline(buf: Uint8Array, from: number, to: number): Uint8Array[] | null {
  const out: Uint8Array[] = [];
  let p = from;
  for (;;) {
    while (p < to && isSpace(buf[p]!)) p++;
    if (p >= to) return out;
    const wordStart = p;
    let plain = true;
    const bytes: number[] = [];
    let inDouble = false;
    let inSingle = false;
    for (;;) {
      if (inDouble) {
        if (p >= to) return null;
        const c = buf[p]!;
        if (c === 92 && p + 3 < to && buf[p + 1] === 120 && hexValue(buf[p + 2]!) >= 0 && hexValue(buf[p + 3]!) >= 0) {
          bytes.push(hexValue(buf[p + 2]!) * 16 + hexValue(buf[p + 3]!));
          p += 4;
          continue;
        }
        if (c === 92 && p + 1 < to) {
          const e = buf[p + 1]!;
          bytes.push(e === 110 ? 10 : e === 114 ? 13 : e === 116 ? 9 : e === 98 ? 8 : e === 97 ? 7 : e);
          p += 2;
          continue;
        }
        if (c === 34) {
          if (p + 1 < to && !isSpace(buf[p + 1]!)) return null;
          p++;
          break;
        }
        bytes.push(c);
        p++;
        continue;
      }
      if (inSingle) {
        if (p >= to) return null;
        const c = buf[p]!;
        if (c === 92 && p + 1 < to && buf[p + 1] === 39) {
          bytes.push(39);
          p += 2;
          continue;
        }
        if (c === 39) {
          if (p + 1 < to && !isSpace(buf[p + 1]!)) return null;
          p++;
          break;
        }
        bytes.push(c);
        p++;
        continue;
      }
      if (p >= to || isSpace(buf[p]!)) break;
      const c = buf[p]!;
      if (c === 34 || c === 39) {
        if (plain) {
          // The unquoted prefix of this word, if any, comes first.
          for (let i = wordStart; i < p; i++) bytes.push(buf[i]!);
          plain = false;
        }
        if (c === 34) inDouble = true;
        else inSingle = true;
        p++;
        continue;
      }
      if (!plain) bytes.push(c);
      p++;
    }
    out.push(plain ? buf.subarray(wordStart, p) : Uint8Array.from(bytes));
  }
}

// ---- encoding ----

const utf8 = new TextEncoder();
/** A connection's first reply buffer: small, since most connections are idle or answer small replies. */
const outputInitialBytes = 1024;
/** A reply buffer grown beyond this is let go once written (pipelined and big replies grow it again). */
const outputRetainedBytesMax = 64 * 1024;

/**
 * A growable output buffer replies are encoded into, written to the socket as one piece.
 * take() hands out the encoded bytes and starts over on a fresh buffer, so what was handed out
 * is never overwritten.
 */
export class ReplyWriter {
  private buf = new Uint8Array(outputInitialBytes);
  length = 0;

  private ensure(extra: number): void {
    const want = this.length + extra;
    if (want <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < want) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  /** The bytes encoded so far; the writer starts again empty (keeping a buffer of the initial size). */
  take(): Uint8Array {
    const out = this.buf.subarray(0, this.length);
    this.buf = new Uint8Array(Math.max(outputInitialBytes, Math.min(this.buf.length, outputRetainedBytesMax)));
    this.length = 0;
    return out;
  }

  /** The buffer the first `length` bytes of which are encoded replies (written out without making a view). */
  raw(): Uint8Array {
    return this.buf;
  }

  /** The bytes encoded so far, valid until the next write or clear(). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  /** Forgets the encoded bytes (they were written out), keeping the buffer for the next replies. */
  clear(): void {
    this.length = 0;
    // A huge reply grew the buffer: let that memory go rather than keep it per idle connection.
    if (this.buf.length > outputRetainedBytesMax) this.buf = new Uint8Array(outputInitialBytes);
  }

  /** A string of ASCII characters (type bytes, numbers, CRLF); callers never pass other characters. */
  ascii(s: string): void {
    const n = s.length;
    this.ensure(n);
    const buf = this.buf;
    let at = this.length;
    for (let i = 0; i < n; i++) buf[at++] = s.charCodeAt(i);
    this.length = at;
  }

  crlf(): void {
    this.ensure(2);
    this.buf[this.length] = 13;
    this.buf[this.length + 1] = 10;
    this.length += 2;
  }

  bytes(b: Uint8Array): void {
    const n = b.length;
    this.ensure(n);
    if (n <= smallCopyBytesMax) {
      // A few bytes: a loop beats TypedArray.set's per-call cost.
      const buf = this.buf;
      const at = this.length;
      for (let i = 0; i < n; i++) buf[at + i] = b[i]!;
    } else this.buf.set(b, this.length);
    this.length += n;
  }

  /** A line ":<n>\r\n" (prefix ":", or "*" / "$" / "%" / "~" for a header) with n's decimal digits written in place. */
  intLine(prefix: number, n: number): void {
    this.ensure(24);
    const buf = this.buf;
    let at = this.length;
    buf[at++] = prefix;
    if (n < 0) {
      buf[at++] = 45;
      n = -n;
    }
    const start = at;
    do {
      buf[at++] = 48 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
    // Digits went in lowest first: reverse them.
    for (let i = start, j = at - 1; i < j; i++, j--) {
      const t = buf[i]!;
      buf[i] = buf[j]!;
      buf[j] = t;
    }
    buf[at++] = 13;
    buf[at++] = 10;
    this.length = at;
  }

  /** UTF-8 of s, and its byte length known in advance (Buffer.byteLength). */
  utf8(s: string, byteLength: number): void {
    this.ensure(byteLength);
    utf8.encodeInto(s, this.buf.subarray(this.length, this.length + byteLength));
    this.length += byteLength;
  }
}

/** A line of a simple string or error carries no CR or LF (a line break would end the reply early). */
function oneLine(text: string): string {
  return text.includes("\r") || text.includes("\n") ? text.replace(/[\r\n]+/g, " ") : text;
}

/** Redis's double formatting: shortest round-trip digits, "inf", "-inf", "nan". */
export function formatDouble(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  return String(v);
}

const COLON = 58;
const PERCENT = 37;
const TILDE = 126;
/** Bytes copied by a loop rather than TypedArray.set (see ReplyWriter.bytes). */
const smallCopyBytesMax = 32;
const safeBig = BigInt(Number.MAX_SAFE_INTEGER);
/** "+OK\r\n", the most common reply, copied whole. */
const okLine = new Uint8Array([43, 79, 75, 13, 10]);

function bulkString(w: ReplyWriter, value: Uint8Array | string): void {
  if (typeof value === "string") {
    const n = Buffer.byteLength(value, "utf8");
    w.intLine(DOLLAR, n);
    w.utf8(value, n);
  } else {
    w.intLine(DOLLAR, value.length);
    w.bytes(value);
  }
  w.crlf();
}

/**
 * Encodes one reply for the session's protocol. In RESP2 the RESP3 types take the shapes Redis
 * gives them: map -> flat array of key, value, ...; set -> array; double -> bulk string;
 * bool -> integer 1/0; verbatim -> bulk string (without its format); null -> the null bulk
 * string $-1 (a null array is `{ kind: "array", items: null }`, encoded *-1).
 */
export function encodeReply(w: ReplyWriter, r: Reply, protocol: 2 | 3): void {
  switch (r.kind) {
    case "simple":
      if (r.text === "OK") {
        w.bytes(okLine);
        return;
      }
      w.ascii("+");
      writeLine(w, oneLine(r.text));
      return;
    case "error":
      w.ascii("-");
      writeLine(w, oneLine(r.text));
      return;
    case "int": {
      // A safe integer's digits are written in place (no string); a bigint outside that range as text.
      const v = r.value;
      if (typeof v === "number" && Number.isSafeInteger(v)) w.intLine(COLON, v);
      else if (typeof v === "bigint" && v >= -safeBig && v <= safeBig) w.intLine(COLON, Number(v));
      else w.ascii(`:${v}\r\n`);
      return;
    }
    case "bulk":
      if (r.value === null) w.ascii(protocol === 3 ? "_\r\n" : "$-1\r\n");
      else bulkString(w, r.value);
      return;
    case "array":
      if (r.items === null) {
        w.ascii(protocol === 3 ? "_\r\n" : "*-1\r\n");
        return;
      }
      w.intLine(STAR, r.items.length);
      for (const item of r.items) encodeReply(w, item, protocol);
      return;
    case "map":
      if (protocol === 3) w.intLine(PERCENT, r.entries.length);
      else w.intLine(STAR, r.entries.length * 2);
      for (const [k, v] of r.entries) {
        encodeReply(w, k, protocol);
        encodeReply(w, v, protocol);
      }
      return;
    case "set":
      w.intLine(protocol === 3 ? TILDE : STAR, r.items.length);
      for (const item of r.items) encodeReply(w, item, protocol);
      return;
    case "double":
      if (protocol === 3) w.ascii(`,${formatDouble(r.value)}\r\n`);
      else bulkString(w, formatDouble(r.value));
      return;
    case "bool":
      w.ascii(protocol === 3 ? (r.value ? "#t\r\n" : "#f\r\n") : r.value ? ":1\r\n" : ":0\r\n");
      return;
    case "null":
      w.ascii(protocol === 3 ? "_\r\n" : "$-1\r\n");
      return;
    case "verbatim": {
      if (protocol === 2) {
        bulkString(w, r.text);
        return;
      }
      const format = (r.format + "txt").slice(0, 3);
      const n = Buffer.byteLength(r.text, "utf8");
      w.ascii(`=${n + 4}\r\n${format}:`);
      w.utf8(r.text, n);
      w.ascii("\r\n");
      return;
    }
  }
}

/** A simple string or error line: its text (any Unicode, as UTF-8) and CRLF. */
function writeLine(w: ReplyWriter, text: string): void {
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 127) {
      ascii = false;
      break;
    }
  }
  if (ascii) w.ascii(text);
  else w.utf8(text, Buffer.byteLength(text, "utf8"));
  w.ascii("\r\n");
}

/** Encodes replies into a fresh buffer (tests, one-off answers). */
export function encodeReplies(replies: readonly Reply[], protocol: 2 | 3): Uint8Array {
  const w = new ReplyWriter();
  for (const r of replies) encodeReply(w, r, protocol);
  return w.take();
}
