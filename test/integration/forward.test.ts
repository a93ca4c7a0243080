// Partitioned replication through the built binary (issue 17): a 3-node mutual-TLS cluster with
// replicationFactor 2. A node forwards exactly the ops on keys it does not own (counted in
// imdb_forwarded_ops_total) and answers with the owner's results, in order, errors included; a
// retried request id is applied once across the hop; a Redis client gets the same; each node
// stores exactly the keys it owns; and after one owner is SIGKILLed every key is still readable
// and writable through the node that does not own it, and once that owner is declared dead a
// Scan on either survivor lists every key once.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Redis from "ioredis";
import { Placement } from "../../src/cluster/placement.ts";
import { asNodeId } from "../../src/cluster/types.ts";
import { ImdbClient, newRequestId, RpcError } from "../../src/transport/client.ts";
import { loadTlsDir } from "../../src/transport/tls.ts";
import { run, scanAll, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";

setDefaultTimeout(120_000);

const dir = tempDir("forward");
const certs = join(dir.path, "certs");
const ids = ["node-1", "node-2", "node-3"];
const partitions = 64;
const replicationFactor = 2;
const nodes = new Map<string, NodeProc>();
const clients = new Map<string, ImdbClient>();
const enc = new TextEncoder();
const placement = new Placement(ids.map(asNodeId), { partitions, replicationFactor });
const ownedBy = (key: string): string[] => placement.ownersOfKey(key);
const keys = Array.from({ length: 60 }, (_, i) => `fwd:${i}`);
const notOwnedBy1 = keys.filter((k) => !ownedBy(k).includes("node-1"));
const ownedBy1 = keys.filter((k) => ownedBy(k).includes("node-1"));

function nodeArgs(id: string, seed: string | null): string[] {
  return [
    "--data-dir", join(dir.path, id), "--tls-dir", certs, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0",
    "--metrics-addr", "127.0.0.1:0", "--replication-factor", String(replicationFactor), "--partitions", String(partitions),
    ...(seed ? ["--seeds", seed] : ["--resp-addr", "127.0.0.1:0"]),
  ];
}

async function forwarded(id: string, result: "sent" | "failed" | "no_owner" | "retried"): Promise<number> {
  const text = await (await fetch(`http://${nodes.get(id)!.metricsAddr}/metrics`)).text();
  const m = new RegExp(`^imdb_forwarded_ops_total\\{result="${result}"\\} (\\d+)$`, "m").exec(text);
  return m === null ? 0 : Number(m[1]);
}

beforeAll(async () => {
  const made = await run(["certs", "init", "--dir", certs, "--nodes", ids.join(","), "--clients", "client"]);
  expect(made.code).toBe(0);
  const first = await startNode("node-1", nodeArgs("node-1", null));
  nodes.set("node-1", first);
  for (const id of ids.slice(1)) nodes.set(id, await startNode(id, nodeArgs(id, first.peerAddr)));
  const tls = await loadTlsDir(certs, "client");
  for (const id of ids) clients.set(id, new ImdbClient({ server: nodes.get(id)!.clientAddr, tls }));
  for (const id of ids) {
    await waitFor(`${id} to see 3 alive members`, async () => {
      const ms = await clients.get(id)!.members();
      return ms.length === 3 && ms.every((m) => m.status === "alive");
    });
  }
});

afterAll(() => {
  for (const c of clients.values()) c.close();
  for (const n of nodes.values()) n.proc.kill("SIGKILL");
  dir.cleanup();
});

describe("forwarding to owners (replicationFactor 2 of 3 nodes)", () => {
  test("the keys split as the placement says: node-1 owns about 2/3 of them", () => {
    expect(notOwnedBy1.length).toBeGreaterThan(5);
    expect(ownedBy1.length).toBeGreaterThan(notOwnedBy1.length);
  });

  test("members, the CLI and the metrics show the partitions each node owns", async () => {
    const loads = new Map(placement.members.map((m, i) => [m as string, placement.loads()[i]!]));
    for (const id of ids) {
      const ms = await clients.get(id)!.members();
      expect(new Map(ms.map((m) => [m.id, m.partitions]))).toEqual(loads);
      const text = await (await fetch(`http://${nodes.get(id)!.metricsAddr}/metrics`)).text();
      expect(text).toContain(`imdb_partitions_owned ${loads.get(id)}`);
    }
    // 3 nodes, RF 2, 64 partitions: 128 replicas, about 43 each.
    expect([...loads.values()].reduce((a, b) => a + b, 0)).toBe(partitions * replicationFactor);
    const cli = await run(["client", "--server", nodes.get("node-1")!.clientAddr, "--tls-dir", certs, "members"]);
    expect(cli.code).toBe(0);
    expect(cli.stdout.split("\n")[0]).toMatch(/^ID\s+ADDRESS\s+STATUS\s+INCARNATION\s+PARTITIONS\s+HINTS\s+MOVING$/);
    expect(cli.stdout).toMatch(new RegExp(`^node-2\\s+\\S+\\s+alive\\s+\\d+\\s+${loads.get("node-2")}\\s+\\d+\\s+\\d+$`, "m"));
  });

  test("a node forwards exactly the ops on keys it does not own, and answers with the owner's result", async () => {
    const c1 = clients.get("node-1")!;
    const before = await forwarded("node-1", "sent");
    for (const k of ownedBy1) expect(await c1.increment(k, 2n)).toBe(2n);
    expect(await forwarded("node-1", "sent")).toBe(before);
    for (const k of notOwnedBy1) expect(await c1.increment(k, 3n)).toBe(3n);
    expect(await forwarded("node-1", "sent")).toBe(before + notOwnedBy1.length);
    // The owner the write went to (the first of its owners, all alive) reads it at once.
    for (const k of notOwnedBy1) {
      const v = await clients.get(ownedBy(k)[0]!)!.get(k);
      expect(v.type === "pncounter" && v.value).toBe(3n);
    }
    expect(await forwarded("node-1", "failed")).toBe(0);
  });

  test("a batch over keys of every owner comes back in order, each op with its owner's answer or error", async () => {
    const c1 = clients.get("node-1")!;
    const remote = notOwnedBy1[0]!;
    const local = ownedBy1[0]!;
    await c1.set(`${remote}:reg`, enc.encode("text"));
    const items = await c1.batch([
      { kind: "increment", key: remote, amount: 1n },
      { kind: "get", key: local },
      { kind: "increment", key: `${remote}:reg`, amount: 1n },
      { kind: "get", key: `${remote}:reg` },
      { kind: "increment", key: local, amount: 5n },
    ]);
    expect(items.length).toBe(5);
    expect(items[0]).toEqual({ ok: true, result: { kind: "counter", value: 4n } });
    expect(items[1]!.ok && items[1]!.result.kind === "value" && items[1]!.result.value.type === "pncounter" && items[1]!.result.value.value).toBe(2n);
    // An increment of a register, refused by the owner that took the register (the same owner:
    // every op on a key goes to the first of its owners while all are alive).
    expect(items[2]!.ok).toBe(false);
    expect(!items[2]!.ok && items[2]!.code).toBe("FAILED_PRECONDITION");
    expect(items[3]!.ok && items[3]!.result.kind === "value" && items[3]!.result.value.type === "lww" && new TextDecoder().decode(items[3]!.result.value.value)).toBe("text");
    expect(items[4]).toEqual({ ok: true, result: { kind: "counter", value: 7n } });
  });

  test("a retried request id is applied once across the hop", async () => {
    const c1 = clients.get("node-1")!;
    const key = notOwnedBy1[1]!;
    const id = newRequestId();
    expect(await c1.increment(key, 10n, undefined, id)).toBe(13n);
    expect(await c1.increment(key, 10n, undefined, id)).toBe(13n);
    const v = await clients.get(ownedBy(key)[0]!)!.get(key);
    expect(v.type === "pncounter" && v.value).toBe(13n);
  });

  test("a Redis client on a node that does not own its keys gets the owners' answers, pipelined too", async () => {
    const port = Number(nodes.get("node-1")!.respAddr!.split(":").at(-1));
    const tls = { ca: readFileSync(join(certs, "ca.crt")), cert: readFileSync(join(certs, "client.crt")), key: readFileSync(join(certs, "client.key")), servername: "localhost" };
    const r = new Redis({ host: "127.0.0.1", port, tls, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await r.connect();
      const before = await forwarded("node-1", "sent");
      const remote = notOwnedBy1.slice(0, 4).map((k) => `${k}:resp`).filter((k) => !ownedBy(k).includes("node-1"));
      const mine = ownedBy1.slice(0, 4).map((k) => `${k}:resp`).filter((k) => ownedBy(k).includes("node-1"));
      expect(remote.length + mine.length).toBeGreaterThan(0);
      const p = r.pipeline();
      for (const k of [...remote, ...mine]) p.incrby(k, 5);
      for (const k of remote) p.set(`${k}:s`, "v");
      const out = await p.exec();
      expect(out!.slice(0, remote.length + mine.length).map(([e, v]) => [e, v])).toEqual([...remote, ...mine].map(() => [null, 5]));
      const setRemote = remote.filter((k) => !ownedBy(`${k}:s`).includes("node-1")).length;
      expect(await forwarded("node-1", "sent")).toBe(before + remote.length + setRemote);
      for (const k of remote) expect(await r.get(`${k}:s`)).toBe("v");
    } finally {
      r.disconnect();
    }
  });

  test("each node stores exactly the keys it owns (writes reach owners only: deltas and anti-entropy among owners)", async () => {
    const keysOf = (id: string): Promise<string[]> => scanAll(clients.get(id)!, true);
    const written = new Set<string>();
    for (const id of ids) for (const k of await keysOf(id)) written.add(k);
    expect(written.size).toBeGreaterThan(keys.length);
    for (const id of ids) {
      const expected = [...written].filter((k) => ownedBy(k).includes(id)).sort();
      await waitFor(`${id} to hold exactly its ${expected.length} keys`, async () => JSON.stringify(await keysOf(id)) === JSON.stringify(expected), 30_000, 200);
    }
    // About 2/3 of the keys each (RF 2 of 3): the spread of this placement.
    const held = await Promise.all(ids.map(async (id) => (await keysOf(id)).length));
    for (const n of held) expect(n).toBeLessThan(written.size);
    expect(held.reduce((a, b) => a + b, 0)).toBe(written.size * replicationFactor);
  });

  test("a Scan on any node lists the whole keyspace, each key once (gRPC, the CLI's keys, a Redis client's SCAN)", async () => {
    const union = new Set<string>();
    for (const id of ids) for (const k of await scanAll(clients.get(id)!, true)) union.add(k);
    const all = [...union].sort();
    for (const id of ids) {
      const listed = await scanAll(clients.get(id)!);
      expect(listed.length).toBe(all.length);
      expect(listed).toEqual(all);
    }
    // Small pages cross every member's share.
    const paged: string[] = [];
    let cursor = 0;
    do {
      const page = await clients.get("node-2")!.scan({ cursor, limit: 7 });
      expect(page.keys.length).toBeLessThanOrEqual(7);
      paged.push(...page.keys);
      cursor = page.cursor;
    } while (cursor !== 0);
    expect(paged.sort()).toEqual(all);
    const cli = await run(["client", "--server", nodes.get("node-3")!.clientAddr, "--tls-dir", certs, "keys"]);
    expect(cli.code).toBe(0);
    expect(cli.stdout.trim().split("\n").sort()).toEqual(all);
    const local = await run(["client", "--server", nodes.get("node-3")!.clientAddr, "--tls-dir", certs, "keys", "--local"]);
    expect(local.stdout.trim().split("\n").sort()).toEqual(await scanAll(clients.get("node-3")!, true));
    const port = Number(nodes.get("node-1")!.respAddr!.split(":").at(-1));
    const tls = { ca: readFileSync(join(certs, "ca.crt")), cert: readFileSync(join(certs, "client.crt")), key: readFileSync(join(certs, "client.key")), servername: "localhost" };
    const r = new Redis({ host: "127.0.0.1", port, tls, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await r.connect();
      const viaResp: string[] = [];
      let c = "0";
      do {
        const [next, keys] = await r.scan(c, "COUNT", 10);
        viaResp.push(...keys);
        c = next;
      } while (c !== "0");
      expect(viaResp.sort()).toEqual(all);
    } finally {
      r.disconnect();
    }
  });

  test("with one owner SIGKILLed, every key stays readable and writable through a node that does not own it, and listed by a Scan once it is dead", async () => {
    const victim = "node-2";
    const c1 = clients.get("node-1")!;
    const c3 = clients.get("node-3")!;
    const via = (k: string): ImdbClient => (ownedBy(k).includes("node-1") ? c3 : c1);
    const valueOf = async (k: string): Promise<bigint> => {
      const v = await via(k).get(k);
      return v.type === "pncounter" ? v.value : -1n;
    };
    const before = new Map<string, bigint>();
    for (const k of keys) before.set(k, await valueOf(k));
    // Read through a node that forwards to the victim first: those are the reads that must go
    // to the other owner at once.
    const viaVictim = keys.filter((k) => ownedBy(k)[0] === victim && !ownedBy(k).includes(ownedBy(k).includes("node-1") ? "node-3" : "node-1"));
    expect(viaVictim.length).toBeGreaterThan(0);
    const retriedBefore = (await forwarded("node-1", "retried")) + (await forwarded("node-3", "retried"));
    nodes.get(victim)!.proc.kill("SIGKILL");
    await nodes.get(victim)!.proc.exited;
    // At once, before anyone suspects the victim: a read whose call to it fails goes to the
    // key's other owner, so every key reads as before (no retry by the client).
    for (const k of keys) expect(`${k} ${await valueOf(k)}`).toBe(`${k} ${before.get(k)}`);
    expect((await forwarded("node-1", "retried")) + (await forwarded("node-3", "retried")) - retriedBefore).toBeGreaterThanOrEqual(viaVictim.length);
    // Until the victim is suspected, a forward to it may fail (UNAVAILABLE: the client retries);
    // then the other owner takes the key.
    await waitFor("every key writable through a non-owner", async () => {
      for (const k of keys) {
        try {
          await via(k).increment(k, 1n);
        } catch (err) {
          if (err instanceof RpcError) return false;
          throw err;
        }
      }
      return true;
    }, 60_000, 200);
    for (const k of keys) {
      const v = await via(k).get(k);
      expect(v.type === "pncounter" && v.value).toBeGreaterThan(0n);
    }
    expect(await forwarded("node-1", "no_owner")).toBe(0);
    // Once the victim is declared dead, a Scan on either survivor lists every key once: the
    // victim's share is listed by the other owner of each of its partitions.
    // Every key is on node-1 or node-3 (RF 2 of 3): their own tables together are the keyspace.
    const all = [...new Set([...(await scanAll(c1, true)), ...(await scanAll(c3, true))])].sort();
    for (const k of keys) expect(all).toContain(k);
    for (const [id, c] of [["node-1", c1], ["node-3", c3]] as const) {
      await waitFor(`${id} to see ${victim} dead`, async () => (await c.members()).find((m) => m.id === victim)?.status === "dead", 60_000, 200);
      expect(await scanAll(c)).toEqual(all);
    }
  });
});
