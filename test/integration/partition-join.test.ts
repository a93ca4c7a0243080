// A node joins a partitioned cluster (issue 17), through the built binary: 3 mutual-TLS nodes with
// replicationFactor 2 hold 400 counters; a fourth joins. It is filled by anti-entropy with
// exactly the keys it now owns (about half of them: RF 2 of 4), serves them with every
// acknowledged increment, the former owners drop what it took over once it holds it, and nothing
// is lost - also when those keys come back to them (a leave, later) and are written again.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { Placement } from "../../src/cluster/placement.ts";
import { asNodeId } from "../../src/cluster/types.ts";
import { ImdbClient } from "../../src/transport/client.ts";
import { loadTlsDir } from "../../src/transport/tls.ts";
import { run, scanAll, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";

setDefaultTimeout(120_000);

const dir = tempDir("partition-join");
const certs = join(dir.path, "certs");
const ids = ["node-1", "node-2", "node-3", "node-4"];
const partitions = 256;
const replicationFactor = 2;
const nodes = new Map<string, NodeProc>();
const clients = new Map<string, ImdbClient>();
const keys = Array.from({ length: 400 }, (_, i) => `join:${i}`);
const three = new Placement(ids.slice(0, 3).map(asNodeId), { partitions, replicationFactor });
const four = new Placement(ids.map(asNodeId), { partitions, replicationFactor });
const ownersIn = (pl: Placement, key: string): string[] => pl.ownersOfKey(key);

function nodeArgs(id: string, seed: string | null, rf = replicationFactor): string[] {
  return [
    "--data-dir", join(dir.path, id), "--tls-dir", certs, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0",
    "--replication-factor", String(rf), "--partitions", String(partitions), "--metrics-addr", "127.0.0.1:0", ...(seed ? ["--seeds", seed] : []),
  ];
}

const keysOf = (id: string): Promise<string[]> => scanAll(clients.get(id)!, true);

async function connect(id: string): Promise<void> {
  clients.set(id, new ImdbClient({ server: nodes.get(id)!.clientAddr, tls: await loadTlsDir(certs, "client") }));
}

beforeAll(async () => {
  expect((await run(["certs", "init", "--dir", certs, "--nodes", [...ids, "node-x"].join(","), "--clients", "client", "--admins", "admin"])).code).toBe(0);
  const first = await startNode("node-1", nodeArgs("node-1", null));
  nodes.set("node-1", first);
  for (const id of ids.slice(1, 3)) nodes.set(id, await startNode(id, nodeArgs(id, first.peerAddr)));
  for (const id of ids.slice(0, 3)) await connect(id);
  for (const id of ids.slice(0, 3)) {
    await waitFor(`${id} to see 3 alive`, async () => (await clients.get(id)!.members()).filter((m) => m.status === "alive").length === 3);
  }
});

afterAll(() => {
  for (const c of clients.values()) c.close();
  for (const n of nodes.values()) n.proc.kill("SIGKILL");
  dir.cleanup();
});

describe("a node joins a partitioned cluster", () => {
  test("it is filled with exactly the keys it now owns and serves every acknowledged increment of them; nothing is lost", async () => {
    // Each key incremented i % 7 + 1 times over the three nodes (forwarded where needed).
    for (const [i, key] of keys.entries()) {
      for (let n = 0; n <= i % 7; n++) await clients.get(ids[n % 3]!)!.increment(key, 1n);
    }
    for (const id of ids.slice(0, 3)) {
      const mine = keys.filter((k) => ownersIn(three, k).includes(id));
      await waitFor(`${id} to hold its ${mine.length} keys`, async () => JSON.stringify(await keysOf(id)) === JSON.stringify(mine.sort()), 30_000, 200);
    }

    nodes.set("node-4", await startNode("node-4", nodeArgs("node-4", nodes.get("node-1")!.peerAddr)));
    await connect("node-4");
    for (const id of ids) {
      await waitFor(`${id} to see 4 alive`, async () => (await clients.get(id)!.members()).filter((m) => m.status === "alive").length === 4);
    }
    const owned = keys.filter((k) => ownersIn(four, k).includes("node-4")).sort();
    // RF 2 of 4: about half the keys, the placement's share (its bound: 1.05x the fair share).
    expect(owned.length).toBeGreaterThan(keys.length * 0.4);
    expect(owned.length).toBeLessThan(keys.length * 0.6);
    await waitFor(`node-4 to be filled with its ${owned.length} keys`, async () => JSON.stringify(await keysOf("node-4")) === JSON.stringify(owned), 60_000, 250);
    const c4 = clients.get("node-4")!;
    // The hand-off shows as bytes moving into node-4: members (the last minute) and the metrics.
    const moving = (await c4.members()).filter((m) => m.id !== "node-4").reduce((n, m) => n + (m.bytesMoving ?? 0), 0);
    expect(moving).toBeGreaterThan(0);
    const metrics = await (await fetch(`http://${nodes.get("node-4")!.metricsAddr}/metrics`)).text();
    const received = [...metrics.matchAll(/^imdb_peer_state_bytes_total\{peer="[^"]+",direction="received"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(received).toBeGreaterThan(0);
    // The former owners drop what node-4 took over, once node-4 acknowledged holding it
    // (Cluster.evictStrays): each keeps exactly its keys in the new placement, and having written
    // what it dropped (forwarded increments are applied by an owner, as its actor), each first
    // starts a new replica epoch, so that writing those keys again later claims nothing of them.
    for (const id of ids.slice(0, 3)) {
      const before = keys.filter((k) => ownersIn(three, k).includes(id));
      const mine = keys.filter((k) => ownersIn(four, k).includes(id)).sort();
      await waitFor(`${id} to keep only its ${mine.length} keys`, async () => JSON.stringify(await keysOf(id)) === JSON.stringify(mine), 60_000, 250);
      const text = await (await fetch(`http://${nodes.get(id)!.metricsAddr}/metrics`)).text();
      // At least what it lost; a key an owner that had not seen node-4 yet sent it again is dropped again.
      expect(Number(/^imdb_keys_evicted_total (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(before.length - mine.length);
      if (before.length > mine.length) expect(nodes.get(id)!.log()).toContain("dropped keys it wrote and no longer owns, and writes as a new actor");
    }
    for (const key of owned) {
      const v = await c4.get(key);
      expect(v.type === "pncounter" && v.value, key).toBe(BigInt((keys.indexOf(key) % 7) + 1));
    }
    // Every key still reads right through any node (routed to an owner in the new placement).
    for (const [i, key] of keys.entries()) {
      const v = await clients.get(ids[i % 4]!)!.get(key);
      expect(v.type === "pncounter" && v.value, key).toBe(BigInt((i % 7) + 1));
    }
  });

  test("a node started with another replication factor is not let in: both sides log why, and it takes no writes", async () => {
    const x = await startNode("node-x", nodeArgs("node-x", nodes.get("node-1")!.peerAddr, 3));
    nodes.set("node-x", x);
    await connect("node-x");
    const said = "places keys differently";
    await waitFor("node-x and node-1 to log the mismatch", async () => x.log().includes(said) && nodes.get("node-1")!.log().includes(said));
    expect(x.log()).toContain("replicationFactor 3");
    // The mismatch is found at the join's push-pull, before any merge: neither lists the other.
    expect((await clients.get("node-1")!.members()).map((m) => m.id)).not.toContain("node-x");
    expect((await clients.get("node-x")!.members()).map((m) => m.id)).toEqual(["node-x"]);
    const err = await clients.get("node-x")!.increment("join:0", 1n).catch((e: unknown) => e);
    expect(String(err)).toContain("has not joined");
  });

  test("a node that leaves hands its keys to their next owners first: writes only it had (another owner down) survive it", async () => {
    // node-3 takes writes of keys node-2 owns with it while node-2 is down, then leaves.
    const shared = keys.filter((k) => ownersIn(four, k).includes("node-3") && ownersIn(four, k).includes("node-2"));
    expect(shared.length).toBeGreaterThan(5);
    nodes.get("node-2")!.proc.kill("SIGKILL");
    await waitFor("node-3 to see node-2 down", async () => (await clients.get("node-3")!.members()).find((m) => m.id === "node-2")?.status !== "alive", 30_000, 200);
    const c3 = clients.get("node-3")!;
    for (const key of shared) expect(await c3.increment(key, 100n)).toBe(BigInt((keys.indexOf(key) % 7) + 1) + 100n);
    const left = await run(["admin", "--server", nodes.get("node-3")!.clientAddr, "--tls-dir", certs, "leave"]);
    expect(left.code).toBe(0);
    expect(await nodes.get("node-3")!.proc.exited).toBe(0);
    expect(nodes.get("node-3")!.log()).toContain("handed this node's keys to their next owners");
    clients.get("node-3")!.close();
    clients.delete("node-3");
    // node-2 comes back with what it had; every key reads its acknowledged value through any node.
    nodes.set("node-2", await startNode("node-2", nodeArgs("node-2", nodes.get("node-1")!.peerAddr)));
    clients.get("node-2")!.close();
    await connect("node-2");
    const expected = (key: string): bigint => BigInt((keys.indexOf(key) % 7) + 1) + (shared.includes(key) ? 100n : 0n);
    const remaining = ["node-1", "node-2", "node-4"];
    await waitFor("every key to read its acknowledged value through every node", async () => {
      for (const [i, key] of keys.entries()) {
        const v = await clients.get(remaining[i % 3]!)!.get(key).catch(() => null);
        if (v?.type !== "pncounter" || v.value !== expected(key)) return false;
      }
      return true;
    }, 60_000, 500);
  });

  test("a leave that would strand keys is refused and the node goes on taking writes", async () => {
    // node-4 leaving with node-2 and node-1 down would leave some of its keys no owner alive.
    for (const id of ["node-1", "node-2"]) nodes.get(id)!.proc.kill("SIGKILL");
    const c4 = clients.get("node-4")!;
    await waitFor("node-4 to see node-1 and node-2 down", async () => (await c4.members()).filter((m) => m.status === "alive").length === 1, 30_000, 200);
    const r = await run(["admin", "--server", nodes.get("node-4")!.clientAddr, "--tls-dir", certs, "leave"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("would have no owner alive once it leaves");
    const mine = keys.find((k) => ownersIn(new Placement(["node-1", "node-2", "node-4"].map(asNodeId), { partitions, replicationFactor }), k)[0] === "node-4")!;
    expect(await c4.increment(mine, 1n)).toBeGreaterThan(0n);
  });
});
