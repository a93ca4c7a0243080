// Through the built binary (issue 12): a node whose data folder was deleted keeps its new
// acknowledged increments (finding 1: it comes back as a new replica, not as its old actor),
// and a second node on a data folder that is in use is refused, naming the holder (finding 9a).
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { ImdbClient } from "../../src/transport/client.ts";
import { ensureBinary as binaryPath, run, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";

setDefaultTimeout(90_000);

const dir = tempDir("identity");
const procs: NodeProc[] = [];
const clients: ImdbClient[] = [];

afterAll(() => {
  for (const c of clients) c.close();
  for (const p of procs) {
    p.proc.kill("SIGCONT");
    p.proc.kill("SIGKILL");
  }
  dir.cleanup();
});

function args(dataDir: string, seeds: string | null): string[] {
  return ["--insecure", "--data-dir", dataDir, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", ...(seeds === null ? [] : ["--seeds", seeds])];
}

async function start(id: string, a: string[]): Promise<{ node: NodeProc; client: ImdbClient }> {
  const node = await startNode(id, a);
  procs.push(node);
  const client = new ImdbClient({ server: node.clientAddr, tls: null });
  clients.push(client);
  return { node, client };
}

async function counter(c: ImdbClient, key: string): Promise<bigint | undefined> {
  const v = await c.get(key).catch(() => null);
  return v !== null && (v.type === "pncounter" || v.type === "gcounter") ? v.value : undefined;
}

describe("a node whose data folder was deleted", () => {
  test("keeps the 3 increments it acknowledged after restarting under the same id: both nodes show 13", async () => {
    const data1 = join(dir.path, "wipe-node-1");
    const data2 = join(dir.path, "wipe-node-2");
    const n1 = await start("node-1", args(data1, null));
    const n2 = await start("node-2", args(data2, n1.node.peerAddr));
    await n1.client.increment("c", 10n);
    await waitFor("node-2 to read c = 10", async () => (await counter(n2.client, "c")) === 10n, 30_000);

    n1.node.proc.kill("SIGKILL");
    await n1.node.proc.exited;
    rmSync(data1, { recursive: true, force: true });
    // node-2 cannot hand node-1 its old count before node-1 takes new writes.
    n2.node.proc.kill("SIGSTOP");
    try {
      const again = await start("node-1", args(data1, n2.node.peerAddr));
      expect(again.node.log()).toMatch(/replica identity.*new \(empty\)/);
      for (let i = 0; i < 3; i++) await again.client.increment("c", 1n);
      n2.node.proc.kill("SIGCONT");
      // Before the fix, node-1 counted again from 0 as "node-1" and both settled on 10.
      await waitFor("both nodes to read c = 13", async () => (await counter(again.client, "c")) === 13n && (await counter(n2.client, "c")) === 13n, 45_000, 100);
    } finally {
      n2.node.proc.kill("SIGCONT");
    }
  });
});

describe("the replica a restart continues as", () => {
  const replicaOf = async (c: ImdbClient): Promise<string> => (await c.stats()).find((x) => x.name === "replica")?.value ?? "";

  test("SIGTERM keeps it; SIGKILL (under sync or interval) and --repair start a new one", async () => {
    const data = join(dir.path, "lives");
    const life = async (extra: string[]): Promise<{ node: NodeProc; replica: string }> => {
      const { node, client } = await start("node-l", [...args(data, null), ...extra]);
      await client.increment("n", 1n);
      return { node, replica: await replicaOf(client) };
    };
    const stop = async (n: NodeProc, sig: "SIGTERM" | "SIGKILL"): Promise<void> => {
      n.proc.kill(sig);
      await n.proc.exited;
    };
    const first = await life([]);
    expect(first.replica).toMatch(/^node-l\/[0-9a-f]{16}$/);
    await stop(first.node, "SIGTERM");
    const clean = await life([]);
    expect(clean.replica).toBe(first.replica);
    await stop(clean.node, "SIGKILL");
    // Under sync a crash loses nothing acknowledged, but it looks exactly like a hot copy put
    // back (no clean-stop marker), which may be behind what peers hold: a new replica.
    const syncCrash = await life([]);
    expect(syncCrash.replica).not.toBe(first.replica);
    expect(syncCrash.node.log()).toContain("new (unclean-stop)");
    await stop(syncCrash.node, "SIGTERM");
    const interval = await life(["--durability", "interval:50"]);
    expect(interval.replica).toBe(syncCrash.replica);
    await stop(interval.node, "SIGKILL");
    const intervalCrash = await life(["--durability", "interval:50"]);
    expect(intervalCrash.replica).not.toBe(syncCrash.replica);
    expect(intervalCrash.node.log()).toContain("new (unclean-stop)");
    await stop(intervalCrash.node, "SIGTERM");
    const repaired = await life(["--repair"]);
    expect(repaired.replica).not.toBe(intervalCrash.replica);
    expect(repaired.node.log()).toContain("new (repair)");
    // Every life's increment is still counted.
    const c = new ImdbClient({ server: repaired.node.clientAddr, tls: null });
    clients.push(c);
    expect(await counter(c, "n")).toBe(6n);
  });
});

describe("a data folder in use", () => {
  test("a second imdb node on it exits non-zero naming the first process, and the first node's data is untouched", async () => {
    const data = join(dir.path, "locked");
    const first = await start("node-a", args(data, null));
    await first.client.increment("kept", 7n);
    const before = listing(data);

    const second = await run(["node", "--id", "node-b", ...args(data, null)], { timeoutMs: 20_000 });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain(`data folder ${data} is in use by process ${first.node.proc.pid} (imdb node node-a); one node per folder`);

    expect(listing(data)).toEqual(before);
    expect(await counter(first.client, "kept")).toBe(7n);
    // The first node still takes writes, and after it stops the folder can be used again.
    await first.client.increment("kept", 1n);
    first.node.proc.kill("SIGTERM");
    expect(await first.node.proc.exited).toBe(0);
    const next = await start("node-a", args(data, null));
    expect(await counter(next.client, "kept")).toBe(8n);
    expect(next.node.log()).toMatch(/replica identity.*kept/);
  });
});

describe("a node id alive at another address", () => {
  test("a second process claiming it exits non-zero; both log the refusal; the cluster keeps the first address", async () => {
    const first = await start("dup-1", args(join(dir.path, "dup-1-a"), null));
    const other = await start("dup-2", args(join(dir.path, "dup-2"), first.node.peerAddr));
    const members = async (): Promise<Map<string, { status: string; address: string }>> =>
      new Map((await other.client.members()).map((m) => [m.id, { status: m.status, address: m.address }]));
    await waitFor("dup-2 to see dup-1 alive", async () => (await members()).get("dup-1")?.status === "alive", 30_000);

    const second = Bun.spawn([binaryPath(), "node", "--id", "dup-1", ...args(join(dir.path, "dup-1-b"), other.node.peerAddr)], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const exited = await Promise.race([second.exited, Bun.sleep(30_000).then(() => null)]);
    if (exited === null) second.kill("SIGKILL");
    const stderr = await new Response(second.stderr).text();
    expect(exited).not.toBeNull();
    expect(exited).not.toBe(0);
    expect(stderr).toContain("node id already in use");
    expect(stderr).toContain(first.node.peerAddr);
    await waitFor("dup-1 to log the refused claimant", () => /refused a second process claiming this node id/.test(first.node.log()), 10_000);
    expect((await members()).get("dup-1")).toEqual({ status: "alive", address: first.node.peerAddr });
    // The first process still serves.
    await first.client.increment("still", 1n);
    expect(await counter(first.client, "still")).toBe(1n);
  });
});

/** Every file under `root` with its size and mtime: what a second process must not change. */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else out.push(`${p.slice(root.length)} ${st.size} ${st.mtimeMs}`);
    }
  };
  walk(root);
  return out;
}
