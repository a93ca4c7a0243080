// Who a certificate says it is: the role rules the servers authorise by.
import { describe, expect, test } from "bun:test";
import type { PeerCertificate } from "node:tls";
import { identityOf } from "../../src/transport/tls.ts";

const serverAuth = "1.3.6.1.5.5.7.3.1";
const clientAuth = "1.3.6.1.5.5.7.3.2";

function cert(subject: Record<string, string | string[]>, eku: string[]): PeerCertificate {
  return { subject, ext_key_usage: eku } as unknown as PeerCertificate;
}

describe("identityOf", () => {
  test("node certificates need OU=node and serverAuth", () => {
    expect(identityOf(cert({ CN: "n1", OU: "node" }, [serverAuth, clientAuth]))).toEqual({ role: "node", id: "n1" });
    expect(identityOf(cert({ CN: "n1", OU: "node" }, [clientAuth]))).toEqual({ role: "client", name: "n1" });
  });

  test("admin and client certificates", () => {
    expect(identityOf(cert({ CN: "ops", OU: "admin" }, [clientAuth]))).toEqual({ role: "admin", name: "ops" });
    expect(identityOf(cert({ CN: "app", OU: "client" }, [clientAuth]))).toEqual({ role: "client", name: "app" });
    expect(identityOf(cert({ CN: "x", OU: ["client", "admin"] }, [clientAuth]))).toEqual({ role: "admin", name: "x" });
  });

  test("no OU is the least privileged role; no CN is no identity", () => {
    expect(identityOf(cert({ CN: "legacy" }, [serverAuth, clientAuth]))).toEqual({ role: "client", name: "legacy" });
    expect(identityOf(cert({ OU: "node" }, [serverAuth]))).toBeNull();
    expect(identityOf(undefined)).toBeNull();
  });
});
