// The fault proxy against a real echo server on loopback: each fault is observable, switchable at
// runtime, and healing restores service. Waits are polls with deadlines; no fixed sleeps.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as net from "node:net";
import { FaultProxy } from "./proxy.ts";
import { processClassifier } from "./source.ts";

interface Echo { server: net.Server; addr: string; received: () => number; tag: string }

async function echoServer(tag: string): Promise<Echo> {
  let received = 0;
  // Echo server replies start with its tag on connect, so a test can tell which upstream answered.
  const server = net.createServer((s) => {
    s.on("error", () => s.destroy());
    s.write(tag);
    s.on("data", (b: Buffer) => {
      received += b.length;
      s.write(b);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address() as net.AddressInfo;
  return { server, addr: `127.0.0.1:${a.port}`, received: () => received, tag };
}

/** A client socket that collects what it receives and whether it closed. */
interface Peer { sock: net.Socket; data: () => string; closed: () => boolean }

async function dial(addr: string): Promise<Peer> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
  let data = "";
  let closed = false;
  const sock = net.connect({ host, port });
  sock.on("data", (b: Buffer) => (data += b.toString("latin1")));
  sock.on("error", () => undefined);
  sock.on("close", () => (closed = true));
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", () => resolve());
    sock.once("error", reject);
  });
  return { sock, data: () => data, closed: () => closed };
}

async function until(what: string, cond: () => boolean, deadlineMs = 5000): Promise<void> {
  const end = performance.now() + deadlineMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

let echo: Echo;
let echo2: Echo;
const proxies: FaultProxy[] = [];
const peers: Peer[] = [];

async function proxyTo(target: string, opts: Partial<Parameters<typeof FaultProxy.start>[0]> = {}): Promise<FaultProxy> {
  const p = await FaultProxy.start({ target, ...opts });
  proxies.push(p);
  return p;
}

async function open(p: FaultProxy): Promise<Peer> {
  const c = await dial(p.addr);
  peers.push(c);
  return c;
}

beforeAll(async () => {
  echo = await echoServer("A");
  echo2 = await echoServer("B");
});

afterAll(async () => {
  for (const c of peers) c.sock.destroy();
  for (const p of proxies) await p.close();
  echo.server.close();
  echo2.server.close();
});

describe("FaultProxy", () => {
  test("forwards both ways without faults", async () => {
    const p = await proxyTo(echo.addr);
    const c = await open(p);
    c.sock.write("hello");
    await until("echo", () => c.data() === "Ahello");
    expect(p.stats().bytesForwarded).toBe(11);
  });

  test("delay applies to each direction; jitter keeps the byte order", async () => {
    const p = await proxyTo(echo.addr);
    const c = await open(p);
    await until("banner", () => c.data() === "A");
    p.set({ delayMs: 80 });
    const t0 = performance.now();
    c.sock.write("x");
    await until("delayed echo", () => c.data() === "Ax");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(155);
    p.set({ delayMs: 0, jitterMs: 20 });
    let sent = "";
    for (let i = 0; i < 40; i++) {
      const s = `<${i}>`;
      sent += s;
      c.sock.write(s);
      await Bun.sleep(0);
    }
    await until("jittered echo", () => c.data().length === 1 + 1 + sent.length);
    expect(c.data()).toBe(`Ax${sent}`);
  });

  test("blackhole drops bytes while on; healing resets the torn connection and new ones work", async () => {
    const p = await proxyTo(echo.addr);
    const c = await open(p);
    await until("banner", () => c.data() === "A");
    const before = echo.received();
    p.set({ blackhole: true });
    c.sock.write("lost");
    await until("bytes dropped", () => p.stats().bytesDropped >= 4);
    expect(echo.received()).toBe(before);
    expect(c.closed()).toBe(false);
    // A connection opened during the blackhole hears nothing, not even the banner.
    const c2 = await open(p);
    await until("banner dropped", () => p.stats().bytesDropped >= 5);
    expect(c2.data()).toBe("");
    p.heal();
    await until("torn connections reset", () => c.closed() && c2.closed());
    const c3 = await open(p);
    c3.sock.write("ok");
    await until("echo after heal", () => c3.data() === "Aok");
  });

  test("reset destroys open connections; refuse resets new ones until healed", async () => {
    const p = await proxyTo(echo.addr);
    const c = await open(p);
    await until("banner", () => c.data() === "A");
    expect(p.reset()).toBe(1);
    await until("closed by reset", () => c.closed());
    p.set({ refuse: true });
    const c2 = await dial(p.addr).catch(() => null);
    if (c2 !== null) {
      peers.push(c2);
      await until("refused connection closed", () => c2.closed());
      expect(c2.data()).toBe("");
    }
    p.heal();
    const c3 = await open(p);
    await until("banner after heal", () => c3.data() === "A");
    expect(p.stats().resets).toBeGreaterThanOrEqual(2);
  });

  test("bandwidth limit paces bytes", async () => {
    const p = await proxyTo(echo.addr);
    const c = await open(p);
    await until("banner", () => c.data() === "A");
    p.set({ bandwidthBytesPerSec: 256 * 1024 });
    const payload = "z".repeat(64 * 1024);
    const t0 = performance.now();
    c.sock.write(payload);
    await until("all echoed", () => c.data().length === 1 + payload.length, 10_000);
    // 64 KiB at 256 KiB/s is at least 250 ms in each direction (the directions overlap).
    expect(performance.now() - t0).toBeGreaterThanOrEqual(240);
    // Lifting the limit: 256 KiB, which the old limit would hold back for at least a second.
    p.set({ bandwidthBytesPerSec: 0 });
    const t1 = performance.now();
    c.sock.write(payload.repeat(4));
    await until("all echoed unlimited", () => c.data().length === 1 + 5 * payload.length, 10_000);
    expect(performance.now() - t1).toBeLessThan(900);
  });

  test("faults per source: the dialling process is named through /proc", async () => {
    const p = await proxyTo(echo.addr, { classify: processClassifier(() => new Map([["self", process.pid]])) });
    p.set({ blackhole: true }, "someone-else");
    const c = await open(p);
    await until("banner through an unaffected link", () => c.data() === "A");
    expect(p.sources()).toEqual(["self"]);
    p.set({ blackhole: true }, "self");
    c.sock.write("q");
    await until("dropped on the self link", () => p.stats().bytesDropped >= 1);
    expect(c.data()).toBe("A");
  });

  test("setTarget sends new connections to the new upstream; open ones stay", async () => {
    const p = await proxyTo(echo.addr);
    const c = await open(p);
    await until("banner A", () => c.data() === "A");
    p.setTarget(echo2.addr);
    const c2 = await open(p);
    await until("banner B", () => c2.data() === "B");
    c.sock.write("still");
    await until("old connection still on A", () => c.data() === "Astill");
  });

  test("bad settings are refused and change nothing", async () => {
    const p = await proxyTo(echo.addr);
    expect(() => p.set({ delayMs: -1 })).toThrow(RangeError);
    expect(() => p.set({ jitterMs: Number.NaN })).toThrow(RangeError);
    const c = await open(p);
    await until("banner", () => c.data() === "A");
  });
});
