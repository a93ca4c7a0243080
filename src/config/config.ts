// The node's configuration: one documented type, the defaults as a named preset, and the one
// place where YAML files and command-line flags are checked. The comments on NodeConfig are the
// operator's reference; test/config keeps configs/node-template.yaml in step with them.

import { parse as parseYaml } from "yaml";
import * as persistLimits from "../persist/limits.ts";

export type Durability =
  | { kind: "sync" } // answer a write only after its WAL record is fdatasync'ed (group commit)
  | { kind: "interval"; ms: number } // answer at once; fdatasync every `ms` milliseconds
  | { kind: "none" }; // never fdatasync; the OS flushes when it likes

export type LogFormat = "text" | "json";
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface NodeConfig {
  /** Node id: unique in the cluster, 1..64 chars of [A-Za-z0-9._-]. With TLS it must equal the CN of <tlsDir>/<id>.crt. */
  id: string;
  /** Folder for the WAL and snapshots. Created if missing. One node per folder. */
  dataDir: string;
  /** HOST:PORT for node-to-node gRPC (NodeService). Other nodes reach this node here. */
  peerAddr: string;
  /** HOST:PORT to advertise to peers when it differs from peerAddr (e.g. peerAddr 0.0.0.0:7000). Empty: peerAddr. */
  advertiseAddr: string;
  /** HOST:PORT for client gRPC (ClientService, AdminService, Health). */
  clientAddr: string;
  /** Peer addresses (HOST:PORT) of existing members to join through. Empty: start a new cluster. */
  seeds: string[];
  /** Folder with ca.crt and <id>.crt/.key (made by `imdb certs init`). Required unless insecure. */
  tlsDir: string;
  /** Plaintext on every port. For local experiments only; a warning is printed. */
  insecure: boolean;
  /** When a write is acknowledged: sync (default), interval:MS, or none. */
  durability: Durability;
  /** HOST:PORT serving Prometheus /metrics. Empty: metrics are not served. */
  metricsAddr: string;
  /** Log line format on stderr. */
  logFormat: LogFormat;
  /** Least severe level logged. No line is logged per request at info. */
  logLevel: LogLevel;
  /** Take a snapshot every this many milliseconds (0: never on a timer). */
  snapshotIntervalMs: number;
  /** Take a snapshot once the WAL has grown by this many bytes since the last one (0: never). */
  snapshotWalBytes: number;
  /** WAL segment size in bytes before rolling to a new segment file. */
  walSegmentBytesMax: number;
  /** Start even if the WAL is damaged in the middle, truncating it there (peers refill the rest). */
  repair: boolean;
  /** Remote HLC timestamps further ahead than this are merged but counted as clock skew. */
  maxClockSkewMs: number;
  /**
   * A peer's LWW timestamp further ahead of this node's clock than this is refused (not merged,
   * not observed by the clock), counted and logged: one timestamp near the end of the 48-bit
   * HLC range would otherwise pin every clock in the cluster for good. At least maxClockSkewMs.
   */
  hlcRemoteAheadMsMax: number;
  /** Milliseconds added to this node's wall clock. Test-only: chaos tests use it to simulate skew. */
  clockOffsetMs: number;
  /** Milliseconds to finish in-flight requests on SIGTERM before cancelling them. */
  drainTimeoutMs: number;
}

/** Defaults for a single local node; every field can be overridden by YAML and then flags. */
export const defaultNodeConfig: Readonly<NodeConfig> = Object.freeze({
  id: "node-1",
  dataDir: "./data/node-1",
  peerAddr: "127.0.0.1:7000",
  advertiseAddr: "",
  clientAddr: "127.0.0.1:7100",
  seeds: [],
  tlsDir: "",
  insecure: false,
  durability: { kind: "sync" } as Durability,
  metricsAddr: "",
  logFormat: "text",
  logLevel: "info",
  snapshotIntervalMs: 10 * 60_000,
  snapshotWalBytes: 256 * 1024 * 1024,
  walSegmentBytesMax: 64 * 1024 * 1024,
  repair: false,
  maxClockSkewMs: 5_000,
  hlcRemoteAheadMsMax: 10 * 60_000,
  clockOffsetMs: 0,
  drainTimeoutMs: 10_000,
});

export const configFileBytesMax = 1024 * 1024;

/** A config problem, naming the field; the CLI prints it and exits 2. */
export class ConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`config: ${field}: ${message}`);
    this.name = "ConfigError";
  }
}

type FieldKind = "string" | "addr" | "addrOpt" | "addrList" | "bool" | "durability" | "int" | "enum";
interface FieldSpec {
  kind: FieldKind;
  min?: number;
  max?: number;
  values?: readonly string[];
}

/** How each field is checked. Keys are exactly the keys of NodeConfig (test/config checks it). */
export const configFields: Readonly<Record<keyof NodeConfig, FieldSpec>> = {
  id: { kind: "string" },
  dataDir: { kind: "string" },
  peerAddr: { kind: "addr" },
  advertiseAddr: { kind: "addrOpt" },
  clientAddr: { kind: "addr" },
  seeds: { kind: "addrList" },
  tlsDir: { kind: "string" },
  insecure: { kind: "bool" },
  durability: { kind: "durability" },
  metricsAddr: { kind: "addrOpt" },
  logFormat: { kind: "enum", values: ["text", "json"] },
  logLevel: { kind: "enum", values: ["debug", "info", "warn", "error"] },
  snapshotIntervalMs: { kind: "int", min: 0, max: 7 * 24 * 3_600_000 },
  snapshotWalBytes: { kind: "int", min: 0, max: 2 ** 40 },
  // The WAL's own bounds (src/persist/limits.ts): a segment is loaded whole during recovery.
  walSegmentBytesMax: { kind: "int", min: persistLimits.walSegmentBytesMin, max: persistLimits.walSegmentBytesMax },
  repair: { kind: "bool" },
  maxClockSkewMs: { kind: "int", min: 0, max: 24 * 3_600_000 },
  hlcRemoteAheadMsMax: { kind: "int", min: 1_000, max: 7 * 24 * 3_600_000 },
  clockOffsetMs: { kind: "int", min: -7 * 24 * 3_600_000, max: 7 * 24 * 3_600_000 },
  drainTimeoutMs: { kind: "int", min: 0, max: 600_000 },
};

const idPattern = /^[A-Za-z0-9._-]{1,64}$/;

/** Parses "HOST:PORT" (HOST may be [v6]); returns undefined when malformed. */
export function parseAddr(s: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
  if (!m || m[1] === undefined || m[2] === undefined) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  return { host: m[1], port };
}

export function parseDurability(s: string): Durability | undefined {
  if (s === "sync") return { kind: "sync" };
  if (s === "none") return { kind: "none" };
  const m = /^interval:(\d{1,7})$/.exec(s);
  if (m && m[1] !== undefined) {
    const ms = Number(m[1]);
    if (ms >= 1 && ms <= 60_000) return { kind: "interval", ms };
  }
  return undefined;
}

export function formatDurability(d: Durability): string {
  return d.kind === "interval" ? `interval:${d.ms}` : d.kind;
}

function checkField(field: keyof NodeConfig, raw: unknown): unknown {
  const spec = configFields[field];
  const fail = (msg: string): never => {
    throw new ConfigError(field, msg);
  };
  switch (spec.kind) {
    case "string":
      if (typeof raw !== "string" && typeof raw !== "number") fail("must be a string");
      return String(raw);
    case "addr":
    case "addrOpt": {
      if (typeof raw !== "string") return fail("must be a HOST:PORT string");
      if (spec.kind === "addrOpt" && raw === "") return raw;
      if (!parseAddr(raw)) fail(`"${raw}" is not HOST:PORT`);
      return raw;
    }
    case "addrList": {
      const list = typeof raw === "string" ? raw.split(",").filter((s) => s !== "") : raw;
      if (!Array.isArray(list)) return fail("must be a list of HOST:PORT");
      return list.map((a: unknown) => {
        if (typeof a !== "string" || !parseAddr(a)) fail(`"${String(a)}" is not HOST:PORT`);
        return a;
      });
    }
    case "bool":
      if (typeof raw === "boolean") return raw;
      if (raw === "true" || raw === "false") return raw === "true";
      return fail("must be true or false");
    case "durability": {
      const d = typeof raw === "string" ? parseDurability(raw) : undefined;
      if (!d) fail(`"${String(raw)}" is not sync, none or interval:MS (1..60000)`);
      return d;
    }
    case "int": {
      const n = typeof raw === "string" && /^-?\d+$/.test(raw) ? Number(raw) : raw;
      if (typeof n !== "number" || !Number.isSafeInteger(n)) return fail("must be an integer");
      if (spec.min !== undefined && n < spec.min) fail(`must be >= ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) fail(`must be <= ${spec.max}`);
      return n;
    }
    case "enum":
      if (typeof raw !== "string" || !spec.values?.includes(raw)) fail(`must be one of ${spec.values?.join(", ")}`);
      return raw;
  }
}

function isConfigKey(k: string): k is keyof NodeConfig {
  return Object.hasOwn(configFields, k);
}

/** Applies `overrides` (from YAML or flags; values raw) onto `base`, checking every field. */
export function applyOverrides(base: NodeConfig, overrides: Record<string, unknown>): NodeConfig {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    if (!isConfigKey(k)) throw new ConfigError(k, "unknown field");
    out[k] = checkField(k, v);
  }
  return out as unknown as NodeConfig;
}

/** Parses YAML text into overrides; errors name the file. */
export function parseConfigYaml(text: string, file: string): Record<string, unknown> {
  if (text.length > configFileBytesMax) throw new ConfigError("config", `${file} is larger than ${configFileBytesMax} bytes`);
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError("config", `${file}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ConfigError("config", `${file}: must be a mapping of field: value`);
  return doc as Record<string, unknown>;
}

/** Cross-field checks once everything is merged. */
export function finishConfig(c: NodeConfig): NodeConfig {
  if (!idPattern.test(c.id)) throw new ConfigError("id", `"${c.id}" must be 1..64 chars of [A-Za-z0-9._-]`);
  if (c.dataDir === "") throw new ConfigError("dataDir", "must not be empty");
  if (!c.insecure && c.tlsDir === "") throw new ConfigError("tlsDir", "required unless insecure is set (make one with `imdb certs init`)");
  if (c.peerAddr === c.clientAddr && !c.peerAddr.endsWith(":0")) throw new ConfigError("clientAddr", "must differ from peerAddr");
  if (c.hlcRemoteAheadMsMax < c.maxClockSkewMs) throw new ConfigError("hlcRemoteAheadMsMax", `must be >= maxClockSkewMs (${c.maxClockSkewMs})`);
  return c;
}
