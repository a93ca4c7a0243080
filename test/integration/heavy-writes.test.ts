// A real 3-node cluster under sustained 1 MiB writes (sync durability, real fsyncs): no node is
// ever suspected, because failure detection never waits for the WAL nor rides with replica data,
// and replication keeps up (issue 12, finding 11). Mutual TLS on every link, as in production.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { ImdbClient } from "../../src/transport/client.ts";
import { loadTlsDir } from "../../src/transport/tls.ts";
import { run, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";

setDefaultTimeout(60_000);

/** How long the writers run (ms). */
const loadDurationMs = 12_000;
/** Concurrent writers per node, each awaiting its own write before the next. */
const writersPerNode = 2;
/** Keys each writer cycles through, so memory stays bounded while every write is 1 MiB. */
const keysPerWriter = 8;
const valueBytes = 1024 * 1024;

const dir = tempDir("heavy");
const certs = join(dir.path, "certs");
const nodes: NodeProc[] = [];
const clients: ImdbClient[] = [];

afterAll(() => {
  for (const c of clients) c.close();
  for (const n of nodes) n.proc.kill("SIGKILL");
  dir.cleanup();
});

const args = (id: string, seed: string | null): string[] => [
  "--tls-dir", certs, "--durability", "sync", "--data-dir", join(dir.path, id),
  "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", ...(seed ? ["--seeds", seed] : []),
];

test("3 nodes under sustained 1 MiB writes: no node is ever suspected", async () => {
  const made = await run(["certs", "init", "--dir", certs, "--nodes", "node-1,node-2,node-3", "--clients", "client"]);
  expect(made.code).toBe(0);
  const tls = await loadTlsDir(certs, "client");
  nodes.push(await startNode("node-1", args("node-1", null)));
  const seed = nodes[0]!.peerAddr;
  nodes.push(...(await Promise.all(["node-2", "node-3"].map((id) => startNode(id, args(id, seed))))));
  for (const n of nodes) clients.push(new ImdbClient({ server: n.clientAddr, tls, deadlineMs: 10_000 }));
  await waitFor("3 alive members everywhere", async () => {
    for (const c of clients) if ((await c.members()).filter((m) => m.status === "alive").length !== 3) return false;
    return true;
  });

  const value = new Uint8Array(valueBytes).fill(7);
  let writes = 0;
  let stop = false;
  const notAlive: string[] = [];
  const writer = async (c: ImdbClient, name: string): Promise<void> => {
    for (let i = 0; !stop; i++) {
      await c.set(`${name}-${i % keysPerWriter}`, value);
      writes++;
    }
  };
  const watcher = async (): Promise<void> => {
    while (!stop) {
      for (const [i, c] of clients.entries()) {
        for (const m of await c.members()) if (m.status !== "alive") notAlive.push(`node-${i + 1} saw ${m.id} ${m.status}`);
      }
      await Bun.sleep(100);
    }
  };
  const t0 = Date.now();
  const running = [watcher()];
  for (const [i, c] of clients.entries()) for (let w = 0; w < writersPerNode; w++) running.push(writer(c, `n${i + 1}w${w}`));
  await Bun.sleep(loadDurationMs);
  stop = true;
  await Promise.all(running);
  const seconds = (Date.now() - t0) / 1000;

  // Every node writes a "member suspect" line for each suspicion it starts or learns of.
  const suspicions = nodes.map((n) => (n.log().match(/member suspect/g) ?? []).length);
  const refutations = nodes.map((n) => (n.log().match(/refuted a suspicion/g) ?? []).length);
  console.log(`heavy writes: ${writes} x 1 MiB in ${seconds.toFixed(1)} s (${(writes / seconds).toFixed(1)} MiB/s), suspicions per node ${suspicions.join("/")}, refutations ${refutations.join("/")}, non-alive sightings ${notAlive.length}`);
  expect(writes).toBeGreaterThan(0);
  expect(notAlive).toEqual([]);
  expect(suspicions).toEqual([0, 0, 0]);
  expect(refutations).toEqual([0, 0, 0]);

  // And replication kept up: every writer's first key is on every node soon after the load.
  const firstKeys = clients.flatMap((_, i) => Array.from({ length: writersPerNode }, (_, w) => `n${i + 1}w${w}-0`));
  await waitFor("every writer's first key on every node", async () => {
    for (const c of clients) for (const k of firstKeys) if ((await c.get(k)).type !== "lww") return false; // missing: NOT_FOUND, retried
    return true;
  }, 10_000, 500);
});
