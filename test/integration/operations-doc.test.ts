// docs/operations.md followed end to end by an operator on three loopback "hosts" (127.0.0.1-3),
// with the built binary: every command runs as the doc prints it (taken from the doc's code
// blocks, with only the host names, ports and paths swapped for this machine's), so a doc whose
// commands stop working fails here. Each step names the doc section it follows.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { connect } from "node:tls";
import { dirname, join } from "node:path";
import type { Subprocess } from "bun";
import { ensureBinary, repoRoot, tempDir, waitFor } from "./harness.ts";

setDefaultTimeout(60_000);

const doc = readFileSync(join(repoRoot, "docs", "operations.md"), "utf8");
const bin = ensureBinary();
const root = tempDir("opsdoc");
const hosts = [1, 2, 3] as const;
type Host = (typeof hosts)[number];

/** The text under a Markdown heading, up to the next heading of the same or a higher level. */
function section(heading: string): string {
  const lines = doc.split("\n");
  const at = lines.findIndex((l) => l.replace(/^#+ /, "") === heading && l.startsWith("#"));
  if (at < 0) throw new Error(`docs/operations.md has no heading "${heading}"`);
  const level = (/^#+/.exec(lines[at] ?? "")?.[0] ?? "#").length;
  let fenced = false;
  let end = lines.length;
  for (let i = at + 1; i < lines.length; i++) {
    const l = lines[i] ?? "";
    if (l.startsWith("```")) fenced = !fenced;
    // A "# comment" inside a code block is not a heading.
    else if (!fenced && /^#+ /.test(l) && (/^#+/.exec(l)?.[0] ?? "").length <= level) {
      end = i;
      break;
    }
  }
  return lines.slice(at + 1, end).join("\n");
}

/** The fenced code blocks of a section, in order. */
function blocks(heading: string, lang: string): string[] {
  return [...section(heading).matchAll(new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1] ?? "");
}

/** Swaps what only makes sense on the doc's hosts for this machine's; each `from` must be in the text, so a doc edit that moves it fails loudly. */
function swap(text: string, pairs: [string, string][]): string {
  let out = text;
  for (const [from, to] of pairs) {
    if (!out.includes(from)) throw new Error(`expected ${JSON.stringify(from)} in the doc's text:\n${out}`);
    out = out.split(from).join(to);
  }
  return out;
}

/** Free TCP ports on every interface (the doc's nodes listen on 0.0.0.0): peer, client, metrics per host. */
function freePorts(n: number): number[] {
  const servers = Array.from({ length: n }, () => Bun.listen({ hostname: "0.0.0.0", port: 0, socket: { data() {} } }));
  const ports = servers.map((s) => s.port);
  for (const s of servers) s.stop(true);
  return ports;
}
const ports = freePorts(9);
const port = { peer: (h: Host) => ports[h - 1]!, client: (h: Host) => ports[h + 2]!, metrics: (h: Host) => ports[h + 5]! };
const ip = (h: Host) => `127.0.0.${h}`;

/** Where each party keeps its files: the trusted machine (with ca.key), the operator's client machine, each host's / . */
const trusted = join(root.path, "trusted");
const hostRoot = (h: Host) => join(root.path, `host${h}`);
const clientCerts = join(root.path, "client", "etc", "imdb", "client-certs");

/** The doc's names, addresses and paths for host `h` (written for db2, the doc's example host). */
function onHost(text: string, h: Host): string {
  const map = new Map<string, string>([
    ["/etc/imdb/client-certs", clientCerts],
    ["/etc/imdb", join(hostRoot(h), "etc", "imdb")],
    ["/var/lib/imdb", join(hostRoot(h), "var", "lib", "imdb")],
    ["0.0.0.0:7000", `0.0.0.0:${port.peer(h)}`],
    ["0.0.0.0:7100", `0.0.0.0:${port.client(h)}`],
    ["0.0.0.0:9100", `0.0.0.0:${port.metrics(h)}`],
  ]);
  // The other hosts the doc names keep their own addresses.
  for (const o of hosts) {
    map.set(`db${o}.example.net:7000`, `${ip(o)}:${port.peer(o)}`);
    map.set(`db${o}.example.net:7100`, `${ip(o)}:${port.client(o)}`);
    map.set(`db${o}.example.net:9100`, `${ip(o)}:${port.metrics(o)}`);
  }
  // One pass, longest first, so a replacement is never rewritten again.
  const keys = [...map.keys()].sort((a, b) => b.length - a.length).map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return text.replace(new RegExp(keys.join("|"), "g"), (k) => map.get(k) ?? k);
}

/** The doc's db2 text for host h (db2 -> dbH, then addresses). */
const forHost = (text: string, h: Host) => onHost(text.replace(/\bdb2\b/g, `db${h}`), h);

const env = { ...process.env, PATH: `${dirname(bin)}:${process.env.PATH ?? ""}` };

interface Shell {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs doc shell text as an operator would type it (bash, `imdb` on PATH). */
async function sh(script: string, cwd: string): Promise<Shell> {
  const p = Bun.spawn(["bash", "-o", "pipefail", "-c", script], { cwd, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

async function ok(script: string, cwd: string): Promise<string> {
  const r = await sh(script, cwd);
  if (r.code !== 0) throw new Error(`exit ${r.code} from:\n${script}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r.stdout;
}

interface Node {
  host: Host;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  log(): string;
  stdout(): string;
}
const running = new Map<Host, Node>();

afterAll(() => {
  for (const n of running.values()) {
    n.proc.kill("SIGCONT");
    n.proc.kill("SIGKILL");
  }
  root.cleanup();
});

/** Starts a node with the doc's command line (through bash `exec`, so the pid is the node's) and waits for its ready line. */
async function startNode(h: Host, command: string): Promise<Node> {
  const proc = Bun.spawn(["bash", "-c", `exec ${command}`], { cwd: hostRoot(h), env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let out = "";
  let err = "";
  void (async () => {
    for await (const c of proc.stderr) err += new TextDecoder().decode(c);
  })();
  void (async () => {
    for await (const c of proc.stdout) out += new TextDecoder().decode(c);
  })();
  const node: Node = { host: h, proc, log: () => err, stdout: () => out };
  running.set(h, node);
  await waitFor(`db${h} to print its ready line`, () => {
    if (proc.exitCode !== null) throw new Error(`db${h} exited ${proc.exitCode}:\n${err}`);
    return out.includes(" ready: ");
  }, 20_000);
  return node;
}

/** The "Check it" block's export line for host h: the client and admin commands of later steps run after it. */
const checkBlock = blocks("3. Check it", "sh")[0] ?? "";
const exportLine = (h: Host) => forHost(checkBlock.split("\n").find((l) => l.startsWith("export ")) ?? "", h).replace(/\s+#.*$/, "");
const onClient = (h: Host, command: string) => ok(`${exportLine(h)}\n${command}`, join(root.path, "client"));

/** `imdb client --name app members` on host h: ID -> STATUS from its ID ADDRESS STATUS INCARNATION table. */
async function members(h: Host): Promise<Map<string, string>> {
  const out = await onClient(h, "imdb client --name app members");
  return new Map(out.trim().split("\n").slice(1).map((l) => l.split(/\s+/)).map((r) => [r[0] ?? "", r[2] ?? ""]));
}

/** One unlabelled sample from host h's /metrics (the doc's curl, without a shell per poll). */
async function metric(h: Host, name: string): Promise<number> {
  const text = await (await fetch(`http://${ip(h)}:${port.metrics(h)}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} on db${h}`);
  return Number(line.split(" ")[1]);
}

/** The serial number of the certificate host h's client port serves now, to a client that checks the name it dialled. */
const served = (h: Host): Promise<string> =>
  new Promise((resolve, reject) => {
    // Hostname verification on: the node's certificate must name the address dialled.
    const s = connect({ host: ip(h), port: port.client(h), ca: readFileSync(join(clientCerts, "ca.crt")), cert: readFileSync(join(clientCerts, "app.crt")), key: readFileSync(join(clientCerts, "app.key")), ALPNProtocols: ["h2"] }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(serial);
    });
    s.on("error", reject);
  });

describe("docs/operations.md, end to end on 127.0.0.1-3", () => {
  test("Deploying on several hosts, 1. Make the certificates", async () => {
    const [init] = blocks("1. Make the certificates (once, on a trusted machine)", "sh");
    mkdirSync(trusted, { recursive: true });
    await ok(swap(init ?? "", [["db1.example.net,db2.example.net,db3.example.net,10.0.0.11,10.0.0.12,10.0.0.13", hosts.map(ip).join(",")]]), trusted);
    for (const f of ["ca.crt", "ca.key", "db1.crt", "db1.key", "db2.crt", "db3.key", "app.crt", "app.key", "ops.crt", "ops.key"]) expect(existsSync(join(trusted, "certs", f))).toBe(true);
    // "Copy to each host only what it needs: ca.crt, <id>.crt and <id>.key ... chmod 600 on keys."
    for (const h of hosts) {
      const dir = join(hostRoot(h), "etc", "imdb", "certs");
      mkdirSync(dir, { recursive: true });
      for (const f of ["ca.crt", `db${h}.crt`, `db${h}.key`]) copyFileSync(join(trusted, "certs", f), join(dir, f));
      chmodSync(join(dir, `db${h}.key`), 0o600);
    }
    // The "Check it" client folder holds what its comment lists ("# ca.crt, app.crt/.key, ..."), and that is enough for its commands.
    mkdirSync(clientCerts, { recursive: true });
    const listed = (/IMDB_TLS_DIR=\S+\s+#\s*(.*)/.exec(checkBlock)?.[1] ?? "").split(/,\s*/).flatMap((f) => (f.endsWith("/.key") ? [f.replace("/.key", ""), f.replace(".crt/.key", ".key")] : [f]));
    expect(listed).toContain("ca.crt");
    for (const f of listed) copyFileSync(join(trusted, "certs", f), join(clientCerts, f));
    const names = new X509Certificate(readFileSync(join(trusted, "certs", "db2.crt"))).subjectAltName ?? "";
    for (const h of hosts) expect(names).toContain(`IP Address:${ip(h)}`);
  });

  test("2. Configure each node: one YAML file per host, started with imdb node --config", async () => {
    const [yaml] = blocks("2. Configure each node", "yaml");
    const [start] = blocks("2. Configure each node", "sh");
    for (const h of hosts) {
      let y = yaml ?? "";
      // "empty on the very first node"
      if (h === 1) y = swap(y, [["seeds: [db1.example.net:7000]", "seeds: []"]]);
      const file = forHost(y, h);
      const path = /^# (\S+)/.exec(file)?.[1] ?? "";
      expect(path).toBe(join(hostRoot(h), "etc", "imdb", `db${h}.yaml`));
      writeFileSync(path, file);
      expect(file).toContain(`advertiseAddr: ${ip(h)}:${port.peer(h)}`);
    }
    for (const h of hosts) {
      const n = await startNode(h, forHost((start ?? "").trim(), h));
      // "When the node is ready to serve it prints one line on stdout, e.g. ..."
      const example = /`(imdb node db2 ready: [^`]*)`/.exec(section("2. Configure each node"))?.[1] ?? "";
      expect(n.stdout()).toBe(`${forHost(example, h)}\n`);
    }
  });

  test("3. Check it: status, members, admin stats, metrics", async () => {
    const lines = checkBlock.split("\n").filter((l) => l.startsWith("imdb ") || l.startsWith("curl "));
    expect(lines.length).toBe(4);
    for (const h of hosts) {
      // "every node alive?": members converge within a few gossip rounds.
      await waitFor(`three alive members on db${h}`, async () => [...(await members(h)).values()].filter((s) => s === "alive").length === 3, 20_000, 200);
      const [status, memberList, stats, curl] = await Promise.all(lines.map((l) => onClient(h, forHost(l, h))));
      expect(status).toContain(`node:        db${h}`);
      expect(status).toContain("members:     3 alive / 3");
      for (const o of hosts) expect(memberList).toMatch(new RegExp(`db${o}\\s+${ip(o).replace(/\./g, "\\.")}:${port.peer(o)}\\s+alive`));
      expect(stats).toContain("replica:");
      expect(curl).toContain('imdb_members{state="alive"} 3');
    }
  });

  test("writing on one host, reading on the others (README, Run it)", async () => {
    expect(await onClient(1, "imdb client --name app incr hits 5")).toBe("5\n");
    expect(await onClient(2, "imdb client --name app set greeting hello")).toBe("OK\n");
    for (const h of hosts) {
      await waitFor(`db${h} to read hits and greeting`, async () =>
        (await onClient(h, "imdb client --name app get hits")) === "5\n" && (await onClient(h, "imdb client --name app get greeting")) === "hello\n", 10_000, 100);
    }
  });

  test("Certificates and rotation: imdb certs renew, copy, kill -HUP, one node at a time", async () => {
    const rotation = section("Certificates and rotation");
    for (const cmd of ["imdb certs renew --dir ./certs db2", "imdb certs renew --dir ./certs app,ops"]) expect(rotation).toContain(`\`${cmd}\``);
    for (const h of hosts) {
      const before = await served(h);
      const renewed = await ok(`imdb certs renew --dir ./certs db${h}`, trusted);
      // "prints those names": every --hosts entry the certificate was made with.
      for (const o of hosts) expect(renewed).toContain(ip(o));
      expect(existsSync(join(trusted, "certs", `db${h}.crt.old`))).toBe(true);
      const fresh = new X509Certificate(readFileSync(join(trusted, "certs", `db${h}.crt`)));
      expect(fresh.serialNumber).not.toBe(new X509Certificate(readFileSync(join(trusted, "certs", `db${h}.crt.old`))).serialNumber);
      // "Copy the new pair over the node's files and kill -HUP it"
      for (const f of [`db${h}.crt`, `db${h}.key`]) copyFileSync(join(trusted, "certs", f), join(hostRoot(h), "etc", "imdb", "certs", f));
      const node = running.get(h)!;
      await ok(`kill -HUP ${node.proc.pid}`, hostRoot(h));
      await waitFor(`db${h} to reload its certificate`, () => node.log().includes("certificates reloaded"), 10_000);
      expect(node.log()).not.toContain("certificate reload failed");
      // New connections get the new certificate, and it still names the address clients dial.
      const now = (await served(h)).toUpperCase();
      expect(now).toBe(fresh.serialNumber.toUpperCase());
      expect(now).not.toBe(before.toUpperCase());
      // "check imdb client members in between"
      expect([...(await members(h)).values()].filter((s) => s === "alive").length).toBe(3);
    }
    // "imdb certs init --nodes db2 with an existing CA and without --hosts ... is refused (exit 2) naming those names"
    expect(rotation).toContain("`imdb certs init --nodes db2` with an existing CA and without `--hosts`");
    const noHosts = await sh("imdb certs init --dir ./certs --nodes db4", trusted);
    expect(noHosts.code).toBe(2);
    expect(noHosts.stderr).toContain("127.0.0.2");
    expect(existsSync(join(trusted, "certs", "db4.crt"))).toBe(false);
    // "Expiry: ... renew well before notAfter (openssl x509 -enddate -noout -in db2.crt)", when openssl is installed.
    const expiry = /\(`(openssl x509 -enddate -noout -in db2\.crt)`\)/.exec(rotation)?.[1];
    expect(expiry).toBeDefined();
    if (Bun.which("openssl") !== null) expect(await ok(expiry ?? "", join(trusted, "certs"))).toMatch(/^notAfter=.* GMT\n$/);
    // Client and admin certificates are renewed the same way.
    expect(await ok("imdb certs renew --dir ./certs app,ops", trusted)).toContain("app");
    for (const f of readdirSync(clientCerts).filter((f) => f !== "ca.crt")) copyFileSync(join(trusted, "certs", f), join(clientCerts, f));
    expect(await onClient(3, "imdb client --name app get hits")).toBe("5\n");
    expect(await onClient(3, "imdb admin --name ops stats")).toContain("replica:");
  });

  const backupName = "db2-2026-11-30.imdb-backup";
  test("Backup and restore, Taking a backup: imdb admin backup --out FILE", async () => {
    const [take] = blocks("Taking a backup", "sh");
    const [command, printed] = (take ?? "").trim().split("\n");
    const out = await ok(onHost(command ?? "", 2), trusted);
    // The line the doc shows under the command, with this run's figures.
    const shape = (printed ?? "").replace(/^# /, "").replace(/\d+ bytes/, "\\d+ bytes").replace(/LSN \d+/, "LSN \\d+").replace(/sha256 \S+/, "sha256 ([0-9a-f]{64})");
    const m = new RegExp(`^${shape}\\n$`).exec(out);
    expect(m).not.toBeNull();
    expect(m?.[1]).toBe(new Bun.CryptoHasher("sha256").update(readFileSync(join(trusted, backupName))).digest("hex"));
  });

  test("4. When a host is gone for good: db3 dies; a delete's record waits for it (Deleted keys and dead members)", async () => {
    // Writes after the backup: the restored node must get them from the others.
    expect(await onClient(1, "imdb client --name app set after-backup yes")).toBe("OK\n");
    await waitFor("db3 to read after-backup", async () => (await onClient(3, "imdb client --name app get after-backup")) === "yes\n", 10_000, 100);
    const db3 = running.get(3)!;
    db3.proc.kill("SIGKILL");
    await db3.proc.exited;
    running.delete(3);
    await waitFor("db3 dead on db1", async () => (await members(1)).get("db3") === "dead", 30_000, 200);
    // "A dead member that is not yet reaped or removed holds that back: imdb_tombstone_oldest_age_seconds grows"
    expect(section("4. When a host is gone for good")).toContain("`imdb_tombstone_oldest_age_seconds` grows");
    expect(await onClient(1, "imdb client --name app del hits")).toContain("1");
    await waitFor("the delete's record to wait for db3 on db1", async () => (await metric(1, "imdb_tombstone_oldest_age_seconds")) >= 2, 15_000, 200);
    expect(await metric(1, "imdb_tombstones")).toBeGreaterThan(0);
  });

  test("Restoring: stop the node, move its folder away, imdb node --restore FILE; no writes until every member answered", async () => {
    // "A process supervisor should send SIGTERM to stop it: ... exits 0."
    const old = running.get(2)!;
    old.proc.kill("SIGTERM");
    expect(await old.proc.exited).toBe(0);
    // "1. Give the node an empty (or new) dataDir: stop the node, move its old folder away"
    const dataDir = join(hostRoot(2), "var", "lib", "imdb");
    renameSync(dataDir, `${dataDir}.old`);
    copyFileSync(join(trusted, backupName), join(hostRoot(2), backupName));
    const [restore] = blocks("Restoring", "sh");
    // db1, the only other member, does not answer for a while (stopped): the restored node waits for it.
    const db1 = running.get(1)!;
    db1.proc.kill("SIGSTOP");
    try {
      const n = await startNode(2, onHost((restore ?? "").trim(), 2));
      expect(n.log()).toContain("restored backup: starting as a new replica");
      expect(n.log()).toMatch(/replica identity.*new.*restored/);
      // The backup's data is served at once ...
      expect(await onClient(2, "imdb client --name app get greeting")).toBe("hello\n");
      // ... but no write until every member has answered (UNAVAILABLE, "try another node"; imdb_replica_quarantined is 1).
      const refused = await sh(`${exportLine(2)}\nimdb client --name app --timeout 2000 set restored yes`, root.path);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("UNAVAILABLE");
      expect(refused.stderr).toContain("try another node");
      expect(await metric(2, "imdb_replica_quarantined")).toBe(1);
    } finally {
      db1.proc.kill("SIGCONT");
    }
    await waitFor("db2 out of quarantine", async () => (await metric(2, "imdb_replica_quarantined")) === 0, 20_000, 100);
    expect(await onClient(2, "imdb client --name app set restored yes")).toBe("OK\n");
    // "4. In a cluster, the restored node rejoins and anti-entropy brings it up to date with the others"
    await waitFor("db2 to read the write made after the backup", async () => (await onClient(2, "imdb client --name app get after-backup")) === "yes\n", 20_000, 100);
    await waitFor("db1 to read db2's new write", async () => (await onClient(1, "imdb client --name app get restored")) === "yes\n", 20_000, 100);
    // The delete made after the backup wins over the backup's copy of the key.
    await waitFor("db2 to lose the deleted key", async () => (await sh(`${exportLine(2)}\nimdb client --name app get hits`, root.path)).stderr.includes("NOT_FOUND"), 20_000, 100);
    // The restored node joined after db3 died: it does not list it, and does not wait for it.
    expect((await members(2)).has("db3")).toBe(false);
  });

  test("4. When a host is gone for good: imdb admin member remove db3; collection goes on without it", async () => {
    const [remove] = blocks("4. When a host is gone for good", "sh");
    const line = (remove ?? "").trim();
    const printed = /# prints: (.*)$/.exec(line)?.[1];
    expect(printed).toBe("removed db3");
    const command = line.replace(/\s+#.*$/, "");
    expect(await onClient(1, command)).toBe(`${printed}\n`);
    expect((await members(1)).has("db3")).toBe(false);
    // "running the command against each of them forgets it there at once too": db2, restored after db3 died, never knew it.
    const again = await sh(`${exportLine(2)}\n${command}`, root.path);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('NOT_FOUND: no member "db3" is known to this node');
    // "Removing the member ... lets collection go on without it"
    for (const h of [1, 2] as const) await waitFor(`db${h} to collect the delete`, async () => (await metric(h, "imdb_tombstones")) === 0, 30_000, 200);
  });

  test("4. When a host is gone for good: the removed member back with its old data is discarded and refilled", async () => {
    // "a member removed or reaped that comes back with its old data is told so": it discards it, rejoins empty.
    const [start] = blocks("2. Configure each node", "sh");
    const back = await startNode(3, forHost((start ?? "").trim(), 3));
    await waitFor("db3 to discard its old data", () => back.log().includes("discarding it and rejoining as a new, empty replica"), 20_000);
    // "moves its data folder aside to <dataDir>.discarded-<time>"
    await waitFor("db3's old folder moved aside", () => readdirSync(join(hostRoot(3), "var", "lib")).some((f) => /^imdb\.discarded-/.test(f)), 10_000);
    await waitFor("db3 to be refilled", async () => (await sh(`${exportLine(3)}\nimdb client --name app get restored`, root.path)).stdout === "yes\n", 30_000, 200);
    // Its old copy of the deleted key did not come back.
    const hits = await sh(`${exportLine(3)}\nimdb client --name app get hits`, root.path);
    expect(hits.code).toBe(1);
    expect(hits.stderr).toContain("NOT_FOUND");
    expect((await onClient(1, "imdb client --name app get hits").catch((e: unknown) => String(e)))).toContain("NOT_FOUND");
    await waitFor("db3 alive again on db1", async () => (await members(1)).get("db3") === "alive", 20_000, 200);
  });

  // What the doc's "Restoring" says of a backup taken after the cluster collected deletes: the
  // backup carries the collection generation of its node, so restored while the members have
  // collected nothing since, the node keeps its data and takes writes once they answered.
  test("Restoring, in a cluster that has collected deletes: a backup taken since keeps its data", async () => {
    expect(section("Restoring")).toContain("carries its node's collection generation");
    expect(await metric(1, "imdb_collection_generation")).toBeGreaterThan(0);
    const file = "db1-after-collection.imdb-backup";
    const [take] = blocks("Taking a backup", "sh");
    const command = (take ?? "").trim().split("\n")[0] ?? "";
    await ok(onHost(swap(command, [["db2.example.net", "db1.example.net"], ["db2-2026-11-30.imdb-backup", file]]), 1), trusted);
    const old = running.get(2)!;
    old.proc.kill("SIGTERM");
    expect(await old.proc.exited).toBe(0);
    const dataDir = join(hostRoot(2), "var", "lib", "imdb");
    renameSync(dataDir, `${dataDir}.old2`);
    copyFileSync(join(trusted, file), join(hostRoot(2), file));
    const [restore] = blocks("Restoring", "sh");
    const n = await startNode(2, onHost(swap((restore ?? "").trim(), [["db2-2026-11-30.imdb-backup", file]]), 2));
    await waitFor("db2 to take writes again", () => n.log().includes("taking writes"), 30_000);
    expect(n.log()).not.toContain("discarding it and rejoining");
    expect((await sh(`${exportLine(2)}\nimdb client --name app get restored`, root.path)).stdout).toBe("yes\n");
  });

  test("graceful leave: imdb admin leave, the node exits 0 and is listed as left", async () => {
    expect(section("4. When a host is gone for good")).toContain("`imdb admin leave`");
    const db3 = running.get(3)!;
    expect(await onClient(3, "imdb admin --name ops leave")).toMatch(/^OK: left; db[12] holds the departure\n$/);
    expect(await db3.proc.exited).toBe(0);
    running.delete(3);
    await waitFor("db3 left on db1", async () => (await members(1)).get("db3") === "left", 10_000, 100);
    for (const h of [1, 2] as const) {
      const n = running.get(h)!;
      n.proc.kill("SIGTERM");
      expect(await n.proc.exited).toBe(0);
      running.delete(h);
    }
  });
});
