// Delete and key listing through the built binary (issue 13, items 2 and 5): `imdb client del`
// removes keys of every type and says how many held something, `imdb client keys` lists the
// present ones (by prefix and type), the delete replicates to a peer, a deleted key takes a write
// of another type, and nothing deleted comes back after a SIGKILL and WAL replay, nor after a
// snapshot and a restart.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { run, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";

setDefaultTimeout(120_000);

const dir = tempDir("delete");
const nodes: NodeProc[] = [];

const nodeArgs = (id: string, extra: string[] = []) => [
  "--data-dir", join(dir.path, id), "--insecure", "--durability", "sync",
  "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", ...extra,
];
const client = (n: NodeProc, args: string[]) => run(["client", "--server", n.clientAddr, "--insecure", ...args]);
const lines = (s: string): string[] => s.split("\n").map((x) => x.trim()).filter((x) => x !== "").sort();

afterAll(() => {
  for (const n of nodes) n.proc.kill("SIGKILL");
  dir.cleanup();
});

async function keysOf(n: NodeProc, extra: string[] = []): Promise<string[]> {
  const r = await client(n, ["keys", ...extra]);
  expect(r.code).toBe(0);
  return lines(r.stdout);
}

describe("del and keys", () => {
  test("delete every type, list what is left, replicate, rewrite with another type, survive SIGKILL and a snapshot restart", async () => {
    const node1 = await startNode("node-1", nodeArgs("node-1"));
    nodes.push(node1);
    const node2 = await startNode("node-2", nodeArgs("node-2", ["--seeds", node1.peerAddr]));
    nodes.push(node2);

    expect((await client(node1, ["set", "a", "hello"])).code).toBe(0);
    expect((await client(node1, ["incr", "c", "5"])).code).toBe(0);
    expect((await client(node1, ["set", "--mv", "m", "v1"])).code).toBe(0);
    expect((await client(node1, ["set", "user:1", "x"])).code).toBe(0);
    expect((await client(node1, ["set", "user:2", "y"])).code).toBe(0);
    await waitFor("node-2 to hold all five keys", async () => (await keysOf(node2)).length === 5, 30_000, 100);

    const del = await client(node1, ["del", "a", "c", "nope"]);
    expect(del.code).toBe(0);
    expect(del.stdout.trim()).toBe("2");
    const json = await client(node1, ["--json", "del", "m", "m"]);
    expect(JSON.parse(json.stdout)).toEqual({ deleted: 1 });

    const gone = await client(node1, ["get", "a"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("NOT_FOUND");
    expect(await keysOf(node1)).toEqual(["user:1", "user:2"]);
    expect(await keysOf(node1, ["--prefix", "user:"])).toEqual(["user:1", "user:2"]);
    expect(await keysOf(node1, ["--type", "pncounter"])).toEqual([]);
    expect(JSON.parse((await client(node1, ["--json", "keys", "--prefix", "user:2"])).stdout)).toEqual({ keys: ["user:2"] });
    const badType = await client(node1, ["keys", "--type", "nosuch"]);
    expect(badType.code).toBe(2);

    // The deletes reach node-2.
    await waitFor("node-2 to drop the deleted keys", async () => (await keysOf(node2)).join(",") === "user:1,user:2", 30_000, 100);

    // A deleted key takes a write of another type, on either node.
    expect((await client(node2, ["incr", "a", "3"])).stdout.trim()).toBe("3");
    await waitFor("node-1 to see a as a counter", async () => (await client(node1, ["get", "a"])).stdout.trim() === "3", 30_000, 100);
    expect((await client(node1, ["--json", "get", "a"])).stdout).not.toContain("conflicts");

    // SIGKILL (sync durability: everything acknowledged is on disk) and WAL replay: nothing deleted comes back.
    node1.proc.kill("SIGKILL");
    await node1.proc.exited;
    node2.proc.kill("SIGKILL");
    await node2.proc.exited;
    const again = await startNode("node-1", nodeArgs("node-1"));
    nodes.push(again);
    expect(await keysOf(again)).toEqual(["a", "user:1", "user:2"]);
    expect((await client(again, ["get", "c"])).code).toBe(1);
    expect((await client(again, ["get", "m"])).code).toBe(1);
    expect((await client(again, ["get", "a"])).stdout.trim()).toBe("3");

    // A snapshot holds the deleted keys' records too: after it and a restart, still nothing comes back.
    expect((await run(["admin", "--server", again.clientAddr, "--insecure", "snapshot"])).code).toBe(0);
    again.proc.kill("SIGTERM");
    await again.proc.exited;
    const third = await startNode("node-1", nodeArgs("node-1"));
    nodes.push(third);
    expect(await keysOf(third)).toEqual(["a", "user:1", "user:2"]);
    expect((await client(third, ["get", "c"])).code).toBe(1);
    // Rewriting a deleted counter counts from zero.
    expect((await client(third, ["incr", "c"])).stdout.trim()).toBe("1");
  });
});
