// Type conflicts through the built binary (issue 12, finding 2): node-1 sets k; node-2, which has
// not seen it (it has not joined yet), takes a stray `incr k`; once node-2 joins, both nodes show
// node-1's value, `get --all` shows the counter too, each node logs and counts the conflict once,
// and both sides survive a snapshot and a restart.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { run, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";
import { sample } from "../node/prom.ts";

setDefaultTimeout(90_000);

const dir = tempDir("conflicts");
const nodes: NodeProc[] = [];

const nodeArgs = (id: string, extra: string[] = []) => [
  "--data-dir", join(dir.path, id), "--insecure", "--durability", "sync",
  "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", ...extra,
];
const client = (n: NodeProc, args: string[]) => run(["client", "--server", n.clientAddr, "--insecure", ...args]);

function metricsAddrOf(n: NodeProc): string {
  const m = /ready: .* metrics (\S+)/.exec(n.stdout());
  if (!m) throw new Error(`no metrics address in ${JSON.stringify(n.stdout())}`);
  return m[1] as string;
}

afterAll(() => {
  for (const n of nodes) n.proc.kill("SIGKILL");
  dir.cleanup();
});

describe("a type conflict between two nodes", () => {
  test("the established LWW value stays visible on both nodes; the lagging node's counter is kept and shown by get --all", async () => {
    const node1 = await startNode("node-1", nodeArgs("node-1"));
    nodes.push(node1);
    expect((await client(node1, ["set", "k", "hello"])).code).toBe(0);

    // node-2 has not seen k: it runs alone, and a client's incr there is acknowledged.
    const alone = await startNode("node-2", nodeArgs("node-2"));
    nodes.push(alone);
    const incr = await client(alone, ["incr", "k"]);
    expect(incr.stdout.trim()).toBe("1");
    alone.proc.kill("SIGTERM");
    await alone.proc.exited;

    // It restarts from its WAL and joins node-1: anti-entropy and deltas meet the two types.
    const node2 = await startNode("node-2", nodeArgs("node-2", ["--seeds", node1.peerAddr]));
    nodes.push(node2);
    for (const n of [node1, node2]) {
      await waitFor(`${n.id} to show the LWW value with the counter beside it`, async () => {
        const all = await client(n, ["get", "--all", "k"]);
        return all.code === 0 && all.stdout.trim() === "hello\nconflict pncounter: 1";
      }, 30_000, 100);
      const plain = await client(n, ["get", "k"]);
      expect(plain.stdout.trim()).toBe("hello");
      expect(plain.stderr).toContain("type conflict");
      const json = JSON.parse((await client(n, ["--json", "get", "--all", "k"])).stdout) as unknown;
      expect(json).toEqual({ key: "k", type: "lww", value: "hello", conflicts: [{ type: "pncounter", value: 1 }] });
      // The hidden type is refused; the visible one still takes writes.
      const refused = await client(n, ["incr", "k"]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("FAILED_PRECONDITION");
    }
    // Each node logged the conflict once and counted it.
    await waitFor("both nodes to count the conflict", async () => {
      for (const n of [node1, node2]) {
        const text = await (await fetch(`http://${metricsAddrOf(n)}/metrics`)).text();
        if (sample(text, "imdb_type_conflicts_total") !== 1) return false;
      }
      return true;
    }, 15_000, 100);
    for (const n of [node1, node2]) expect(n.log().split("type conflict").length - 1).toBe(1);

    // Both sides survive a snapshot and a restart (WAL replay) on their own - node-2 is gone, so
    // nothing can come back through anti-entropy - and recovery does not report the conflict again.
    expect((await run(["admin", "--server", node1.clientAddr, "--insecure", "snapshot"])).code).toBe(0);
    expect((await client(node1, ["set", "k", "bye"])).code).toBe(0);
    node2.proc.kill("SIGKILL");
    node1.proc.kill("SIGTERM");
    await node1.proc.exited;
    const again = await startNode("node-1", nodeArgs("node-1"));
    nodes.push(again);
    expect((await client(again, ["get", "--all", "k"])).stdout.trim()).toBe("bye\nconflict pncounter: 1");
    expect(again.log()).not.toContain("type conflict");
  });
});
