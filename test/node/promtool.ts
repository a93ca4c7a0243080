// promtool (Debian's `prometheus` package, installed by .ci/run) lints Prometheus text the way
// Prometheus' own tooling does. In CI a missing promtool fails the test; elsewhere it skips.

/** The promtool binary, or null when it is absent outside CI. Throws in CI when it is absent. */
export function promtool(): string | null {
  const path = Bun.which("promtool");
  if (path !== null) return path;
  if (process.env.CI === "true") throw new Error("promtool is not installed: CI must install Debian's `prometheus` package (.ci/run does)");
  console.error("promtool not installed (apt-get install prometheus): skipping the lint locally");
  return null;
}

/** `promtool check metrics` on `text`: its exit code and everything it printed (problems, one a line). */
export function checkMetrics(path: string, text: string): { code: number | null; problems: string } {
  const r = Bun.spawnSync([path, "check", "metrics"], { stdin: new TextEncoder().encode(text), stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, problems: (r.stdout.toString() + r.stderr.toString()).trim() };
}
