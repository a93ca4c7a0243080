// Which of the names a node is reached by its certificate answers to: clients check the host they
// dialled against the certificate's SANs, so a renewal that drops one breaks every such client at
// the next SIGHUP. The node refuses that reload and warns at start about names already missing.
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { parseAddr, type NodeConfig } from "../config/config.ts";

const wildcardHosts: ReadonlySet<string> = new Set(["0.0.0.0", "::", ""]);

/** The hosts of the addresses others dial: the advertised peer address (or peerAddr), clientAddr and respAddr (Redis clients check it too); wildcards left out. */
export function addressedHosts(cfg: Pick<NodeConfig, "peerAddr" | "advertiseAddr" | "clientAddr"> & { respAddr?: string }): string[] {
  const hosts: string[] = [];
  for (const a of [cfg.advertiseAddr === "" ? cfg.peerAddr : cfg.advertiseAddr, cfg.clientAddr, cfg.respAddr ?? ""]) {
    const host = parseAddr(a)?.host.replace(/^\[(.*)\]$/, "$1");
    if (host !== undefined && !wildcardHosts.has(host) && !hosts.includes(host)) hosts.push(host);
  }
  return hosts;
}

/** True when a client dialling `host` would accept this certificate's names (DNS or IP SAN). */
export function certNamesHost(certPem: Buffer, host: string): boolean {
  const cert = new X509Certificate(certPem);
  return isIP(host) !== 0 ? cert.checkIP(host) !== undefined : cert.checkHost(host) !== undefined;
}

/** The hosts `current` answers to and `next` does not: what a swap to `next` would break. */
export function namesLost(current: Buffer, next: Buffer, hosts: readonly string[]): string[] {
  return hosts.filter((h) => certNamesHost(current, h) && !certNamesHost(next, h));
}
