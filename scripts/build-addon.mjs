// Builds the native addon (native/ -> build/Release/imdb_accel.node) with node-gyp; run by
// `npm install` / `npm ci` as the root install script. A failed build never fails the install:
// it prints one line and the pure-TypeScript fallback is used.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const buildTimeoutMs = 10 * 60 * 1000;
const fallback = "the TypeScript fallback will be used";

function fail(reason) {
  console.log(`imdb: native addon not built (${reason}); ${fallback}`);
  process.exit(0);
}

if (process.env.IMDB_SKIP_ADDON === "1") fail("IMDB_SKIP_ADDON=1");
if (!existsSync(join(root, "node_modules", "node-addon-api"))) fail("node-addon-api is not installed");

// Prefer the pinned node-gyp; fall back to the one npm bundles (npm tells us where).
const localGyp = join(root, "node_modules", "node-gyp", "bin", "node-gyp.js");
const gyp = existsSync(localGyp) ? localGyp : process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) fail("node-gyp not found");

const args = [gyp, "rebuild"];
// npm hands its `nodedir` setting to node-gyp through npm_config_nodedir; run by hand, use the
// system headers when they are there instead of downloading them.
if (!process.env.npm_config_nodedir && existsSync("/usr/include/node/node_api.h")) args.push("--nodedir=/usr");

const r = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8", timeout: buildTimeoutMs, env: process.env });
const built = join(root, "build", "Release", "imdb_accel.node");
if (r.error) fail(r.error.message);
if (r.status !== 0 || !existsSync(built)) {
  const lines = `${r.stderr ?? ""}\n${r.stdout ?? ""}`.split("\n").map((l) => l.trim());
  const why =
    lines.find((l) => /error:/i.test(l) && !l.startsWith("gyp ERR!")) ??
    lines.find((l) => l.startsWith("gyp ERR!") && !/stack|System|command|cwd|node -v|node-gyp -v|not ok/.test(l)) ??
    `node-gyp exited with ${r.status}`;
  fail(why.slice(0, 200));
}
console.log(`imdb: native addon built (build/Release/imdb_accel.node)`);
