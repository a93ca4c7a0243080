// Operator mistakes the built binary must catch: a node whose port is taken fails before it
// replays anything, and `imdb cluster` whose nodes cannot start exits saying why instead of
// idling (or spinning) forever.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createServer, type Server } from "node:net";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureBinary, run, startNode, tempDir } from "./harness.ts";

setDefaultTimeout(90_000);

const dir = tempDir("mistakes");
const open: Server[] = [];
afterAll(() => {
  for (const s of open) s.close();
  dir.cleanup();
});

/** Holds a TCP port on 127.0.0.1 for the rest of the file, like another program would. */
async function takePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen({ host: "127.0.0.1", port: 0 }, () => r()));
  open.push(s);
  const addr = s.address();
  if (addr === null || typeof addr === "string") throw new Error("no port");
  return addr.port;
}

describe("a node whose port is taken", () => {
  test("exits 1 naming the address, before it reads its WAL", async () => {
    const dataDir = join(dir.path, "n1");
    const n = await startNode("n1", ["--insecure", "--data-dir", dataDir, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0"]);
    n.proc.kill("SIGTERM");
    expect(await n.proc.exited).toBe(0);

    const port = await takePort();
    const t0 = performance.now();
    const r = await run(["node", "--id", "n1", "--insecure", "--data-dir", dataDir, "--peer-addr", `127.0.0.1:${port}`, "--client-addr", "127.0.0.1:0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`peerAddr 127.0.0.1:${port} is in use by another process`);
    // Recovery logs these two lines; neither may appear before the port check fails.
    expect(r.stderr).not.toContain("replica identity");
    expect(r.stderr).not.toContain("recovered");
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  test("a taken client or metrics port is named too", async () => {
    const port = await takePort();
    const r = await run(["node", "--id", "n2", "--insecure", "--data-dir", join(dir.path, "n2"), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", "--metrics-addr", `127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`metricsAddr 127.0.0.1:${port} is in use`);
    expect(r.stderr).not.toContain("recovered");
  });
});

describe("imdb cluster whose node cannot start", () => {
  test("stops the other nodes and exits 1 with the node's reason", async () => {
    ensureBinary();
    const base = await takePort();
    // Before the fix the command never returned: the deadline (run's timeout) kills it and fails the test.
    const r = await run(["cluster", "--nodes", "2", "--dir", join(dir.path, "cluster"), "--base-port", String(base), "--durability", "none"], { timeoutMs: 45_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cluster: node-1 could not start (exit code 1): error: peerAddr 127.0.0.1:${base} is in use by another process`);
    expect(r.stderr).toContain("cluster: stopping the other nodes");
  });
});

describe("imdb node with a config file full of mistakes", () => {
  test("exits 2 listing every problem with the file's name, having touched nothing", async () => {
    const cfg = join(dir.path, "bad.yaml");
    const dataDir = join(dir.path, "never");
    writeFileSync(cfg, `dataDir: ${JSON.stringify(dataDir)}\npeerAdr: 127.0.0.1:7000\ndurability: fast\n`);
    const r = await run(["node", "--config", cfg, "--log-level", "loud"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      [
        "error: config: 3 problems:",
        `  ${cfg}: peerAdr: unknown field (did you mean peerAddr?)`,
        `  ${cfg}: durability: "fast" is not sync, none or interval:MS (1..60000)`,
        "  --log-level: must be one of debug, info, warn, error",
        "",
      ].join("\n"),
    );
    expect(existsSync(dataDir)).toBe(false);
  });
});
