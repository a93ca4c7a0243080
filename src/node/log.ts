// Structured logging for the node and CLI: human-readable lines by default, one JSON object per
// line with --log-format json. Levels filter; request paths never log at info.
import type { LogFormat, LogLevel } from "../config/config.ts";

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

function fmtValue(v: unknown): string {
  if (typeof v === "string") return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v) ?? String(v);
}

export function createLogger(opts: {
  format: LogFormat;
  level: LogLevel;
  write?: (line: string) => void;
  now?: () => Date;
  fields?: LogFields;
}): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const now = opts.now ?? (() => new Date());
  const min = levelRank[opts.level];
  const base = opts.fields ?? {};
  const emit = (level: LogLevel, msg: string, fields: LogFields | undefined): void => {
    if (levelRank[level] < min) return;
    const all = { ...base, ...fields };
    if (opts.format === "json") {
      write(
        JSON.stringify({ ts: now().toISOString(), level, msg, ...all }, (_k, v: unknown) =>
          typeof v === "bigint" ? v.toString() : v instanceof Error ? v.message : v,
        ),
      );
    } else {
      const kv = Object.entries(all)
        .map(([k, v]) => `${k}=${fmtValue(v)}`)
        .join(" ");
      write(`${now().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${kv ? " " + kv : ""}`);
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger({ ...opts, fields: { ...base, ...fields } }),
  };
}
