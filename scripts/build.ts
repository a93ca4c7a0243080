// `npm run build`: compiles the CLI, with the native addon embedded when it was built, into
// the single executable dist/imdb. .env and bunfig.toml autoloading are off so the binary
// behaves the same in any folder an operator copies it to.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const outfile = join(root, "dist", "imdb");
mkdirSync(join(root, "dist"), { recursive: true });

const addon = join(root, "build", "Release", "imdb_accel.node");
console.error(existsSync(addon) ? "build: embedding native addon" : "build: native addon absent; the binary uses the TypeScript fallback");

// The commit goes into imdb_build_info (src/node/runtime-metrics.ts); "unknown" outside a git checkout.
const rev = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: root, stdout: "pipe", stderr: "ignore" });
const commit = rev.exitCode === 0 ? rev.stdout.toString().trim() : "unknown";

const args = [
  "build",
  "--compile",
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
  "--sourcemap",
  "--define",
  `IMDB_BUILD_COMMIT=${JSON.stringify(commit)}`,
  join(root, "src", "cli", "main.ts"),
  "--outfile",
  outfile,
];
const proc = Bun.spawnSync([process.execPath, ...args], { cwd: root, stdout: "inherit", stderr: "inherit" });
if (proc.exitCode !== 0) {
  console.error(`build: bun build failed with exit code ${proc.exitCode}`);
  process.exit(1);
}
console.error(`build: wrote ${outfile}`);
