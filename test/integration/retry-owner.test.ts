// A retried write goes to the owner its first attempt went to (docs/api.md, "Safe retries"), on
// real processes: 3 nodes, replicationFactor 2; node-1 owns none of the key, node-2 is its first
// owner. node-2 is stopped (SIGSTOP) while node-1 forwards an Increment to it: the call times
// out, the write may or may not be applied once node-2 runs again. The client's retry with the
// same request id must not be applied by node-3 meanwhile (that was a second increment once
// node-2 woke and applied the first): node-1 refuses it while node-2 is dead, and sends it to
// node-2 once it is back, which applies it once at most. The key ends one increment up.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { Placement } from "../../src/cluster/placement.ts";
import { asNodeId } from "../../src/cluster/types.ts";
import { ImdbClient, newRequestId, RpcError } from "../../src/transport/client.ts";
import { loadTlsDir } from "../../src/transport/tls.ts";
import { run, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";

setDefaultTimeout(120_000);

const dir = tempDir("retry-owner");
const certs = join(dir.path, "certs");
const ids = ["node-1", "node-2", "node-3"];
const partitions = 64;
const placement = new Placement(ids.map(asNodeId), { partitions, replicationFactor: 2 });
const key = Array.from({ length: 1000 }, (_, i) => `retry:${i}`).find((k) => {
  const owners = placement.ownersOfKey(k);
  return owners[0] === "node-2" && owners[1] === "node-3";
})!;
const nodes = new Map<string, NodeProc>();
const clients = new Map<string, ImdbClient>();

const nodeArgs = (id: string, seed: string | null): string[] => [
  "--data-dir", join(dir.path, id), "--tls-dir", certs, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0",
  "--replication-factor", "2", "--partitions", String(partitions), "--durability", "sync", ...(seed ? ["--seeds", seed] : []),
];

const statusOf = async (at: string, id: string): Promise<string | undefined> => (await clients.get(at)!.members()).find((m) => m.id === id)?.status;
const valueOn = async (at: string): Promise<bigint> => {
  const v = await clients.get(at)!.get(key);
  return v.type === "pncounter" ? v.value : -1n;
};

beforeAll(async () => {
  expect((await run(["certs", "init", "--dir", certs, "--nodes", ids.join(","), "--clients", "client"])).code).toBe(0);
  const first = await startNode("node-1", nodeArgs("node-1", null));
  nodes.set("node-1", first);
  for (const id of ids.slice(1)) nodes.set(id, await startNode(id, nodeArgs(id, first.peerAddr)));
  const tls = await loadTlsDir(certs, "client");
  for (const id of ids) clients.set(id, new ImdbClient({ server: nodes.get(id)!.clientAddr, tls, deadlineMs: 20_000 }));
  for (const id of ids) await waitFor(`${id} to see 3 alive`, async () => (await clients.get(id)!.members()).filter((m) => m.status === "alive").length === 3, 30_000, 200);
});

afterAll(() => {
  for (const c of clients.values()) c.close();
  for (const n of nodes.values()) {
    n.proc.kill("SIGCONT");
    n.proc.kill("SIGKILL");
  }
  dir.cleanup();
});

describe("a retry after a failed forward", () => {
  test("goes to the owner of the first attempt: refused while it is dead, applied once after", async () => {
    expect(key).toBeDefined();
    const c1 = clients.get("node-1")!;
    expect(await c1.increment(key, 5n)).toBe(5n);
    await waitFor("node-3 to hold the key", async () => (await valueOn("node-3")) === 5n, 15_000, 100);

    const id = newRequestId();
    nodes.get("node-2")!.proc.kill("SIGSTOP");
    const first = await c1.increment(key, 1n, undefined, id).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(RpcError);
    expect((first as RpcError).details).toContain("forwarded to owner node-2");

    await waitFor("node-1 to see node-2 dead", async () => (await statusOf("node-1", "node-2")) === "dead", 60_000, 200);
    // Requests for the key go to node-3 now; the retry does not.
    expect(await valueOn("node-1")).toBeGreaterThanOrEqual(5n);
    const refused = await c1.increment(key, 1n, undefined, id).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RpcError);
    expect((refused as RpcError).details).toContain("first attempt of this request went to owner node-2, which is dead");

    nodes.get("node-2")!.proc.kill("SIGCONT");
    await waitFor("node-1 to see node-2 alive", async () => (await statusOf("node-1", "node-2")) === "alive", 60_000, 200);
    const settled = await waitFor("the retry to be answered", async () => c1.increment(key, 1n, undefined, id).catch(() => undefined), 30_000, 200);
    expect(settled).toBe(6n);
    for (const at of ["node-2", "node-3"]) await waitFor(`${at} to hold 6`, async () => (await valueOn(at)) === 6n, 30_000, 200);
  });
});
