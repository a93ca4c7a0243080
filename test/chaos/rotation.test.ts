// Certificate rotation on a running node: a new leaf from the same CA on disk + SIGHUP -> new
// connections are served with it (serial and validity checked on a raw TLS connection), without a
// restart, while a concurrent workload sees no failed operation; a broken file keeps the old one.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as tls from "node:tls";
import { issueCert, loadCa, validityFromDays } from "../../src/transport/certs.ts";
import { ImdbClient } from "../../src/transport/client.ts";
import { loadTlsDir, type TlsMaterial } from "../../src/transport/tls.ts";
import { run, startNode, tempDir, waitFor, type NodeProc } from "../integration/harness.ts";
import { checkAll } from "./checkers.ts";
import { History } from "./history.ts";
import { counterOnlyMix, finalReads, seededRandom, Workload, type KeySpace } from "./workload.ts";

setDefaultTimeout(60_000);

const dir = tempDir("rotation");
const certs = join(dir.path, "certs");
let node: NodeProc;
let clientTls: TlsMaterial;

/** The certificate a fresh TLS connection to addr is served with. */
async function servedCert(addr: string): Promise<tls.PeerCertificate> {
  const port = Number(addr.slice(addr.lastIndexOf(":") + 1));
  const sock = tls.connect({ host: "127.0.0.1", port, ca: clientTls.ca, cert: clientTls.cert, key: clientTls.key, ALPNProtocols: ["h2"], servername: "localhost" });
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once("secureConnect", () => resolve());
      sock.once("error", reject);
    });
    return sock.getPeerCertificate();
  } finally {
    sock.destroy();
  }
}

/** Writes a file the way an operator's tooling should: a temp file renamed over the old one. */
function replaceFile(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

beforeAll(async () => {
  const made = await run(["certs", "init", "--dir", certs, "--nodes", "node-1", "--clients", "client", "--admins", "admin"]);
  expect(made.code).toBe(0);
  clientTls = await loadTlsDir(certs, "client");
  node = await startNode("node-1", ["--data-dir", join(dir.path, "data"), "--tls-dir", certs, "--peer-addr", "127.0.0.1:0", "--client-addr", "127.0.0.1:0"]);
});

afterAll(() => {
  node?.proc.kill("SIGKILL");
  dir.cleanup();
});

describe("certificate rotation with SIGHUP", () => {
  test("new leaf served on new connections of both ports, no restart, no failed op", async () => {
    const oldClient = await servedCert(node.clientAddr);
    const oldPeer = await servedCert(node.peerAddr);
    expect(oldPeer.serialNumber).toBe(oldClient.serialNumber);

    const history = new History();
    const keys: KeySpace = { counters: 2, registers: 0, mvs: 0 };
    const c = new ImdbClient({ server: node.clientAddr, tls: clientTls, deadlineMs: 5000 });
    const workload = new Workload({ history, targets: () => [{ node: "node-1", client: c }], workers: 3, mix: counterOnlyMix, keys, random: seededRandom(7), pauseAfterErrorMs: 10, pauseMs: 1 });
    workload.start();
    await waitFor("some acknowledged ops before rotating", () => history.counts().ok >= 20);

    const ca = await loadCa(readFileSync(join(certs, "ca.crt"), "utf8"), readFileSync(join(certs, "ca.key"), "utf8"));
    const fresh = await issueCert(ca, "node", "node-1", validityFromDays(new Date(), 30));
    replaceFile(join(certs, "node-1.key"), fresh.keyPem);
    replaceFile(join(certs, "node-1.crt"), fresh.certPem);
    const pid = node.proc.pid;
    node.proc.kill("SIGHUP");

    const served = await waitFor("the new certificate on new client-port connections", async () => {
      const cert = await servedCert(node.clientAddr);
      return cert.serialNumber !== oldClient.serialNumber ? cert : undefined;
    }, 10_000);
    const peerServed = await servedCert(node.peerAddr);
    expect(peerServed.serialNumber).toBe(served.serialNumber);
    expect(new Date(served.valid_to).getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
    expect(new Date(served.valid_to).getTime()).toBeLessThan(Date.now() + 31 * 86_400_000);

    // A client dialling now verifies the new certificate against the same CA.
    const late = new ImdbClient({ server: node.clientAddr, tls: clientTls, deadlineMs: 5000 });
    expect((await late.status()).nodeId).toBe("node-1");
    late.close();
    const okAtRotation = history.counts().ok;
    await waitFor("more acknowledged ops after rotating", () => history.counts().ok >= okAtRotation + 20);
    await workload.stop();

    expect(node.proc.pid).toBe(pid);
    expect(node.proc.exitCode).toBeNull();
    expect(node.log()).toContain("certificates reloaded");
    expect(history.counts()).toMatchObject({ failed: 0, indeterminate: 0 });
    expect(checkAll(history.ops, await finalReads([{ node: "node-1", client: c }], keys))).toEqual([]);
    c.close();
  });

  // The node validates new material before swapping (it used to log "certificates reloaded" for an
  // unparsable certificate and then fail every new TLS handshake).
  test("a broken certificate file on SIGHUP: reload refused, the old certificate stays in service", async () => {
    const before = await servedCert(node.clientAddr);
    const crt = join(certs, "node-1.crt");
    const good = readFileSync(crt, "utf8");
    const reloads = () => (node.log().match(/certificates reloaded|reload failed/g) ?? []).length;
    const seen = reloads();
    replaceFile(crt, "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
    node.proc.kill("SIGHUP");
    try {
      await waitFor("the node to report the reload attempt", () => reloads() > seen, 10_000);
      expect(node.log()).toMatch(/reload failed/);
      expect((await servedCert(node.clientAddr)).serialNumber).toBe(before.serialNumber);
      const c = new ImdbClient({ server: node.clientAddr, tls: clientTls, deadlineMs: 5000 });
      expect(await c.increment("after-broken-reload", 1n)).toBe(1n);
      c.close();
    } finally {
      replaceFile(crt, good);
      node.proc.kill("SIGHUP");
    }
  });
});
