// `imdb bench load` from several load-generator processes against a real node: the parent adds
// up what its workers did (every acknowledged increment is in the node's counters), and prints
// the node's CPU and the load generators' CPU next to the throughput.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { run, startNode, tempDir, type NodeProc } from "./harness.ts";

setDefaultTimeout(60_000);

const dir = tempDir("bench-load");
const certs = join(dir.path, "certs");
let node: NodeProc;
/** Distinct counter keys of the load, read back one by one afterwards. */
const loadKeys = 4;

beforeAll(async () => {
  const made = await run(["certs", "init", "--dir", certs, "--nodes", "node-1", "--clients", "client"]);
  expect(made.code).toBe(0);
  node = await startNode("node-1", [
    "--data-dir", join(dir.path, "node-1"), "--tls-dir", certs, "--durability", "none", "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0",
  ]);
});

afterAll(() => {
  node?.proc.kill("SIGKILL");
  dir.cleanup();
});

interface LoadJson {
  workers: number; ops: number; errors: number; opsPerSec: number; latencyMs: { p50: number; p99: number; max: number };
  cpu: { cores: number; nodePid: number | null; nodePct: number | null; loadersPct: number };
}

describe("bench load with worker processes", () => {
  test("two workers: one result with all their ops, the node's pid and CPU, and per-interval progress", async () => {
    const r = await run(["bench", "load", "--server", node.clientAddr, "--tls-dir", certs, "--seconds", "2", "--workers", "2", "--clients", "4", "--keys", String(loadKeys), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as LoadJson;
    expect(res.workers).toBe(2);
    expect(res.errors).toBe(0);
    expect(res.ops).toBeGreaterThan(0);
    expect(res.latencyMs.p99).toBeGreaterThanOrEqual(res.latencyMs.p50);
    expect(res.latencyMs.max).toBeGreaterThanOrEqual(res.latencyMs.p99);
    // Found by itself from the loopback address: the node's process, which did the work.
    expect(res.cpu.nodePid).toBe(node.proc.pid);
    expect(res.cpu.nodePct).toBeGreaterThan(0);
    expect(res.cpu.loadersPct).toBeGreaterThan(0);
    // Every increment both workers counted is in the node, and no more: the parent summed them all.
    let total = 0;
    for (let i = 0; i < loadKeys; i++) {
      const g = await run(["client", "--server", node.clientAddr, "--tls-dir", certs, "get", `bench:c:${i}`]);
      if (g.code === 0) total += Number(g.stdout.trim());
    }
    expect(total).toBe(res.ops);
    expect(r.stderr).toContain("load: incr, 4 clients in 2 processes");
    expect(r.stderr).toMatch(/load: 1s: \d+ ops\/s in the last \d+\.\d s, 0 errors; CPU node \d+%, load generators \d+%/);
  });

  test("the human summary prints throughput with the node's and the load generators' CPU", async () => {
    const r = await run(["bench", "load", "--server", node.clientAddr, "--tls-dir", certs, "--seconds", "1", "--workers", "2", "--clients", "2", "--keys", String(loadKeys)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("op incr, 2 clients in 2 load processes, batch 1:");
    expect(r.stdout).toMatch(/^throughput: [1-9]\d* ops\/s \(0 errors\)$/m);
    expect(r.stdout).toMatch(new RegExp(`^CPU \\(% of one core, \\d+ cores here\\): node \\d+% \\(pid ${node.proc.pid}\\), load generators \\d+%$`, "m"));
  });

  test("more workers than callers is a usage error, before any process starts", async () => {
    const r = await run(["bench", "load", "--server", node.clientAddr, "--tls-dir", certs, "--workers", "3", "--clients", "2"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: --workers must be an integer in 1..2");
  });

  test("a node that is not there: the workers' UNAVAILABLE is the error, exit 1, no summary", async () => {
    const r = await run(["bench", "load", "--server", "127.0.0.1:1", "--tls-dir", certs, "--seconds", "5", "--workers", "2", "--clients", "2"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: UNAVAILABLE");
    expect(r.stdout).toBe("");
  });
});
