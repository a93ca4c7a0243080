// Values that do not fit on a command line: `-` reads stdin, `--file F` reads a file. Linux refuses
// one argv string over 128 KiB (MAX_ARG_STRLEN, E2BIG from execve), so a value up to the server's
// 1 MiB limit can only arrive this way. Both are read with a bound, so a wrong file fails fast.
import { open } from "node:fs/promises";
import { registerValueBytesMax } from "../limits.ts";

/** A value given wrongly (too big, unreadable, both forms at once): the CLI prints it and exits 2. */
export class ValueInputError extends Error {
  override readonly name = "ValueInputError";
}

/** Base64 text of a maximal value, with room for line breaks. */
const base64TextBytesMax = Math.ceil(registerValueBytesMax / 3) * 4 + 64 * 1024;

/** Where a value comes from: the argument itself, stdin (`-`), or a file. */
export type ValueSource = { kind: "arg"; text: string } | { kind: "stdin" } | { kind: "file"; path: string };

/** VALUE argument and --file flag -> one source; both or neither is an error. */
export function valueSource(raw: string | undefined, file: unknown, what: string): ValueSource {
  if (typeof file === "string") {
    if (raw !== undefined) throw new ValueInputError(`give ${what} or --file, not both`);
    return { kind: "file", path: file };
  }
  if (raw === undefined) throw new ValueInputError(`${what} is missing: give it as an argument, as - (read stdin) or with --file FILE`);
  return raw === "-" ? { kind: "stdin" } : { kind: "arg", text: raw };
}

/** The source's bytes (raw; with base64 the source's text decoded), at most maxBytes. */
export async function readValue(src: ValueSource, base64: boolean, what: string, maxBytes = registerValueBytesMax): Promise<Uint8Array> {
  const readMax = base64 ? base64TextBytesMax : maxBytes;
  let bytes: Uint8Array;
  switch (src.kind) {
    case "arg":
      bytes = new TextEncoder().encode(src.text);
      break;
    case "stdin":
      bytes = await readBounded(Bun.stdin.stream(), readMax, `${what} on stdin`);
      break;
    case "file":
      bytes = await readFileBounded(src.path, readMax, what);
      break;
  }
  if (base64) bytes = decodeBase64(new TextDecoder().decode(bytes).replace(/\s+/g, ""), what);
  if (bytes.byteLength > maxBytes) throw new ValueInputError(`${what} of ${bytes.byteLength} bytes exceeds the limit of ${maxBytes} bytes`);
  return bytes;
}

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeBase64(text: string, what: string): Uint8Array {
  if (!base64Pattern.test(text)) throw new ValueInputError(`${what} must be base64 (as printed by get)`);
  return new Uint8Array(Buffer.from(text, "base64"));
}

/** Reads a stream to its end, refusing more than maxBytes (reads at most maxBytes + one chunk). */
export async function readBounded(stream: ReadableStream<Uint8Array>, maxBytes: number, what: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) throw new ValueInputError(`${what} is longer than the limit of ${maxBytes} bytes`);
      parts.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

async function readFileBounded(path: string, maxBytes: number, what: string): Promise<Uint8Array> {
  let fh;
  try {
    fh = await open(path, "r");
  } catch (err) {
    throw new ValueInputError(`cannot read ${what} from ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ValueInputError(`${path} is not a regular file`);
    if (st.size > maxBytes) throw new ValueInputError(`${what} in ${path} is ${st.size} bytes, over the limit of ${maxBytes} bytes`);
    return new Uint8Array(await fh.readFile());
  } finally {
    await fh.close();
  }
}
