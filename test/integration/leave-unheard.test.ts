// A leave nobody can hear, on real processes: node-2 runs `imdb admin leave` while it is cut off
// from its only peer (each node's peer address is behind our fault proxy, test/chaos/proxy.ts,
// and both proxies blackhole every byte). Its announcement reaches nobody; before, the command
// printed OK and the peer saw a crash with nothing to tell the operator. Now the leave waits up to
// leaveAnnounceMs (15 s) for a peer to be seen holding it, then says it was not, on stderr and
// in the node's log, with the remedy; the operator applies it (`imdb admin member remove`).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { run, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";
import { FaultProxy } from "../chaos/proxy.ts";

setDefaultTimeout(90_000);

const dir = tempDir("leave-unheard");
const certs = join(dir.path, "certs");
const nodes: NodeProc[] = [];
const proxies: FaultProxy[] = [];

const nodeArgs = (id: string, extra: string[] = []) => [
  "--data-dir", join(dir.path, id), "--tls-dir", certs, "--durability", "sync",
  "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", ...extra,
];

async function statusOn(n: NodeProc, id: string): Promise<string | undefined> {
  const r = await run(["client", "--server", n.clientAddr, "--tls-dir", certs, "--json", "members"]);
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as { members: { id: string; status: string }[] }).members.find((m) => m.id === id)?.status;
}

beforeAll(async () => {
  expect((await run(["certs", "init", "--dir", certs, "--nodes", "node-1,node-2", "--clients", "client", "--admins", "admin"])).code).toBe(0);
  // Each node advertises its proxy's address: every peer connection goes through one.
  for (const id of ["node-1", "node-2"]) {
    const proxy = await FaultProxy.start({ target: "127.0.0.1:1" });
    const seeds = proxies.length > 0 ? ["--seeds", proxies[0]!.addr] : [];
    const n = await startNode(id, nodeArgs(id, ["--advertise-addr", proxy.addr, ...seeds]));
    proxy.setTarget(n.peerAddr);
    proxies.push(proxy);
    nodes.push(n);
  }
});

afterAll(() => {
  for (const n of nodes) n.proc.kill("SIGKILL");
  for (const p of proxies) void p.close();
  dir.cleanup();
});

describe("a leave no peer hears", () => {
  test("says so (exit 0, a warning with the remedy), and the remedy works", async () => {
    const [n1, n2] = nodes as [NodeProc, NodeProc];
    await waitFor("node-1 to see node-2 alive", async () => (await statusOn(n1, "node-2")) === "alive", 20_000, 200);
    await waitFor("node-2 to see node-1 alive", async () => (await statusOn(n2, "node-1")) === "alive", 20_000, 200);

    for (const p of proxies) p.set({ blackhole: true });
    const left = await run(["admin", "--server", n2.clientAddr, "--tls-dir", certs, "--name", "admin", "leave"], { timeoutMs: 60_000 });
    expect(left.code).toBe(0);
    expect(left.stdout.trim()).toBe("OK: left, unconfirmed");
    expect(left.stderr).toContain("no peer was seen holding this node's departure");
    expect(left.stderr).toContain("imdb admin member remove");
    expect(await n2.proc.exited).toBe(0);
    expect(n2.log()).toContain("no peer was seen holding this node's departure");

    // node-1 never heard the leave: it sees node-2 go dead, as after a crash.
    await waitFor("node-1 to see node-2 dead", async () => (await statusOn(n1, "node-2")) === "dead", 60_000, 250);
    const removed = await run(["admin", "--server", n1.clientAddr, "--tls-dir", certs, "--name", "admin", "member", "remove", "node-2"]);
    expect(removed.code).toBe(0);
    expect(removed.stdout.trim()).toBe("removed node-2");
  });
});
