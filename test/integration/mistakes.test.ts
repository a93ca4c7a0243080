// Operator mistakes the built binary must catch: a node whose port is taken fails before it
// replays anything, and `imdb cluster` whose nodes cannot start exits saying why instead of
// idling (or spinning) forever.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createServer, type Server } from "node:net";
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureBinary, run, startNode, stopSupervisor, tempDir, waitFor } from "./harness.ts";

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

describe("imdb cluster whose nodes are all gone", () => {
  test("exits once the last node has exited, saying so", async () => {
    const free = await takePort();
    open.pop()?.close();
    const clusterDir = join(dir.path, "cluster-gone");
    const proc = Bun.spawn([ensureBinary(), "cluster", "--nodes", "1", "--dir", clusterDir, "--base-port", String(free), "--durability", "none"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    try {
      let out = "";
      const reading = (async () => {
        for await (const c of proc.stdout) out += new TextDecoder().decode(c);
      })();
      const stderr = new Response(proc.stderr).text();
      await waitFor("the node's ready line", () => out.includes("[node-1] imdb node node-1 ready"), 30_000);
      const left = await run(["admin", "--server", `127.0.0.1:${free + 100}`, "--tls-dir", join(clusterDir, "certs"), "leave"]);
      expect(left.code).toBe(0);
      // Before the fix the command idled (or spun) forever here; the deadline fails the test.
      const code = await Promise.race([proc.exited, Bun.sleep(20_000).then(() => "still running")]);
      expect(code).toBe(0);
      await reading;
      const err = await stderr;
      expect(err).toContain("cluster: node-1 exited with code 0");
      expect(err).toContain("cluster: every node has exited");
    } finally {
      await stopSupervisor(proc);
    }
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

// A node on a second loopback address (127.0.0.2) stands for a host clients reach by an address
// that only its --hosts put in the certificate.
describe("node certificate renewal", () => {
  test("a certificate without the node's address is refused on SIGHUP; imdb certs renew keeps it and is taken", async () => {
    const certs = join(dir.path, "renew-certs");
    expect((await run(["certs", "init", "--dir", certs, "--nodes", "n1", "--hosts", "127.0.0.2", "--clients", "client"])).code).toBe(0);
    const node = await startNode("n1", ["--tls-dir", certs, "--data-dir", join(dir.path, "renew-n1"), "--peer-addr", "127.0.0.2:0", "--client-addr", "127.0.0.2:0"]);
    try {
      const status = () => run(["client", "--server", node.clientAddr, "--tls-dir", certs, "status"]);
      const serial = () => new X509Certificate(readFileSync(join(certs, "n1.crt"))).serialNumber;
      const reloads = () => (node.log().match(/certificates reloaded|certificate reload failed/g) ?? []).length;
      expect((await status()).code).toBe(0);
      const original = serial();

      // The mistake: a new pair signed without --hosts (what the old renewal steps made).
      renameSync(join(certs, "n1.crt"), join(dir.path, "n1.crt.orig"));
      renameSync(join(certs, "n1.key"), join(dir.path, "n1.key.orig"));
      expect((await run(["certs", "init", "--dir", certs, "--nodes", "n1", "--clients", ""])).code).toBe(0);
      let seen = reloads();
      node.proc.kill("SIGHUP");
      await waitFor("the reload attempt", () => reloads() > seen);
      expect(node.log()).toContain("certificate reload failed; keeping the old ones");
      expect(node.log()).toContain("does not name 127.0.0.2");
      // Still served with the old certificate: clients dialling 127.0.0.2 keep working.
      const after = await status();
      expect(after.stderr).toBe("");
      expect(after.code).toBe(0);

      // The procedure docs/operations.md gives: renew in place, which keeps the names.
      renameSync(join(dir.path, "n1.crt.orig"), join(certs, "n1.crt"));
      renameSync(join(dir.path, "n1.key.orig"), join(certs, "n1.key"));
      const renewed = await run(["certs", "renew", "--dir", certs, "n1"]);
      expect(renewed.code).toBe(0);
      expect(renewed.stdout).toContain("127.0.0.2");
      expect(serial()).not.toBe(original);
      seen = reloads();
      node.proc.kill("SIGHUP");
      await waitFor("the reload", () => reloads() > seen);
      expect(node.log()).toMatch(/certificates reloaded\n?$/);
      expect((await status()).code).toBe(0);
    } finally {
      node.proc.kill("SIGKILL");
    }
  });
});

describe("imdb admin member remove", () => {
  test("forgets a dead member at once (admin certificates only); refuses a live, own or unknown id", async () => {
    const certs = join(dir.path, "member-certs");
    expect((await run(["certs", "init", "--dir", certs, "--nodes", "m1,m2,m3", "--clients", "client", "--admins", "admin"])).code).toBe(0);
    const args = (id: string, seeds: string[] = []) => [
      "--tls-dir", certs, "--data-dir", join(dir.path, `member-${id}`), "--durability", "none", "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", ...(seeds.length > 0 ? ["--seeds", seeds.join(",")] : []),
    ];
    const m1 = await startNode("m1", args("m1"));
    const m2 = await startNode("m2", args("m2", [m1.peerAddr]));
    const m3 = await startNode("m3", args("m3", [m1.peerAddr]));
    try {
      const members = async (n: typeof m1) => {
        const r = await run(["client", "--server", n.clientAddr, "--tls-dir", certs, "--json", "members"]);
        return (JSON.parse(r.stdout) as { members: { id: string; status: string }[] }).members;
      };
      const statusOf = async (n: typeof m1, id: string) => (await members(n)).find((m) => m.id === id)?.status;
      const admin = (n: typeof m1, id: string, name = "admin") => run(["admin", "--server", n.clientAddr, "--tls-dir", certs, "--name", name, "member", "remove", id]);
      await waitFor("three alive members", async () => (await members(m1)).filter((m) => m.status === "alive").length === 3, 30_000);

      m3.proc.kill("SIGKILL");
      await waitFor("m3 dead on m1", async () => (await statusOf(m1, "m3")) === "dead", 30_000);

      const live = await admin(m1, "m2");
      expect(live.code).toBe(1);
      expect(live.stderr).toContain("FAILED_PRECONDITION: member m2 is alive, not dead");
      expect((await admin(m1, "m1")).stderr).toContain("FAILED_PRECONDITION: m1 is this node");
      expect((await admin(m1, "m9")).stderr).toContain("NOT_FOUND");
      const asClient = await admin(m1, "m3", "client");
      expect(asClient.stderr).toContain("PERMISSION_DENIED");
      expect(await statusOf(m1, "m3")).toBe("dead");

      const removed = await admin(m1, "m3");
      expect(removed.stderr).toBe("");
      expect(removed.stdout).toBe("removed m3\n");
      expect(await statusOf(m1, "m3")).toBeUndefined();
      expect(m1.log()).toContain("member removed by an operator");
      // The others hear that it left, and no longer count it as a failure.
      await waitFor("m3 left on m2", async () => (await statusOf(m2, "m3")) === "left", 15_000);
      expect(await statusOf(m1, "m3")).toBeUndefined();
    } finally {
      for (const n of [m1, m2, m3]) n.proc.kill("SIGKILL");
    }
  });
});
