// Test clients for the RESP server: raw sockets (plain or TLS) that send bytes as given and
// read replies with a small RESP2 reader, so tests see exactly what a client sees on the wire.
import { connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { startWith, type Reply, type RespCommands, type RespSession } from "../../src/resp/types.ts";
import type { TlsMaterial } from "../../src/transport/tls.ts";

/** A decoded RESP2 reply: strings for +, - (prefixed "-"), $; numbers for :; arrays; null. */
export type Wire = string | number | null | Wire[];

export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  readonly done: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    this.done = new Promise((resolve) => {
      const end = () => {
        this.closed = true;
        this.wake();
        resolve();
      };
      socket.on("close", end);
      socket.on("error", end);
    });
  }

  static plain(port: number, host = "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = tcpConnect({ host, port }, () => resolve(new RawClient(s)));
      s.once("error", reject);
    });
  }

  /** TLS with the given client certificate (cert/key empty: none). */
  static tls(port: number, m: TlsMaterial): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const own = m.cert.length > 0 ? { cert: m.cert, key: m.key } : {};
      const s = tlsConnect({ host: "127.0.0.1", port, ca: m.ca, servername: "localhost", ...own }, () => resolve(new RawClient(s)));
      s.once("error", reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  /** Sends a command as a multibulk request. */
  command(...args: (string | Uint8Array)[]): void {
    const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = Buffer.from(a);
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n"));
    }
    this.send(Buffer.concat(parts));
  }

  /** The next reply, waiting up to deadlineMs. */
  async reply(deadlineMs = 10_000): Promise<Wire> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      const r = readReply(this.buf, 0);
      if (r !== null) {
        this.buf = this.buf.subarray(r.end);
        return r.value;
      }
      if (this.closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.buf.toString("latin1").slice(0, 200))}`);
      const left = until - Date.now();
      if (left <= 0) throw new Error("no reply before the deadline");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Everything received and not yet read as a reply. */
  rawText(): string {
    return this.buf.toString("latin1");
  }

  /** Whether a complete reply is buffered now (without waiting). */
  hasReply(): boolean {
    return readReply(this.buf, 0) !== null;
  }

  /** Resolves once the server closed the connection (or rejects after deadlineMs). */
  async closedByServer(deadlineMs = 10_000): Promise<void> {
    await Promise.race([this.done, new Promise((_, reject) => setTimeout(() => reject(new Error("still open")), deadlineMs))]);
  }

  close(): void {
    this.socket.destroy();
  }
}

function readLine(buf: Buffer, at: number): { line: string; next: number } | null {
  const cr = buf.indexOf("\r\n", at);
  return cr < 0 ? null : { line: buf.toString("utf8", at, cr), next: cr + 2 };
}

export function readReply(buf: Buffer, at: number): { value: Wire; end: number } | null {
  if (at >= buf.length) return null;
  const l = readLine(buf, at + 1);
  if (l === null) return null;
  switch (String.fromCharCode(buf[at]!)) {
    case "+":
      return { value: l.line, end: l.next };
    case "-":
      return { value: `-${l.line}`, end: l.next };
    case ":":
      return { value: Number(l.line), end: l.next };
    case "$": {
      const n = Number(l.line);
      if (n < 0) return { value: null, end: l.next };
      if (buf.length < l.next + n + 2) return null;
      return { value: buf.toString("utf8", l.next, l.next + n), end: l.next + n + 2 };
    }
    case "*": {
      const n = Number(l.line);
      if (n < 0) return { value: null, end: l.next };
      const items: Wire[] = [];
      let end = l.next;
      for (let i = 0; i < n; i++) {
        const r = readReply(buf, end);
        if (r === null) return null;
        items.push(r.value);
        end = r.end;
      }
      return { value: items, end };
    }
    default:
      throw new Error(`not a RESP2 reply: ${JSON.stringify(buf.toString("latin1", at, at + 40))}`);
  }
}

/** Polls `check` until it holds, or throws after deadlineMs. */
export async function waitFor(what: string, check: () => boolean, deadlineMs = 10_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/**
 * The tests' command table: PING, ECHO, QUIT as Redis answers them, and probes of the connection
 * layer: GATE name (answered when the test opens the gate), BOOM / BOOMASYNC (a command that
 * throws / rejects), WHOAMI (the session's role), BIG n (a reply of n bytes), HELLO3 (RESP3 on).
 */
export class TestCommands implements RespCommands {
  private readonly gates = new Map<string, (r: Reply) => void>();
  executed = 0;

  /** Answers GATE name with the bulk string `text`, or with a null when text is null. */
  open(name: string, text: string | null = name): void {
    const g = this.gates.get(name);
    if (g === undefined) throw new Error(`no gate ${name}`);
    this.gates.delete(name);
    g(text === null ? { kind: "null" } : { kind: "bulk", value: text });
  }

  gateCount(): number {
    return this.gates.size;
  }

  start(session: RespSession, args: readonly Uint8Array[], later: (reply: Reply) => void, failed: (err: unknown) => void): Reply | null {
    return startWith(this.execute(session, args), later, failed);
  }

  execute(session: RespSession, args: readonly Uint8Array[]): Reply | Promise<Reply> {
    this.executed++;
    const name = Buffer.from(args[0]!).toString("latin1").toUpperCase();
    const arg = (i: number) => Buffer.from(args[i] ?? new Uint8Array()).toString("utf8");
    switch (name) {
      case "PING":
        return args.length > 1 ? { kind: "bulk", value: args[1]! } : { kind: "simple", text: "PONG" };
      case "ECHO":
        return { kind: "bulk", value: args[1] ?? new Uint8Array() };
      case "QUIT":
        session.closeAfterReply = true;
        return { kind: "simple", text: "OK" };
      case "GATE":
        return new Promise((resolve) => this.gates.set(arg(1), resolve));
      case "BOOM":
        throw new Error("boom");
      case "BOOMASYNC":
        return Promise.reject(new Error("boom"));
      case "WHOAMI":
        return { kind: "bulk", value: session.role };
      case "BIG":
        return { kind: "bulk", value: new Uint8Array(Number(arg(1))).fill(120) };
      case "HELLO3":
        session.protocol = 3;
        return { kind: "map", entries: [[{ kind: "bulk", value: "proto" }, { kind: "int", value: 3 }]] };
      default:
        return { kind: "error", text: `ERR unknown command '${name}'` };
    }
  }
}
