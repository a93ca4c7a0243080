// Attacks on a running node (the built binary): bad certificates, a client on the peer port, a node
// claiming another's id, garbage and malformed HTTP/2 frames on both ports, oversized batches and
// invalid keys. Each is refused with the right status, the node keeps serving, state is unchanged.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import * as net from "node:net";
import * as tls from "node:tls";
import { initCerts, validityFromDays } from "../../src/transport/certs.ts";
import { ImdbClient, RpcError, type RequestOp } from "../../src/transport/client.ts";
import { PeerClient } from "../../src/transport/peer-client.ts";
import { loadTlsDir, type TlsMaterial } from "../../src/transport/tls.ts";
import { run, startNode, tempDir, waitFor, type NodeProc } from "../integration/harness.ts";
import { rpcStatus } from "../transport/rpc-status.ts";

setDefaultTimeout(30_000);

const dir = tempDir("attacks");
const certs = join(dir.path, "certs");
let node: NodeProc;
let good: ImdbClient;
let clientTls: TlsMaterial;
let node2Tls: TlsMaterial;
const opened: { close(): void }[] = [];

function client(server: string, material: TlsMaterial): ImdbClient {
  const c = new ImdbClient({ server, tls: material, deadlineMs: 5000 });
  opened.push(c);
  return c;
}


/** The known state every attack must leave alone. */
async function expectUnchanged(): Promise<void> {
  expect(node.proc.exitCode).toBeNull();
  const c = await good.get("known-counter");
  expect(c).toEqual({ type: "pncounter", value: 42n });
  const r = await good.get("known-register");
  expect(r.type === "lww" && new TextDecoder().decode(r.value)).toBe("intact");
  expect((await good.status()).keys).toBe(2);
}

function port(addr: string): number {
  return Number(addr.slice(addr.lastIndexOf(":") + 1));
}

/** A raw TLS connection (ALPN h2) with the given certificate; resolves with what it received once the server closed it. */
async function rawTls(addr: string, material: TlsMaterial, send: (s: tls.TLSSocket) => void, deadlineMs = 10_000): Promise<{ received: Buffer; closed: boolean; authorized: boolean }> {
  const sock = tls.connect({ host: "127.0.0.1", port: port(addr), ca: material.ca, cert: material.cert, key: material.key, ALPNProtocols: ["h2"], servername: "localhost", rejectUnauthorized: true });
  const chunks: Buffer[] = [];
  let closed = false;
  sock.on("data", (b: Buffer) => chunks.push(b));
  sock.on("error", () => undefined);
  sock.on("close", () => (closed = true));
  await new Promise<void>((resolve, reject) => {
    sock.once("secureConnect", () => resolve());
    sock.once("error", reject);
  });
  const authorized = sock.authorized;
  send(sock);
  await waitFor("the server to close the connection", () => closed, deadlineMs).catch(() => undefined);
  sock.destroy();
  return { received: Buffer.concat(chunks), closed, authorized };
}

/** A raw TCP connection that writes bytes (no TLS at all) and waits for the server to close it. */
async function rawTcp(addr: string, bytes: Buffer): Promise<boolean> {
  const sock = net.connect({ host: "127.0.0.1", port: port(addr) });
  let closed = false;
  sock.on("error", () => undefined);
  sock.on("close", () => (closed = true));
  await new Promise<void>((resolve) => sock.once("connect", () => resolve()));
  sock.write(bytes);
  await waitFor("the server to close the plaintext connection", () => closed, 10_000).catch(() => undefined);
  sock.destroy();
  return closed;
}

const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

function frameHeader(length: number, type: number, flags: number, stream: number): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(length, 0, 3);
  h.writeUInt8(type, 3);
  h.writeUInt8(flags, 4);
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return h;
}

/** Frame types found in a server's byte stream (stopping at the first incomplete frame). */
function frameTypes(buf: Buffer): number[] {
  const types: number[] = [];
  for (let off = 0; off + 9 <= buf.length; ) {
    const len = buf.readUIntBE(off, 3);
    types.push(buf.readUInt8(off + 3));
    off += 9 + len;
  }
  return types;
}

beforeAll(async () => {
  const made = await run(["certs", "init", "--dir", certs, "--nodes", "node-1,node-2,node-3", "--clients", "client", "--admins", "admin"]);
  expect(made.code).toBe(0);
  node = await startNode("node-1", ["--data-dir", join(dir.path, "data"), "--tls-dir", certs, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0"]);
  clientTls = await loadTlsDir(certs, "client");
  node2Tls = await loadTlsDir(certs, "node-2");
  good = client(node.clientAddr, clientTls);
  expect(await good.increment("known-counter", 42n)).toBe(42n);
  await good.set("known-register", new TextEncoder().encode("intact"));
});

afterAll(() => {
  for (const c of opened) c.close();
  node?.proc.kill("SIGKILL");
  dir.cleanup();
});

describe("certificates", () => {
  test("no client certificate: refused on both ports", async () => {
    const none: TlsMaterial = { ca: clientTls.ca, cert: Buffer.alloc(0), key: Buffer.alloc(0) };
    expect(await rpcStatus(client(node.clientAddr, none).get("known-counter"))).toBe("UNAVAILABLE");
    // The peer port's Health answers a node certificate (the control) and refuses a caller without one.
    expect(await client(node.peerAddr, node2Tls).health()).toBe("SERVING");
    expect(await rpcStatus(client(node.peerAddr, none).health())).toBe("UNAVAILABLE");
    await expectUnchanged();
  });

  test("a certificate from another CA: refused on both ports", async () => {
    const other = join(dir.path, "other-ca");
    await initCerts({ dir: other, nodes: ["node-2"], clients: ["client"], admins: [], hosts: [], days: 1, force: false });
    expect(await rpcStatus(client(node.clientAddr, { ...(await loadTlsDir(other, "client")), ca: clientTls.ca }).increment("known-counter", 1n))).toBe("UNAVAILABLE");
    const peer = new PeerClient({ selfId: "node-2", security: { tls: { ...(await loadTlsDir(other, "node-2")), ca: clientTls.ca } }, deadlineMs: 5000 });
    opened.push(peer);
    expect(await rpcStatus(peer.send(node.peerAddr, new Uint8Array([1])))).toBe("UNAVAILABLE");
    await expectUnchanged();
  });

  test("an expired certificate from the right CA: refused", async () => {
    const expired = join(dir.path, "expired");
    mkdirSync(expired, { recursive: true });
    copyFileSync(join(certs, "ca.crt"), join(expired, "ca.crt"));
    copyFileSync(join(certs, "ca.key"), join(expired, "ca.key"));
    await initCerts({ dir: expired, nodes: ["node-2"], clients: ["old"], admins: [], hosts: [], days: 1, force: false, validity: validityFromDays(new Date(Date.now() - 10 * 86_400_000), 1) });
    expect(await rpcStatus(client(node.clientAddr, await loadTlsDir(expired, "old")).increment("known-counter", 1n))).toBe("UNAVAILABLE");
    const peer = new PeerClient({ selfId: "node-2", security: { tls: await loadTlsDir(expired, "node-2") }, deadlineMs: 5000 });
    opened.push(peer);
    expect(await rpcStatus(peer.send(node.peerAddr, new Uint8Array([1])))).toBe("UNAVAILABLE");
    await expectUnchanged();
  });

  test("a client certificate on the peer port: PERMISSION_DENIED; a client may not call AdminService", async () => {
    const peer = new PeerClient({ selfId: "client", security: { tls: clientTls }, deadlineMs: 5000 });
    opened.push(peer);
    expect(await rpcStatus(peer.send(node.peerAddr, new Uint8Array([1])))).toBe("PERMISSION_DENIED");
    expect(await rpcStatus(good.snapshot())).toBe("PERMISSION_DENIED");
    await expectUnchanged();
  });

  test("node-2's certificate claiming to be node-3: PERMISSION_DENIED", async () => {
    const liar = new PeerClient({ selfId: "node-3", security: { tls: node2Tls }, deadlineMs: 5000 });
    opened.push(liar);
    expect(await rpcStatus(liar.send(node.peerAddr, new Uint8Array([1, 2, 3])))).toBe("PERMISSION_DENIED");
    await expectUnchanged();
  });
});

describe("malformed peer messages from an authentic node", () => {
  const garbage = new Uint8Array(Array.from({ length: 512 }, (_, i) => (i * 131) & 0xff));
  const truncated = new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f]);
  const peerCode = async (payload: Uint8Array): Promise<string> => {
    const peer = new PeerClient({ selfId: "node-2", security: { tls: node2Tls }, deadlineMs: 5000 });
    opened.push(peer);
    return rpcStatus(peer.send(node.peerAddr, payload));
  };

  test("garbage, truncated and empty payloads from node-2: the node keeps serving, nothing merged", async () => {
    for (const p of [garbage, truncated, new Uint8Array(0)]) await peerCode(p);
    expect(await good.health()).toBe("SERVING");
    await expectUnchanged();
  });

  // A payload that is not a cluster message is refused with INVALID_ARGUMENT (it used to be
  // answered OK, and an empty one was an INTERNAL TypeError).
  test("an undecodable peer message is refused with INVALID_ARGUMENT", async () => {
    expect(await peerCode(garbage)).toBe("INVALID_ARGUMENT");
    expect(await peerCode(truncated)).toBe("INVALID_ARGUMENT");
  });

  test("an empty peer message is INVALID_ARGUMENT, not INTERNAL", async () => {
    expect(await peerCode(new Uint8Array(0))).toBe("INVALID_ARGUMENT");
  });
});

describe("malformed traffic on both ports", () => {
  const ports = () => [
    { name: "client", addr: node.clientAddr, material: clientTls },
    { name: "peer", addr: node.peerAddr, material: node2Tls },
  ];

  test("plaintext garbage instead of a TLS handshake: connection closed", async () => {
    for (const p of ports()) expect(await rawTcp(p.addr, Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\xfe garbage"))).toBe(true);
    await expectUnchanged();
  });

  test("garbage after a valid mutual-TLS handshake: connection closed", async () => {
    for (const p of ports()) {
      const r = await rawTls(p.addr, p.material, (s) => s.write(Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff))));
      expect(r.authorized).toBe(true);
      expect(r.closed).toBe(true);
    }
    await expectUnchanged();
  });

  test("an HTTP/2 frame header claiming 16 MiB: GOAWAY and close", async () => {
    for (const p of ports()) {
      const r = await rawTls(p.addr, p.material, (s) => {
        s.write(Buffer.concat([preface, frameHeader(0, 0x4, 0, 0), frameHeader(0xffffff, 0x1, 0x4, 1), Buffer.alloc(1024, 0x41)]));
      });
      expect(r.closed).toBe(true);
      expect(frameTypes(r.received)).toContain(0x7);
    }
    await expectUnchanged();
  });

  test("truncated frames (a SETTINGS frame cut short, then EOF): the node shrugs it off", async () => {
    for (const p of ports()) {
      const r = await rawTls(p.addr, p.material, (s) => {
        s.write(Buffer.concat([preface, frameHeader(60, 0x4, 0, 0), Buffer.alloc(7, 0x01)]));
        s.end();
      });
      expect(r.closed).toBe(true);
    }
    await expectUnchanged();
  });

  test("a HEADERS frame with garbage HPACK: GOAWAY (compression error) and close", async () => {
    for (const p of ports()) {
      const junk = Buffer.alloc(64, 0xff);
      const r = await rawTls(p.addr, p.material, (s) => s.write(Buffer.concat([preface, frameHeader(0, 0x4, 0, 0), frameHeader(junk.length, 0x1, 0x4 | 0x1, 1), junk])));
      expect(r.closed).toBe(true);
      expect(frameTypes(r.received)).toContain(0x7);
    }
    await expectUnchanged();
  });
});

describe("requests over the limits", () => {
  test("a Batch of 1001 ops: RESOURCE_EXHAUSTED, none applied", async () => {
    const ops: RequestOp[] = Array.from({ length: 1001 }, () => ({ kind: "increment", key: "known-counter", amount: 1n }));
    expect(await rpcStatus(good.batch(ops))).toBe("RESOURCE_EXHAUSTED");
    // 1000 is the limit, not past it: accepted (and undone by the same amount so the state is as before).
    expect((await good.batch(ops.slice(0, 1000))).every((r) => r.ok)).toBe(true);
    expect(await good.decrement("known-counter", 1000n)).toBe(42n);
    await expectUnchanged();
  });

  test("a value over 1 MiB and a message over 4 MiB: RESOURCE_EXHAUSTED, nothing written", async () => {
    expect(await rpcStatus(good.set("known-register", new Uint8Array(1024 * 1024 + 1)))).toBe("RESOURCE_EXHAUSTED");
    expect(await rpcStatus(good.set("known-register", new Uint8Array(5 * 1024 * 1024)))).toBe("RESOURCE_EXHAUSTED");
    expect(await rpcStatus(good.set("k".repeat(1025), new Uint8Array([1])))).toBe("INVALID_ARGUMENT");
    await expectUnchanged();
  });

  test("invalid UTF-8 keys: INVALID_ARGUMENT on every path, nothing created", async () => {
    const bad = new Uint8Array([0x6b, 0xff, 0xfe, 0x80]);
    expect(await rpcStatus(good.increment(bad, 1n))).toBe("INVALID_ARGUMENT");
    expect(await rpcStatus(good.set(bad, new Uint8Array([1])))).toBe("INVALID_ARGUMENT");
    expect(await rpcStatus(good.get(new Uint8Array([0xc0, 0x80])))).toBe("INVALID_ARGUMENT");
    // A lone surrogate encoded as UTF-8 (CESU) is not valid UTF-8 either.
    expect(await rpcStatus(good.setMv(new Uint8Array([0xed, 0xa0, 0x80]), new Uint8Array([1]), null))).toBe("INVALID_ARGUMENT");
    const codes = await good.batch([{ kind: "increment", key: bad, amount: 1n }]).then(
      (items) => items.map((i) => (i.ok ? "OK" : i.code)),
      (err: unknown) => [err instanceof RpcError ? err.codeName : String(err)],
    );
    expect(codes).toEqual(["INVALID_ARGUMENT"]);
    await expectUnchanged();
  });

  test("the node is still healthy and its log names no crash", async () => {
    expect(await good.health()).toBe("SERVING");
    expect(node.log()).not.toMatch(/uncaught|panic|fatal|segmentation/i);
    await expectUnchanged();
  });
});
