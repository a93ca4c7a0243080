// The Redis front door of the built binary, driven by Debian's redis-cli as an operator would:
// TLS with client certificates by default, plaintext with --insecure, its port checked at start.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, createServer, type Server } from "node:net";
import { join } from "node:path";
import { binary, run, startNode, stopSupervisor, tempDir, waitFor, type NodeProc } from "./harness.ts";
import { sample } from "../node/prom.ts";

const dir = tempDir("resp");
const certs = join(dir.path, "certs");
const nodes: NodeProc[] = [];
let tlsNode: NodeProc;
let plainNode: NodeProc;

async function redisCli(args: string[], stdin?: string): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(["redis-cli", ...args], { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, out: out + err };
}

function portOf(n: NodeProc): string {
  if (n.respAddr === null) throw new Error(`node ${n.id} serves no Redis protocol`);
  return n.respAddr.split(":").at(-1)!;
}

const tlsArgs = (who: string) => ["--tls", "--cacert", join(certs, "ca.crt"), "--cert", join(certs, `${who}.crt`), "--key", join(certs, `${who}.key`)];

beforeAll(async () => {
  const made = await run(["certs", "init", "--dir", certs, "--nodes", "r1", "--clients", "app", "--admins", "ops"]);
  expect(made.code).toBe(0);
  tlsNode = await startNode("r1", ["--tls-dir", certs, "--data-dir", join(dir.path, "r1"), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", "--resp-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"]);
  nodes.push(tlsNode);
  plainNode = await startNode("r2", ["--insecure", "--data-dir", join(dir.path, "r2"), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", "--resp-addr", "127.0.0.1:0"]);
  nodes.push(plainNode);
}, 90_000);

afterAll(async () => {
  for (const n of nodes) n.proc.kill("SIGTERM");
  await Promise.all(nodes.map((n) => n.proc.exited));
  dir.cleanup();
});

describe("imdb node --resp-addr with redis-cli", () => {
  test("redis-cli --tls with a client certificate from the cluster CA: PING answers PONG", async () => {
    expect(await redisCli([...tlsArgs("app"), "-p", portOf(tlsNode), "PING"])).toEqual({ code: 0, out: "PONG\n" });
    expect(await redisCli([...tlsArgs("ops"), "-p", portOf(tlsNode), "ECHO", "hello"])).toEqual({ code: 0, out: "hello\n" });
  });

  test("redis-cli reading commands from stdin, -x, and --pipe (mass insertion) over TLS", async () => {
    const port = portOf(tlsNode);
    expect(await redisCli([...tlsArgs("app"), "-p", port], 'PING\nECHO "a b"\n')).toEqual({ code: 0, out: "PONG\na b\n" });
    expect(await redisCli([...tlsArgs("app"), "-p", port, "-x", "ECHO"], "from stdin")).toEqual({ code: 0, out: "from stdin\n" });
    const piped = await redisCli([...tlsArgs("app"), "-p", port, "--pipe"], "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n");
    expect(piped.code).toBe(0);
    expect(piped.out).toContain("errors: 0, replies: 2");
  });

  test("redis-benchmark over TLS, 20 clients, plain and pipelined (-P 16): every request answered", async () => {
    const port = portOf(tlsNode);
    for (const pipeline of ["1", "16"]) {
      const proc = Bun.spawn(["redis-benchmark", ...tlsArgs("app"), "-p", port, "-c", "20", "-n", "4000", "-P", pipeline, "-t", "ping", "--csv"], { stdout: "pipe", stderr: "pipe" });
      const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
      const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
      clearTimeout(timer);
      expect(code).toBe(0);
      // "PING_INLINE","rps",... and "PING_MBULK","rps",...: both forms of request, each run to the end.
      const rows = out.split("\n").filter((l) => l.startsWith('"PING_')).map((l) => Number(l.split(",")[1]?.replaceAll('"', "")));
      expect(rows.length).toBe(2);
      for (const rps of rows) expect(rps).toBeGreaterThan(0);
    }
  }, 150_000);

  test("without a client certificate, or in plaintext, the TLS port serves nothing", async () => {
    const noCert = await redisCli(["--tls", "--cacert", join(certs, "ca.crt"), "-p", portOf(tlsNode), "PING"]);
    expect(noCert.out).not.toContain("PONG");
    const plain = await redisCli(["-p", portOf(tlsNode), "PING"]);
    expect(plain.out).not.toContain("PONG");
  });

  test("with --insecure, plaintext redis-cli works", async () => {
    expect(await redisCli(["-p", portOf(plainNode), "PING"])).toEqual({ code: 0, out: "PONG\n" });
  });

  test("the node counts Redis commands in its metrics", async () => {
    const text = await (await fetch(`http://${tlsNode.metricsAddr}/metrics`)).text();
    expect(sample(text, "imdb_resp_commands_total", { command: "ping", status: "OK" })).toBeGreaterThanOrEqual(1);
    expect(text).toContain("# TYPE imdb_resp_clients gauge");
  });

  test("SIGTERM stops the node with an idle Redis connection open: it is closed and the node exits 0", async () => {
    const sock = connect({ host: "127.0.0.1", port: Number(portOf(plainNode)) });
    await new Promise<void>((r) => sock.once("connect", () => r()));
    const closed = new Promise<void>((r) => sock.once("close", () => r()));
    sock.on("error", () => undefined);
    plainNode.proc.kill("SIGTERM");
    expect(await Promise.race([plainNode.proc.exited, Bun.sleep(20_000).then(() => "still running")])).toBe(0);
    await closed;
  });

  test("imdb cluster (npm start) gives its node a Redis port, prints a redis-cli line, and that line works", async () => {
    // A base whose +100 and +200 are free too, found by binding all three (then let go).
    let base = 0;
    for (let tries = 0; tries < 20 && base === 0; tries++) {
      const candidate = 20_000 + Math.floor(Math.random() * 40_000);
      const held: Server[] = [];
      try {
        for (const p of [candidate, candidate + 100, candidate + 200]) {
          const srv = createServer();
          await new Promise<void>((resolve, reject) => {
            srv.once("error", reject);
            srv.listen(p, "127.0.0.1", () => resolve());
          });
          held.push(srv);
        }
        base = candidate;
      } catch {
        // taken: try another
      } finally {
        await Promise.all(held.map((srv) => new Promise((r) => srv.close(r))));
      }
    }
    expect(base).toBeGreaterThan(0);
    const clusterDir = join(dir.path, "cluster");
    const proc = Bun.spawn([binary, "cluster", "--nodes", "1", "--dir", clusterDir, "--base-port", String(base), "--durability", "none"], { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
    try {
      let out = "";
      void (async () => {
        for await (const c of proc.stdout) out += new TextDecoder().decode(c);
      })();
      await waitFor("the node's ready line", () => out.includes(`resp 127.0.0.1:${base + 200}\n`), 30_000);
      const line = out.split("\n").find((l) => l.trim().startsWith("redis-cli "));
      expect(line).toBeDefined();
      const args = line!.trim().split(/\s+/).slice(1);
      expect(args.slice(0, 2)).toEqual(["-p", String(base + 200)]);
      expect(await redisCli(args)).toEqual({ code: 0, out: "PONG\n" });
      proc.kill("SIGINT");
      expect(await Promise.race([proc.exited, Bun.sleep(20_000).then(() => "still running")])).toBe(0);
    } finally {
      await stopSupervisor(proc);
    }
  }, 60_000);

  test("a taken respAddr port fails the start at once, naming it, before the WAL is read", async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", () => r()));
    const port = (taken.address() as { port: number }).port;
    try {
      const r = await run(["node", "--id", "r3", "--insecure", "--data-dir", join(dir.path, "r3"), "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0", "--resp-addr", `127.0.0.1:${port}`]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`respAddr 127.0.0.1:${port} is in use`);
      expect(r.stderr).not.toContain("recovered");
    } finally {
      taken.close();
    }
  });
});
