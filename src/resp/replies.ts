// Reply values and Redis's exact error texts in one place, and the one mapping from the node's
// OpError codes to Redis errors, so every command answers a failure the way Redis clients expect.
import { OpFailure, type OpError } from "../transport/api.ts";
import type { Reply } from "./types.ts";

export const ok: Reply = { kind: "simple", text: "OK" };
export const nullBulk: Reply = { kind: "bulk", value: null };

export function simple(text: string): Reply {
  return { kind: "simple", text };
}

export function bulk(value: Uint8Array | string | null): Reply {
  return { kind: "bulk", value };
}

export function int(value: bigint | number): Reply {
  return { kind: "int", value };
}

export function array(items: Reply[]): Reply {
  return { kind: "array", items };
}

export function errorReply(text: string): Reply {
  return { kind: "error", text };
}

/** A reply that ends a command early: thrown by argument parsers, caught by the dispatcher. */
export class RespError extends Error {
  override readonly name = "RespError";
  constructor(readonly text: string) {
    super(text);
  }
}

// Redis 7.0's texts, checked against redis-server (test/resp/redis-shapes.test.ts).
export const errWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value";
export const errNotInteger = "ERR value is not an integer or out of range";
export const errSyntax = "ERR syntax error";
export const errOverflow = "ERR increment or decrement would overflow";
export const errDecrOverflow = "ERR decrement would overflow";
export const errDbIndex = "ERR DB index is out of range";
export const errInvalidCursor = "ERR invalid cursor";
export const errNoProto = "NOPROTO unsupported protocol version";
export const errHashNotInteger = "ERR hash value is not an integer";
export const errBadClientName = "ERR Client names cannot contain spaces, newlines or special characters.";

export function errArity(fullName: string): string {
  return `ERR wrong number of arguments for '${fullName}' command`;
}

export function errNoPerm(fullName: string): string {
  return `NOPERM this user has no permissions to run the '${fullName}' command`;
}

/** Why a command Redis has cannot work on replicas that accept writes independently. */
export function errNotCrdt(name: string, why: string): string {
  return `ERR ${name} is not supported by a CRDT database: ${why}`;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

/** Redis cuts quoted names and arguments at 128 bytes and turns CR/LF into spaces (the line must stay one line). */
const quotedBytesMax = 128;

function oneLine(text: string): string {
  return text.replace(/[\r\n]/g, " ");
}

/** `ERR unknown command 'x', with args beginning with: 'a' 'b' ` exactly as Redis 7 builds it. */
export function errUnknownCommand(args: readonly Uint8Array[]): string {
  const name = utf8.decode((args[0] ?? new Uint8Array(0)).subarray(0, quotedBytesMax));
  let quoted = 0;
  let text = "";
  for (let i = 1; i < args.length && quoted < quotedBytesMax; i++) {
    const part = (args[i] as Uint8Array).subarray(0, quotedBytesMax - quoted);
    quoted += part.length + 3;
    text += `'${utf8.decode(part)}' `;
  }
  return oneLine(`ERR unknown command '${name}', with args beginning with: ${text}`);
}

export function errUnknownSubcommand(sub: Uint8Array, container: string): string {
  return oneLine(`ERR unknown subcommand '${utf8.decode(sub.subarray(0, quotedBytesMax))}'. Try ${container.toUpperCase()} HELP.`);
}

/** The engine's wrong-type refusal (src/engine/index.ts wrongType, src/node/ops.ts): `key "k" holds a X, not a Y`. */
const wrongTypeMessage = /^key ".*" holds an? [A-Za-z -]+, not an? [A-Za-z -]+$/s;

export function isWrongType(e: OpError): boolean {
  return e.code === "FAILED_PRECONDITION" && wrongTypeMessage.test(e.message);
}

/**
 * A node error as Redis words it. WRONGTYPE is Redis's text exactly; permissions are NOPERM.
 * Overload (RESOURCE_EXHAUSTED) and a stopping or rejoining node (UNAVAILABLE) are plain ERR with
 * the node's message: Redis's BUSY and LOADING mean "a script runs" and "the dataset is loading",
 * which clients act on in ways that do not fit (this node serves only once recovered).
 */
export function opErrorText(e: OpError): string {
  if (isWrongType(e)) return errWrongType;
  switch (e.code) {
    case "PERMISSION_DENIED":
      return oneLine(`NOPERM ${e.message}`);
    case "INTERNAL":
      return oneLine(`ERR internal error: ${e.message}`);
    case "INVALID_ARGUMENT":
    case "FAILED_PRECONDITION":
    case "OUT_OF_RANGE":
    case "NOT_FOUND":
    case "RESOURCE_EXHAUSTED":
    case "UNAVAILABLE":
      return oneLine(`ERR ${e.message}`);
  }
}

/** An OpFailure thrown by validation or a handler, as an error reply; null for any other throw. */
export function failureText(err: unknown): string | null {
  if (err instanceof RespError) return err.text;
  if (err instanceof OpFailure) return opErrorText({ code: err.code, message: err.message });
  return null;
}
