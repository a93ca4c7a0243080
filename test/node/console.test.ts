// The web console's HTTP side: GET / serves the embedded page (nothing loaded from elsewhere),
// /console.json the node's state; without a console callback both are 404 as before.
import { afterAll, describe, expect, test } from "bun:test";
import { createNodeMetrics } from "../../src/node/metrics.ts";
import { startMetricsServer, type MetricsServer } from "../../src/node/metrics-server.ts";
import type { ConsoleState } from "../../src/node/console/state.ts";

const state: ConsoleState = {
  node: { id: "node-1", version: "1.2.3", commit: "abc", uptimeSeconds: 5, durability: "sync", accel: "ts" },
  atMs: 1_000_000,
  members: [{ id: "node-1", address: "127.0.0.1:1", status: "alive", incarnation: 0 }, { id: "node-2", address: "127.0.0.1:2", status: "dead", incarnation: 3 }],
  peers: [{ peer: "node-2", backlog: 0, lagSeconds: 0 }],
  opsTotal: 42,
  keys: 7,
  keysDeleted: 2,
  wal: { nextLsn: 10, bytesSinceSnapshot: 100 },
  snapshot: { running: false, last: null },
  clock: { skewEvents: 0, remoteAheadRefused: 0, maxClockSkewMs: 5000 },
  certs: [],
};

const open: MetricsServer[] = [];
afterAll(async () => {
  for (const s of open) await s.close();
});

async function serve(withConsole: boolean): Promise<string> {
  const s = await startMetricsServer("127.0.0.1:0", createNodeMetrics({ processMetrics: false }).registry, withConsole ? { console: () => state } : {});
  open.push(s);
  return `http://127.0.0.1:${s.port}`;
}

describe("web console endpoints", () => {
  test("GET / is the self-contained page with a policy that forbids loading anything from elsewhere", async () => {
    const res = await fetch(`${await serve(true)}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(res.headers.get("content-security-policy")).toContain("connect-src 'self'");
    const html = await res.text();
    expect(html).toContain('id="members"');
    expect(html).toContain('fetch("console.json"');
    // No CDN, no external script, style, font or image.
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/@import|url\(/i);
  });

  test("GET /console.json is the node's state", async () => {
    const res = await fetch(`${await serve(true)}/console.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect((await res.json()) as ConsoleState).toEqual(state);
  });

  test("without a console callback, / stays 404; POST is 405", async () => {
    const base = await serve(false);
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/console.json`)).status).toBe(404);
    const withIt = await serve(true);
    expect((await fetch(`${withIt}/`, { method: "POST" })).status).toBe(405);
  });
});
