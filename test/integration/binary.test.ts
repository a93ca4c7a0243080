// The shipped artefact: dist/imdb copied alone into an empty folder, with the source tree hidden
// (a private mount namespace lays an empty tmpfs over the repository where the system allows
// it), must run `--version` and `bench accel` with the native paths it was built with.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { nativeAvailable } from "../../src/accel/index.ts";
import { ensureBinary, repoRoot, tempDir } from "./harness.ts";

setDefaultTimeout(120_000);

const dir = tempDir("binary");
afterAll(() => dir.cleanup());

const alone = join(dir.path, "imdb");
copyFileSync(ensureBinary(), alone);
const hidden = repoRoot;
// Only where the temp folder is not itself inside the hidden tree.
const canHide = !dir.path.startsWith(hidden + "/") &&
  Bun.spawnSync(["unshare", "--mount", "--propagation", "private", "true"]).exitCode === 0;

/** Runs the copied binary from its own folder, with the source tree out of reach when possible. */
function runAlone(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const cmd = canHide
    ? ["unshare", "--mount", "--propagation", "private", "sh", "-c", `mount -t tmpfs none "${hidden}" && test ! -e "${join(repoRoot, "package.json")}" && exec "${alone}" "$@"`, "sh", ...args]
    : [alone, ...args];
  const env: Record<string, string> = { PATH: "/usr/bin:/bin", HOME: dir.path };
  const r = Bun.spawnSync(cmd, { cwd: dir.path, env });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

test(`--version from an empty folder${canHide ? " with the source tree hidden" : ""}`, () => {
  const r = runAlone(["--version"]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^imdb \d+\.\d+\.\d+\nbun 1\.\d+\.\d+\naccel /);
  const wantNative = nativeAvailable() || process.env.IMDB_REQUIRE_NATIVE === "1";
  if (wantNative) expect(r.stdout).toContain("checksum=native");
  expect(existsSync(join(dir.path, "node_modules"))).toBe(false);
});

test("config template prints configs/node-template.yaml, and node --help points to the command", () => {
  const r = runAlone(["config", "template"]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(readFileSync(join(repoRoot, "configs", "node-template.yaml"), "utf8"));
  // The help that points to it names the command, not a file the lone binary does not have.
  const help = runAlone(["node", "--help"]);
  expect(help.stdout).toContain("imdb config template");
  expect(help.stdout).not.toContain("configs/node-template.yaml");
});

test("bench accel --json runs there, with native figures when the addon was built", () => {
  const r = runAlone(["bench", "accel", "--json", "--seconds", "0.05"]);
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout) as { results: Array<{ primitive: string; case: string; native: number | null; ts: number; ratio: number | null; auto: string }> };
  expect(out.results.length).toBeGreaterThanOrEqual(8);
  for (const row of out.results) {
    expect(row.ts).toBeGreaterThan(0);
    if (nativeAvailable() || process.env.IMDB_REQUIRE_NATIVE === "1") {
      expect(row.native).toBeGreaterThan(0);
      // auto never picks the path this same run measured slower.
      expect(row.auto).toBe((row.native ?? 0) > row.ts ? "native" : "ts");
    }
  }
});
