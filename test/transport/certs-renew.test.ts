// Renewing a certificate must keep every name clients dial it by: `imdb certs renew` copies the
// role and SANs of the certificate it replaces, `certs init` refuses a node certificate without
// the --hosts its siblings carry, and a node refuses (on SIGHUP) one that drops a name it is dialled by.
import { afterAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertError, certNames, initCerts, issueCert, loadCa, renewCerts, validityFromDays } from "../../src/transport/certs.ts";
import { addressedHosts, namesLost } from "../../src/node/cert-names.ts";

const root = mkdtempSync(join(tmpdir(), "imdb-renew-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const hosts = ["db1.example.net", "db2.example.net", "10.0.0.11", "10.0.0.12"];
let n = 0;
async function freshDir(): Promise<string> {
  const dir = join(root, `c${n++}`);
  await initCerts({ dir, nodes: ["db1", "db2"], clients: ["app"], admins: ["ops"], hosts, days: 30, force: false });
  return dir;
}
const read = (dir: string, f: string) => readFileSync(join(dir, f), "utf8");
const sansOf = (pem: string) => certNames(pem, "x").sans.map((s) => `${s.type}:${s.value}`);

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

describe("imdb certs renew", () => {
  test("keeps the role, CN and every SAN; new key, serial and validity, signed by the same CA; the old pair kept", async () => {
    const dir = await freshDir();
    const before = read(dir, "db2.crt");
    const keyBefore = read(dir, "db2.key");
    const out = await renewCerts({ dir, names: ["db2"], addHosts: [], days: 90 });
    const after = read(dir, "db2.crt");
    expect(sansOf(after)).toEqual(sansOf(before));
    expect(sansOf(after)).toEqual(["dns:db2", "dns:localhost", "ip:127.0.0.1", ...hosts.map((h) => (/^\d/.test(h) ? `ip:${h}` : `dns:${h}`))]);
    expect(certNames(after, "x")).toMatchObject({ role: "node", name: "db2" });
    const a = new X509Certificate(after);
    const b = new X509Certificate(before);
    expect(a.serialNumber).not.toBe(b.serialNumber);
    expect(a.subject).toBe(b.subject);
    expect(a.keyUsage).toEqual(b.keyUsage);
    expect(a.verify(new X509Certificate(read(dir, "ca.crt")).publicKey)).toBe(true);
    expect(new Date(a.validTo).getTime()).toBeGreaterThan(Date.now() + 89 * 86_400_000);
    expect(read(dir, "db2.key")).not.toBe(keyBefore);
    expect(read(dir, "db2.crt.old")).toBe(before);
    expect(read(dir, "db2.key.old")).toBe(keyBefore);
    expect(out[0]?.sans).toContain("db2.example.net");
  });

  test("an admin stays an admin (client-only), with its own SAN; --add-hosts extends node certificates only", async () => {
    const dir = await freshDir();
    await renewCerts({ dir, names: ["ops", "db1"], addHosts: ["db1.new.example.net"], days: 30 });
    expect(certNames(read(dir, "ops.crt"), "x")).toMatchObject({ role: "admin", name: "ops" });
    expect(sansOf(read(dir, "ops.crt"))).toEqual(["dns:ops"]);
    expect(new X509Certificate(read(dir, "ops.crt")).keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]);
    expect(sansOf(read(dir, "db1.crt"))).toContain("dns:db1.new.example.net");
    expect(sansOf(read(dir, "db1.crt"))).toContain("dns:db2.example.net");
  });

  test("refuses, changing nothing, without the certificate it replaces", async () => {
    const dir = await freshDir();
    renameSync(join(dir, "db2.crt"), join(dir, "db2.crt.away"));
    const db1 = read(dir, "db1.crt");
    const err = await rejection(renewCerts({ dir, names: ["db1", "db2"], addHosts: [], days: 30 }));
    expect(err).toBeInstanceOf(CertError);
    expect(err.message).toContain("db2.crt is missing");
    expect(read(dir, "db1.crt")).toBe(db1);
    expect(existsSync(join(dir, "db1.crt.old"))).toBe(false);
  });

  test("refuses a certificate another CA signed", async () => {
    const dir = await freshDir();
    const other = await freshDir();
    renameSync(join(other, "db2.crt"), join(dir, "db2.crt"));
    const err = await rejection(renewCerts({ dir, names: ["db2"], addHosts: [], days: 30 }));
    expect(err.message).toContain("was not signed by");
  });
});

describe("imdb certs init next to node certificates with --hosts", () => {
  test("renewing by the old procedure (move the pair away, init --nodes without --hosts) is refused, naming the hosts", async () => {
    const dir = await freshDir();
    renameSync(join(dir, "db2.crt"), join(root, "db2.crt.moved"));
    renameSync(join(dir, "db2.key"), join(root, "db2.key.moved"));
    const err = await rejection(initCerts({ dir, nodes: ["db2"], clients: [], admins: [], hosts: null, days: 30, force: false }));
    expect(err).toBeInstanceOf(CertError);
    for (const h of hosts) expect(err.message).toContain(h);
    expect(err.message).toContain(`imdb certs renew --dir ${dir} db2`);
    expect(existsSync(join(dir, "db2.crt"))).toBe(false);
  });

  test("given --hosts (even empty, on purpose) it signs as asked", async () => {
    const dir = await freshDir();
    await initCerts({ dir, nodes: ["db3"], clients: [], admins: [], hosts: ["db3.example.net"], days: 30, force: false });
    expect(sansOf(read(dir, "db3.crt"))).toContain("dns:db3.example.net");
    await initCerts({ dir, nodes: ["db4"], clients: [], admins: [], hosts: [], days: 30, force: false });
    expect(sansOf(read(dir, "db4.crt"))).toEqual(["dns:db4", "dns:localhost", "ip:127.0.0.1"]);
  });
});

describe("the names a node is dialled by", () => {
  test("are the advertised (or peer) address and the client address, wildcards left out", () => {
    expect(addressedHosts({ peerAddr: "0.0.0.0:7000", advertiseAddr: "db2.example.net:7000", clientAddr: "0.0.0.0:7100" })).toEqual(["db2.example.net"]);
    expect(addressedHosts({ peerAddr: "10.0.0.12:7000", advertiseAddr: "", clientAddr: "[::]:7100" })).toEqual(["10.0.0.12"]);
    expect(addressedHosts({ peerAddr: "[::1]:7000", advertiseAddr: "", clientAddr: "127.0.0.2:7100" })).toEqual(["::1", "127.0.0.2"]);
    // The Redis port's host: node-redis and ioredis check the certificate against it.
    expect(addressedHosts({ peerAddr: "10.0.0.12:7000", advertiseAddr: "", clientAddr: "10.0.0.12:7100", respAddr: "redis.example.net:6379" })).toEqual(["10.0.0.12", "redis.example.net"]);
    expect(addressedHosts({ peerAddr: "10.0.0.12:7000", advertiseAddr: "", clientAddr: "10.0.0.12:7100", respAddr: "" })).toEqual(["10.0.0.12"]);
  });

  test("a certificate that drops one the current certificate has is caught; one the current lacked too is not", async () => {
    const dir = await freshDir();
    const ca = await loadCa(read(dir, "ca.crt"), read(dir, "ca.key"));
    const bare = Buffer.from((await issueCert(ca, "node", "db2", validityFromDays(new Date(), 1))).certPem);
    const current = Buffer.from(read(dir, "db2.crt"));
    expect(namesLost(current, bare, ["db2.example.net", "10.0.0.12", "127.0.0.1", "other.example.net"])).toEqual(["db2.example.net", "10.0.0.12"]);
    expect(namesLost(current, Buffer.from(read(dir, "db1.crt")), ["db2.example.net", "10.0.0.12"])).toEqual([]);
  });
});
