// The RESP connection layer over real sockets: pipelining order, backpressure, maxclients, the
// protocol bounds, garbage, QUIT, failing commands, and roles from real TLS client certificates.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import Redis from "ioredis";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import { startRespServer, type RespServerOptions, type RunningRespServer } from "../../src/resp/server.ts";
import { initCerts } from "../../src/transport/certs.ts";
import { loadTlsDir, type TlsMaterial } from "../../src/transport/tls.ts";
import { Rng } from "../../src/sim/rng.ts";
import { RawClient, TestCommands, waitFor } from "./helpers.ts";

const seed = Number(process.env.IMDB_SEED ?? Math.floor(Math.random() * 2 ** 31));
let dir = "";
let nodeTls: TlsMaterial;
const running: RunningRespServer[] = [];
const clients: RawClient[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "imdb-resp-"));
  await initCerts({ dir: join(dir, "certs"), nodes: ["n1"], clients: ["app"], admins: ["ops"], hosts: [], days: 2, force: false });
  await initCerts({ dir: join(dir, "other"), nodes: ["n1"], clients: ["app"], admins: [], hosts: [], days: 2, force: false });
  nodeTls = await loadTlsDir(join(dir, "certs"), "n1");
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(running.splice(0).map((s) => s.shutdown(100)));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function server(opts: Partial<RespServerOptions> & { commands: RespServerOptions["commands"] }): Promise<RunningRespServer> {
  const s = await startRespServer({ addr: "127.0.0.1:0", security: { insecure: true }, onInternalError: () => undefined, ...opts });
  running.push(s);
  return s;
}

async function plain(s: RunningRespServer): Promise<RawClient> {
  const c = await RawClient.plain(s.port);
  clients.push(c);
  return c;
}

describe("requests and replies", () => {
  test("pipelined commands are answered in request order, though a slow async one comes first", async () => {
    const table = new TestCommands();
    const s = await server({ commands: table });
    const c = await plain(s);
    c.send("*2\r\n$4\r\nGATE\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nGATE\r\n$1\r\nb\r\nECHO c\r\n");
    // Every command was dispatched at once (not one at a time behind the first).
    await waitFor("both gates to be waiting", () => table.gateCount() === 2);
    expect(table.executed).toBe(4);
    table.open("b");
    await Bun.sleep(50);
    expect(c.hasReply()).toBe(false);
    table.open("a");
    expect([await c.reply(), await c.reply(), await c.reply(), await c.reply()]).toEqual(["a", "PONG", "b", "c"]);
  });

  test("QUIT answers OK and closes; commands after it get no reply", async () => {
    const s = await server({ commands: new TestCommands() });
    const c = await plain(s);
    c.send("PING\r\nQUIT\r\nPING\r\n");
    expect(await c.reply()).toBe("PONG");
    expect(await c.reply()).toBe("OK");
    await c.closedByServer();
    expect(c.hasReply()).toBe(false);
  });

  test("a command that throws or rejects answers -ERR internal error for itself only", async () => {
    const s = await server({ commands: new TestCommands() });
    const c = await plain(s);
    c.send("BOOM\r\nPING\r\nBOOMASYNC\r\nECHO ok\r\n");
    expect([await c.reply(), await c.reply(), await c.reply(), await c.reply()]).toEqual(["-ERR internal error", "PONG", "-ERR internal error", "ok"]);
  });

  test("RESP3 replies once the session switched protocol", async () => {
    const s = await server({ commands: new TestCommands() });
    const c = await plain(s);
    c.send("HELLO3\r\nPING\r\n");
    const want = "%1\r\n$5\r\nproto\r\n:3\r\n+PONG\r\n";
    await waitFor("the map reply", () => c.rawText().length >= want.length);
    expect(c.rawText()).toBe(want);
  });

  test("a reply keeps the protocol in force when its command ran, though a HELLO behind it switches", async () => {
    const table = new TestCommands();
    const s = await server({ commands: table });
    const c = await plain(s);
    c.send("GATE a\r\nHELLO3\r\nGATE b\r\n");
    await waitFor("both gates", () => table.gateCount() === 2);
    table.open("a", null);
    table.open("b", null);
    const want = "$-1\r\n%1\r\n$5\r\nproto\r\n:3\r\n_\r\n";
    await waitFor("three replies", () => c.rawText().length >= want.length);
    expect(c.rawText()).toBe(want);
  });

  test("the session names its peer as Redis does, and IPv6 in brackets", async () => {
    const s = await server({ commands: new TestCommands(), addr: "[::1]:0" });
    const c = await RawClient.plain(s.port, "::1");
    clients.push(c);
    c.send("PING\r\n");
    await c.reply();
    expect(s.sessions()[0]!.remote).toBe(`[::1]:${c.socket.localPort}`);
  });

  test("a protocol error is answered after the earlier replies, then that connection closes", async () => {
    const s = await server({ commands: new TestCommands() });
    const c = await plain(s);
    const other = await plain(s);
    c.send("PING\r\n*1\r\n+PING\r\n");
    expect(await c.reply()).toBe("PONG");
    expect(await c.reply()).toBe("-ERR Protocol error: expected '$', got '+'");
    await c.closedByServer();
    other.send("PING\r\n");
    expect(await other.reply()).toBe("PONG");
  });

  test("input beyond the query buffer limit closes only that connection", async () => {
    const s = await server({ commands: new TestCommands(), limits: { queryBytesMax: 64 * 1024, bulkBytesMax: 1024 * 1024 } });
    const big = await plain(s);
    const other = await plain(s);
    big.send("*2\r\n$4\r\nECHO\r\n$500000\r\n");
    big.send(new Uint8Array(100_000));
    expect(await big.reply()).toBe("-ERR Protocol error: query buffer limit of 65536 bytes reached");
    await big.closedByServer();
    other.send("PING\r\n");
    expect(await other.reply()).toBe("PONG");
  });

  test(`random garbage never crashes the server (seed ${seed})`, async () => {
    const s = await server({ commands: new TestCommands(), limits: { inlineBytesMax: 1024, bulkBytesMax: 4096, queryBytesMax: 16 * 1024 } });
    const rng = new Rng(seed);
    const alphabet = Buffer.from("*$\r\n-0123456789 \"'\\PINGECHO");
    for (let i = 0; i < 20; i++) {
      const c = await plain(s);
      const junk = new Uint8Array(1 + rng.int(20_000));
      for (let j = 0; j < junk.length; j++) junk[j] = rng.int(3) === 0 ? rng.int(256) : alphabet[rng.int(alphabet.length)]!;
      c.send(junk);
    }
    const fresh = await plain(s);
    fresh.send("PING\r\n");
    expect(await fresh.reply()).toBe("PONG");
  });
});

describe("bounds", () => {
  test("maxclients: the next connection is answered the Redis error and closed; a freed slot is usable again", async () => {
    const refused: string[] = [];
    const s = await server({ commands: new TestCommands(), maxClients: 2, metrics: { commandDone: () => undefined, connectionRefused: (r) => refused.push(r) } });
    const a = await plain(s);
    const b = await plain(s);
    a.send("PING\r\n");
    b.send("PING\r\n");
    expect([await a.reply(), await b.reply()]).toEqual(["PONG", "PONG"]);
    const c = await plain(s);
    expect(await c.reply()).toBe("-ERR max number of clients reached");
    await c.closedByServer();
    expect(refused).toEqual(["maxclients"]);
    a.close();
    await waitFor("the server to see the close", () => s.sessions().length === 1);
    const d = await plain(s);
    d.send("PING\r\n");
    expect(await d.reply()).toBe("PONG");
  });

  test("setMaxClients (CONFIG SET maxclients) applies to the next connection; open ones stay", async () => {
    const s = await server({ commands: new TestCommands(), maxClients: 5 });
    const a = await plain(s);
    const b = await plain(s);
    a.send("PING\r\n");
    b.send("PING\r\n");
    expect([await a.reply(), await b.reply()]).toEqual(["PONG", "PONG"]);
    s.setMaxClients(2);
    expect(s.maxClients).toBe(2);
    const c = await plain(s);
    expect(await c.reply()).toBe("-ERR max number of clients reached");
    a.send("PING\r\n");
    expect(await a.reply()).toBe("PONG");
    expect(() => s.setMaxClients(0)).toThrow("maxclients must be a positive integer");
  });

  test("backpressure: a client that does not read its replies stops being read, and its buffers stay bounded", async () => {
    const replyBufferBytesMax = 256 * 1024;
    const table = new TestCommands();
    const s = await server({ commands: table, limits: { replyBufferBytesMax } });
    const replyBytes = 64 * 1024;
    const requests = 2000; // 128 MB of replies asked for: far more than socket buffers hold
    // Bun's own socket, paused from the start: it really leaves the replies in the kernel.
    let received = 0;
    let toSend = Buffer.from(`BIG ${replyBytes}\r\n`.repeat(requests));
    const sendMore = (sock: { write(b: Uint8Array): number }) => {
      const n = sock.write(toSend);
      toSend = toSend.subarray(Math.max(0, n));
    };
    const client = await Bun.connect({
      hostname: "127.0.0.1",
      port: s.port,
      socket: {
        open: (sock) => {
          sock.pause();
          sendMore(sock);
        },
        drain: (sock) => sendMore(sock),
        data: (_sock, d) => {
          received += d.length;
        },
      },
    });
    await waitFor("the server to pause reading", () => s.connections()[0]?.paused === true);
    // Let it settle: nothing more is dispatched while the client does not read.
    await Bun.sleep(200);
    const executed = table.executed;
    const view = s.connections()[0]!;
    expect(view.paused).toBe(true);
    expect(view.replyBytes).toBeLessThanOrEqual(replyBufferBytesMax + replyBytes + 64);
    expect(executed).toBeLessThan(requests / 2);
    await Bun.sleep(200);
    expect(table.executed).toBe(executed);
    // Reading again resumes it: every reply arrives, complete.
    client.resume();
    const total = requests * (`$${replyBytes}\r\n`.length + replyBytes + 2);
    await waitFor("every reply", () => received === total, 60_000);
    expect(table.executed).toBe(requests);
    await waitFor("the server to resume reading", () => s.connections()[0]?.paused === false);
    client.end();
  }, 120_000);

  test("backpressure: a paused client that goes away is let go (no connection left behind)", async () => {
    const table = new TestCommands();
    const s = await server({ commands: table, limits: { replyBufferBytesMax: 256 * 1024 } });
    let toSend = Buffer.from("BIG 65536\r\n".repeat(2000));
    const client = await Bun.connect({
      hostname: "127.0.0.1",
      port: s.port,
      socket: {
        open: (sock) => {
          sock.pause();
          toSend = toSend.subarray(Math.max(0, sock.write(toSend)));
        },
        data: () => undefined,
      },
    });
    await waitFor("the server to pause reading", () => s.connections()[0]?.paused === true);
    client.end();
    await waitFor("the server to let the connection go", () => s.sessions().length === 0);
  });

  test("backpressure: commands waiting for their replies beyond the pending bound stop the reading too", async () => {
    const table = new TestCommands();
    const s = await server({ commands: table, limits: { pendingCommandsMax: 8 } });
    const c = await plain(s);
    let pipeline = "";
    for (let i = 0; i < 20; i++) pipeline += `GATE g${i}\r\n`;
    c.send(pipeline);
    await waitFor("eight commands in flight", () => table.gateCount() === 8);
    await Bun.sleep(50);
    expect(table.executed).toBe(8);
    expect(s.connections()[0]!.paused).toBe(true);
    for (let i = 0; i < 20; i++) {
      await waitFor(`gate g${i}`, () => {
        try {
          table.open(`g${i}`);
          return true;
        } catch {
          return false;
        }
      });
      expect(await c.reply()).toBe(`g${i}`);
    }
  });
});

describe("closing", () => {
  test("a client gone while its command waits: the late reply is dropped, the server goes on", async () => {
    const table = new TestCommands();
    const s = await server({ commands: table });
    const c = await plain(s);
    c.send("GATE a\r\n");
    await waitFor("the gate", () => table.gateCount() === 1);
    c.close();
    await waitFor("the server to see the close", () => s.sessions().length === 0);
    table.open("a");
    const fresh = await plain(s);
    fresh.send("PING\r\n");
    expect(await fresh.reply()).toBe("PONG");
    expect(table.executed).toBe(2);
  });

  test("shutdown answers the commands in flight, then closes every connection", async () => {
    const table = new TestCommands();
    const s = await server({ commands: table });
    const busy = await plain(s);
    const idle = await plain(s);
    busy.send("GATE a\r\n");
    await waitFor("the gate", () => table.gateCount() === 1);
    const stopped = s.shutdown(5000);
    await idle.closedByServer();
    table.open("a");
    expect(await busy.reply()).toBe("a");
    await busy.closedByServer();
    await stopped;
  });
});

describe("TLS", () => {
  async function tlsServer(): Promise<RunningRespServer> {
    return server({ commands: new TestCommands(), security: { tls: nodeTls } });
  }

  async function as(s: RunningRespServer, sub: string, name: string): Promise<RawClient> {
    const c = await RawClient.tls(s.port, await loadTlsDir(join(dir, sub), name));
    clients.push(c);
    return c;
  }

  test("the certificate's role reaches the session: admin for an admin certificate, client for client and node ones", async () => {
    const s = await tlsServer();
    const roles: unknown[] = [];
    for (const name of ["ops", "app", "n1"]) {
      const c = await as(s, "certs", name);
      c.send("WHOAMI\r\n");
      roles.push(await c.reply());
    }
    expect(roles).toEqual(["admin", "client", "client"]);
  });

  test("a client without a certificate, or with one from another CA, is refused at the handshake", async () => {
    const s = await tlsServer();
    const noCert = { ...(await loadTlsDir(join(dir, "certs"), "app")), cert: Buffer.alloc(0), key: Buffer.alloc(0) };
    const outcomes: string[] = [];
    for (const m of [noCert, { ...(await loadTlsDir(join(dir, "other"), "app")), ca: nodeTls.ca }]) {
      try {
        const c = await RawClient.tls(s.port, m);
        clients.push(c);
        c.send("PING\r\n");
        await c.reply(5000);
        outcomes.push("served");
      } catch {
        outcomes.push("refused");
      }
    }
    expect(outcomes).toEqual(["refused", "refused"]);
    expect(s.sessions()).toEqual([]);
  });

  test("ioredis over TLS with a client certificate: a pipeline's replies come back in order", async () => {
    const s = await tlsServer();
    const m = await loadTlsDir(join(dir, "certs"), "app");
    // No ready check: it would send INFO, which the tests' table does not know.
    const io = new Redis({ host: "127.0.0.1", port: s.port, tls: { ca: m.ca, cert: m.cert, key: m.key, servername: "localhost" }, enableReadyCheck: false, maxRetriesPerRequest: 1, lazyConnect: true });
    try {
      await io.connect();
      expect(await io.ping()).toBe("PONG");
      const p = io.pipeline();
      for (let i = 0; i < 200; i++) p.echo(`e${i}`);
      const replies = await p.exec();
      expect(replies?.map(([err, v]) => (err === null ? v : String(err)))).toEqual(Array.from({ length: 200 }, (_, i) => `e${i}`));
    } finally {
      io.disconnect();
    }
  });

  test("TLS 1.2 is refused at the handshake, as on the gRPC ports", async () => {
    const s = await tlsServer();
    const m = await loadTlsDir(join(dir, "certs"), "app");
    const outcome = await new Promise<string>((resolve) => {
      const sock = tlsConnect({ host: "127.0.0.1", port: s.port, ca: m.ca, cert: m.cert, key: m.key, servername: "localhost", maxVersion: "TLSv1.2" }, () => {
        resolve("connected");
        sock.destroy();
      });
      sock.on("error", () => resolve("refused"));
    });
    expect(outcome).toBe("refused");
  });

  test("reloadTls: new connections need the new CA's certificates; an established one keeps going", async () => {
    const s = await tlsServer();
    const before = await as(s, "certs", "app");
    s.reloadTls(await loadTlsDir(join(dir, "other"), "n1"));
    const after = await RawClient.tls(s.port, await loadTlsDir(join(dir, "other"), "app"));
    clients.push(after);
    after.send("WHOAMI\r\n");
    expect(await after.reply()).toBe("client");
    before.send("PING\r\n");
    expect(await before.reply()).toBe("PONG");
    let oldCa = "served";
    try {
      const c = await as(s, "certs", "app");
      c.send("PING\r\n");
      await c.reply(5000);
    } catch {
      oldCa = "refused";
    }
    expect(oldCa).toBe("refused");
  });

  test("a client that never finishes its TLS handshake holds a maxclients slot until the handshake deadline drops it", async () => {
    const refused: string[] = [];
    const s = await server({
      commands: new TestCommands(), security: { tls: nodeTls }, maxClients: 1, limits: { handshakeTimeoutSeconds: 1 },
      metrics: { commandDone: () => undefined, connectionRefused: (r) => refused.push(r) },
    });
    const silent = await plain(s);
    // Over maxclients while the silent one holds the slot: told so once its own handshake is done.
    const second = await as(s, "certs", "app");
    expect(await second.reply()).toBe("-ERR max number of clients reached");
    await silent.closedByServer(5000);
    const third = await as(s, "certs", "app");
    third.send("WHOAMI\r\n");
    expect(await third.reply()).toBe("client");
    expect(refused).toEqual(["maxclients", "handshake"]);
  });

  test("the handshake deadline is for the handshake only: an established TLS connection may stay idle past it", async () => {
    const s = await server({ commands: new TestCommands(), security: { tls: nodeTls }, limits: { handshakeTimeoutSeconds: 1 } });
    const c = await as(s, "certs", "app");
    c.send("PING\r\n");
    expect(await c.reply()).toBe("PONG");
    await Bun.sleep(2500);
    c.send("PING\r\n");
    expect(await c.reply()).toBe("PONG");
  });

  test("plaintext on a TLS port gets nothing served", async () => {
    const s = await tlsServer();
    const c = await plain(s);
    c.send("PING\r\n");
    await c.closedByServer();
    expect(c.hasReply()).toBe(false);
  });
});
