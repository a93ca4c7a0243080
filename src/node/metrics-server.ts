// The --metrics-addr HTTP endpoint: GET /metrics (Prometheus text format), GET /healthz and the
// web console (GET / and the /console.json it polls), on node:http (works under Bun), with
// bounded connections, request time and scrape concurrency.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { parseAddr } from "../config/config.ts";
import { consolePageHtml } from "./console/page.ts";
import type { ConsoleState } from "./console/state.ts";

/** Open connections accepted at once (Prometheus keeps one per target; a few humans with curl). */
export const metricsConnectionsMax = 32;
/** Scrapes rendered at once; more get 503 (rendering is CPU on the node's event loop). */
export const metricsScrapesInFlightMax = 4;
/** A request must arrive whole within this time. */
export const metricsRequestTimeoutMs = 10_000;
export const metricsHeadersTimeoutMs = 5_000;
export const metricsKeepAliveTimeoutMs = 5_000;
export const metricsHeadersCountMax = 64;

export interface MetricsServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

export interface MetricsServerOptions {
  /** /healthz answers 200 "ok" while this returns true, else 503. Default: always healthy. */
  healthy?: () => boolean;
  /** The web console's state; without it / and /console.json answer 404. */
  console?: () => ConsoleState;
}

/** The console page loads nothing from elsewhere: scripts and styles are inline, data comes from this server. */
const consoleSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function reply(req: IncomingMessage, res: ServerResponse, status: number, body: string, contentType = "text/plain; charset=utf-8", extra: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body), "cache-control": "no-store", "x-content-type-options": "nosniff", ...extra });
  if (req.method === "HEAD") res.end();
  else res.end(body);
}

/** Serves `registry` on `addr` ("HOST:PORT", port 0 picks one); resolves once listening. */
export async function startMetricsServer(addr: string, registry: Registry, opts: MetricsServerOptions = {}): Promise<MetricsServer> {
  const parsed = parseAddr(addr);
  if (parsed === undefined) throw new Error(`metrics address "${addr}" is not HOST:PORT`);
  const host = parsed.host.startsWith("[") ? parsed.host.slice(1, -1) : parsed.host;
  let inFlight = 0;

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    // GET carries no body: drain whatever arrives so the socket stays usable, never buffer it.
    req.resume();
    const path = (req.url ?? "/").split("?")[0];
    const consoleState = opts.console;
    const consolePath = consoleState !== undefined && (path === "/" || path === "/console.json");
    if (path !== "/metrics" && path !== "/healthz" && !consolePath) {
      return reply(req, res, 404, `not found: try /metrics or /healthz${consoleState !== undefined ? ", or / for the console" : ""}\n`);
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return reply(req, res, 405, "method not allowed\n");
    }
    if (consolePath && path === "/") return reply(req, res, 200, consolePageHtml, "text/html; charset=utf-8", { "content-security-policy": consoleSecurityPolicy });
    if (consolePath) {
      let body: string;
      try {
        body = JSON.stringify(consoleState());
      } catch (err) {
        return reply(req, res, 500, `console state failed: ${err instanceof Error ? err.message : String(err)}\n`);
      }
      return reply(req, res, 200, body, "application/json");
    }
    if (path === "/healthz") {
      const ok = opts.healthy?.() ?? true;
      return reply(req, res, ok ? 200 : 503, ok ? "ok\n" : "unavailable\n");
    }
    if (inFlight >= metricsScrapesInFlightMax) return reply(req, res, 503, "too many concurrent scrapes\n");
    inFlight++;
    registry
      .metrics()
      .then(
        (text) => reply(req, res, 200, text, registry.contentType),
        (err: unknown) => reply(req, res, 500, `metrics collection failed: ${err instanceof Error ? err.message : String(err)}\n`),
      )
      .finally(() => inFlight--);
  };

  const server = createServer(handle);
  server.maxConnections = metricsConnectionsMax;
  server.requestTimeout = metricsRequestTimeoutMs;
  server.headersTimeout = metricsHeadersTimeoutMs;
  server.keepAliveTimeout = metricsKeepAliveTimeoutMs;
  server.maxHeadersCount = metricsHeadersCountMax;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(parsed.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;

  return {
    port: bound.port,
    host,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
