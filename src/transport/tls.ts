// Mutual TLS for every port: server and channel credentials, who a peer certificate says it is, and rotation of credentials.
import * as grpc from "@grpc/grpc-js";
import { checkServerIdentity, createSecureContext, TLSSocket, type DetailedPeerCertificate, type PeerCertificate } from "node:tls";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { isIP } from "node:net";
import { roleOrgUnit } from "./certs.ts";

/**
 * grpc-js reads the peer certificate on every call (getAuthContext, which our role check uses),
 * and the runtime builds it anew from the X509 each time: 12% of a node's CPU under unary load
 * (`imdb bench expiry` profile, getPeerCertificate self time). A connection's peer certificate
 * cannot change (TLS 1.3 has no renegotiation), so each socket's is read once and kept with the
 * socket; an answer without a certificate (handshake not done) is not kept.
 */
const peerCertificates = new WeakMap<object, { plain?: PeerCertificate; detailed?: DetailedPeerCertificate }>();
const readPeerCertificate = TLSSocket.prototype.getPeerCertificate;
function cachedPeerCertificate(this: TLSSocket, detailed?: boolean): PeerCertificate | DetailedPeerCertificate {
  const kept = peerCertificates.get(this);
  const hit = detailed === true ? kept?.detailed : kept?.plain;
  if (hit !== undefined) return hit;
  const cert = detailed === true ? readPeerCertificate.call(this, true) : readPeerCertificate.call(this);
  if (cert === null || cert === undefined || cert.raw === undefined) return cert;
  const entry = kept ?? {};
  if (detailed === true) entry.detailed = cert as DetailedPeerCertificate;
  else entry.plain = cert;
  if (kept === undefined) peerCertificates.set(this, entry);
  return cert;
}
TLSSocket.prototype.getPeerCertificate = cachedPeerCertificate as typeof TLSSocket.prototype.getPeerCertificate;

/** PEM bytes of the CA that signs every certificate in the cluster, and this process's own certificate and key. */
export interface TlsMaterial { ca: Buffer; cert: Buffer; key: Buffer }

/**
 * TLS 1.3 only: grpc-js passes these options straight to Bun's http2/tls, which honour minVersion
 * (a TLS 1.2 client is refused at the handshake; test/transport checks it).
 */
export const tlsMinVersion = "TLSv1.3" as const;
const serverAuthOid = "1.3.6.1.5.5.7.3.1";

/** Reads DIR/ca.crt and DIR/NAME.crt/.key; errors name the missing file. */
export async function loadTlsDir(dir: string, name: string): Promise<TlsMaterial> {
  const read = async (file: string): Promise<Buffer> => {
    const path = join(dir, file);
    try {
      return await readFile(path);
    } catch (err) {
      throw new Error(`cannot read ${path}: ${(err as Error).message}`);
    }
  };
  return { ca: await read("ca.crt"), cert: await read(`${name}.crt`), key: await read(`${name}.key`) };
}

export async function loadTlsFiles(caFile: string, certFile: string, keyFile: string): Promise<TlsMaterial> {
  const read = async (path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new Error(`cannot read ${path}: ${(err as Error).message}`);
    }
  };
  return { ca: await read(caFile), cert: await read(certFile), key: await read(keyFile) };
}

function contextOptions(m: TlsMaterial): { ca: Buffer; cert: Buffer; key: Buffer; minVersion: typeof tlsMinVersion } {
  return { ca: m.ca, cert: m.cert, key: m.key, minVersion: tlsMinVersion };
}

/**
 * Server credentials that require a client certificate signed by the CA, and whose material can be swapped
 * (SIGHUP rotation): reload() changes the context for new connections; established ones keep theirs.
 */
export class ReloadableServerCredentials extends grpc.ServerCredentials {
  constructor(material: TlsMaterial) {
    super({ requestCert: true, rejectUnauthorized: true, minVersion: tlsMinVersion }, contextOptions(material));
  }

  reload(material: TlsMaterial): void {
    this.updateSecureContextOptions(contextOptions(material));
  }

  override _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** Who is at the other end, from the certificate the CA signed. The OU carries the role (see certs.ts). */
export type PeerIdentity =
  | { role: "node"; id: string }
  | { role: "client"; name: string }
  | { role: "admin"; name: string };

function firstField(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Classifies an already CA-verified certificate. A node certificate must also allow serverAuth; a
 * certificate without a known OU is treated as a plain client, the least privileged role.
 */
export function identityOf(cert: PeerCertificate | undefined): PeerIdentity | null {
  if (cert === undefined || cert.subject === undefined) return null;
  const cn = firstField(cert.subject.CN);
  if (cn === undefined || cn.length === 0) return null;
  const ou = cert.subject.OU;
  const ous = Array.isArray(ou) ? ou : ou === undefined ? [] : [ou];
  if (ous.includes(roleOrgUnit.admin)) return { role: "admin", name: cn };
  if (ous.includes(roleOrgUnit.node)) {
    const eku = cert.ext_key_usage ?? [];
    return eku.includes(serverAuthOid) ? { role: "node", id: cn } : { role: "client", name: cn };
  }
  return { role: "client", name: cn };
}

/** The identity of the caller of a server call, or null on a plaintext (--insecure) port. */
export function callerIdentity(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } }): PeerIdentity | null {
  return identityOf(call.getAuthContext().sslPeerCertificate);
}

export interface ChannelTls {
  credentials: grpc.ChannelCredentials;
  /** Channel options that go with the credentials (the SNI name; Bun refuses an IP address there). */
  options: grpc.ChannelOptions;
}

/**
 * Credentials for a client talking to one server address: the server certificate must be a CA-signed node
 * certificate naming the host we dialled (DNS or IP SAN), as usual for TLS.
 */
export function clientChannelTls(m: TlsMaterial, host: string): ChannelTls {
  const bareHost = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  // Empty cert/key: dial without a client certificate (servers refuse that; tests check they do).
  const own = m.cert.length > 0 && m.key.length > 0;
  const credentials = grpc.credentials.createSsl(m.ca, own ? m.key : null, own ? m.cert : null, {
    checkServerIdentity: (_servername, cert) => {
      if (identityOf(cert)?.role !== "node") return new Error("server certificate is not a node certificate");
      return checkServerIdentity(bareHost, cert);
    },
  });
  // SNI must be a DNS name; for an IP target send "localhost" (our servers ignore SNI) and check the IP SAN above.
  const sni = isIP(bareHost) !== 0 ? "localhost" : bareHost;
  return { credentials, options: { "grpc.ssl_target_name_override": sni } };
}

/**
 * Credentials for a node dialling a peer: what matters is the peer's node id in its certificate, not the
 * address (addresses change, ids do not). onVerified reports the id seen at each handshake.
 */
export function peerChannelTls(m: TlsMaterial, expectedId: string | null, onVerified: (id: string) => void): ChannelTls {
  const credentials = grpc.credentials.createSsl(m.ca, m.key, m.cert, {
    checkServerIdentity: (_servername, cert) => {
      const who = identityOf(cert);
      if (who === null || who.role !== "node") return new Error("peer certificate is not a node certificate");
      if (expectedId !== null && who.id !== expectedId) return new Error(`peer certificate is for node "${who.id}", expected "${expectedId}"`);
      onVerified(who.id);
      return undefined;
    },
  });
  return { credentials, options: { "grpc.ssl_target_name_override": expectedId ?? "imdb-node" } };
}

/**
 * Checks that `m` is usable before anything is swapped to it: the PEM parses, the key matches
 * the certificate, the CA parses, and the certificate names node `nodeId`. Throws with the reason.
 * A SIGHUP with a half-written or wrong file must keep the old certificates in service.
 */
export function validateNodeMaterial(m: TlsMaterial, nodeId: string): void {
  try {
    createSecureContext({ ca: m.ca, cert: m.cert, key: m.key });
  } catch (err) {
    throw new Error(`the certificate, key or CA does not load: ${(err as Error).message}`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(m.cert);
  } catch (err) {
    throw new Error(`the certificate does not parse: ${(err as Error).message}`);
  }
  const cn = /(?:^|\n|,\s*)CN=([^\n,]+)/.exec(cert.subject)?.[1];
  if (cn !== nodeId) throw new Error(`the certificate is for "${cn ?? "?"}", not for node "${nodeId}"`);
  if (!cert.checkPrivateKey(createPrivateKey(m.key))) throw new Error("the key does not belong to the certificate");
}
