// The gRPC edge against an in-test node: every RPC, every validation status, mTLS refusals, admin and peer authorisation, sizes, drain.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { initCerts, issueCert, loadCa } from "../../src/transport/certs.ts";
import { ImdbClient, RpcError, type RequestOp } from "../../src/transport/client.ts";
import { PeerClient } from "../../src/transport/peer-client.ts";
import { startClientServer, startPeerServer, type RunningServer } from "../../src/transport/server.ts";
import { loadTlsDir, type TlsMaterial } from "../../src/transport/tls.ts";
import { batchOpsMax, setMemberBytesMax, setMembersWriteMax, valueBytesMax } from "../../src/transport/api.ts";
import * as grpc from "@grpc/grpc-js";
import { healthMethods } from "../../src/transport/proto.ts";
import { clientChannelTls } from "../../src/transport/tls.ts";
import { EchoPeer, FakeNode } from "./fake-node.ts";
import { rpcStatus } from "./rpc-status.ts";

let dir = "";
let node: FakeNode;
let echo: EchoPeer;
let clientSrv: RunningServer;
let peerSrv: RunningServer;
let clientAddr = "";
let peerAddr = "";
const open: { close(): void }[] = [];

async function material(sub: string, name: string): Promise<TlsMaterial> {
  return loadTlsDir(join(dir, sub), name);
}

async function client(sub = "main", name = "client", server = clientAddr): Promise<ImdbClient> {
  const c = new ImdbClient({ server, tls: await material(sub, name), deadlineMs: 5000 });
  open.push(c);
  return c;
}


beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "imdb-transport-"));
  const now = new Date();
  await initCerts({ dir: join(dir, "main"), nodes: ["a", "b"], clients: ["client"], admins: ["admin"], hosts: [], days: 2, force: false, now });
  await initCerts({ dir: join(dir, "other"), nodes: ["a"], clients: ["client"], admins: [], hosts: [], days: 2, force: false, now });
  // An expired client certificate signed by the right CA.
  const ca = await loadCa(await readFile(join(dir, "main", "ca.crt"), "utf8"), await readFile(join(dir, "main", "ca.key"), "utf8"));
  const expired = await issueCert(ca, "client", "old", { notBefore: new Date(now.getTime() - 10 * 86_400_000), notAfter: new Date(now.getTime() - 86_400_000) });
  await Bun.write(join(dir, "main", "old.crt"), expired.certPem);
  await Bun.write(join(dir, "main", "old.key"), expired.keyPem);

  node = new FakeNode();
  echo = new EchoPeer();
  const tls = await material("main", "a");
  clientSrv = await startClientServer({ addr: "127.0.0.1:0", security: { tls }, handler: node, admin: node });
  peerSrv = await startPeerServer({ addr: "127.0.0.1:0", security: { tls }, nodeId: "a", handler: echo });
  clientAddr = `127.0.0.1:${clientSrv.port}`;
  peerAddr = `127.0.0.1:${peerSrv.port}`;
});

afterAll(async () => {
  for (const c of open) c.close();
  await Promise.all([clientSrv?.shutdown(1000), peerSrv?.shutdown(1000)]);
  await rm(dir, { recursive: true, force: true });
});

describe("ClientService over mTLS", () => {
  test("increment, decrement and get carry exact int64 values both ways", async () => {
    const c = await client();
    expect(await c.increment("n", 5n)).toBe(5n);
    expect(await c.decrement("n", 2n ** 62n)).toBe(5n - 2n ** 62n);
    expect(await c.get("n")).toEqual({ type: "pncounter", value: 5n - 2n ** 62n });
    expect(await c.increment("big", 2n ** 63n - 1n, "gcounter")).toBe(2n ** 63n - 1n);
    expect(await c.get("big")).toEqual({ type: "gcounter", value: 2n ** 63n - 1n });
    expect(await c.increment("big-neg", 1n)).toBe(1n);
    expect(await c.decrement("big-neg", 2n ** 63n - 1n)).toBe(2n - 2n ** 63n);
  });

  test("handler errors become their gRPC status", async () => {
    const c = await client();
    expect(await rpcStatus(c.get("missing"))).toBe("NOT_FOUND");
    await c.increment("g", 1n, "gcounter");
    expect(await rpcStatus(c.decrement("g", 1n))).toBe("FAILED_PRECONDITION");
    expect(await rpcStatus(c.increment("g", 2n ** 63n - 1n, "gcounter"))).toBe("OUT_OF_RANGE");
    expect(await c.get("g")).toEqual({ type: "gcounter", value: 1n });
  });

  test("set and get LWW bytes; MV siblings and context", async () => {
    const c = await client();
    await c.set("s", new TextEncoder().encode("héllo"));
    const got = await c.get("s");
    expect(got.type).toBe("lww");
    if (got.type === "lww") expect(new TextDecoder().decode(got.value)).toBe("héllo");
    const ctx1 = await c.setMv("m", new Uint8Array([1]), null);
    await c.setMv("m", new Uint8Array([2]), null);
    const mv = await c.get("m");
    expect(mv.type).toBe("mv");
    if (mv.type !== "mv") return;
    expect(mv.values.map((v) => [...v])).toEqual([[1], [2]]);
    expect([...ctx1]).toEqual([1]);
    await c.setMv("m", new Uint8Array([3]), mv.context);
    const mv2 = await c.get("m");
    if (mv2.type === "mv") expect(mv2.values.map((v) => [...v])).toEqual([[3]]);
  });

  test("batch returns results in order with per-op errors", async () => {
    const c = await client();
    const res = await c.batch([
      { kind: "increment", key: "b1", amount: 3n },
      { kind: "get", key: "b1" },
      { kind: "get", key: "b-missing" },
      { kind: "set", key: "b2", value: new Uint8Array([9]) },
      { kind: "decrement", key: "b1", amount: 1n },
    ]);
    expect(res).toEqual([
      { ok: true, result: { kind: "counter", value: 3n } },
      { ok: true, result: { kind: "value", value: { type: "pncounter", value: 3n } } },
      { ok: false, code: "NOT_FOUND", message: "key not found" },
      { ok: true, result: { kind: "written", context: null } },
      { ok: true, result: { kind: "counter", value: 2n } },
    ]);
    expect(await c.batch([])).toEqual([]);
  });

  test("status, members and health", async () => {
    const c = await client();
    const s = await c.status();
    expect(s.nodeId).toBe("a");
    expect(s.walLsn).toBe(2n ** 40n);
    expect(s.membersTotal).toBe(3);
    expect(await c.members()).toEqual(node.members());
    expect(await c.health()).toBe("SERVING");
    expect(await c.health("imdb.v1.ClientService")).toBe("SERVING");
    expect(await rpcStatus(c.health("no.such.Service"))).toBe("NOT_FOUND");
  });
});

describe("validation at the edge", () => {
  const cases: [string, RequestOp, string][] = [
    ["empty key", { kind: "get", key: "" }, "INVALID_ARGUMENT"],
    ["1025-byte key", { kind: "increment", key: "k".repeat(1025), amount: 1n }, "INVALID_ARGUMENT"],
    ["1024-byte key is fine", { kind: "increment", key: "é".repeat(512), amount: 1n }, "OK"],
    ["invalid UTF-8 key", { kind: "set", key: new Uint8Array([0x66, 0xff, 0xfe]), value: new Uint8Array(1) }, "INVALID_ARGUMENT"],
    ["lone surrogate bytes", { kind: "get", key: new Uint8Array([0xed, 0xa0, 0x80]) }, "INVALID_ARGUMENT"],
    ["N = 0", { kind: "increment", key: "v", amount: 0n }, "INVALID_ARGUMENT"],
    ["N < 0", { kind: "decrement", key: "v", amount: -5n }, "INVALID_ARGUMENT"],
    ["value of 1 MiB + 1", { kind: "set", key: "v", value: new Uint8Array(valueBytesMax + 1) }, "RESOURCE_EXHAUSTED"],
    ["value of exactly 1 MiB", { kind: "set", key: "v1m", value: new Uint8Array(valueBytesMax) }, "OK"],
    ["delete with an empty key", { kind: "delete", key: "" }, "INVALID_ARGUMENT"],
    ["delete with invalid UTF-8", { kind: "delete", key: new Uint8Array([0xff]) }, "INVALID_ARGUMENT"],
    ["delete of a missing key", { kind: "delete", key: "never-written" }, "OK"],
    ["SAdd of no members", { kind: "sadd", key: "s", members: [] }, "INVALID_ARGUMENT"],
    ["SAdd of an empty member", { kind: "sadd", key: "s", members: [Uint8Array.of(1), new Uint8Array(0)] }, "INVALID_ARGUMENT"],
    ["SAdd of a member past the limit", { kind: "sadd", key: "s", members: [new Uint8Array(setMemberBytesMax + 1)] }, "RESOURCE_EXHAUSTED"],
    ["SAdd of a member at the limit", { kind: "sadd", key: "set-at-limit", members: [new Uint8Array(setMemberBytesMax)] }, "OK"],
    ["SAdd of too many members", { kind: "sadd", key: "s", members: Array.from({ length: setMembersWriteMax + 1 }, () => Uint8Array.of(1)) }, "RESOURCE_EXHAUSTED"],
    ["SRem of no members", { kind: "srem", key: "s", members: [] }, "INVALID_ARGUMENT"],
    ["SIsMember of an empty member", { kind: "sismember", key: "s", member: new Uint8Array(0) }, "INVALID_ARGUMENT"],
    ["SCard with an empty key", { kind: "scard", key: "" }, "INVALID_ARGUMENT"],
    ["SMembers of a missing key", { kind: "smembers", key: "no-such-set" }, "OK"],
  ];
  for (const [name, op, want] of cases) {
    test(`${name} -> ${want}, state unchanged on error`, async () => {
      const c = await client();
      const before = node.applied;
      const single =
        op.kind === "increment" ? c.increment(op.key, op.amount)
        : op.kind === "decrement" ? c.decrement(op.key, op.amount)
        : op.kind === "get" ? c.get(op.key)
        : op.kind === "set" ? c.set(op.key, op.value)
        : op.kind === "setMv" ? c.setMv(op.key, op.value, op.context)
        : op.kind === "delete" ? c.delete(op.key)
        : op.kind === "sadd" ? c.sadd(op.key, op.members)
        : op.kind === "srem" ? c.srem(op.key, op.members)
        : op.kind === "smembers" ? c.smembers(op.key)
        : op.kind === "sismember" ? c.sismember(op.key, op.member)
        : op.kind === "scard" ? c.scard(op.key)
        : Promise.reject(new Error(`no unary call for ${op.kind} here`));
      expect(await rpcStatus(single)).toBe(want);
      if (want !== "OK") expect(node.applied).toBe(before);
    });
  }

  test("one bad op refuses the whole batch and applies nothing", async () => {
    const c = await client();
    const before = node.applied;
    const batches = node.batches;
    const err = await c.batch([{ kind: "increment", key: "ok", amount: 1n }, { kind: "increment", key: "", amount: 1n }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).codeName).toBe("INVALID_ARGUMENT");
    expect((err as RpcError).details).toContain("op 1:");
    expect(node.applied).toBe(before);
    expect(node.batches).toBe(batches);
  });

  test(`a batch of ${batchOpsMax + 1} ops is RESOURCE_EXHAUSTED; ${batchOpsMax} is fine`, async () => {
    const c = await client();
    const ops = (n: number): RequestOp[] => Array.from({ length: n }, (_, i) => ({ kind: "increment", key: `many-${i % 7}`, amount: 1n }));
    expect(await rpcStatus(c.batch(ops(batchOpsMax + 1)))).toBe("RESOURCE_EXHAUSTED");
    expect((await c.batch(ops(batchOpsMax))).length).toBe(batchOpsMax);
  });

  test("a 3.9 MiB batch succeeds, a 5 MiB one is RESOURCE_EXHAUSTED", async () => {
    const c = await client();
    const sets = (n: number, size: number): RequestOp[] => Array.from({ length: n }, (_, i) => ({ kind: "set", key: `big-${i}`, value: new Uint8Array(size) }));
    const ok = await c.batch(sets(39, 100 * 1024 + 200)); // ~3.9 MiB
    expect(ok.every((r) => r.ok)).toBe(true);
    const before = node.applied;
    expect(await rpcStatus(c.batch(sets(50, 100 * 1024 + 200)))).toBe("RESOURCE_EXHAUSTED"); // ~5 MiB
    expect(node.applied).toBe(before);
    expect(await c.increment("after-big", 1n)).toBe(1n);
  });
});

describe("mutual TLS", () => {
  test("no client certificate, another CA, an expired certificate: refused, and the server keeps serving", async () => {
    const main = await material("main", "client");
    const noCert = new ImdbClient({ server: clientAddr, tls: { ...main, cert: Buffer.alloc(0), key: Buffer.alloc(0) }, deadlineMs: 3000 });
    open.push(noCert);
    expect(await rpcStatus(noCert.status())).toBe("UNAVAILABLE");
    const other = await material("other", "client");
    const otherCa = new ImdbClient({ server: clientAddr, tls: { ...other, ca: main.ca }, deadlineMs: 3000 });
    open.push(otherCa);
    expect(await rpcStatus(otherCa.status())).toBe("UNAVAILABLE");
    const expired = await client("main", "old");
    expect(await rpcStatus(expired.status())).toBe("UNAVAILABLE");
    expect((await (await client()).status()).nodeId).toBe("a");
  });

  test("the client refuses a server certificate from another CA", async () => {
    const other = await material("other", "client");
    const c = new ImdbClient({ server: clientAddr, tls: other, deadlineMs: 3000 });
    open.push(c);
    expect(await rpcStatus(c.status())).toBe("UNAVAILABLE");
  });

  test("TLS 1.3 is negotiated and TLS 1.2 is refused at the handshake", async () => {
    const m = await material("main", "client");
    const handshake = (maxVersion: "TLSv1.2" | "TLSv1.3") =>
      new Promise<string>((resolve) => {
        const s = connect({ host: "127.0.0.1", port: clientSrv.port, ca: m.ca, cert: m.cert, key: m.key, maxVersion, servername: "localhost", ALPNProtocols: ["h2"] }, () => {
          resolve(`connected ${s.getProtocol()}`);
          s.destroy();
        });
        s.on("error", (e) => resolve(`error ${e.message}`));
      });
    expect(await handshake("TLSv1.3")).toBe("connected TLSv1.3");
    expect(await handshake("TLSv1.2")).toStartWith("error");
  });

  test("node, client and admin certificates may use ClientService; only admin may use AdminService", async () => {
    for (const name of ["a", "client", "admin"]) expect((await (await client("main", name)).status()).nodeId).toBe("a");
    const plain = await client("main", "client");
    expect(await rpcStatus(plain.snapshot())).toBe("PERMISSION_DENIED");
    expect(await rpcStatus(plain.stats())).toBe("PERMISSION_DENIED");
    expect(await rpcStatus(plain.leave())).toBe("PERMISSION_DENIED");
    expect(await rpcStatus((await client("main", "a")).snapshot())).toBe("PERMISSION_DENIED");
    const admin = await client("main", "admin");
    expect(await admin.snapshot()).toEqual({ path: "/data/snap-1", lsn: 42n, bytes: 4096, keys: node.store.size, durationMs: 7 });
    expect(await admin.stats()).toEqual([{ name: "keys", value: String(node.store.size) }]);
    expect(await admin.leave()).toEqual({ heardBy: "fake-peer", peers: 2 });
  });

  test("reloaded credentials apply to new connections", async () => {
    const srv = await startClientServer({ addr: "127.0.0.1:0", security: { tls: await material("main", "a") }, handler: node });
    try {
      const addr = `127.0.0.1:${srv.port}`;
      expect(await rpcStatus((await client("other", "client", addr)).status())).toBe("UNAVAILABLE");
      srv.reloadTls(await material("other", "a"));
      expect((await (await client("other", "client", addr)).status()).nodeId).toBe("a");
      expect(await rpcStatus((await client("main", "client", addr)).status())).toBe("UNAVAILABLE");
    } finally {
      await srv.shutdown(1000);
    }
  });
});

describe("NodeService on the peer port", () => {
  test("a node certificate whose id matches from_id is served; the reply is checked against the server's id", async () => {
    const pc = new PeerClient({ selfId: "b", security: { tls: await material("main", "b") } });
    open.push(pc);
    const reply = await pc.send(peerAddr, new Uint8Array([1, 2, 3]), { expectedId: "a" });
    expect(reply.fromId).toBe("a");
    expect([...reply.payload]).toEqual([3, 2, 1]);
    expect((await pc.send(peerAddr, new Uint8Array([7]))).fromId).toBe("a");
    expect(echo.seen).toContain("b");
  });

  test("a node certificate claiming another from_id is PERMISSION_DENIED", async () => {
    const pc = new PeerClient({ selfId: "c", security: { tls: await material("main", "b") } });
    open.push(pc);
    const seen = echo.seen.length;
    expect(await rpcStatus(pc.send(peerAddr, new Uint8Array([1])))).toBe("PERMISSION_DENIED");
    expect(echo.seen.length).toBe(seen);
  });

  test("client and admin certificates are refused on the peer port", async () => {
    for (const name of ["client", "admin"]) {
      const pc = new PeerClient({ selfId: name, security: { tls: await material("main", name) } });
      open.push(pc);
      expect(await rpcStatus(pc.send(peerAddr, new Uint8Array([1])))).toBe("PERMISSION_DENIED");
    }
  });

  test("the peer client reconnects to a restarted peer at the same address", async () => {
    const tls = await material("main", "a");
    let srv = await startPeerServer({ addr: "127.0.0.1:0", security: { tls }, nodeId: "a", handler: echo });
    const addr = `127.0.0.1:${srv.port}`;
    const pc = new PeerClient({ selfId: "b", security: { tls: await material("main", "b") }, deadlineMs: 1000 });
    open.push(pc);
    try {
      expect((await pc.send(addr, new Uint8Array([1]), { expectedId: "a" })).fromId).toBe("a");
      await srv.shutdown(1000);
      expect(await rpcStatus(pc.send(addr, new Uint8Array([1]), { expectedId: "a" }))).toBe("UNAVAILABLE");
      srv = await startPeerServer({ addr, security: { tls }, nodeId: "a", handler: echo });
      const deadline = Date.now() + 10_000;
      let last = "";
      while (Date.now() < deadline && last !== "OK") {
        last = await rpcStatus(pc.send(addr, new Uint8Array([1]), { expectedId: "a" }));
        if (last !== "OK") await Bun.sleep(50);
      }
      expect(last).toBe("OK");
    } finally {
      await srv.shutdown(1000);
    }
  });

  test("Forward: a node's request reaches the handler decoded as a Batch, with its request id, and the outcomes come back per op", async () => {
    const pc = new PeerClient({ selfId: "b", security: { tls: await material("main", "b") } });
    open.push(pc);
    const ops = [
      { kind: "increment" as const, key: "k1", amount: 3n, counter: null },
      { kind: "set" as const, key: "k2", value: new Uint8Array([1, 2]), ttlMs: 5000 },
      { kind: "expire" as const, key: "k3", ttlMs: null, atMs: 1_900_000_000_000, cond: "nx" as const },
    ];
    const id = new Uint8Array([9, 9, 9]);
    const before = echo.forwarded.length;
    const out = await pc.forward(peerAddr, "a", ops, id, 2000);
    expect(out).toEqual(ops.map((op) => ({ ok: false, error: { code: "NOT_FOUND", message: `${op.kind} ${op.key} reached the peer` } })));
    const got = echo.forwarded[before]!;
    expect(got.fromId).toBe("b");
    expect(got.ops).toEqual(ops);
    expect([...got.requestId!]).toEqual([9, 9, 9]);
  });

  test("Forward: client and admin certificates and a from_id that is not the certificate's are PERMISSION_DENIED; nothing reaches the handler", async () => {
    const before = echo.forwarded.length;
    for (const [self, cert] of [["client", "client"], ["admin", "admin"], ["c", "b"]] as const) {
      const pc = new PeerClient({ selfId: self, security: { tls: await material("main", cert) } });
      open.push(pc);
      expect(await rpcStatus(pc.forward(peerAddr, "a", [{ kind: "get", key: "k" }], null, 2000))).toBe("PERMISSION_DENIED");
    }
    expect(echo.forwarded.length).toBe(before);
  });

  test("ScanPart: a node's page request reaches the handler with its query and partition bitmap; client certificates are refused", async () => {
    const pc = new PeerClient({ selfId: "b", security: { tls: await material("main", "b") } });
    open.push(pc);
    const cursor = 2 ** 34 + 12345;
    const bits = new Uint8Array([5, 0, 128]);
    const page = await pc.scanPart(peerAddr, "a", { prefix: "user:", type: "set", cursor, limit: 50 }, 7, 19, bits, 2000);
    expect(page).toEqual({ keys: ["user:|set|50|5,0,128"], cursor: cursor + 1 });
    expect(echo.scanned.at(-1)).toEqual({ fromId: "b", q: { prefix: "user:", type: "set", cursor, limit: 50, local: false }, partitions: bits });
    const before = echo.scanned.length;
    const bad = new PeerClient({ selfId: "client", security: { tls: await material("main", "client") } });
    open.push(bad);
    expect(await rpcStatus(bad.scanPart(peerAddr, "a", { prefix: "", type: null, cursor: 0, limit: 10 }, 0, 0, bits, 2000))).toBe("PERMISSION_DENIED");
    expect(echo.scanned.length).toBe(before);
  });

  test("HandOff: entries and stamp reach the handler as sent; a piece outside its state, a bad key and client certificates are refused, nothing reaching it", async () => {
    const pc = new PeerClient({ selfId: "b", security: { tls: await material("main", "b") } });
    open.push(pc);
    const entries = [
      { key: "k1", state: new Uint8Array([1, 2, 3]), offset: 0, total: 0 },
      { key: "big", state: new Uint8Array([9, 9]), offset: 4, total: 10 },
    ];
    expect(await pc.handOff(peerAddr, "a", entries, { epoch: 77, confirms: 2 ** 40 }, 2000)).toBe(1);
    expect(echo.handedOff.at(-1)).toEqual({ fromId: "b", entries, stamp: { epoch: 77, confirms: 2 ** 40 } });
    const before = echo.handedOff.length;
    expect(await rpcStatus(pc.handOff(peerAddr, "a", [{ key: "x", state: new Uint8Array(5), offset: 8, total: 10 }], { epoch: 0, confirms: 0 }, 2000))).toBe("INVALID_ARGUMENT");
    expect(await rpcStatus(pc.handOff(peerAddr, "a", [{ key: "", state: new Uint8Array(1), offset: 0, total: 0 }], { epoch: 0, confirms: 0 }, 2000))).toBe("INVALID_ARGUMENT");
    expect(await rpcStatus(pc.handOff(peerAddr, "a", [{ key: "x", state: new Uint8Array(0), offset: 0, total: 0 }], { epoch: 0, confirms: 0 }, 2000))).toBe("INVALID_ARGUMENT");
    const bad = new PeerClient({ selfId: "client", security: { tls: await material("main", "client") } });
    open.push(bad);
    expect(await rpcStatus(bad.handOff(peerAddr, "a", entries, { epoch: 0, confirms: 0 }, 2000))).toBe("PERMISSION_DENIED");
    expect(echo.handedOff.length).toBe(before);
  });

  test("a peer whose certificate is not the expected node is refused by the dialler", async () => {
    const pc = new PeerClient({ selfId: "b", security: { tls: await material("main", "b") } });
    open.push(pc);
    expect(await rpcStatus(pc.send(peerAddr, new Uint8Array([1]), { expectedId: "zzz" }))).toBe("UNAVAILABLE");
    expect(await rpcStatus(pc.send("127.0.0.1:1", new Uint8Array([1]), { expectedId: "a" }))).toBe("UNAVAILABLE");
  });
});

describe("lifecycle", () => {
  test("shutdown drains an in-flight call, then refuses new ones", async () => {
    const slow = new FakeNode();
    let release = (): void => {};
    slow.gate = new Promise<void>((r) => {
      release = r;
    });
    const srv = await startClientServer({ addr: "127.0.0.1:0", security: { tls: await material("main", "a") }, handler: slow });
    const c = await client("main", "client", `127.0.0.1:${srv.port}`);
    const inflight = c.increment("x", 1n);
    // Poll with a deadline until the call reached the handler's gate, then stop the server.
    const deadline = Date.now() + 5000;
    while (slow.entered === 0 && Date.now() < deadline) await Bun.sleep(5);
    expect(slow.entered).toBe(1);
    const stopping = srv.shutdown(5000);
    release();
    expect(await inflight).toBe(1n);
    await stopping;
    expect(await rpcStatus((await client("main", "client", `127.0.0.1:${srv.port}`)).status())).toBe("UNAVAILABLE");
  });

  test("Health.Watch streams SERVING, then NOT_SERVING when the server starts draining", async () => {
    const srv = await startClientServer({ addr: "127.0.0.1:0", security: { tls: await material("main", "a") }, handler: new FakeNode() });
    const t = clientChannelTls(await material("main", "client"), "127.0.0.1");
    const ch = new grpc.Client(`127.0.0.1:${srv.port}`, t.credentials, t.options);
    const m = healthMethods.Watch;
    const seen: number[] = [];
    const stream = ch.makeServerStreamRequest(m.path, (v) => m.req.encode(v), (b) => m.res.decode(b), { service: "" });
    const ended = new Promise<void>((resolve) => {
      stream.on("data", (r: { status?: number }) => seen.push(r.status ?? 0));
      stream.on("end", () => resolve());
      stream.on("error", () => resolve());
    });
    const deadline = Date.now() + 5000;
    while (seen.length === 0 && Date.now() < deadline) await Bun.sleep(5);
    srv.setServing(false);
    while (seen.length < 2 && Date.now() < deadline) await Bun.sleep(5);
    await srv.shutdown(1000);
    await ended;
    ch.close();
    expect(seen.slice(0, 2)).toEqual([1, 2]);
  });

  test("insecure servers work without certificates", async () => {
    const srv = await startClientServer({ addr: "127.0.0.1:0", security: { insecure: true }, handler: new FakeNode() });
    try {
      const c = new ImdbClient({ server: `127.0.0.1:${srv.port}`, tls: null });
      open.push(c);
      expect(await c.increment("i", 2n)).toBe(2n);
    } finally {
      await srv.shutdown(1000);
    }
  });
});
