// Issue 17's real-process scenario, through the built binary: 5 mutual-TLS nodes with
// replicationFactor 3. Each node holds about 3/5 of the keys (the spread is printed); with one
// SIGKILLed every key stays readable (at once) and writable (once it is suspected) through every
// other node; a sixth joins and
// receives about 1/6 of the data (1/2 of the keys: 3 copies over 6 nodes) and serves it; once the
// dead node is removed, every node holds exactly the keys it owns (the former owners dropped what
// moved: Cluster.evictStrays) and every key reads every acknowledged increment.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { Placement } from "../../src/cluster/placement.ts";
import { asNodeId } from "../../src/cluster/types.ts";
import { ImdbClient } from "../../src/transport/client.ts";
import { loadTlsDir } from "../../src/transport/tls.ts";
import { run, scanAll, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";

setDefaultTimeout(120_000);

const dir = tempDir("partition-five");
const certs = join(dir.path, "certs");
const ids = ["node-1", "node-2", "node-3", "node-4", "node-5", "node-6"];
const partitions = 1024;
const replicationFactor = 3;
const nodes = new Map<string, NodeProc>();
const clients = new Map<string, ImdbClient>();
const keys = Array.from({ length: 1500 }, (_, i) => `five:${i}`);
const acked = new Map<string, bigint>(keys.map((k, i) => [k, BigInt((i % 5) + 1)]));
const placementOf = (members: string[]): Placement => new Placement(members.map(asNodeId), { partitions, replicationFactor });

function nodeArgs(id: string, seed: string | null): string[] {
  return [
    "--data-dir", join(dir.path, id), "--tls-dir", certs, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0",
    "--replication-factor", String(replicationFactor), "--partitions", String(partitions), "--metrics-addr", "127.0.0.1:0", ...(seed ? ["--seeds", seed] : []),
  ];
}

async function start(id: string, seed: string | null): Promise<void> {
  nodes.set(id, await startNode(id, nodeArgs(id, seed)));
  clients.set(id, new ImdbClient({ server: nodes.get(id)!.clientAddr, tls: await loadTlsDir(certs, "client") }));
}

const held = (id: string): Promise<string[]> => scanAll(clients.get(id)!, true);

/** Every key read through `via` (round robin) holds its acknowledged value. */
async function allRead(via: string[]): Promise<string | null> {
  for (const [i, key] of keys.entries()) {
    const v = await clients.get(via[i % via.length]!)!.get(key).catch((e: unknown) => String(e));
    if (typeof v === "string" || v.type !== "pncounter" || v.value !== acked.get(key)) return `${key} through ${via[i % via.length]}: ${typeof v === "string" ? v : JSON.stringify(v.type === "pncounter" ? String(v.value) : v.type)}, acknowledged ${acked.get(key)}`;
  }
  return null;
}

beforeAll(async () => {
  expect((await run(["certs", "init", "--dir", certs, "--nodes", ids.join(","), "--clients", "client", "--admins", "admin"])).code).toBe(0);
  await start("node-1", null);
  for (const id of ids.slice(1, 5)) await start(id, nodes.get("node-1")!.peerAddr);
  for (const id of ids.slice(0, 5)) await waitFor(`${id} to see 5 alive`, async () => (await clients.get(id)!.members()).filter((m) => m.status === "alive").length === 5, 30_000, 100);
});

afterAll(() => {
  for (const c of clients.values()) c.close();
  for (const n of nodes.values()) n.proc.kill("SIGKILL");
  dir.cleanup();
});

describe("5 nodes with replication factor 3", () => {
  test("each node holds about 3/5 of the keys: exactly those it owns", async () => {
    // Key i incremented (i % 5) + 1, in batches through every node (forwarded to the owners).
    for (let start = 0; start < keys.length; start += 100) {
      const via = clients.get(ids[(start / 100) % 5]!)!;
      const items = await via.batch(keys.slice(start, start + 100).map((key) => ({ kind: "increment" as const, key, amount: acked.get(key)! })));
      expect(items.every((it) => it.ok)).toBe(true);
    }
    const five = placementOf(ids.slice(0, 5));
    const spread: string[] = [];
    for (const id of ids.slice(0, 5)) {
      const mine = keys.filter((k) => five.ownersOfKey(k).includes(asNodeId(id))).sort();
      await waitFor(`${id} to hold its ${mine.length} keys`, async () => JSON.stringify(await held(id)) === JSON.stringify(mine), 30_000, 200);
      expect(Math.abs(mine.length / keys.length - 0.6)).toBeLessThan(0.06);
      spread.push(`${id} ${mine.length} (${(mine.length / keys.length).toFixed(3)})`);
    }
    console.log(`spread of ${keys.length} keys over 5 nodes, RF 3 (ideal 0.600): ${spread.join(", ")}`);
  });

  test("with node-5 SIGKILLed, every key stays readable and writable through every other node", async () => {
    nodes.get("node-5")!.proc.kill("SIGKILL");
    await nodes.get("node-5")!.proc.exited;
    const rest = ids.slice(0, 4);
    expect(await allRead(rest)).toBeNull();
    // A write is not sent to a second owner when its first fails (it may have been applied:
    // docs/api.md "Safe retries"): the writes start once every node has stopped counting node-5 alive.
    for (const id of rest) await waitFor(`${id} to suspect node-5`, async () => (await clients.get(id)!.members()).find((m) => m.id === "node-5")?.status !== "alive", 30_000, 100);
    for (const [i, key] of keys.entries()) {
      expect(await clients.get(rest[(i + 1) % 4]!)!.increment(key, 1n)).toBe(acked.get(key)! + 1n);
      acked.set(key, acked.get(key)! + 1n);
    }
    expect(await allRead(rest)).toBeNull();
  });

  test("a sixth node joins: it receives about 1/6 of the data and serves it", async () => {
    await start("node-6", nodes.get("node-1")!.peerAddr);
    await waitFor("node-6 to see the cluster", async () => (await clients.get("node-6")!.members()).length === 6, 30_000, 100);
    // node-5 is dead, not yet reaped: still in the placement (a restart must not move data twice).
    const six = placementOf(ids);
    const mine = keys.filter((k) => six.ownersOfKey(k).includes(asNodeId("node-6"))).sort();
    expect(Math.abs(mine.length / (3 * keys.length) - 1 / 6)).toBeLessThan(0.02);
    await waitFor(`node-6 to be filled with its ${mine.length} keys`, async () => JSON.stringify(await held("node-6")) === JSON.stringify(mine), 60_000, 250);
    for (const key of mine) {
      const v = await clients.get("node-6")!.get(key);
      expect(v.type === "pncounter" && v.value, key).toBe(acked.get(key)!);
    }
    console.log(`node-6 received ${mine.length} of ${3 * keys.length} key copies (${(mine.length / (3 * keys.length)).toFixed(3)}, ideal 0.167)`);
  });

  test("node-5 removed, every node holds exactly the keys it owns, and every key reads its acknowledged value", async () => {
    await waitFor("node-1 to see node-5 dead", async () => (await clients.get("node-1")!.members()).find((m) => m.id === "node-5")?.status === "dead", 60_000, 250);
    const r = await run(["admin", "--server", nodes.get("node-1")!.clientAddr, "--tls-dir", certs, "member", "remove", "node-5"]);
    expect(r.code).toBe(0);
    const members = ["node-1", "node-2", "node-3", "node-4", "node-6"];
    const final = placementOf(members);
    for (const id of members) {
      const mine = keys.filter((k) => final.ownersOfKey(k).includes(asNodeId(id))).sort();
      await waitFor(`${id} to hold exactly its ${mine.length} keys`, async () => JSON.stringify(await held(id)) === JSON.stringify(mine), 90_000, 250);
    }
    expect(await allRead(members)).toBeNull();
    const evicted = await Promise.all(members.map(async (id) => Number(/^imdb_keys_evicted_total (\d+)$/m.exec(await (await fetch(`http://${nodes.get(id)!.metricsAddr}/metrics`)).text())?.[1])));
    expect(evicted.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });
});
