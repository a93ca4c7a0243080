// How `imdb client` and `imdb admin` report a failure: one JSON object on stderr with --json, else one
// "error: ..." line naming the key, plus a "hint:" line when the status says what the operator got wrong.
import { status as grpcStatus } from "@grpc/grpc-js";
import { RpcError } from "../transport/client.ts";

/** What a failed command says: the gRPC status name (or INVALID_ARGUMENT for a usage error caught here), the key, a fix. */
export interface CliFailure {
  code: string;
  message: string;
  key?: string;
  hint?: string;
  /** A usage error caught before anything was sent (exit 2); its code is INVALID_ARGUMENT. */
  usage?: true;
}

/** Where the command was sent and with what, so a hint can name the address and the flag to change. */
export interface FailureContext {
  server: string;
  timeoutMs: number;
  insecure: boolean;
}

const tlsWords = /certificate|self[- ]signed|SSL|TLS|handshake|alert|CERT_|Hostname\/IP|altnames|unable to (get|verify)|wrong[ _]version[ _]number|packet[ _]length/i;

/** A line telling the operator what to change, or undefined when the status says it all. */
export function hintFor(err: RpcError, ctx: FailureContext): string | undefined {
  const d = err.details;
  switch (err.code) {
    case grpcStatus.UNIMPLEMENTED:
      if (/ClientService|AdminService/.test(d)) {
        return `${ctx.server} answers gRPC but does not serve the client API: is it the node's peer port (peerAddr)? Use its client port (clientAddr, default 7100) with --server`;
      }
      return undefined;
    case grpcStatus.UNAVAILABLE:
      if (/ECONNREFUSED/.test(d)) return `nothing listens at ${ctx.server}: is the node running, and is this its client address (clientAddr)? Check --server or IMDB_SERVER`;
      if (/ENOTFOUND|EAI_AGAIN|Name resolution|DNS resolution/i.test(d)) return `the host in ${ctx.server} does not resolve: check --server`;
      if (/EHOSTUNREACH|ENETUNREACH|ETIMEDOUT/.test(d)) return `${ctx.server} is unreachable from here (network or firewall)`;
      if (tlsWords.test(d)) return tlsHint(d, ctx);
      // grpc-js says only "Failed to connect" when the TLS handshake is cut by the other side.
      if (/Failed to connect/.test(d)) {
        return ctx.insecure
          ? `${ctx.server} refused a plaintext connection: the node probably uses TLS (drop --insecure, give --tls-dir), or it is restarting`
          : `${ctx.server} refused the TLS handshake: your certificate is not signed by the cluster's CA, has expired, or the node is restarting; check --tls-dir/--name`;
      }
      if (/Connection dropped|ECONNRESET|socket hang up|closed|GOAWAY|Protocol error/i.test(d)) {
        return ctx.insecure
          ? `the connection to ${ctx.server} was dropped: a node with TLS refuses plaintext (drop --insecure and give --tls-dir), or the node is restarting`
          : `the connection to ${ctx.server} was dropped: the node may have refused your certificate (signed by another CA, expired, or not a client/admin certificate), or it is restarting`;
      }
      return `${ctx.server} is not answering: is the node running?`;
    case grpcStatus.DEADLINE_EXCEEDED:
      return `no answer from ${ctx.server} within ${ctx.timeoutMs} ms (--timeout): the node may be stopped, overloaded, or this is not an imdb client port`;
    case grpcStatus.PERMISSION_DENIED:
      if (/certificate/.test(d)) return "admin commands need an admin certificate: imdb certs init --admins NAME, then --name NAME";
      return undefined;
    case grpcStatus.RESOURCE_EXHAUSTED:
      // The node's own refusals name their limit already; grpc-js's size check does not.
      if (/larger than max/i.test(d)) return "a value is at most 1 MiB and a request at most 4 MiB (docs/api.md, Limits and errors)";
      return undefined;
    default:
      return undefined;
  }
}

function tlsHint(d: string, ctx: FailureContext): string {
  if (/Hostname\/IP|altnames|does not match/i.test(d)) {
    return `the node's certificate does not name the host in ${ctx.server}: connect by a name it lists, or renew it with imdb certs renew --add-hosts`;
  }
  if (/self[- ]signed|unable to (get|verify)|unknown ca|CERT_UNTRUSTED|UNABLE_TO_VERIFY/i.test(d)) {
    return `the node's certificate is not signed by your CA: give the cluster's ca.crt (--tls-dir or --ca)`;
  }
  if (/wrong[ _]version[ _]number|packet[ _]length|http_request/i.test(d)) {
    return `${ctx.server} does not speak TLS: is the node running with --insecure? Then pass --insecure`;
  }
  if (/expired/i.test(d)) return "a certificate has expired: renew it (imdb certs renew)";
  return "the TLS handshake failed: the node refused your certificate (another CA, expired, or not a client/admin one) or yours refused the node's; check --tls-dir/--name";
}

/** The failure of an RPC, with the key of the command and a hint. */
export function rpcFailure(err: RpcError, key: string | undefined, ctx: FailureContext): CliFailure {
  const hint = hintFor(err, ctx);
  return { code: err.codeName, message: err.details, ...(key === undefined ? {} : { key }), ...(hint === undefined ? {} : { hint }) };
}

/** One line of JSON ({"error":{...}}), or "error: CODE: message (key "K")" and an optional "hint: ..." line. */
export function renderFailure(f: CliFailure, json: boolean): string {
  if (json) return JSON.stringify({ error: f });
  const head = `error: ${f.usage === true ? "" : `${f.code}: `}${f.message}${f.key === undefined ? "" : ` (key ${JSON.stringify(f.key)})`}`;
  return f.hint === undefined ? head : `${head}\nhint: ${f.hint}`;
}

/** A usage error found by the CLI itself (nothing was sent). */
export function usageFailure(message: string, key: string | undefined): CliFailure {
  return { code: "INVALID_ARGUMENT", message, ...(key === undefined ? {} : { key }), usage: true };
}
