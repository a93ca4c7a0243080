// Durations as people type them on a command line ("10s", "500ms", "1h30m"), for `--ttl` and `expire`: one parser, so every command reads them alike.
import { expiryDeadlineMsMax } from "../limits.ts";

/** Milliseconds per unit. A unit is required: a bare "10" would be seconds to Redis's EXPIRE and ms to its PEXPIRE. */
const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration the CLI cannot read; `message` says why and how to write it. */
export class DurationError extends Error {
  override readonly name = "DurationError";
}

/**
 * Parses "10s", "500ms", "2h", "1h30m", "1d" (integers with a unit: ms, s, m, h, d; parts add up) to
 * ms. allowNegative: a leading "-" (Expire takes a TTL <= 0 to mean "expire now"); "0s" is 0 either
 * way. The magnitude is at most expiryDeadlineMsMax (no deadline lies further away).
 */
export function parseDurationMs(text: string, what: string, allowNegative = false): number {
  const negative = text.startsWith("-");
  const body = negative ? text.slice(1) : text;
  const hint = `${what} must be a duration with a unit, like 10s, 500ms, 2h or 1h30m (units ms, s, m, h, d), got "${text}"`;
  if (negative && !allowNegative) throw new DurationError(`${what} must not be negative, got "${text}"`);
  if (!/^(\d+(ms|s|m|h|d))+$/.test(body)) throw new DurationError(hint);
  let total = 0n;
  for (const m of body.matchAll(/(\d+)(ms|s|m|h|d)/g)) {
    total += BigInt(m[1] as string) * BigInt(unitMs[m[2] as string] as number);
    if (total > BigInt(expiryDeadlineMsMax)) throw new DurationError(`${what} is too long: at most ${expiryDeadlineMsMax} ms (the latest deadline is Unix ms ${expiryDeadlineMsMax})`);
  }
  const ms = Number(total);
  return negative && ms > 0 ? -ms : ms;
}
