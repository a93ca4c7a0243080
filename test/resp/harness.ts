// A real node started in this process (plaintext, durability none, a temp data folder) with the
// Redis command table over its handlers, and a reply form that reads well in assertions.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultNodeConfig, type NodeConfig } from "../../src/config/config.ts";
import { createLogger } from "../../src/node/log.ts";
import { startNode, type RunningNode } from "../../src/node/node.ts";
import { createRespCommands, type RespCommandTable } from "../../src/resp/commands.ts";
import type { Reply, RespBackend, RespInfo, RespRole, RespSession } from "../../src/resp/types.ts";

export interface TestNode {
  node: RunningNode;
  backend: RespBackend;
  commands: RespCommandTable;
  sessions: RespSession[];
  /** What info() answers beyond the node's own facts (peers, extra, maxClients) — tests set it. */
  infoExtra: Partial<RespInfo>;
  /** A new connection's session. */
  session(role?: RespRole): RespSession;
  stop(): Promise<void>;
}

export async function startTestNode(overrides: Partial<NodeConfig> = {}): Promise<TestNode> {
  const dir = mkdtempSync(join(tmpdir(), "imdb-resp-"));
  const cfg: NodeConfig = {
    ...defaultNodeConfig, id: "resp-1", dataDir: join(dir, "data"), insecure: true, durability: { kind: "none" },
    peerAddr: "127.0.0.1:0", clientAddr: "127.0.0.1:0", snapshotIntervalMs: 0, snapshotWalBytes: 0, ...overrides,
  };
  const node = await startNode(cfg, createLogger({ format: "text", level: "error" }));
  const sessions: RespSession[] = [];
  const infoExtra: Partial<RespInfo> = {};
  const startedMs = Date.now();
  const backend: RespBackend = {
    client: node.client,
    admin: node.admin,
    info: () => ({
      nodeId: node.id, version: "test", uptimeSeconds: (Date.now() - startedMs) / 1000, tcpPort: 6379, durability: "none",
      usedMemoryBytes: 1_000_000, keys: node.engine.keyCount, keysWithDeadline: node.engine.deadlineKeyCount, expiredTotal: node.engine.expiredTotal,
      peers: [], extra: [], ...infoExtra,
    }),
    sessions: () => sessions,
  };
  let nextId = 1;
  return {
    node, backend, commands: createRespCommands(backend), sessions, infoExtra,
    session(role: RespRole = "admin"): RespSession {
      const s: RespSession = {
        id: nextId++, role, remote: `127.0.0.1:${50000 + nextId}`, createdAtMs: Date.now(), name: null, protocol: 2, libName: null, libVersion: null, closeAfterReply: false,
      };
      sessions.push(s);
      return s;
    },
    async stop() {
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A reply as plain data: +simple, -error, numbers, strings (bulk), null, arrays, {map}, {set}, {verbatim}. */
export type Plain = string | number | bigint | boolean | null | Plain[] | { map: [Plain, Plain][] } | { set: Plain[] } | { double: number };

const utf8 = new TextDecoder();

export function isPlainMap(p: Plain): p is { map: [Plain, Plain][] } {
  return p !== null && typeof p === "object" && !Array.isArray(p) && "map" in p;
}

export function isPlainSet(p: Plain): p is { set: Plain[] } {
  return p !== null && typeof p === "object" && !Array.isArray(p) && "set" in p;
}

export function plain(r: Reply): Plain {
  switch (r.kind) {
    case "simple":
      return `+${r.text}`;
    case "error":
      return `-${r.text}`;
    case "int": {
      const n = typeof r.value === "bigint" ? r.value : BigInt(r.value);
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    }
    case "bulk":
      return r.value === null ? null : typeof r.value === "string" ? r.value : utf8.decode(r.value);
    case "array":
      return r.items === null ? null : r.items.map(plain);
    case "map":
      return { map: r.entries.map(([k, v]) => [plain(k), plain(v)]) };
    case "set":
      return { set: r.items.map(plain) };
    case "double":
      return { double: r.value };
    case "bool":
      return r.value;
    case "null":
      return null;
    case "verbatim":
      return r.text;
  }
}

const enc = new TextEncoder();

/** Runs one command given as strings (or bytes) and answers its plain reply. */
export async function call(t: TestNode, s: RespSession, ...args: (string | Uint8Array)[]): Promise<Plain> {
  return plain(await t.commands.execute(s, args.map((a) => (typeof a === "string" ? enc.encode(a) : a))));
}
