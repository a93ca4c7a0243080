// Certificate authority and leaf certificates for mutual TLS, built in (ECDSA P-256 on WebCrypto), so no openssl is needed.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { mkdir, writeFile, readFile, readdir, chmod, stat, rename } from "node:fs/promises";
import { join } from "node:path";
import { isIP } from "node:net";

/** Role of a certificate, carried as the subject's OU; the transport authorises by it. */
export type CertRole = "node" | "client" | "admin";

/** OU values that mark a certificate's role. ONLY APPEND: old certificates keep their meaning. */
export const roleOrgUnit: Readonly<Record<CertRole, string>> = { node: "node", client: "client", admin: "admin" };
export const certOrganization = "in-memorydb";

/** Names become file names and node ids: keep them to a safe alphabet. */
export const certNameBytesMax = 64;
const certNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const certDaysDefault = 365;
export const certDaysMax = 36500;
/** Certificates start an hour in the past so a peer whose clock is a little behind accepts them. */
export const certBackdateMs = 60 * 60 * 1000;

export interface Validity { notBefore: Date; notAfter: Date }
export interface CertificateAuthority { certPem: string; keyPem: string; cert: x509.X509Certificate; key: CryptoKey }
export interface IssuedCert { certPem: string; keyPem: string }

/** A bad request to the certificate tool: the CLI prints it and exits 2. */
export class CertError extends Error {
  override readonly name = "CertError";
}

const ecAlg = { name: "ECDSA", namedCurve: "P-256" } as const;
const signAlg = { name: "ECDSA", hash: "SHA-256" } as const;

x509.cryptoProvider.set(globalThis.crypto);

export function validateCertName(name: string): void {
  if (name.length === 0 || name.length > certNameBytesMax || !certNamePattern.test(name)) {
    throw new CertError(`invalid certificate name "${name}": use 1..${certNameBytesMax} of A-Z a-z 0-9 . _ - (not starting with . _ -)`);
  }
  if (name === "ca") throw new CertError(`"ca" is reserved for the certificate authority`);
}

export function validityFromDays(now: Date, days: number): Validity {
  if (!Number.isInteger(days) || days < 1 || days > certDaysMax) throw new CertError(`--days must be an integer in 1..${certDaysMax}`);
  return { notBefore: new Date(now.getTime() - certBackdateMs), notAfter: new Date(now.getTime() + days * 86_400_000) };
}

function serial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive INTEGER
  return Buffer.from(bytes).toString("hex");
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(ecAlg, true, ["sign", "verify"])) as CryptoKeyPair;
}

export async function createCa(validity: Validity, commonName = "in-memorydb CA"): Promise<CertificateAuthority> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}, O=${certOrganization}`,
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
    signingAlgorithm: signAlg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await keyPem(keys.privateKey), cert, key: keys.privateKey };
}

export async function loadCa(certPem: string, keyPemText: string): Promise<CertificateAuthority> {
  const cert = new x509.X509Certificate(certPem);
  const der = x509.PemConverter.decodeFirst(keyPemText);
  const key = await crypto.subtle.importKey("pkcs8", der, ecAlg, true, ["sign"]);
  return { certPem, keyPem: keyPemText, cert, key };
}

function sanEntries(role: CertRole, name: string, hosts: readonly string[]): x509.JsonGeneralName[] {
  if (role !== "node") return [{ type: "dns", value: name }];
  const names: x509.JsonGeneralName[] = [{ type: "dns", value: name }, { type: "dns", value: "localhost" }, { type: "ip", value: "127.0.0.1" }];
  for (const h of hosts) {
    const entry: x509.JsonGeneralName = isIP(h) !== 0 ? { type: "ip", value: h } : { type: "dns", value: h };
    if (!names.some((n) => n.type === entry.type && n.value === entry.value)) names.push(entry);
  }
  return names;
}

/** Issues a leaf: nodes serve and dial (serverAuth + clientAuth), clients and admins only dial (clientAuth). */
export async function issueCert(ca: CertificateAuthority, role: CertRole, name: string, validity: Validity, hosts: readonly string[] = []): Promise<IssuedCert> {
  return issueCertNamed(ca, role, name, validity, sanEntries(role, name, hosts));
}

/** issueCert with the subject alternative names given exactly (a renewal copies them from the certificate it replaces). */
async function issueCertNamed(ca: CertificateAuthority, role: CertRole, name: string, validity: Validity, sans: readonly x509.JsonGeneralName[]): Promise<IssuedCert> {
  validateCertName(name);
  const keys = await generateKeys();
  const usages = role === "node" ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.clientAuth];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${name}, OU=${roleOrgUnit[role]}, O=${certOrganization}`,
    issuer: ca.cert.subject,
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
    signingAlgorithm: signAlg,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension(usages, false),
      new x509.SubjectAlternativeNameExtension([...sans], false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await keyPem(keys.privateKey) };
}

export interface CertInitOptions {
  dir: string;
  nodes: readonly string[];
  clients: readonly string[];
  admins: readonly string[];
  /**
   * Extra SANs of every node certificate. null: not given, and then signing a node with an
   * existing CA whose other node certificates carry extra SANs is refused (see initCerts).
   */
  hosts: readonly string[] | null;
  /** Lifetime in days from now; ignored when validity is given (tests make expired certificates that way). */
  days: number;
  force: boolean;
  validity?: Validity;
  now?: Date;
}

export interface CertInitResult { written: string[]; reusedCa: boolean }

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Files are written with flag "wx" unless forced, so an existing file is never clobbered even by a race. */
async function writeOut(path: string, text: string, mode: number, force: boolean): Promise<void> {
  // PEM files end with a newline, so that `cat old-ca.crt new-ca.crt > ca.crt` makes a valid bundle.
  await writeFile(path, text.endsWith("\n") ? text : text + "\n", { mode, flag: force ? "w" : "wx" });
  await chmod(path, mode);
}

function checkNames(opts: CertInitOptions): void {
  if (opts.nodes.length + opts.clients.length + opts.admins.length === 0) {
    throw new CertError("nothing to sign: name at least one --nodes, --clients or --admins certificate");
  }
  const seen = new Set<string>();
  for (const n of [...opts.nodes, ...opts.clients, ...opts.admins]) {
    validateCertName(n);
    if (seen.has(n)) throw new CertError(`name "${n}" is given twice`);
    seen.add(n);
  }
  for (const h of opts.hosts ?? []) {
    if (h.length === 0 || h.length > 253 || /[\s,]/.test(h)) throw new CertError(`invalid --hosts entry "${h}"`);
  }
}

/**
 * Writes DIR/ca.{crt,key} and a .crt/.key per node, client and admin. Without force nothing existing is
 * overwritten: an existing CA (both files) is reused to sign new leaves, and an existing leaf is an error.
 */
export async function initCerts(opts: CertInitOptions): Promise<CertInitResult> {
  checkNames(opts);
  const validity = opts.validity ?? validityFromDays(opts.now ?? new Date(), opts.days);
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  const caCrt = join(opts.dir, "ca.crt");
  const caKey = join(opts.dir, "ca.key");
  const leaves: { role: CertRole; name: string }[] = [
    ...opts.nodes.map((name) => ({ role: "node" as const, name })),
    ...opts.clients.map((name) => ({ role: "client" as const, name })),
    ...opts.admins.map((name) => ({ role: "admin" as const, name })),
  ];
  const caFiles = [await exists(caCrt), await exists(caKey)];
  const reuseCa = !opts.force && caFiles[0] === true && caFiles[1] === true;
  // A new CA starts a cluster, which needs a node; with an existing CA, signing only a client
  // or admin certificate (a new user, a renewal) is the common case.
  if (!reuseCa && opts.nodes.length === 0) throw new CertError("a new CA needs at least one --nodes id (no ca.crt + ca.key to sign with here)");
  if (!opts.force) {
    const clash: string[] = [];
    if (!reuseCa) for (const [i, p] of [caCrt, caKey].entries()) if (caFiles[i] === true) clash.push(p);
    for (const l of leaves) for (const ext of [".crt", ".key"]) if (await exists(join(opts.dir, l.name + ext))) clash.push(join(opts.dir, l.name + ext));
    if (clash.length > 0) throw new CertError(`refusing to overwrite existing ${clash.join(", ")} (use --force)`);
  }
  if (reuseCa && opts.nodes.length > 0 && opts.hosts === null) await refuseDroppedHosts(opts.dir, opts.nodes);
  const written: string[] = [];
  const ca = reuseCa ? await loadCa(await readFile(caCrt, "utf8"), await readFile(caKey, "utf8")) : await createCa(validity);
  if (!reuseCa) {
    await writeOut(caKey, ca.keyPem, 0o600, opts.force);
    await writeOut(caCrt, ca.certPem, 0o644, opts.force);
    written.push(caCrt, caKey);
  }
  for (const l of leaves) {
    const issued = await issueCert(ca, l.role, l.name, validity, l.role === "node" ? (opts.hosts ?? []) : []);
    const crt = join(opts.dir, `${l.name}.crt`);
    const key = join(opts.dir, `${l.name}.key`);
    await writeOut(key, issued.keyPem, 0o600, opts.force);
    await writeOut(crt, issued.certPem, 0o644, opts.force);
    written.push(crt, key);
  }
  return { written, reusedCa: reuseCa };
}

/** The names a certificate answers to (its SANs), and its role and name from the subject. */
export interface CertNames {
  role: CertRole;
  name: string;
  sans: x509.JsonGeneralName[];
}

function roleOfOrgUnit(ou: string | undefined): CertRole | undefined {
  return (Object.keys(roleOrgUnit) as CertRole[]).find((r) => roleOrgUnit[r] === ou);
}

/** Reads role, CN and SANs of a leaf this tool made; throws CertError when it is not one. */
export function certNames(pem: string, what: string): CertNames {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(pem);
  } catch (err) {
    throw new CertError(`${what} is not a certificate: ${(err as Error).message}`);
  }
  const role = roleOfOrgUnit(cert.subjectName.getField("OU")[0]);
  const name = cert.subjectName.getField("CN")[0];
  if (role === undefined || name === undefined) throw new CertError(`${what} is not a node, client or admin certificate of in-memorydb (subject ${cert.subject})`);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return { role, name, sans: san === null ? [] : san.names.toJSON() };
}

/** SANs a node certificate carries beyond the ones every node certificate gets (its --hosts). */
function extraHosts(names: CertNames): string[] {
  const implied = sanEntries("node", names.name, []);
  return names.sans.filter((n) => !implied.some((i) => i.type === n.type && i.value === n.value)).map((n) => n.value);
}

/**
 * Signing a node without --hosts next to node certificates that carry --hosts names is almost
 * always a renewal that forgot them (clients would then fail hostname checks): refuse, naming them.
 */
async function refuseDroppedHosts(dir: string, nodes: readonly string[]): Promise<void> {
  const hosts = new Set<string>();
  for (const f of await readdir(dir)) {
    if (!f.endsWith(".crt") || f === "ca.crt") continue;
    let names: CertNames;
    try {
      names = certNames(await readFile(join(dir, f), "utf8"), join(dir, f));
    } catch {
      continue; // not ours: nothing to compare with
    }
    if (names.role === "node") for (const h of extraHosts(names)) hosts.add(h);
  }
  if (hosts.size === 0) return;
  const list = [...hosts].join(",");
  throw new CertError(
    `the node certificates in ${dir} also name ${list} (their --hosts), and --hosts was not given: ` +
      `renew a node certificate with \`imdb certs renew --dir ${dir} ${nodes.join(",")}\` (it keeps the names of the one it replaces), ` +
      `or pass --hosts ${list} (or --hosts "" for none)`,
  );
}

export interface CertRenewOptions {
  dir: string;
  names: readonly string[];
  /** DNS names / IPs added to the SANs kept from each certificate. */
  addHosts: readonly string[];
  days: number;
  now?: Date;
}

export interface CertRenewed {
  crt: string;
  key: string;
  /** The SANs of the new certificate (those of the old one, plus any added). */
  sans: string[];
  /** Where the replaced pair was kept. */
  previous: { crt: string; key: string };
}

/**
 * Re-issues DIR/NAME.crt/.key with the existing CA: same role, CN and SANs as the certificate it
 * replaces (plus addHosts), a new key and validity. The old pair is kept as NAME.crt.old/.key.old;
 * the new files replace the old ones by rename, so a node reading them sees one pair or the other.
 */
export async function renewCerts(opts: CertRenewOptions): Promise<CertRenewed[]> {
  if (opts.names.length === 0) throw new CertError("name at least one certificate to renew");
  for (const h of opts.addHosts) {
    if (h.length === 0 || h.length > 253 || /[\s,]/.test(h)) throw new CertError(`invalid --add-hosts entry "${h}"`);
  }
  const validity = validityFromDays(opts.now ?? new Date(), opts.days);
  const caCrt = join(opts.dir, "ca.crt");
  const caKey = join(opts.dir, "ca.key");
  if (!(await exists(caCrt)) || !(await exists(caKey))) throw new CertError(`renewal signs with the existing CA: ${caCrt} and ${caKey} must both be there`);
  const ca = await loadCa(await readFile(caCrt, "utf8"), await readFile(caKey, "utf8"));
  // Check every certificate before writing any, so a bad name changes nothing.
  const plans: { name: string; old: CertNames; sans: x509.JsonGeneralName[] }[] = [];
  for (const name of opts.names) {
    validateCertName(name);
    const crt = join(opts.dir, `${name}.crt`);
    let pem: string;
    try {
      pem = await readFile(crt, "utf8");
    } catch {
      throw new CertError(`${crt} is missing: renewal copies the names (SANs) of the certificate it replaces, so it must be in place`);
    }
    const old = certNames(pem, crt);
    if (old.name !== name) throw new CertError(`${crt} is the certificate of "${old.name}", not "${name}"`);
    const cert = new x509.X509Certificate(pem);
    if (!(await cert.verify({ publicKey: ca.cert.publicKey, signatureOnly: true }))) throw new CertError(`${crt} was not signed by ${caCrt}: renew it with the CA that made it`);
    const sans = [...old.sans];
    // Host names matter only where a certificate serves: on nodes.
    for (const h of old.role === "node" ? opts.addHosts : []) {
      const entry: x509.JsonGeneralName = isIP(h) !== 0 ? { type: "ip", value: h } : { type: "dns", value: h };
      if (!sans.some((n) => n.type === entry.type && n.value === entry.value)) sans.push(entry);
    }
    plans.push({ name, old, sans });
  }
  const out: CertRenewed[] = [];
  for (const p of plans) {
    const issued = await issueCertNamed(ca, p.old.role, p.name, validity, p.sans);
    const crt = join(opts.dir, `${p.name}.crt`);
    const key = join(opts.dir, `${p.name}.key`);
    await writeOut(`${key}.new`, issued.keyPem, 0o600, true);
    await writeOut(`${crt}.new`, issued.certPem, 0o644, true);
    await rename(crt, `${crt}.old`);
    if (await exists(key)) await rename(key, `${key}.old`);
    await rename(`${key}.new`, key);
    await rename(`${crt}.new`, crt);
    out.push({ crt, key, sans: p.sans.map((n) => n.value), previous: { crt: `${crt}.old`, key: `${key}.old` } });
  }
  return out;
}
