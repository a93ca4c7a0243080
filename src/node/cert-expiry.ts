// When the certificates a node serves with expire, for imdb_tls_cert_expiry_timestamp_seconds and
// the console: an expired node or CA certificate stops the cluster, so it is alerted on in advance.
import { X509Certificate } from "node:crypto";
import type { TlsMaterial } from "../transport/tls.ts";
import type { LoadedCert } from "./metrics.ts";

/** CA certificates read from one bundle (further ones are left out of the metrics). */
export const caBundleCertsMax = 8;

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function describe(cert: string, pem: string): LoadedCert | null {
  try {
    const x = new X509Certificate(pem);
    const subject = /(?:^|\n|,\s*)CN=([^\n,]+)/.exec(x.subject)?.[1] ?? x.subject;
    return { cert, subject, notAfterSeconds: Math.floor(Date.parse(x.validTo) / 1000) };
  } catch {
    // Material was validated when loaded; a block that does not parse is simply not reported.
    return null;
  }
}

/** The node's own certificate (the first block of its file) and each CA certificate of the bundle. */
export function loadedCerts(m: TlsMaterial): LoadedCert[] {
  const out: LoadedCert[] = [];
  const own = m.cert.toString("utf8").match(pemBlock)?.[0];
  const node = own === undefined ? null : describe("node", own);
  if (node !== null) out.push(node);
  for (const pem of (m.ca.toString("utf8").match(pemBlock) ?? []).slice(0, caBundleCertsMax)) {
    const ca = describe("ca", pem);
    if (ca !== null) out.push(ca);
  }
  return out;
}

/** loadedCerts, parsed once per material (SIGHUP swaps the object), not once per scrape. */
export function certsOf(current: () => TlsMaterial | null): () => readonly LoadedCert[] {
  let seen: TlsMaterial | null = null;
  let certs: readonly LoadedCert[] = [];
  return () => {
    const m = current();
    if (m !== seen) {
      seen = m;
      certs = m === null ? [] : loadedCerts(m);
    }
    return certs;
  };
}
