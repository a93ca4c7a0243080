// A real 5-node mutual-TLS cluster from the built binary: it forms from one seed address,
// writes on every node are read on every node, kill -9 is detected, a restarted node rejoins and
// catches up (including writes made while it was down), and a graceful leave is seen as "left".
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { ImdbClient } from "../../src/transport/client.ts";
import { loadTlsDir } from "../../src/transport/tls.ts";
import { run, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";

setDefaultTimeout(90_000);

const dir = tempDir("cluster");
const certs = join(dir.path, "certs");
const ids = ["node-1", "node-2", "node-3", "node-4", "node-5"];
const nodes = new Map<string, NodeProc>();
const clients = new Map<string, ImdbClient>();

function nodeArgs(id: string, seed: string | null, peerAddr = "127.0.0.1:0"): string[] {
  return [
    "--data-dir", join(dir.path, id), "--tls-dir", certs, "--peer-addr", peerAddr, "--client-addr", "127.0.0.1:0",
    ...(seed ? ["--seeds", seed] : []),
  ];
}

async function connect(id: string): Promise<ImdbClient> {
  clients.get(id)?.close();
  const tls = await loadTlsDir(certs, "client");
  const c = new ImdbClient({ server: nodes.get(id)!.clientAddr, tls });
  clients.set(id, c);
  return c;
}

async function membersOf(id: string): Promise<Map<string, string>> {
  const ms = await clients.get(id)!.members();
  return new Map(ms.map((m) => [m.id, m.status]));
}

let seed = "";

beforeAll(async () => {
  const made = await run(["certs", "init", "--dir", certs, "--nodes", ids.join(","), "--clients", "client", "--admins", "admin"]);
  expect(made.code).toBe(0);
  const first = await startNode("node-1", nodeArgs("node-1", null));
  nodes.set("node-1", first);
  seed = first.peerAddr;
  // Everyone else knows only node-1's address.
  const rest = await Promise.all(ids.slice(1).map((id) => startNode(id, nodeArgs(id, seed))));
  for (const n of rest) nodes.set(n.id, n);
  for (const id of ids) await connect(id);
});

afterAll(() => {
  for (const c of clients.values()) c.close();
  for (const n of nodes.values()) n.proc.kill("SIGKILL");
  dir.cleanup();
});

describe("a 5-node cluster", () => {
  test("forms from one seed address: every node sees 5 alive members", async () => {
    for (const id of ids) {
      await waitFor(`${id} to see 5 alive`, async () => {
        const m = await membersOf(id);
        return m.size === 5 && [...m.values()].every((s) => s === "alive");
      });
    }
  });

  test("writes on every node are read on every node", async () => {
    for (const [i, id] of ids.entries()) {
      await clients.get(id)!.increment("hits", BigInt(i + 1));
      await clients.get(id)!.set(`reg-${id}`, new TextEncoder().encode(`from ${id}`));
    }
    for (const id of ids) {
      await waitFor(`${id} to read hits = 15`, async () => {
        const v = await clients.get(id)!.get("hits");
        return v.type === "pncounter" && v.value === 15n;
      });
      for (const w of ids) {
        await waitFor(`${id} to read reg-${w}`, async () => {
          const v = await clients.get(id)!.get(`reg-${w}`).catch(() => null);
          return v?.type === "lww" && new TextDecoder().decode(v.value) === `from ${w}`;
        });
      }
    }
  });

  test("kill -9 of one node: every other node marks it dead", async () => {
    const victim = nodes.get("node-5")!;
    victim.proc.kill("SIGKILL");
    await victim.proc.exited;
    for (const id of ids.slice(0, 4)) {
      await waitFor(`${id} to mark node-5 dead`, async () => (await membersOf(id)).get("node-5") === "dead", 30_000, 200);
    }
  });

  test("restart: it rejoins and catches up, including writes made while it was down", async () => {
    for (const id of ids.slice(0, 4)) await clients.get(id)!.increment("while-down", 10n);
    await clients.get("node-2")!.set("late", new TextEncoder().encode("written while node-5 was down"));
    const back = await startNode("node-5", nodeArgs("node-5", seed));
    nodes.set("node-5", back);
    const c = await connect("node-5");
    await waitFor("node-5 to read while-down = 40", async () => {
      const v = await c.get("while-down").catch(() => null);
      return v?.type === "pncounter" && v.value === 40n;
    }, 30_000);
    await waitFor("node-5 to read late", async () => {
      const v = await c.get("late").catch(() => null);
      return v?.type === "lww" && new TextDecoder().decode(v.value) === "written while node-5 was down";
    }, 30_000);
    // Its own earlier writes came back from its WAL; the cluster's from its peers.
    expect(await c.get("hits")).toEqual({ type: "pncounter", value: 15n });
    for (const id of ids) {
      await waitFor(`${id} to see node-5 alive again`, async () => (await membersOf(id)).get("node-5") === "alive", 30_000, 200);
    }
  });

  test("graceful leave: the others see it as left, not dead", async () => {
    const r = await run(["admin", "--server", nodes.get("node-4")!.clientAddr, "--tls-dir", certs, "leave"]);
    expect(r.code).toBe(0);
    // The node drains and exits 0 after announcing its departure.
    expect(await nodes.get("node-4")!.proc.exited).toBe(0);
    for (const id of ["node-1", "node-2", "node-3"]) {
      await waitFor(`${id} to see node-4 left`, async () => (await membersOf(id)).get("node-4") === "left", 20_000, 200);
    }
  });
});
