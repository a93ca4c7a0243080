// How to start this same program again as a child (for `imdb cluster` and tests): the compiled
// binary re-runs itself; from source, Bun re-runs src/cli/main.ts.
import { join } from "node:path";

/** True inside a `bun build --compile` executable, whose modules live under /$bunfs/. */
export function isCompiled(): boolean {
  return import.meta.path.includes("$bunfs") || import.meta.path.startsWith("B:\\~BUN");
}

/** argv prefix that runs `imdb` (append a subcommand and flags). */
export function selfCommand(): string[] {
  return isCompiled() ? [process.execPath] : [process.execPath, join(import.meta.dir, "main.ts")];
}
