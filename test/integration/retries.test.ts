// Safe retries through the built binary: a write acknowledged with request id X, then SIGKILL and a
// restart; the retry with X gets the first result and the counter does not move - with the id in
// the WAL, and with the WAL segment that held it deleted after snapshots (the table rides in them).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, startNode, tempDir, type NodeProc } from "./harness.ts";

setDefaultTimeout(120_000);

const dir = tempDir("retries");
const certs = join(dir.path, "certs");
const dataDir = join(dir.path, "data");
const config = join(dir.path, "node.yaml");
let node: NodeProc;

const nodeArgs = ["--config", config, "--data-dir", dataDir, "--tls-dir", certs, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0"];
const client = (args: string[]) => run(["client", "--server", node.clientAddr, "--tls-dir", certs, ...args]);
const admin = (args: string[]) => run(["admin", "--server", node.clientAddr, "--tls-dir", certs, ...args]);

async function killAndRestart(): Promise<void> {
  node.proc.kill("SIGKILL");
  await node.proc.exited;
  node = await startNode("node-1", nodeArgs);
}

beforeAll(async () => {
  const made = await run(["certs", "init", "--dir", certs, "--nodes", "node-1", "--clients", "client", "--admins", "admin"]);
  expect(made.code).toBe(0);
  // Small WAL segments and no timed snapshots, so the test decides when segments go.
  writeFileSync(config, "walSegmentBytesMax: 4096\nsnapshotIntervalMs: 0\nsnapshotWalBytes: 0\n");
  node = await startNode("node-1", nodeArgs);
});

afterAll(() => {
  node?.proc.kill("SIGKILL");
  dir.cleanup();
});

describe("safe retries through the binary", () => {
  test("SIGKILL right after an acked increment with id X: after a restart the retry with X returns the first result, the counter does not move", async () => {
    expect((await client(["incr", "ctr", "5", "--request-id", "incr-X"])).stdout).toBe("5\n");
    await killAndRestart();
    const retry = await client(["incr", "ctr", "5", "--request-id", "incr-X"]);
    expect(retry.code).toBe(0);
    expect(retry.stdout).toBe("5\n");
    expect((await client(["get", "ctr"])).stdout).toBe("5\n");
    // Another write gets its own (random) id and is applied.
    expect((await client(["incr", "ctr", "1"])).stdout).toBe("6\n");
    // The same id with a different request is refused and changes nothing.
    const reused = await client(["incr", "ctr", "7", "--request-id", "incr-X"]);
    expect(reused.code).toBe(1);
    expect(reused.stderr).toContain("FAILED_PRECONDITION");
    expect((await client(["get", "ctr"])).stdout).toBe("6\n");
  });

  test("the id survives snapshots that deleted the WAL segment holding it", async () => {
    expect((await client(["incr", "snap", "3", "--request-id", "incr-Y"])).stdout).toBe("3\n");
    const walDir = join(dataDir, "wal");
    const segmentsBefore = readdirSync(walDir).filter((n) => n.endsWith(".log"));
    for (let round = 0; round < 2; round++) {
      // Enough WAL to roll past the 4 KiB segments, then a snapshot (the store keeps two).
      for (let i = 0; i < 5; i++) expect((await client(["set", `pad-${round}-${i}`, "x".repeat(1500)])).code).toBe(0);
      expect((await admin(["snapshot"])).code).toBe(0);
    }
    const segmentsAfter = readdirSync(walDir).filter((n) => n.endsWith(".log"));
    expect(segmentsBefore.some((s) => !segmentsAfter.includes(s))).toBe(true);
    await killAndRestart();
    expect((await client(["incr", "snap", "3", "--request-id", "incr-Y"])).stdout).toBe("3\n");
    expect((await client(["get", "snap"])).stdout).toBe("3\n");
  });
});
