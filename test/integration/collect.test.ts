// Tombstone collection through the built binary (issue 13, item 6): deleted keys' records go once
// every member holds them, on every node; a member that is down holds collection back until it is
// removed; that member, returning with its old data, is told it departed, discards its data and
// rejoins empty, and nothing it held comes back; a restart replays deletes whose records were
// collected without bringing anything back.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { run, startNode, tempDir, waitFor, type NodeProc } from "./harness.ts";

setDefaultTimeout(180_000);

const dir = tempDir("collect");
const procs: NodeProc[] = [];

const nodeArgs = (id: string, extra: string[] = []) => [
  "--data-dir", join(dir.path, id), "--insecure", "--durability", "sync", "--peer-addr", "127.0.0.1:0",
  ...(extra.includes("--client-addr") ? [] : ["--client-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"]), ...extra,
];
const client = (n: NodeProc, args: string[]) => run(["client", "--server", n.clientAddr, "--insecure", ...args]);

afterAll(() => {
  for (const n of procs) n.proc.kill("SIGKILL");
  dir.cleanup();
});

/** A port nothing listens on now (bound and released). */
function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

async function metric(n: NodeProc, name: string): Promise<number> {
  const text = await (await fetch(`http://${n.metricsAddr}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  if (m === null) throw new Error(`no ${name} on ${n.id}`);
  return Number(m[1]);
}

async function keyCount(n: NodeProc): Promise<number> {
  const r = await client(n, ["keys"]);
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.split("\n").filter((l) => l.trim() !== "").length;
}

async function start(id: string, extra: string[] = []): Promise<NodeProc> {
  const n = await startNode(id, nodeArgs(id, extra));
  procs.push(n);
  return n;
}

describe("tombstone collection", () => {
  test("records go on every node once all hold them; a down member holds it back until removed; that member returning rejoins empty and brings nothing back", async () => {
    const n1 = await start("node-1");
    const n2 = await start("node-2", ["--seeds", n1.peerAddr]);
    let n3 = await start("node-3", ["--seeds", n1.peerAddr]);
    const all = () => [n1, n2, n3];

    // 60 keys of three types, written through node-1, replicated everywhere.
    const ops: string[] = [];
    for (let i = 0; i < 20; i++) ops.push(`incr c${i} 3`, `set r${i} v${i}`, `sadd s${i} a b`);
    const b = Bun.spawn([join(import.meta.dir, "..", "..", "dist", "imdb"), "client", "--server", n1.clientAddr, "--insecure", "batch"], { stdin: new Blob([`${ops.join("\n")}\n`]), stdout: "pipe", stderr: "pipe" });
    expect(await b.exited).toBe(0);
    for (const n of all()) await waitFor(`${n.id} to hold 60 keys`, async () => (await keyCount(n)) === 60, 30_000, 100);

    // Delete them all through node-2: every node's records are collected.
    const keys = [...Array(20).keys()].flatMap((i) => [`c${i}`, `r${i}`, `s${i}`]);
    expect((await client(n2, ["del", ...keys])).stdout.trim()).toBe("60");
    for (const n of all()) {
      await waitFor(`${n.id} to collect every record`, async () => (await keyCount(n)) === 0 && (await metric(n, "imdb_tombstones")) === 0 && (await metric(n, "imdb_tombstones_collected_total")) >= 60, 60_000, 200);
    }
    expect(await metric(n1, "imdb_collection_generation")).toBeGreaterThan(0);

    // node-3 goes down holding a key that is then deleted elsewhere.
    expect((await client(n1, ["set", "old", "before"])).code).toBe(0);
    await waitFor("node-3 to hold old", async () => (await client(n3, ["get", "old"])).stdout.trim() === "before", 30_000, 100);
    n3.proc.kill("SIGKILL");
    await n3.proc.exited;
    await waitFor("node-1 to see node-3 dead", async () => (await run(["client", "--server", n1.clientAddr, "--insecure", "members"])).stdout.includes("dead"), 30_000, 200);
    expect((await client(n1, ["del", "old"])).stdout.trim()).toBe("1");
    await waitFor("node-2 to hold the delete", async () => (await metric(n2, "imdb_tombstones")) === 1, 30_000, 100);
    // A down member holds collection back: several probe intervals later the record is still there.
    await Bun.sleep(3_000);
    expect(await metric(n1, "imdb_tombstones")).toBe(1);
    expect(await metric(n2, "imdb_tombstones")).toBe(1);

    // Removed by the operator, it no longer counts: both collect.
    for (const n of [n1, n2]) {
      const r = await run(["admin", "--server", n.clientAddr, "--insecure", "member", "remove", "node-3"]);
      expect(r.code).toBe(0);
    }
    for (const n of [n1, n2]) await waitFor(`${n.id} to collect old`, async () => (await metric(n, "imdb_tombstones")) === 0, 60_000, 200);

    // node-3 returns with its data (old is live there): it is told it departed, moves its data
    // aside, starts empty, and old stays deleted everywhere.
    // Fixed client and metrics ports: the node starts again in-process after the reset, on the
    // same addresses (the harness reads only the first ready line).
    const clientPort = freePort();
    const metricsPort = freePort();
    n3 = await start("node-3", ["--seeds", n1.peerAddr, "--client-addr", `127.0.0.1:${clientPort}`, "--metrics-addr", `127.0.0.1:${metricsPort}`]);
    await waitFor("node-3 to discard its data and rejoin empty", () => n3.log().includes("starting again as a new, empty replica"), 60_000, 200);
    expect(n3.log()).toContain("saw this replica");
    expect(readdirSync(dir.path).some((f) => f.startsWith("node-3.discarded-"))).toBe(true);
    expect((await client(n1, ["set", "fresh", "yes"])).code).toBe(0);
    const again: NodeProc = { ...n3, clientAddr: `127.0.0.1:${clientPort}`, metricsAddr: `127.0.0.1:${metricsPort}` };
    await waitFor("node-3 to refill", async () => (await client(again, ["get", "fresh"])).stdout.trim() === "yes", 60_000, 200);
    for (const n of [n1, n2, again]) {
      const r = await client(n, ["get", "old"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("NOT_FOUND");
    }
    expect(existsSync(join(dir.path, "node-3", "identity"))).toBe(true);
  });
});
