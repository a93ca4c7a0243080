// The node's configuration: one schema that is both the documented type and its validation, the
// defaults as a named preset, and the one place where YAML files and command-line flags are
// checked. Every problem is reported at once, naming the file (or flag) and field, with the
// closest known field for a misspelt one. test/config keeps configs/node-template.yaml in step.

import * as v from "valibot";
import { parseDocument } from "yaml";
import * as persistLimits from "../persist/limits.ts";
import { partitionsDefault, partitionsMax, replicationFactorMax } from "../cluster/placement.ts";

export type Durability =
  | { kind: "sync" } // answer a write only after its WAL record is fdatasync'ed (group commit)
  | { kind: "interval"; ms: number } // answer at once; fdatasync every `ms` milliseconds
  | { kind: "none" }; // never fdatasync; the OS flushes when it likes

export const logFormats = ["text", "json"] as const;
export const logLevels = ["debug", "info", "warn", "error"] as const;
export type LogFormat = (typeof logFormats)[number];
export type LogLevel = (typeof logLevels)[number];

const idPattern = /^[A-Za-z0-9._-]{1,64}$/;
const durabilityIntervalMsMax = 60_000;
const dayMs = 24 * 3_600_000;
/** Most Redis protocol connections one node may be told to serve (respMaxClients, CONFIG SET maxclients). */
export const respMaxClientsMax = 1_000_000;

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
    if (ms >= 1 && ms <= durabilityIntervalMsMax) return { kind: "interval", ms };
  }
  return undefined;
}

export function formatDurability(d: Durability): string {
  return d.kind === "interval" ? `interval:${d.ms}` : d.kind;
}

/** Longest value or field name quoted back in a message; a config file may hold up to a MiB. */
const quotedCharsMax = 80;

/** A value as a message quotes it: JSON, cut to quotedCharsMax characters. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length <= quotedCharsMax ? text : `${text.slice(0, quotedCharsMax)}... (${text.length} chars)`;
}

// Field kinds. YAML gives typed values; flags give strings, so numbers and booleans also accept
// their text ("5000", "true").

const text = v.pipe(v.union([v.string(), v.number()], "must be a string"), v.transform(String));
const addr = v.pipe(
  v.string("must be a HOST:PORT string"),
  v.check((s) => parseAddr(s) !== undefined, (i) => `${shown(i.input)} is not HOST:PORT`),
);
const addrOrEmpty = v.pipe(
  v.string("must be a HOST:PORT string or empty"),
  v.check((s) => s === "" || parseAddr(s) !== undefined, (i) => `${shown(i.input)} is not HOST:PORT`),
);
const addrList = v.pipe(
  v.union([v.string(), v.array(v.unknown())], "must be a list of HOST:PORT"),
  v.transform((x) => (typeof x === "string" ? x.split(",").filter((s) => s !== "") : x)),
  v.array(v.pipe(v.string((i) => `${shown(i.input)} is not HOST:PORT`), addr)),
);
const bool = v.pipe(
  v.union([v.boolean(), v.picklist(["true", "false"])], "must be true or false"),
  v.transform((x) => x === true || x === "true"),
);
const durability = v.pipe(
  v.string((i) => `${shown(i.input)} is not sync, none or interval:MS (1..${durabilityIntervalMsMax})`),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const d = parseDurability(dataset.value);
    if (d !== undefined) return d;
    addIssue({ message: `${shown(dataset.value)} is not sync, none or interval:MS (1..${durabilityIntervalMsMax})` });
    return NEVER;
  }),
);
function int(min: number, max: number) {
  return v.pipe(
    v.union([v.number(), v.string()], "must be an integer"),
    // Text that is not all digits becomes NaN, which the integer check refuses.
    v.transform((x) => (typeof x === "number" ? x : /^-?\d+$/.test(x) ? Number(x) : Number.NaN)),
    v.safeInteger("must be an integer"),
    v.minValue(min, `must be >= ${min}`),
    v.maxValue(max, `must be <= ${max}`),
  );
}
function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return v.picklist(values, `must be one of ${values.join(", ")}`);
}

/**
 * Every field of the node's configuration: its meaning (the operator's reference), its check and
 * its type. Keys are exactly the keys of NodeConfig, in the order docs/operations.md lists them.
 */
export const configFields = {
  /** Node id: unique in the cluster, 1..64 chars of [A-Za-z0-9._-]. With TLS it must equal the CN of <tlsDir>/<id>.crt. */
  id: v.pipe(text, v.regex(idPattern, (i) => `${shown(i.input)} must be 1..64 chars of [A-Za-z0-9._-]`)),
  /** Folder for the WAL and snapshots. Created if missing. One node per folder. */
  dataDir: v.pipe(text, v.minLength(1, "must not be empty")),
  /** HOST:PORT for node-to-node gRPC (NodeService). Other nodes reach this node here. */
  peerAddr: addr,
  /** HOST:PORT to advertise to peers when it differs from peerAddr (e.g. peerAddr 0.0.0.0:7000). Empty: peerAddr. */
  advertiseAddr: addrOrEmpty,
  /** HOST:PORT for client gRPC (ClientService, AdminService, Health). */
  clientAddr: addr,
  /** Peer addresses (HOST:PORT) of existing members to join through. Empty: start a new cluster. */
  seeds: addrList,
  /**
   * Owners of each partition of the keyspace; 0: every node holds every key. With N > 0 each key
   * is stored by its N owners and a request for a key this node does not own is forwarded to
   * one (issue 17, in progress: no hand-off on membership changes yet). The same on every node.
   */
  replicationFactor: int(0, replicationFactorMax),
  /** Partitions of the keyspace (placement of keys on owners). The same on every node. */
  partitions: int(1, partitionsMax),
  /** Folder with ca.crt and <id>.crt/.key (made by `imdb certs init`). Required unless insecure. */
  tlsDir: text,
  /** Plaintext on every port. For local experiments only; a warning is printed. */
  insecure: bool,
  /** When a write is acknowledged: sync (default), interval:MS, or none. */
  durability,
  /** HOST:PORT serving Prometheus /metrics. Empty: metrics are not served. */
  metricsAddr: addrOrEmpty,
  /**
   * HOST:PORT serving the Redis protocol (RESP2/RESP3; redis-cli and every Redis client). TLS
   * with a required client certificate from the cluster CA unless insecure, like Redis with
   * tls-auth-clients yes; an admin certificate may run admin commands. Empty: not served.
   */
  respAddr: addrOrEmpty,
  /** Redis protocol connections served at once (Redis: maxclients); the next is refused with Redis's error. */
  respMaxClients: int(1, respMaxClientsMax),
  /** Log line format on stderr. */
  logFormat: oneOf(logFormats),
  /** Least severe level logged. No line is logged per request at info. */
  logLevel: oneOf(logLevels),
  /** Take a snapshot every this many milliseconds (0: never on a timer). */
  snapshotIntervalMs: int(0, 7 * dayMs),
  /** Take a snapshot once the WAL has grown by this many bytes since the last one (0: never). */
  snapshotWalBytes: int(0, 2 ** 40),
  /** WAL segment size in bytes before rolling to a new segment file. Bounded by the WAL (src/persist/limits.ts): a segment is loaded whole during recovery. */
  walSegmentBytesMax: int(persistLimits.walSegmentBytesMin, persistLimits.walSegmentBytesMax),
  /** Start even if the WAL is damaged in the middle, truncating it there (peers refill the rest). */
  repair: bool,
  /** Remote HLC timestamps further ahead than this are merged but counted as clock skew. */
  maxClockSkewMs: int(0, dayMs),
  /**
   * A peer's LWW timestamp further ahead of this node's clock than this is refused (not merged,
   * not observed by the clock), counted and logged: one timestamp near the end of the 48-bit
   * HLC range would otherwise pin every clock in the cluster for good. At least maxClockSkewMs.
   */
  hlcRemoteAheadMsMax: int(1_000, 7 * dayMs),
  /** Milliseconds added to this node's wall clock. Test-only: chaos tests use it to simulate skew. */
  clockOffsetMs: int(-7 * dayMs, 7 * dayMs),
  /** Milliseconds to finish in-flight requests on SIGTERM before cancelling them. */
  drainTimeoutMs: int(0, 600_000),
};

const fieldsSchema = v.object(configFields);
/** The node's configuration, as checked by configFields (where each field's meaning is written). */
export type NodeConfig = v.InferOutput<typeof fieldsSchema>;

/** Adds the checks that relate fields to each other, once every field is known. */
function withRelations<S extends v.GenericSchema<unknown, NodeConfig>>(schema: S) {
  return v.pipe(
    schema,
    v.forward<NodeConfig, v.CheckIssue<NodeConfig>, ["tlsDir"]>(
      v.check((c) => c.insecure || c.tlsDir !== "", "required unless insecure is set (make one with `imdb certs init`)"),
      ["tlsDir"],
    ),
    v.forward<NodeConfig, v.CheckIssue<NodeConfig>, ["clientAddr"]>(
      v.check((c) => c.peerAddr !== c.clientAddr || c.peerAddr.endsWith(":0"), "must differ from peerAddr"),
      ["clientAddr"],
    ),
    v.forward<NodeConfig, v.CheckIssue<NodeConfig>, ["respAddr"]>(
      v.check((c) => c.respAddr === "" || c.respAddr.endsWith(":0") || (c.respAddr !== c.clientAddr && c.respAddr !== c.peerAddr && c.respAddr !== c.metricsAddr), "must differ from peerAddr, clientAddr and metricsAddr"),
      ["respAddr"],
    ),
    v.forward<NodeConfig, v.CheckIssue<NodeConfig>, ["hlcRemoteAheadMsMax"]>(
      v.check((c) => c.hlcRemoteAheadMsMax >= c.maxClockSkewMs, (i) => `must be >= maxClockSkewMs (${i.input.maxClockSkewMs})`),
      ["hlcRemoteAheadMsMax"],
    ),
  );
}

/** The relations alone, over fields already checked one by one (defaults < file < flags merged). */
const mergedConfigSchema = withRelations(v.custom<NodeConfig>(() => true));

export type ConfigField = keyof typeof configFields;

/** Defaults for a single local node; every field can be overridden by YAML and then flags. */
export const defaultNodeConfig: Readonly<NodeConfig> = Object.freeze({
  id: "node-1",
  dataDir: "./data/node-1",
  peerAddr: "127.0.0.1:7000",
  advertiseAddr: "",
  clientAddr: "127.0.0.1:7100",
  seeds: [],
  replicationFactor: 0,
  partitions: partitionsDefault,
  tlsDir: "",
  insecure: false,
  durability: { kind: "sync" } as Durability,
  metricsAddr: "",
  respAddr: "",
  respMaxClients: 10_000,
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
/** Problems reported at once; past this a file is more likely not a config at all. */
export const configIssuesMax = 50;

/** Where a setting came from: a YAML file, a flag of `imdb node`, or both merged (checks between fields). */
export type ConfigSource = { kind: "file"; path: string } | { kind: "flags" } | { kind: "merged" };

/** One problem: `field` is a field name or path ("seeds[1]"), empty for the file as a whole. */
export interface ConfigIssue {
  source: ConfigSource;
  field: string;
  message: string;
}

/** Every config problem found, each naming its file (or flag) and field; the CLI prints it and exits 2. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(formatIssues(issues));
  }

  /** The field of the first problem. */
  get field(): string {
    return this.issues[0]?.field ?? "";
  }
}

/** `dataDir` -> `--data-dir`: how a field is spelt as a flag of `imdb node`. */
export function flagOf(field: string): string {
  return `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function issueLine(i: ConfigIssue): string {
  const where = i.source.kind === "file" ? i.source.path : "";
  const field = i.source.kind === "flags" && i.field !== "" ? flagOf(i.field.replace(/\[\d+\]$/, "")) : i.field;
  // A message of several lines (the YAML parser's, with its excerpt) keeps every line, indented.
  const message = i.message.trimEnd().replace(/\n/g, "\n    ");
  return [where, field, message].filter((s) => s !== "").join(": ");
}

function formatIssues(issues: readonly ConfigIssue[]): string {
  if (issues.length === 1 && issues[0] !== undefined) return `config: ${issueLine(issues[0])}`;
  return [`config: ${issues.length} problems:`, ...issues.map((i) => `  ${issueLine(i)}`)].join("\n");
}

function isConfigKey(k: string): k is ConfigField {
  return Object.hasOwn(configFields, k);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** The known field a misspelt one most likely meant (`peerAdr`, `peer_addr`, `PeerAddr` -> `peerAddr`), if any is close. */
export function closestField(name: string): ConfigField | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  const n = norm(name);
  // No field name is this long; comparing would only cost time (edit distance is quadratic).
  if (n.length > quotedCharsMax) return undefined;
  let best: { field: ConfigField; distance: number } | undefined;
  for (const field of Object.keys(configFields) as ConfigField[]) {
    const d = editDistance(n, norm(field));
    if (best === undefined || d < best.distance) best = { field, distance: d };
  }
  // Up to a third of the name may be wrong; beyond that a suggestion is a guess.
  return best !== undefined && best.distance <= Math.max(1, Math.floor(n.length / 3)) ? best.field : undefined;
}

function pathOf(field: string, issue: v.BaseIssue<unknown>): string {
  let out = field;
  for (const item of issue.path ?? []) out += typeof item.key === "number" ? `[${item.key}]` : `.${String(item.key)}`;
  return out;
}

/** Checks each given field (undefined ones are skipped); returns the checked values and every problem. */
export function checkFields(raw: Readonly<Record<string, unknown>>, source: ConfigSource): { values: Partial<NodeConfig>; issues: ConfigIssue[] } {
  const values: Record<string, unknown> = {};
  const issues: ConfigIssue[] = [];
  for (const [k, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    if (!isConfigKey(k)) {
      const near = closestField(k);
      issues.push({ source, field: k.length <= quotedCharsMax ? k : shown(k), message: near === undefined ? "unknown field" : `unknown field (did you mean ${near}?)` });
      continue;
    }
    const r = v.safeParse(configFields[k], value, { abortPipeEarly: true });
    if (r.success) values[k] = r.output;
    else for (const issue of r.issues) issues.push({ source, field: pathOf(k, issue), message: issue.message });
  }
  return { values: values as Partial<NodeConfig>, issues };
}

/** Applies `overrides` (from YAML or flags; values raw) onto `base`, checking every field; throws ConfigError with every problem. */
export function applyOverrides(base: NodeConfig, overrides: Readonly<Record<string, unknown>>, source: ConfigSource = { kind: "merged" }): NodeConfig {
  const { values, issues } = checkFields(overrides, source);
  if (issues.length > 0) throw new ConfigError(issues);
  return { ...base, ...values };
}

/** Parses YAML text into raw fields, or every problem with it (the parser's messages whole). */
export function readConfigYaml(text: string, path: string): { raw: Record<string, unknown>; issues: ConfigIssue[] } {
  const source: ConfigSource = { kind: "file", path };
  const fail = (...messages: string[]) => ({ raw: {}, issues: messages.map((message) => ({ source, field: "", message })) });
  if (text.length > configFileBytesMax) return fail(`larger than ${configFileBytesMax} bytes`);
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return fail(...doc.errors.slice(0, configIssuesMax).map((e) => `not valid YAML: ${e.message}`));
  let js: unknown;
  try {
    js = doc.toJS();
  } catch (err) {
    return fail(`not valid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (js === null || js === undefined) return { raw: {}, issues: [] };
  if (typeof js !== "object" || Array.isArray(js)) return fail("must be a mapping of field: value");
  return { raw: js as Record<string, unknown>, issues: [] };
}

/** Parses YAML text into raw fields; throws ConfigError naming the file. */
export function parseConfigYaml(text: string, path: string): Record<string, unknown> {
  const { raw, issues } = readConfigYaml(text, path);
  if (issues.length > 0) throw new ConfigError(issues);
  return raw;
}

/** Checks between fields once everything is merged; throws ConfigError. */
export function finishConfig(c: NodeConfig): NodeConfig {
  const r = v.safeParse(mergedConfigSchema, c);
  if (r.success) return r.output;
  throw new ConfigError(r.issues.map((i) => ({ source: { kind: "merged" }, field: v.getDotPath(i) ?? "", message: i.message })));
}

/** What `imdb node` was given: the YAML file (already read) and the flags as raw strings. */
export interface ConfigInput {
  file?: { path: string; text: string } | { path: string; readError: string };
  flags: Readonly<Record<string, unknown>>;
}

/** defaults < file < flags, with every problem in the file and the flags reported at once; throws ConfigError. */
export function resolveNodeConfig(input: ConfigInput): NodeConfig {
  const issues: ConfigIssue[] = [];
  let fromFile: Partial<NodeConfig> = {};
  if (input.file !== undefined) {
    const source: ConfigSource = { kind: "file", path: input.file.path };
    if ("readError" in input.file) {
      issues.push({ source, field: "", message: `cannot read: ${input.file.readError}` });
    } else {
      const yaml = readConfigYaml(input.file.text, input.file.path);
      const checked = checkFields(yaml.raw, source);
      issues.push(...yaml.issues, ...checked.issues);
      fromFile = checked.values;
    }
  }
  const fromFlags = checkFields(input.flags, { kind: "flags" });
  issues.push(...fromFlags.issues);
  if (issues.length > configIssuesMax) issues.splice(configIssuesMax, Infinity, { source: { kind: "merged" }, field: "", message: `(${issues.length - configIssuesMax} more problems not shown)` });
  if (issues.length > 0) throw new ConfigError(issues);
  const merged: NodeConfig = { ...defaultNodeConfig, seeds: [], ...fromFile, ...fromFlags.values };
  // A node id given by flag moves the default data folder with it (`--id n2` alone: ./data/n2).
  const dataDirGiven = fromFile.dataDir !== undefined && fromFile.dataDir !== defaultNodeConfig.dataDir;
  if (fromFlags.values.id !== undefined && fromFlags.values.dataDir === undefined && !dataDirGiven) merged.dataDir = `./data/${fromFlags.values.id}`;
  return finishConfig(merged);
}
