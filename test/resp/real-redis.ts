// A throwaway redis-server (when installed) and a minimal RESP2/RESP3 client for it, so tests can
// check that "Redis's reply" in our command table is what Redis itself answers.
import { connect, createServer, type Socket } from "node:net";
import type { Plain } from "./harness.ts";

export interface RealRedis {
  port: number;
  /** One command on this connection; its reply in the harness's plain form. */
  call(...args: (string | Uint8Array)[]): Promise<Plain>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Parses one reply at `pos`; null when the buffer does not hold all of it yet. */
function parse(buf: Buffer, pos: number): { value: Plain; end: number } | null {
  const eol = buf.indexOf("\r\n", pos);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[pos] as number);
  const line = buf.toString("latin1", pos + 1, eol);
  const next = eol + 2;
  const many = (n: number, from: number): { items: Plain[]; end: number } | null => {
    const items: Plain[] = [];
    let at = from;
    for (let i = 0; i < n; i++) {
      const one = parse(buf, at);
      if (one === null) return null;
      items.push(one.value);
      at = one.end;
    }
    return { items, end: at };
  };
  switch (type) {
    case "+":
      return { value: `+${buf.toString("utf8", pos + 1, eol)}`, end: next };
    case "-":
      return { value: `-${buf.toString("utf8", pos + 1, eol)}`, end: next };
    case ":": {
      const n = BigInt(line);
      return { value: n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n, end: next };
    }
    case "_":
      return { value: null, end: next };
    case "#":
      return { value: line === "t", end: next };
    case ",":
      return { value: { double: Number(line) }, end: next };
    case "$":
    case "=": {
      const len = Number(line);
      if (len < 0) return { value: null, end: next };
      if (buf.length < next + len + 2) return null;
      const body = buf.toString("utf8", next, next + len);
      // A verbatim string's "txt:" goes, as the harness shows verbatim replies as their text.
      return { value: type === "=" ? body.slice(4) : body, end: next + len + 2 };
    }
    case "*":
    case "~": {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const r = many(n, next);
      if (r === null) return null;
      return { value: type === "~" ? { set: r.items } : r.items, end: r.end };
    }
    case "%": {
      const r = many(Number(line) * 2, next);
      if (r === null) return null;
      const entries: [Plain, Plain][] = [];
      for (let i = 0; i < r.items.length; i += 2) entries.push([r.items[i] as Plain, r.items[i + 1] as Plain]);
      return { value: { map: entries }, end: r.end };
    }
    default:
      throw new Error(`unexpected RESP type ${JSON.stringify(type)}`);
  }
}

function encode(args: readonly (string | Uint8Array)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === "string" ? Buffer.from(a) : Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

function client(port: number): Promise<{ sock: Socket; call: RealRedis["call"] }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    const waiting: ((v: Plain) => void)[] = [];
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const r = parse(buf, 0);
        if (r === null) break;
        buf = buf.subarray(r.end);
        waiting.shift()?.(r.value);
      }
    });
    sock.once("error", reject);
    sock.once("connect", () => resolve({
      sock,
      call: (...args) => new Promise<Plain>((res) => {
        waiting.push(res);
        sock.write(encode(args));
      }),
    }));
  });
}

/** Starts redis-server on a free port; null when it is not installed. */
export async function startRealRedis(): Promise<RealRedis | null> {
  const bin = Bun.which("redis-server");
  if (bin === null) return null;
  const port = await freePort();
  const proc = Bun.spawn([bin, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"], { stdout: "ignore", stderr: "ignore" });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const c = await client(port);
      if ((await c.call("PING")) === "+PONG") {
        return {
          port,
          call: c.call,
          async stop() {
            c.sock.destroy();
            proc.kill();
            await proc.exited;
          },
        };
      }
      c.sock.destroy();
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill();
      throw new Error(`redis-server did not answer PING on port ${port} within 10 s`);
    }
    await Bun.sleep(50);
  }
}
